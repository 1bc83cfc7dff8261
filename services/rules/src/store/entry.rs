//! One transaction for a batch of events' plans. Bulk statements do what cannot
//! interact between events (deduplication, keyless delayed jobs, reports); the
//! rest (cancellations, keyed jobs, caps) runs event by event in arrival order,
//! after the advisory locks of the whole batch are taken in one statement, in one
//! order, so concurrent batches (other writers, other replicas) cannot deadlock.

use std::collections::{HashMap, HashSet, hash_map};

use foco_rule_engine::{Cap, OnRepeat, PlannedJob};
use foco_runtime::postgres::{FreshRowsFirst, InsertForm};
use prost::Message as _;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Applied, Connections, Entry, StoredEvent};

/// Lock spaces (the seed of `hashtextextended`): rule caps and the daily cap,
/// and correlation keys.
const CAP_LOCKS: i64 = 0;
const KEY_LOCKS: i64 = 1;

/// A line of `foco events show`.
struct Report {
    account_id: Uuid,
    event_id: String,
    rule_id: String,
    rule_name: String,
    kind: &'static str,
    detail: String,
}

impl Report {
    fn new(
        event: &StoredEvent,
        rule_id: &str,
        rule_name: &str,
        kind: &'static str,
        detail: String,
    ) -> Self {
        Self {
            account_id: event.account_id,
            event_id: event.event_id.clone(),
            rule_id: rule_id.to_owned(),
            rule_name: rule_name.to_owned(),
            kind,
            detail,
        }
    }
}

/// A keyless delayed job: nothing else in the batch can touch it, so it is
/// inserted with the others in one statement.
struct KeylessJob<'a> {
    entry: usize,
    rule_name: &'a str,
    planned: &'a PlannedJob,
    due_at_ms: i64,
}

/// Stores `entries` in one transaction; one `Applied` per entry, in order.
/// `pools.deduplication` takes batches that only deduplicate (see [`super::Pools`]).
pub(super) async fn write(
    pools: &Connections,
    entries: &[&Entry],
) -> Result<Vec<Applied>, sqlx::Error> {
    let mut applied: Vec<Applied> = entries.iter().map(|_| Applied::default()).collect();
    if entries.iter().all(|entry| only_deduplicates(entry)) {
        // The usual case under load (events with the sender's own id and
        // immediate jobs): one statement, atomic on its own, without the round
        // trips of BEGIN and COMMIT, and without waiting for the disk.
        let mut connection = pools.deduplication.acquire().await?;
        let forms = Some(&*pools.deduplication_forms);
        mark_duplicates(&mut connection, entries, &mut applied, forms).await?;
        connection.keep();
        for (entry, applied) in entries.iter().zip(applied.iter_mut()) {
            if applied.duplicate_of_sequence.is_none() {
                applied.immediate = entry.plan.jobs.clone();
            }
        }
        return Ok(applied);
    }
    let mut connection = pools.durable.acquire().await?;
    let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
    // A failed statement would end the transaction: the arbitrated form only.
    mark_duplicates(&mut transaction, entries, &mut applied, None).await?;
    let live: Vec<usize> = (0..entries.len())
        .filter(|&index| applied[index].duplicate_of_sequence.is_none())
        .collect();
    lock_keys(&mut transaction, live.iter().map(|&index| entries[index])).await?;

    let mut reports: Vec<Report> = Vec::new();
    let mut keyless: Vec<KeylessJob> = Vec::new();
    for &index in &live {
        apply_one(
            &mut transaction,
            index,
            entries[index],
            &mut applied[index],
            &mut reports,
            &mut keyless,
        )
        .await?;
    }
    insert_keyless(
        &mut transaction,
        entries,
        &keyless,
        &mut applied,
        &mut reports,
    )
    .await?;
    insert_reports(&mut transaction, &reports).await?;
    transaction.commit().await?;
    connection.keep();
    Ok(applied)
}

/// Whether deduplication is all `entry` needs stored: its jobs are immediate
/// and uncapped, and there is nothing to report or cancel.
fn only_deduplicates(entry: &Entry) -> bool {
    let plan = &entry.plan;
    plan.unreadable.is_none()
        && plan.failures.is_empty()
        && plan.invalid_recipients.is_empty()
        && plan.notes.is_empty()
        && plan.cancellations.is_empty()
        && (entry.event.daily_cap == 0 || plan.jobs.is_empty())
        && plan
            .jobs
            .iter()
            .all(|planned| planned.due_at_ms.is_none() && planned.cap.is_none())
}

