//! Claiming a job: a compare-and-set that moves its row to `sending` before any
//! provider call, so two deliveries of one job never both call. The opt-out check
//! is part of the claim: an opted-out recipient's job becomes `opted-out` in the
//! same statement. So is expiry: a job that reached the sender past its deadline
//! is claimed as `expired` (with its reason), in the same batched statement as
//! every other job, and never called.
//!
//! Fresh jobs are claimed in batches (`claim_fresh_batch`: one INSERT for many
//! jobs, with ON CONFLICT DO NOTHING when one may exist); a job whose row
//! already exists takes the per-job path (`claim`), which reads the row and
//! decides.

use std::time::Duration;

use foco_runtime::postgres::{FreshRowsFirst, InsertForm};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{Status, StoreError};

pub const ABANDONED_REASON: &str = "sender stopped during the provider call; not resent";
pub const OPTED_OUT_REASON: &str = "recipient opted out";

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This delivery holds the job and may call the provider; `attempts` counts
    /// this call. `locked_provider`: the only route this job may use.
    Claimed {
        attempts: u32,
        locked_provider: Option<String>,
    },
    /// The recipient opted out; the row says so and no call is made.
    OptedOut,
    /// The job came past its deadline; the row says `expired` and why, and no
    /// call is made.
    PastDeadline,
    /// The job already reached a final state (any status other than queued or
    /// sending, including ones later versions add): acknowledge without a call.
    Finished { status: String },
    /// Another delivery holds a live claim (a duplicate of the job is being sent
    /// right now); look again after `retry_in`.
    HeldElsewhere { retry_in: Duration },
    /// A previous holder stopped between claim and outcome; its lease ran out.
    /// The caller either takes the job over (`take_over`, only for an idempotent
    /// provider, with the same route) or records it unknown (`mark_abandoned`).
    LeaseExpired { provider: String },
}

/// An owned `NewMessage`, for the batched claim.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub job_id: String,
    pub account_id: Uuid,
    pub event_id: String,
    pub source_id: String,
    pub rule_id: String,
    pub recipient: String,
    pub body: String,
    pub provider: String,
    pub sender_id: String,
    pub priority: i16,
    /// Why the job is past its deadline; empty for a job still valid. A
    /// non-empty reason claims the row as `expired` instead of `sending`.
    pub expired: String,
}

/// Rows are inserted in job id order so that concurrent batches take row locks
/// in the same order (no deadlocks between replicas). An opt-out wins over
/// expiry (the stronger reason not to send); an expired row gets its reason as
/// its error and its one history step. A job whose account does not exist is
/// not inserted and comes back as `account-missing` (`messages` has no foreign
/// key: see migration 0703).
///
/// The statement in two forms (see `FreshRowsFirst`): `$conflict` is empty
/// (a stored job id fails the statement) or `ON CONFLICT (job_id) DO NOTHING`.
macro_rules! claim_batch_statement {
    ($conflict:literal) => {
        concat!("WITH input AS ( \
       SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], \
                            $7::text[], $8::text[], $9::text[], $10::int2[], $11::text[]) \
         AS t(job_id, account_id, event_id, source_id, rule_id, recipient, body, provider, sender_id, priority, \
              expired)), \
     known AS ( \
       SELECT i.*, EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.account_id) AS account_exists \
       FROM input i), \
     inserted AS ( \
       INSERT INTO messages (job_id, account_id, event_id, source_id, rule_id, recipient, body, provider, \
                             sender_id, priority, status, attempts, error, history) \
       SELECT i.job_id, i.account_id, i.event_id, i.source_id, i.rule_id, i.recipient, i.body, i.provider, \
              i.sender_id, i.priority, \
              CASE WHEN o.phone IS NOT NULL THEN 'opted-out' WHEN i.expired <> '' THEN 'expired' ELSE 'sending' END, \
              CASE WHEN o.phone IS NULL AND i.expired = '' THEN 1 ELSE 0 END, \
              CASE WHEN o.phone IS NOT NULL THEN 'recipient opted out' ELSE i.expired END, \
              CASE WHEN o.phone IS NULL AND i.expired <> '' THEN jsonb_build_array(jsonb_build_object( \
                'at', (extract(epoch from now()) * 1000)::bigint, 'attempt', 0, 'provider', i.provider, \
                'outcome', 'expired', 'detail', i.expired)) ELSE '[]'::jsonb END \
       FROM known i LEFT JOIN opt_outs o ON o.account_id = i.account_id AND o.phone = i.recipient \
       WHERE i.account_exists \
       ORDER BY i.job_id ", $conflict, " \
       RETURNING job_id, status) \
     SELECT job_id, status FROM inserted \
     UNION ALL \
     SELECT job_id, 'account-missing' FROM known WHERE NOT account_exists")
    };
}
const CLAIM_BATCH: &str = claim_batch_statement!("ON CONFLICT (job_id) DO NOTHING");
const CLAIM_FRESH_BATCH: &str = claim_batch_statement!("");

