//! `make bench-ingress`: how close ingress comes to the bare cost of storing an
//! event on JetStream.
//!
//! Over loopback, against the NATS and Postgres the tests use, it starts control
//! and ingress in-process (a fresh database and bus prefix) and a "ceiling"
//! server: a minimal axum handler that only publishes the body to JetStream with a
//! `Nats-Msg-Id` and awaits the ack. A load generator then drives signed Shopify
//! webhooks (the shared fixture, ~10 KiB, each a distinct order with a fresh
//! event id: Shopify signs the body alone, so ingress names such an event by its
//! body, and one body sent again would be one event) at both, from a fixed
//! number of keep-alive connections, and prints accepted events/s, latency
//! percentiles and the ratio. Each round runs both, back to back, and the order
//! flips every round (ceiling first, then ingress first, ...). Nothing consumes
//! the events, so the stream is purged before every run: each starts from an
//! empty stream, and a whole run (some 2 GB of bodies) never meets the stream's
//! size bound (`FOCO_BUS_MAX_BYTES`, 1 GiB), past which publishes are refused.
//!
//! Bounded in requests and time. Settings (environment): `FOCO_BENCH_CONNECTIONS`
//! [64], `FOCO_BENCH_REQUESTS` [20000 a round], `FOCO_BENCH_ROUNDS` [5],
//! `FOCO_BENCH_MAX_SECONDS` [60 a round]. `FOCO_BENCH_EVENT_TYPE_FROM` (for
//! example `body:currency`) makes the source read its event type from the body,
//! as the Stripe-like presets do, so that ingress parses every body; by default
//! the Shopify preset reads headers only and stores the body unread.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use foco_bus::BusNames;
use foco_harness::TestControl;
use foco_proto::v1::UpsertSourceRequest;
use foco_testkit::cpu;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "bench-shopify-secret";
const EVENT_ID_HEADER: &str = "x-shopify-event-id";

struct Settings {
    event_type_from: String,
    connections: usize,
    requests: u64,
    rounds: usize,
    max_round: Duration,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

// The allocator the foco-ingress binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let settings = Settings {
        event_type_from: std::env::var("FOCO_BENCH_EVENT_TYPE_FROM").unwrap_or_default(),
        connections: setting("FOCO_BENCH_CONNECTIONS", 64),
        requests: setting("FOCO_BENCH_REQUESTS", 20_000),
        rounds: setting("FOCO_BENCH_ROUNDS", 5),
        max_round: Duration::from_secs(setting("FOCO_BENCH_MAX_SECONDS", 60)),
    };
    // `cargo bench` passes `--bench`; other arguments are not used.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(settings));
}

/// Distinct Shopify orders: the fixture with the request's number added as its
/// last field, signed as Shopify signs (the body alone). The MAC state after the
/// fixed part is kept, so each order costs the generator a copy and a short
/// update, the same for both targets.
struct Orders {
    /// The fixture up to (not including) its closing brace.
    head: Bytes,
    signing_after_head: Hmac<Sha256>,
}

impl Orders {
    fn new(fixture: &[u8]) -> Self {
        let end = fixture
            .iter()
            .rposition(|byte| *byte == b'}')
            .expect("the fixture is a JSON object");
        let head = Bytes::copy_from_slice(&fixture[..end]);
        let mut signing_after_head = <Hmac<Sha256> as KeyInit>::new_from_slice(SECRET.as_bytes())
            .expect("HMAC takes any key length");
        signing_after_head.update(&head);
        Self {
            head,
            signing_after_head,
        }
    }

    /// Order `number`'s body and its `X-Shopify-Hmac-Sha256`.
    fn order(&self, number: u64) -> (Bytes, String) {
        let tail = format!(",\n  \"bench_request\": {number}\n}}\n");
        let mut body = Vec::with_capacity(self.head.len() + tail.len());
        body.extend_from_slice(&self.head);
        body.extend_from_slice(tail.as_bytes());
        let mut signing = self.signing_after_head.clone();
        signing.update(tail.as_bytes());
        let signature = BASE64.encode(signing.finalize().into_bytes());
        (Bytes::from(body), signature)
    }
}

/// One target of the load: where to post and how each request is labelled.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    headers: HeaderMap,
}

#[derive(Default)]
struct RoundResult {
    accepted: u64,
    failed: u64,
    elapsed: Duration,
    /// CPU time of this process (load generator, ingress or ceiling, control) and
    /// of the NATS server during the round, when /proc tells.
    cpu_self: Duration,
    cpu_nats: Duration,
    /// Microseconds, sorted.
    latencies: Vec<u64>,
}

impl RoundResult {
    fn per_second(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile_ms(&self, percentile: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let rank = ((percentile / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[rank] as f64 / 1000.0
    }
}

#[allow(
    clippy::too_many_lines,
    reason = "a benchmark run: its steps read best in order"
)]
async fn run(settings: Settings) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control = TestControl::start().await;
    let bus = &control.bus;
    let names = BusNames::new(&bus.prefix).unwrap();
    let shutdown = CancellationToken::new();

