//! `SendMessage` and `SendMessages`: each message is checked on its own (one bad
//! message of a batch does not refuse the others), then the batch is stored in
//! one transaction:
//!
//! 1. an `api_sends` row per message, inserted in idempotency-key order (so two
//!    batches sharing keys wait for each other instead of deadlocking). A key
//!    already stored, or being stored by a concurrent call (whose row lock this
//!    insert waits for), is answered with that call's message, or refused when
//!    its parameters differ;
//! 2. a delayed message becomes a pending `scheduled_jobs` row, which the rules
//!    scheduler publishes when due like any rule's delayed job;
//! 3. an immediate message is published on FOCO_SMS and its ack awaited; a
//!    message whose publish fails loses its row again, so a retry stores it anew;
//! 4. commit. A found key therefore always has a stored job.
//!
//! The job id derives from the idempotency key: a retry whose first attempt was
//! published but never committed (control died in between) publishes the same
//! job again, which JetStream or, later, the sender's claim drops. From there
//! the job is a rule's job without a rule: the sender normalises, checks
//! opt-outs, holds marketing for quiet hours, routes and sends it exactly once.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use foco_proto::v1::{Priority, SendMessageRequest, SendMessageResponse, SmsJob};
use foco_rule_engine::encoding;
use futures::StreamExt as _;
use prost::Message as _;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::super::accounts::AccountRow;
use super::super::rules::MAX_SENDER_ID_LEN;
use super::super::templates;
use crate::api::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::publisher::Publisher;
use crate::validate;

/// Largest `SendMessages` batch.
pub const MAX_BATCH: usize = 1000;
const MAX_METADATA_KEYS: usize = 20;
const MAX_METADATA_KEY_CHARS: usize = 40;
const MAX_METADATA_VALUE_CHARS: usize = 500;
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 255;
/// Publishes of one batch in flight at once.
const PUBLISH_CONCURRENCY: usize = 64;

/// A message that passed its checks, ready to store.
#[derive(Debug)]
pub struct PreparedMessage {
    pub job: SmsJob,
    idempotency_key: Option<String>,
    digest: String,
    metadata: serde_json::Value,
    due_at: Option<DateTime<Utc>>,
}

impl PreparedMessage {
    fn response(&self, message_id: &str, duplicate: bool, due_at_ms: i64) -> SendMessageResponse {
        SendMessageResponse {
            message_id: message_id.to_owned(),
            duplicate,
            send_at_ms: due_at_ms,
            encoding: self.job.encoding.clone(),
            segments: self.job.segments,
        }
    }
}

/// The account's templates that `requests` name, loaded once for the batch.
pub async fn templates_named(
    state: &AppState,
    account: &AccountRow,
    requests: &[SendMessageRequest],
) -> Result<Templates, ApiError> {
    let names: HashSet<&str> = requests
        .iter()
        .map(|request| request.template.as_str())
        .filter(|name| !name.is_empty())
        .collect();
    templates::load_named(state, account, &names).await
}

/// Templates by name.
pub type Templates = HashMap<String, templates::TemplateRow>;

