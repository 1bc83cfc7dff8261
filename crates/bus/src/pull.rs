//! The one pull loop every consumer of the bus runs: a bounded number of
//! messages worked on at once, each in its own task, acknowledged as its
//! handler says, kept alive with progress acks while a slow handler runs, and
//! drained within a grace period on shutdown.
//!
//! Acknowledgements go out together: each message's task hands its ack to one
//! acker task, which sends those of tasks woken together back to back
//! ([`crate::together`]).
//!
//! What a message means, and so how it is acknowledged, is the handler's
//! business ([`Handle`]); how messages are pulled, spread over tasks and
//! acknowledged is the same for every stream, and lives here only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long the loop waits before pulling again after NATS refused.
const PULL_RETRY: Duration = Duration::from_secs(1);

/// What a consumer does with one message.
pub trait Handle: Send + Sync + 'static {
    /// Works on `message` and says how to acknowledge it. The loop sends the
    /// acknowledgement; a handler never acks itself.
    fn handle(&self, message: &Message) -> impl Future<Output = AckKind> + Send;
}

#[derive(Debug, Clone, Copy)]
pub struct PullSettings {
    /// What the messages are, for logs ("events", "sms jobs", "receipts").
    pub what: &'static str,
    /// Messages worked on at once. Also the largest pull: messages buffered in
    /// the process beyond what it can work on would only wait out their
    /// `ack_wait` there.
    pub concurrency: usize,
    /// How long shutdown may take once it begins: the messages in flight
    /// finishing and their acks being sent. Those not acknowledged by then are
    /// abandoned, and JetStream redelivers them after `ack_wait`.
    pub shutdown_grace: Duration,
    /// The consumer's `ack_wait`, when handlers may run longer than it: the
    /// loop then tells JetStream every third of it that the message is still
    /// being worked on, so a slow handler never causes a redelivery of a live
    /// message. `None`: handlers finish well within it.
    pub keep_alive: Option<Duration>,
}

/// Pulls from `consumer` and runs `handler` on each message until `shutdown`,
/// then stops pulling and drains what is in flight. NATS refusing to serve the
/// consumer (while it restarts, say) pauses the loop; it never ends it.
pub async fn run<H: Handle>(
    consumer: PullConsumer,
    handler: Arc<H>,
    settings: PullSettings,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(settings.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    let (acks, handed_over) = mpsc::unbounded_channel();
    let acker = tokio::spawn(send_acks(handed_over, settings.what));
    'pull: while !shutdown.is_cancelled() {
        let messages = consumer
            .stream()
            .max_messages_per_batch(settings.concurrency.max(1))
            .messages()
            .await;
        let mut messages = match messages {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(error = %error, what = settings.what, "cannot pull; retrying");
                pause(&shutdown).await;
                continue 'pull;
            }
        };
        loop {
            while let Some(finished) = in_flight.try_join_next() {
                report_panic(finished, settings.what);
            }
            let permit = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'pull,
                permit = permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break 'pull,
                },
            };
            let next = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'pull,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    let handler = handler.clone();
                    let acks = acks.clone();
                    in_flight.spawn(async move {
                        let _permit = permit;
                        // A handler's state can be kilobytes: on the heap, the
                        // task stays small, and spawning and polling it does not
                        // copy that state around.
                        let work = Box::pin(handler.handle(&message));
                        let ack = match settings.keep_alive {
                            Some(ack_wait) => {
                                with_progress(work, &message, ack_wait, settings.what).await
                            }
                            None => work.await,
                        };
                        if let Err(mpsc::error::SendError((message, ack))) =
                            acks.send((message, ack))
                        {
                            acknowledge(&message, ack, settings.what).await;
                        }
                    });
                }
                Some(Err(error)) => {
                    // Errors repeat while NATS is away: do not spin on them.
                    tracing::warn!(error = %error, what = settings.what, "pulling failed; continuing");
                    pause(&shutdown).await;
                }
                None => {
                    tracing::warn!(what = settings.what, "the pull stream ended; pulling again");
                    continue 'pull;
                }
            }
        }
    }
    // One grace period for the whole shutdown: the tasks in flight, then the
    // acks they handed over, so a process stops within the grace its
    // orchestrator gives it.
    let deadline = tokio::time::Instant::now() + settings.shutdown_grace;
    drain(&mut in_flight, deadline, settings.what).await;
    // The acker ends once every task's sender is gone and what they handed
    // over is sent.
    drop(acks);
    let acker_abort = acker.abort_handle();
    match tokio::time::timeout_at(deadline, acker).await {
        Ok(Err(error)) if error.is_panic() => {
            tracing::error!(
                what = settings.what,
                "the acker panicked; unsent acks will be redelivered"
            );
        }
        Ok(_) => {}
        Err(_) => {
            tracing::warn!(
                what = settings.what,
                "acks not all sent within the shutdown grace period; those messages will be redelivered"
            );
            acker_abort.abort();
        }
    }
}

/// Sends the acks handed over by the messages' tasks, those of tasks woken
/// together (a batch's worth of messages whose shared write just committed)
/// back to back.
async fn send_acks(
    mut handed_over: mpsc::UnboundedReceiver<(Message, AckKind)>,
    what: &'static str,
) {
    let mut batch = Vec::with_capacity(crate::together::AT_ONCE);
    while crate::together::take(&mut handed_over, &mut batch).await {
        for (message, kind) in batch.drain(..) {
            acknowledge(&message, kind, what).await;
        }
    }
}

async fn pause(shutdown: &CancellationToken) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(PULL_RETRY) => {}
    }
}

/// Runs `work`, sending a progress ack every third of `ack_wait`.
async fn with_progress<F: Future>(
    work: F,
    message: &Message,
    ack_wait: Duration,
    what: &'static str,
) -> F::Output {
    let period = (ack_wait / 3).max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(work);
    loop {
        tokio::select! {
            output = &mut work => return output,
            _ = ticker.tick() => acknowledge(message, AckKind::Progress, what).await,
        }
    }
}

async fn acknowledge(message: &Message, kind: AckKind, what: &'static str) {
    if let Err(error) = message.ack_with(kind).await {
        // Unacknowledged, the message comes back after ack_wait; handlers are
        // idempotent, so the worst case is doing its work again.
        tracing::warn!(error = %error, what, "acknowledging failed; it will be redelivered");
    }
}

async fn drain(in_flight: &mut JoinSet<()>, deadline: tokio::time::Instant, what: &'static str) {
    if in_flight.is_empty() {
        return;
    }
    tracing::info!(
        what,
        in_flight = in_flight.len(),
        "waiting for messages in flight"
    );
    let all_done = async {
        while let Some(finished) = in_flight.join_next().await {
            report_panic(finished, what);
        }
    };
    if tokio::time::timeout_at(deadline, all_done).await.is_err() {
        tracing::warn!(
            what,
            abandoned = in_flight.len(),
            "shutdown grace period over with messages in flight; they will be redelivered"
        );
        in_flight.abort_all();
    }
}

fn report_panic(finished: Result<(), tokio::task::JoinError>, what: &'static str) {
    if let Err(error) = finished
        && error.is_panic()
    {
        tracing::error!(what, "a message's task panicked; it will be redelivered");
    }
}