/// Long-window deduplication: the first stream sequence stored for each event id
/// the sender gave. A redelivery of the same stored event is processed again
/// (idempotently); a second copy published later is a duplicate.
///
/// The statement answers only the ids stored before with another sequence (the
/// duplicates), not a row per event: under load nearly every event is new, and
/// reading back a row for each cost rules more than the insert. A second copy
/// within the batch is told by the batch itself.
const RECORD_SEEN: &str = "WITH input AS ( \
       SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[]) AS t(account_id, event_id, stream_sequence)), \
     stored AS ( \
       INSERT INTO seen_events (account_id, event_id, stream_sequence) SELECT * FROM input \
       ON CONFLICT (account_id, event_id) DO UPDATE SET account_id = EXCLUDED.account_id \
       RETURNING account_id, event_id, stream_sequence) \
     SELECT s.account_id, s.event_id, s.stream_sequence \
     FROM stored s JOIN input i ON i.account_id = s.account_id AND i.event_id = s.event_id \
     WHERE s.stream_sequence <> i.stream_sequence";

/// `RECORD_SEEN` without `ON CONFLICT` (see `FreshRowsFirst`): under load nearly
/// every event is new, and this form spares PostgreSQL a lookup of each id. It
/// fails, storing nothing, when an id was stored before.
const RECORD_FRESH: &str = "INSERT INTO seen_events (account_id, event_id, stream_sequence) \
     SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::bigint[])";

/// Stores the ids of `entries` and marks their duplicates. With `forms`, the
/// batch may first try `RECORD_FRESH` (outside a transaction only: its failure
/// ends one).
async fn mark_duplicates(
    connection: &mut PgConnection,
    entries: &[&Entry],
    applied: &mut [Applied],
    forms: Option<&FreshRowsFirst>,
) -> Result<(), sqlx::Error> {
    let mut account_ids: Vec<Uuid> = Vec::new();
    let mut event_ids: Vec<&str> = Vec::new();
    let mut sequences: Vec<i64> = Vec::new();
    // The sequence of each id's first copy in the batch.
    let mut first_in_batch: HashMap<(Uuid, &str), u64> = HashMap::new();
    for entry in entries.iter().filter(|entry| entry.event.deduplicate) {
        let event = &entry.event;
        // One row per id: a statement may not update the same row twice.
        if let hash_map::Entry::Vacant(vacant) =
            first_in_batch.entry((event.account_id, &event.event_id))
        {
            vacant.insert(event.stream_sequence);
            account_ids.push(event.account_id);
            event_ids.push(&event.event_id);
            sequences.push(i64::try_from(event.stream_sequence).unwrap_or(i64::MAX));
        }
    }
    if account_ids.is_empty() {
        return Ok(());
    }
    let stored_plainly = match forms.filter(|forms| forms.next_form() == InsertForm::Plain) {
        Some(forms) => match sqlx::query(RECORD_FRESH)
            .bind(&account_ids)
            .bind(&event_ids)
            .bind(&sequences)
            .execute(&mut *connection)
            .await
        {
            Ok(_) => true,
            Err(error) if forms.met_stored_row(&error) => false,
            Err(error) => return Err(error),
        },
        None => false,
    };
    // The ids stored before with another sequence: none when the plain form
    // stored them all (copies within the batch are told by the batch itself).
    let stored_before: Vec<(Uuid, String, i64)> = if stored_plainly {
        Vec::new()
    } else {
        sqlx::query_as(RECORD_SEEN)
            .bind(&account_ids)
            .bind(&event_ids)
            .bind(&sequences)
            .fetch_all(&mut *connection)
            .await?
    };
    let stored_before: HashMap<(Uuid, &str), u64> = stored_before
        .iter()
        .map(|(account_id, event_id, sequence)| {
            (
                (*account_id, event_id.as_str()),
                u64::try_from(*sequence).unwrap_or(0),
            )
        })
        .collect();
    for (entry, applied) in entries.iter().zip(applied.iter_mut()) {
        let event = &entry.event;
        if !event.deduplicate {
            continue;
        }
        let key = (event.account_id, event.event_id.as_str());
        let first = stored_before.get(&key).or_else(|| first_in_batch.get(&key));
        if let Some(&first_sequence) = first
            && first_sequence != event.stream_sequence
        {
            applied.duplicate_of_sequence = Some(first_sequence);
        }
    }
    Ok(())
}

