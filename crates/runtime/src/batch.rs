//! Group commit for any write: callers submit one item each and wait for their
//! own answer; a writer task hands whatever is waiting to one `flush`.
//!
//! Batching is "natural": an item that finds the writer idle goes out alone at
//! once, and items that arrive while flushes are in flight wait for the next
//! one, so batches grow with load and latency stays low when it is quiet. At
//! most `flushes_in_flight` flushes run at once. Rules' store, the sender's
//! claims and outcomes go through one, and so does every status-feed publish.
//!
//! A batch may also `linger`: wait up to that long after its first item was
//! submitted for more. At a moderate rate that turns one statement or message
//! per item into one per several, where each costs the machine the same few
//! hundred microseconds of wakeups whatever it carries; under load batches
//! fill before it runs out. It lingers only while items come often enough for
//! company to be likely: when its first item was submitted within twice the
//! linger of the item before it. At a lower rate lingering would add its wait
//! (and the timer's own, a millisecond or so) and save nothing. Writes on an
//! SMS's path (rules' store, the sender's claims) linger [`SMS_PATH_LINGER`];
//! writes that report work already done (an outcome recorded after the SMS
//! went out, a status change for the feed) 5 ms.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// How long a batch of writes on an SMS's path (rules' store, the sender's
/// claims) lingers by default: the SMS waits with it.
pub const SMS_PATH_LINGER: Duration = Duration::from_millis(1);

/// The longest a service lets an operator make a batch linger: every item of
/// the batch waits that long, and the SMS behind it.
pub const MOST_LINGER: Duration = Duration::from_secs(1);

/// The writer task is gone (its process is shutting down): the item was not
/// written.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the batched writer stopped")]
pub struct WriterGone;

/// How a [`Batcher`] groups items.
#[derive(Debug, Clone, Copy)]
pub struct BatchSettings {
    /// Most items one flush receives.
    pub max_batch: usize,
    /// Most flushes running at once; items wait while all are busy.
    pub flushes_in_flight: usize,
    /// How long a batch may wait, from its first item's submission, for more
    /// items before it is flushed; zero flushes what is waiting at once. Only
    /// a batch whose first item came within twice this of the item before it
    /// waits.
    pub linger: Duration,
}

impl BatchSettings {
    /// Natural batching: no lingering.
    pub fn natural(max_batch: usize, flushes_in_flight: usize) -> Self {
        Self {
            max_batch,
            flushes_in_flight,
            linger: Duration::ZERO,
        }
    }
}

struct Pending<I, O, E> {
    item: I,
    reply: oneshot::Sender<Result<O, E>>,
    /// When it was submitted: a lingering batch's deadline counts from its
    /// first item's.
    submitted: Instant,
}

/// A writer task and the channel to it. Dropping the last clone stops the task
/// (and aborts a flush in progress, as a killed process would).
pub struct Batcher<I, O, E> {
    sender: mpsc::Sender<Pending<I, O, E>>,
    _task: Arc<AbortOnDropHandle<()>>,
}

impl<I, O, E> Clone for Batcher<I, O, E> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            _task: self._task.clone(),
        }
    }
}

impl<I, O, E> Batcher<I, O, E>
where
    I: Send + 'static,
    O: Send + 'static,
    E: From<WriterGone> + Send + 'static,
{
    /// `flush` answers one result per item, in order; an item it gives no
    /// answer for gets [`WriterGone`]. `observe` is told each batch's size.
    pub fn spawn<F, Fut>(
        settings: BatchSettings,
        observe: impl Fn(usize) + Send + 'static,
        flush: F,
    ) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O, E>>> + Send + 'static,
    {
        let max_batch = settings.max_batch.max(1);
        // Bounded: a writer that cannot keep up pushes back on its callers.
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        let task = tokio::spawn(write_loop(
            receiver,
            BatchSettings {
                max_batch,
                flushes_in_flight: settings.flushes_in_flight.max(1),
                linger: settings.linger,
            },
            observe,
            Arc::new(flush),
        ));
        Self {
            sender,
            _task: Arc::new(AbortOnDropHandle::new(task)),
        }
    }

    pub async fn submit(&self, item: I) -> Result<O, E> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending {
                item,
                reply,
                submitted: Instant::now(),
            })
            .await
            .map_err(|_| WriterGone)?;
        answer.await.map_err(|_| WriterGone)?
    }
}