/// Checks one message and builds its job. `account` has been authorized;
/// `templates` holds the ones the message may name.
pub fn prepare(
    account: &AccountRow,
    request: &SendMessageRequest,
    templates: &Templates,
    now: DateTime<Utc>,
) -> Result<PreparedMessage, ApiError> {
    if !request.account.is_empty() && request.account != account.name {
        return Err(ApiError::invalid_field(
            "account",
            "every message of a batch belongs to the batch's account",
        ));
    }
    let to = recipient(account, request)?;
    let body = if request.template.is_empty() {
        body(request)?
    } else {
        body_from_template(account, request, templates)?
    };
    let segments = encoding::analyze(&body);
    let priority = match Priority::try_from(request.priority) {
        Ok(Priority::Unspecified) => Priority::Transactional,
        Ok(priority) => priority,
        Err(_) => {
            return Err(ApiError::invalid_field(
                "priority",
                "is not transactional or marketing",
            ));
        }
    };
    if !request.route.is_empty() {
        crate::validate::name("route", &request.route)
            .map_err(|error| ApiError::invalid_field("route", error.to_string()))?;
    }
    if request.from.chars().count() > MAX_SENDER_ID_LEN {
        return Err(ApiError::invalid_field(
            "from",
            format!("is longer than {MAX_SENDER_ID_LEN} characters"),
        ));
    }
    let named_time = due_at(account, request, now)?;
    let valid_for = validate::valid_for("valid_for", &request.valid_for)?;
    // A send_at already past is due at once, but its validity counts from the
    // time it names (see `due_at`).
    let expires_at_ms = foco_bus::validity::deadline_ms(
        named_time.unwrap_or(now).timestamp_millis(),
        foco_rule_engine::valid_for_or_default(valid_for, &account.default_valid_for),
    );
    let due_at = named_time.filter(|at| *at > now);
    let metadata = metadata(request)?;
    let idempotency_key = match request.idempotency_key.as_str() {
        "" => None,
        key if key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS => {
            return Err(ApiError::invalid_field(
                "idempotency_key",
                format!("is longer than {MAX_IDEMPOTENCY_KEY_CHARS} characters"),
            ));
        }
        key => Some(key.to_owned()),
    };
    let account_id = account.id.to_string();
    let job_id = match &idempotency_key {
        Some(key) => foco_bus::api_job_id(&account_id, key),
        None => foco_bus::api_job_id(&account_id, &Uuid::new_v4().to_string()),
    };
    let digest = request_digest(&to, request, priority);
    Ok(PreparedMessage {
        job: SmsJob {
            job_id,
            account_id,
            to,
            body,
            provider: request.route.clone(),
            from: request.from.clone(),
            priority: priority as i32,
            created_at_ms: now.timestamp_millis(),
            encoding: segments.encoding.as_str().to_owned(),
            segments: u32::try_from(segments.segments).unwrap_or(u32::MAX),
            due_at_ms: due_at.map_or(0, |due_at| due_at.timestamp_millis()),
            expires_at_ms,
            metadata: request.metadata.clone(),
            ..Default::default()
        },
        idempotency_key,
        digest,
        metadata,
        due_at,
    })
}

/// `to`, in E.164 (local numbers read with the account's country).
fn recipient(account: &AccountRow, request: &SendMessageRequest) -> Result<String, ApiError> {
    if request.to.trim().is_empty() {
        return Err(ApiError::invalid_field("to", "is required"));
    }
    foco_phone::normalize_e164(&request.to, &account.default_country).map_err(|_| {
        ApiError::invalid_field(
            "to",
            format!(
                "is not a valid phone number (local numbers are read as {})",
                if account.default_country.is_empty() {
                    "international only: the account has no default country"
                } else {
                    &account.default_country
                }
            ),
        )
    })
}

/// `body`, checked, and transliterated when `encoding` is gsm7.
fn body(request: &SendMessageRequest) -> Result<String, ApiError> {
    if request.body.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "body",
            "is required (or a template)",
        ));
    }
    if !request.variables.is_empty() {
        return Err(ApiError::invalid_field(
            "variables",
            "are read only with a template",
        ));
    }
    check_length("body", &request.body)?;
    match request.encoding.as_str() {
        "" | "unicode" => Ok(request.body.clone()),
        "gsm7" => Ok(encoding::transliterate_to_gsm7(&request.body)),
        _ => Err(ApiError::invalid_field(
            "encoding",
            "is not unicode or gsm7",
        )),
    }
}

/// The named template rendered with the message's variables: what the
/// message stores and sends. The message's own `encoding` takes precedence
/// over the template's.
fn body_from_template(
    account: &AccountRow,
    request: &SendMessageRequest,
    templates: &Templates,
) -> Result<String, ApiError> {
    if !request.body.is_empty() {
        return Err(ApiError::invalid_field(
            "body",
            "give a body or a template, not both",
        ));
    }
    let template = templates.get(&request.template).ok_or_else(|| {
        ApiError::not_found(format!(
            "template {:?} not found in account {:?}",
            request.template, account.name
        ))
    })?;
    let encoding = match request.encoding.as_str() {
        "" => template.encoding.as_str(),
        "unicode" => "",
        "gsm7" => "gsm7",
        _ => {
            return Err(ApiError::invalid_field(
                "encoding",
                "is not unicode or gsm7",
            ));
        }
    };
    let rendered = templates::render(account, &template.body, &request.variables, encoding)?;
    check_length("variables", &rendered.text)?;
    Ok(rendered.text)
}

