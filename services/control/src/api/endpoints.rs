//! Status webhook endpoints: create (the secret is shown once), upsert by
//! name (what `foco apply` calls), list, delete, rotate the secret, list
//! deliveries with their attempts, replay one. The worker that sends them is
//! `crate::webhooks`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    CreateEndpointRequest, CreateEndpointResponse, DeleteEndpointRequest, DeleteEndpointResponse,
    Endpoint, EndpointAttempt, EndpointDelivery, ListEndpointDeliveriesRequest,
    ListEndpointDeliveriesResponse, ListEndpointsRequest, ListEndpointsResponse,
    ReplayEndpointDeliveryRequest, RotateEndpointSecretRequest, UpsertEndpointRequest,
    UpsertEndpointResponse,
};
use uuid::Uuid;

use super::AppState;
use super::accounts::AccountRow;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;
use crate::webhooks::{payload, signature};

/// Endpoints one account may have.
const MAX_ENDPOINTS: i64 = 20;
const MAX_URL_LEN: usize = 2_000;
const MAX_DESCRIPTION_LEN: usize = 500;
/// How long a rotated-out secret still signs when the request names no time.
const DEFAULT_PREVIOUS_VALID_FOR: Duration = Duration::from_secs(24 * 3600);
const MAX_PREVIOUS_VALID_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(sqlx::FromRow)]
struct EndpointRow {
    id: Uuid,
    name: String,
    url: String,
    event_types: Vec<String>,
    description: String,
    enabled: bool,
    disabled_reason: String,
    created_at: DateTime<Utc>,
    failing_since: Option<DateTime<Utc>>,
}

/// The columns of `EndpointRow`, for `concat!`: sqlx runs only SQL that is
/// text in the source.
macro_rules! endpoint_columns {
    () => {
        "id, name, url, event_types, description, enabled, disabled_reason, created_at, failing_since"
    };
}

impl EndpointRow {
    fn into_proto(self, account: &AccountRow) -> Endpoint {
        Endpoint {
            id: self.id.to_string(),
            name: self.name,
            account: account.name.clone(),
            url: self.url,
            event_types: self.event_types,
            description: self.description,
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            created_at_ms: self.created_at.timestamp_millis(),
            failing_since_ms: self
                .failing_since
                .map(|at| at.timestamp_millis())
                .unwrap_or_default(),
        }
    }
}

/// The endpoint a request names, by id or by name, in `account`.
async fn endpoint_id(
    state: &AppState,
    account: &AccountRow,
    field: &'static str,
    text: &str,
) -> Result<Uuid, ApiError> {
    let text = text.trim();
    if let Ok(id) = Uuid::parse_str(text) {
        return Ok(id);
    }
    if text.is_empty() {
        return Err(ApiError::invalid_field(field, "names no endpoint"));
    }
    sqlx::query_scalar("SELECT id FROM endpoints WHERE account_id = $1 AND name = $2")
        .bind(account.id)
        .bind(text)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no endpoint named {text:?}")))
}

fn check_url(text: &str, allow_private_hosts: bool) -> Result<String, ApiError> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_URL_LEN {
        return Err(ApiError::invalid_field(
            "url",
            format!("must be 1 to {MAX_URL_LEN} characters"),
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|error| ApiError::invalid_field("url", format!("is not a URL: {error}")))?;
    foco_outbound::guard::check_url(&url, allow_private_hosts)
        .map_err(|refused| ApiError::invalid_field("url", refused.to_string()))?;
    Ok(url.to_string())
}

fn check_event_types(requested: &[String]) -> Result<Vec<String>, ApiError> {
    let mut event_types = Vec::with_capacity(requested.len());
    for event_type in requested {
        let event_type = event_type.trim();
        if !payload::EVENT_TYPES.contains(&event_type) {
            return Err(ApiError::invalid_field(
                "event_types",
                format!(
                    "{event_type:?} is not one of {}",
                    payload::EVENT_TYPES.join(", ")
                ),
            ));
        }
        if !event_types.iter().any(|known| known == event_type) {
            event_types.push(event_type.to_owned());
        }
    }
    Ok(event_types)
}

/// The URL, event types and description of a request, checked.
struct EndpointFields {
    url: String,
    event_types: Vec<String>,
    description: String,
}

impl EndpointFields {
    fn check(
        url: &str,
        event_types: &[String],
        description: &str,
        allow_private_hosts: bool,
    ) -> Result<Self, ApiError> {
        let description = description.trim();
        if description.chars().count() > MAX_DESCRIPTION_LEN {
            return Err(ApiError::invalid_field(
                "description",
                format!("is longer than {MAX_DESCRIPTION_LEN} characters"),
            ));
        }
        Ok(Self {
            url: check_url(url, allow_private_hosts)?,
            event_types: check_event_types(event_types)?,
            description: description.to_owned(),
        })
    }
}

/// A secret an operator chose: `whsec_` and base64 of 24 to 64 bytes, as the
/// Standard Webhooks specification asks.
fn check_secret(text: &str) -> Result<String, ApiError> {
    let text = text.trim();
    match signature::secret_key(text) {
        Some(key) if (24..=64).contains(&key.len()) => Ok(text.to_owned()),
        _ => Err(ApiError::invalid_field(
            "secret",
            "must be whsec_ and the base64 of 24 to 64 random bytes (e.g. echo whsec_$(head -c 32 /dev/urandom | base64))",
        )),
    }
}

async fn check_room(
    executor: impl sqlx::PgExecutor<'_>,
    account: &AccountRow,
) -> Result<(), ApiError> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM endpoints WHERE account_id = $1")
        .bind(account.id)
        .fetch_one(executor)
        .await?;
    if count >= MAX_ENDPOINTS {
        return Err(ApiError::FailedPrecondition(format!(
            "the account has {MAX_ENDPOINTS} endpoints already"
        )));
    }
    Ok(())
}

