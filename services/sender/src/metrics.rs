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

#[derive(Clone)]
pub struct Metrics {
    jobs: Family<JobLabels, Counter>,
    provider_calls: HistogramFamily,
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
        };
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
        metrics
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

    /// Jobs counted with `outcome` so far (tests).
    pub fn jobs_with_outcome(&self, outcome: &'static str) -> u64 {
        self.jobs.get_or_create(&JobLabels { outcome }).get()
    }
}
