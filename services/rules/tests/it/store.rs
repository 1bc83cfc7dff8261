//! The group-committed store: events that need no write skip Postgres, one event
//! that cannot be stored does not hold back the others of its batch, and a second
//! copy of an event inside one batch is still told apart from a redelivery, and
//! a lingering batch waits for the next event.

use std::sync::Arc;

use chrono::Utc;
use foco_proto::v1::SmsJob;
use foco_rule_engine::{EventPlan, OnRepeat, PlannedJob};
use foco_rules::store::{Applied, Entry, Pools, StoreError, StoredEvent, Writer};
use foco_runtime::batch::BatchSettings;
use uuid::Uuid;

use crate::support::Rig;

fn metrics() -> Arc<foco_rules::metrics::RulesMetrics> {
    let mut registry = prometheus_client::registry::Registry::default();
    Arc::new(foco_rules::metrics::RulesMetrics::register(&mut registry))
}

/// One pool for every kind of write.
fn one_pool(pool: sqlx::PgPool) -> Pools {
    Pools {
        durable: pool.clone(),
        deduplication: pool,
    }
}

/// A pool that can never connect: any statement through it fails.
fn unreachable_pool() -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_millis(200))
        .connect_lazy("postgres://nobody@127.0.0.1:1/none")
        .unwrap()
}

fn event(account_id: Uuid, event_id: &str, sequence: u64, deduplicate: bool) -> StoredEvent {
    StoredEvent {
        account_id,
        event_id: event_id.to_owned(),
        deduplicate,
        stream_sequence: sequence,
        received_at: Utc::now(),
        daily_cap: 0,
        timezone: "UTC".to_owned(),
        trace_context: String::new(),
    }
}

fn job(account_id: Uuid, event_id: &str, body: &str, due_at_ms: Option<i64>) -> PlannedJob {
    PlannedJob {
        job: SmsJob {
            job_id: format!("job_{event_id}"),
            account_id: account_id.to_string(),
            event_id: event_id.to_owned(),
            rule_id: Uuid::nil().to_string(),
            to: "+525512345678".to_owned(),
            body: body.to_owned(),
            due_at_ms: due_at_ms.unwrap_or(0),
            ..Default::default()
        },
        rule_name: "owner-alert".to_owned(),
        key: String::new(),
        due_at_ms,
        on_repeat: OnRepeat::Replace,
        cap: None,
    }
}

fn entry(event: StoredEvent, jobs: Vec<PlannedJob>) -> Entry {
    Entry {
        event,
        plan: EventPlan {
            jobs,
            ..EventPlan::default()
        },
    }
}

#[tokio::test]
async fn an_immediate_job_with_nothing_to_remember_never_touches_postgres() {
    let writer = Writer::start(
        one_pool(unreachable_pool()),
        BatchSettings::natural(8, 1),
        metrics(),
    );
    let account_id = Uuid::new_v4();
    let applied = writer
        .apply(entry(
            event(account_id, "evt_plain", 1, false),
            vec![job(account_id, "evt_plain", "hola", None)],
        ))
        .await
        .expect("no write needed");
    assert_eq!(applied.immediate.len(), 1);

    // The same event with the sender's own id must be remembered: it fails here.
    let remembered = writer
        .apply(entry(
            event(account_id, "evt_external", 2, true),
            vec![job(account_id, "evt_external", "hola", None)],
        ))
        .await;
    assert!(
        matches!(remembered, Err(StoreError::Database(_))),
        "{remembered:?}"
    );
}

