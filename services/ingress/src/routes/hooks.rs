//! `POST /v1/hooks/{source_token}`: resolve the source, check size and content
//! type, read the body within the limit, verify the signature over the raw bytes,
//! normalise to JSON, and answer 202 only once JetStream has stored the event.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::field::Empty;

use crate::body::{body_format, check_declared_length, normalise, read_limited};
use crate::error::IngressError;
use crate::event_fields::read_field;
use crate::publish::{EventParts, build_envelope, envelope_headers, publish_event};
use crate::signature::{SignedRequest, Verifier};
use crate::state::AppState;
use crate::woocommerce_ping::is_woocommerce_ping;

pub const WEBHOOK_ROUTE: &str = "/v1/hooks/{source_token}";

/// Tokens are short; a longer one cannot exist, so it is refused without a lookup
/// (and without filling the cache with junk keys).
const MAX_TOKEN_LEN: usize = 200;

#[derive(Debug, Serialize)]
struct AcceptedBody {
    event_id: String,
    /// JetStream already held an event with this id: the sender retried.
    duplicate: bool,
}

#[derive(Debug, Serialize)]
struct PingBody {
    ping: bool,
}

enum Outcome {
    Accepted { event_id: String, duplicate: bool },
    Ping,
}

#[tracing::instrument(
    name = "ingress.webhook",
    skip_all,
    fields(source_id = Empty, account_id = Empty, event_id = Empty, event_type = Empty)
)]
pub async fn receive_webhook(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    let _in_flight = state.metrics.start_webhook();
    let received_at = SystemTime::now();
    let outcome = match token {
        Ok(Path(token)) => handle(&state, &token, request, received_at).await,
        // A token that does not even decode cannot belong to a source.
        Err(_) => Err(IngressError::UnknownSource),
    };
    match outcome {
        Ok(Outcome::Accepted {
            event_id,
            duplicate,
        }) => {
            state.metrics.accepted(duplicate);
            tracing::info!(duplicate, "webhook accepted");
            (
                StatusCode::ACCEPTED,
                Json(AcceptedBody {
                    event_id,
                    duplicate,
                }),
            )
                .into_response()
        }
        Ok(Outcome::Ping) => {
            state.metrics.ping();
            tracing::info!("woocommerce creation ping answered");
            (StatusCode::OK, Json(PingBody { ping: true })).into_response()
        }
        Err(error) => {
            error.log();
            state.metrics.rejected(error.reason());
            error.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    token: &str,
    request: Request,
    received_at: SystemTime,
) -> Result<Outcome, IngressError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(IngressError::UnknownSource);
    }
    let resolved = state
        .sources
        .source_by_token(token)
        .await
        .map_err(IngressError::ControlUnavailable)?
        .ok_or(IngressError::UnknownSource)?;
    let source = resolved
        .source
        .as_ref()
        .ok_or(IngressError::IncompleteSource)?;
    let span = tracing::Span::current();
    span.record("source_id", source.id.as_str());
    span.record("account_id", source.account_id.as_str());
    if !source.enabled {
        return Err(IngressError::SourceDisabled);
    }

    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let limit = state.config.body_limit_for(source.max_body_bytes);
    check_declared_length(headers, limit)?;
    let format = body_format(headers)?;
    let raw_body = read_limited(body, limit).await?;

    let verifier = Verifier::from_proto(source.verification.as_ref());
    let signature_headers = verifier.signature_headers();
    if is_woocommerce_ping(format, &raw_body, headers, &signature_headers) {
        return Ok(Outcome::Ping);
    }
    let signed = SignedRequest {
        headers,
        raw_body: &raw_body,
        now_unix_seconds: unix_seconds(received_at),
    };
    verifier
        .verify(&signed, &resolved.secrets)
        .map_err(IngressError::Signature)?;

    let body = normalise(format, &raw_body)?;
    let event_type = read_field(&source.event_type_from, headers, &body.value).unwrap_or_default();
    let external_id = read_field(&source.event_id_from, headers, &body.value)
        .or_else(|| verifier.default_event_id(headers));
    let event_id = match &external_id {
        Some(external_id) => foco_bus::event_id_from_external(&source.id, external_id),
        None => foco_bus::event_id_from_body(&source.id, &raw_body),
    };
    span.record("event_id", event_id.as_str());
    span.record("event_type", event_type.as_str());

    let envelope = build_envelope(EventParts {
        event_id,
        account_id: source.account_id.clone(),
        source_id: source.id.clone(),
        event_type,
        external_id: external_id.unwrap_or_default(),
        received_at_ms: unix_millis(received_at),
        headers: envelope_headers(headers, &signature_headers),
        payload: body.payload,
    });
    let published = publish_event(state, &envelope).await?;
    Ok(Outcome::Accepted {
        event_id: envelope.event_id,
        duplicate: published.duplicate,
    })
}

fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    })
}

fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}