    let ingress = foco_ingress::App::build(
        foco_ingress::Config {
            http_listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            bus: foco_harness::bus_config(bus, foco_bus::NatsAuth::default(), Default::default()),
            control: foco_harness::control_config(&control, control.service_key("ingress").await),
            config_cache_ttl: Duration::from_secs(300),
            max_body_bytes: 1024 * 1024,
            default_source_rate: 0,
            publish_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
            public_url: None,
        },
        shutdown.clone(),
    )
    .await
    .expect("build ingress");
    let ingress_addr = ingress.http_addr();
    tokio::spawn(ingress.run());

    let mut api = control.admin();
    foco_harness::create_test_account(&mut api, "bench").await;
    let source = api
        .upsert_source(UpsertSourceRequest {
            account: "bench".to_owned(),
            name: "shop".to_owned(),
            preset: "shopify".to_owned(),
            secret: SECRET.to_owned(),
            // Empty keeps the preset's X-Shopify-Topic.
            event_type_from: settings.event_type_from.clone(),
            ..Default::default()
        })
        .await
        .expect("source")
        .into_inner();

    let ceiling_addr = start_ceiling(&bus.nats_url, names.events_subject("bench", "ceiling")).await;

    let orders = Arc::new(Orders::new(&foco_testkit::fixture(
        "shopify__orders_create.json",
    )));
    let mut shopify_headers = HeaderMap::new();
    shopify_headers.insert("content-type", "application/json".parse().unwrap());
    shopify_headers.insert("x-shopify-topic", "orders/create".parse().unwrap());
    let ingress_target = Target {
        name: "ingress",
        url: format!("http://{ingress_addr}/v1/hooks/{}", source.token),
        headers: shopify_headers.clone(),
    };
    let ceiling_target = Target {
        name: "ceiling",
        url: format!("http://{ceiling_addr}/publish"),
        headers: shopify_headers,
    };

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(settings.connections)
        .tcp_nodelay(true)
        .build()
        .unwrap();
    let ids = Arc::new(AtomicU64::new(0));
    let body_reading = if source.event_type_from.starts_with("body:") {
        format!(
            "event type from {}: every body parsed",
            source.event_type_from
        )
    } else {
        "event type and id from headers: bodies stored unread".to_owned()
    };
    println!(
        "foco-ingress benchmark: {} connections, {} requests a round, {} rounds, body {} bytes (shopify preset, HMAC-SHA256, {body_reading})",
        settings.connections,
        settings.requests,
        settings.rounds,
        orders.order(0).0.len()
    );
    // Warm-up: connections, caches, the stream's first blocks.
    for target in [&ceiling_target, &ingress_target] {
        let warm = drive(
            &client,
            target,
            &orders,
            &ids,
            settings.connections,
            2_000,
            settings.max_round,
        )
        .await;
        assert!(
            warm.failed == 0,
            "{} refused requests while warming up",
            target.name
        );
    }

    let targets = [&ceiling_target, &ingress_target];
    let mut totals: [(u64, Duration, Vec<u64>); 2] = Default::default();
    // Each round's rate of each side (ceiling, ingress): a round's pair ran back to
    // back, so it saw nearly the same state of the machine and the stream.
    let mut round_rates: Vec<[f64; 2]> = Vec::new();
    // For profiling one side alone: FOCO_BENCH_ONLY=ingress (or ceiling).
    let only = std::env::var("FOCO_BENCH_ONLY").unwrap_or_default();
    let events = async_nats::jetstream::new(
        async_nats::connect(&bus.nats_url)
            .await
            .expect("connect to NATS"),
    )
    .get_stream(names.events_stream())
    .await
    .expect("the events stream");
    for round in 1..=settings.rounds {
        let order = if round % 2 == 1 { [0, 1] } else { [1, 0] };
        let mut rates = [0.0; 2];
        for index in order {
            let target = targets[index];
            if !only.is_empty() && only != target.name {
                continue;
            }
            events.purge().await.expect("purge the events stream");
            let result = drive(
                &client,
                target,
                &orders,
                &ids,
                settings.connections,
                settings.requests,
                settings.max_round,
            )
            .await;
            println!(
                "round {round} {:<8} {:>8.0} events/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms  ({} accepted, {} failed, {:.1} s; cpu/event: bench process {:.0} us, nats-server {:.0} us)",
                target.name,
                result.per_second(),
                result.percentile_ms(50.0),
                result.percentile_ms(90.0),
                result.percentile_ms(99.0),
                result.accepted,
                result.failed,
                result.elapsed.as_secs_f64(),
                result.cpu_self.as_micros() as f64 / result.accepted.max(1) as f64,
                result.cpu_nats.as_micros() as f64 / result.accepted.max(1) as f64,
            );
            rates[index] = result.per_second();
            totals[index].0 += result.accepted;
            totals[index].1 += result.elapsed;
            totals[index].2.extend(result.latencies);
        }
        round_rates.push(rates);
    }
    let summary = |(accepted, elapsed, mut latencies): (u64, Duration, Vec<u64>)| {
        latencies.sort_unstable();
        RoundResult {
            accepted,
            elapsed,
            latencies,
            ..RoundResult::default()
        }
    };
    let [ceiling, ingress] = totals;
    let ceiling = summary(ceiling);
    let ingress = summary(ingress);
    println!();
    for (name, result) in [("ceiling", &ceiling), ("ingress", &ingress)] {
        println!(
            "{name:<8} {:>8.0} events/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms",
            result.per_second(),
            result.percentile_ms(50.0),
            result.percentile_ms(90.0),
            result.percentile_ms(99.0)
        );
    }
    let mut ratios: Vec<f64> = round_rates
        .iter()
        .filter(|[ceiling, ingress]| *ceiling > 0.0 && *ingress > 0.0)
        .map(|[ceiling, ingress]| ingress / ceiling)
        .collect();
    ratios.sort_by(f64::total_cmp);
    println!(
        "ratio    {:.2} of the bare JetStream ceiling over all rounds (target >= 0.80, ingress p99 < 10 ms)",
        ingress.per_second() / ceiling.per_second()
    );
    if let Some(median) = ratios.get(ratios.len() / 2) {
        let shown: Vec<String> = ratios.iter().map(|ratio| format!("{ratio:.2}")).collect();
        println!(
            "         {median:.2} median of the rounds' ratios ({})",
            shown.join(" ")
        );
    }
    shutdown.cancel();
}

