//! The shared pull loop on a real JetStream: acknowledgements as handlers say,
//! at most `concurrency` handlers at once, progress acks that keep a slow
//! message from being redelivered, and a drain of what is in flight on
//! shutdown.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, Message};
use foco_bus::{BusNames, Handle, PullSettings};
use foco_testkit::TestBus;
use tokio_util::sync::CancellationToken;

/// Longest any condition below is waited for.
const PATIENCE: Duration = Duration::from_secs(20);

struct Bus {
    client: async_nats::Client,
    context: jetstream::Context,
    names: BusNames,
    _bus: TestBus,
}

impl Bus {
    async fn new() -> Self {
        let bus = TestBus::new();
        let client = async_nats::connect(&bus.nats_url).await.expect("NATS");
        let context = jetstream::new(client.clone());
        let names = BusNames::new(&bus.prefix).unwrap();
        foco_bus::ensure_streams(&context, &names, Default::default())
            .await
            .unwrap();
        Self {
            client,
            context,
            names,
            _bus: bus,
        }
    }

    async fn consumer(&self, ack_wait: Duration) -> jetstream::consumer::PullConsumer {
        foco_bus::ensure_consumer(
            &self.context,
            &foco_bus::ConsumerSettings {
                stream: self.names.sms_stream(),
                durable_name: self.names.sender_consumer().to_owned(),
                filter_subject: self.names.sms_filter(),
                ack_wait,
                max_ack_pending: 1_000,
                max_deliver: -1,
            },
        )
        .await
        .unwrap()
    }

    async fn publish(&self, body: &str) {
        foco_bus::publish_durable(
            &self.context,
            &self.client,
            self.names.sms_subject("acme"),
            body,
            bytes::Bytes::from(body.to_owned()),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    }

    async fn messages_left(&self) -> u64 {
        let mut stream = self
            .context
            .get_stream(self.names.sms_stream())
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    }
}

/// Answers by the body (`ack`, `nak`, `term`, `slow:<ms>`, `stuck-once:<ms>`
/// which is slow on its first delivery only), counting deliveries
/// and the most handlers that ran at once.
#[derive(Default)]
struct Scripted {
    deliveries: Mutex<HashMap<String, u64>>,
    running: AtomicUsize,
    most_at_once: AtomicUsize,
}

impl Scripted {
    fn delivered(&self, body: &str) -> u64 {
        self.deliveries
            .lock()
            .unwrap()
            .get(body)
            .copied()
            .unwrap_or(0)
    }
}

impl Handle for Scripted {
    async fn handle(&self, message: &Message) -> AckKind {
        let body = String::from_utf8_lossy(&message.payload).into_owned();
        let delivery = {
            let mut deliveries = self.deliveries.lock().unwrap();
            let count = deliveries.entry(body.clone()).or_default();
            *count += 1;
            *count
        };
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_at_once.fetch_max(running, Ordering::SeqCst);
        let ack = match body.split_once(':') {
            Some(("slow", millis)) => {
                let millis = millis.parse().unwrap();
                tokio::time::sleep(Duration::from_millis(millis)).await;
                AckKind::Ack
            }
            Some(("stuck-once", millis)) if delivery == 1 => {
                let millis = millis.parse().unwrap();
                tokio::time::sleep(Duration::from_millis(millis)).await;
                AckKind::Ack
            }
            _ if body.starts_with("nak") => AckKind::Nak(Some(Duration::from_millis(50))),
            _ if body.starts_with("term") => AckKind::Term,
            _ => AckKind::Ack,
        };
        self.running.fetch_sub(1, Ordering::SeqCst);
        ack
    }
}

fn settings(concurrency: usize, keep_alive: Option<Duration>) -> PullSettings {
    PullSettings {
        what: "test messages",
        concurrency,
        shutdown_grace: Duration::from_secs(10),
        keep_alive,
    }
}

/// Runs the loop over the test consumer until the returned token is cancelled.
async fn start(
    bus: &Bus,
    handler: &Arc<Scripted>,
    ack_wait: Duration,
    settings: PullSettings,
) -> (tokio::task::JoinHandle<()>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let consumer = bus.consumer(ack_wait).await;
    let running = tokio::spawn(foco_bus::pull::run(
        consumer,
        handler.clone(),
        settings,
        shutdown.clone(),
    ));
    (running, shutdown)
}

async fn until_empty(bus: &Bus) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let left = bus.messages_left().await;
        if left == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} messages left"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "waited for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn messages_are_acknowledged_as_their_handler_says() {
    let bus = Bus::new().await;
    for body in ["ack-1", "ack-2", "nak-1", "term-1"] {
        bus.publish(body).await;
    }
    let handler = Arc::new(Scripted::default());
    let (running, shutdown) =
        start(&bus, &handler, Duration::from_secs(30), settings(4, None)).await;
    // A nak comes back after its delay, for as long as it is nak'ed.
    until("the nak'ed message to come back twice", || {
        handler.delivered("nak-1") >= 3
    })
    .await;
    assert_eq!(handler.delivered("ack-1"), 1);
    assert_eq!(handler.delivered("ack-2"), 1);
    assert_eq!(
        handler.delivered("term-1"),
        1,
        "a terminated message never returns"
    );
    shutdown.cancel();
    running.await.unwrap();
    // The acked and the terminated ones left the work queue; the nak'ed one stays.
    assert_eq!(bus.messages_left().await, 1);
}