/// Serialises what events may race on: cancellations and keyed delayed jobs of
/// one (rule, key) — without it, a cancelling event and its trigger evaluated at
/// the same moment would each miss the other's uncommitted rows — and the counts
/// behind caps. All of a batch's locks are taken in one statement, in order.
async fn lock_keys<'a>(
    connection: &mut PgConnection,
    entries: impl Iterator<Item = &'a Entry>,
) -> Result<(), sqlx::Error> {
    let mut keys: Vec<String> = Vec::new();
    let mut spaces: Vec<i64> = Vec::new();
    for entry in entries {
        let account_id = entry.event.account_id;
        for cancellation in &entry.plan.cancellations {
            keys.push(format!(
                "{account_id}:{}:{}",
                cancellation.rule_id, cancellation.key
            ));
            spaces.push(KEY_LOCKS);
        }
        for planned in &entry.plan.jobs {
            if planned.due_at_ms.is_some() && !planned.key.is_empty() {
                keys.push(format!(
                    "{account_id}:{}:{}",
                    planned.job.rule_id, planned.key
                ));
                spaces.push(KEY_LOCKS);
            }
            if planned.cap.is_some() {
                keys.push(format!("{}:{}", planned.job.rule_id, planned.job.to));
                spaces.push(CAP_LOCKS);
            }
        }
        if entry.event.daily_cap > 0 && !entry.plan.jobs.is_empty() {
            keys.push(format!("daily:{account_id}"));
            spaces.push(CAP_LOCKS);
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock(lock_id) FROM (
             SELECT DISTINCT hashtextextended(key, space) AS lock_id
             FROM UNNEST($1::text[], $2::bigint[]) AS locks (key, space)
             ORDER BY lock_id
         ) AS ordered",
    )
    .bind(&keys)
    .bind(&spaces)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// The statements of one event that may interact with other events, in order.
async fn apply_one<'a>(
    connection: &mut PgConnection,
    index: usize,
    entry: &'a Entry,
    applied: &mut Applied,
    reports: &mut Vec<Report>,
    keyless: &mut Vec<KeylessJob<'a>>,
) -> Result<(), sqlx::Error> {
    apply_cancellations(connection, entry, applied, reports).await?;
    report_plan(entry, reports);
    apply_jobs(connection, index, entry, applied, reports, keyless).await
}

/// The pending jobs the event cancels, and the marks that cancel those whose
/// trigger was received earlier but is evaluated later.
async fn apply_cancellations(
    connection: &mut PgConnection,
    entry: &Entry,
    applied: &mut Applied,
    reports: &mut Vec<Report>,
) -> Result<(), sqlx::Error> {
    let event = &entry.event;
    let account_id = event.account_id;
    for cancellation in &entry.plan.cancellations {
        let Ok(rule_id) = Uuid::parse_str(&cancellation.rule_id) else {
            continue;
        };
        // The pending jobs cancelled, and the mark remembered for a trigger
        // received earlier but evaluated later: one statement.
        let reason = format!("cancelled by event {}", event.event_id);
        let cancelled_jobs: Vec<(String, String)> = sqlx::query_as(
            "WITH cancelled AS (
                 UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = $4, updated_at = now()
                 WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND state = 'pending'
                   AND trigger_received_at <= $6
                 RETURNING job_id, recipient
             ), marked AS (
                 INSERT INTO cancel_marks (account_id, rule_id, correlation_key, event_id, received_at)
                 VALUES ($1, $2, $3, $5, $6) ON CONFLICT DO NOTHING
             )
             SELECT job_id, recipient FROM cancelled",
        )
        .bind(account_id)
        .bind(rule_id)
        .bind(&cancellation.key)
        .bind(&reason)
        .bind(&event.event_id)
        .bind(event.received_at)
        .fetch_all(&mut *connection)
        .await?;
        let account = account_id.to_string();
        for (job_id, recipient) in &cancelled_jobs {
            let mut change =
                foco_bus::status_change(&account, job_id, foco_bus::status::kind::CANCELLED);
            change.reason.clone_from(&reason);
            change.to.clone_from(recipient);
            change.event_id.clone_from(&event.event_id);
            change.rule_id.clone_from(&cancellation.rule_id);
            applied.status_changes.push(change);
        }
        let cancelled = u64::try_from(cancelled_jobs.len()).unwrap_or(0);
        applied.cancelled += cancelled;
        if cancelled > 0 {
            reports.push(Report::new(
                event,
                &cancellation.rule_id,
                &cancellation.rule_name,
                "cancelled",
                format!(
                    "{cancelled} pending job(s) with key {:?} cancelled",
                    cancellation.key
                ),
            ));
        }
    }
    Ok(())
}

