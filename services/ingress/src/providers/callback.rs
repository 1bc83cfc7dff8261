//! What every provider callback shares: finding the route its URL names,
//! reading the body within a limit, what a signature scheme sees of it,
//! storing receipts and inbound messages on FOCO_RECEIPTS under deterministic
//! ids, the answers and their OpenAPI shapes, and the metric and log line of
//! each callback.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, RawPathParams, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use foco_bus::ReceiptKind;
use foco_proto::v1::ResolvedRoute;
use foco_providers::ProviderKind;
use prost::Message as _;
use serde::Serialize;
use tracing::field::Empty;
use utoipa::openapi::{self, Content, Ref, RefOr, ResponseBuilder};

use crate::body::{BodyFormat, body_format, check_declared_length, read_limited};
use crate::error::IngressError;
use crate::providers::parse::{InboundCallback, StatusCallback};
use crate::publish::publish;
use crate::routes::hooks::unix_seconds;
use crate::signature::SignedRequest;
use crate::state::AppState;

/// A callback about one message is a few hundred bytes to a few KiB.
pub(crate) const CALLBACK_MAX_BODY: usize = 64 * 1024;

/// What a callback about one message is answered with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CallbackAccepted {
    /// Whether a receipt or message was stored (false for intermediate statuses
    /// such as Twilio's `queued`, which change nothing).
    pub published: bool,
    /// It was stored already: the provider retried the callback.
    pub duplicate: bool,
}

/// What a callback carrying several reports or messages (Infobip) is answered
/// with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAccepted {
    /// Reports or messages stored now.
    pub stored: u32,
    /// Reports or messages that were stored already (a retried callback).
    pub duplicates: u32,
    /// Intermediate statuses, which change nothing.
    pub ignored: u32,
}

/// What storing one receipt or inbound message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    New,
    Duplicate,
    Ignored,
}

impl Stored {
    fn outcome(self) -> &'static str {
        match self {
            Self::New => "accepted",
            Self::Duplicate => "duplicate",
            Self::Ignored => "ignored",
        }
    }
}

/// A callback handled to the end: the metric labels and the answer.
pub(crate) struct Handled {
    pub kind: ReceiptKind,
    pub outcome: &'static str,
    pub response: Response,
}

impl Handled {
    /// The JSON answer for a callback about one message.
    pub fn single(kind: ReceiptKind, stored: Stored) -> Self {
        let answer = CallbackAccepted {
            published: stored != Stored::Ignored,
            duplicate: stored == Stored::Duplicate,
        };
        Self {
            kind,
            outcome: stored.outcome(),
            response: (StatusCode::OK, Json(answer)).into_response(),
        }
    }

    /// The JSON answer for a callback carrying several reports or messages.
    pub fn batch(kind: ReceiptKind, stored: &[Stored]) -> Self {
        let count = |wanted: Stored| {
            u32::try_from(stored.iter().filter(|item| **item == wanted).count()).unwrap_or(u32::MAX)
        };
        let answer = BatchAccepted {
            stored: count(Stored::New),
            duplicates: count(Stored::Duplicate),
            ignored: count(Stored::Ignored),
        };
        let outcome = if answer.stored > 0 {
            "accepted"
        } else if answer.duplicates > 0 {
            "duplicate"
        } else {
            "ignored"
        };
        Self {
            kind,
            outcome,
            response: (StatusCode::OK, Json(answer)).into_response(),
        }
    }
}

/// The refusals of a callback about one message, as the shorter entries of
/// the OpenAPI document state them (each provider's first URL details them).
pub(crate) struct Refused;

impl utoipa::IntoResponses for Refused {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        refusals("Not stored; retry later")
    }
}

/// The refusals of a callback carrying several reports or messages (Infobip).
pub(crate) struct BatchRefused;

impl utoipa::IntoResponses for BatchRefused {
    fn responses() -> BTreeMap<String, RefOr<openapi::Response>> {
        refusals("Not (all) stored; retry later")
    }
}

