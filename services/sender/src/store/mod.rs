//! The sender's Postgres state (schema owned by control): the `messages` row of
//! each job and its state machine, queued → sending → sent | failed | unknown |
//! cancelled | opted-out (then delivered | undelivered from receipts), which makes
//! delivery exactly-once in effect (a job past its deadline goes from nothing or
//! queued straight to `expired`); plus opt-outs, dead letters, jobs held for
//! quiet hours or parked while their route has no send budget, receipts of
//! multi-part messages.
//!
//! The hot path (claims and outcomes) goes through `batch::Batcher`: concurrent
//! jobs' writes are grouped into one `UNNEST` statement, so recording outcomes
//! does not cap throughput. Each job still waits for its own row to be durable
//! before it is acknowledged.

pub mod batch;
mod claim;
mod compliance;
mod dead_letters;
mod outcome;
pub mod receipts;

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

pub use claim::{
    ABANDONED_REASON, Claim, ClaimRequest, OPTED_OUT_REASON, claim, claim_batch, claim_fresh_batch,
    mark_abandoned, refresh_claim, take_over,
};
pub use compliance::{
    DueHold, HoldRequest, KeywordApplied, KeywordChange, add_opt_out, apply_keyword, delete_holds,
    hold_jobs, is_opted_out, take_due_holds,
};
pub use dead_letters::dead_letter;
pub use outcome::{OutcomeRecord, RouteLock, record_outcome, record_outcomes};

/// `messages.status` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Queued,
    Sending,
    Sent,
    Failed,
    Unknown,
    Delivered,
    Undelivered,
    Cancelled,
    OptedOut,
    /// Reached the sender past its deadline: not sent.
    Expired,
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
            Self::Cancelled => "cancelled",
            Self::OptedOut => "opted-out",
            Self::Expired => "expired",
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
            "cancelled" => Self::Cancelled,
            "opted-out" => Self::OptedOut,
            "expired" => Self::Expired,
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
    #[error("the batched writer stopped")]
    WriterGone,
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

impl From<foco_runtime::batch::WriterGone> for StoreError {
    fn from(_: foco_runtime::batch::WriterGone) -> Self {
        Self::WriterGone
    }
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
    pub sender_id: &'a str,
    pub priority: i16,
}

impl NewMessage<'_> {
    pub fn to_request(&self) -> ClaimRequest {
        ClaimRequest {
            job_id: self.job_id.to_owned(),
            account_id: self.account_id,
            event_id: self.event_id.to_owned(),
            source_id: self.source_id.to_owned(),
            rule_id: self.rule_id.to_owned(),
            recipient: self.recipient.to_owned(),
            body: self.body.to_owned(),
            provider: self.provider.to_owned(),
            sender_id: self.sender_id.to_owned(),
            priority: self.priority,
            expired: String::new(),
        }
    }
}

/// One entry of `messages.history` (the proto `Attempt`).
#[derive(Debug, Clone, Serialize)]
pub struct Step<'a> {
    pub at: i64,
    pub attempt: u32,
    pub provider: &'a str,
    pub outcome: &'a str,
    pub detail: &'a str,
}

impl<'a> Step<'a> {
    pub fn now(attempt: u32, provider: &'a str, outcome: &'a str, detail: &'a str) -> Self {
        Self {
            at: chrono::Utc::now().timestamp_millis(),
            attempt,
            provider,
            outcome,
            detail,
        }
    }

    /// The JSON text appended to `messages.history`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

const INSERT_REJECTED: &str = "INSERT INTO messages \
     (job_id, account_id, event_id, source_id, rule_id, recipient, body, status, provider, attempts, error, \
      sender_id, priority, history) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, 'failed', $8, 0, $9, $10, $11, jsonb_build_array($12::jsonb)) \
     ON CONFLICT (job_id) DO UPDATE SET status = 'failed', error = EXCLUDED.error, updated_at = now(), \
       history = messages.history || $12::jsonb \
     WHERE messages.status = 'queued'";

/// Records a job that fails before any provider call (invalid number, no route).
/// A job already past `queued` keeps its state: then answers false.
pub async fn record_rejected(
    pool: &PgPool,
    message: &NewMessage<'_>,
    reason: &str,
) -> Result<bool, StoreError> {
    let step = Step::now(0, message.provider, "permanent", reason).to_json();
    let written = sqlx::query(INSERT_REJECTED)
        .bind(message.job_id)
        .bind(message.account_id)
        .bind(message.event_id)
        .bind(message.source_id)
        .bind(message.rule_id)
        .bind(message.recipient)
        .bind(message.body)
        .bind(message.provider)
        .bind(reason)
        .bind(message.sender_id)
        .bind(message.priority)
        .bind(step)
        .execute(pool)
        .await?;
    Ok(written.rows_affected() == 1)
}

/// A cheap round trip for readiness.
pub async fn ping(pool: &PgPool) -> Result<(), StoreError> {
    sqlx::query("SELECT 1").execute(pool).await?;
    Ok(())
}
