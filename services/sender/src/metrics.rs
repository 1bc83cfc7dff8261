//! Prometheus metrics of the sender. Label values come from small fixed sets
//! (outcome names, provider kinds), never from user data.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: &'static str,
    outcome: &'static str,
}

type HistogramFamily = Family<ProviderLabels, Histogram, fn() -> Histogram>;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiptLabels {
    result: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WriteLabels {
    /// `claim` or `outcome`.
    write: &'static str,
}

#[derive(Clone)]
pub struct Metrics {
    jobs: Family<JobLabels, Counter>,
    provider_calls: HistogramFamily,
    receipts: Family<ReceiptLabels, Counter>,
    released: Counter,
    write_statements: Family<WriteLabels, Counter>,
    write_rows: Family<WriteLabels, Counter>,
    job_wait: Histogram,
    job_handling: Histogram,
}

fn latency_histogram() -> Histogram {
    // 5 ms … ~20 s: from a local fake to a provider at its timeout.
    Histogram::new(exponential_buckets(0.005, 2.0, 13))
}

impl Metrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            jobs: Family::default(),
            provider_calls: Family::new_with_constructor(latency_histogram),
            receipts: Family::default(),
            released: Counter::default(),
            write_statements: Family::default(),
            write_rows: Family::default(),
            job_wait: foco_runtime::latency::histogram(),
            job_handling: foco_runtime::latency::histogram(),
        };
        // rate(rows) / rate(statements) is the batch size the load produces.
        registry.register(
            "foco_sender_write_statements",
            "Batched Postgres writes of the hot path, by write (claim, outcome)",
            metrics.write_statements.clone(),
        );
        registry.register(
            "foco_sender_write_rows",
            "Jobs written by batched Postgres writes, by write (claim, outcome)",
            metrics.write_rows.clone(),
        );
        registry.register(
            "foco_sender_receipts",
            "Delivery receipts and inbound SMS handled, by result",
            metrics.receipts.clone(),
        );
        registry.register(
            "foco_sender_released_holds",
            "Held jobs published again when due (quiet hours over, or a throttled route's slot)",
            metrics.released.clone(),
        );
        registry.register(
            "foco_sender_jobs",
            "SMS jobs handled, by outcome",
            metrics.jobs.clone(),
        );
        registry.register(
            "foco_sender_provider_call_duration_seconds",
            "Latency of provider calls, by provider kind and outcome",
            metrics.provider_calls.clone(),
        );
        registry.register(
            "foco_sender_job_wait_seconds",
            "Time from a job's creation (or due time) to the sender starting on it",
            metrics.job_wait.clone(),
        );
        registry.register(
            "foco_sender_job_handling_seconds",
            "Time from the sender starting on a job to its outcome recorded (claim, provider calls, outcome)",
            metrics.job_handling.clone(),
        );
        metrics
    }

    /// A job picked up `seconds` after it was created (or became due).
    pub fn job_waited(&self, seconds: f64) {
        self.job_wait.observe(seconds);
    }

    /// A job handled in `seconds`.
    pub fn job_handled(&self, seconds: f64) {
        self.job_handling.observe(seconds);
    }

    /// A metrics set that is not exported (unit tests).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    pub fn job(&self, outcome: &'static str) {
        self.jobs.get_or_create(&JobLabels { outcome }).inc();
    }

    pub fn provider_call(&self, provider: &'static str, outcome: &'static str, seconds: f64) {
        self.provider_calls
            .get_or_create(&ProviderLabels { provider, outcome })
            .observe(seconds);
    }

    pub fn write_batch(&self, write: &'static str, rows: usize) {
        let labels = WriteLabels { write };
        self.write_statements.get_or_create(&labels).inc();
        self.write_rows.get_or_create(&labels).inc_by(rows as u64);
    }

    /// (statements, rows) of the batched `write` so far (tests, benchmarks).
    pub fn write_batches(&self, write: &'static str) -> (u64, u64) {
        let labels = WriteLabels { write };
        (
            self.write_statements.get_or_create(&labels).get(),
            self.write_rows.get_or_create(&labels).get(),
        )
    }

    pub fn receipt(&self, result: &'static str) {
        self.receipts.get_or_create(&ReceiptLabels { result }).inc();
    }

    pub fn released(&self, count: u64) {
        self.released.inc_by(count);
    }

    /// Receipts counted with `result` so far (tests).
    pub fn receipts_with_result(&self, result: &'static str) -> u64 {
        self.receipts.get_or_create(&ReceiptLabels { result }).get()
    }

    /// Jobs counted with `outcome` so far (tests).
    pub fn jobs_with_outcome(&self, outcome: &'static str) -> u64 {
        self.jobs.get_or_create(&JobLabels { outcome }).get()
    }
}
