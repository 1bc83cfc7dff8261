//! Rules: what a source's events turn into. The condition (CEL) and the
//! templates (minijinja) are compiled here, at save time, so a typo is reported to
//! whoever wrote it with its position instead of failing every later event.

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeleteResponse, DeleteRuleRequest, ListRulesRequest, ListRulesResponse, Priority, Rule,
    UpsertRuleRequest,
};
use foco_providers::ProviderKind;
use uuid::Uuid;

use super::{AppState, accounts, millis, sources};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::notify::ChangeKind;
use crate::validate;

const MAX_RECIPIENTS: usize = 100;
pub(super) const MAX_SENDER_ID_LEN: usize = 32;

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
    pub delay_text: String,
    pub send_at: String,
    pub correlation_key: String,
    pub cancel_when: String,
    pub cancel_key: String,
    pub on_repeat: String,
    pub encoding: String,
    pub max_segments: i32,
    pub cap_count: i32,
    pub cap_window: String,
    pub valid_for: String,
}

/// The `rules` columns a [`RuleRow`] reads, as a literal for `concat!`.
macro_rules! rule_columns {
    () => {
        "id, source_id, name, condition, recipients, body, provider, sender_id, priority, enabled, \
         created_at, updated_at, delay_text, send_at, correlation_key, cancel_when, cancel_key, \
         on_repeat, encoding, max_segments, cap_count, cap_window, valid_for"
    };
}

impl RuleRow {
    pub fn into_proto(self) -> Rule {
        let mut rule = Rule {
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
            delay: self.delay_text,
            send_at: self.send_at,
            key: self.correlation_key,
            cancel_when: self.cancel_when,
            cancel_key: self.cancel_key,
            on_repeat: self.on_repeat,
            encoding: self.encoding,
            max_segments: u32::try_from(self.max_segments).unwrap_or(0),
            cap_count: u32::try_from(self.cap_count).unwrap_or(0),
            cap_window: self.cap_window,
            valid_for: self.valid_for,
            warnings: Vec::new(),
        };
        rule.warnings = foco_rule_engine::rule_warnings(&rule);
        rule
    }
}

/// The request as the engine's `Rule`, to check it exactly as it will run.
fn as_engine_rule(request: &UpsertRuleRequest) -> Rule {
    Rule {
        name: request.name.clone(),
        when: request.when.clone(),
        to: request.to.clone(),
        body: request.body.clone(),
        delay: request.delay.clone(),
        send_at: request.send_at.clone(),
        key: request.key.clone(),
        cancel_when: request.cancel_when.clone(),
        cancel_key: request.cancel_key.clone(),
        on_repeat: request.on_repeat.clone(),
        encoding: request.encoding.clone(),
        max_segments: request.max_segments,
        cap_count: request.cap_count,
        cap_window: request.cap_window.clone(),
        valid_for: request.valid_for.clone(),
        ..Default::default()
    }
}

