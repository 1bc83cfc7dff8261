//! W3C trace context (`traceparent`, `tracestate`) in and out of every carrier
//! Foco uses: HTTP headers, gRPC metadata, text stored with a delayed job, and
//! (through `foco-bus`, which owns NATS headers) NATS headers. All of them go
//! through the SDK's `TraceContextPropagator`; nothing else parses the format.
//!
//! When spans are not exported there is no OpenTelemetry layer: the current
//! span has no valid context, so nothing is injected, and extraction is skipped
//! before it parses anything.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header (and metadata key) that carries the trace and parent span ids.
pub const TRACEPARENT: &str = "traceparent";

/// The current span's OpenTelemetry context, when it has a valid one (spans
/// are exported and this one is part of a trace).
pub fn current_context() -> Option<opentelemetry::Context> {
    if !super::scope::spans() {
        return None;
    }
    let context = tracing::Span::current().context();
    context.span().span_context().is_valid().then_some(context)
}

/// Whether the current span belongs to a trace: children created only for
/// export (a provider call's span) are skipped when it does not.
pub fn in_trace() -> bool {
    current_context().is_some()
}

/// Writes the current span's context into `carrier`; nothing when there is none.
pub fn inject_current(carrier: &mut dyn Injector) {
    if let Some(context) = current_context() {
        TraceContextPropagator::new().inject_context(&context, carrier);
    }
}

/// Makes the context in `carrier` (if any) the parent of `span`. Call before
/// anything reads the span's context: a span's parent is fixed once it starts.
pub fn set_parent_from(span: &tracing::Span, carrier: &dyn Extractor) {
    if carrier.get(TRACEPARENT).is_none() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(carrier);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// The current span's context as text to store beside work that waits (a
/// delayed or held job): empty when there is none.
pub fn current_context_text() -> String {
    let mut fields: HashMap<String, String> = HashMap::new();
    inject_current(&mut fields);
    if fields.is_empty() {
        return String::new();
    }
    serde_json::to_string(&fields).unwrap_or_default()
}

/// Makes the context stored by [`current_context_text`] the parent of `span`.
/// Text that does not parse is ignored: a lost parent is no reason to hold a job.
pub fn set_parent_from_text(span: &tracing::Span, text: &str) {
    if text.is_empty() {
        return;
    }
    if let Ok(fields) = serde_json::from_str::<HashMap<String, String>>(text) {
        set_parent_from(span, &fields);
    }
}

/// HTTP headers as a carrier (`http::HeaderMap`, as axum, reqwest and hyper use).
pub struct HttpHeaders<'a>(pub &'a mut HeaderMap);

impl Injector for HttpHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// Reads trace context from HTTP headers.
pub struct HttpHeadersRead<'a>(pub &'a HeaderMap);

impl Extractor for HttpHeadersRead<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// gRPC metadata as a carrier (tonic).
pub struct GrpcMetadata<'a>(pub &'a mut MetadataMap);

impl Injector for GrpcMetadata<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(key.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            self.0.insert(key, value);
        }
    }
}

/// Reads trace context from gRPC metadata.
pub struct GrpcMetadataRead<'a>(pub &'a MetadataMap);

impl Extractor for GrpcMetadataRead<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                tonic::metadata::KeyRef::Ascii(key) => Some(key.as_str()),
                tonic::metadata::KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn remote_span_context(carrier: &dyn Extractor) -> SpanContext {
        TraceContextPropagator::new()
            .extract(carrier)
            .span()
            .span_context()
            .clone()
    }

    #[test]
    fn http_headers_and_grpc_metadata_carry_the_same_context() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, SAMPLE.parse().unwrap());
        headers.insert("tracestate", "congo=t61rcWkgMzE".parse().unwrap());
        let from_http = remote_span_context(&HttpHeadersRead(&headers));
        assert!(from_http.is_remote() && from_http.is_sampled());
        assert_eq!(
            from_http.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(from_http.trace_state().get("congo"), Some("t61rcWkgMzE"));

        let context = opentelemetry::Context::new().with_remote_span_context(from_http.clone());
        let mut metadata = MetadataMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut GrpcMetadata(&mut metadata));
        assert_eq!(metadata.get(TRACEPARENT).unwrap(), SAMPLE);
        assert_eq!(remote_span_context(&GrpcMetadataRead(&metadata)), from_http);

        let mut out = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut HttpHeaders(&mut out));
        assert_eq!(out.get(TRACEPARENT).unwrap(), SAMPLE);
    }

    #[test]
    fn malformed_context_is_no_context() {
        for bad in [
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(TRACEPARENT, bad.parse().unwrap());
            assert!(
                !remote_span_context(&HttpHeadersRead(&headers)).is_valid(),
                "{bad}"
            );
        }
    }

    #[test]
    fn stored_text_round_trips() {
        let remote = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let context = opentelemetry::Context::new().with_remote_span_context(remote.clone());
        let mut fields: HashMap<String, String> = HashMap::new();
        TraceContextPropagator::new().inject_context(&context, &mut fields);
        let text = serde_json::to_string(&fields).unwrap();
        let parsed: HashMap<String, String> = serde_json::from_str(&text).unwrap();
        assert_eq!(remote_span_context(&parsed), remote);
    }

    #[test]
    fn nothing_is_injected_outside_a_trace() {
        assert!(current_context_text().is_empty());
        let mut headers = HeaderMap::new();
        inject_current(&mut HttpHeaders(&mut headers));
        assert!(headers.is_empty());
    }
}