fn check_length(field: &'static str, text: &str) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars > foco_rule_engine::MAX_BODY_CHARS {
        let what = if field == "body" {
            "is"
        } else {
            "renders a body"
        };
        return Err(ApiError::invalid_field(
            field,
            format!(
                "{what} longer than {} characters ({chars})",
                foco_rule_engine::MAX_BODY_CHARS
            ),
        ));
    }
    Ok(())
}

/// When a delayed message is due; `None`: at once. A `send_at` in the past is
/// answered as it is: the caller sends it at once, with its deadline counted
/// from that time, so a reminder whose time is long past expires unsent.
fn due_at(
    account: &AccountRow,
    request: &SendMessageRequest,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match (request.delay.trim(), request.send_at.trim()) {
        ("", "") => Ok(None),
        (_, "") => {
            let delay = foco_rule_engine::parse_delay(&request.delay)
                .map_err(|error| ApiError::invalid_field("delay", error))?;
            if delay.is_zero() {
                return Ok(None);
            }
            let delay = chrono::TimeDelta::from_std(delay)
                .map_err(|_| ApiError::invalid_field("delay", "is too long"))?;
            Ok(Some(now + delay))
        }
        ("", send_at) => {
            let zone = account
                .timezone
                .parse::<chrono_tz::Tz>()
                .unwrap_or(chrono_tz::UTC);
            let at = foco_rule_engine::parse_instant_in(send_at, zone)
                .map_err(|error| ApiError::invalid_field("send_at", error))?;
            let latest = now
                + chrono::TimeDelta::from_std(foco_rule_engine::MAX_DELAY)
                    .unwrap_or(chrono::TimeDelta::MAX);
            if at > latest {
                return Err(ApiError::invalid_field(
                    "send_at",
                    "is more than 400 days away",
                ));
            }
            Ok(Some(at))
        }
        _ => Err(ApiError::invalid_field(
            "send_at",
            "give delay or send_at, not both",
        )),
    }
}

fn metadata(request: &SendMessageRequest) -> Result<serde_json::Value, ApiError> {
    if request.metadata.len() > MAX_METADATA_KEYS {
        return Err(ApiError::invalid_field(
            "metadata",
            format!("has more than {MAX_METADATA_KEYS} keys"),
        ));
    }
    for (key, value) in &request.metadata {
        if key.is_empty() || key.chars().count() > MAX_METADATA_KEY_CHARS {
            return Err(ApiError::invalid_field(
                "metadata",
                format!("keys have 1 to {MAX_METADATA_KEY_CHARS} characters"),
            ));
        }
        if value.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(ApiError::invalid_field(
                "metadata",
                format!(
                    "the value of {key:?} is longer than {MAX_METADATA_VALUE_CHARS} characters"
                ),
            ));
        }
    }
    Ok(serde_json::json!(request.metadata))
}