/// What the plan says of the event that the account reads in `foco events
/// show`: an unreadable body, failed rules, invalid recipients, notes.
fn report_plan(entry: &Entry, reports: &mut Vec<Report>) {
    let event = &entry.event;
    let plan = &entry.plan;
    if let Some(reason) = &plan.unreadable {
        reports.push(Report::new(event, "", "", "unreadable", reason.clone()));
    }
    for failure in &plan.failures {
        reports.push(Report::new(
            event,
            &failure.rule_id,
            &failure.rule_name,
            "error",
            failure.error.to_string(),
        ));
    }
    for invalid in &plan.invalid_recipients {
        reports.push(Report::new(
            event,
            &invalid.rule_id,
            &invalid.rule_name,
            "invalid_recipient",
            format!("{:?}: {}", invalid.raw, invalid.reason),
        ));
    }

    for note in &plan.notes {
        reports.push(Report::new(
            event,
            &note.rule_id,
            &note.rule_name,
            note.kind,
            note.detail.clone(),
        ));
    }
}

/// The event's jobs: capped, immediate, keyless delayed (inserted later with
/// the batch's others), or keyed (stored now, replacing or keeping a pending
/// one with the same key).
async fn apply_jobs<'a>(
    connection: &mut PgConnection,
    index: usize,
    entry: &'a Entry,
    applied: &mut Applied,
    reports: &mut Vec<Report>,
    keyless: &mut Vec<KeylessJob<'a>>,
) -> Result<(), sqlx::Error> {
    let event = &entry.event;
    let account_id = event.account_id;
    let mut capped_rules: Vec<&str> = Vec::new();
    for planned in &entry.plan.jobs {
        let rule_id = Uuid::parse_str(&planned.job.rule_id).unwrap_or_default();
        let counted = planned.cap.is_some() || event.daily_cap > 0;
        if counted && let Some(reason) = cap_reached(connection, event, rule_id, planned).await? {
            applied.capped += 1;
            if !capped_rules.contains(&planned.job.rule_id.as_str()) {
                capped_rules.push(&planned.job.rule_id);
                reports.push(Report::new(
                    event,
                    &planned.job.rule_id,
                    &planned.rule_name,
                    "capped",
                    reason,
                ));
            }
            continue;
        }
        let Some(due_at_ms) = planned.due_at_ms else {
            if counted {
                record_send(connection, account_id, rule_id, planned).await?;
            }
            applied.immediate.push(planned.clone());
            continue;
        };
        if planned.key.is_empty() {
            if counted {
                record_send(connection, account_id, rule_id, planned).await?;
            }
            keyless.push(KeylessJob {
                entry: index,
                rule_name: &planned.rule_name,
                planned,
                due_at_ms,
            });
            continue;
        }
        if planned.on_repeat == OnRepeat::KeepFirst
            && let Some(report) = pending_first(connection, event, rule_id, planned).await?
        {
            reports.push(report);
            continue;
        }
        let stored = store_keyed(connection, event, rule_id, planned, due_at_ms).await?;
        if stored.replaced > 0 {
            reports.push(Report::new(
                event,
                &planned.job.rule_id,
                &planned.rule_name,
                "replaced",
                format!(
                    "{} pending job(s) with key {:?} replaced",
                    stored.replaced, planned.key
                ),
            ));
        }
        let cancelled_by = stored.cancelled_by;
        if cancelled_by.is_none() && counted && stored.inserted {
            record_send(connection, account_id, rule_id, planned).await?;
        }
        let inserted = u64::from(stored.inserted);
        if inserted == 0 {
            continue;
        }
        if let Some(cancelled_by) = &cancelled_by {
            applied.cancelled += 1;
            applied.status_changes.push(super::job_change(
                &planned.job,
                foco_bus::status::kind::CANCELLED,
                format!("cancelled by event {cancelled_by}"),
            ));
            reports.push(Report::new(
                event,
                &planned.job.rule_id,
                &planned.rule_name,
                "cancelled",
                format!("cancelled on arrival by event {cancelled_by}, received after this one"),
            ));
        } else {
            applied.scheduled += 1;
            applied.status_changes.push(super::job_change(
                &planned.job,
                foco_bus::status::kind::SCHEDULED,
                String::new(),
            ));
            reports.push(scheduled_report(
                event,
                &planned.rule_name,
                planned,
                due_at_ms,
            ));
        }
    }
    Ok(())
}

