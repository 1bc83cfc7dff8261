//! Delayed jobs: stored, cancelled, replaced, published once when due, by any
//! number of replicas, after downtime too.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use foco_proto::v1::{SmsJob, UpsertRuleRequest};
use prost::Message as _;

use crate::support::{ManualClock, Rig};

const SIGNUP: &str = r#"{"email": "ana@example.com", "phone": "55 1234 5678", "name": "Ana"}"#;
const PURCHASE: &str = r#"{"customer": {"email": "ana@example.com"}, "total": "120.00"}"#;

fn reminder() -> UpsertRuleRequest {
    UpsertRuleRequest {
        name: "reminder".into(),
        when: r#"event_type == "signup""#.into(),
        to: vec!["{{ event.phone }}".into()],
        body: "{{ event.name }}, tu código BIENVENIDA10 sigue vigente".into(),
        delay: "1h".into(),
        key: "{{ event.email }}".into(),
        cancel_when: r#"event_type == "purchase""#.into(),
        cancel_key: "{{ event.customer.email }}".into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_cancel_one_millisecond_before_the_due_time_wins() {
    let start = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let clock = ManualClock::at(start);
    let rig = Rig::start_with_clock(Arc::new(clock.clone())).await;
    rig.upsert_rule_with(reminder()).await;
    let received_at = start.timestamp_millis();
    rig.publish_external_event("evt-signup", "evt-signup", "signup", SIGNUP, received_at)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(
        rig.scheduled_states().await,
        vec![("pending".to_owned(), 1)]
    );

    let due = start + chrono::Duration::hours(1);
    clock.set(due - chrono::Duration::milliseconds(1));
    assert_eq!(rig.scheduler.run_once().await.unwrap(), 0, "not due yet");

    rig.publish_external_event(
        "evt-purchase",
        "evt-purchase",
        "purchase",
        PURCHASE,
        received_at,
    )
    .await;
    rig.wait_until_idle().await;
    assert_eq!(
        rig.scheduled_states().await,
        vec![("cancelled".to_owned(), 1)]
    );

    clock.set(due + chrono::Duration::milliseconds(1));
    assert_eq!(
        rig.scheduler.run_once().await.unwrap(),
        0,
        "a cancelled job is never published"
    );
    assert!(rig.read_jobs().await.is_empty());
    assert_eq!(rig.reports("cancelled").await.len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_due_job_is_published_exactly_at_its_time_and_not_before() {
    let (rig, clock, start) = reminder_pending().await;

    let due = start + chrono::Duration::hours(1);
    clock.set(due - chrono::Duration::milliseconds(1));
    assert_eq!(rig.scheduler.run_once().await.unwrap(), 0);
    assert!(rig.read_jobs().await.is_empty());
    // The App's own scheduler loop reads the same clock: either pass may publish.
    clock.set(due);
    rig.scheduler.run_once().await.unwrap();
    let jobs = rig.jobs(1).await;
    assert_eq!(rig.state.metrics.scheduled_published.get(), 1);
    assert_eq!(jobs[0].to, "+525512345678");
    assert_eq!(jobs[0].body, "Ana, tu código BIENVENIDA10 sigue vigente");
    assert_eq!(jobs[0].due_at_ms, due.timestamp_millis());
    assert_eq!(
        rig.scheduled_states().await,
        vec![("published".to_owned(), 1)]
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_repeated_trigger_replaces_or_keeps_the_pending_job() {
    let rig = Rig::start().await;
    rig.upsert_rule_with(reminder()).await;
    let now = Utc::now().timestamp_millis();
    rig.publish_external_event("evt-1", "evt-1", "signup", SIGNUP, now)
        .await;
    rig.publish_external_event("evt-2", "evt-2", "signup", SIGNUP, now)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(
        rig.scheduled_states().await,
        vec![("cancelled".to_owned(), 1), ("pending".to_owned(), 1)]
    );
    assert_eq!(rig.reports("replaced").await.len(), 1);

    let mut keep_first = reminder();
    keep_first.on_repeat = "keep_first".into();
    rig.upsert_rule_with(keep_first).await;
    rig.publish_external_event("evt-3", "evt-3", "signup", SIGNUP, now)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(
        rig.scheduled_states().await,
        vec![("cancelled".to_owned(), 1), ("pending".to_owned(), 1)]
    );
    assert_eq!(rig.reports("kept_first").await.len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_second_copy_of_an_event_days_later_is_dropped() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "gracias")
        .await;
    rig.upsert_rule_with(reminder()).await;
    // Same sender id, published again with another Nats-Msg-Id: as a retry after
    // JetStream's duplicate window would arrive.
    let now = Utc::now().timestamp_millis();
    rig.publish_external_event("evt-stripe", "copy-1", "signup", SIGNUP, now)
        .await;
    rig.wait_until_idle().await;
    rig.publish_external_event("evt-stripe", "copy-2", "signup", SIGNUP, now)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(rig.read_jobs().await.len(), 1);
    assert_eq!(
        rig.scheduled_states().await,
        vec![("pending".to_owned(), 1)]
    );
    rig.stop().await;
}

#[tokio::test]
async fn frequency_caps_hold_per_recipient() {
    let rig = Rig::start().await;
    rig.upsert_rule_with(UpsertRuleRequest {
        name: "promo".into(),
        to: vec!["{{ event.phone }}".into()],
        body: "promo".into(),
        cap_count: 1,
        cap_window: "24h".into(),
        ..Default::default()
    })
    .await;
    rig.publish_event("evt-a", "evt-a", "x", r#"{"phone": "5512345678"}"#)
        .await;
    rig.publish_event("evt-b", "evt-b", "x", r#"{"phone": "+52 55 1234 5678"}"#)
        .await;
    rig.publish_event("evt-c", "evt-c", "x", r#"{"phone": "5587654321"}"#)
        .await;
    rig.wait_until_idle().await;
    let mut to: Vec<String> = rig
        .read_jobs()
        .await
        .into_iter()
        .map(|job| job.to)
        .collect();
    to.sort();
    assert_eq!(to, ["+525512345678", "+525587654321"]);
    assert_eq!(rig.reports("capped").await.len(), 1);
    rig.stop().await;
}

fn due_job(rig: &Rig, index: usize) -> SmsJob {
    SmsJob {
        job_id: format!("job_bulk_{index:05}"),
        account_id: rig.source.account_id.clone(),
        event_id: format!("evt_bulk_{index:05}"),
        rule_id: "00000000-0000-0000-0000-000000000000".into(),
        to: "+525512345678".into(),
        body: format!("bulk {index}"),
        ..Default::default()
    }
}

/// `count` pending jobs of a rule that exists (the scheduler cancels jobs of
/// deleted rules), due `overdue_by` ago.
async fn insert_due_jobs(rig: &Rig, count: usize, overdue_by: chrono::Duration) {
    let account_id = uuid_of(&rig.source.account_id);
    rig.upsert_rule(
        "bulk",
        r#"event_type == "never""#,
        &["+525512345678"],
        "bulk",
    )
    .await;
    let rule_id: sqlx::types::Uuid = sqlx::query_scalar("SELECT id FROM rules WHERE name = 'bulk'")
        .fetch_one(&rig.control.db.pool)
        .await
        .unwrap();
    let due_at = Utc::now() - overdue_by;
    for chunk in (0..count).collect::<Vec<_>>().chunks(500) {
        let ids: Vec<String> = chunk
            .iter()
            .map(|index| format!("job_bulk_{index:05}"))
            .collect();
        let jobs: Vec<Vec<u8>> = chunk
            .iter()
            .map(|index| due_job(rig, *index).encode_to_vec())
            .collect();
        sqlx::query(
            "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, recipient, body, due_at,
                                         trigger_received_at, job)
             SELECT id, $2, $5, id, '+525512345678', 'bulk', $3, $3, job
             FROM UNNEST($1::text[], $4::bytea[]) AS t(id, job)",
        )
        .bind(&ids)
        .bind(account_id)
        .bind(due_at)
        .bind(&jobs)
        .bind(rule_id)
        .execute(&rig.control.db.pool)
        .await
        .unwrap();
    }
}

fn uuid_of(text: &str) -> sqlx::types::Uuid {
    text.parse().unwrap()
}

#[tokio::test]
async fn two_replicas_publish_two_thousand_due_jobs_exactly_once() {
    let rig = Rig::start().await;
    let second = rig.start_replica().await;
    insert_due_jobs(&rig, 2000, chrono::Duration::seconds(1)).await;
    foco_testkit::wait_for("2000 jobs published", Duration::from_secs(60), || async {
        let published = rig.state.metrics.scheduled_published.get()
            + second.state.metrics.scheduled_published.get();
        (published >= 2000).then_some(())
    })
    .await;
    let first_count = rig.state.metrics.scheduled_published.get();
    let second_count = second.state.metrics.scheduled_published.get();
    assert_eq!(first_count + second_count, 2000, "each job published once");
    assert_eq!(
        rig.state.metrics.scheduled_duplicates.get()
            + second.state.metrics.scheduled_duplicates.get(),
        0
    );
    assert_eq!(rig.read_jobs().await.len(), 2000);
    assert_eq!(
        rig.scheduled_states().await,
        vec![("published".to_owned(), 2000)]
    );
    second.stop().await;
    rig.stop().await;
}

#[tokio::test]
async fn overdue_jobs_are_published_after_a_restart() {
    let mut rig = Rig::start().await;
    rig.stop_scheduling().await;
    insert_due_jobs(&rig, 50, chrono::Duration::hours(3)).await;
    let replica = rig.start_replica().await;
    let jobs = rig.jobs(50).await;
    assert_eq!(jobs.len(), 50);
    foco_testkit::wait_for("rows marked published", Duration::from_secs(10), || async {
        (rig.scheduled_states().await == vec![("published".to_owned(), 50)]).then_some(())
    })
    .await;
    replica.stop().await;
}

#[tokio::test]
async fn a_due_job_waits_for_a_cancel_received_before_it_that_rules_has_not_evaluated() {
    let (rig, clock, start) = reminder_pending_then_rules_stopped().await;

    // Rules falls behind: the purchase, received ten minutes before the
    // reminder is due, waits on the stream unevaluated when the job falls due.
    let due = start + chrono::Duration::hours(1);
    let purchase_received = due - chrono::Duration::minutes(10);
    rig.publish_external_event(
        "evt-purchase",
        "evt-purchase",
        "purchase",
        PURCHASE,
        purchase_received.timestamp_millis(),
    )
    .await;
    clock.set(due + chrono::Duration::milliseconds(1));
    assert_eq!(
        rig.scheduler.run_once().await.unwrap(),
        0,
        "held until the purchase is evaluated"
    );

    let replica = rig.start_replica().await;
    rig.wait_until_idle().await;
    assert_eq!(
        rig.scheduled_states().await,
        vec![("cancelled".to_owned(), 1)]
    );
    assert_eq!(rig.scheduler.run_once().await.unwrap(), 0);
    assert!(rig.read_jobs().await.is_empty());
    replica.stop().await;
}

#[tokio::test]
async fn an_event_stuck_unevaluated_holds_due_jobs_for_a_bounded_time() {
    let (rig, clock, start) = reminder_pending_then_rules_stopped().await;
    let due = start + chrono::Duration::hours(1);
    // An unrelated event, received before the due time, never evaluated.
    rig.publish_external_event(
        "evt-other",
        "evt-other",
        "page_view",
        "{}",
        (due - chrono::Duration::minutes(1)).timestamp_millis(),
    )
    .await;
    clock.set(due + chrono::Duration::seconds(1));
    assert_eq!(rig.scheduler.run_once().await.unwrap(), 0, "held");
    // The rig's scheduler holds at most 30 s.
    clock.set(due + chrono::Duration::seconds(31));
    assert_eq!(
        rig.scheduler.run_once().await.unwrap(),
        1,
        "published once the hold is over"
    );
}

/// A reminder pending for a sign-up received at `start`, on a manual clock,
/// with the rig's rules App running.
async fn reminder_pending() -> (Rig, ManualClock, chrono::DateTime<Utc>) {
    let start = Utc.with_ymd_and_hms(2026, 11, 29, 12, 0, 0).unwrap();
    let clock = ManualClock::at(start);
    let rig = Rig::start_with_clock(Arc::new(clock.clone())).await;
    rig.upsert_rule_with(reminder()).await;
    rig.publish_external_event(
        "evt-signup",
        "evt-signup",
        "signup",
        SIGNUP,
        start.timestamp_millis(),
    )
    .await;
    rig.wait_until_idle().await;
    (rig, clock, start)
}

/// The same, then the rig's rules App stopped (its scheduler still callable by
/// hand).
async fn reminder_pending_then_rules_stopped() -> (Rig, ManualClock, chrono::DateTime<Utc>) {
    let (mut rig, clock, start) = reminder_pending().await;
    rig.stop_scheduling().await;
    (rig, clock, start)
}

#[tokio::test]
async fn pending_jobs_of_a_deleted_or_disabled_rule_are_cancelled_not_sent() {
    let (rig, clock, start) = reminder_pending().await;

    // Control lists the rule as deleted through the API (which cancels at once);
    // this is the job that escaped: stored while the deletion ran.
    sqlx::query("DELETE FROM rules WHERE name = 'reminder'")
        .execute(&rig.control.db.pool)
        .await
        .unwrap();
    clock.set(start + chrono::Duration::hours(2));
    assert_eq!(rig.scheduler.run_once().await.unwrap(), 0);
    let states: Vec<(String, String)> =
        sqlx::query_as("SELECT state, cancel_reason FROM scheduled_jobs")
            .fetch_all(&rig.control.db.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [("cancelled".to_owned(), "rule deleted".to_owned())]
    );
    assert!(rig.read_jobs().await.is_empty());
    rig.stop().await;
}
