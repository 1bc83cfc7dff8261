//! Twilio posts delivery receipts (status callbacks) and inbound messages as
//! forms signed with `X-Twilio-Signature` (the route's `auth_token` over the URL
//! it called and the form). Inbound messages are answered with empty TwiML: the
//! sender replies to HELP itself, as a normal job.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use foco_bus::ReceiptKind;
use foco_providers::keys::AUTH_TOKEN;
use foco_providers::{ProviderKind, RouteInPath, callback_path};

use super::parse as callbacks;
use super::signature::TwilioSignature;
use crate::body::{BodyFormat, form_to_json};
use crate::error::IngressError;
use crate::providers::Endpoint;
use crate::providers::callback::{
    CALLBACK_MAX_BODY, Callback, CallbackAccepted, Handled, ProviderRequest, Refused, Stored,
    read_callback_body, respond, signed_request, store_inbound, store_status,
};
use crate::routes::hooks::unix_millis;
use crate::signature::Verifier;
use crate::state::AppState;

/// An empty TwiML answer: the sender replies to HELP itself, as a normal job.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

const KIND: ProviderKind = ProviderKind::Twilio;

/// Twilio's callback endpoints, at the catalog's paths; the router and the
/// OpenAPI document are both built from this table.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new::<__path_twilio_status, _, _>(twilio_status),
        Endpoint::new::<__path_twilio_status_default, _, _>(twilio_status_default),
        Endpoint::new::<__path_twilio_inbound, _, _>(twilio_inbound),
        Endpoint::new::<__path_twilio_inbound_default, _, _>(twilio_inbound_default),
    ]
}

/// Twilio delivery receipt for a message sent through the named route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Twilio provider route's name"),
    ),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's status callback fields (MessageSid, MessageStatus, ErrorCode, ...), signed with X-Twilio-Signature"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS (or an intermediate status that changes nothing)", body = CallbackAccepted),
        (status = 400, description = "A required field is missing", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "X-Twilio-Signature is missing or wrong", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No Twilio route of that name in that account", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not form-encoded", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn twilio_status(request: ProviderRequest) -> Response {
    respond_twilio(request, ReceiptKind::Status).await
}

/// Twilio delivery receipt for a message sent through the account's default route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "status", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's status callback fields"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        Refused,
    )
)]
pub async fn twilio_status_default(request: ProviderRequest) -> Response {
    respond_twilio(request, ReceiptKind::Status).await
}

/// An SMS a customer sent to a number of the named Twilio route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Named),
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Twilio provider route's name"),
    ),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's inbound message fields (MessageSid, From, To, Body, ...), signed with X-Twilio-Signature"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS; an empty TwiML answer", body = String, content_type = "text/xml"),
        Refused,
    )
)]
pub async fn twilio_inbound(request: ProviderRequest) -> Response {
    respond_twilio(request, ReceiptKind::Inbound).await
}

/// An SMS a customer sent to a number of the account's default route.
#[utoipa::path(
    post,
    path = callback_path(KIND, "inbound", RouteInPath::Default),
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's inbound message fields"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS; an empty TwiML answer", body = String, content_type = "text/xml"),
        Refused,
    )
)]
pub async fn twilio_inbound_default(request: ProviderRequest) -> Response {
    respond_twilio(request, ReceiptKind::Inbound).await
}

async fn respond_twilio(request: ProviderRequest, kind: ReceiptKind) -> Response {
    let handle = async |state: &AppState, callback, body| handle(state, kind, callback, body).await;
    respond(request, KIND, kind.as_str(), handle).await
}

async fn handle(
    state: &AppState,
    kind: ReceiptKind,
    callback: Callback,
    body: Body,
) -> Result<Handled, IngressError> {
    let (_, raw_body) = read_callback_body(
        &callback.parts,
        body,
        Some(BodyFormat::Form),
        CALLBACK_MAX_BODY,
    )
    .await?;
    let auth_token = callback.route.credential(AUTH_TOKEN);
    Verifier::Twilio(TwilioSignature)
        .verify(
            &signed_request(state, &callback, &raw_body),
            std::slice::from_ref(&auth_token),
        )
        .map_err(IngressError::Signature)?;
    let fields = form_to_json(&raw_body)?;

    let route = &callback.route;
    match kind {
        ReceiptKind::Status => {
            let receipt = callbacks::twilio_status(&route.account_id, &fields)?;
            let stored = store_status(state, &route.account_id, receipt).await?;
            Ok(Handled::single(kind, stored))
        }
        ReceiptKind::Inbound => {
            let received_at_ms = unix_millis(callback.received_at);
            let inbound =
                callbacks::twilio_inbound(&route.account_id, &route.name, &fields, received_at_ms)?;
            let stored = store_inbound(state, &route.account_id, inbound).await?;
            Ok(Handled {
                kind,
                outcome: if stored == Stored::Duplicate {
                    "duplicate"
                } else {
                    "accepted"
                },
                response: empty_twiml(),
            })
        }
    }
}

fn empty_twiml() -> Response {
    let mut response = EMPTY_TWIML.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    response
}
