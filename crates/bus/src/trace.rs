//! W3C trace context (`traceparent`, `tracestate`) carried in NATS headers, so one
//! trace covers webhook → rule → provider call. No crate does this for async-nats,
//! and the format is small enough to own: `00-<trace id>-<span id>-<flags>`.

use async_nats::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";

/// Writes the current span's context into `headers`. Does nothing when the span is
/// not sampled into OpenTelemetry (no valid context).
pub fn inject_current(headers: &mut HeaderMap) {
    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return;
    }
    headers.insert(TRACEPARENT, format_traceparent(span_context).as_str());
    let state = span_context.trace_state().header();
    if !state.is_empty() {
        headers.insert(TRACESTATE, state.as_str());
    }
}

/// Makes the context found in `headers` (if any) the parent of `span`.
pub fn set_parent_from(span: &tracing::Span, headers: Option<&HeaderMap>) {
    let Some(remote) = headers.and_then(extract) else {
        return;
    };
    let parent = opentelemetry::Context::new().with_remote_span_context(remote);
    let _ = span.set_parent(parent);
}

/// Reads a remote span context from `headers`.
pub fn extract(headers: &HeaderMap) -> Option<SpanContext> {
    let traceparent = headers.get(TRACEPARENT)?.as_str();
    let state = headers
        .get(TRACESTATE)
        .and_then(|value| value.as_str().parse::<TraceState>().ok())
        .unwrap_or_default();
    parse_traceparent(traceparent, state)
}

pub fn format_traceparent(span_context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    )
}

pub fn parse_traceparent(value: &str, state: TraceState) -> Option<SpanContext> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    // Version 00 has exactly four fields; later versions may append more.
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if trace_id.len() != 32 || span_id.len() != 16 || flags.len() != 2 {
        return None;
    }
    let is_lower_hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !is_lower_hex(trace_id) || !is_lower_hex(span_id) || !is_lower_hex(flags) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let span_context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        state,
    );
    span_context.is_valid().then_some(span_context)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_round_trips() {
        let parsed = parse_traceparent(SAMPLE, TraceState::default()).unwrap();
        assert!(parsed.is_remote());
        assert!(parsed.is_sampled());
        assert_eq!(format_traceparent(&parsed), SAMPLE);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(
                parse_traceparent(bad, TraceState::default()).is_none(),
                "{bad}"
            );
        }
    }

    #[test]
    fn headers_carry_context() {
        let mut headers = HeaderMap::new();
        headers.insert(TRACEPARENT, SAMPLE);
        headers.insert(TRACESTATE, "congo=t61rcWkgMzE");
        let extracted = extract(&headers).unwrap();
        assert_eq!(extracted.trace_state().get("congo"), Some("t61rcWkgMzE"));
    }
}
