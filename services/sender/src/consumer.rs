//! The jobs stream's side of the bus's pull loop (`foco_bus::pull`, which bounds
//! the work in flight, keeps slow jobs alive with progress acks, acknowledges and
//! drains on shutdown): decodes each job, runs `Handler::handle` under a span that
//! continues the producer's trace and within the job's deadline, publishes the
//! status change the outcome recorded (before the ack, so a crash in between
//! redelivers the job, whose finished row publishes it again), and says how to
//! acknowledge it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use foco_bus::StatusFeed;
use foco_bus::status::kind;
use foco_proto::v1::{SmsJob, StatusChange};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

use crate::handler::{Handler, Outcome};
use crate::metrics::Metrics;
use crate::routing::RouteSource;

#[derive(Debug, Clone, Copy)]
pub struct LoopSettings {
    pub concurrency: usize,
    pub ack_wait: Duration,
    pub shutdown_grace: Duration,
    /// Longest one job may take (see `Config::job_deadline`).
    pub job_deadline: Duration,
}

/// How the sender handles one message of the jobs stream, for the bus's pull
/// loop.
pub struct Jobs<R> {
    pub handler: Arc<Handler<R>>,
    pub feed: StatusFeed,
    pub settings: LoopSettings,
    pub metrics: Metrics,
}

impl<R: RouteSource + 'static> foco_bus::Handle for Jobs<R> {
    async fn handle(&self, message: &Message) -> AckKind {
        process(
            self.handler.clone(),
            &self.feed,
            message,
            self.settings,
            &self.metrics,
        )
        .await
    }
}

/// Consumes jobs until `shutdown`, then drains those in flight.
pub async fn run<R>(
    handler: Arc<Handler<R>>,
    feed: StatusFeed,
    consumer: PullConsumer,
    settings: LoopSettings,
    metrics: Metrics,
    shutdown: CancellationToken,
) where
    R: RouteSource + 'static,
{
    let jobs = Jobs {
        handler,
        feed,
        settings,
        metrics,
    };
    foco_bus::pull::run(
        consumer,
        Arc::new(jobs),
        foco_bus::PullSettings {
            what: "sms jobs",
            concurrency: settings.concurrency,
            shutdown_grace: settings.shutdown_grace,
            // A provider may take longer than ack_wait to answer.
            keep_alive: Some(settings.ack_wait),
        },
        shutdown,
    )
    .await;
}

async fn process<R: RouteSource>(
    handler: Arc<Handler<R>>,
    feed: &StatusFeed,
    message: &Message,
    settings: LoopSettings,
    metrics: &Metrics,
) -> AckKind {
    let (stream_sequence, delivery) = match message.info() {
        Ok(info) => (
            info.stream_sequence,
            u32::try_from(info.delivered).unwrap_or(u32::MAX),
        ),
        Err(_) => (0, 1),
    };
    // Decoded before the span exists, so the span is built once with every
    // field: recording fields later formats the span's fields again each time.
    let job = match SmsJob::decode(message.payload.clone()) {
        Ok(job) => job,
        Err(error) => {
            tracing::warn!(stream_sequence, error = %error, "undecodable sms job; terminating it");
            metrics.job("poison");
            return AckKind::Term;
        }
    };
    let work = foco_runtime::work_span!(
        "sms_job",
        stream_sequence = stream_sequence,
        delivery = delivery,
        job_id = job.job_id.as_str(),
        account_id = job.account_id.as_str(),
    );
    if let Some(span) = work.span() {
        foco_bus::trace::set_parent_from(span, message.headers.as_ref());
    }
    let stamped_at_ms = job.created_at_ms.max(job.due_at_ms);
    if let Some(waited) = foco_runtime::latency::seconds_since_unix_ms(stamped_at_ms) {
        metrics.job_waited(waited);
    }
    let started = std::time::Instant::now();
    work.instrument(async move {
        // The handler's state is tens of kilobytes: boxed once here, rather than
        // moved along with the task.
        let handling = Box::pin(handler.handle(&job, delivery));
        let within = tokio::time::timeout(settings.job_deadline, handling);
        let outcome = match within.await {
            Ok(outcome) => outcome,
            Err(_) => {
                // Something it waits on stopped answering without failing (a
                // Postgres connection that went silent): give the slot back. A
                // claim it took stays `sending` until its lease ends, and the
                // redelivery then settles it as after a crash.
                tracing::error!(
                    deadline = ?settings.job_deadline,
                    "sms job took longer than its deadline; abandoned for a later delivery"
                );
                metrics.job("deadline");
                Outcome::Deferred {
                    delay: crate::retry::backoff(delivery.max(1)),
                }
            }
        };
        if let Outcome::Poison { reason } = &outcome {
            tracing::warn!(stream_sequence, reason = %reason, "sms job cannot be handled; terminating it");
        }
        metrics.job(outcome.label());
        metrics.job_handled(started.elapsed().as_secs_f64());
        let mut ack = outcome.ack_kind();
        if let Some(change) = status_change_of(&job, &outcome)
            && let Err(error) = feed.publish(change).await
        {
            // The row is final: the redelivery finds it finished and publishes
            // the change then.
            tracing::warn!(error = %error, "publishing the status change failed; the job comes back for it");
            ack = AckKind::Nak(Some(crate::retry::backoff(delivery.max(1))));
        }
        ack
    })
    .await
}

/// The status change an outcome recorded, if the feed carries it.
fn status_change_of(job: &SmsJob, outcome: &Outcome) -> Option<StatusChange> {
    let (change_kind, reason) = match outcome {
        Outcome::Sent => (kind::SENT, ""),
        Outcome::Failed { reason } | Outcome::DeadLettered { reason } => {
            (kind::FAILED, reason.as_str())
        }
        Outcome::Unknown => (kind::UNKNOWN, ""),
        Outcome::OptedOut => (kind::OPTED_OUT, ""),
        Outcome::Expired { reason } => (kind::EXPIRED, reason.as_str()),
        Outcome::Finished { status } => (kind::of_message_status(status)?, ""),
        _ => return None,
    };
    let mut change = foco_bus::status_change(&job.account_id, &job.job_id, change_kind);
    change.reason = reason.to_owned();
    change.to.clone_from(&job.to);
    change.provider.clone_from(&job.provider);
    change.event_id.clone_from(&job.event_id);
    change.rule_id.clone_from(&job.rule_id);
    change.metadata.clone_from(&job.metadata);
    Some(change)
}
