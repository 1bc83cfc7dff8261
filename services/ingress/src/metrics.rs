//! Prometheus metrics of ingress: webhooks and provider callbacks by outcome (and
//! why they were refused), and how long JetStream took to acknowledge a publish.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    /// accepted | duplicate | ping | rejected
    outcome: &'static str,
    /// Why a webhook was rejected; empty otherwise.
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallbackLabels {
    /// twilio | vonage | telnyx | infobip
    provider: &'static str,
    /// status | inbound; `event` for a Telnyx callback refused before its body
    /// said which
    kind: &'static str,
    /// accepted | duplicate | ignored | rejected
    outcome: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PublishLabels {
    /// acked | failed
    result: &'static str,
}

fn publish_histogram() -> Histogram {
    // 0.5 ms .. ~4 s: a healthy ack is a few ms, the timeout is seconds.
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

#[derive(Debug, Clone)]
pub struct Metrics {
    webhooks: Family<WebhookLabels, Counter>,
    callbacks: Family<CallbackLabels, Counter>,
    publish_seconds: Family<PublishLabels, Histogram, fn() -> Histogram>,
    in_flight: Gauge,
}

/// Counts a webhook as in flight until dropped, however the handler ends.
pub struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Metrics {
    /// Registers under `registry` (which the caller prefixes with `foco_ingress`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            webhooks: Family::default(),
            callbacks: Family::default(),
            publish_seconds: Family::new_with_constructor(publish_histogram),
            in_flight: Gauge::default(),
        };
        registry.register(
            "webhooks_received",
            "Webhooks received, by outcome and rejection reason",
            metrics.webhooks.clone(),
        );
        registry.register(
            "provider_callbacks_received",
            "Provider callbacks (delivery receipts, inbound SMS) received, by outcome",
            metrics.callbacks.clone(),
        );
        registry.register(
            "publish_duration_seconds",
            "Time from publishing an event to JetStream's acknowledgement",
            metrics.publish_seconds.clone(),
        );
        registry.register(
            "webhooks_in_flight",
            "Webhooks being received, verified or published right now",
            metrics.in_flight.clone(),
        );
        metrics
    }

    pub fn start_webhook(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    pub fn accepted(&self, duplicate: bool) {
        let outcome = if duplicate { "duplicate" } else { "accepted" };
        self.count(outcome, "");
    }

    pub fn ping(&self) {
        self.count("ping", "");
    }

    pub fn rejected(&self, reason: &'static str) {
        self.count("rejected", reason);
    }

    /// A provider callback ended with `outcome` (`reason` empty unless rejected).
    pub fn callback(
        &self,
        provider: &'static str,
        kind: &'static str,
        outcome: &'static str,
        reason: &'static str,
    ) {
        self.callbacks
            .get_or_create(&CallbackLabels {
                provider,
                kind,
                outcome,
                reason,
            })
            .inc();
    }

    pub fn observe_publish(&self, elapsed: Duration, acked: bool) {
        let result = if acked { "acked" } else { "failed" };
        self.publish_seconds
            .get_or_create(&PublishLabels { result })
            .observe(elapsed.as_secs_f64());
    }

    fn count(&self, outcome: &'static str, reason: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels { outcome, reason })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_exported_with_labels() {
        let mut registry = Registry::with_prefix("foco_ingress");
        let metrics = Metrics::register(&mut registry);
        metrics.accepted(false);
        metrics.accepted(true);
        metrics.rejected("bad_signature");
        metrics.observe_publish(Duration::from_millis(3), true);
        let in_flight = metrics.start_webhook();
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(
                r#"foco_ingress_webhooks_received_total{outcome="accepted",reason=""} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(
            r#"foco_ingress_webhooks_received_total{outcome="rejected",reason="bad_signature"} 1"#
        ));
        assert!(text.contains(r#"foco_ingress_publish_duration_seconds_count{result="acked"} 1"#));
        assert!(text.contains("foco_ingress_webhooks_in_flight 1"), "{text}");
        drop(in_flight);
        assert_eq!(metrics.in_flight.get(), 0);
    }
}
