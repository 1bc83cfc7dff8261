//! Senders killed over and over while provider calls are in flight, then one
//! sender finishes the work. Twice over: `foco-sender` processes killed with
//! SIGKILL, and (many more times, as it is cheaper) in-process senders whose task
//! is aborted, which like SIGKILL leaves no drain, no acks, no outcome writes. The fake provider's request log is the ground truth:
//! an idempotent provider (Telnyx, keyed by job id) sees no job twice under two
//! keys and every job ends sent; a provider without a key (Twilio) never sees a
//! job twice, and a job it may have seen without our knowing is `unknown`.

use std::collections::HashMap;
use std::time::Duration;

use foco_sender::store::ABANDONED_REASON;
use foco_testkit::FakeResponse;

use crate::harness::TestEnv;

const JOBS: usize = 24;

/// How a sender is killed.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// SIGKILL to a `foco-sender` process.
    Process,
    /// Abort of an in-process sender's task.
    Task,
}

impl Kill {
    fn rounds(self) -> usize {
        match self {
            Self::Process => 10,
            Self::Task => 20,
        }
    }

    /// How long a round waits for its moment to kill: a process also has to start.
    fn patience(self) -> Duration {
        match self {
            Self::Process => Duration::from_secs(5),
            Self::Task => Duration::from_millis(300),
        }
    }
}

enum Running {
    Process(crate::harness::SenderProcess),
    Task(crate::harness::RunningSender),
}

impl Running {
    async fn kill(self) {
        match self {
            Self::Process(process) => process.kill().await,
            Self::Task(sender) => sender.kill().await,
        }
    }
}

fn kill_config(env: &TestEnv) -> foco_sender::Config {
    let mut config = env.sender_config();
    config.concurrency = 4;
    config.provider_timeout = Duration::from_millis(300);
    config.ack_wait = Duration::from_millis(450);
    config.claim_margin = Duration::from_millis(200);
    config.shutdown_grace = Duration::from_secs(1);
    config
}

/// Publishes `JOBS` jobs, kills up to `how.rounds()` senders (fewer if every job
/// is settled before), then lets a last sender finish. Returns the job ids and
/// the number of kills.
async fn run_with_kills(env: &TestEnv, how: Kill) -> (Vec<String>, usize) {
    env.ensure_streams().await;
    let mut job_ids = Vec::new();
    for number in 0..JOBS {
        let job = env.job(&format!("+5255123400{number:02}"), &format!("job {number}"));
        env.publish(&job).await;
        job_ids.push(job.job_id);
    }
    let mut kills = 0;
    for round in 0..how.rounds() {
        if env.count_final().await == JOBS as i64 {
            break;
        }
        let calls_before = env.fake.request_count();
        let sent_before = env.count_status("sent").await;
        let sender = match how {
            Kill::Process => Running::Process(env.spawn_sender_process(&kill_config(env))),
            Kill::Task => Running::Task(env.start_sender(kill_config(env)).await),
        };
        // Even rounds kill while a call is at the provider; odd ones right after
        // an outcome was written (and before its ack). A round with nothing left
        // to do ends when its patience runs out.
        let deadline = tokio::time::Instant::now() + how.patience();
        while tokio::time::Instant::now() < deadline {
            let reached = if round % 2 == 0 {
                env.fake.request_count() > calls_before
            } else {
                env.count_status("sent").await > sent_before
            };
            if reached {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sender.kill().await;
        kills += 1;
    }
    let last = env.start_sender(kill_config(env)).await;
    env.wait_for_final(JOBS as i64, Duration::from_secs(30))
        .await;
    last.stop().await.expect("last sender stops");
    (job_ids, kills)
}

#[tokio::test]
async fn sigkilled_sender_processes_never_duplicate_through_an_idempotent_provider() {
    never_duplicate_through_an_idempotent_provider(Kill::Process).await;
}

#[tokio::test]
async fn killed_senders_never_duplicate_through_an_idempotent_provider() {
    never_duplicate_through_an_idempotent_provider(Kill::Task).await;
}

#[tokio::test]
async fn sigkilled_sender_processes_never_resend_without_an_idempotency_key() {
    never_resend_without_an_idempotency_key(Kill::Process).await;
}

#[tokio::test]
async fn killed_senders_never_resend_without_an_idempotency_key() {
    never_resend_without_an_idempotency_key(Kill::Task).await;
}

async fn never_duplicate_through_an_idempotent_provider(how: Kill) {
    let env = TestEnv::start().await;
    env.upsert_route(
        "telnyx",
        "telnyx",
        &[("base_url", &env.fake.url()), ("from", "+15550001111")],
        &[("api_key", "KEY")],
    )
    .await;
    env.fake.set_default(
        FakeResponse::status(200, r#"{"data": {"id": "tx-1", "parts": 1}}"#)
            .with_delay(Duration::from_millis(150)),
    );
    let (job_ids, kills) = run_with_kills(&env, how).await;

    let mut calls_per_key: HashMap<String, usize> = HashMap::new();
    for request in env.fake.requests() {
        let key = request
            .header("idempotency-key")
            .expect("every telnyx call carries the job id as its key");
        *calls_per_key.entry(key.to_owned()).or_default() += 1;
    }
    // The provider deduplicates on the key: one message per job, however many calls.
    let mut keys: Vec<&String> = calls_per_key.keys().collect();
    keys.sort();
    let mut expected: Vec<&String> = job_ids.iter().collect();
    expected.sort();
    assert_eq!(
        keys, expected,
        "each job reached the provider under its own key only"
    );
    for job_id in &job_ids {
        let row = env.message(job_id).await.expect("row");
        assert_eq!(row.status, "sent", "{job_id}: {row:?}");
    }
    let retried = calls_per_key.values().filter(|calls| **calls > 1).count();
    eprintln!(
        "telnyx: {} calls for {JOBS} jobs over {kills} kills ({how:?}); {retried} jobs called again with the same key",
        env.fake.request_count()
    );
}

async fn never_resend_without_an_idempotency_key(how: Kill) {
    let env = TestEnv::start().await;
    env.twilio_route().await;
    env.fake.set_default(
        FakeResponse::status(201, r#"{"sid": "SM1", "status": "queued"}"#)
            .with_delay(Duration::from_millis(150)),
    );
    let (job_ids, kills) = run_with_kills(&env, how).await;

    let mut calls_per_body: HashMap<String, usize> = HashMap::new();
    for request in env.fake.requests() {
        let body = request
            .form()
            .into_iter()
            .find(|(name, _)| name == "Body")
            .map(|(_, value)| value)
            .expect("Body field");
        *calls_per_body.entry(body).or_default() += 1;
    }
    let mut unknown = 0;
    for (number, job_id) in job_ids.iter().enumerate() {
        let calls = calls_per_body
            .get(&format!("job {number}"))
            .copied()
            .unwrap_or(0);
        let row = env.message(job_id).await.expect("row");
        assert!(calls <= 1, "{job_id} reached the provider {calls} times");
        match row.status.as_str() {
            "sent" => assert_eq!(calls, 1, "{job_id} is sent without a call"),
            "unknown" => {
                assert_eq!(row.error, ABANDONED_REASON);
                unknown += 1;
            }
            other => panic!("{job_id} ended {other}"),
        }
    }
    eprintln!(
        "twilio: {} calls for {JOBS} jobs over {kills} kills ({how:?}); {unknown} jobs unknown, none resent",
        env.fake.request_count()
    );
}
