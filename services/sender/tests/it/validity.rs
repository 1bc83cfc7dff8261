//! Message validity: a job that reaches the sender past its deadline
//! (`SmsJob.expires_at_ms`) is recorded `expired` with the reason and never
//! sent; one within it is sent as usual.

use std::time::Duration;

use foco_sender::Outcome;
use foco_testkit::FakeResponse;
use sqlx::Row;

use crate::handler::fixture;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn a_job_past_its_deadline_is_recorded_expired_and_never_sent() {
    let fixture = fixture(8).await;
    // A reminder due two days ago with an hour of validity (an outage, or a
    // send_at long past).
    let mut job = fixture.job("+525512345678");
    job.due_at_ms = now_ms() - 2 * 24 * 3_600_000;
    job.expires_at_ms = job.due_at_ms + 3_600_000;
    let outcome = fixture.handler.handle(&job, 1).await;
    let Outcome::Expired { reason } = &outcome else {
        panic!("expected expired, got {outcome:?}");
    };
    assert!(reason.starts_with("expired: valid until "), "{reason}");
    assert!(reason.contains("(due "), "{reason}");
    assert_eq!(outcome.label(), "expired");
    assert!(
        matches!(outcome.ack_kind(), async_nats::jetstream::AckKind::Ack),
        "a recorded expiry leaves the stream"
    );
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("expired".to_owned(), 0, reason.clone())
    );
    let history: serde_json::Value = sqlx::query("SELECT history FROM messages WHERE job_id = $1")
        .bind(&job.job_id)
        .fetch_one(&fixture.db.pool)
        .await
        .unwrap()
        .get("history");
    assert_eq!(history[0]["outcome"], "expired");
    assert_eq!(history[0]["detail"], reason.as_str());

    // A redelivery finds it finished and calls nobody either.
    assert_eq!(
        fixture.handler.handle(&job, 2).await,
        Outcome::Finished {
            status: "expired".to_owned()
        }
    );
    assert_eq!(fixture.fake.request_count(), 0);
}

#[tokio::test]
async fn a_job_within_its_validity_is_sent() {
    let fixture = fixture(8).await;
    let mut job = fixture.job("+525512345678");
    job.created_at_ms = now_ms();
    job.expires_at_ms = now_ms() + 3_600_000;
    assert_eq!(fixture.handler.handle(&job, 1).await, Outcome::Sent);
    assert_eq!(fixture.row(&job.job_id).await.0, "sent");
    assert_eq!(fixture.fake.request_count(), 1);

    // No deadline (jobs from before validity existed, requeues): sent.
    let old_style = fixture.job("+525512345679");
    assert_eq!(fixture.handler.handle(&old_style, 1).await, Outcome::Sent);
    assert_eq!(fixture.fake.request_count(), 2);
}

#[tokio::test]
async fn a_retried_job_whose_deadline_passes_meanwhile_expires_instead_of_a_new_call() {
    let fixture = fixture(8).await;
    fixture
        .fake
        .push_responses([FakeResponse::status(503, "down")]);
    let mut job = fixture.job("+525512345678");
    job.created_at_ms = now_ms();
    job.expires_at_ms = now_ms() + 3_600_000;
    let first = fixture.handler.handle(&job, 1).await;
    assert!(matches!(first, Outcome::Retry { .. }), "{first:?}");
    assert_eq!(fixture.row(&job.job_id).await.0, "queued");

    // The retry comes back after its deadline (a long outage of the provider):
    // the same job, as the stream redelivers it, seen later.
    job.expires_at_ms = now_ms() - 1;
    let retried = fixture.handler.handle(&job, 2).await;
    assert!(matches!(retried, Outcome::Expired { .. }), "{retried:?}");
    let (status, attempts, error) = fixture.row(&job.job_id).await;
    assert_eq!((status.as_str(), attempts), ("expired", 1));
    assert!(error.starts_with("expired: valid until "), "{error}");
    assert_eq!(
        fixture.fake.request_count(),
        1,
        "only the first call was made"
    );
}

#[tokio::test]
async fn an_opted_out_recipient_is_recorded_opted_out_even_past_the_deadline() {
    let fixture = fixture(8).await;
    sqlx::query(
        "INSERT INTO opt_outs (account_id, phone, source) VALUES ($1, '+525512345678', 'api')",
    )
    .bind(fixture.account_id)
    .execute(&fixture.db.pool)
    .await
    .unwrap();
    let mut job = fixture.job("+525512345678");
    job.expires_at_ms = now_ms() - Duration::from_secs(60).as_millis() as i64;
    assert_eq!(fixture.handler.handle(&job, 1).await, Outcome::OptedOut);
    assert_eq!(fixture.row(&job.job_id).await.0, "opted-out");
    assert_eq!(fixture.fake.request_count(), 0);
}
