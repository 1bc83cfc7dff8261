//! The thin pull loop around `Handler::handle`: takes a permit (bounded in-flight
//! work), pulls the next job, decodes it, runs the handler under a span that
//! continues the producer's trace, keeps the message alive with progress acks while
//! the handler runs, publishes the status change the outcome recorded (before
//! the ack, so a crash in between redelivers the job, whose finished row
//! publishes it again), and acknowledges as the outcome says. On shutdown it
//! stops pulling and drains in-flight jobs within a grace period.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use foco_bus::StatusFeed;
use foco_bus::status::kind;
use foco_proto::v1::{SmsJob, StatusChange};
use futures::StreamExt;
use prost::Message as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::error::SenderError;
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

pub async fn run<R>(
    handler: Arc<Handler<R>>,
    feed: StatusFeed,
    consumer: PullConsumer,
    settings: LoopSettings,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Result<(), SenderError>
where
    R: RouteSource + 'static,
{
    let semaphore = Arc::new(Semaphore::new(settings.concurrency));
    // A batch no larger than the concurrency: messages buffered in this process
    // beyond what it can work on would only wait out their ack_wait here.
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(settings.concurrency)
        .messages()
        .await
        .map_err(SenderError::Pull)?;
    let mut in_flight = JoinSet::new();
    let mut stream_ended = false;
    loop {
        while let Some(finished) = in_flight.try_join_next() {
            report_panic(finished);
        }
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = semaphore.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let next = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            next = messages.next() => next,
        };
        match next {
            Some(Ok(message)) => {
                let job = process(
                    handler.clone(),
                    feed.clone(),
                    message,
                    settings,
                    metrics.clone(),
                    permit,
                );
                in_flight.spawn(job);
            }
            Some(Err(error)) => {
                tracing::warn!(error = %error, "pulling sms jobs failed; continuing");
                // Errors repeat while NATS is away; do not spin on them.
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
            None => {
                tracing::error!("sms job stream ended");
                stream_ended = true;
                break;
            }
        }
    }
    // Stop fetching first: nothing new starts while in-flight jobs finish.
    drop(messages);
    drain(&mut in_flight, settings.shutdown_grace).await;
    if stream_ended {
        return Err(SenderError::StreamEnded);
    }
    Ok(())
}

async fn drain(in_flight: &mut JoinSet<()>, grace: Duration) {
    if in_flight.is_empty() {
        return;
    }
    tracing::info!(jobs = in_flight.len(), "waiting for in-flight jobs");
    let all_done = async {
        while let Some(finished) = in_flight.join_next().await {
            report_panic(finished);
        }
    };
    if tokio::time::timeout(grace, all_done).await.is_err() {
        // Their claims stay `sending`; redeliveries record them as unknown.
        tracing::warn!(
            jobs = in_flight.len(),
            "shutdown grace elapsed; abandoning in-flight jobs"
        );
        in_flight.abort_all();
    }
}

fn report_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        tracing::error!("sms job task panicked");
    }
}

async fn process<R: RouteSource>(
    handler: Arc<Handler<R>>,
    feed: StatusFeed,
    message: Message,
    settings: LoopSettings,
    metrics: Metrics,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
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
            acknowledge(&message, AckKind::Term).await;
            return;
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
        let within = tokio::time::timeout(
            settings.job_deadline,
            with_progress(work, &message, settings.ack_wait),
        );
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
            && let Err(error) = feed.publish(&change).await
        {
            // The row is final: the redelivery finds it finished and publishes
            // the change then.
            tracing::warn!(error = %error, "publishing the status change failed; the job comes back for it");
            ack = AckKind::Nak(Some(crate::retry::backoff(delivery.max(1))));
        }
        acknowledge(&message, ack).await;
    }
    .instrument(span)
    .await;
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

/// Runs `work`, telling JetStream the job is still being worked on every third of
/// `ack_wait`, so a slow provider never causes a redelivery of a live job.
async fn with_progress<F: Future>(work: F, message: &Message, ack_wait: Duration) -> F::Output {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => acknowledge(message, AckKind::Progress).await,
        }
    }
}

async fn acknowledge(message: &Message, kind: AckKind) {
    if let Err(error) = message.ack_with(kind).await {
        // The job comes back after ack_wait, and its row says what to do then.
        tracing::warn!(error = %error, "acknowledging sms job failed");
    }
}
