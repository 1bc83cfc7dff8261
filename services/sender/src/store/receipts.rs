//! Delivery receipts, applied monotonically: sent < undelivered < delivered, so a
//! late `sent` never overwrites `delivered`. A multi-part message (parts in
//! `message_parts`) is delivered when every part is, and undelivered as soon as
//! one part is (until that part, too, reports delivered).
//!
//! A receipt can also settle a job recorded `unknown` (the sender died after the
//! provider took the message): the provider's word is better than ours.

use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{Status, Step, StoreError};

/// What applying a receipt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptApplied {
    /// The message moved to `status`.
    Updated {
        job_id: String,
        recipient: String,
        status: Status,
    },
    /// The message was already at or past what the receipt says; `status` is
    /// where it is.
    Unchanged {
        job_id: String,
        recipient: String,
        status: Option<Status>,
    },
    /// The message is still being sent (its outcome is not recorded yet): try later.
    NotYet,
    /// No message has this provider id (yet): try later, then give up.
    NotFound,
}

/// Receipt ranks; statuses without one (failed, cancelled, opted-out) are final
/// decisions of ours that receipts do not change.
fn rank(status: Status) -> Option<u8> {
    match status {
        Status::Unknown => Some(0),
        Status::Sent => Some(1),
        Status::Undelivered => Some(2),
        Status::Delivered => Some(3),
        _ => None,
    }
}

/// Parts first: a multi-part message's first part id is also the message's id.
const FIND_TARGET: &str = "SELECT job_id, part_index FROM ( \
       SELECT p.job_id, p.part_index, 0 AS preference FROM message_parts p JOIN messages m USING (job_id) \
         WHERE $2 <> '' AND p.provider_message_id = $2 AND m.account_id = $1 \
       UNION ALL \
       SELECT i.job_id, NULL::int4, 1 FROM provider_message_ids i JOIN messages m USING (job_id) \
         WHERE $2 <> '' AND i.provider_message_id = $2 AND m.account_id = $1 \
       UNION ALL \
       SELECT job_id, NULL::int4, 2 FROM messages WHERE $3 <> '' AND job_id = $3 AND account_id = $1 \
     ) targets ORDER BY preference LIMIT 1";

const LOCK_MESSAGE: &str = "SELECT status, recipient FROM messages WHERE job_id = $1 FOR UPDATE";

const UPDATE_PART: &str = "UPDATE message_parts SET status = $3, error = $4, updated_at = now() \
     WHERE job_id = $1 AND part_index = $2 \
       AND (CASE status WHEN 'sent' THEN 1 WHEN 'undelivered' THEN 2 WHEN 'delivered' THEN 3 ELSE 0 END) \
         < (CASE $3 WHEN 'sent' THEN 1 WHEN 'undelivered' THEN 2 WHEN 'delivered' THEN 3 ELSE 0 END)";

const PART_COUNTS: &str = "SELECT count(*) AS total, \
       count(*) FILTER (WHERE status = 'delivered') AS delivered, \
       count(*) FILTER (WHERE status = 'undelivered') AS undelivered \
     FROM message_parts WHERE job_id = $1";

const UPDATE_MESSAGE: &str = "UPDATE messages SET status = $2, \
       error = CASE WHEN $2 = 'undelivered' THEN $3 ELSE error END, \
       provider_message_id = CASE WHEN provider_message_id = '' THEN $4 ELSE provider_message_id END, \
       delivered_at = CASE WHEN $2 = 'delivered' THEN now() ELSE delivered_at END, \
       unknown_since = NULL, \
       history = history || $5::jsonb, updated_at = now() \
     WHERE job_id = $1";

/// Applies one receipt of `account_id`. `job_id_hint` is the job id when the
/// provider echoed it (else empty); `error` describes an undelivered message.
pub async fn apply_receipt(
    pool: &PgPool,
    account_id: Uuid,
    provider_message_id: &str,
    job_id_hint: &str,
    status: Status,
    error: &str,
) -> Result<ReceiptApplied, StoreError> {
    let mut transaction = pool.begin().await?;
    let Some(target) = sqlx::query(FIND_TARGET)
        .bind(account_id)
        .bind(provider_message_id)
        .bind(job_id_hint)
        .fetch_optional(&mut *transaction)
        .await?
    else {
        return Ok(ReceiptApplied::NotFound);
    };
    let job_id: String = target.try_get("job_id")?;
    let part_index: Option<i32> = target.try_get("part_index")?;
    let row = sqlx::query(LOCK_MESSAGE)
        .bind(&job_id)
        .fetch_one(&mut *transaction)
        .await?;
    let current_text: String = row.try_get("status")?;
    let recipient: String = row.try_get("recipient")?;
    let current = Status::parse(&current_text);
    if matches!(current, Some(Status::Queued | Status::Sending)) {
        return Ok(ReceiptApplied::NotYet);
    }
    let Some(current_rank) = current.and_then(rank) else {
        return Ok(ReceiptApplied::Unchanged {
            job_id,
            recipient,
            status: current,
        });
    };
    let derived = match part_index {
        None => status,
        Some(index) => {
            sqlx::query(UPDATE_PART)
                .bind(&job_id)
                .bind(index)
                .bind(status.as_str())
                .bind(error)
                .execute(&mut *transaction)
                .await?;
            let counts = sqlx::query(PART_COUNTS)
                .bind(&job_id)
                .fetch_one(&mut *transaction)
                .await?;
            let total: i64 = counts.try_get("total")?;
            let delivered: i64 = counts.try_get("delivered")?;
            let undelivered: i64 = counts.try_get("undelivered")?;
            if delivered == total {
                Status::Delivered
            } else if undelivered > 0 {
                Status::Undelivered
            } else {
                Status::Sent
            }
        }
    };
    let moves_forward = rank(derived).is_some_and(|new_rank| new_rank > current_rank);
    if !moves_forward {
        transaction.commit().await?;
        return Ok(ReceiptApplied::Unchanged {
            job_id,
            recipient,
            status: current,
        });
    }
    let detail = if error.is_empty() {
        derived.as_str().to_owned()
    } else {
        format!("{}: {error}", derived.as_str())
    };
    let step = Step::now(0, "", "receipt", &detail).to_json();
    sqlx::query(UPDATE_MESSAGE)
        .bind(&job_id)
        .bind(derived.as_str())
        .bind(error)
        .bind(provider_message_id)
        .bind(step)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(ReceiptApplied::Updated {
        job_id,
        recipient,
        status: derived,
    })
}
