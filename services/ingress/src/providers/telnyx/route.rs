//! Telnyx messaging webhooks: one URL per messaging profile receives both the
//! status of our sends (`message.sent`, `message.finalized`) and customers'
//! messages (`message.received`), as JSON signed with Ed25519 (verified with the
//! route's `public_key`, the account's key from Telnyx's portal).

use axum::body::Body;
use axum::response::Response;
use foco_bus::ReceiptKind;
use foco_providers::keys::PUBLIC_KEY;
use foco_providers::{ProviderKind, RouteInPath, callback_path};
use serde_json::Value;

use super::parse::{self as callbacks, TelnyxEvent};
use super::signature::TelnyxSignature;
use crate::body::BodyFormat;
use crate::error::IngressError;
use crate::providers::Endpoint;
use crate::providers::callback::{
    CALLBACK_MAX_BODY, Callback, CallbackAccepted, Handled, ProviderRequest, Refused,
    read_callback_body, respond, signed_request, store_inbound, store_status,
};
use crate::routes::hooks::unix_millis;
use crate::signature::SignatureScheme as _;
use crate::state::AppState;

const KIND: ProviderKind = ProviderKind::Telnyx;

/// Telnyx's callback endpoints, at the catalog's paths; the router and the
/// OpenAPI document are both built from this table.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new::<__path_telnyx_events, _, _>(telnyx_events),
        Endpoint::new::<__path_telnyx_events_default, _, _>(telnyx_events_default),
    ]
}

/// A Telnyx messaging webhook for the named route's messaging profile.
#[utoipa::path(
    post,
    path = callback_path(KIND, "events", RouteInPath::Named),
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
pub async fn telnyx_events(request: ProviderRequest) -> Response {
    respond(request, KIND, "event", handle).await
}

/// A Telnyx messaging webhook for the account's default route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "events", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "A Telnyx messaging webhook"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn telnyx_events_default(request: ProviderRequest) -> Response {
    telnyx_events(request).await
}

async fn handle(state: &AppState, callback: Callback, body: Body) -> Result<Handled, IngressError> {
    let (_, raw_body) = read_callback_body(
        &callback.parts,
        body,
        Some(BodyFormat::Json),
        CALLBACK_MAX_BODY,
    )
    .await?;
    let route = &callback.route;
    TelnyxSignature::default()
        .verify(
            &signed_request(state, &callback, &raw_body),
            std::slice::from_ref(&route.credential(PUBLIC_KEY)),
        )
        .map_err(IngressError::Signature)?;
    let event: Value = serde_json::from_slice(&raw_body).map_err(IngressError::InvalidJson)?;

    let received_at_ms = unix_millis(callback.received_at);
    let account_id = route.account_id.as_str();
    let (kind, stored) =
        match callbacks::telnyx_event(account_id, &route.name, &event, received_at_ms)? {
            TelnyxEvent::Status(receipt) => (
                ReceiptKind::Status,
                store_status(state, account_id, receipt).await?,
            ),
            TelnyxEvent::Inbound(inbound) => (
                ReceiptKind::Inbound,
                store_inbound(state, account_id, inbound).await?,
            ),
        };
    Ok(Handled::single(kind, stored))
}