async fn insert(
    executor: impl sqlx::PgExecutor<'_>,
    state: &AppState,
    account: &AccountRow,
    (id, name): (Uuid, &str),
    fields: EndpointFields,
    secret: &str,
) -> Result<EndpointRow, ApiError> {
    let sealed = state.sealer.seal(id, secret.as_bytes())?;
    sqlx::query_as(concat!(
        "INSERT INTO endpoints (id, account_id, name, url, event_types, description, secret_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ",
        endpoint_columns!()
    ))
    .bind(id)
    .bind(account.id)
    .bind(name)
    .bind(fields.url)
    .bind(fields.event_types)
    .bind(fields.description)
    .bind(sealed)
    .fetch_one(executor)
    .await
    .map_err(|error| {
        ApiError::unique_or(
            error,
            format!("the account has an endpoint named {name:?} already"),
        )
    })
}

/// Tells every replica's status worker that the account's endpoints changed
/// (it remembers which accounts have one: `crate::webhooks`).
async fn announce(state: &AppState, account: &AccountRow) {
    state
        .notifier
        .announce(account.id, ChangeKind::Endpoint)
        .await;
}

pub async fn create(
    state: &AppState,
    account: &AccountRow,
    request: CreateEndpointRequest,
) -> Result<CreateEndpointResponse, ApiError> {
    let fields = EndpointFields::check(
        &request.url,
        &request.event_types,
        &request.description,
        state.webhooks_allow_private_hosts,
    )?;
    let id = Uuid::new_v4();
    let name = match request.name.trim() {
        "" => format!("endpoint-{}", &id.simple().to_string()[..12]),
        name => name.to_owned(),
    };
    validate::name("name", &name)?;
    check_room(&state.pool, account).await?;
    let secret = signature::new_secret();
    let row = insert(&state.pool, state, account, (id, &name), fields, &secret).await?;
    announce(state, account).await;
    Ok(CreateEndpointResponse {
        endpoint: Some(row.into_proto(account)),
        secret,
    })
}

/// The stored endpoint `upsert` compares a request with.
#[derive(sqlx::FromRow)]
struct Current {
    id: Uuid,
    url: String,
    event_types: Vec<String>,
    description: String,
    secret_sealed: Vec<u8>,
}

