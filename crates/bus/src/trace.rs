//! W3C trace context carried in NATS headers, so one trace covers
//! webhook → rule → provider call. The format belongs to the OpenTelemetry
//! propagator (`foco_runtime::telemetry::propagation`); this module only adapts
//! NATS headers to it.

use async_nats::HeaderMap;
use foco_runtime::telemetry::propagation;
use opentelemetry::propagation::{Extractor, Injector};

/// NATS headers as a carrier of trace context.
pub struct NatsHeaders<'a>(pub &'a mut HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key, value.as_str());
    }
}

/// Reads trace context from NATS headers.
pub struct NatsHeadersRead<'a>(pub &'a HeaderMap);

impl Extractor for NatsHeadersRead<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|value| value.as_str())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|(name, _)| name.as_ref()).collect()
    }
}

/// Writes the current span's context into `headers`. Does nothing when the span
/// is not part of a trace (spans are not exported).
pub fn inject_current(headers: &mut HeaderMap) {
    propagation::inject_current(&mut NatsHeaders(headers));
}

/// Makes the context found in `headers` (if any) the parent of `span`.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    if let Some(headers) = headers {
        propagation::set_parent_from(span, &NatsHeadersRead(headers));
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::TraceContextExt;
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn headers_carry_context_both_ways() {
        let mut headers = HeaderMap::new();
        headers.insert(propagation::TRACEPARENT, SAMPLE);
        headers.insert("tracestate", "congo=t61rcWkgMzE");
        let extracted = TraceContextPropagator::new().extract(&NatsHeadersRead(&headers));
        let span = extracted.span();
        let span_context = span.span_context();
        assert!(span_context.is_valid() && span_context.is_remote());
        assert_eq!(span_context.trace_state().get("congo"), Some("t61rcWkgMzE"));

        let mut out = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&extracted, &mut NatsHeaders(&mut out));
        assert_eq!(out.get(propagation::TRACEPARENT).unwrap().as_str(), SAMPLE);
    }

    #[test]
    fn nothing_is_injected_outside_a_trace() {
        let mut headers = HeaderMap::new();
        inject_current(&mut headers);
        assert!(headers.is_empty());
    }
}
