//! Event samples: a few recent events of a source as they arrived, which the
//! rules service keeps (sampled, a few per source, for 7 days) so that rules
//! can be previewed against what the platform really sends.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use foco_proto::v1::{EventSample, ListEventSamplesRequest, ListEventSamplesResponse};
use uuid::Uuid;

use super::{AppState, accounts, millis, sources};
use crate::auth::Caller;
use crate::error::ApiError;

#[derive(Debug, sqlx::FromRow)]
struct SampleRow {
    event_id: String,
    event_type: String,
    headers: serde_json::Value,
    payload: String,
    received_at: DateTime<Utc>,
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListEventSamplesRequest,
) -> Result<ListEventSamplesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let source = sources::load(&state, &account, &request.source).await?;
    let rows = sqlx::query_as::<_, SampleRow>(
        "SELECT event_id, event_type, headers, payload, received_at FROM event_samples
         WHERE account_id = $1 AND source_id = $2
         ORDER BY received_at DESC, event_id",
    )
    .bind(account.id)
    .bind(source_id_text(source.id))
    .fetch_all(&state.pool)
    .await?;
    Ok(ListEventSamplesResponse {
        samples: rows
            .into_iter()
            .map(|row| EventSample {
                event_id: row.event_id,
                event_type: row.event_type,
                payload: row.payload,
                // Written by rules from a map of strings; anything else is skipped.
                headers: serde_json::from_value::<HashMap<String, String>>(row.headers)
                    .unwrap_or_default(),
                received_at_ms: millis(row.received_at),
            })
            .collect(),
    })
}

/// A source id as events (and so samples) carry it.
fn source_id_text(id: Uuid) -> String {
    id.to_string()
}
