//! Batched writes. Jobs submit their claim or outcome and wait for their own
//! answer; a writer task groups whatever is waiting into one statement. Batching
//! is "natural": a write that finds the writer idle goes out alone at once, and
//! writes that arrive while a batch is in flight wait for the next one, so batches
//! grow with load and latency stays low when it is quiet. At most
//! `MAX_FLUSHES_IN_FLIGHT` statements run at once.
//!
//! A failed batch is retried row by row (`split_on_failure`).

use std::future::Future;
use std::sync::Arc;

use foco_runtime::postgres::KeptConnections;
use sqlx::PgPool;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use super::StoreError;
use super::claim::{Claim, ClaimRequest, claim_batch};
use super::compliance::{HoldRequest, hold_jobs};
use super::outcome::{OutcomeRecord, record_outcomes};
use crate::metrics::Metrics;

const MAX_FLUSHES_IN_FLIGHT: usize = 2;

struct Pending<I, O> {
    item: I,
    reply: oneshot::Sender<Result<O, StoreError>>,
}

/// A writer task and the channel to it. Dropping the last clone stops the task
/// (and aborts a flush in progress, as a killed process would).
pub struct Batcher<I, O> {
    sender: mpsc::Sender<Pending<I, O>>,
    _task: Arc<AbortOnDropHandle<()>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            _task: self._task.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// `flush` answers one result per item, in order.
    /// `observe` is told each batch's size.
    pub fn spawn<F, Fut>(
        max_batch: usize,
        observe: impl Fn(usize) + Send + 'static,
        flush: F,
    ) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Vec<Result<O, StoreError>>> + Send + 'static,
    {
        let max_batch = max_batch.max(1);
        // Bounded: a writer that cannot keep up pushes back on the jobs.
        let (sender, receiver) = mpsc::channel(max_batch * 4);
        let task = tokio::spawn(write_loop(receiver, max_batch, observe, Arc::new(flush)));
        Self {
            sender,
            _task: Arc::new(AbortOnDropHandle::new(task)),
        }
    }

    pub async fn submit(&self, item: I) -> Result<O, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Pending { item, reply })
            .await
            .map_err(|_| StoreError::WriterGone)?;
        answer.await.map_err(|_| StoreError::WriterGone)?
    }
}

async fn write_loop<I, O, F, Fut>(
    mut receiver: mpsc::Receiver<Pending<I, O>>,
    max_batch: usize,
    observe: impl Fn(usize),
    flush: Arc<F>,
) where
    I: Send + 'static,
    O: Send + 'static,
    F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Vec<Result<O, StoreError>>> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(MAX_FLUSHES_IN_FLIGHT));
    let mut flushes = JoinSet::new();
    loop {
        while flushes.try_join_next().is_some() {}
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let Some(first) = receiver.recv().await else {
            break;
        };
        let mut batch = Vec::with_capacity(max_batch.min(64));
        batch.push(first);
        while batch.len() < max_batch {
            match receiver.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) => break,
            }
        }
        observe(batch.len());
        let flush = flush.clone();
        flushes.spawn(async move {
            let _permit = permit;
            let (items, replies): (Vec<I>, Vec<_>) = batch
                .into_iter()
                .map(|pending| (pending.item, pending.reply))
                .unzip();
            let results = flush(items).await;
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        });
    }
    while flushes.join_next().await.is_some() {}
}

/// The sender's batched writers: claims and outcomes on the hot path, and holds
/// (a throttled route's backlog is parked in bulk).
#[derive(Clone)]
pub struct Writers {
    claims: Batcher<ClaimRequest, Option<Claim>>,
    outcomes: Batcher<OutcomeRecord, bool>,
    holds: Batcher<HoldRequest, bool>,
}

