//! `POST /v1/hooks/{source_token}`: resolve the source, check size and content
//! type, read the body within the limit, verify the signature over the raw bytes,
//! normalise to JSON, and answer 202 only once JetStream has stored the event.
//!
//! The event id (also the `Nats-Msg-Id`) is the sender's own id when it has one,
//! else a digest of the source and the body, with one exception: when the id
//! comes from a header the signature does not cover, and the signature covers
//! no timestamp either (Shopify, WooCommerce and GitHub sign the body alone), a
//! captured request verifies again for ever under a fresh id header, and would
//! be a new event, a new SMS, each time. Such an event is named by what is
//! signed, the body digest, so a replay is the same event as the original. The
//! sender's id stays in the envelope's `external_id`.
//!
//! How long a copy is recognised: JetStream drops it within the stream's
//! duplicate window (2 minutes), and ingress answers `duplicate: true`. Past that
//! window it is stored, answered as any late retry is (`duplicate: false`), and
//! dropped by rules, which remembers every event with an external id for 7 days
//! in Postgres (`seen_events`); and its jobs, whose ids derive from the event
//! id, are those of the original, which the sender never sends twice. That
//! existing long-window owner needs no extra write here; a KV bucket or a table
//! checked by ingress would put a second replicated write on every webhook's
//! path to repeat it.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use foco_bus::EventParts;
use foco_proto::v1::{ResolvedSource, Source};
use serde::Serialize;

use crate::body::{
    BodyFormat, JsonReading, body_format, check_declared_length, normalise_for, read_limited,
};
use crate::error::IngressError;
use crate::event_fields::{BodyFields, read_event_fields, reads_body};
use crate::publish::{envelope_headers, publish_event};
use crate::signature::{SignedRequest, Verifier};
use crate::state::AppState;
use crate::woocommerce_ping::is_woocommerce_ping;

pub const WEBHOOK_ROUTE: &str = "/v1/hooks/{source_token}";

/// The event is stored on FOCO_EVENTS.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AcceptedBody {
    /// Foco's id for the event: derived from the sender's own event id when the
    /// source has one that a copy of the request cannot change, else from a hash
    /// of the body.
    event_id: String,
    /// An event with this id was stored already (within the bus's duplicate
    /// window): the sender retried, and nothing new was stored.
    duplicate: bool,
}

/// WooCommerce's unsigned creation ping, answered so WooCommerce keeps the
/// webhook active; nothing is stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PingBody {
    ping: bool,
}

enum Outcome {
    Accepted { event_id: String, duplicate: bool },
    Ping,
}

/// Receive a webhook.
///
/// The source (named by the token in the URL) says how the request is verified
/// and where its event type and id live. The answer is 202 only once JetStream
/// has stored the event; 503 with `Retry-After` otherwise.
#[utoipa::path(
    post,
    path = "/v1/hooks/{source_token}",
    tag = "webhooks",
    params(("source_token" = String, Path, description = "The source's token, shown by `foco apply` and `foco sources list`")),
    request_body(
        content(("application/json"), ("application/x-www-form-urlencoded")),
        description = "The sender's payload, verified over its raw bytes. Other content types are read as the source's `content_type` says, or refused."
    ),
    responses(
        (status = 202, description = "Stored on FOCO_EVENTS", body = AcceptedBody),
        (status = 200, description = "WooCommerce's creation ping: answered, not stored", body = PingBody),
        (status = 400, description = "The body is not valid form data, or not valid JSON where JSON is read: when the event type or id comes from the body, and for the hand-written presets (generic, basic-auth, bearer, none). Other presets store the body as signed; rules reports one that is not JSON on the event", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing, wrong or stale signature", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No source has this token", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 410, description = "The source is disabled: stop sending", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is larger than the source allows, or the event (body and headers) larger than the NATS server's max_payload", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON nor form-encoded", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Over the source's rate limit", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds until a request is accepted again"))),
        (status = 503, description = "Not stored; retry later", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    )
)]
pub async fn receive_webhook(
    State(state): State<AppState>,
    token: Result<Path<String>, PathRejection>,
    request: Request,
) -> Response {
    use tracing::field::Empty;
    foco_runtime::work_span!(
        "ingress.webhook",
        source_id = Empty,
        account_id = Empty,
        event_id = Empty,
        event_type = Empty,
    )
    .instrument(answer(state, token, request))
    .await
}

async fn answer(
    state: AppState,
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
            // Debug, like refusals: at thousands of webhooks a second a line each
            // is volume, not news; the counts are in the metrics.
            tracing::debug!(duplicate, "webhook accepted");
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
            tracing::debug!("woocommerce creation ping answered");
            (StatusCode::OK, Json(PingBody { ping: true })).into_response()
        }
        Err(error) => {
            error.log();
            state.metrics.rejected(error.reason());
            error.into_response()
        }
    }
}

