//! Account API keys: generated here, shown once, stored as a SHA-256 hash.

use foco_proto::v1::{CreateApiKeyRequest, CreateApiKeyResponse};
use uuid::Uuid;

use super::{AppState, accounts};
use crate::auth::Caller;
use crate::crypto::{hash_api_key, new_api_key};
use crate::error::ApiError;
use crate::notify::ChangeKind;

const MAX_DESCRIPTION_LEN: usize = 200;

pub async fn create(
    state: AppState,
    caller: Caller,
    request: CreateApiKeyRequest,
) -> Result<CreateApiKeyResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    if request.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(ApiError::invalid(format!(
            "description is longer than {MAX_DESCRIPTION_LEN} characters"
        )));
    }
    let id = Uuid::now_v7();
    let key = new_api_key();
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, key_hash, description) VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(account.id)
    .bind(hash_api_key(&key).as_slice())
    .bind(&request.description)
    .execute(&state.pool)
    .await?;
    tracing::info!(account_id = %account.id, key_id = %id, "api key created");
    state
        .notifier
        .announce(account.id, ChangeKind::Account)
        .await;
    Ok(CreateApiKeyResponse {
        id: id.to_string(),
        key,
    })
}