#[tokio::test]
async fn no_more_handlers_run_at_once_than_the_concurrency() {
    let bus = Bus::new().await;
    for index in 0..12 {
        bus.publish(&format!("slow:{}", 100 + index)).await;
    }
    let handler = Arc::new(Scripted::default());
    let (running, shutdown) =
        start(&bus, &handler, Duration::from_secs(30), settings(3, None)).await;
    until_empty(&bus).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(handler.most_at_once.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_handler_slower_than_ack_wait_is_kept_alive_and_not_redelivered() {
    let bus = Bus::new().await;
    bus.publish("slow:3500").await;
    let handler = Arc::new(Scripted::default());
    let ack_wait = Duration::from_secs(1);
    let (running, shutdown) = start(&bus, &handler, ack_wait, settings(4, Some(ack_wait))).await;
    until_empty(&bus).await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        handler.delivered("slow:3500"),
        1,
        "progress acks kept JetStream from delivering it again"
    );
}

#[tokio::test]
async fn shutdown_lets_messages_in_flight_finish_and_acknowledges_them() {
    let bus = Bus::new().await;
    bus.publish("slow:1500").await;
    let handler = Arc::new(Scripted::default());
    let (running, shutdown) =
        start(&bus, &handler, Duration::from_secs(30), settings(4, None)).await;
    until("the message to be in flight", || {
        handler.running.load(Ordering::SeqCst) == 1
    })
    .await;
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(handler.running.load(Ordering::SeqCst), 0, "it finished");
    assert_eq!(handler.delivered("slow:1500"), 1);
    // The ack was sent before the loop ended; JetStream applies it on its own time.
    bus.client.flush().await.unwrap();
    until_empty(&bus).await;
}

#[tokio::test]
async fn shutdown_abandons_what_outlasts_the_grace_and_jetstream_redelivers_it() {
    let bus = Bus::new().await;
    bus.publish("stuck-once:600000").await;
    let handler = Arc::new(Scripted::default());
    let mut short_grace = settings(4, None);
    short_grace.shutdown_grace = Duration::from_millis(300);
    let ack_wait = Duration::from_secs(1);
    let (running, shutdown) = start(&bus, &handler, ack_wait, short_grace).await;
    until("the message to be in flight", || {
        handler.running.load(Ordering::SeqCst) == 1
    })
    .await;
    shutdown.cancel();
    // Ten minutes of handler would hold this far past the test's patience.
    tokio::time::timeout(PATIENCE, running)
        .await
        .expect("the loop ends once the grace is over")
        .unwrap();
    assert_eq!(bus.messages_left().await, 1, "abandoned, not acknowledged");

    let (running, shutdown) = start(&bus, &handler, ack_wait, settings(4, None)).await;
    until_empty(&bus).await;
    assert_eq!(handler.delivered("stuck-once:600000"), 2);
    shutdown.cancel();
    running.await.unwrap();
}