fn refusals(unavailable: &str) -> BTreeMap<String, RefOr<openapi::Response>> {
    let problem = |description: &str| {
        let schema = Ref::from_schema_name("Problem");
        let response = ResponseBuilder::new()
            .description(description)
            .content("application/problem+json", Content::new(Some(schema)))
            .build();
        RefOr::T(response)
    };
    BTreeMap::from([
        ("4XX".to_owned(), problem("Refused")),
        ("503".to_owned(), problem(unavailable)),
    ])
}

/// A provider's callback as its handler receives it: the service's state, the
/// account and route its URL names (`{account_id}` and `{route}`, which is
/// empty for the account's default route), and the request, untouched. A path
/// that does not decode names nothing, and is refused as an unknown route (and
/// counted).
pub struct ProviderRequest {
    state: AppState,
    account_id: String,
    route_name: String,
    request: Request,
}

impl FromRequest<AppState> for ProviderRequest {
    type Rejection = Infallible;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Infallible> {
        let (mut parts, body) = request.into_parts();
        let params = RawPathParams::from_request_parts(&mut parts, state)
            .await
            .ok();
        let param = |name: &str| {
            params
                .iter()
                .flat_map(RawPathParams::iter)
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
                .unwrap_or_default()
        };
        Ok(Self {
            state: state.clone(),
            account_id: param("account_id"),
            route_name: param("route"),
            request: Request::from_parts(parts, body),
        })
    }
}

/// A callback whose URL named a route of its provider, as the provider's
/// handler receives it (with the body, which nothing has read or verified yet).
pub(crate) struct Callback {
    pub route: CallbackRoute,
    pub parts: Parts,
    pub received_at: SystemTime,
}

