//! Recording what a provider call ended in. Many jobs' outcomes go into one
//! `UPDATE … FROM UNNEST` (see `batch`); only the holder's row moves.

use sqlx::{PgPool, Row};

use super::{Status, StoreError};

/// What a provider call (or a decision not to call) ended in, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    pub job_id: String,
    /// `Sent`, `Failed`, `Unknown`, `OptedOut`, or `Queued` (to be retried).
    pub status: Status,
    /// The route that was called (after failover, not the one the job named);
    /// empty keeps the row's.
    pub provider: String,
    pub provider_message_id: String,
    pub error: String,
    pub segments: i32,
    pub price: String,
    pub price_currency: String,
    /// Whether the job must stay with `provider` (its call may have been
    /// accepted).
    pub route_lock: RouteLock,
    /// Added to `attempts`: -1 when the claim is given back without a call.
    pub attempts_delta: i32,
    /// JSON of the `Step` appended to the history.
    pub step: String,
    /// Provider ids of the parts of a multi-part message (index = position).
    pub part_ids: Vec<String>,
    /// Whether receipts may name `provider_message_id` (the provider kind has
    /// a receipts callback): only then is the id kept in `provider_message_ids`,
    /// the lookup receipts use. The message's own row keeps it either way.
    pub receipts_expected: bool,
}

/// `Locked`: an earlier call may have been accepted, so the job stays on its
/// one route (no failover, open breakers ignored); `Free` otherwise. Stored as
/// `messages.provider_locked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteLock {
    Free,
    Locked,
}

impl RouteLock {
    pub fn is_locked(self) -> bool {
        self == RouteLock::Locked
    }
}

impl OutcomeRecord {
    pub fn new(job_id: &str, status: Status, step: String) -> Self {
        Self {
            job_id: job_id.to_owned(),
            status,
            provider: String::new(),
            provider_message_id: String::new(),
            error: String::new(),
            segments: 0,
            price: String::new(),
            price_currency: String::new(),
            route_lock: RouteLock::Free,
            attempts_delta: 0,
            step,
            part_ids: Vec::new(),
            receipts_expected: true,
        }
    }
}

/// Only the holder's row moves: `sending`, or `unknown` when a redelivery gave the
/// claim up for dead while the call was in fact still running (what the provider
/// answered is more precise than "unknown"). Rows are updated in job id order
/// (no deadlocks between concurrent batches). No index covers a column set here
/// (migration 0501), so these are HOT updates; the provider's id goes to
/// `provider_message_ids` in the same statement, for receipts, when its
/// provider sends any (`OutcomeRecord::receipts_expected`). It answers the
/// position in the batch of each row it moved, not its id: nothing to decode
/// or hash per row. Were one job id in a batch twice, its row would move once,
/// and only one of the two would be answered as held.
const UPDATE_OUTCOMES: &str = "WITH u AS ( \
       SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], \
                            $7::text[], $8::text[], $9::bool[], $10::int4[], $11::text[], $12::bool[]) \
         WITH ORDINALITY AS t(job_id, status, provider, pmid, error, segments, price, currency, locked, delta, \
              step, receipts, batch_index) \
       ORDER BY job_id), \
     updated AS ( \
       UPDATE messages m SET \
         status = u.status, \
         provider = CASE WHEN u.provider = '' THEN m.provider ELSE u.provider END, \
         provider_message_id = CASE WHEN u.pmid = '' THEN m.provider_message_id ELSE u.pmid END, \
         error = u.error, \
         segments = CASE WHEN u.segments > 0 THEN u.segments ELSE m.segments END, \
         price = CASE WHEN u.price = '' THEN m.price ELSE u.price END, \
         price_currency = CASE WHEN u.price = '' THEN m.price_currency ELSE u.currency END, \
         provider_locked = u.locked, \
         attempts = m.attempts + u.delta, \
         history = m.history || u.step::jsonb, \
         sent_at = CASE WHEN u.status = 'sent' THEN now() ELSE m.sent_at END, \
         unknown_since = CASE WHEN u.status = 'unknown' THEN COALESCE(m.unknown_since, now()) END, \
         updated_at = now() \
       FROM u \
       WHERE m.job_id = u.job_id AND m.status IN ('sending', 'unknown') \
       RETURNING m.job_id, u.pmid, u.receipts, u.batch_index), \
     ids AS ( \
       INSERT INTO provider_message_ids (provider_message_id, job_id) \
       SELECT pmid, job_id FROM updated WHERE pmid <> '' AND receipts \
       ON CONFLICT DO NOTHING) \
     SELECT batch_index FROM updated";