/// What `CLAIM_BATCH` answers for a job of an account that does not exist.
const ACCOUNT_MISSING: &str = "account-missing";

/// Claims fresh jobs in one statement. Each answer is `Some(claim)` when the row
/// was created, `None` when it existed already (the caller takes the per-job
/// path), and `AccountMissing` for a job of an account that does not exist.
pub async fn claim_batch<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    requests: &[ClaimRequest],
) -> Result<Vec<Result<Option<Claim>, StoreError>>, StoreError> {
    run_claim_batch(executor, CLAIM_BATCH, requests).await
}

/// As [`claim_batch`], in the form `forms` picks: under load nearly every job
/// is new, and the plain insert spares PostgreSQL a lookup of each job id. A
/// batch holding a job whose row exists is claimed again with `ON CONFLICT`.
pub async fn claim_fresh_batch(
    connection: &mut sqlx::PgConnection,
    requests: &[ClaimRequest],
    forms: &FreshRowsFirst,
) -> Result<Vec<Result<Option<Claim>, StoreError>>, StoreError> {
    if forms.next_form() == InsertForm::Plain {
        match run_claim_batch(&mut *connection, CLAIM_FRESH_BATCH, requests).await {
            Err(StoreError::Database(error)) if forms.met_stored_row(&error) => {}
            answered => return answered,
        }
    }
    run_claim_batch(connection, CLAIM_BATCH, requests).await
}

async fn run_claim_batch<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    statement: &'static str,
    requests: &[ClaimRequest],
) -> Result<Vec<Result<Option<Claim>, StoreError>>, StoreError> {
    let column =
        |pick: fn(&ClaimRequest) -> &str| -> Vec<&str> { requests.iter().map(pick).collect() };
    let rows = sqlx::query(statement)
        .bind(column(|request| &request.job_id))
        .bind(
            requests
                .iter()
                .map(|request| request.account_id)
                .collect::<Vec<_>>(),
        )
        .bind(column(|request| &request.event_id))
        .bind(column(|request| &request.source_id))
        .bind(column(|request| &request.rule_id))
        .bind(column(|request| &request.recipient))
        .bind(column(|request| &request.body))
        .bind(column(|request| &request.provider))
        .bind(column(|request| &request.sender_id))
        .bind(
            requests
                .iter()
                .map(|request| request.priority)
                .collect::<Vec<_>>(),
        )
        .bind(column(|request| &request.expired))
        .fetch_all(executor)
        .await?;
    let mut created = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let job_id: String = row.try_get("job_id")?;
        let status: String = row.try_get("status")?;
        created.insert(job_id, status);
    }
    Ok(requests
        .iter()
        .map(|request| {
            // A job id twice in one batch: the first copy was created, the second
            // sees an existing row and takes the per-job path.
            match created.remove(&request.job_id) {
                None => Ok(None),
                Some(status) if status == ACCOUNT_MISSING => Err(StoreError::AccountMissing),
                Some(status) if status == Status::OptedOut.as_str() => Ok(Some(Claim::OptedOut)),
                Some(status) if status == Status::Expired.as_str() => Ok(Some(Claim::PastDeadline)),
                Some(_) => Ok(Some(Claim::Claimed {
                    attempts: 1,
                    locked_provider: None,
                })),
            }
        })
        .collect())
}

/// Seconds left on the current claim, if the row is `sending`.
const READ_STATE: &str = "SELECT status, provider, \
     GREATEST(0, EXTRACT(EPOCH FROM (updated_at + make_interval(secs => $2) - now())))::float8 AS lease_left \
     FROM messages WHERE job_id = $1";

/// A queued job (a retry, a released hold, a requeue from the API) is claimed
/// again unless its recipient opted out meanwhile, or it came past its
/// deadline (`$2`, its reason, not empty).
const RECLAIM_QUEUED: &str = "WITH opted AS (SELECT EXISTS ( \
       SELECT 1 FROM opt_outs o JOIN messages c ON o.account_id = c.account_id AND o.phone = c.recipient \
       WHERE c.job_id = $1) AS yes) \
     UPDATE messages m SET \
       status = CASE WHEN opted.yes THEN 'opted-out' WHEN $2 <> '' THEN 'expired' ELSE 'sending' END, \
       error = CASE WHEN opted.yes THEN 'recipient opted out' WHEN $2 <> '' THEN $2 ELSE m.error END, \
       attempts = m.attempts + CASE WHEN opted.yes OR $2 <> '' THEN 0 ELSE 1 END, \
       history = CASE WHEN NOT opted.yes AND $2 <> '' THEN m.history || jsonb_build_object( \
         'at', (extract(epoch from now()) * 1000)::bigint, 'attempt', m.attempts, 'provider', m.provider, \
         'outcome', 'expired', 'detail', $2::text) ELSE m.history END, \
       updated_at = now() \
     FROM opted WHERE m.job_id = $1 AND m.status = 'queued' \
     RETURNING m.status, m.attempts, m.provider, m.provider_locked";

