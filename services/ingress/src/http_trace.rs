//! One span per HTTP request, continuing the caller's W3C trace (`traceparent`,
//! `tracestate`), so the trace carries on into the NATS headers of the publish.
//! The path is not recorded: it contains the source token, which is a credential.

use std::str::FromStr;

use axum::extract::MatchedPath;
use axum::http::{HeaderMap, Request};
use foco_bus::trace::{TRACEPARENT, TRACESTATE, parse_traceparent};
use opentelemetry::trace::{TraceContextExt, TraceState};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub fn make_request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let span = tracing::info_span!(
        "http.request",
        http.request.method = %request.method(),
        http.route = %route,
    );
    if let Some(parent) = remote_parent(request.headers()) {
        let _ = span.set_parent(parent);
    }
    span
}

/// The caller's trace context, if it sent a valid one.
fn remote_parent(headers: &HeaderMap) -> Option<opentelemetry::Context> {
    let traceparent = headers.get(TRACEPARENT)?.to_str().ok()?;
    let state = headers
        .get(TRACESTATE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| TraceState::from_str(value).ok())
        .unwrap_or_default();
    let remote = parse_traceparent(traceparent, state)?;
    Some(opentelemetry::Context::new().with_remote_span_context(remote))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_traceparent_becomes_the_remote_parent() {
        let mut headers = HeaderMap::new();
        headers.insert(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let parent = remote_parent(&headers).unwrap();
        let span = parent.span();
        let context = span.span_context();
        assert!(context.is_remote());
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        headers.insert(TRACEPARENT, "garbage".parse().unwrap());
        assert!(remote_parent(&headers).is_none());
    }
}
