//! One span per HTTP request, continuing the caller's W3C trace (`traceparent`,
//! `tracestate`), so the trace carries on into the NATS headers of the publish.
//! The path is not recorded: it contains the source token, which is a credential.

use axum::extract::MatchedPath;
use axum::http::Request;
use foco_runtime::telemetry::propagation::{HttpHeadersRead, set_parent_from};
use tracing::Span;

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
    set_parent_from(&span, &HttpHeadersRead(request.headers()));
    span
}
