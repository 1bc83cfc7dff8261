//! Message templates: named bodies an account keeps (`message_templates`),
//! checked when saved with the rules' template engine, previewed, and
//! rendered by `SendMessage(s)` with the call's variables. The rendering is
//! what a message stores and the sender sends; the template is never read
//! again for that message.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use foco_proto::v1::{
    DeleteTemplateRequest, DeleteTemplateResponse, GetTemplateRequest, ListTemplatesRequest,
    ListTemplatesResponse, PreviewTemplateRequest, PreviewTemplateResponse, Template,
    UpsertTemplateRequest,
};
use foco_rule_engine::{MessageAccount, MessageTemplateError, RenderedMessage};
use uuid::Uuid;

use super::AppState;
use super::accounts::AccountRow;
use crate::error::ApiError;
use crate::validate;

/// Templates one account may keep.
const MAX_TEMPLATES: i64 = 500;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    id: Uuid,
    pub name: String,
    pub body: String,
    pub encoding: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// The columns of `TemplateRow`, for `concat!`.
macro_rules! template_columns {
    () => {
        "id, name, body, encoding, created_at, updated_at"
    };
}

impl TemplateRow {
    fn into_proto(self, account: &AccountRow) -> Template {
        Template {
            id: self.id.to_string(),
            account: account.name.clone(),
            warnings: foco_rule_engine::body_warnings(&self.body, &self.encoding),
            variables: foco_rule_engine::template_variables(&self.body)
                .into_iter()
                .collect(),
            name: self.name,
            body: self.body,
            encoding: self.encoding,
            created_at_ms: self.created_at.timestamp_millis(),
            updated_at_ms: self.updated_at.timestamp_millis(),
        }
    }
}

/// `""`, `unicode` or `gsm7`, stored as `""` or `gsm7`.
fn check_encoding(encoding: &str) -> Result<&'static str, ApiError> {
    match encoding.trim() {
        "" | "unicode" => Ok(""),
        "gsm7" => Ok("gsm7"),
        _ => Err(ApiError::invalid_field(
            "encoding",
            "is not unicode or gsm7",
        )),
    }
}

/// A template body: not empty, not too long, and parsing (the error says
/// where it stops).
fn check_body(body: &str) -> Result<(), ApiError> {
    if body.trim().is_empty() {
        return Err(ApiError::invalid_field("body", "is required"));
    }
    if body.chars().count() > foco_rule_engine::MAX_TEMPLATE_CHARS {
        return Err(ApiError::invalid_field(
            "body",
            format!(
                "is longer than {} characters",
                foco_rule_engine::MAX_TEMPLATE_CHARS
            ),
        ));
    }
    match validate::template_message("body", body) {
        Some(message) => Err(ApiError::invalid_field("body", message)),
        None => Ok(()),
    }
}

fn check_name(name: &str) -> Result<(), ApiError> {
    validate::name("name", name).map_err(|_| {
        ApiError::invalid_field(
            "name",
            "use 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit",
        )
    })
}

fn not_found(account: &AccountRow, name: &str) -> ApiError {
    ApiError::not_found(format!(
        "template {name:?} not found in account {:?}",
        account.name
    ))
}

pub async fn upsert(
    state: &AppState,
    account: &AccountRow,
    request: UpsertTemplateRequest,
) -> Result<Template, ApiError> {
    check_name(&request.name)?;
    check_body(&request.body)?;
    let encoding = check_encoding(&request.encoding)?;
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM message_templates WHERE account_id = $1")
            .bind(account.id)
            .fetch_one(&state.pool)
            .await?;
    if count >= MAX_TEMPLATES {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM message_templates WHERE account_id = $1 AND name = $2)",
        )
        .bind(account.id)
        .bind(&request.name)
        .fetch_one(&state.pool)
        .await?;
        if !exists {
            return Err(ApiError::FailedPrecondition(format!(
                "account {:?} has {MAX_TEMPLATES} templates, the most it may keep",
                account.name
            )));
        }
    }
    let row: TemplateRow = sqlx::query_as(concat!(
        "INSERT INTO message_templates (id, account_id, name, body, encoding)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, name) DO UPDATE
         SET body = EXCLUDED.body, encoding = EXCLUDED.encoding, updated_at = now()
         RETURNING ",
        template_columns!()
    ))
    .bind(Uuid::new_v4())
    .bind(account.id)
    .bind(&request.name)
    .bind(&request.body)
    .bind(encoding)
    .fetch_one(&state.pool)
    .await?;
    Ok(row.into_proto(account))
}

