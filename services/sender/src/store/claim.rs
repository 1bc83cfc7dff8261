//! The `messages` table as the sender uses it: the job's state machine
//! (queued → sending → sent | failed | unknown) that makes delivery exactly-once in
//! effect. A job is claimed (`sending`) before any provider call, and a claim is
//! only taken by a compare-and-set, so two deliveries of one job never both call.
//!
//! Outcome writes all go through `record_outcome`, so they can later be batched.

use std::time::Duration;

use sqlx::{PgPool, Row};
use uuid::Uuid;

/// `messages.status` values (the proto `MessageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Failed,
    Unknown,
    Delivered,
    Undelivered,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Unknown => "unknown",
            Self::Delivered => "delivered",
            Self::Undelivered => "undelivered",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => Self::Queued,
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "failed" => Self::Failed,
            "unknown" => Self::Unknown,
            "delivered" => Self::Delivered,
            "undelivered" => Self::Undelivered,
            _ => return None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The job's account no longer exists (deleted after the job was produced).
    #[error("the job's account does not exist")]
    AccountMissing,
    #[error("messages table has an unreadable row")]
    Corrupt,
    #[error("job is contended by other deliveries")]
    Contended,
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        let foreign_key_violation = error
            .as_database_error()
            .and_then(|database| database.code())
            .is_some_and(|code| code == "23503");
        if foreign_key_violation {
            Self::AccountMissing
        } else {
            Self::Database(error)
        }
    }
}

/// The row a job starts as.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    pub job_id: &'a str,
    pub account_id: Uuid,
    pub event_id: &'a str,
    pub source_id: &'a str,
    pub rule_id: &'a str,
    /// E.164 when normalised, else the raw value (for rejected jobs).
    pub recipient: &'a str,
    pub body: &'a str,
    /// Provider route name.
    pub provider: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This delivery holds the job and may call the provider; `attempts` counts
    /// this call.
    Claimed { attempts: u32 },
    /// The job already reached a final state (any status other than queued or
    /// sending, including ones later versions add): acknowledge without a call.
    Finished { status: String },
    /// Another delivery holds a live claim (a duplicate of the job is being sent
    /// right now); look again after `retry_in`.
    HeldElsewhere { retry_in: Duration },
    /// A previous holder stopped between claim and outcome. The job is now
    /// `unknown`: it may have been sent, so it is not sent again.
    Abandoned,
}

pub const ABANDONED_REASON: &str = "sender stopped during the provider call; not resent";

const INSERT_CLAIM: &str = "INSERT INTO messages \
     (job_id, account_id, event_id, source_id, rule_id, recipient, body, status, provider, attempts) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'sending', $8, 1) \
     ON CONFLICT (job_id) DO NOTHING RETURNING attempts";

/// Seconds left on the current claim, if the row is `sending`.
const READ_STATE: &str = "SELECT status, \
     GREATEST(0, EXTRACT(EPOCH FROM (updated_at + make_interval(secs => $2) - now())))::float8 AS lease_left \
     FROM messages WHERE job_id = $1";

const RECLAIM_QUEUED: &str = "UPDATE messages SET status = 'sending', attempts = attempts + 1, updated_at = now() \
     WHERE job_id = $1 AND status = 'queued' RETURNING attempts";

const MARK_ABANDONED: &str = "UPDATE messages SET status = 'unknown', error = $2, updated_at = now() \
     WHERE job_id = $1 AND status = 'sending' AND updated_at <= now() - make_interval(secs => $3)";

