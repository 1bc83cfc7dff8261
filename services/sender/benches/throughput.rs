//! `make bench-sender`: SMS jobs per second through the sender App (claims and
//! outcomes recorded in Postgres, one HTTP call per job) to a local fake provider
//! that answers at once, against the bare ceiling of the same stream: a pull
//! consumer that only consumes and acknowledges. Both read as many jobs, alike
//! but for their ids, from the same JetStream stream in the same run, so the
//! ratio is the sender's own cost. The stream has work-queue retention: one
//! consumer reads it, and what it acknowledges is gone. So the ceiling's
//! consumer is deleted once it has read its jobs, and the sender's jobs are
//! published after that (outside either phase's time and CPU).
//!
//! Loopback only (the local NATS and Postgres, a fresh database and bus prefix),
//! bounded in count (`FOCO_BENCH_JOBS` [50000]) and time (`FOCO_BENCH_TIMEOUT`
//! [180s] per phase). `FOCO_BENCH_CONCURRENCY` [1024] is the sender's concurrency.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer::PullConsumer};
use foco_bus::{BusNames, ConsumerSettings};
use foco_harness::{ADMIN_KEY, TestControl};
use foco_proto::v1::{SmsJob, UpsertProviderRouteRequest};
use foco_testkit::{TestBus, TestDatabase};
use futures::StreamExt;
use prost::Message as _;
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

// The allocator the foco-sender binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is expected.
    let jobs: usize = setting("FOCO_BENCH_JOBS", 50_000);
    let timeout = Duration::from_secs(setting("FOCO_BENCH_TIMEOUT", 180));
    let concurrency: usize = setting("FOCO_BENCH_CONCURRENCY", 1024);

    let control = TestControl::start().await;
    let (db, bus) = (&control.db, &control.bus);
    let names = BusNames::new(&bus.prefix).expect("bus prefix");
    let control_url = control.grpc_url.clone();
    let provider = start_fake_provider();
    let account_id = create_account_and_route(&control_url, &provider.url).await;

    let nats = async_nats::connect(&bus.nats_url)
        .await
        .expect("connect to NATS");
    let jetstream = jetstream::new(nats.clone());
    foco_bus::ensure_streams(&jetstream, &names, Default::default())
        .await
        .expect("streams");
    publish_jobs(&jetstream, &names, &account_id, "ceiling", jobs).await;
    let before = CpuSample::take(provider.thread_id);
    let mut ceiling = bare_ceiling(&jetstream, &names, jobs, concurrency, timeout).await;
    ceiling.cpu = CpuSample::take(provider.thread_id).since(&before);
    jetstream
        .delete_consumer_from_stream(CEILING_CONSUMER, names.sms_stream())
        .await
        .expect("delete the ceiling's consumer");
    // The ceiling's last acks may not have reached NATS when its consumer was
    // deleted; the jobs they were for would stay in the stream for the sender.
    jetstream
        .get_stream(names.sms_stream())
        .await
        .expect("the jobs' stream")
        .purge()
        .await
        .expect("purge the ceiling's leftovers");
    publish_jobs(&jetstream, &names, &account_id, "sender", jobs).await;
    let between = CpuSample::take(provider.thread_id);
    let settings = SenderRun {
        jobs,
        concurrency,
        timeout,
        fake_thread: provider.thread_id,
    };
    let mut sender = through_the_sender(db, bus, &control_url, &settings).await;
    sender.cpu = sender.cpu.since(&between);
    let calls = provider.calls.load(Ordering::Relaxed);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages WHERE status = 'sent'")
        .fetch_one(&db.pool)
        .await
        .expect("count sent");

    println!();
    println!(
        "sender throughput benchmark ({jobs} jobs, concurrency {concurrency}, {} cores)",
        cores()
    );
    println!(
        "  bare ceiling (consume + ack)      {:>9.0} jobs/s  ({:.2}s)",
        ceiling.rate(),
        ceiling.seconds
    );
    println!(
        "  sender (claim, call, record, ack) {:>9.0} jobs/s  ({:.2}s, {} provider calls, {rows} rows sent)",
        sender.rate(),
        sender.seconds,
        calls
    );
    println!(
        "  ratio sender / ceiling            {:>9.2}",
        sender.rate() / ceiling.rate()
    );
    println!("  CPU per job (us)                  ceiling    sender");
    for (what, pick) in [
        (
            "sender process (sender, control)",
            (|cpu: &CpuSample| cpu.process.saturating_sub(cpu.fake_provider))
                as fn(&CpuSample) -> Duration,
        ),
        ("fake provider thread", |cpu| cpu.fake_provider),
        ("postgres (all backends)", |cpu| cpu.postgres),
        ("nats-server", |cpu| cpu.nats),
    ] {
        println!(
            "    {what:<32} {:>7.1}  {:>8.1}",
            ceiling.cpu_per_job(pick),
            sender.cpu_per_job(pick)
        );
    }
    let sender_total = sender
        .cpu_per_job(|cpu| cpu.process.saturating_sub(cpu.fake_provider) + cpu.postgres + cpu.nats);
    println!(
        "  {} cores / CPU per job without the fake = {:.0} jobs/s at full use",
        cores(),
        cores() as f64 * 1e6 / sender_total.max(1e-9)
    );
    // What the job's own writes, its messages and its HTTP exchange cost outside
    // the sender: a bound on any sender's rate on this machine, however lean.
    let floor = sender.cpu_per_job(|cpu| cpu.postgres + cpu.nats + cpu.fake_provider);
    let bound = cores() as f64 * 1e6 / floor.max(1e-9);
    println!(
        "  postgres + nats-server + fake alone: {bound:.0} jobs/s at full use (ratio at most {:.2})",
        bound / ceiling.rate()
    );
    if ceiling.done < jobs || sender.done < jobs {
        println!("  (incomplete: the time limit of {timeout:?} was reached)");
    }
}