impl Writers {
    pub fn start(pool: PgPool, max_batch: usize, metrics: &Metrics) -> Self {
        // Each writer keeps the connections its flushes run on (see
        // `KeptConnections`): a statement every few hundred microseconds must
        // not pay the pool's two pings each time.
        let claim_connections = KeptConnections::new(pool.clone(), MAX_FLUSHES_IN_FLIGHT);
        let claim_metrics = metrics.clone();
        let observe_claims = move |rows| claim_metrics.write_batch("claim", rows);
        let outcome_metrics = metrics.clone();
        let observe_outcomes = move |rows| outcome_metrics.write_batch("outcome", rows);
        let claims = Batcher::spawn(
            max_batch,
            observe_claims,
            move |requests: Vec<ClaimRequest>| {
                let connections = claim_connections.clone();
                async move { flush_claims(&connections, requests).await }
            },
        );
        let outcome_connections = KeptConnections::new(pool.clone(), MAX_FLUSHES_IN_FLIGHT);
        let outcomes = Batcher::spawn(
            max_batch,
            observe_outcomes,
            move |records: Vec<OutcomeRecord>| {
                let connections = outcome_connections.clone();
                async move { flush_outcomes(&connections, records).await }
            },
        );
        let hold_metrics = metrics.clone();
        let holds = Batcher::spawn(
            max_batch,
            move |rows| hold_metrics.write_batch("hold", rows),
            move |requests: Vec<HoldRequest>| {
                let pool = pool.clone();
                async move { split_on_failure("hold", &requests, |chunk| hold_jobs(&pool, chunk)).await }
            },
        );
        Self {
            claims,
            outcomes,
            holds,
        }
    }

    /// `Some(claim)` for a job whose row this created; `None` when the row
    /// existed (take the per-job path).
    pub async fn claim(&self, request: ClaimRequest) -> Result<Option<Claim>, StoreError> {
        self.claims.submit(request).await
    }

    /// Whether the row was still held by this delivery.
    pub async fn record(&self, record: OutcomeRecord) -> Result<bool, StoreError> {
        self.outcomes.submit(record).await
    }

    /// Whether the job was parked (false: its row is past `queued`).
    pub async fn hold(&self, request: HoldRequest) -> Result<bool, StoreError> {
        self.holds.submit(request).await
    }
}

async fn flush_claims(
    connections: &KeptConnections,
    requests: Vec<ClaimRequest>,
) -> Vec<Result<Option<Claim>, StoreError>> {
    split_on_failure("claim", &requests, |chunk| async move {
        let mut connection = connections.acquire().await?;
        let claims = claim_batch(&mut *connection, chunk).await?;
        connection.keep();
        Ok(claims)
    })
    .await
    .into_iter()
    .map(Result::flatten)
    .collect()
}

/// Records outcomes on one of `connections`.
async fn record_on(
    connections: &KeptConnections,
    records: &[OutcomeRecord],
) -> Result<Vec<bool>, StoreError> {
    let mut connection = connections.acquire().await?;
    let updated = record_outcomes(&mut connection, records).await?;
    connection.keep();
    Ok(updated)
}

/// Writes `items` in one statement; if that fails, row by row, so that one bad
/// row (a job id twice in one batch, text Postgres refuses) cannot
/// fail its neighbours.
async fn split_on_failure<'a, I, O, F, Fut>(
    what: &str,
    items: &'a [I],
    write: F,
) -> Vec<Result<O, StoreError>>
where
    F: Fn(&'a [I]) -> Fut,
    Fut: Future<Output = Result<Vec<O>, StoreError>>,
{
    match write(items).await {
        Ok(written) => written.into_iter().map(Ok).collect(),
        Err(error) if items.len() == 1 => vec![Err(error)],
        Err(error) => {
            tracing::warn!(error = %error, rows = items.len(), "batched {what} failed; writing row by row");
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                results.push(
                    write(std::slice::from_ref(item))
                        .await
                        .and_then(|mut written| written.pop().ok_or(StoreError::Corrupt)),
                );
            }
            results
        }
    }
}

async fn flush_outcomes(
    connections: &KeptConnections,
    records: Vec<OutcomeRecord>,
) -> Vec<Result<bool, StoreError>> {
    // A brief Postgres hiccup must not turn known outcomes into `unknown`: the
    // batch is tried again before it is written row by row.
    let mut pause = std::time::Duration::from_millis(100);
    for _ in 0..3 {
        match record_on(connections, &records).await {
            Ok(updated) => return updated.into_iter().map(Ok).collect(),
            Err(StoreError::Database(error)) => {
                tracing::warn!(error = %error, rows = records.len(), "outcome write failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            Err(_) => break,
        }
    }
    let mut results = Vec::with_capacity(records.len());
    for record in &records {
        results.push(
            record_on(connections, std::slice::from_ref(record))
                .await
                .map(|mut updated| updated.pop().unwrap_or(false)),
        );
    }
    results
}