const MARK_ABANDONED: &str = "UPDATE messages SET status = 'unknown', error = $2, updated_at = now(), \
       unknown_since = now(), \
       history = history || jsonb_build_object('at', (extract(epoch from now()) * 1000)::bigint, \
         'attempt', attempts, 'provider', provider, 'outcome', 'unknown', 'detail', $2::text) \
     WHERE job_id = $1 AND status = 'sending' AND updated_at <= now() - make_interval(secs => $3)";

const TAKE_OVER: &str = "UPDATE messages SET attempts = attempts + 1, updated_at = now(), provider_locked = true \
     WHERE job_id = $1 AND status = 'sending' AND updated_at <= now() - make_interval(secs => $2) \
     RETURNING attempts, provider";

const REFRESH_CLAIM: &str = "UPDATE messages SET updated_at = now(), provider = $2 \
     WHERE job_id = $1 AND status = 'sending'";

/// Claims a job for one provider call (or, with `request.expired`, as
/// expired), for a job whose row may exist. `lease` is how long a `sending`
/// claim is presumed to belong to a live sender.
pub async fn claim(
    pool: &PgPool,
    request: &ClaimRequest,
    lease: Duration,
) -> Result<Claim, StoreError> {
    // Each step is a compare-and-set; losing one means another delivery moved the
    // row, so look again. Three rounds are plenty: every move is towards a final state.
    for _ in 0..3 {
        if let Some(answer) = claim_batch(pool, std::slice::from_ref(request))
            .await?
            .pop()
            .transpose()?
            .flatten()
        {
            return Ok(answer);
        }
        let Some(row) = sqlx::query(READ_STATE)
            .bind(&request.job_id)
            .bind(lease.as_secs_f64())
            .fetch_optional(pool)
            .await?
        else {
            continue;
        };
        let status_text: String = row.try_get("status")?;
        match Status::parse(&status_text) {
            Some(Status::Queued) => {
                let reclaimed = sqlx::query(RECLAIM_QUEUED)
                    .bind(&request.job_id)
                    .bind(&request.expired)
                    .fetch_optional(pool)
                    .await?;
                if let Some(row) = reclaimed {
                    return reclaimed_claim(&row);
                }
            }
            Some(Status::Sending) => {
                let lease_left: f64 = row.try_get("lease_left")?;
                if lease_left > 0.0 {
                    return Ok(Claim::HeldElsewhere {
                        retry_in: Duration::from_secs_f64(lease_left),
                    });
                }
                return Ok(Claim::LeaseExpired {
                    provider: row.try_get("provider")?,
                });
            }
            _ => {
                return Ok(Claim::Finished {
                    status: status_text,
                });
            }
        }
    }
    Err(StoreError::Contended)
}

fn reclaimed_claim(row: &sqlx::postgres::PgRow) -> Result<Claim, StoreError> {
    let status: String = row.try_get("status")?;
    if status == Status::OptedOut.as_str() {
        return Ok(Claim::OptedOut);
    }
    if status == Status::Expired.as_str() {
        return Ok(Claim::PastDeadline);
    }
    let locked: bool = row.try_get("provider_locked")?;
    let provider: String = row.try_get("provider")?;
    Ok(Claim::Claimed {
        attempts: attempts_of(row)?,
        locked_provider: locked.then_some(provider),
    })
}

/// Records a job whose holder died as `unknown` (it may have been sent). Returns
/// whether this call did it (another delivery may have been first).
pub async fn mark_abandoned(
    pool: &PgPool,
    job_id: &str,
    lease: Duration,
) -> Result<bool, StoreError> {
    let marked = sqlx::query(MARK_ABANDONED)
        .bind(job_id)
        .bind(ABANDONED_REASON)
        .bind(lease.as_secs_f64())
        .execute(pool)
        .await?;
    Ok(marked.rows_affected() == 1)
}

/// Takes over a job whose holder died, to call the same (idempotent) provider
/// again with the same key. The job stays locked to that provider.
pub async fn take_over(
    pool: &PgPool,
    job_id: &str,
    lease: Duration,
) -> Result<Option<(u32, String)>, StoreError> {
    let Some(row) = sqlx::query(TAKE_OVER)
        .bind(job_id)
        .bind(lease.as_secs_f64())
        .fetch_optional(pool)
        .await?
    else {
        return Ok(None);
    };
    Ok(Some((attempts_of(&row)?, row.try_get("provider")?)))
}

/// Renews the claim before another provider call (failover): the lease covers one
/// call, and the row names the provider being called, should this process die.
pub async fn refresh_claim(
    pool: &PgPool,
    job_id: &str,
    provider: &str,
) -> Result<bool, StoreError> {
    let refreshed = sqlx::query(REFRESH_CLAIM)
        .bind(job_id)
        .bind(provider)
        .execute(pool)
        .await?;
    Ok(refreshed.rows_affected() == 1)
}

fn attempts_of(row: &sqlx::postgres::PgRow) -> Result<u32, StoreError> {
    let attempts: i32 = row.try_get("attempts")?;
    u32::try_from(attempts).map_err(|_| StoreError::Corrupt)
}
