//! The jobs stream's side of the bus's pull loop (`foco_bus::pull`, which bounds
//! the work in flight, keeps slow jobs alive with progress acks, acknowledges and
//! drains on shutdown): decodes each job, runs `Handler::handle` under a span that
//! continues the producer's trace and within the job's deadline, and says how to
//! acknowledge it.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use foco_proto::v1::SmsJob;
use prost::Message as _;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

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
    pub settings: LoopSettings,
    pub metrics: Metrics,
}

impl<R: RouteSource + 'static> foco_bus::Handle for Jobs<R> {
    async fn handle(&self, message: &Message) -> AckKind {
        process(self.handler.clone(), message, self.settings, &self.metrics).await
    }
}

/// Consumes jobs until `shutdown`, then drains those in flight.
pub async fn run<R>(
    handler: Arc<Handler<R>>,
    consumer: PullConsumer,
    settings: LoopSettings,
    metrics: Metrics,
    shutdown: CancellationToken,
) where
    R: RouteSource + 'static,
{
    let jobs = Jobs {
        handler,
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
    let span = tracing::info_span!(
        "sms_job",
        stream_sequence,
        delivery,
        job_id = job.job_id.as_str(),
        account_id = job.account_id.as_str(),
    );
    foco_bus::trace::set_parent_from(&span, message.headers.as_ref());
    let stamped_at_ms = job.created_at_ms.max(job.due_at_ms);
    if let Some(waited) = foco_runtime::latency::seconds_since_unix_ms(stamped_at_ms) {
        metrics.job_waited(waited);
    }
    let started = std::time::Instant::now();
    async move {
        // The handler's state is tens of kilobytes: boxed once here, rather than
        // moved along with the task.
        let work = Box::pin(handler.handle(&job, delivery));
        let within = tokio::time::timeout(settings.job_deadline, work);
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
        outcome.ack_kind()
    }
    .instrument(span)
    .await
}