/// Sends `requests` posts from `connections` concurrent loops; stops early after
/// `max_duration`.
async fn drive(
    client: &reqwest::Client,
    target: &Target,
    orders: &Arc<Orders>,
    ids: &Arc<AtomicU64>,
    connections: usize,
    requests: u64,
    max_duration: Duration,
) -> RoundResult {
    let remaining = Arc::new(AtomicU64::new(requests));
    let cpu_before = (cpu::this_process(), cpu::processes_named("nats-server"));
    let started = Instant::now();
    let deadline = started + max_duration;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections {
        let client = client.clone();
        let target = target.clone();
        let orders = orders.clone();
        let ids = ids.clone();
        let remaining = remaining.clone();
        workers.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed = 0u64;
            while Instant::now() < deadline
                && remaining
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                        left.checked_sub(1)
                    })
                    .is_ok()
            {
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let (body, signature) = orders.order(id);
                let sent = Instant::now();
                let response = client
                    .post(&target.url)
                    .headers(target.headers.clone())
                    .header(EVENT_ID_HEADER, format!("bench-{id}"))
                    .header("x-shopify-hmac-sha256", signature)
                    .body(body)
                    .send()
                    .await;
                let ok = match response {
                    Ok(response) => {
                        let accepted = response.status() == StatusCode::ACCEPTED;
                        // Reading the body returns the connection to the pool.
                        let _ = response.bytes().await;
                        accepted
                    }
                    Err(_) => false,
                };
                if ok {
                    latencies.push(sent.elapsed().as_micros() as u64);
                } else {
                    failed += 1;
                }
            }
            (latencies, failed)
        });
    }
    let mut result = RoundResult::default();
    while let Some(joined) = workers.join_next().await {
        let (latencies, failed) = joined.expect("a load worker");
        result.accepted += latencies.len() as u64;
        result.failed += failed;
        result.latencies.extend(latencies);
    }
    result.elapsed = started.elapsed();
    result.cpu_self = cpu::this_process().saturating_sub(cpu_before.0);
    result.cpu_nats = cpu::processes_named("nats-server").saturating_sub(cpu_before.1);
    result.latencies.sort_unstable();
    result
}

/// The bare ceiling: take the body, publish it durably with the request's event
/// id as `Nats-Msg-Id`, answer 202 after the ack. Nothing else.
async fn start_ceiling(nats_url: &str, subject: String) -> SocketAddr {
    #[derive(Clone)]
    struct Ceiling {
        jetstream: async_nats::jetstream::Context,
        nats: async_nats::Client,
        subject: Arc<str>,
    }
    async fn publish(
        State(ceiling): State<Ceiling>,
        headers: HeaderMap,
        body: Bytes,
    ) -> StatusCode {
        let id = headers
            .get(EVENT_ID_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match foco_bus::publish_durable(
            &ceiling.jetstream,
            &ceiling.nats,
            ceiling.subject.to_string(),
            &id,
            body,
            Duration::from_secs(5),
        )
        .await
        {
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    let nats = async_nats::connect(nats_url)
        .await
        .expect("connect to NATS");
    let ceiling = Ceiling {
        jetstream: async_nats::jetstream::new(nats.clone()),
        nats,
        subject: subject.into(),
    };
    let router = axum::Router::new()
        .route("/publish", axum::routing::post(publish))
        .with_state(ceiling);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}