/// What makes two calls with one idempotency key the same request: every
/// parameter but the key, the number as normalised, metadata in key order, and
/// a relative delay as written (a retry an hour later is the same request).
fn request_digest(to: &str, request: &SendMessageRequest, priority: Priority) -> String {
    let mut metadata: Vec<(&String, &String)> = request.metadata.iter().collect();
    metadata.sort();
    let priority = (priority as i32).to_string();
    let mut hasher = Sha256::new();
    let mut part = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    for field in [
        to,
        &request.body,
        &request.route,
        &priority,
        request.delay.trim(),
        request.send_at.trim(),
        &request.from,
        &request.encoding,
    ] {
        part(field.as_bytes());
    }
    // Only when given, so that keys stored before validity existed keep their
    // digest.
    if !request.valid_for.trim().is_empty() {
        part(request.valid_for.trim().as_bytes());
    }
    for (key, value) in metadata {
        part(key.as_bytes());
        part(value.as_bytes());
    }
    // The template and its variables as given, not the rendering: a retry
    // after the template changed is still the same request. Only with a
    // template, so that keys stored before templates keep their digest.
    if !request.template.is_empty() {
        part(b"template");
        part(request.template.as_bytes());
        let mut variables: Vec<(&String, &String)> = request.variables.iter().collect();
        variables.sort();
        for (name, value) in variables {
            part(name.as_bytes());
            part(value.as_bytes());
        }
    }
    hex::encode(hasher.finalize())
}

/// One `api_sends` row per message of `order` whose key is new: the job ids
/// inserted now (the others repeat a key already stored).
async fn insert_sends(
    transaction: &mut sqlx::PgConnection,
    caller: Caller,
    account: &AccountRow,
    messages: &[PreparedMessage],
    order: &[usize],
) -> Result<HashSet<String>, ApiError> {
    let column = |field: fn(&PreparedMessage) -> String| -> Vec<String> {
        order.iter().map(|&index| field(&messages[index])).collect()
    };
    let inserted: Vec<String> = sqlx::query_scalar(
        "INSERT INTO api_sends (job_id, account_id, idempotency_key, request_digest, metadata, api_key_id)
         SELECT job_id, $1, idempotency_key, request_digest, metadata, $6
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::jsonb[])
              WITH ORDINALITY AS m (job_id, idempotency_key, request_digest, metadata, position)
         ORDER BY position
         ON CONFLICT DO NOTHING
         RETURNING job_id",
    )
    .bind(account.id)
    .bind(column(|message| message.job.job_id.clone()))
    .bind(
        order
            .iter()
            .map(|&index| messages[index].idempotency_key.clone())
            .collect::<Vec<Option<String>>>(),
    )
    .bind(column(|message| message.digest.clone()))
    .bind(
        order
            .iter()
            .map(|&index| messages[index].metadata.clone())
            .collect::<Vec<serde_json::Value>>(),
    )
    .bind(caller.key_id())
    .fetch_all(transaction)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// Stores prepared messages of one account: one result per message, in order,
/// or one error when the transaction as a whole failed and nothing of it is
/// stored (a job published meanwhile may be on the bus; a retry with its
/// idempotency key names the same job, which is sent once).
pub async fn store(
    state: &AppState,
    publisher: &Publisher,
    caller: Caller,
    account: &AccountRow,
    messages: &[PreparedMessage],
) -> Result<Vec<Result<SendMessageResponse, ApiError>>, ApiError> {
    let mut results: Vec<Option<Result<SendMessageResponse, ApiError>>> =
        messages.iter().map(|_| None).collect();
    check_routes(state, account, messages, &mut results).await?;

    // Keys in one order across calls: concurrent batches wait, never deadlock.
    let mut order: Vec<usize> = (0..messages.len())
        .filter(|&index| results[index].is_none())
        .collect();
    order.sort_by(|&a, &b| {
        messages[a]
            .idempotency_key
            .cmp(&messages[b].idempotency_key)
    });
    let mut transaction = state.pool.begin().await?;
    let inserted = insert_sends(&mut transaction, caller, account, messages, &order).await?;
    // First messages of their key in this call: the ones stored now. Another
    // message with a key stored by this call is a duplicate of it.
    let mut first_of_key: HashSet<&str> = HashSet::new();
    let mut new: Vec<usize> = Vec::new();
    let mut repeated: Vec<usize> = Vec::new();
    for &index in &order {
        let job_id = messages[index].job.job_id.as_str();
        if inserted.contains(job_id) && first_of_key.insert(job_id) {
            new.push(index);
        } else {
            repeated.push(index);
        }
    }
    answer_repeated(&mut transaction, account, messages, &repeated, &mut results).await?;

    let delayed: Vec<usize> = new
        .iter()
        .copied()
        .filter(|&index| messages[index].due_at.is_some())
        .collect();
    if !delayed.is_empty() {
        schedule(&mut transaction, account, messages, &delayed).await?;
    }
    let immediate: Vec<usize> = new
        .iter()
        .copied()
        .filter(|&index| messages[index].due_at.is_none())
        .collect();
    let failed = publish(publisher, messages, &immediate).await;
    if !failed.is_empty() {
        let failed_ids: Vec<&str> = failed
            .iter()
            .map(|&index| messages[index].job.job_id.as_str())
            .collect();
        sqlx::query("DELETE FROM api_sends WHERE job_id = ANY($1)")
            .bind(&failed_ids)
            .execute(&mut *transaction)
            .await?;
    }
    transaction.commit().await?;
    announce_scheduled(publisher, messages, &delayed).await;

    let failed_jobs: HashSet<&str> = failed
        .iter()
        .map(|&index| messages[index].job.job_id.as_str())
        .collect();
    for &index in &new {
        let message = &messages[index];
        results[index] = Some(if failed.contains(&index) {
            Err(not_published())
        } else {
            Ok(message.response(&message.job.job_id, false, message.job.due_at_ms))
        });
    }
    // A repeat of a message of this very call whose publish failed shares its fate.
    for &index in &repeated {
        if let Some(Ok(response)) = &results[index]
            && failed_jobs.contains(response.message_id.as_str())
        {
            results[index] = Some(Err(not_published()));
        }
    }
    Ok(results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| Err(ApiError::Corrupt("message left unanswered".to_owned())))
        })
        .collect())
}

