//! The HTTP surface of ingress and the middleware around it: request timeout,
//! problem bodies for every error, and a trace span per request.

pub(crate) mod hooks;
pub(crate) mod providers;

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
        .merge(provider_callbacks())
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

/// The provider callback endpoints: POST everywhere, and GET too for Vonage,
/// whose accounts may be set to send callbacks as query strings.
fn provider_callbacks() -> Router<AppState> {
    use providers::{infobip, telnyx, twilio, vonage};
    let post_only = |handler: MethodRouter<AppState>| handler.fallback(method_not_allowed);
    let get_or_post = |handler: MethodRouter<AppState>| handler.fallback(method_not_allowed_vonage);
    Router::new()
        .route(
            twilio::TWILIO_STATUS_ROUTE,
            post_only(post(twilio::twilio_status)),
        )
        .route(
            twilio::TWILIO_INBOUND_ROUTE,
            post_only(post(twilio::twilio_inbound)),
        )
        .route(
            twilio::TWILIO_DEFAULT_STATUS_ROUTE,
            post_only(post(twilio::twilio_status_default)),
        )
        .route(
            twilio::TWILIO_DEFAULT_INBOUND_ROUTE,
            post_only(post(twilio::twilio_inbound_default)),
        )
        .route(
            vonage::VONAGE_STATUS_ROUTE,
            get_or_post(post(vonage::vonage_status).get(vonage::vonage_status_query)),
        )
        .route(
            vonage::VONAGE_INBOUND_ROUTE,
            get_or_post(post(vonage::vonage_inbound).get(vonage::vonage_inbound_query)),
        )
        .route(
            vonage::VONAGE_DEFAULT_STATUS_ROUTE,
            get_or_post(
                post(vonage::vonage_status_default).get(vonage::vonage_status_default_query),
            ),
        )
        .route(
            vonage::VONAGE_DEFAULT_INBOUND_ROUTE,
            get_or_post(
                post(vonage::vonage_inbound_default).get(vonage::vonage_inbound_default_query),
            ),
        )
        .route(
            telnyx::TELNYX_EVENTS_ROUTE,
            post_only(post(telnyx::telnyx_events)),
        )
        .route(
            telnyx::TELNYX_DEFAULT_EVENTS_ROUTE,
            post_only(post(telnyx::telnyx_events_default)),
        )
        .route(
            infobip::INFOBIP_STATUS_ROUTE,
            post_only(post(infobip::infobip_status)),
        )
        .route(
            infobip::INFOBIP_INBOUND_ROUTE,
            post_only(post(infobip::infobip_inbound)),
        )
        .route(
            infobip::INFOBIP_DEFAULT_STATUS_ROUTE,
            post_only(post(infobip::infobip_status_default)),
        )
        .route(
            infobip::INFOBIP_DEFAULT_INBOUND_ROUTE,
            post_only(post(infobip::infobip_inbound_default)),
        )
}

async fn method_not_allowed_vonage() -> Response {
    let mut response = Problem::about_blank(
        StatusCode::METHOD_NOT_ALLOWED,
        "Vonage callbacks are delivered with GET or POST",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    response
}

async fn method_not_allowed() -> Response {
    let mut response = Problem::about_blank(
        StatusCode::METHOD_NOT_ALLOWED,
        "webhooks and callbacks are delivered with POST",
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

async fn not_found() -> Response {
    Problem::new(ErrorKind::NotFound, "Not found", "no such endpoint").into_response()
}
