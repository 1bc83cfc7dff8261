//! Dead letters: a job that kept failing transiently until it ran out of attempts
//! or age (or that a provider refused for a reason of its own, such as no credit,
//! with no other provider left) is recorded `failed` and kept here with its
//! history and the job as published, so the API can show it and retry it.

use sqlx::PgPool;

use super::StoreError;
use super::outcome::{OutcomeRecord, update_rows};

const INSERT_DEAD_LETTER: &str = "INSERT INTO dead_letters (job_id, account_id, reason, attempts, job, history) \
     SELECT job_id, account_id, $2, attempts, $3, history FROM messages WHERE job_id = $1 \
     ON CONFLICT (job_id) DO UPDATE SET reason = EXCLUDED.reason, attempts = EXCLUDED.attempts, \
       job = EXCLUDED.job, history = EXCLUDED.history, dead_lettered_at = now(), retried_at = NULL";

/// Records `record` (a final failure) and the dead letter in one transaction.
/// Returns whether the row was still held by this delivery.
pub async fn dead_letter(
    pool: &PgPool,
    record: &OutcomeRecord,
    job: &[u8],
) -> Result<bool, StoreError> {
    let mut transaction = pool.begin().await?;
    let updated = update_rows(&mut *transaction, std::slice::from_ref(record)).await?;
    if updated.first() != Some(&true) {
        return Ok(false);
    }
    sqlx::query(INSERT_DEAD_LETTER)
        .bind(&record.job_id)
        .bind(&record.error)
        .bind(job)
        .execute(&mut *transaction)
        .await?;
    transaction.commit().await?;
    Ok(true)
}
