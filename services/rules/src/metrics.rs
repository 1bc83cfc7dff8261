use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct RulesMetrics {
    /// Events handled, by outcome (acked, retried, dropped).
    pub events: Family<OutcomeLabels, Counter>,
    pub jobs_published: Counter,
    pub rule_failures: Counter,
}

impl RulesMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            events: Family::default(),
            jobs_published: Counter::default(),
            rule_failures: Counter::default(),
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
        metrics
    }

    pub fn event(&self, outcome: &'static str) {
        self.events.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}