/// Finds the route of kind `provider` the callback's URL names and runs the
/// provider's `handle` on it, then answers: the metric, one log line, and a
/// problem body for a refusal. `kind` labels refusals of callbacks whose kind
/// is only known from their body (Telnyx).
#[tracing::instrument(
    name = "ingress.provider_callback",
    skip_all,
    fields(provider = provider.id(), kind = kind, account_id = Empty)
)]
pub(crate) async fn respond(
    provider_request: ProviderRequest,
    provider: ProviderKind,
    kind: &'static str,
    handle: impl AsyncFnOnce(&AppState, Callback, Body) -> Result<Handled, IngressError>,
) -> Response {
    let ProviderRequest {
        state,
        account_id,
        route_name,
        request,
    } = provider_request;
    let _in_flight = state.metrics.start_webhook();
    let handled = async {
        let received_at = SystemTime::now();
        let route = resolve_route(&state, &account_id, &route_name, provider).await?;
        let (parts, body) = request.into_parts();
        let callback = Callback {
            route,
            parts,
            received_at,
        };
        handle(&state, callback, body).await
    };
    match handled.await {
        Ok(handled) => {
            let kind = handled.kind.as_str();
            state
                .metrics
                .callback(provider.id(), kind, handled.outcome, "");
            tracing::debug!(
                kind,
                outcome = handled.outcome,
                "provider callback accepted"
            );
            handled.response
        }
        Err(error) => {
            error.log();
            state
                .metrics
                .callback(provider.id(), kind, "rejected", error.reason());
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

/// The provider route a callback URL names, with its credentials in clear.
pub(crate) struct CallbackRoute {
    pub account_id: String,
    pub name: String,
    resolved: Arc<ResolvedRoute>,
}

impl CallbackRoute {
    /// A credential, or `""` when the route has none of that name (every scheme
    /// refuses an empty secret).
    pub fn credential(&self, name: &str) -> String {
        self.resolved
            .credentials
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// A non-blank setting (or credential of that name).
    pub fn setting(&self, name: &str) -> Option<&str> {
        let route = self.resolved.route.as_ref()?;
        route
            .settings
            .get(name)
            .or_else(|| self.resolved.credentials.get(name))
            .map(|value| value.trim())
            .filter(|value| !value.is_empty())
    }
}

/// The route of kind `provider` that the URL names: 404 for anything that is not
/// one (a malformed id, another account's or another kind's route).
async fn resolve_route(
    state: &AppState,
    account_id: &str,
    route_name: &str,
    provider: ProviderKind,
) -> Result<CallbackRoute, IngressError> {
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
    if route.kind != provider.id() {
        return Err(IngressError::UnknownRoute);
    }
    Ok(CallbackRoute {
        account_id: route.account_id.clone(),
        name: route.name.clone(),
        resolved: resolved.clone(),
    })
}

/// Reads a callback's body and says which format it came in: 415 for one that
/// is neither form nor JSON, or not `only` when the provider sends one format
/// (checked before reading), 413 for more than `limit` bytes.
pub(crate) async fn read_callback_body(
    parts: &Parts,
    body: Body,
    only: Option<BodyFormat>,
    limit: usize,
) -> Result<(BodyFormat, Bytes), IngressError> {
    let format = body_format(&parts.headers, None)?;
    if only.is_some_and(|only| only != format) {
        return Err(IngressError::UnsupportedMediaType);
    }
    check_declared_length(&parts.headers, limit)?;
    Ok((format, read_limited(body, limit).await?))
}

/// What a signature scheme sees of a callback.
pub(crate) fn signed_request<'a>(
    state: &'a AppState,
    callback: &'a Callback,
    raw_body: &'a [u8],
) -> SignedRequest<'a> {
    let parts = &callback.parts;
    SignedRequest {
        headers: &parts.headers,
        raw_body,
        now_unix_seconds: unix_seconds(callback.received_at),
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str()),
        public_base: state.config.public_url.as_deref(),
    }
}

/// Stores a delivery receipt on FOCO_RECEIPTS (or nothing, for a status that
/// changes nothing).
pub(crate) async fn store_status(
    state: &AppState,
    account_id: &str,
    callback: StatusCallback,
) -> Result<Stored, IngressError> {
    match callback {
        StatusCallback::Ignored { status } => {
            tracing::debug!(status, "intermediate message status, nothing to record");
            Ok(Stored::Ignored)
        }
        StatusCallback::Receipt {
            receipt,
            message_id,
        } => {
            let payload = receipt.encode_to_vec();
            store(state, account_id, ReceiptKind::Status, &message_id, payload).await
        }
    }
}

/// Stores an inbound SMS on FOCO_RECEIPTS.
pub(crate) async fn store_inbound(
    state: &AppState,
    account_id: &str,
    callback: InboundCallback,
) -> Result<Stored, IngressError> {
    let payload = callback.inbound.encode_to_vec();
    store(
        state,
        account_id,
        ReceiptKind::Inbound,
        &callback.message_id,
        payload,
    )
    .await
}

/// Publishes under the deterministic `message_id`, so a retried callback is
/// stored once.
async fn store(
    state: &AppState,
    account_id: &str,
    kind: ReceiptKind,
    message_id: &str,
    payload: Vec<u8>,
) -> Result<Stored, IngressError> {
    let subject = state.names.receipts_subject(account_id, kind);
    let published = publish(state, subject, message_id, Bytes::from(payload)).await?;
    Ok(if published.duplicate {
        Stored::Duplicate
    } else {
        Stored::New
    })
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

    #[tokio::test]
    async fn batch_answers_count_each_outcome() {
        let handled = Handled::batch(
            ReceiptKind::Status,
            &[Stored::New, Stored::Duplicate, Stored::Ignored, Stored::New],
        );
        assert_eq!(handled.outcome, "accepted");
        let body = axum::body::to_bytes(handled.response.into_body(), 1024)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"stored": 2, "duplicates": 1, "ignored": 1})
        );
        assert_eq!(
            Handled::batch(ReceiptKind::Status, &[Stored::Duplicate]).outcome,
            "duplicate"
        );
        assert_eq!(Handled::batch(ReceiptKind::Status, &[]).outcome, "ignored");
    }
}