/// The source behind `token`, once it may send now: it exists, is enabled and
/// is within its rate limit. All of it before the body is read, so a flooding
/// or guessing sender costs as little as possible.
async fn admit(state: &AppState, token: &str) -> Result<Arc<ResolvedSource>, IngressError> {
    // A token not of the form control makes cannot exist: refused without a
    // lookup, so made-up tokens neither fill the cache nor reach control.
    if !foco_control_client::is_well_formed_source_token(token) {
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
    if !source.enabled {
        return Err(IngressError::SourceDisabled);
    }
    let (per_second, burst) = state
        .config
        .rate_limit_for(source.rate_limit_per_second, source.rate_limit_burst);
    state
        .rate_limiter
        .check(&source.id, per_second, burst, Instant::now())
        .map_err(|retry_after_seconds| IngressError::RateLimited {
            retry_after_seconds,
        })?;

    Ok(resolved)
}

async fn handle(
    state: &AppState,
    token: &str,
    request: Request,
    received_at: SystemTime,
) -> Result<Outcome, IngressError> {
    let resolved = admit(state, token).await?;
    let source = resolved
        .source
        .as_ref()
        .ok_or(IngressError::IncompleteSource)?;
    let mut span_fields = WebhookSpanFields::new(source);

    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    // A body larger than the server's max_payload can never be stored: refused
    // before it is read, as for any body over the limit.
    let limit = state
        .config
        .body_limit_for(source.max_body_bytes)
        .min(state.nats.max_payload());
    check_declared_length(headers, limit)?;
    let format = body_format(
        headers,
        BodyFormat::from_source_setting(&source.content_type),
    )?;
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
        method: parts.method.as_str(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or("/", |path_and_query| path_and_query.as_str()),
        public_base: state.config.public_url.as_deref(),
    };
    verifier
        .verify(&signed, &resolved.secrets)
        .map_err(IngressError::Signature)?;

    let body = normalise_for(format, &raw_body, json_reading(source))?;
    let fields_from = match format {
        BodyFormat::Json => BodyFields::Json(&raw_body),
        BodyFormat::Form => BodyFields::Value(&body.value),
    };
    let fields = read_event_fields(
        &source.event_type_from,
        &source.event_id_from,
        headers,
        fields_from,
    )
    .map_err(IngressError::InvalidJson)?;
    let event_type = fields.event_type.unwrap_or_default();
    let named_by_body = fields
        .external_id_header
        .as_ref()
        .is_some_and(|id_header| verifier.replayable_under_new_id(id_header));
    let external_id = fields
        .external_id
        .or_else(|| verifier.default_event_id(headers));
    let event_id = match &external_id {
        Some(external_id) if !named_by_body => {
            foco_bus::event_id_from_external(&source.id, external_id)
        }
        _ => foco_bus::event_id_from_body(&source.id, &raw_body),
    };
    span_fields.record_event(&event_id, &event_type);

    let envelope_headers = envelope_headers(headers, &signature_headers);
    let published = publish_event(
        state,
        &EventParts {
            event_id: &event_id,
            account_id: &source.account_id,
            source_id: &source.id,
            event_type: &event_type,
            external_id: external_id.as_deref().unwrap_or_default(),
            received_at_ms: unix_millis(received_at),
            headers: &envelope_headers,
            payload: &body.payload,
        },
    )
    .await?;
    Ok(Outcome::Accepted {
        event_id,
        duplicate: published.duplicate,
    })
}

/// The webhook's fields, recorded in one call once the event is known, or
/// (source and account only) when the request ends before that.
struct WebhookSpanFields<'a> {
    source: &'a Source,
    recorded: bool,
}

impl<'a> WebhookSpanFields<'a> {
    fn new(source: &'a Source) -> Self {
        Self {
            source,
            recorded: false,
        }
    }

    fn record_event(&mut self, event_id: &str, event_type: &str) {
        foco_runtime::telemetry::scope::record([
            ("source_id", self.source.id.as_str()),
            ("account_id", self.source.account_id.as_str()),
            ("event_id", event_id),
            ("event_type", event_type),
        ]);
        self.recorded = true;
    }
}

impl Drop for WebhookSpanFields<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            foco_runtime::telemetry::scope::record([
                ("source_id", self.source.id.as_str()),
                ("account_id", self.source.account_id.as_str()),
            ]);
        }
    }
}

/// How far a JSON body of `source` is read: for its fields when the event type or
/// id comes from it; otherwise stored unread for a platform's preset (control
/// says which presets are platforms') and checked for the rest (generic,
/// basic-auth, bearer, none), so that a hand-written sender's mistake is answered
/// 400 while its author is looking. A platform would only retry a 400 and, as
/// Shopify does, in the end drop the webhook: should its body not be JSON, rules
/// reports that on the event (`foco events show`).
fn json_reading(source: &Source) -> JsonReading {
    if reads_body(&source.event_type_from) || reads_body(&source.event_id_from) {
        JsonReading::ReadFields
    } else if source.platform_preset {
        JsonReading::Store
    } else {
        JsonReading::Check
    }
}

pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
    })
}

pub(crate) fn unix_millis(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(platform_preset: bool, event_type_from: &str) -> Source {
        Source {
            platform_preset,
            event_type_from: event_type_from.to_owned(),
            event_id_from: "header:X-Id".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn json_is_read_for_fields_checked_for_hand_written_senders_stored_for_platforms() {
        assert_eq!(json_reading(&source(false, "")), JsonReading::Check);
        assert_eq!(
            json_reading(&source(true, "header:X-Topic")),
            JsonReading::Store
        );
        for platform_preset in [true, false] {
            assert_eq!(
                json_reading(&source(platform_preset, "header:X-Topic|body:type")),
                JsonReading::ReadFields
            );
        }
    }
}
