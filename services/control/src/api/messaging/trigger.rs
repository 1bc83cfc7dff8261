//! `TriggerEvent`: an event of one of the account's sources, stored on
//! FOCO_EVENTS as ingress stores a webhook's (the envelope from `foco_bus`, its
//! owner; the same event id rules; `Nats-Msg-Id` = event id), so rules evaluate
//! it, deduplicate it and report on it exactly as for the webhook. The API key
//! takes the place of the source's signature.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use foco_bus::{EventParts, PublishError};
use foco_proto::v1::{TriggerEventRequest, TriggerEventResponse};
use uuid::Uuid;

use super::super::accounts::AccountRow;
use super::super::sources::DEFAULT_MAX_BODY_BYTES;
use crate::api::AppState;
use crate::error::ApiError;
use crate::publisher::Publisher;

const MAX_EVENT_TYPE_CHARS: usize = 256;
const MAX_EVENT_ID_CHARS: usize = 256;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_NAME_CHARS: usize = 256;
const MAX_HEADER_VALUE_CHARS: usize = 8 * 1024;

#[derive(sqlx::FromRow)]
struct TriggeredSource {
    id: Uuid,
    name: String,
    enabled: bool,
    max_body_bytes: i32,
}

pub async fn trigger(
    state: &AppState,
    publisher: &Publisher,
    account: &AccountRow,
    request: TriggerEventRequest,
) -> Result<TriggerEventResponse, ApiError> {
    if request.source.is_empty() {
        return Err(ApiError::invalid_field("source", "is required"));
    }
    let source = triggered_source(state, account, &request.source).await?;
    let limit = match u32::try_from(source.max_body_bytes) {
        Ok(0) | Err(_) => DEFAULT_MAX_BODY_BYTES,
        Ok(limit) => limit,
    };
    if request.payload.len() > limit as usize {
        return Err(ApiError::invalid_field(
            "payload",
            format!("is larger than the source's limit of {limit} bytes"),
        ));
    }
    if let Err(error) = serde_json::from_str::<serde::de::IgnoredAny>(&request.payload) {
        return Err(ApiError::invalid_field(
            "payload",
            format!("is not JSON: {error}"),
        ));
    }
    if request.event_type.chars().count() > MAX_EVENT_TYPE_CHARS {
        return Err(ApiError::invalid_field(
            "event_type",
            format!("is longer than {MAX_EVENT_TYPE_CHARS} characters"),
        ));
    }
    if request.event_id.chars().count() > MAX_EVENT_ID_CHARS {
        return Err(ApiError::invalid_field(
            "event_id",
            format!("is longer than {MAX_EVENT_ID_CHARS} characters"),
        ));
    }
    let headers = headers(&request)?;

    let source_id = source.id.to_string();
    let account_id = account.id.to_string();
    let event_id = if request.event_id.is_empty() {
        foco_bus::event_id_from_body(&source_id, request.payload.as_bytes())
    } else {
        foco_bus::event_id_from_external(&source_id, &request.event_id)
    };
    let received_at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        });
    let envelope = foco_bus::encode_envelope(&EventParts {
        event_id: &event_id,
        account_id: &account_id,
        source_id: &source_id,
        event_type: &request.event_type,
        external_id: &request.event_id,
        received_at_ms,
        headers: &headers
            .iter()
            .map(|(name, value)| (name.as_str(), Cow::Borrowed(value.as_str())))
            .collect::<Vec<_>>(),
        payload: request.payload.as_bytes(),
    });
    let published = publisher
        .publish(
            publisher.names().events_subject(&account_id, &source_id),
            &event_id,
            envelope,
        )
        .await
        .map_err(|error| match error {
            PublishError::TooLarge { max_payload } => ApiError::invalid_field(
                "payload",
                format!("with its headers is larger than the bus's limit of {max_payload} bytes"),
            ),
            error => {
                tracing::warn!(error = %error, event_id = %event_id, "triggered event not published");
                ApiError::Unavailable(
                    "the event could not be stored (NATS unavailable); retry later".to_owned(),
                )
            }
        })?;
    Ok(TriggerEventResponse {
        event_id,
        duplicate: published.duplicate,
    })
}

/// The account's enabled source named `source` (or with that id).
async fn triggered_source(
    state: &AppState,
    account: &AccountRow,
    source: &str,
) -> Result<TriggeredSource, ApiError> {
    let source_id = Uuid::parse_str(source).ok();
    let found: TriggeredSource = sqlx::query_as(
        "SELECT id, name, enabled, max_body_bytes FROM sources
         WHERE account_id = $1 AND (name = $2 OR id = $3)
         ORDER BY (name = $2) DESC LIMIT 1",
    )
    .bind(account.id)
    .bind(source)
    .bind(source_id)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| {
        ApiError::not_found(format!(
            "source {:?} not found in account {:?}",
            source, account.name
        ))
    })?;
    if !found.enabled {
        return Err(ApiError::FailedPrecondition(format!(
            "source {:?} is disabled: its events are refused",
            found.name
        )));
    }
    Ok(found)
}

/// The request's headers as an envelope carries them: names lower-cased, and
/// two spellings of one name joined with ", " as HTTP folds repeated headers.
fn headers(request: &TriggerEventRequest) -> Result<BTreeMap<String, String>, ApiError> {
    if request.headers.len() > MAX_HEADERS {
        return Err(ApiError::invalid_field(
            "headers",
            format!("has more than {MAX_HEADERS} entries"),
        ));
    }
    let mut headers = BTreeMap::new();
    for (name, value) in &request.headers {
        let valid_name = !name.is_empty()
            && name.len() <= MAX_HEADER_NAME_CHARS
            && name
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        if !valid_name {
            return Err(ApiError::invalid_field(
                "headers",
                "names are letters, digits, '-', '_' and '.'",
            ));
        }
        if value.len() > MAX_HEADER_VALUE_CHARS {
            return Err(ApiError::invalid_field(
                "headers",
                format!("the value of {name:?} is longer than {MAX_HEADER_VALUE_CHARS} bytes"),
            ));
        }
        headers
            .entry(name.to_ascii_lowercase())
            .and_modify(|folded: &mut String| {
                folded.push_str(", ");
                folded.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    Ok(headers)
}