/// With `on_repeat: keep_first`, the pending job with the same key, if any:
/// the new one is then dropped.
async fn pending_first(
    connection: &mut PgConnection,
    event: &StoredEvent,
    rule_id: Uuid,
    planned: &PlannedJob,
) -> Result<Option<Report>, sqlx::Error> {
    let pending: Option<String> = sqlx::query_scalar(
        "SELECT job_id FROM scheduled_jobs
         WHERE account_id = $1 AND rule_id = $2 AND correlation_key = $3 AND state = 'pending'
           AND event_id <> $4 AND recipient = $5 AND trigger_received_at <= $6 LIMIT 1",
    )
    .bind(event.account_id)
    .bind(rule_id)
    .bind(&planned.key)
    .bind(&event.event_id)
    .bind(&planned.job.to)
    .bind(event.received_at)
    .fetch_optional(&mut *connection)
    .await?;
    Ok(pending.map(|pending| {
        Report::new(
            event,
            &planned.job.rule_id,
            &planned.rule_name,
            "kept_first",
            format!(
                "job {pending} with key {:?} is already pending",
                planned.key
            ),
        )
    }))
}

/// What storing a keyed delayed job did.
struct KeyedStored {
    /// Pending jobs with the same key that it replaced (`on_repeat: replace`).
    replaced: i64,
    /// A cancelling event received after this trigger was evaluated first: the
    /// job is stored already cancelled.
    cancelled_by: Option<String>,
    /// False when a redelivery finds the job stored already.
    inserted: bool,
}

/// Replaces the pending jobs with the same key (unless the rule keeps the
/// first, checked before), looks for a cancel mark of a later event, and
/// inserts the job: one statement. Its parts see one snapshot, so the new job
/// is never among those it replaces.
async fn store_keyed(
    connection: &mut PgConnection,
    event: &StoredEvent,
    rule_id: Uuid,
    planned: &PlannedJob,
    due_at_ms: i64,
) -> Result<KeyedStored, sqlx::Error> {
    let (replaced, cancelled_by, inserted): (i64, Option<String>, i64) = sqlx::query_as(
        "WITH replaced AS (
             UPDATE scheduled_jobs SET state = 'cancelled', cancel_reason = 'replaced by event ' || $4,
                                       updated_at = now()
             WHERE $11 AND account_id = $2 AND rule_id = $3 AND correlation_key = $5
               AND state = 'pending' AND event_id <> $4 AND recipient = $6 AND trigger_received_at <= $10
             RETURNING 1
         ), mark AS (
             SELECT event_id FROM cancel_marks
             WHERE account_id = $2 AND rule_id = $3 AND correlation_key = $5 AND received_at >= $10
             LIMIT 1
         ), inserted AS (
             INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, correlation_key, recipient, body,
                                         due_at, trigger_received_at, job, state, cancel_reason, trace_context)
             SELECT $1, $2, $3, $4, $5, $6, $7, to_timestamp($8::double precision / 1000), $10, $9,
                    CASE WHEN mark.event_id IS NULL THEN 'pending' ELSE 'cancelled' END,
                    COALESCE('cancelled by event ' || mark.event_id || ', received after the trigger', ''),
                    $12
             FROM (SELECT 1) AS one LEFT JOIN mark ON true
             ON CONFLICT (job_id) DO NOTHING
             RETURNING 1
         )
         SELECT (SELECT count(*) FROM replaced), (SELECT event_id FROM mark),
                (SELECT count(*) FROM inserted)",
    )
    .bind(&planned.job.job_id)
    .bind(event.account_id)
    .bind(rule_id)
    .bind(&event.event_id)
    .bind(&planned.key)
    .bind(&planned.job.to)
    .bind(&planned.job.body)
    .bind(due_at_ms as f64)
    .bind(planned.job.encode_to_vec())
    .bind(event.received_at)
    .bind(planned.on_repeat == OnRepeat::Replace)
    .bind(&event.trace_context)
    .fetch_one(&mut *connection)
    .await?;
    Ok(KeyedStored {
        replaced,
        cancelled_by,
        inserted: inserted > 0,
    })
}