/// Announces the delayed messages just stored on the status feed. They are
/// committed: a change JetStream does not take is logged, not retried (a
/// retried call finds its key and stores nothing new).
async fn announce_scheduled(
    publisher: &Publisher,
    messages: &[PreparedMessage],
    delayed: &[usize],
) {
    let changes: Vec<foco_proto::v1::StatusChange> = delayed
        .iter()
        .map(|&index| {
            let job = &messages[index].job;
            let mut change = foco_bus::status_change(
                &job.account_id,
                &job.job_id,
                foco_bus::status::kind::SCHEDULED,
            );
            change.to.clone_from(&job.to);
            change.provider.clone_from(&job.provider);
            change.metadata.clone_from(&job.metadata);
            change
        })
        .collect();
    publisher.publish_status_changes(&changes).await;
}

/// The route each message names exists (else `NOT_FOUND`), and one without a
/// route has a default to go to (else `FAILED_PRECONDITION`).
async fn check_routes(
    state: &AppState,
    account: &AccountRow,
    messages: &[PreparedMessage],
    results: &mut [Option<Result<SendMessageResponse, ApiError>>],
) -> Result<(), ApiError> {
    let routes: HashSet<String> =
        sqlx::query_scalar::<_, String>("SELECT name FROM provider_routes WHERE account_id = $1")
            .bind(account.id)
            .fetch_all(&state.pool)
            .await?
            .into_iter()
            .collect();
    for (message, result) in messages.iter().zip(results.iter_mut()) {
        let route = &message.job.provider;
        if route.is_empty() && routes.is_empty() {
            *result = Some(Err(ApiError::FailedPrecondition(format!(
                "account {:?} has no provider route to send with",
                account.name
            ))));
        } else if !route.is_empty() && !routes.contains(route) {
            *result = Some(Err(ApiError::not_found(format!(
                "provider route {route:?} not found in account {:?}",
                account.name
            ))));
        }
    }
    Ok(())
}