struct Phase {
    done: usize,
    seconds: f64,
    cpu: CpuSample,
}

impl Phase {
    fn rate(&self) -> f64 {
        self.done as f64 / self.seconds.max(1e-9)
    }

    fn cpu_per_job(&self, pick: impl Fn(&CpuSample) -> Duration) -> f64 {
        pick(&self.cpu).as_secs_f64() * 1e6 / self.done.max(1) as f64
    }
}

/// CPU time used so far (or within a phase, after `since`) by this process, the
/// fake provider's thread, all postgres processes and nats-server.
#[derive(Debug, Default, Clone, Copy)]
struct CpuSample {
    process: Duration,
    fake_provider: Duration,
    postgres: Duration,
    nats: Duration,
}

impl CpuSample {
    fn take(fake_thread: Option<u32>) -> Self {
        use foco_testkit::cpu;
        Self {
            process: cpu::this_process(),
            fake_provider: fake_thread.map_or(Duration::ZERO, cpu::thread),
            postgres: cpu::processes_named("postgres"),
            nats: cpu::processes_named("nats-server"),
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            process: self.process.saturating_sub(earlier.process),
            fake_provider: self.fake_provider.saturating_sub(earlier.fake_provider),
            postgres: self.postgres.saturating_sub(earlier.postgres),
            nats: self.nats.saturating_sub(earlier.nats),
        }
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The fake provider: its URL, its call counter and the id of the one thread it
/// runs on (so its CPU can be told apart from the sender's).
struct FakeProvider {
    url: String,
    calls: Arc<AtomicU64>,
    thread_id: Option<u32>,
}

/// An HTTP/1.1 server on loopback that answers every request at once with a
/// fixed JSON body, on a thread of its own. Hand-written (read the head, skip the
/// body, write the answer) so that the fake costs as little as possible of the
/// CPU the sender is measured on.
fn start_fake_provider() -> FakeProvider {
    let calls = Arc::new(AtomicU64::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind fake provider");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let url = format!("http://{}/sms", listener.local_addr().expect("address"));
    let counter = calls.clone();
    let (thread_tx, thread_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = thread_tx.send(foco_testkit::cpu::current_thread_id());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("fake provider runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(answer_requests(stream, counter.clone()));
            }
        });
    });
    FakeProvider {
        url,
        calls,
        thread_id: thread_rx.recv().ok().flatten(),
    }
}

