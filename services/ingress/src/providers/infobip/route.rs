//! Infobip callbacks: delivery reports and inbound messages, JSON with several
//! results to a request. Infobip does not sign them; its notification profile
//! authenticates with the route's `webhook_secret`, as the basic-auth password
//! or in `X-Foco-Webhook-Secret`. Every result is read before anything is
//! stored, and each is stored under its own id, so a retried request stores
//! nothing twice.

use axum::body::Body;
use axum::response::Response;
use foco_bus::ReceiptKind;
use foco_providers::keys::WEBHOOK_SECRET;
use foco_providers::{ProviderKind, RouteInPath, callback_path};
use futures::{StreamExt as _, TryStreamExt as _, stream};
use serde_json::Value;

use super::parse as callbacks;
use super::signature::InfobipSecret;
use crate::body::BodyFormat;
use crate::error::IngressError;
use crate::providers::Endpoint;
use crate::providers::callback::{
    BatchAccepted, BatchRefused, Callback, Handled, ProviderRequest, Stored, read_callback_body,
    respond, signed_request, store_inbound, store_status,
};
use crate::routes::hooks::unix_millis;
use crate::signature::SignatureScheme as _;
use crate::state::AppState;

/// Infobip sends up to 100 reports a request by default (`maxBucketSize`, at
/// most 2000, each well under 1 KiB).
const BATCH_MAX_BODY: usize = 1024 * 1024;
const PUBLISHES_IN_FLIGHT: usize = 16;

const KIND: ProviderKind = ProviderKind::Infobip;

/// Infobip's callback endpoints, at the catalog's paths; the router and the
/// OpenAPI document are both built from this table.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new::<__path_infobip_status, _, _>(infobip_status),
        Endpoint::new::<__path_infobip_status_default, _, _>(infobip_status_default),
        Endpoint::new::<__path_infobip_inbound, _, _>(infobip_inbound),
        Endpoint::new::<__path_infobip_inbound_default, _, _>(infobip_inbound_default),
    ]
}

/// Infobip delivery reports for messages sent through the named route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Named),
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
pub async fn infobip_status(request: ProviderRequest) -> Response {
    respond_infobip(request, ReceiptKind::Status).await
}

/// Infobip delivery reports for messages sent through the account's default route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "Infobip's delivery reports"),
    responses(
        (status = 200, description = "Every report stored on FOCO_RECEIPTS", body = BatchAccepted),
        BatchRefused,
    )
)]
pub async fn infobip_status_default(request: ProviderRequest) -> Response {
    respond_infobip(request, ReceiptKind::Status).await
}

/// SMS customers sent to numbers of the named Infobip route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Named),
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
        BatchRefused,
    )
)]
pub async fn infobip_inbound(request: ProviderRequest) -> Response {
    respond_infobip(request, ReceiptKind::Inbound).await
}

/// SMS customers sent to numbers of the account's default route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/json")), description = "Infobip's inbound messages"),
    responses(
        (status = 200, description = "Every message stored on FOCO_RECEIPTS", body = BatchAccepted),
        BatchRefused,
    )
)]
pub async fn infobip_inbound_default(request: ProviderRequest) -> Response {
    respond_infobip(request, ReceiptKind::Inbound).await
}

async fn respond_infobip(request: ProviderRequest, kind: ReceiptKind) -> Response {
    let handle = async |state: &AppState, callback, body| handle(state, kind, callback, body).await;
    respond(request, KIND, kind.as_str(), handle).await
}

async fn handle(
    state: &AppState,
    kind: ReceiptKind,
    callback: Callback,
    body: Body,
) -> Result<Handled, IngressError> {
    let route = &callback.route;
    // Credentials come in headers: checked before the body is read.
    InfobipSecret
        .verify(
            &signed_request(state, &callback, &[]),
            std::slice::from_ref(&route.credential(WEBHOOK_SECRET)),
        )
        .map_err(IngressError::Signature)?;
    let (_, raw_body) = read_callback_body(
        &callback.parts,
        body,
        Some(BodyFormat::Json),
        BATCH_MAX_BODY,
    )
    .await?;
    let results: Value = serde_json::from_slice(&raw_body).map_err(IngressError::InvalidJson)?;

    let account_id = route.account_id.as_str();
    let stored = match kind {
        ReceiptKind::Status => {
            let reports = callbacks::infobip_reports(account_id, &results)?;
            store_each(reports, |report| store_status(state, account_id, report)).await?
        }
        ReceiptKind::Inbound => {
            let received_at_ms = unix_millis(callback.received_at);
            let messages =
                callbacks::infobip_inbound(account_id, &route.name, &results, received_at_ms)?;
            store_each(messages, |message| {
                store_inbound(state, account_id, message)
            })
            .await?
        }
    };
    Ok(Handled::batch(kind, &stored))
}

/// Stores every report or message of a request with a few publishes in flight
/// at once: a full bucket must not take a round trip per report, nor flood
/// JetStream.
async fn store_each<Item, Storing>(
    items: Vec<Item>,
    store: impl FnMut(Item) -> Storing,
) -> Result<Vec<Stored>, IngressError>
where
    Storing: Future<Output = Result<Stored, IngressError>>,
{
    stream::iter(items)
        .map(store)
        .buffered(PUBLISHES_IN_FLIGHT)
        .try_collect()
        .await
}