/// A rule being edited, checked as [`upsert`] checks it, as the engine would
/// run it once saved: for previews that must not store anything.
pub(crate) fn draft_rule(request: &UpsertRuleRequest) -> Result<Rule, ApiError> {
    let priority = validate_rule(request)?;
    Ok(Rule {
        provider: request.provider.clone(),
        from: request.from.clone(),
        priority: priority as i32,
        enabled: true,
        ..as_engine_rule(request)
    })
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
    for (field, template) in [
        ("key", &request.key),
        ("send_at", &request.send_at),
        ("cancel_key", &request.cancel_key),
    ] {
        if !template.trim().is_empty() {
            validate::template(field, template)?;
        }
    }
    validate::condition("cancel_when", &request.cancel_when)?;
    validate::valid_for("valid_for", &request.valid_for)?;
    // Timing, cancellation, encoding and cap settings, checked by the engine that
    // will run them.
    foco_rule_engine::validate_rule(&as_engine_rule(request))
        .map_err(|error| ApiError::invalid(error.to_string()))?;
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
    let Ok(kind) = kind.parse::<ProviderKind>() else {
        return Ok(());
    };
    let needed = kind.spec().sender_settings;
    let has_sender = needed.iter().any(|key| {
        settings
            .get(key)
            .and_then(serde_json::Value::as_str)
            .is_some_and(|v| !v.is_empty())
    });
    if !needed.is_empty() && !has_sender {
        return Err(ApiError::invalid(format!(
            "provider route {name:?} ({}) has no settings.{}, so the rule needs from",
            kind.spec().id,
            needed.join(" or settings.")
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
                            priority, enabled, delay_text, send_at, correlation_key, cancel_when, cancel_key,
                            on_repeat, encoding, max_segments, cap_count, cap_window, valid_for)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21,
                 $22)
         ON CONFLICT (source_id, name) DO UPDATE SET
             delay_text = EXCLUDED.delay_text,
             valid_for = EXCLUDED.valid_for,
             send_at = EXCLUDED.send_at,
             correlation_key = EXCLUDED.correlation_key,
             cancel_when = EXCLUDED.cancel_when,
             cancel_key = EXCLUDED.cancel_key,
             on_repeat = EXCLUDED.on_repeat,
             encoding = EXCLUDED.encoding,
             max_segments = EXCLUDED.max_segments,
             cap_count = EXCLUDED.cap_count,
             cap_window = EXCLUDED.cap_window,
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
    .bind(request.delay.trim())
    .bind(request.send_at.trim())
    .bind(request.key.trim())
    .bind(request.cancel_when.trim())
    .bind(request.cancel_key.trim())
    .bind(match request.on_repeat.trim() {
        "" => "replace",
        other => other,
    })
    .bind(match request.encoding.trim() {
        "" => "unicode",
        other => other,
    })
    .bind(i32::try_from(request.max_segments).unwrap_or(i32::MAX))
    .bind(i32::try_from(request.cap_count).unwrap_or(i32::MAX))
    .bind(request.cap_window.trim())
    .bind(request.valid_for.trim())
    .fetch_one(&state.pool)
    .await?;
    tracing::info!(account_id = %account.id, source = %source.name, rule = %row.name, "rule saved");
    if !row.enabled {
        let cancelled = super::scheduling::cancel_jobs_of_rule(
            &state.pool,
            account.id,
            row.id,
            "rule disabled",
        )
        .await?;
        if cancelled > 0 {
            tracing::info!(account_id = %account.id, rule = %row.name, cancelled, "pending jobs of a disabled rule cancelled");
        }
    }
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

/// Enabled rules of an account that have a cancel clause.
pub async fn load_cancel_rules(
    state: &AppState,
    account_id: Uuid,
) -> Result<Vec<RuleRow>, ApiError> {
    Ok(sqlx::query_as::<_, RuleRow>(concat!(
        "SELECT ",
        rule_columns!(),
        " FROM rules WHERE account_id = $1 AND enabled AND cancel_when <> '' ORDER BY name"
    ))
    .bind(account_id)
    .fetch_all(&state.pool)
    .await?)
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
    let deleted: Option<Uuid> = sqlx::query_scalar(
        "DELETE FROM rules WHERE account_id = $1 AND source_id = $2 AND name = $3 RETURNING id",
    )
    .bind(account.id)
    .bind(source.id)
    .bind(&request.name)
    .fetch_optional(&state.pool)
    .await?;
    if let Some(rule_id) = deleted {
        let cancelled = super::scheduling::cancel_jobs_of_rule(
            &state.pool,
            account.id,
            rule_id,
            "rule deleted",
        )
        .await?;
        tracing::info!(account_id = %account.id, source = %source.name, rule = %request.name, cancelled, "rule deleted");
        state.notifier.announce(account.id, ChangeKind::Rule).await;
    }
    Ok(DeleteResponse {
        deleted: deleted.is_some(),
    })
}