fn scheduled_report(
    event: &StoredEvent,
    rule_name: &str,
    planned: &PlannedJob,
    due_at_ms: i64,
) -> Report {
    Report::new(
        event,
        &planned.job.rule_id,
        rule_name,
        "scheduled",
        format!(
            "job {} to {} due at {}",
            planned.job.job_id,
            foco_runtime::telemetry::mask_phone(&planned.job.to),
            chrono::DateTime::from_timestamp_millis(due_at_ms)
                .map(|at| at.to_rfc3339())
                .unwrap_or_default()
        ),
    )
}

/// Keyless delayed jobs of the whole batch, in one statement.
async fn insert_keyless(
    connection: &mut PgConnection,
    entries: &[&Entry],
    keyless: &[KeylessJob<'_>],
    applied: &mut [Applied],
    reports: &mut Vec<Report>,
) -> Result<(), sqlx::Error> {
    if keyless.is_empty() {
        return Ok(());
    }
    let mut job_ids: Vec<&str> = Vec::with_capacity(keyless.len());
    let mut account_ids: Vec<Uuid> = Vec::with_capacity(keyless.len());
    let mut rule_ids: Vec<Uuid> = Vec::with_capacity(keyless.len());
    let mut event_ids: Vec<&str> = Vec::with_capacity(keyless.len());
    let mut recipients: Vec<&str> = Vec::with_capacity(keyless.len());
    let mut bodies: Vec<&str> = Vec::with_capacity(keyless.len());
    let mut due_ats: Vec<f64> = Vec::with_capacity(keyless.len());
    let mut received_ats: Vec<chrono::DateTime<chrono::Utc>> = Vec::with_capacity(keyless.len());
    let mut jobs: Vec<Vec<u8>> = Vec::with_capacity(keyless.len());
    let mut trace_contexts: Vec<&str> = Vec::with_capacity(keyless.len());
    for job in keyless {
        let event = &entries[job.entry].event;
        job_ids.push(&job.planned.job.job_id);
        account_ids.push(event.account_id);
        rule_ids.push(Uuid::parse_str(&job.planned.job.rule_id).unwrap_or_default());
        event_ids.push(&event.event_id);
        recipients.push(&job.planned.job.to);
        bodies.push(&job.planned.job.body);
        due_ats.push(job.due_at_ms as f64);
        received_ats.push(event.received_at);
        jobs.push(job.planned.job.encode_to_vec());
        trace_contexts.push(&event.trace_context);
    }
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, recipient, body,
                                     due_at, trigger_received_at, job, trace_context)
         SELECT job_id, account_id, rule_id, event_id, recipient, body,
                to_timestamp(due_at_ms / 1000), received_at, job, trace_context
         FROM UNNEST($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[],
                     $7::double precision[], $8::timestamptz[], $9::bytea[], $10::text[])
              AS rows (job_id, account_id, rule_id, event_id, recipient, body, due_at_ms, received_at, job,
                       trace_context)
         ON CONFLICT (job_id) DO NOTHING
         RETURNING job_id",
    )
    .bind(&job_ids)
    .bind(&account_ids)
    .bind(&rule_ids)
    .bind(&event_ids)
    .bind(&recipients)
    .bind(&bodies)
    .bind(&due_ats)
    .bind(&received_ats)
    .bind(&jobs)
    .bind(&trace_contexts)
    .fetch_all(&mut *connection)
    .await?;
    let inserted: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    for job in keyless {
        if inserted.contains(job.planned.job.job_id.as_str()) {
            applied[job.entry].scheduled += 1;
            applied[job.entry].status_changes.push(super::job_change(
                &job.planned.job,
                foco_bus::status::kind::SCHEDULED,
                String::new(),
            ));
            reports.push(scheduled_report(
                &entries[job.entry].event,
                job.rule_name,
                job.planned,
                job.due_at_ms,
            ));
        }
    }
    Ok(())
}