#[tokio::test]
async fn one_unstorable_event_does_not_hold_back_the_rest_of_its_batch() {
    let rig = Rig::start().await;
    let account_id = Uuid::parse_str(&rig.source.account_id).unwrap();
    let metrics = metrics();
    let writer = Writer::start(
        one_pool(rig.state.pool.clone()),
        BatchSettings::natural(8, 1),
        metrics.clone(),
    );
    let due = Utc::now().timestamp_millis() + 3_600_000;
    // Sent together, they reach the single writer as one batch; Postgres refuses
    // text with a NUL byte, which fails the whole transaction.
    let entries = [("evt_a", "uno"), ("evt_nul", "dos\0"), ("evt_c", "tres")]
        .into_iter()
        .enumerate()
        .map(|(index, (event_id, body))| {
            entry(
                event(account_id, event_id, index as u64 + 1, true),
                vec![job(account_id, event_id, body, Some(due))],
            )
        });
    let results: Vec<Result<Applied, StoreError>> =
        futures::future::join_all(entries.map(|entry| writer.apply(entry))).await;
    assert_eq!(
        metrics.store_batch_retries.get(),
        1,
        "the three went in one batch"
    );
    assert_eq!(results[0].as_ref().expect("evt_a stored").scheduled, 1);
    assert!(
        matches!(results[1], Err(StoreError::Database(_))),
        "{:?}",
        results[1]
    );
    assert_eq!(results[2].as_ref().expect("evt_c stored").scheduled, 1);

    let stored: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM scheduled_jobs ORDER BY event_id")
            .fetch_all(&rig.state.pool)
            .await
            .unwrap();
    assert_eq!(stored, ["evt_a", "evt_c"]);
    let seen: Vec<String> =
        sqlx::query_scalar("SELECT event_id FROM seen_events ORDER BY event_id")
            .fetch_all(&rig.state.pool)
            .await
            .unwrap();
    assert_eq!(
        seen,
        ["evt_a", "evt_c"],
        "the refused event stays retryable"
    );
}