/// Creates the endpoint `name`, or updates it in place: its id, deliveries
/// and (unless the request names another) secret stay. A changed URL
/// re-enables an endpoint the worker disabled (the address was the fault);
/// the same file applied again changes nothing, not even that.
pub async fn upsert(
    state: &AppState,
    account: &AccountRow,
    request: UpsertEndpointRequest,
) -> Result<UpsertEndpointResponse, ApiError> {
    let name = request.name.trim();
    if name.is_empty() {
        return Err(ApiError::invalid_field("name", "is required"));
    }
    validate::name("name", name)?;
    let fields = EndpointFields::check(
        &request.url,
        &request.event_types,
        &request.description,
        state.webhooks_allow_private_hosts,
    )?;
    let chosen_secret = match request.secret.trim() {
        "" => None,
        secret => Some(check_secret(secret)?),
    };
    let mut transaction = state.pool.begin().await?;
    let current: Option<Current> = sqlx::query_as(
        "SELECT id, url, event_types, description, secret_sealed FROM endpoints \
         WHERE account_id = $1 AND name = $2 FOR UPDATE",
    )
    .bind(account.id)
    .bind(name)
    .fetch_optional(&mut *transaction)
    .await?;
    let Some(current) = current else {
        check_room(&mut *transaction, account).await?;
        let (secret, shown) = match chosen_secret {
            Some(secret) => (secret, String::new()),
            None => {
                let secret = signature::new_secret();
                (secret.clone(), secret)
            }
        };
        let row = insert(
            &mut *transaction,
            state,
            account,
            (Uuid::new_v4(), name),
            fields,
            &secret,
        )
        .await?;
        transaction.commit().await?;
        announce(state, account).await;
        return Ok(UpsertEndpointResponse {
            endpoint: Some(row.into_proto(account)),
            secret: shown,
            created: true,
            changed: true,
        });
    };
    let new_secret = match chosen_secret {
        Some(secret)
            if state
                .sealer
                .open_string(current.id, &current.secret_sealed)?
                != secret =>
        {
            Some(state.sealer.seal(current.id, secret.as_bytes())?)
        }
        _ => None,
    };
    let changed = new_secret.is_some()
        || current.url != fields.url
        || current.event_types != fields.event_types
        || current.description != fields.description;
    let row: EndpointRow = sqlx::query_as(concat!(
        "UPDATE endpoints SET url = $2, event_types = $3, description = $4, \
           previous_secret_sealed = CASE WHEN $5::bytea IS NULL THEN previous_secret_sealed ELSE secret_sealed END, \
           previous_secret_expires_at = CASE WHEN $5::bytea IS NULL THEN previous_secret_expires_at \
             ELSE now() + make_interval(secs => $6) END, \
           secret_sealed = COALESCE($5, secret_sealed), \
           enabled = enabled OR url <> $2, \
           disabled_reason = CASE WHEN url <> $2 THEN '' ELSE disabled_reason END, \
           failing_since = CASE WHEN url <> $2 THEN NULL ELSE failing_since END \
         WHERE id = $1 RETURNING ",
        endpoint_columns!()
    ))
    .bind(current.id)
    .bind(fields.url)
    .bind(fields.event_types)
    .bind(fields.description)
    .bind(new_secret)
    .bind(DEFAULT_PREVIOUS_VALID_FOR.as_secs_f64())
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    if changed {
        announce(state, account).await;
    }
    Ok(UpsertEndpointResponse {
        endpoint: Some(row.into_proto(account)),
        secret: String::new(),
        created: false,
        changed,
    })
}

pub async fn list(
    state: &AppState,
    account: &AccountRow,
    _request: ListEndpointsRequest,
) -> Result<ListEndpointsResponse, ApiError> {
    let rows: Vec<EndpointRow> = sqlx::query_as(concat!(
        "SELECT ",
        endpoint_columns!(),
        " FROM endpoints WHERE account_id = $1 ORDER BY created_at, id"
    ))
    .bind(account.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ListEndpointsResponse {
        endpoints: rows
            .into_iter()
            .map(|row| row.into_proto(account))
            .collect(),
    })
}

pub async fn delete(
    state: &AppState,
    account: &AccountRow,
    request: DeleteEndpointRequest,
) -> Result<DeleteEndpointResponse, ApiError> {
    let id = endpoint_id(state, account, "id", &request.id).await?;
    let deleted = sqlx::query("DELETE FROM endpoints WHERE id = $1 AND account_id = $2")
        .bind(id)
        .bind(account.id)
        .execute(&state.pool)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::not_found("no such endpoint"));
    }
    announce(state, account).await;
    Ok(DeleteEndpointResponse {})
}

pub async fn rotate(
    state: &AppState,
    account: &AccountRow,
    request: RotateEndpointSecretRequest,
) -> Result<CreateEndpointResponse, ApiError> {
    let id = endpoint_id(state, account, "id", &request.id).await?;
    let previous_valid_for = match request.previous_valid_for.trim() {
        "" => DEFAULT_PREVIOUS_VALID_FOR,
        text => humantime::parse_duration(text)
            .ok()
            .filter(|valid_for| *valid_for <= MAX_PREVIOUS_VALID_FOR)
            .ok_or_else(|| {
                ApiError::invalid_field(
                    "previous_valid_for",
                    "must be a duration like 24h, at most 7d",
                )
            })?,
    };
    let secret = signature::new_secret();
    let sealed = state.sealer.seal(id, secret.as_bytes())?;
    let row: Option<EndpointRow> = sqlx::query_as(concat!(
        "UPDATE endpoints SET previous_secret_sealed = secret_sealed, \
           previous_secret_expires_at = now() + make_interval(secs => $4), secret_sealed = $3 \
         WHERE id = $1 AND account_id = $2 RETURNING ",
        endpoint_columns!()
    ))
    .bind(id)
    .bind(account.id)
    .bind(sealed)
    .bind(previous_valid_for.as_secs_f64())
    .fetch_optional(&state.pool)
    .await?;
    let row = row.ok_or_else(|| ApiError::not_found("no such endpoint"))?;
    Ok(CreateEndpointResponse {
        endpoint: Some(row.into_proto(account)),
        secret,
    })
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: String,
    endpoint_id: Uuid,
    event_type: String,
    state: String,
    attempts: i32,
    next_attempt_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    payload: String,
    attempt_log: sqlx::types::Json<Vec<AttemptJson>>,
}