/// Messages whose idempotency key is stored already: the stored message when
/// the parameters are the same, `FAILED_PRECONDITION` when they differ.
async fn answer_repeated(
    transaction: &mut sqlx::PgConnection,
    account: &AccountRow,
    messages: &[PreparedMessage],
    repeated: &[usize],
    results: &mut [Option<Result<SendMessageResponse, ApiError>>],
) -> Result<(), ApiError> {
    if repeated.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = repeated
        .iter()
        .filter_map(|&index| messages[index].idempotency_key.as_deref())
        .collect();
    let stored: Vec<(String, String, String, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT a.idempotency_key, a.job_id, a.request_digest, s.due_at
         FROM api_sends a LEFT JOIN scheduled_jobs s ON s.job_id = a.job_id
         WHERE a.account_id = $1 AND a.idempotency_key = ANY($2)",
    )
    .bind(account.id)
    .bind(&keys)
    .fetch_all(&mut *transaction)
    .await?;
    let stored: HashMap<&str, (&str, &str, i64)> = stored
        .iter()
        .map(|(key, job_id, digest, due_at)| {
            (
                key.as_str(),
                (
                    job_id.as_str(),
                    digest.as_str(),
                    due_at.map_or(0, |due_at| due_at.timestamp_millis()),
                ),
            )
        })
        .collect();
    for &index in repeated {
        let message = &messages[index];
        let key = message.idempotency_key.as_deref().unwrap_or_default();
        results[index] = Some(match stored.get(key) {
            Some((job_id, digest, due_at_ms)) if *digest == message.digest => {
                Ok(message.response(job_id, true, *due_at_ms))
            }
            Some((job_id, _, _)) => Err(ApiError::FailedPrecondition(format!(
                "idempotency key {key:?} was used with other parameters (message {job_id}); \
                 use a new key for a new message"
            ))),
            // A message id from a fresh UUID collided: cannot happen; retryable.
            None => Err(ApiError::Unavailable(
                "the message could not be stored; retry".to_owned(),
            )),
        });
    }
    Ok(())
}

/// Delayed messages wait in `scheduled_jobs` for the rules scheduler.
async fn schedule(
    transaction: &mut sqlx::PgConnection,
    account: &AccountRow,
    messages: &[PreparedMessage],
    delayed: &[usize],
) -> Result<(), ApiError> {
    let pick = |field: fn(&PreparedMessage) -> String| -> Vec<String> {
        delayed
            .iter()
            .map(|&index| field(&messages[index]))
            .collect()
    };
    let due_at: Vec<DateTime<Utc>> = delayed
        .iter()
        .map(|&index| messages[index].due_at.unwrap_or_else(Utc::now))
        .collect();
    let jobs: Vec<Vec<u8>> = delayed
        .iter()
        .map(|&index| messages[index].job.encode_to_vec())
        .collect();
    sqlx::query(
        "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, recipient, body,
                                     due_at, trigger_received_at, job)
         SELECT job_id, $1, NULL, '', recipient, body, due_at, now(), job
         FROM UNNEST($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bytea[])
              AS j (job_id, recipient, body, due_at, job)
         ON CONFLICT (job_id) DO NOTHING",
    )
    .bind(account.id)
    .bind(pick(|message| message.job.job_id.clone()))
    .bind(pick(|message| message.job.to.clone()))
    .bind(pick(|message| message.job.body.clone()))
    .bind(&due_at)
    .bind(&jobs)
    .execute(&mut *transaction)
    .await?;
    Ok(())
}

/// Publishes immediate messages on FOCO_SMS; the messages that were not stored.
async fn publish(
    publisher: &Publisher,
    messages: &[PreparedMessage],
    immediate: &[usize],
) -> HashSet<usize> {
    futures::stream::iter(immediate.iter().copied())
        .map(|index| async move {
            let job = &messages[index].job;
            let published = publisher
                .publish(
                    publisher.names().sms_subject(&job.account_id),
                    &job.job_id,
                    job.encode_to_vec().into(),
                )
                .await;
            (index, published)
        })
        .buffer_unordered(PUBLISH_CONCURRENCY)
        .filter_map(|(index, published)| async move {
            let error = published.err()?;
            tracing::warn!(error = %error, job_id = %messages[index].job.job_id, "sent message not published");
            Some(index)
        })
        .collect()
        .await
}

fn not_published() -> ApiError {
    ApiError::Unavailable(
        "the message could not be stored on the bus (NATS unavailable); retry later".to_owned(),
    )
}
