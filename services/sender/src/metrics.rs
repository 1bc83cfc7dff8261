//! Prometheus metrics of the sender. Label values come from small fixed sets
//! (outcome names, provider kinds), never from user data, with one bounded
//! exception: provider calls carry the route's name (see [`RouteCalls`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

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
    route: Arc<str>,
    outcome: &'static str,
}

type HistogramFamily = Family<ProviderLabels, Histogram, fn() -> Histogram>;

/// Distinct route names a sender process labels provider calls with; routes
/// named after these share [`OTHER_ROUTES`]. Route names are chosen per account,
/// and accounts often reuse names (`primary`, `backup`), so the label set grows
/// with the variety of names, not with accounts; the cap keeps a misuse (a name
/// per customer) from growing Prometheus without bound.
pub const MAX_ROUTE_LABELS: usize = 100;

/// The `route` label of calls through routes beyond [`MAX_ROUTE_LABELS`]. Not a
/// valid route name (those start with a letter or digit), so it cannot be confused.
pub const OTHER_ROUTES: &str = "_other";

/// Every outcome `ProviderOutcome::label` names, in a fixed order.
const CALL_OUTCOMES: [&str; 5] = ["sent", "throttled", "transient", "permanent", "unknown"];

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
    provider_call_durations: HistogramFamily,
    provider_calls: Family<ProviderLabels, Counter>,
    route_labels: Arc<Mutex<HashSet<Arc<str>>>>,
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
            provider_call_durations: Family::new_with_constructor(latency_histogram),
            provider_calls: Family::default(),
            route_labels: Arc::default(),
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
            "Latency of provider calls, by provider kind, route name and outcome",
            metrics.provider_call_durations.clone(),
        );
        registry.register(
            "foco_sender_provider_calls",
            "Provider calls, by provider kind, route name and outcome",
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

    /// The call metrics of route `route` (its name) of provider kind `provider`,
    /// resolved once per route configuration so that a call records itself
    /// without a label lookup. Creates the series at 0, so rates start at once.
    pub fn route_calls(&self, provider: &'static str, route: &str) -> RouteCalls {
        let route = self.route_label(route);
        let by_outcome = CALL_OUTCOMES.map(|outcome| {
            let labels = ProviderLabels {
                provider,
                route: route.clone(),
                outcome,
            };
            (
                self.provider_call_durations.get_or_create(&labels).clone(),
                self.provider_calls.get_or_create(&labels).clone(),
            )
        });
        RouteCalls { by_outcome }
    }

    /// `route`, or [`OTHER_ROUTES`] once [`MAX_ROUTE_LABELS`] other names are in use.
    fn route_label(&self, route: &str) -> Arc<str> {
        let mut seen = self
            .route_labels
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(known) = seen.get(route) {
            return known.clone();
        }
        if seen.len() >= MAX_ROUTE_LABELS {
            return Arc::from(OTHER_ROUTES);
        }
        let label: Arc<str> = Arc::from(route);
        seen.insert(label.clone());
        label
    }

    /// Calls counted for (`provider`, `route`, `outcome`) so far (tests).
    pub fn provider_calls_with(
        &self,
        provider: &'static str,
        route: &str,
        outcome: &'static str,
    ) -> u64 {
        self.provider_calls
            .get_or_create(&ProviderLabels {
                provider,
                route: Arc::from(route),
                outcome,
            })
            .get()
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

/// The latency histogram and call counter of one route, by outcome: handles to
/// the registered series (shared, not copies), kept with the route's
/// configuration. Recording a call is an array index and two atomic updates:
/// no label hashing, no allocation, no lock beyond the histogram's own.
#[derive(Clone)]
pub struct RouteCalls {
    by_outcome: [(Histogram, Counter); CALL_OUTCOMES.len()],
}

impl RouteCalls {
    /// One call that ended with `outcome` (a `ProviderOutcome::label`) after `seconds`.
    pub fn record(&self, outcome: &'static str, seconds: f64) {
        let index = CALL_OUTCOMES
            .iter()
            .position(|known| *known == outcome)
            .unwrap_or(CALL_OUTCOMES.len() - 1);
        let (duration, calls) = &self.by_outcome[index];
        duration.observe(seconds);
        calls.inc();
    }
}

impl std::fmt::Debug for RouteCalls {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("RouteCalls").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn calls_are_counted_by_provider_route_and_outcome() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let primary = metrics.route_calls("twilio", "primary");
        primary.record("sent", 0.2);
        primary.record("sent", 0.3);
        primary.record("throttled", 0.1);
        let text = exposition(&registry);
        for (series, value) in [
            (
                r#"foco_sender_provider_calls_total{provider="twilio",route="primary",outcome="sent"}"#,
                "2",
            ),
            (
                r#"foco_sender_provider_calls_total{provider="twilio",route="primary",outcome="throttled"}"#,
                "1",
            ),
            (
                r#"foco_sender_provider_calls_total{provider="twilio",route="primary",outcome="unknown"}"#,
                "0",
            ),
            (
                r#"foco_sender_provider_call_duration_seconds_count{provider="twilio",route="primary",outcome="sent"}"#,
                "2",
            ),
        ] {
            assert!(
                text.contains(&format!("{series} {value}\n")),
                "{series} {value} in\n{text}"
            );
        }
        // The same route resolved again (a new configuration version) shares the series.
        metrics.route_calls("twilio", "primary").record("sent", 0.1);
        assert_eq!(metrics.provider_calls_with("twilio", "primary", "sent"), 3);
    }

    #[test]
    fn route_names_beyond_the_cap_share_one_label() {
        let metrics = Metrics::unregistered();
        for index in 0..MAX_ROUTE_LABELS {
            metrics.route_calls("http", &format!("route-{index}"));
        }
        metrics
            .route_calls("http", "one-too-many")
            .record("sent", 0.1);
        metrics.route_calls("http", "route-0").record("sent", 0.1);
        assert_eq!(metrics.provider_calls_with("http", OTHER_ROUTES, "sent"), 1);
        assert_eq!(metrics.provider_calls_with("http", "route-0", "sent"), 1);
        assert_eq!(
            metrics.provider_calls_with("http", "one-too-many", "sent"),
            0
        );
    }
}
