//! The HTTP surface of ingress and the middleware around it: request timeout,
//! problem bodies for every error, and a trace span per request.

pub(crate) mod hooks;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use bytes::Bytes;
use foco_runtime::ErrorKind;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::Level;

use crate::problem::{Problem, problem_for_bare_errors};
use crate::state::AppState;

pub use hooks::WEBHOOK_ROUTE;

pub fn router(state: AppState, request_timeout: Duration) -> Router {
    // Rendered once: the document does not change while the process runs.
    let document = Bytes::from(crate::openapi::document_json());
    Router::new()
        .route(
            WEBHOOK_ROUTE,
            post(hooks::receive_webhook).fallback(method_not_allowed),
        )
        .merge(crate::providers::router())
        .route(
            crate::openapi::OPENAPI_ROUTE,
            get(move || crate::openapi::openapi_json(document.clone())),
        )
        .fallback(not_found)
        .with_state(state)
        // The handler reads the body itself, with the source's own limit.
        .layer(DefaultBodyLimit::disable())
        // A timed-out request gets 503 (+ Retry-After from the problem layer): the
        // sender retries, and a retry of an event that was stored after all is
        // recognised by its id.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            request_timeout,
        ))
        .layer(axum::middleware::map_response(problem_for_bare_errors))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(crate::http_trace::make_request_span)
                // Refusals are logged once, with their cause, by the handler.
                .on_failure(DefaultOnFailure::new().level(Level::DEBUG))
                .on_eos(())
                .on_body_chunk(()),
        )
}

/// `handler` answering 405 with `Allow` for any method but `methods`; `sender`
/// names who delivers with them (a provider's callbacks).
pub(crate) fn with_method_fallback(
    handler: MethodRouter<AppState>,
    sender: &str,
    methods: &[&str],
) -> MethodRouter<AppState> {
    if methods == ["POST"] {
        return handler.fallback(method_not_allowed);
    }
    let allow = HeaderValue::from_str(&methods.join(", ")).ok();
    let detail = format!(
        "{sender} callbacks are delivered with {}",
        methods.join(" or ")
    );
    handler.fallback(move || {
        let (allow, detail) = (allow.clone(), detail.clone());
        async move { refuse_method(allow, detail) }
    })
}

fn refuse_method(allow: Option<HeaderValue>, detail: String) -> Response {
    let mut response = Problem::about_blank(StatusCode::METHOD_NOT_ALLOWED, detail).into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

async fn method_not_allowed() -> Response {
    refuse_method(
        Some(HeaderValue::from_static("POST")),
        "webhooks and callbacks are delivered with POST".to_owned(),
    )
}

async fn not_found() -> Response {
    Problem::new(ErrorKind::NotFound, "Not found", "no such endpoint").into_response()
}
