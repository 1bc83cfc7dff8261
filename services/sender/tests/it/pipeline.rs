//! The sender App over real NATS JetStream, Postgres and control: jobs published
//! on FOCO_SMS end as provider requests and message rows.

use std::time::Duration;

use base64::Engine as _;
use foco_testkit::FakeResponse;

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn http_job_is_sent_once_with_its_idempotency_key() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("55 1234 5678", "Ale Ruiz acaba de comprar $500");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(row.attempts, 1);
    assert_eq!(row.recipient, "+525512345678");
    assert_eq!(row.provider, "gateway");
    assert_eq!(row.provider_message_id, "fake-1");
    assert!(row.has_sent_at);
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/sms");
    assert_eq!(
        requests[0].header("idempotency-key"),
        Some(job.job_id.as_str())
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer gateway-token")
    );
    let body = requests[0].json();
    assert_eq!(body["to"], "+525512345678");
    assert_eq!(body["from"], "FOCO");
    assert_eq!(body["body"], "Ale Ruiz acaba de comprar $500");
    assert_eq!(body["job_id"], job.job_id.as_str());
    assert_eq!(body["event_id"], job.event_id.as_str());
    assert_eq!(body["account_id"], env.account.id.as_str());

    // The job's metrics are counted just after its outcome row is written.
    sender.wait_for_jobs("sent", 1).await;
    let (status, _) = sender.admin_get("/readyz").await;
    assert_eq!(status, 200);
    let (status, metrics) = sender.admin_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"foco_sender_jobs_total{outcome="sent"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("foco_sender_provider_call_duration_seconds_bucket"),
        "{metrics}"
    );
    sender.stop().await.expect("sender stops cleanly");
}

#[tokio::test]
async fn twilio_job_uses_the_messages_api_format() {
    let env = TestEnv::start().await;
    env.upsert_route(
        "twilio",
        "twilio",
        &[("base_url", &env.fake.url()), ("from", "+15005550006")],
        &[("account_sid", "ACfeedface"), ("auth_token", "tw-token")],
    )
    .await;
    env.fake.push_responses([FakeResponse::status(
        201,
        r#"{"sid": "SMabc123", "status": "queued"}"#,
    )]);
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("(415) 555-2671 ", "Tu código: 4921");
    let mut job = job;
    job.to = "+1 415 555 2671".to_owned();
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(row.provider_message_id, "SMabc123");
    let request = env.fake.requests().remove(0);
    assert_eq!(
        request.path,
        "/2010-04-01/Accounts/ACfeedface/Messages.json"
    );
    let basic = base64::engine::general_purpose::STANDARD.encode("ACfeedface:tw-token");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Basic {basic}").as_str())
    );
    let form = request.form();
    assert!(
        form.contains(&("To".to_owned(), "+14155552671".to_owned())),
        "{form:?}"
    );
    assert!(
        form.contains(&("From".to_owned(), "+15005550006".to_owned())),
        "{form:?}"
    );
    assert!(
        form.contains(&("Body".to_owned(), "Tu código: 4921".to_owned())),
        "{form:?}"
    );
}

#[tokio::test]
async fn the_same_job_published_twice_is_sent_once() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    // Different Nats-Msg-Ids get past JetStream's dedup: two stream messages, one job.
    env.publish_with_id(&job, &format!("{}-a", job.job_id))
        .await;
    env.publish_with_id(&job, &format!("{}-b", job.job_id))
        .await;

    env.wait_for_status(&job.job_id, "sent", WAIT).await;
    sender.wait_for_jobs("duplicate", 1).await;
    // The row says sent a moment before the metric counts it.
    sender.wait_for_jobs("sent", 1).await;
    assert_eq!(sender.metrics.jobs_with_outcome("sent"), 1);
    assert_eq!(env.fake.request_count(), 1);
}

#[tokio::test]
async fn a_transient_failure_is_retried_once_then_sent() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake
        .push_responses([FakeResponse::status(503, "maintenance")]);
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(row.attempts, 2);
    assert_eq!(row.error, "");
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 2);
    // The backoff after the first attempt is 1 s ± 20 %.
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(gap >= Duration::from_millis(750), "retried after {gap:?}");
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake
        .push_responses([FakeResponse::status(429, "slow down").with_header("Retry-After", "3")]);
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    env.wait_for_status(&job.job_id, "sent", WAIT).await;
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 2);
    let gap = requests[1].received_at - requests[0].received_at;
    assert!(
        gap >= Duration::from_secs(3),
        "retried after {gap:?}, before Retry-After"
    );
}

