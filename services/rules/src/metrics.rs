use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct RulesMetrics {
    /// Events handled, by outcome (acked, retried, dropped).
    pub events: Family<OutcomeLabels, Counter>,
    pub jobs_published: Counter,
    pub rule_failures: Counter,
    /// Events no rule could read (a payload that is not JSON), each reported.
    pub unreadable_events: Counter,
    pub scheduled_published: Counter,
    /// Due jobs JetStream had already stored: a pass repeated after a crash.
    pub scheduled_duplicates: Counter,
    pub jobs_scheduled: Counter,
    pub jobs_cancelled: Counter,
    /// Events stored per Postgres transaction (group commit).
    pub store_batch_events: Histogram,
    /// Batches that failed and were stored again event by event.
    pub store_batch_retries: Counter,
    /// How far behind now the scheduler publishes, waiting for events received
    /// before a job's due time to be evaluated.
    pub scheduler_hold_seconds: Gauge<f64, AtomicU64>,
    /// From ingress storing an event to rules starting on it.
    pub event_wait_seconds: Histogram,
    /// From rules starting on an event to its jobs stored.
    pub event_handling_seconds: Histogram,
    /// From a delayed job's due time to its publish.
    pub scheduled_release_lateness_seconds: Histogram,
}

impl RulesMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            events: Family::default(),
            jobs_published: Counter::default(),
            rule_failures: Counter::default(),
            unreadable_events: Counter::default(),
            scheduled_published: Counter::default(),
            scheduled_duplicates: Counter::default(),
            jobs_scheduled: Counter::default(),
            jobs_cancelled: Counter::default(),
            store_batch_events: Histogram::new([
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0,
            ]),
            store_batch_retries: Counter::default(),
            scheduler_hold_seconds: Gauge::default(),
            event_wait_seconds: foco_runtime::latency::histogram(),
            event_handling_seconds: foco_runtime::latency::histogram(),
            scheduled_release_lateness_seconds: foco_runtime::latency::histogram(),
        };
        registry.register(
            "events",
            "Events handled, by outcome",
            metrics.events.clone(),
        );
        registry.register(
            "jobs_published",
            "SMS jobs stored on the SMS stream",
            metrics.jobs_published.clone(),
        );
        registry.register(
            "rule_failures",
            "Rules that failed to evaluate or render for an event",
            metrics.rule_failures.clone(),
        );
        registry.register(
            "unreadable_events",
            "Events no rule could read (a payload that is not JSON), reported on the event",
            metrics.unreadable_events.clone(),
        );
        registry.register(
            "scheduled_published",
            "Delayed jobs published to the SMS stream when due",
            metrics.scheduled_published.clone(),
        );
        registry.register(
            "scheduled_duplicates",
            "Due jobs the SMS stream already held (a repeated pass)",
            metrics.scheduled_duplicates.clone(),
        );
        registry.register(
            "jobs_scheduled",
            "Delayed jobs stored for later",
            metrics.jobs_scheduled.clone(),
        );
        registry.register(
            "jobs_cancelled",
            "Pending jobs cancelled by events",
            metrics.jobs_cancelled.clone(),
        );
        registry.register(
            "store_batch_events",
            "Events stored per Postgres transaction",
            metrics.store_batch_events.clone(),
        );
        registry.register(
            "store_batch_retries",
            "Store batches that failed and were stored again event by event",
            metrics.store_batch_retries.clone(),
        );
        registry.register(
            "scheduler_hold_seconds",
            "How far behind now due jobs are held while earlier events wait to be evaluated",
            metrics.scheduler_hold_seconds.clone(),
        );
        registry.register(
            "event_wait_seconds",
            "Time from ingress storing an event to rules starting to evaluate it",
            metrics.event_wait_seconds.clone(),
        );
        registry.register(
            "event_handling_seconds",
            "Time from rules starting to evaluate an event to its jobs stored",
            metrics.event_handling_seconds.clone(),
        );
        registry.register(
            "scheduled_release_lateness_seconds",
            "Time from a delayed job's due time to the scheduler publishing it",
            metrics.scheduled_release_lateness_seconds.clone(),
        );
        metrics
    }

    pub fn event(&self, outcome: &'static str) {
        self.events.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
