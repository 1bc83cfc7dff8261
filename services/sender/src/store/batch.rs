//! The sender's batched writes (`foco_runtime::batch`): claims and outcomes on
//! the hot path (both lingering for company, see `Writers::start`), holds in
//! bulk. At most `MAX_FLUSHES_IN_FLIGHT` statements of
//! each kind run at once.
//!
//! A failed batch is retried row by row (`split_on_failure`).

use std::future::Future;
use std::time::Duration;

use foco_runtime::batch::{BatchSettings, Batcher};
use foco_runtime::postgres::{FreshRowsFirst, KeptConnections};
use sqlx::PgPool;

use super::StoreError;
use super::claim::{Claim, ClaimRequest, claim_fresh_batch};
use super::compliance::{HoldRequest, hold_jobs};
use super::outcome::{OutcomeRecord, record_outcomes};
use crate::metrics::Metrics;

const MAX_FLUSHES_IN_FLIGHT: usize = 2;
/// How long an outcome waits for others to share its statement. Outcomes are
/// recorded after the provider call, so this delays the job's acknowledgement,
/// never its SMS; at 1,000 jobs a second it makes one statement of about five.
const OUTCOME_LINGER: Duration = Duration::from_millis(5);

/// The sender's batched writers: claims and outcomes on the hot path, and holds
/// (a throttled route's backlog is parked in bulk).
#[derive(Clone)]
pub struct Writers {
    claims: Batcher<ClaimRequest, Option<Claim>, StoreError>,
    outcomes: Batcher<OutcomeRecord, bool, StoreError>,
    holds: Batcher<HoldRequest, bool, StoreError>,
}

impl Writers {
    /// `claim_linger`: how long a batch of claims waits for more (the SMS
    /// waits with it; a statement per claim costs the machine more).
    pub fn start(
        pool: PgPool,
        max_batch: usize,
        claim_linger: Duration,
        metrics: &Metrics,
    ) -> Self {
        let settings = BatchSettings::natural(max_batch, MAX_FLUSHES_IN_FLIGHT);
        // Each writer keeps the connections its flushes run on (see
        // `KeptConnections`): a statement every few hundred microseconds must
        // not pay the pool's two pings each time.
        let claim_connections = KeptConnections::new(pool.clone(), MAX_FLUSHES_IN_FLIGHT);
        let claim_forms = std::sync::Arc::new(FreshRowsFirst::default());
        let claim_metrics = metrics.clone();
        let observe_claims = move |rows| claim_metrics.write_batch("claim", rows);
        let outcome_metrics = metrics.clone();
        let observe_outcomes = move |rows| outcome_metrics.write_batch("outcome", rows);
        let claims = Batcher::spawn(
            BatchSettings {
                linger: claim_linger,
                ..settings
            },
            observe_claims,
            move |requests: Vec<ClaimRequest>| {
                let connections = claim_connections.clone();
                let forms = claim_forms.clone();
                async move { flush_claims(&connections, &forms, requests).await }
            },
        );
        let outcome_connections = KeptConnections::new(pool.clone(), MAX_FLUSHES_IN_FLIGHT);
        let outcomes = Batcher::spawn(
            BatchSettings {
                linger: OUTCOME_LINGER,
                ..settings
            },
            observe_outcomes,
            move |records: Vec<OutcomeRecord>| {
                let connections = outcome_connections.clone();
                async move { flush_outcomes(&connections, records).await }
            },
        );
        let hold_metrics = metrics.clone();
        let holds = Batcher::spawn(
            settings,
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
    forms: &FreshRowsFirst,
    requests: Vec<ClaimRequest>,
) -> Vec<Result<Option<Claim>, StoreError>> {
    split_on_failure("claim", &requests, |chunk| async move {
        let mut connection = connections.acquire().await?;
        let claims = claim_fresh_batch(&mut connection, chunk, forms).await?;
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
