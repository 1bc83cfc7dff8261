//! Rules: what a source's events turn into. The condition (CEL) and the
//! templates (minijinja) are compiled here, at save time, so a typo is reported to
//! whoever wrote it with its position instead of failing every later event.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeleteResponse, DeleteRuleRequest, ListRulesRequest, ListRulesResponse, Priority, Rule,
    UpsertRuleRequest,
};
use uuid::Uuid;

use super::{AppState, accounts, millis, sources};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;

const MAX_RECIPIENTS: usize = 100;
const MAX_SENDER_ID_LEN: usize = 32;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RuleRow {
    pub id: Uuid,
    pub source_id: Uuid,
    pub name: String,
    pub condition: String,
    pub recipients: Vec<String>,
    pub body: String,
    pub provider: String,
    pub sender_id: String,
    pub priority: i16,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The `rules` columns a [`RuleRow`] reads, as a literal for `concat!`.
macro_rules! rule_columns {
    () => {
        "id, source_id, name, condition, recipients, body, provider, sender_id, priority, enabled, \
         created_at, updated_at"
    };
}

impl RuleRow {
    pub fn into_proto(self) -> Rule {
        Rule {
            id: self.id.to_string(),
            source_id: self.source_id.to_string(),
            name: self.name,
            when: self.condition,
            to: self.recipients,
            body: self.body,
            provider: self.provider,
            from: self.sender_id,
            priority: i32::from(self.priority),
            enabled: self.enabled,
            created_at_ms: millis(self.created_at),
            updated_at_ms: millis(self.updated_at),
        }
    }
}

fn validate_rule(request: &UpsertRuleRequest) -> Result<Priority, ApiError> {
    validate::name("name", &request.name)?;
    validate::condition("when", &request.when)?;
    if request.to.is_empty() {
        return Err(ApiError::invalid("to needs at least one recipient"));
    }
    if request.to.len() > MAX_RECIPIENTS {
        return Err(ApiError::invalid(format!(
            "to has more than {MAX_RECIPIENTS} recipients"
        )));
    }
    for (index, recipient) in request.to.iter().enumerate() {
        if recipient.trim().is_empty() {
            return Err(ApiError::invalid(format!("to[{index}] is empty")));
        }
        validate::template(&format!("to[{index}]"), recipient)?;
    }
    if request.body.trim().is_empty() {
        return Err(ApiError::invalid("body is required"));
    }
    validate::template("body", &request.body)?;
    if !request.provider.is_empty() {
        validate::name("provider", &request.provider)?;
    }
    if request.from.chars().count() > MAX_SENDER_ID_LEN {
        return Err(ApiError::invalid(format!(
            "from is longer than {MAX_SENDER_ID_LEN} characters"
        )));
    }
    match Priority::try_from(request.priority) {
        Ok(Priority::Unspecified) => Ok(Priority::Transactional),
        Ok(priority) => Ok(priority),
        Err(_) => Err(ApiError::invalid(
            "priority must be transactional or marketing",
        )),
    }
}

/// A Twilio route needs a from number; it may come from the route or the rule.
async fn check_sender_available(
    state: &AppState,
    account_id: Uuid,
    request: &UpsertRuleRequest,
) -> Result<(), ApiError> {
    if !request.from.is_empty() {
        return Ok(());
    }
    let route: Option<(String, String, serde_json::Value)> = sqlx::query_as(
        "SELECT name, kind, settings FROM provider_routes
         WHERE account_id = $1 AND ($2 = '' OR name = $2)
         ORDER BY (name = $2) DESC, is_default DESC, created_at ASC LIMIT 1",
    )
    .bind(account_id)
    .bind(&request.provider)
    .fetch_optional(&state.pool)
    .await?;
    let Some((name, kind, settings)) = route else {
        return Ok(());
    };
    let has_from = ["from", "messaging_service_sid"].iter().any(|key| {
        settings
            .get(key)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| !v.is_empty())
    });
    if kind == "twilio" && !has_from {
        return Err(ApiError::invalid(format!(
            "provider route {name:?} (twilio) has no settings.from, so the rule needs from"
        )));
    }
    Ok(())
}

pub async fn upsert(
    state: AppState,
    caller: Caller,
    request: UpsertRuleRequest,
) -> Result<Rule, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let priority = validate_rule(&request)?;
    let source = sources::load(&state, &account, &request.source).await?;
    check_sender_available(&state, account.id, &request).await?;
    let row = sqlx::query_as::<_, RuleRow>(concat!(
        "INSERT INTO rules (id, account_id, source_id, name, condition, recipients, body, provider, sender_id,
                            priority, enabled)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (source_id, name) DO UPDATE SET
             condition = EXCLUDED.condition,
             recipients = EXCLUDED.recipients,
             body = EXCLUDED.body,
             provider = EXCLUDED.provider,
             sender_id = EXCLUDED.sender_id,
             priority = EXCLUDED.priority,
             enabled = EXCLUDED.enabled,
             updated_at = now()
         RETURNING ",
        rule_columns!()
    ))
    .bind(Uuid::now_v7())
    .bind(account.id)
    .bind(source.id)
    .bind(&request.name)
    .bind(request.when.trim())
    .bind(&request.to)
    .bind(&request.body)
    .bind(&request.provider)
    .bind(&request.from)
    .bind(priority as i16)
    .bind(request.enabled.unwrap_or(true))
    .fetch_one(&state.pool)
    .await?;
    tracing::info!(account_id = %account.id, source = %source.name, rule = %row.name, "rule saved");
    state.notifier.announce(account.id, ChangeKind::Rule).await;
    Ok(row.into_proto())
}

pub async fn list(
    state: AppState,
    caller: Caller,
    request: ListRulesRequest,
) -> Result<ListRulesResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let source = sources::load(&state, &account, &request.source).await?;
    let rules = load_for_source(&state, source.id, false).await?;
    Ok(ListRulesResponse {
        rules: rules.into_iter().map(RuleRow::into_proto).collect(),
    })
}

/// Rules of a source in name order, optionally only the enabled ones.
pub async fn load_for_source(
    state: &AppState,
    source_id: Uuid,
    only_enabled: bool,
) -> Result<Vec<RuleRow>, ApiError> {
    Ok(sqlx::query_as::<_, RuleRow>(concat!(
        "SELECT ",
        rule_columns!(),
        " FROM rules WHERE source_id = $1 AND (enabled OR NOT $2) ORDER BY name"
    ))
    .bind(source_id)
    .bind(only_enabled)
    .fetch_all(&state.pool)
    .await?)
}

pub async fn delete(
    state: AppState,
    caller: Caller,
    request: DeleteRuleRequest,
) -> Result<DeleteResponse, ApiError> {
    let account = accounts::authorize(&state, caller, &request.account).await?;
    let source = sources::load(&state, &account, &request.source).await?;
    let deleted =
        sqlx::query("DELETE FROM rules WHERE account_id = $1 AND source_id = $2 AND name = $3")
            .bind(account.id)
            .bind(source.id)
            .bind(&request.name)
            .execute(&state.pool)
            .await?
            .rows_affected()
            > 0;
    if deleted {
        tracing::info!(account_id = %account.id, source = %source.name, rule = %request.name, "rule deleted");
        state.notifier.announce(account.id, ChangeKind::Rule).await;
    }
    Ok(DeleteResponse { deleted })
}
