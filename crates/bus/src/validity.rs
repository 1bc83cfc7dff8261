//! A job's deadline on the bus: `SmsJob.expires_at_ms`, its due time plus its
//! validity. Producers (the rules service, control's `SendMessage`) set it
//! with [`deadline_ms`]; the sender asks [`is_past_deadline`] before claiming
//! a job, a comparison on the job alone (no lookup on the send path).

use std::time::Duration;

use foco_proto::v1::SmsJob;

/// The deadline of a job due at `due_at_ms` (unix ms) that may go out for
/// `valid_for` after it; saturates rather than wrapping.
pub fn deadline_ms(due_at_ms: i64, valid_for: Duration) -> i64 {
    let valid_for_ms = i64::try_from(valid_for.as_millis()).unwrap_or(i64::MAX);
    due_at_ms.saturating_add(valid_for_ms)
}

/// Whether `job` reaches its sender at `now_ms`, later than its deadline. A
/// job without one (0: produced before validity existed, or requeued by an
/// operator) never is.
pub fn is_past_deadline(job: &SmsJob, now_ms: i64) -> bool {
    job.expires_at_ms > 0 && now_ms > job.expires_at_ms
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_is_due_time_plus_validity() {
        assert_eq!(deadline_ms(1_000, Duration::from_secs(2)), 3_000);
        assert_eq!(deadline_ms(i64::MAX - 1, Duration::from_secs(60)), i64::MAX);
    }

    #[test]
    fn only_a_set_deadline_in_the_past_expires_a_job() {
        let job = |expires_at_ms| SmsJob {
            expires_at_ms,
            ..SmsJob::default()
        };
        assert!(!is_past_deadline(&job(0), i64::MAX));
        assert!(!is_past_deadline(&job(5_000), 5_000));
        assert!(is_past_deadline(&job(5_000), 5_001));
    }
}
