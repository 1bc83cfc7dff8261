//! Background work every replica does, safe to run on all of them at once:
//! reading route pauses other replicas set, pruning finished rate windows, and
//! publishing held jobs that are due (marketing jobs whose quiet hours are over,
//! jobs parked while their route had no send budget).

use std::time::Duration;

use async_nats::jetstream;
use foco_bus::BusNames;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::handler::error_chain;
use crate::limits::RouteLimits;
use crate::metrics::Metrics;
use crate::store::{self, StoreError};

/// Held jobs published per transaction.
const RELEASE_BATCH: i64 = 200;
/// Most transactions per round: due jobs beyond this wait for the next round.
const RELEASE_BATCHES_PER_ROUND: usize = 25;
/// Rounds between prunes of the rate-limit and pause tables.
const PRUNE_EVERY: u32 = 60;

pub struct Maintenance {
    pub pool: PgPool,
    pub limits: RouteLimits,
    pub jetstream: jetstream::Context,
    pub nats: async_nats::Client,
    pub names: BusNames,
    pub metrics: Metrics,
    pub period: Duration,
}

impl Maintenance {
    pub async fn run(self, shutdown: CancellationToken) {
        let mut ticker = tokio::time::interval(self.period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut round = 0_u32;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            round = round.wrapping_add(1);
            if let Err(error) = self.limits.refresh_pauses().await {
                tracing::warn!(error = %error_chain(&error), "could not read route pauses");
            }
            let mut released = 0;
            for _ in 0..RELEASE_BATCHES_PER_ROUND {
                match self.release_due_holds().await {
                    Ok(count) => {
                        released += count;
                        if count < RELEASE_BATCH as usize {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(error = %error, "could not release held jobs");
                        break;
                    }
                }
            }
            if released > 0 {
                self.metrics.released(released as u64);
                tracing::debug!(count = released, "held jobs released");
            }
            if round.is_multiple_of(PRUNE_EVERY)
                && let Err(error) = self.limits.prune().await
            {
                tracing::warn!(error = %error_chain(&error), "could not prune rate-limit state");
            }
        }
    }

    /// Publishes due holds and deletes them in one transaction: a crash between
    /// the two publishes them again (harmless: the job's row makes a second copy
    /// a no-op), never loses them. Replicas skip each other's locked rows.
    async fn release_due_holds(&self) -> Result<usize, ReleaseError> {
        let mut transaction = self.pool.begin().await.map_err(StoreError::from)?;
        let due = store::take_due_holds(&mut transaction, RELEASE_BATCH).await?;
        if due.is_empty() {
            return Ok(0);
        }
        let mut released = Vec::with_capacity(due.len());
        for hold in due {
            let msg_id = foco_bus::release_msg_id(&hold.job_id, hold.release_at_ms);
            let span = release_span(&hold.job_id, &hold.trace_context);
            foco_bus::publish_durable(
                &self.jetstream,
                &self.nats,
                self.names.sms_subject(&hold.account_id.to_string()),
                &msg_id,
                hold.job,
                Duration::from_secs(5),
            )
            .instrument(span)
            .await?;
            released.push(hold.job_id);
        }
        store::delete_holds(&mut transaction, &released).await?;
        transaction.commit().await.map_err(StoreError::from)?;
        Ok(released.len())
    }
}

/// The span of a held job's publish: a child of the job's span that parked it,
/// so the job's trace goes on after the wait. None when that span was not
/// exported.
fn release_span(job_id: &str, trace_context: &str) -> tracing::Span {
    if trace_context.is_empty() {
        return tracing::Span::none();
    }
    let span = tracing::info_span!("held_job.publish", job_id, otel.kind = "producer");
    foco_runtime::telemetry::propagation::set_parent_from_text(&span, trace_context);
    span
}

#[derive(Debug, thiserror::Error)]
enum ReleaseError {
    #[error("held jobs unavailable: {0}")]
    Store(#[from] StoreError),
    #[error("could not publish a released job: {0}")]
    Publish(#[from] foco_bus::PublishError),
}