async fn answer_requests(mut stream: tokio::net::TcpStream, calls: Arc<AtomicU64>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    // A fixed-width id keeps the content length fixed.
    const HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 24\r\n\r\n";
    let mut answer = Vec::with_capacity(HEAD.len() + 24);
    let mut buffer = Vec::with_capacity(8192);
    let mut chunk = [0_u8; 8192];
    loop {
        // Answer every complete request in the buffer.
        while let Some(head_end) = find(&buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
            let body_length: usize = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse().ok())
                .unwrap_or(0);
            let total = head_end + 4 + body_length;
            if buffer.len() < total {
                break;
            }
            buffer.drain(..total);
            let number = calls.fetch_add(1, Ordering::Relaxed);
            answer.clear();
            answer.extend_from_slice(HEAD);
            answer.extend_from_slice(format!(r#"{{"id":"fake-{number:010}"}}"#).as_bytes());
            if stream.write_all(&answer).await.is_err() {
                return;
            }
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

async fn create_account_and_route(control_url: &str, provider_url: &str) -> String {
    let mut control = foco_control_client::connect(control_url, &SecretString::from(ADMIN_KEY))
        .expect("control client");
    let account = foco_harness::create_test_account(&mut control, "bench").await;
    control
        .upsert_provider_route(UpsertProviderRouteRequest {
            account: "bench".to_owned(),
            name: "fake".to_owned(),
            kind: "http".to_owned(),
            settings: HashMap::from([("url".to_owned(), provider_url.to_owned())]),
            credentials: HashMap::new(),
            is_default: true,
        })
        .await
        .expect("route");
    account.id
}

/// Publishes in windows of pending acks, so setting up 50k jobs takes seconds.
/// `phase` goes into every job's id: the same ids again would be dropped as
/// copies within the stream's duplicate window.
async fn publish_jobs(
    jetstream: &jetstream::Context,
    names: &BusNames,
    account_id: &str,
    phase: &str,
    jobs: usize,
) {
    let published = Instant::now();
    let subject = names.sms_subject(account_id);
    let now = chrono::Utc::now().timestamp_millis();
    let mut pending = Vec::with_capacity(1024);
    for number in 0..jobs {
        let event_id = format!("bench-{phase}-{number}");
        let to = format!("+5255{:08}", 10_000_000 + number);
        let job = SmsJob {
            job_id: foco_bus::job_id(&event_id, "rule-1", &to),
            account_id: account_id.to_owned(),
            event_id,
            rule_id: "rule-1".to_owned(),
            to,
            body: format!("Tu código es {number:06}"),
            priority: 1,
            created_at_ms: now,
            ..Default::default()
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(foco_bus::MSG_ID_HEADER, job.job_id.as_str());
        let ack = jetstream
            .publish_with_headers(subject.clone(), headers, job.encode_to_vec().into())
            .await
            .expect("publish");
        pending.push(ack);
        if pending.len() == 1024 {
            for ack in pending.drain(..) {
                ack.await.expect("publish ack");
            }
        }
    }
    for ack in pending {
        ack.await.expect("publish ack");
    }
    eprintln!(
        "published {jobs} jobs for the {phase} in {:.1}s",
        published.elapsed().as_secs_f64()
    );
}

/// The ceiling's durable consumer on the jobs stream.
const CEILING_CONSUMER: &str = "bench-ceiling";

/// A pull consumer that does nothing but acknowledge: what the stream allows.
async fn bare_ceiling(
    jetstream: &jetstream::Context,
    names: &BusNames,
    jobs: usize,
    concurrency: usize,
    timeout: Duration,
) -> Phase {
    let consumer: PullConsumer = foco_bus::ensure_consumer(
        jetstream,
        &ConsumerSettings {
            stream: names.sms_stream(),
            durable_name: CEILING_CONSUMER.to_owned(),
            filter_subject: names.sms_filter(),
            ack_wait: Duration::from_secs(60),
            max_ack_pending: 10_000,
            max_deliver: -1,
        },
    )
    .await
    .expect("ceiling consumer");
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(concurrency)
        .messages()
        .await
        .expect("pull");
    let started = Instant::now();
    let mut done = 0;
    while done < jobs && started.elapsed() < timeout {
        match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
            Ok(Some(Ok(message))) => {
                message.ack().await.expect("ack");
                done += 1;
            }
            Ok(Some(Err(error))) => eprintln!("ceiling pull error: {error}"),
            Ok(None) | Err(_) => break,
        }
    }
    Phase {
        done,
        seconds: started.elapsed().as_secs_f64(),
        cpu: CpuSample::default(),
    }
}

#[derive(Clone, Copy)]
struct SenderRun {
    jobs: usize,
    concurrency: usize,
    timeout: Duration,
    fake_thread: Option<u32>,
}

/// The phase's `cpu` is the reading when the jobs are done, before the sender
/// stops: its database connections close with it, and the CPU time of a
/// postgres backend that has exited can no longer be read.
async fn through_the_sender(
    db: &TestDatabase,
    bus: &TestBus,
    control_url: &str,
    run: &SenderRun,
) -> Phase {
    let SenderRun {
        jobs,
        concurrency,
        timeout,
        fake_thread,
    } = *run;
    let config = foco_sender::Config {
        bus: foco_harness::bus_config(bus, Default::default(), Default::default()),
        database_url: db.url.clone(),
        control: foco_control_client::ControlConfig::local(control_url, ADMIN_KEY),
        admin_listen: "127.0.0.1:0".parse().expect("address"),
        concurrency,
        max_ack_pending: (concurrency * 4) as i64,
        ack_wait: Duration::from_secs(60),
        provider_timeout: Duration::from_secs(15),
        allow_private_provider_hosts: true,
        quiet_hours: None,
        ..foco_sender::Config::default()
    };
    let shutdown = CancellationToken::new();
    let app = foco_sender::App::build(config, shutdown.clone())
        .await
        .expect("build sender");
    let metrics = app.metrics();
    let started = Instant::now();
    let task = tokio::spawn(app.run());
    let mut done = 0;
    while started.elapsed() < timeout {
        done = metrics.jobs_with_outcome("sent") as usize;
        if done >= jobs {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = CpuSample::take(fake_thread);
    for write in ["claim", "outcome"] {
        let (statements, rows) = metrics.write_batches(write);
        eprintln!(
            "{write} writes: {statements} statements, {:.1} rows each on average",
            rows as f64 / statements.max(1) as f64
        );
    }
    shutdown.cancel();
    let _ = task.await;
    Phase { done, seconds, cpu }
}
