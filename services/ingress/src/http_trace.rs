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
    // Without spans (JSON lines, nothing exported) a webhook's own unit of work
    // carries what its lines need, and there is no trace to continue.
    if route == crate::routes::WEBHOOK_ROUTE && !foco_runtime::telemetry::scope::spans() {
        return Span::none();
    }
    let span = tracing::info_span!(
        "http.request",
        http.request.method = %request.method(),
        http.route = %route,
    );
    set_parent_from(&span, &HttpHeadersRead(request.headers()));
    span
}