/// Claims `message` for one provider call. `lease` is how long a `sending` claim
/// is presumed to belong to a live sender.
pub async fn claim(
    pool: &PgPool,
    message: &NewMessage<'_>,
    lease: Duration,
) -> Result<Claim, StoreError> {
    // Each step is a compare-and-set; losing one means another delivery moved the
    // row, so look again. Three rounds are plenty: every move is towards a final state.
    for _ in 0..3 {
        let inserted = sqlx::query(INSERT_CLAIM)
            .bind(message.job_id)
            .bind(message.account_id)
            .bind(message.event_id)
            .bind(message.source_id)
            .bind(message.rule_id)
            .bind(message.recipient)
            .bind(message.body)
            .bind(message.provider)
            .fetch_optional(pool)
            .await?;
        if let Some(row) = inserted {
            return Ok(Claim::Claimed {
                attempts: attempts_of(&row)?,
            });
        }
        let Some(row) = sqlx::query(READ_STATE)
            .bind(message.job_id)
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
                    .bind(message.job_id)
                    .fetch_optional(pool)
                    .await?;
                if let Some(row) = reclaimed {
                    return Ok(Claim::Claimed {
                        attempts: attempts_of(&row)?,
                    });
                }
            }
            Some(Status::Sending) => {
                let lease_left: f64 = row.try_get("lease_left")?;
                if lease_left > 0.0 {
                    return Ok(Claim::HeldElsewhere {
                        retry_in: Duration::from_secs_f64(lease_left),
                    });
                }
                let marked = sqlx::query(MARK_ABANDONED)
                    .bind(message.job_id)
                    .bind(ABANDONED_REASON)
                    .bind(lease.as_secs_f64())
                    .execute(pool)
                    .await?;
                if marked.rows_affected() == 1 {
                    return Ok(Claim::Abandoned);
                }
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

fn attempts_of(row: &sqlx::postgres::PgRow) -> Result<u32, StoreError> {
    let attempts: i32 = row.try_get("attempts")?;
    u32::try_from(attempts).map_err(|_| StoreError::Corrupt)
}

const INSERT_REJECTED: &str = "INSERT INTO messages \
     (job_id, account_id, event_id, source_id, rule_id, recipient, body, status, provider, attempts, error) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'failed', $8, 0, $9) \
     ON CONFLICT (job_id) DO UPDATE SET status = 'failed', error = EXCLUDED.error, updated_at = now() \
     WHERE messages.status = 'queued'";

/// Records a job that fails before any provider call (invalid number, no route).
/// A job already past `queued` keeps its state.
pub async fn record_rejected(
    pool: &PgPool,
    message: &NewMessage<'_>,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query(INSERT_REJECTED)
        .bind(message.job_id)
        .bind(message.account_id)
        .bind(message.event_id)
        .bind(message.source_id)
        .bind(message.rule_id)
        .bind(message.recipient)
        .bind(message.body)
        .bind(message.provider)
        .bind(reason)
        .execute(pool)
        .await?;
    Ok(())
}

/// What a provider call ended in, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutcomeRecord {
    pub job_id: String,
    /// `Sent`, `Failed`, `Unknown` or `Queued` (to be retried).
    pub status: Status,
    pub provider_message_id: String,
    pub error: String,
}

/// Only the holder's row moves: `sending`, or `unknown` when a redelivery gave the
/// claim up for dead while the call was in fact still running (what the provider
/// answered is more precise than "unknown").
const UPDATE_OUTCOME: &str = "UPDATE messages SET status = $2, \
     provider_message_id = CASE WHEN $3 = '' THEN provider_message_id ELSE $3 END, \
     error = $4, \
     sent_at = CASE WHEN $2 = 'sent' THEN now() ELSE sent_at END, \
     updated_at = now() \
     WHERE job_id = $1 AND status IN ('sending', 'unknown')";

/// Records the outcome of a provider call. Returns whether the row was still held.
pub async fn record_outcome(pool: &PgPool, outcome: &OutcomeRecord) -> Result<bool, StoreError> {
    let result = sqlx::query(UPDATE_OUTCOME)
        .bind(&outcome.job_id)
        .bind(outcome.status.as_str())
        .bind(&outcome.provider_message_id)
        .bind(&outcome.error)
        .execute(pool)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// A cheap round trip for readiness.
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
