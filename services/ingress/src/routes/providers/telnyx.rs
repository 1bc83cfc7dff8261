//! Telnyx messaging webhooks: one URL per messaging profile receives both the
//! status of our sends (`message.sent`, `message.finalized`) and customers'
//! messages (`message.received`), as JSON signed with Ed25519 (verified with the
//! route's `public_key`, the account's key from Telnyx's portal).

use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use foco_bus::ReceiptKind;
use serde_json::Value;

use super::{
    CALLBACK_MAX_BODY, CallbackAccepted, Handled, read_callback_body, resolve_route, respond,
    signed_request, store_inbound, store_status,
};
use crate::body::{BodyFormat, body_format};
use crate::callbacks::telnyx::{self as callbacks, TELNYX, TelnyxEvent};
use crate::error::IngressError;
use crate::routes::hooks::unix_millis;
use crate::signature::{SignatureScheme as _, TelnyxSignature};
use crate::state::AppState;

pub const TELNYX_EVENTS_ROUTE: &str = "/v1/providers/telnyx/{account_id}/{route}/events";
pub const TELNYX_DEFAULT_EVENTS_ROUTE: &str = "/v1/providers/telnyx/{account_id}/events";

/// The route credential holding the account's public key (base64).
pub const PUBLIC_KEY: &str = "public_key";

/// A Telnyx messaging webhook for the named route's messaging profile.
#[utoipa::path(
    post,
    path = "/v1/providers/telnyx/{account_id}/{route}/events",
    tag = "providers",
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Telnyx provider route's name"),
    ),
    request_body(
        content(("application/json")),
        description = "A Telnyx webhook (data.event_type message.sent, message.finalized or message.received; data.payload the message), signed with telnyx-signature-ed25519 and telnyx-timestamp"
    ),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS (or an intermediate status such as queued, which changes nothing)", body = CallbackAccepted),
        (status = 400, description = "Not a messaging event, or a required field is missing", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "The signature is missing, wrong or stale, or the route has no public_key", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No Telnyx route of that name in that account", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn telnyx_events(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (account_id, route) = path.map(|Path(ids)| ids).unwrap_or_default();
    let handled = handle(&state, &account_id, &route, request);
    respond(&state, TELNYX, "event", handled).await
}

/// A Telnyx messaging webhook for the account's default route.
#[utoipa::path(
    post,
    path = "/v1/providers/telnyx/{account_id}/events",
    tag = "providers",
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "A Telnyx messaging webhook"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn telnyx_events_default(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let account_id = path.map(|Path(id)| id).unwrap_or_default();
    let handled = handle(&state, &account_id, "", request);
    respond(&state, TELNYX, "event", handled).await
}

async fn handle(
    state: &AppState,
    account_id: &str,
    route_name: &str,
    request: Request,
) -> Result<Handled, IngressError> {
    let received_at = SystemTime::now();
    let route = resolve_route(state, account_id, route_name, TELNYX).await?;

    let (parts, body) = request.into_parts();
    if body_format(&parts.headers, None)? != BodyFormat::Json {
        return Err(IngressError::UnsupportedMediaType);
    }
    let raw_body = read_callback_body(&parts.headers, body, CALLBACK_MAX_BODY).await?;
    let signed = signed_request(state, &parts, &raw_body, received_at);
    TelnyxSignature::default()
        .verify(&signed, std::slice::from_ref(&route.credential(PUBLIC_KEY)))
        .map_err(IngressError::Signature)?;
    let event: Value = serde_json::from_slice(&raw_body).map_err(IngressError::InvalidJson)?;

    match callbacks::telnyx_event(
        &route.account_id,
        &route.name,
        &event,
        unix_millis(received_at),
    )? {
        TelnyxEvent::Status(callback) => {
            let stored = store_status(state, &route.account_id, callback).await?;
            Ok(Handled::single(ReceiptKind::Status, stored))
        }
        TelnyxEvent::Inbound(callback) => {
            let stored = store_inbound(state, &route.account_id, callback).await?;
            Ok(Handled::single(ReceiptKind::Inbound, stored))
        }
    }
}