#[tokio::test]
async fn a_permanent_refusal_is_recorded_as_failed() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.push_responses([FakeResponse::status(
        400,
        r#"{"message": "destination blocked"}"#,
    )]);
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "failed", WAIT).await;
    assert_eq!(row.error, "HTTP 400: destination blocked");
    assert_eq!(row.attempts, 1);
    sender.wait_for_jobs("failed", 1).await;
    assert_eq!(env.fake.request_count(), 1);
}

#[tokio::test]
async fn an_invalid_number_fails_without_a_request() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("55 12", "hola");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "failed", WAIT).await;
    assert_eq!(row.error, "invalid phone number");
    assert_eq!(row.recipient, "55 12");
    assert_eq!(row.attempts, 0);
    sender.wait_for_jobs("failed", 1).await;
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn undecodable_jobs_are_terminated() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    env.publish_bytes(
        bytes::Bytes::from_static(b"\xff\xff\xff not protobuf"),
        "poison-1",
    )
    .await;
    let job = env.job("+525512345678", "after the poison");
    env.publish(&job).await;

    sender.wait_for_jobs("poison", 1).await;
    env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(env.fake.request_count(), 1);
}

/// A body Postgres cannot store (a NUL byte) fails the same way on every
/// delivery: the job is recorded failed with the reason, from a cleaned copy, and
/// the jobs behind it are sent. A job id that cannot be a job's is terminated.
#[tokio::test]
async fn jobs_that_cannot_be_stored_are_recorded_failed_not_retried() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let mut config = env.sender_config();
    config.concurrency = 1;
    let sender = env.start_sender(config).await;
    let poison = env.job("+525512345678", "hola\0 mundo");
    env.publish(&poison).await;
    let mut oversized = env.job("+525512345678", "id demasiado largo");
    oversized.job_id = "j".repeat(5_000);
    env.publish_with_id(&oversized, "oversized-1").await;
    let job = env.job("+525512345678", "after the poison");
    env.publish(&job).await;

    env.wait_for_status(&job.job_id, "sent", WAIT).await;
    let row = env.wait_for_status(&poison.job_id, "failed", WAIT).await;
    assert!(
        row.error.contains("cannot be stored"),
        "reason recorded: {}",
        row.error
    );
    let body: String = sqlx::query_scalar("SELECT body FROM messages WHERE job_id = $1")
        .bind(&poison.job_id)
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(body, "hola mundo");
    sender.wait_for_jobs("poison", 1).await;
    assert_eq!(env.fake.request_count(), 1, "only the good job was sent");
}

#[tokio::test]
async fn console_jobs_are_printed_and_written_to_the_outbox() {
    let env = TestEnv::start().await;
    env.upsert_route("local", "console", &[], &[]).await;
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("55 1234 5678", "Bienvenida: usa BIENVENIDA10");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(row.provider_message_id, format!("console-{}", job.job_id));
    let outbox =
        std::fs::read_to_string(env.outbox_dir.join("outbox.jsonl")).expect("outbox written");
    let line: serde_json::Value = serde_json::from_str(outbox.lines().next().unwrap()).unwrap();
    assert_eq!(line["to"], "+525512345678");
    assert_eq!(line["body"], "Bienvenida: usa BIENVENIDA10");
    assert_eq!(line["job_id"], job.job_id.as_str());
}

#[tokio::test]
async fn shutdown_drains_the_job_in_flight() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.push_responses([
        FakeResponse::status(200, r#"{"id": "slow-1"}"#).with_delay(Duration::from_secs(1))
    ]);
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    env.fake.wait_for_requests(1, WAIT).await;
    sender.stop().await.expect("sender stops cleanly");
    // `run` returned only after the in-flight job was recorded.
    let row = env.message(&job.job_id).await.expect("message row");
    assert_eq!(row.status, "sent");
    assert_eq!(row.provider_message_id, "slow-1");
}

#[tokio::test]
async fn credentials_echoed_by_a_provider_never_reach_the_message() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.push_responses([FakeResponse::status(
        401,
        r#"{"message": "token Bearer gateway-token is revoked"}"#,
    )]);
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    // A refusal of our credentials is the provider's problem: dead-lettered, so
    // it can be retried once the route is fixed.
    let row = env.wait_for_status(&job.job_id, "failed", WAIT).await;
    assert_eq!(row.error, "HTTP 401: token [redacted] is revoked");
    let history: String = sqlx::query_scalar("SELECT history::text FROM dead_letters")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert!(!history.contains("gateway-token"), "{history}");
}