#[tokio::test]
async fn a_lingering_writer_stores_an_event_with_the_next_one() {
    let rig = Rig::start().await;
    let account_id = Uuid::parse_str(&rig.source.account_id).unwrap();
    let writer = Writer::start(
        one_pool(rig.state.pool.clone()),
        BatchSettings {
            max_batch: 2,
            flushes_in_flight: 1,
            linger: std::time::Duration::from_secs(3600),
        },
        metrics(),
    );
    let plan = |event_id: &str, sequence| {
        entry(
            event(account_id, event_id, sequence, true),
            vec![job(account_id, event_id, "hola", None)],
        )
    };
    // An event with none just before it goes at once; one right after it
    // waits for company.
    let alone = writer.apply(plan("evt_alone", 1)).await.unwrap();
    assert_eq!(alone.immediate.len(), 1);
    let first = tokio::spawn({
        let writer = writer.clone();
        let entry = plan("evt_first", 2);
        async move { writer.apply(entry).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!first.is_finished(), "the first event waits for company");
    let second = writer.apply(plan("evt_second", 3)).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!((first.immediate.len(), second.immediate.len()), (1, 1));
    let seen: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM seen_events WHERE event_id IN ('evt_first', 'evt_second')",
    )
    .fetch_one(&rig.state.pool)
    .await
    .unwrap();
    assert_eq!(seen, 2);
}

#[tokio::test]
async fn a_second_copy_in_the_same_batch_is_a_duplicate_and_a_redelivery_is_not() {
    let rig = Rig::start().await;
    let account_id = Uuid::parse_str(&rig.source.account_id).unwrap();
    let writer = Writer::start(
        one_pool(rig.state.pool.clone()),
        BatchSettings::natural(8, 1),
        metrics(),
    );
    let plan = |sequence| {
        entry(
            event(account_id, "evt_twice", sequence, true),
            vec![job(account_id, "evt_twice", "hola", None)],
        )
    };
    // Stream sequence 7 is the first copy; 7 again is its redelivery; 9 is a
    // second copy published later.
    let results =
        futures::future::join_all([plan(7), plan(7), plan(9)].map(|entry| writer.apply(entry)))
            .await;
    let applied: Vec<Applied> = results.into_iter().map(Result::unwrap).collect();
    assert_eq!(applied[0].duplicate_of_sequence, None);
    assert_eq!(applied[0].immediate.len(), 1);
    assert_eq!(applied[1].duplicate_of_sequence, None);
    assert_eq!(applied[2].duplicate_of_sequence, Some(7));
    assert!(applied[2].immediate.is_empty());

    // In later batches, the stored row answers: a copy is a duplicate of the
    // first sequence, a redelivery of that sequence is processed again.
    let later = writer.apply(plan(9)).await.unwrap();
    assert_eq!(later.duplicate_of_sequence, Some(7));
    let redelivered = writer.apply(plan(7)).await.unwrap();
    assert_eq!(redelivered.duplicate_of_sequence, None);
    assert_eq!(redelivered.immediate.len(), 1);

    // A new writer tries the plain insert first; the stored row makes it
    // fail, and the arbitrated statement answers as above.
    let restarted = || {
        Writer::start(
            one_pool(rig.state.pool.clone()),
            BatchSettings::natural(8, 1),
            metrics(),
        )
    };
    let redelivered = restarted().apply(plan(7)).await.unwrap();
    assert_eq!(redelivered.duplicate_of_sequence, None);
    assert_eq!(redelivered.immediate.len(), 1);
    let later = restarted().apply(plan(9)).await.unwrap();
    assert_eq!(later.duplicate_of_sequence, Some(7));
    let stored: Vec<i64> =
        sqlx::query_scalar("SELECT stream_sequence FROM seen_events WHERE event_id = 'evt_twice'")
            .fetch_all(&rig.state.pool)
            .await
            .unwrap();
    assert_eq!(stored, [7]);
}

#[tokio::test]
async fn every_connection_bounds_its_statements_and_idle_transactions() {
    let rig = Rig::start().await;
    let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
        .fetch_one(&rig.state.pool)
        .await
        .unwrap();
    assert_eq!(timeout, "30s");
    let idle: String = sqlx::query_scalar("SHOW idle_in_transaction_session_timeout")
        .fetch_one(&rig.state.pool)
        .await
        .unwrap();
    assert_eq!(idle, "1min");
}

#[tokio::test]
async fn only_deduplication_commits_without_waiting_for_the_disk() {
    let rig = Rig::start().await;
    let account_id = Uuid::parse_str(&rig.source.account_id).unwrap();
    let relaxed = foco_runtime::postgres::connect_without_commit_wait(&rig.database_url(), 2)
        .await
        .unwrap();
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit")
        .fetch_one(&relaxed)
        .await
        .unwrap();
    assert_eq!(setting, "off");
    // The durable pool is unreachable: what must be durable fails, what only
    // deduplicates is stored through the other pool.
    let writer = Writer::start(
        Pools {
            durable: unreachable_pool(),
            deduplication: relaxed,
        },
        BatchSettings::natural(8, 1),
        metrics(),
    );
    let remembered = writer
        .apply(entry(
            event(account_id, "evt_immediate", 1, true),
            vec![job(account_id, "evt_immediate", "hola", None)],
        ))
        .await
        .expect("deduplication needs no durable commit");
    assert_eq!(remembered.immediate.len(), 1);
    let seen: i64 =
        sqlx::query_scalar("SELECT count(*) FROM seen_events WHERE event_id = 'evt_immediate'")
            .fetch_one(&rig.state.pool)
            .await
            .unwrap();
    assert_eq!(seen, 1);

    let due = Utc::now().timestamp_millis() + 3_600_000;
    let delayed = writer
        .apply(entry(
            event(account_id, "evt_delayed", 2, true),
            vec![job(account_id, "evt_delayed", "hola", Some(due))],
        ))
        .await;
    assert!(
        matches!(delayed, Err(StoreError::Database(_))),
        "a delayed job is the only record of its SMS: {delayed:?}"
    );
}