const INSERT_PARTS: &str = "INSERT INTO message_parts (job_id, part_index, provider_message_id) \
     SELECT * FROM UNNEST($1::text[], $2::int4[], $3::text[]) \
     ON CONFLICT (job_id, part_index) DO NOTHING";

/// Records outcomes in one statement. Answers, in order, whether each row was
/// still held (false: another delivery moved it on).
pub async fn record_outcomes(
    connection: &mut sqlx::PgConnection,
    records: &[OutcomeRecord],
) -> Result<Vec<bool>, StoreError> {
    let has_parts = records.iter().any(|record| !record.part_ids.is_empty());
    let updated = if has_parts {
        // The parts and their message land together or not at all.
        let mut transaction = sqlx::Connection::begin(&mut *connection).await?;
        let updated = update_rows(&mut *transaction, records).await?;
        insert_parts(&mut *transaction, records, &updated).await?;
        transaction.commit().await?;
        updated
    } else {
        // One statement commits on its own: no BEGIN/COMMIT round trips.
        update_rows(&mut *connection, records).await?
    };
    Ok(updated)
}

pub(super) async fn update_rows<'e, E>(
    executor: E,
    records: &[OutcomeRecord],
) -> Result<Vec<bool>, StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let texts =
        |pick: fn(&OutcomeRecord) -> &str| -> Vec<&str> { records.iter().map(pick).collect() };
    let rows = sqlx::query(UPDATE_OUTCOMES)
        .bind(texts(|record| &record.job_id))
        .bind(texts(|record| record.status.as_str()))
        .bind(texts(|record| &record.provider))
        .bind(texts(|record| &record.provider_message_id))
        .bind(texts(|record| &record.error))
        .bind(
            records
                .iter()
                .map(|record| record.segments)
                .collect::<Vec<_>>(),
        )
        .bind(texts(|record| &record.price))
        .bind(texts(|record| &record.price_currency))
        .bind(
            records
                .iter()
                .map(|record| record.route_lock == RouteLock::Locked)
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|record| record.attempts_delta)
                .collect::<Vec<_>>(),
        )
        .bind(texts(|record| &record.step))
        .bind(
            records
                .iter()
                .map(|record| record.receipts_expected)
                .collect::<Vec<_>>(),
        )
        .fetch_all(executor)
        .await?;
    let mut updated = vec![false; records.len()];
    for row in rows {
        // WITH ORDINALITY counts from 1.
        let batch_index: i64 = row.try_get("batch_index")?;
        if let Some(held) = usize::try_from(batch_index - 1)
            .ok()
            .and_then(|index| updated.get_mut(index))
        {
            *held = true;
        }
    }
    Ok(updated)
}

async fn insert_parts<'e, E>(
    executor: E,
    records: &[OutcomeRecord],
    updated: &[bool],
) -> Result<(), StoreError>
where
    E: sqlx::PgExecutor<'e>,
{
    let mut job_ids = Vec::new();
    let mut indexes = Vec::new();
    let mut part_ids = Vec::new();
    for (record, _) in records.iter().zip(updated).filter(|(_, updated)| **updated) {
        for (index, part_id) in record.part_ids.iter().enumerate() {
            job_ids.push(record.job_id.as_str());
            indexes.push(i32::try_from(index).unwrap_or(i32::MAX));
            part_ids.push(part_id.as_str());
        }
    }
    sqlx::query(INSERT_PARTS)
        .bind(job_ids)
        .bind(indexes)
        .bind(part_ids)
        .execute(executor)
        .await?;
    Ok(())
}

/// One outcome on its own (the batched writer falls back to this per row when a
/// batch fails, so one bad row cannot fail its neighbours).
pub async fn record_outcome(pool: &PgPool, record: &OutcomeRecord) -> Result<bool, StoreError> {
    let mut connection = pool.acquire().await?;
    Ok(
        record_outcomes(&mut connection, std::slice::from_ref(record))
            .await?
            .pop()
            .unwrap_or(false),
    )
}
