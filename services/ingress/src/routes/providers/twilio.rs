//! Provider callbacks: Twilio posts delivery receipts (status callbacks) and
//! inbound messages to a URL naming the account and the provider route the
//! number belongs to, so the route's auth token — held by control and fetched
//! through the cached `ResolveRoute` lookup — verifies `X-Twilio-Signature`.
//! Verified callbacks go to FOCO_RECEIPTS before the 200; the sender applies
//! them (receipts to messages, STOP/START/HELP to the opt-out list).

use std::time::SystemTime;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use foco_bus::ReceiptKind;
use prost::Message as _;
use serde::Serialize;
use tracing::field::Empty;

use super::hooks::{unix_millis, unix_seconds};
use crate::body::{BodyFormat, body_format, check_declared_length, form_to_json, read_limited};
use crate::callbacks::{self, StatusCallback, TWILIO};
use crate::error::IngressError;
use crate::publish::publish;
use crate::signature::{SignedRequest, TwilioSignature, Verifier};
use crate::state::AppState;

pub const TWILIO_STATUS_ROUTE: &str = "/v1/providers/twilio/{account_id}/{route}/status";
pub const TWILIO_INBOUND_ROUTE: &str = "/v1/providers/twilio/{account_id}/{route}/inbound";
pub const TWILIO_DEFAULT_STATUS_ROUTE: &str = "/v1/providers/twilio/{account_id}/status";
pub const TWILIO_DEFAULT_INBOUND_ROUTE: &str = "/v1/providers/twilio/{account_id}/inbound";

/// Twilio's callbacks are a few hundred bytes.
const CALLBACK_MAX_BODY: usize = 64 * 1024;
/// An empty TwiML answer: the sender replies to HELP itself, as a normal job.
const EMPTY_TWIML: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>";

/// What a status callback is answered with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackAccepted {
    /// Whether a receipt was stored (false for intermediate statuses such as
    /// `queued`, which change nothing).
    pub published: bool,
    /// The receipt was stored already: Twilio retried the callback.
    pub duplicate: bool,
}

enum Outcome {
    Receipt { published: bool, duplicate: bool },
    Inbound { duplicate: bool },
}

/// Twilio delivery receipt for a message sent through the named route.
#[utoipa::path(
    post,
    path = "/v1/providers/twilio/{account_id}/{route}/status",
    tag = "providers",
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
pub async fn twilio_status(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let ids = path.ok().map(|Path(ids)| ids);
    let (account_id, route) = ids.unwrap_or_default();
    respond(&state, &account_id, &route, ReceiptKind::Status, request).await
}

/// Twilio delivery receipt for a message sent through the account's default route.
#[utoipa::path(
    post,
    path = "/v1/providers/twilio/{account_id}/status",
    tag = "providers",
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's status callback fields"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS", body = CallbackAccepted),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn twilio_status_default(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let account_id = path.map(|Path(id)| id).unwrap_or_default();
    respond(&state, &account_id, "", ReceiptKind::Status, request).await
}

/// An SMS a customer sent to a number of the named Twilio route.
#[utoipa::path(
    post,
    path = "/v1/providers/twilio/{account_id}/{route}/inbound",
    tag = "providers",
    params(
        ("account_id" = String, Path, description = "The account's id"),
        ("route" = String, Path, description = "The Twilio provider route's name"),
    ),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's inbound message fields (MessageSid, From, To, Body, ...), signed with X-Twilio-Signature"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS; an empty TwiML answer", body = String, content_type = "text/xml"),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn twilio_inbound(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
    request: Request,
) -> Response {
    let ids = path.ok().map(|Path(ids)| ids);
    let (account_id, route) = ids.unwrap_or_default();
    respond(&state, &account_id, &route, ReceiptKind::Inbound, request).await
}

/// An SMS a customer sent to a number of the account's default route.
#[utoipa::path(
    post,
    path = "/v1/providers/twilio/{account_id}/inbound",
    tag = "providers",
    params(("account_id" = String, Path, description = "The account's id")),
    request_body(content(("application/x-www-form-urlencoded")), description = "Twilio's inbound message fields"),
    responses(
        (status = 200, description = "Stored on FOCO_RECEIPTS; an empty TwiML answer", body = String, content_type = "text/xml"),
        (status = "4XX", description = "Refused", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn twilio_inbound_default(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let account_id = path.map(|Path(id)| id).unwrap_or_default();
    respond(&state, &account_id, "", ReceiptKind::Inbound, request).await
}

#[tracing::instrument(
    name = "ingress.provider_callback",
    skip_all,
    fields(provider = TWILIO, kind = kind.as_str(), account_id = Empty)
)]
async fn respond(
    state: &AppState,
    account_id: &str,
    route: &str,
    kind: ReceiptKind,
    request: Request,
) -> Response {
    let _in_flight = state.metrics.start_webhook();
    match handle(state, account_id, route, kind, request).await {
        Ok(Outcome::Receipt {
            published,
            duplicate,
        }) => {
            let outcome = match (published, duplicate) {
                (false, _) => "ignored",
                (true, true) => "duplicate",
                (true, false) => "accepted",
            };
            state.metrics.callback(TWILIO, kind.as_str(), outcome, "");
            tracing::info!(published, duplicate, "delivery receipt accepted");
            (
                StatusCode::OK,
                Json(CallbackAccepted {
                    published,
                    duplicate,
                }),
            )
                .into_response()
        }
        Ok(Outcome::Inbound { duplicate }) => {
            let outcome = if duplicate { "duplicate" } else { "accepted" };
            state.metrics.callback(TWILIO, kind.as_str(), outcome, "");
            tracing::info!(duplicate, "inbound sms accepted");
            let mut response = (StatusCode::OK, EMPTY_TWIML).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/xml; charset=utf-8"),
            );
            response
        }
        Err(error) => {
            error.log();
            state
                .metrics
                .callback(TWILIO, kind.as_str(), "rejected", error.reason());
            error.into_response()
        }
    }
}