/// Every report of the batch, in one statement; a redelivered event's reports
/// are already there and are kept once.
async fn insert_reports(
    connection: &mut PgConnection,
    reports: &[Report],
) -> Result<(), sqlx::Error> {
    if reports.is_empty() {
        return Ok(());
    }
    let account_ids: Vec<Uuid> = reports.iter().map(|report| report.account_id).collect();
    let event_ids: Vec<&str> = reports
        .iter()
        .map(|report| report.event_id.as_str())
        .collect();
    let rule_ids: Vec<&str> = reports
        .iter()
        .map(|report| report.rule_id.as_str())
        .collect();
    let rule_names: Vec<&str> = reports
        .iter()
        .map(|report| report.rule_name.as_str())
        .collect();
    let kinds: Vec<&str> = reports.iter().map(|report| report.kind).collect();
    let details: Vec<&str> = reports
        .iter()
        .map(|report| report.detail.as_str())
        .collect();
    sqlx::query(
        "INSERT INTO event_reports (account_id, event_id, rule_id, rule_name, kind, detail)
         SELECT * FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&account_ids)
    .bind(&event_ids)
    .bind(&rule_ids)
    .bind(&rule_names)
    .bind(&kinds)
    .bind(&details)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Counts the job towards its rule's and its account's caps. Only jobs under a
/// cap are counted: a cap set later counts from then on.
async fn record_send(
    connection: &mut PgConnection,
    account_id: Uuid,
    rule_id: Uuid,
    planned: &PlannedJob,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO recipient_sends (job_id, account_id, rule_id, recipient) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(&planned.job.job_id)
    .bind(account_id)
    .bind(rule_id)
    .bind(&planned.job.to)
    .execute(&mut *connection)
    .await?;
    Ok(())
}

/// Why a job may not be created, if a cap forbids it. Counts exclude the job
/// itself, so a redelivered event is not capped by its own first delivery; the
/// batch's advisory locks keep concurrent events from both passing.
async fn cap_reached(
    connection: &mut PgConnection,
    event: &StoredEvent,
    rule_id: Uuid,
    planned: &PlannedJob,
) -> Result<Option<String>, sqlx::Error> {
    if let Some(Cap { count, window }) = planned.cap {
        let recent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recipient_sends
             WHERE rule_id = $1 AND recipient = $2 AND job_id <> $3
               AND created_at > now() - make_interval(secs => $4)",
        )
        .bind(rule_id)
        .bind(&planned.job.to)
        .bind(&planned.job.job_id)
        .bind(window.as_secs_f64())
        .fetch_one(&mut *connection)
        .await?;
        if recent >= i64::from(count) {
            return Ok(Some(format!(
                "{} already got {recent} message(s) from this rule within {}",
                foco_runtime::telemetry::mask_phone(&planned.job.to),
                humantime_window(window)
            )));
        }
    }
    let daily_cap = event.daily_cap;
    if daily_cap > 0 {
        // "Today" in the account's time zone.
        let today: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM recipient_sends
             WHERE account_id = $1 AND job_id <> $2
               AND created_at >= (date_trunc('day', now() AT TIME ZONE $3) AT TIME ZONE $3)",
        )
        .bind(event.account_id)
        .bind(&planned.job.job_id)
        .bind(&event.timezone)
        .fetch_one(&mut *connection)
        .await?;
        if today >= i64::from(daily_cap) {
            return Ok(Some(format!(
                "the account's daily cap of {daily_cap} SMS is reached"
            )));
        }
    }
    Ok(None)
}

fn humantime_window(window: std::time::Duration) -> String {
    let seconds = window.as_secs();
    if seconds.is_multiple_of(86_400) {
        format!("{}d", seconds / 86_400)
    } else if seconds.is_multiple_of(3600) {
        format!("{}h", seconds / 3600)
    } else if seconds.is_multiple_of(60) {
        format!("{}m", seconds / 60)
    } else {
        format!("{seconds}s")
    }
}
