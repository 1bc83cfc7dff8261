//! Infobip callbacks: delivery reports and inbound messages, JSON with several
//! results to a request. Infobip does not sign them; its notification profile
//! authenticates with the route's `webhook_secret`, as the basic-auth password
//! or in `X-Foco-Webhook-Secret`. Every result is read before anything is
//! stored, and each is stored under its own id, so a retried request stores
//! nothing twice.

use std::time::SystemTime;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use foco_bus::ReceiptKind;
use futures::{StreamExt as _, TryStreamExt as _, stream};
use serde_json::Value;

use super::{
    BatchAccepted, Handled, Stored, read_callback_body, resolve_route, respond, signed_request,
    store_inbound, store_status,
};
use crate::body::{BodyFormat, body_format};
use crate::callbacks::infobip::{self as callbacks, INFOBIP};
use crate::error::IngressError;
use crate::routes::hooks::unix_millis;
use crate::signature::{InfobipSecret, SignatureScheme as _};
use crate::state::AppState;

pub const INFOBIP_STATUS_ROUTE: &str = "/v1/providers/infobip/{account_id}/{route}/status";
pub const INFOBIP_INBOUND_ROUTE: &str = "/v1/providers/infobip/{account_id}/{route}/inbound";
pub const INFOBIP_DEFAULT_STATUS_ROUTE: &str = "/v1/providers/infobip/{account_id}/status";
pub const INFOBIP_DEFAULT_INBOUND_ROUTE: &str = "/v1/providers/infobip/{account_id}/inbound";

/// The route credential Infobip's notification profile presents.
pub const WEBHOOK_SECRET: &str = "webhook_secret";

/// Infobip sends up to 100 reports a request by default (`maxBucketSize`, at
/// most 2000, each well under 1 KiB).
const BATCH_MAX_BODY: usize = 1024 * 1024;
const PUBLISHES_IN_FLIGHT: usize = 16;

/// Infobip delivery reports for messages sent through the named route.
#[utoipa::path(
    post,
    path = "/v1/providers/infobip/{account_id}/{route}/status",
    tag = "providers",
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Infobip provider route's name"),
    ),
    request_body(
        content(("application/json")),
        description = "Infobip's delivery reports ({\"results\": [{messageId, status: {groupName, name, ...}, error, price, ...}]}), authenticated with basic auth (password = the route's webhook_secret) or X-Foco-Webhook-Secret"
    ),
    responses(
        (status = 200, description = "Every report stored on FOCO_RECEIPTS (PENDING ones change nothing)", body = BatchAccepted),
        (status = 400, description = "A report lacks a field or has an unknown status group; nothing was stored", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Credentials missing or wrong, or the route has no webhook_secret", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No Infobip route of that name in that account", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not JSON", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not (all) stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn infobip_status(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (account_id, route) = path.map(|Path(ids)| ids).unwrap_or_default();
    respond_infobip(&state, &account_id, &route, ReceiptKind::Status, request).await
}

/// Infobip delivery reports for messages sent through the account's default route.
#[utoipa::path(
    post,
    path = "/v1/providers/infobip/{account_id}/status",
    tag = "providers",
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "Infobip's delivery reports"),
    responses(
        (status = 200, description = "Every report stored on FOCO_RECEIPTS", body = BatchAccepted),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not (all) stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn infobip_status_default(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let account_id = path.map(|Path(id)| id).unwrap_or_default();
    respond_infobip(&state, &account_id, "", ReceiptKind::Status, request).await
}

/// SMS customers sent to numbers of the named Infobip route.
#[utoipa::path(
    post,
    path = "/v1/providers/infobip/{account_id}/{route}/inbound",
    tag = "providers",
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Infobip provider route's name"),
    ),
    request_body(
        content(("application/json")),
        description = "Infobip's inbound messages ({\"results\": [{messageId, from, to, text, cleanText, keyword, receivedAt, ...}]}), authenticated as delivery reports are"
    ),
    responses(
        (status = 200, description = "Every message stored on FOCO_RECEIPTS", body = BatchAccepted),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not (all) stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn infobip_inbound(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let (account_id, route) = path.map(|Path(ids)| ids).unwrap_or_default();
    respond_infobip(&state, &account_id, &route, ReceiptKind::Inbound, request).await
}

/// SMS customers sent to numbers of the account's default route.
#[utoipa::path(
    post,
    path = "/v1/providers/infobip/{account_id}/inbound",
    tag = "providers",
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "Infobip's inbound messages"),
    responses(
        (status = 200, description = "Every message stored on FOCO_RECEIPTS", body = BatchAccepted),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not (all) stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn infobip_inbound_default(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let account_id = path.map(|Path(id)| id).unwrap_or_default();
    respond_infobip(&state, &account_id, "", ReceiptKind::Inbound, request).await
}

async fn respond_infobip(
    state: &AppState,
    account_id: &str,
    route: &str,
    kind: ReceiptKind,
    request: Request,
) -> Response {
    let handled = handle(state, account_id, route, kind, request);
    respond(state, INFOBIP, kind.as_str(), handled).await
}

async fn handle(
    state: &AppState,
    account_id: &str,
    route_name: &str,
    kind: ReceiptKind,
    request: Request,
) -> Result<Handled, IngressError> {
    let received_at = SystemTime::now();
    let route = resolve_route(state, account_id, route_name, INFOBIP).await?;

    let (parts, body) = request.into_parts();
    // Credentials come in headers: checked before the body is read.
    let signed = signed_request(state, &parts, &[], received_at);
    InfobipSecret
        .verify(
            &signed,
            std::slice::from_ref(&route.credential(WEBHOOK_SECRET)),
        )
        .map_err(IngressError::Signature)?;
    if body_format(&parts.headers, None)? != BodyFormat::Json {
        return Err(IngressError::UnsupportedMediaType);
    }
    let raw_body = read_callback_body(&parts.headers, body, BATCH_MAX_BODY).await?;
    let results: Value = serde_json::from_slice(&raw_body).map_err(IngressError::InvalidJson)?;

    // A few publishes in flight at once: a full bucket must not take a round
    // trip per report, nor flood JetStream.
    let account_id = route.account_id.as_str();
    let stored: Vec<Stored> = match kind {
        ReceiptKind::Status => {
            let reports = callbacks::infobip_reports(account_id, &results)?;
            stream::iter(reports)
                .map(|callback| store_status(state, account_id, callback))
                .buffered(PUBLISHES_IN_FLIGHT)
                .try_collect()
                .await?
        }
        ReceiptKind::Inbound => {
            let messages = callbacks::infobip_inbound(
                account_id,
                &route.name,
                &results,
                unix_millis(received_at),
            )?;
            stream::iter(messages)
                .map(|callback| store_inbound(state, account_id, callback))
                .buffered(PUBLISHES_IN_FLIGHT)
                .try_collect()
                .await?
        }
    };
    Ok(Handled::batch(kind, &stored))
}