/// Ids Foco generates are UUIDs; anything else cannot name an account, and is
/// refused without a lookup.
fn looks_like_uuid(text: &str) -> bool {
    text.len() == 36
        && text.bytes().enumerate().all(|(index, byte)| match index {
            8 | 13 | 18 | 23 => byte == b'-',
            _ => byte.is_ascii_hexdigit(),
        })
}

fn looks_like_route_name(text: &str) -> bool {
    text.len() <= 63
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

async fn handle(
    state: &AppState,
    account_id: &str,
    route_name: &str,
    kind: ReceiptKind,
    request: Request,
) -> Result<Outcome, IngressError> {
    let received_at = SystemTime::now();
    if !looks_like_uuid(account_id) || !looks_like_route_name(route_name) {
        return Err(IngressError::UnknownRoute);
    }
    tracing::Span::current().record("account_id", account_id);
    let resolved = state
        .sources
        .route(account_id, route_name)
        .await
        .map_err(IngressError::ControlUnavailable)?
        .ok_or(IngressError::UnknownRoute)?;
    let route = resolved
        .route
        .as_ref()
        .ok_or(IngressError::IncompleteSource)?;
    if route.kind != TWILIO {
        return Err(IngressError::UnknownRoute);
    }
    let auth_token = resolved
        .credentials
        .get("auth_token")
        .cloned()
        .unwrap_or_default();

    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    check_declared_length(headers, CALLBACK_MAX_BODY)?;
    if body_format(headers, None)? != BodyFormat::Form {
        return Err(IngressError::UnsupportedMediaType);
    }
    let raw_body = read_limited(body, CALLBACK_MAX_BODY).await?;
    let signed = SignedRequest {
        headers,
        raw_body: &raw_body,
        now_unix_seconds: unix_seconds(received_at),
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str()),
        public_base: state.config.public_url.as_deref(),
    };
    Verifier::Twilio(TwilioSignature)
        .verify(&signed, std::slice::from_ref(&auth_token))
        .map_err(IngressError::Signature)?;
    let fields = form_to_json(&raw_body)?;

    let subject = state.names.receipts_subject(&route.account_id, kind);
    match kind {
        ReceiptKind::Status => match callbacks::twilio_status(&route.account_id, &fields)? {
            StatusCallback::Ignored { status } => {
                tracing::debug!(status, "intermediate message status, nothing to record");
                Ok(Outcome::Receipt {
                    published: false,
                    duplicate: false,
                })
            }
            StatusCallback::Receipt {
                receipt,
                message_id,
            } => {
                let payload = Bytes::from(receipt.encode_to_vec());
                let published = publish(state, subject, &message_id, payload).await?;
                Ok(Outcome::Receipt {
                    published: true,
                    duplicate: published.duplicate,
                })
            }
        },
        ReceiptKind::Inbound => {
            let (inbound, message_id) = callbacks::twilio_inbound(
                &route.account_id,
                &route.name,
                &fields,
                unix_millis(received_at),
            )?;
            let payload = Bytes::from(inbound.encode_to_vec());
            let published = publish(state, subject, &message_id, payload).await?;
            Ok(Outcome::Inbound {
                duplicate: published.duplicate,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_lookup() {
        assert!(looks_like_uuid("0190f3c2-7d1e-7c3a-9d5e-1f2a3b4c5d6e"));
        assert!(!looks_like_uuid("0190f3c2-7d1e-7c3a-9d5e-1f2a3b4c5d6"));
        assert!(!looks_like_uuid("0190f3c2x7d1e-7c3a-9d5e-1f2a3b4c5d6e"));
        assert!(looks_like_route_name("primary"));
        assert!(looks_like_route_name(""));
        assert!(!looks_like_route_name("Primary"));
        assert!(!looks_like_route_name("a/b"));
    }
}