#[derive(serde::Deserialize)]
struct AttemptJson {
    at_ms: f64,
    status_code: i32,
    response: String,
    latency_ms: i32,
}

impl DeliveryRow {
    fn into_proto(self) -> EndpointDelivery {
        EndpointDelivery {
            id: self.id,
            endpoint_id: self.endpoint_id.to_string(),
            event_type: self.event_type,
            next_attempt_at_ms: if self.state == "pending" {
                self.next_attempt_at.timestamp_millis()
            } else {
                0
            },
            state: self.state,
            attempts: u32::try_from(self.attempts).unwrap_or_default(),
            created_at_ms: self.created_at.timestamp_millis(),
            payload: self.payload,
            attempt_log: self
                .attempt_log
                .0
                .into_iter()
                .map(|attempt| EndpointAttempt {
                    at_ms: attempt.at_ms.round() as i64,
                    status_code: u32::try_from(attempt.status_code).unwrap_or_default(),
                    response: attempt.response,
                    latency_ms: u32::try_from(attempt.latency_ms).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// Deliveries with their attempts, for `concat!` (see `endpoint_columns`).
macro_rules! select_deliveries {
    () => {
        "SELECT d.id, d.endpoint_id, d.event_type, d.state, d.attempts, \
       d.next_attempt_at, d.created_at, d.payload, \
       COALESCE((SELECT jsonb_agg(jsonb_build_object( \
           'at_ms', extract(epoch from a.attempted_at) * 1000, 'status_code', a.status_code, \
           'response', a.response, 'latency_ms', a.latency_ms) ORDER BY a.attempted_at) \
         FROM endpoint_attempts a WHERE a.endpoint_id = d.endpoint_id AND a.delivery_id = d.id), \
         '[]'::jsonb) AS attempt_log \
     FROM endpoint_deliveries d JOIN endpoints e ON e.id = d.endpoint_id"
    };
}

pub async fn deliveries(
    state: &AppState,
    account: &AccountRow,
    request: ListEndpointDeliveriesRequest,
) -> Result<ListEndpointDeliveriesResponse, ApiError> {
    let id = endpoint_id(state, account, "endpoint_id", &request.endpoint_id).await?;
    let delivery_state = request.state.trim();
    if !["", "pending", "succeeded", "failed"].contains(&delivery_state) {
        return Err(ApiError::invalid_field(
            "state",
            "must be pending, succeeded or failed",
        ));
    }
    let limit = match request.limit {
        0 => 50,
        limit => i64::from(limit.min(100)),
    };
    let rows: Vec<DeliveryRow> = sqlx::query_as(concat!(
        select_deliveries!(),
        " WHERE d.endpoint_id = $1 AND e.account_id = $2 AND ($3 = '' OR d.state = $3) \
         ORDER BY d.created_at DESC, d.id LIMIT $4"
    ))
    .bind(id)
    .bind(account.id)
    .bind(delivery_state)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    Ok(ListEndpointDeliveriesResponse {
        deliveries: rows.into_iter().map(DeliveryRow::into_proto).collect(),
    })
}

pub async fn replay(
    state: &AppState,
    account: &AccountRow,
    request: ReplayEndpointDeliveryRequest,
) -> Result<EndpointDelivery, ApiError> {
    let id = endpoint_id(state, account, "endpoint_id", &request.endpoint_id).await?;
    let mut transaction = state.pool.begin().await?;
    let replayed = sqlx::query(
        "UPDATE endpoint_deliveries d SET state = 'pending', next_attempt_at = now(), updated_at = now() \
         FROM endpoints e \
         WHERE d.endpoint_id = $1 AND d.id = $2 AND e.id = d.endpoint_id AND e.account_id = $3",
    )
    .bind(id)
    .bind(request.delivery_id.trim())
    .bind(account.id)
    .execute(&mut *transaction)
    .await?;
    if replayed.rows_affected() == 0 {
        return Err(ApiError::not_found("no such delivery"));
    }
    sqlx::query(
        "UPDATE endpoints SET enabled = true, disabled_reason = '', failing_since = NULL \
         WHERE id = $1 AND NOT enabled",
    )
    .bind(id)
    .execute(&mut *transaction)
    .await?;
    let row: DeliveryRow = sqlx::query_as(concat!(
        select_deliveries!(),
        " WHERE d.endpoint_id = $1 AND d.id = $2"
    ))
    .bind(id)
    .bind(request.delivery_id.trim())
    .fetch_one(&mut *transaction)
    .await?;
    transaction.commit().await?;
    announce(state, account).await;
    Ok(row.into_proto())
}