async fn write_loop<I, O, E, F, Fut>(
    mut receiver: mpsc::Receiver<Pending<I, O, E>>,
    settings: BatchSettings,
    observe: impl Fn(usize),
    flush: Arc<F>,
) where
    I: Send + 'static,
    O: Send + 'static,
    E: Send + 'static,
    F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<O, E>>> + Send + 'static,
{
    let BatchSettings {
        max_batch,
        flushes_in_flight,
        linger,
    } = settings;
    let permits = Arc::new(Semaphore::new(flushes_in_flight));
    let mut flushes = JoinSet::new();
    // When the last item taken was submitted: how close together items come.
    let mut last_submitted: Option<Instant> = None;
    loop {
        while flushes.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let Some(first) = receiver.recv().await else {
            break;
        };
        // Lingering counts from the first item's submission: an item that
        // already waited for a free flush waits no longer than that.
        let company_likely = last_submitted.is_some_and(|last| {
            first.submitted.saturating_duration_since(last) < linger.saturating_mul(2)
        });
        let deadline = (!linger.is_zero() && company_likely).then(|| first.submitted + linger);
        let mut batch = Vec::with_capacity(max_batch.min(64));
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => {
                    let Some(deadline) = deadline else { break };
                    match tokio::time::timeout_at(deadline, receiver.recv()).await {
                        Ok(Some(pending)) => batch.push(pending),
                        // Run out, or every sender gone: flush what there is.
                        Ok(None) | Err(_) => break,
                    }
                }
            }
        }
        last_submitted = batch.last().map(|pending| pending.submitted);
        observe(batch.len());
        let flush = flush.clone();
        flushes.spawn(async move {
            let _permit = permit;
            let (items, replies): (Vec<I>, Vec<_>) = batch
                .into_iter()
                .map(|pending| (pending.item, pending.reply))
                .unzip();
            // On the heap: a flush's future holds a database round trip's
            // whole state (kilobytes), and the task would otherwise carry it
            // inline, copied each time the task is spawned, stored and
            // finished.
            let results = Box::pin(flush(items)).await;
            // Replies without a result are dropped: their callers see WriterGone.
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        });
    }
    while flushes.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Debug, PartialEq)]
    enum TestError {
        Gone,
        Odd(u32),
    }

    impl From<WriterGone> for TestError {
        fn from(_: WriterGone) -> Self {
            Self::Gone
        }
    }

    #[tokio::test]
    async fn items_waiting_together_share_a_flush_and_get_their_own_answers() {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let observed = sizes.clone();
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let flush_gate = gate.clone();
        let batcher: Batcher<u32, u32, TestError> = Batcher::spawn(
            BatchSettings::natural(8, 1),
            move |size| observed.lock().unwrap().push(size),
            move |items: Vec<u32>| {
                let gate = flush_gate.clone();
                async move {
                    // Each flush waits to be let through, so the items sent
                    // meanwhile pile up for the next one.
                    gate.acquire().await.unwrap().forget();
                    items
                        .into_iter()
                        .map(|item| {
                            if item % 2 == 0 {
                                Ok(item * 10)
                            } else {
                                Err(TestError::Odd(item))
                            }
                        })
                        .collect()
                }
            },
        );
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(0).await }
        });
        // The first item is in its flush (alone) before the others arrive.
        while sizes.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        let rest: Vec<_> = (1..=5)
            .map(|item| {
                let batcher = batcher.clone();
                tokio::spawn(async move { batcher.submit(item).await })
            })
            .collect();
        while batcher.sender.capacity() > 32 - 5 {
            tokio::task::yield_now().await;
        }
        gate.add_permits(2);
        assert_eq!(first.await.unwrap(), Ok(0));
        let mut answers = Vec::new();
        for task in rest {
            answers.push(task.await.unwrap());
        }
        assert_eq!(
            answers,
            vec![
                Err(TestError::Odd(1)),
                Ok(20),
                Err(TestError::Odd(3)),
                Ok(40),
                Err(TestError::Odd(5))
            ]
        );
        assert_eq!(*sizes.lock().unwrap(), vec![1, 5]);
    }

    /// Sizes of the batches a writer flushed, in order.
    type Sizes = Arc<Mutex<Vec<usize>>>;

    /// A writer whose flushes record their batches' sizes and answer each
    /// item with itself.
    fn recording(settings: BatchSettings) -> (Batcher<u32, u32, TestError>, Sizes) {
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let observed = sizes.clone();
        let batcher = Batcher::spawn(
            settings,
            move |size| observed.lock().unwrap().push(size),
            |items: Vec<u32>| async move { items.into_iter().map(Ok).collect() },
        );
        (batcher, sizes)
    }

    #[tokio::test]
    async fn a_lingering_batch_waits_for_items_submitted_after_its_first() {
        let (batcher, sizes) = recording(BatchSettings {
            max_batch: 3,
            flushes_in_flight: 1,
            linger: Duration::from_secs(3600),
        });
        // The writer's first item has no item before it to say that more
        // are coming: it goes at once, alone.
        assert_eq!(batcher.submit(0).await, Ok(0));
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
        let first = tokio::spawn({
            let batcher = batcher.clone();
            async move { batcher.submit(1).await }
        });
        // Once the writer holds the first item (the channel is empty again),
        // a natural writer has already handed it to a flush, alone; this one
        // waits for more.
        while batcher.sender.capacity() < batcher.sender.max_capacity() {
            tokio::task::yield_now().await;
        }
        assert_eq!(*sizes.lock().unwrap(), vec![1]);
        assert!(!first.is_finished());
        let (second, third) = tokio::join!(batcher.submit(2), batcher.submit(3));
        assert_eq!((second, third), (Ok(2), Ok(3)));
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(*sizes.lock().unwrap(), vec![1, 3], "one flush, once full");
    }

    #[tokio::test(start_paused = true)]
    async fn a_lingering_batch_goes_with_what_it_has_when_its_time_is_up() {
        let linger = Duration::from_millis(20);
        let (batcher, sizes) = recording(BatchSettings {
            max_batch: 64,
            flushes_in_flight: 1,
            linger,
        });
        // The first item goes at once (nothing says more are coming); the
        // clock is paused, so no time passes unless something waits on a timer.
        let submitted = Instant::now();
        assert_eq!(batcher.submit(6).await, Ok(6));
        assert_eq!(submitted.elapsed(), Duration::ZERO);
        // The next comes right after it: it waits for company, then goes alone.
        let submitted = Instant::now();
        assert_eq!(batcher.submit(7).await, Ok(7));
        assert!(submitted.elapsed() >= linger, "it lingered");
        // After a quiet spell longer than twice the linger, lingering would
        // only add its wait: the item goes at once.
        tokio::time::sleep(linger * 3).await;
        let submitted = Instant::now();
        assert_eq!(batcher.submit(9).await, Ok(9));
        assert_eq!(submitted.elapsed(), Duration::ZERO);
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1, 1]);
        // A natural writer sends a lone item at once, however close together
        // items come.
        let (natural, sizes) = recording(BatchSettings::natural(64, 1));
        assert_eq!(natural.submit(8).await, Ok(8));
        let submitted = Instant::now();
        assert_eq!(natural.submit(8).await, Ok(8));
        assert_eq!(submitted.elapsed(), Duration::ZERO);
        assert_eq!(*sizes.lock().unwrap(), vec![1, 1]);
    }

    #[tokio::test]
    async fn an_item_the_flush_gives_no_answer_for_is_refused() {
        let batcher: Batcher<u32, u32, TestError> = Batcher::spawn(
            BatchSettings::natural(4, 1),
            |_| {},
            |_items: Vec<u32>| async { Vec::new() },
        );
        assert_eq!(batcher.submit(1).await, Err(TestError::Gone));
    }
}