pub async fn get(
    state: &AppState,
    account: &AccountRow,
    request: GetTemplateRequest,
) -> Result<Template, ApiError> {
    load(state, account, &request.name)
        .await?
        .map(|row| row.into_proto(account))
        .ok_or_else(|| not_found(account, &request.name))
}

pub async fn list(
    state: &AppState,
    account: &AccountRow,
    _request: ListTemplatesRequest,
) -> Result<ListTemplatesResponse, ApiError> {
    let rows: Vec<TemplateRow> = sqlx::query_as(concat!(
        "SELECT ",
        template_columns!(),
        " FROM message_templates WHERE account_id = $1 ORDER BY name"
    ))
    .bind(account.id)
    .fetch_all(&state.pool)
    .await?;
    Ok(ListTemplatesResponse {
        templates: rows
            .into_iter()
            .map(|row| row.into_proto(account))
            .collect(),
    })
}

pub async fn delete(
    state: &AppState,
    account: &AccountRow,
    request: DeleteTemplateRequest,
) -> Result<DeleteTemplateResponse, ApiError> {
    let deleted = sqlx::query("DELETE FROM message_templates WHERE account_id = $1 AND name = $2")
        .bind(account.id)
        .bind(&request.name)
        .execute(&state.pool)
        .await?
        .rows_affected();
    Ok(DeleteTemplateResponse {
        deleted: deleted > 0,
    })
}

pub async fn preview(
    state: &AppState,
    account: &AccountRow,
    request: PreviewTemplateRequest,
) -> Result<PreviewTemplateResponse, ApiError> {
    let (body, stored_encoding) = match (request.name.is_empty(), request.body.is_empty()) {
        (false, true) => {
            let row = load(state, account, &request.name)
                .await?
                .ok_or_else(|| not_found(account, &request.name))?;
            (row.body, row.encoding)
        }
        (true, false) => {
            check_body(&request.body)?;
            (request.body, String::new())
        }
        _ => {
            return Err(ApiError::invalid_field(
                "name",
                "give a stored template's name or a body, one of the two",
            ));
        }
    };
    let encoding = check_encoding(if request.encoding.is_empty() {
        &stored_encoding
    } else {
        &request.encoding
    })?;
    let rendered = render(account, &body, &request.variables, encoding)?;
    Ok(PreviewTemplateResponse {
        encoding: rendered.segments.encoding.as_str().to_owned(),
        segments: u32::try_from(rendered.segments.segments).unwrap_or(u32::MAX),
        characters: u32::try_from(rendered.segments.characters).unwrap_or(u32::MAX),
        ucs2_characters: rendered
            .ucs2_characters
            .iter()
            .map(char::to_string)
            .collect(),
        text: rendered.text,
    })
}

async fn load(
    state: &AppState,
    account: &AccountRow,
    name: &str,
) -> Result<Option<TemplateRow>, ApiError> {
    Ok(sqlx::query_as(concat!(
        "SELECT ",
        template_columns!(),
        " FROM message_templates WHERE account_id = $1 AND name = $2"
    ))
    .bind(account.id)
    .bind(name)
    .fetch_optional(&state.pool)
    .await?)
}

/// The named templates of one account, loaded in one query (the names that
/// exist; the caller answers the others).
pub async fn load_named(
    state: &AppState,
    account: &AccountRow,
    names: &HashSet<&str>,
) -> Result<HashMap<String, TemplateRow>, ApiError> {
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let names: Vec<&str> = names.iter().copied().collect();
    let rows: Vec<TemplateRow> = sqlx::query_as(concat!(
        "SELECT ",
        template_columns!(),
        " FROM message_templates WHERE account_id = $1 AND name = ANY($2)"
    ))
    .bind(account.id)
    .bind(&names)
    .fetch_all(&state.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.name.clone(), row))
        .collect())
}

/// Renders `body` with `variables` for `account`; `encoding` is `""` or
/// `gsm7`. A missing variable or a failed rendering is the caller's mistake:
/// INVALID_ARGUMENT on `variables`.
pub fn render(
    account: &AccountRow,
    body: &str,
    variables: &HashMap<String, String>,
    encoding: &str,
) -> Result<RenderedMessage, ApiError> {
    let message_account = MessageAccount {
        name: account.name.clone(),
        timezone: account.timezone.clone(),
        default_country: account.default_country.clone(),
    };
    foco_rule_engine::render_message(body, variables, &message_account, encoding == "gsm7").map_err(
        |error| match error {
            MessageTemplateError::Syntax { .. } => {
                ApiError::invalid_field("body", format!("the template {error}"))
            }
            _ => ApiError::invalid_field("variables", format!("the template {error}")),
        },
    )
}
