//! The rule editor. One form both previews and saves: the plain form post
//! works without JavaScript (the "Preview" button re-renders the page with the
//! preview), and `console.js` posts the same form to the preview fragment as
//! the user types. Previews go through control's `PreviewRules` with the rule
//! as a draft, so they are checked exactly as saving would check them, and
//! nothing is stored until "Save".

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use foco_proto::v1::{
    EventSample, ListEventSamplesRequest, ListRulesRequest, PreviewRulesRequest,
    PreviewRulesResponse, Priority, Rule, UpsertRuleRequest,
};
use minijinja::{Value, context};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::{ConsoleError, kind_of};
use crate::presets;
use crate::render::Frame;
use crate::routes::rule_errors;
use crate::routes::sources::{load_source, path_segment};
use crate::session::Session;
use crate::state::AppState;

/// The editor's fields, as the form posts them and the template shows them.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(default)]
pub struct RuleForm {
    name: String,
    when: String,
    /// One recipient per line.
    to: String,
    body: String,
    delay: String,
    send_at: String,
    valid_for: String,
    key: String,
    cancel_when: String,
    cancel_key: String,
    encoding: String,
    max_segments: String,
    cap_count: String,
    cap_window: String,
    priority: String,
    provider: String,
    from: String,
    /// Present (any value) when the checkbox is ticked.
    enabled: Option<String>,
    payload: String,
    event_type: String,
    /// The id of the recent event chosen as the sample, if any.
    sample: String,
    /// `preview`, `use_gsm7`, `use_sample` or `save`.
    action: String,
    /// Non-empty when the rule does not exist yet.
    is_new: String,
}

impl RuleForm {
    fn from_rule(rule: &Rule) -> Self {
        Self {
            name: rule.name.clone(),
            when: rule.when.clone(),
            to: rule.to.join("\n"),
            body: rule.body.clone(),
            delay: rule.delay.clone(),
            send_at: rule.send_at.clone(),
            valid_for: rule.valid_for.clone(),
            key: rule.key.clone(),
            cancel_when: rule.cancel_when.clone(),
            cancel_key: rule.cancel_key.clone(),
            encoding: rule.encoding.clone(),
            max_segments: nonzero(rule.max_segments),
            cap_count: nonzero(rule.cap_count),
            cap_window: rule.cap_window.clone(),
            priority: match Priority::try_from(rule.priority) {
                Ok(Priority::Marketing) => "marketing".to_owned(),
                _ => "transactional".to_owned(),
            },
            provider: rule.provider.clone(),
            from: rule.from.clone(),
            enabled: rule.enabled.then(|| "1".to_owned()),
            ..Self::default()
        }
    }

    fn to_request(&self, account: &str, source: &str) -> Result<UpsertRuleRequest, ConsoleError> {
        Ok(UpsertRuleRequest {
            account: account.to_owned(),
            source: source.to_owned(),
            name: self.name.trim().to_owned(),
            when: self.when.trim().to_owned(),
            to: self
                .to
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            body: self.body.trim().to_owned(),
            provider: self.provider.trim().to_owned(),
            from: self.from.trim().to_owned(),
            priority: match self.priority.as_str() {
                "marketing" => Priority::Marketing as i32,
                _ => Priority::Transactional as i32,
            },
            enabled: Some(self.enabled.is_some()),
            delay: self.delay.trim().to_owned(),
            send_at: self.send_at.trim().to_owned(),
            key: self.key.trim().to_owned(),
            cancel_when: self.cancel_when.trim().to_owned(),
            cancel_key: self.cancel_key.trim().to_owned(),
            on_repeat: String::new(),
            encoding: self.encoding.trim().to_owned(),
            max_segments: number("max_segments", &self.max_segments)?,
            cap_count: number("cap_count", &self.cap_count)?,
            cap_window: self.cap_window.trim().to_owned(),
            valid_for: self.valid_for.trim().to_owned(),
        })
    }
}

impl RuleForm {
    /// The text of the field with this id, for placing an error in it.
    fn field_text(&self, id: &str) -> String {
        match id {
            "when" => &self.when,
            "body" => &self.body,
            "to" => &self.to,
            "key" => &self.key,
            "cancel_when" => &self.cancel_when,
            "cancel_key" => &self.cancel_key,
            "send_at" => &self.send_at,
            _ => "",
        }
        .to_owned()
    }

    /// Where in the form `message` points, if it names a field and a position.
    fn locate(&self, message: &str) -> Option<rule_errors::Located> {
        rule_errors::locate(message, |id| self.field_text(id))
    }
}

fn nonzero(value: u32) -> String {
    if value == 0 {
        String::new()
    } else {
        value.to_string()
    }
}

fn number(field: &str, text: &str) -> Result<u32, ConsoleError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    text.parse()
        .map_err(|_| ConsoleError::Invalid(format!("{field} must be a whole number")))
}

/// The preview panel's data: the rendered rules, or why there are none.
enum PreviewOutcome {
    None,
    Rendered(PreviewRulesResponse),
    Refused(String),
}

impl PreviewOutcome {
    fn context(&self, form: &RuleForm) -> Value {
        match self {
            Self::None => context! { preview => (), preview_error => (), preview_error_at => () },
            Self::Refused(message) => context! {
                preview => (), preview_error => message,
                preview_error_at => crate::render::value(form.locate(message)),
            },
            Self::Rendered(response) => {
                let rules: Vec<_> = response
                    .rules
                    .iter()
                    .map(|rule| {
                        let recipients: Vec<_> = rule
                            .recipients
                            .iter()
                            .map(|recipient| json!({"raw": recipient.raw, "e164": recipient.e164, "error": recipient.error}))
                            .collect();
                        json!({
                            "matched": rule.matched, "error": rule.error,
                            "error_at": (!rule.error.is_empty()).then(|| form.locate(&rule.error)).flatten(),
                            "runs": highlighted_runs(&rule.body, &rule.ucs2_characters),
                            "encoding": rule.encoding, "segments": rule.segments,
                            "characters": rule.characters, "ucs2_characters": rule.ucs2_characters,
                            "send_at_ms": rule.send_at_ms, "key": rule.key, "recipients": recipients,
                        })
                    })
                    .collect();
                context! {
                    preview => crate::render::value(json!({"event_type": response.event_type, "rules": rules})),
                    preview_error => (),
                    preview_error_at => (),
                }
            }
        }
    }
}

/// The body cut into runs of ordinary text and of characters that force UCS-2,
/// for the template to mark the latter.
fn highlighted_runs(body: &str, ucs2_characters: &[String]) -> Vec<serde_json::Value> {
    let mut runs: Vec<(bool, String)> = Vec::new();
    for character in body.chars() {
        let forces = ucs2_characters
            .iter()
            .any(|listed| listed.chars().eq(std::iter::once(character)));
        match runs.last_mut() {
            Some((run_forces, text)) if *run_forces == forces => text.push(character),
            _ => runs.push((forces, character.to_string())),
        }
    }
    runs.into_iter()
        .map(|(ucs2, text)| json!({"ucs2": ucs2, "text": text}))
        .collect()
}

async fn run_preview(
    state: &AppState,
    session: &Session,
    source: &str,
    form: &RuleForm,
) -> Result<PreviewOutcome, ConsoleError> {
    let draft = match form.to_request(&session.account, source) {
        Ok(draft) => draft,
        Err(ConsoleError::Invalid(message)) => return Ok(PreviewOutcome::Refused(message)),
        Err(error) => return Err(error),
    };
    if draft.to.is_empty() || draft.body.is_empty() {
        return Ok(PreviewOutcome::None);
    }
    let request = PreviewRulesRequest {
        account: session.account.clone(),
        source: source.to_owned(),
        rule: String::new(),
        payload: form.payload.clone(),
        headers: Default::default(),
        event_type: form.event_type.trim().to_owned(),
        draft: Some(draft),
    };
    match state.scheduling(session)?.preview_rules(request).await {
        Ok(response) => Ok(PreviewOutcome::Rendered(response.into_inner())),
        Err(status) if kind_of(status.code()) == foco_runtime::ErrorKind::InvalidArgument => {
            Ok(PreviewOutcome::Refused(status.message().to_owned()))
        }
        Err(status) => Err(status.into()),
    }
}

#[allow(clippy::too_many_arguments)]
fn editor(
    state: &AppState,
    session: &Session,
    frame: &Frame,
    source: &str,
    form: &RuleForm,
    is_new: bool,
    samples: &[EventSample],
    preview: &PreviewOutcome,
    save_error: Option<String>,
) -> Result<Response, ConsoleError> {
    let sample_views: Vec<_> = samples
        .iter()
        .map(|sample| {
            json!({"event_id": sample.event_id, "event_type": sample.event_type,
                   "received_at_ms": sample.received_at_ms})
        })
        .collect();
    let title = if is_new {
        frame.text("new_rule").to_owned()
    } else {
        form.name.clone()
    };
    let status = if save_error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let page = state.templates().page(
        frame,
        Some(session),
        "rule.html",
        &title,
        "sources",
        context! {
            source,
            form => crate::render::value(form),
            samples => crate::render::value(&sample_views),
            is_new,
            save_error_at => crate::render::value(save_error.as_deref().and_then(|message| form.locate(message))),
            save_error,
            ..preview.context(form)
        },
    )?;
    Ok((status, page).into_response())
}

async fn stored_rule(
    state: &AppState,
    session: &Session,
    source: &str,
    name: &str,
) -> Result<Option<Rule>, ConsoleError> {
    let rules = state
        .control(session)?
        .list_rules(ListRulesRequest {
            account: session.account.clone(),
            source: source.to_owned(),
        })
        .await?
        .into_inner()
        .rules;
    Ok(rules.into_iter().find(|rule| rule.name == name))
}

/// The source's recent events kept for previews, newest first.
async fn recent_samples(
    state: &AppState,
    session: &Session,
    source: &str,
) -> Result<Vec<EventSample>, ConsoleError> {
    Ok(state
        .scheduling(session)?
        .list_event_samples(ListEventSamplesRequest {
            account: session.account.clone(),
            source: source.to_owned(),
        })
        .await?
        .into_inner()
        .samples)
}

impl RuleForm {
    /// The form previewing against `sample`: its body (indented when it is
    /// JSON) and its event type.
    fn with_sample(self, sample: &EventSample) -> Self {
        let payload = serde_json::from_str::<serde_json::Value>(&sample.payload)
            .ok()
            .and_then(|json| serde_json::to_string_pretty(&json).ok())
            .unwrap_or_else(|| sample.payload.clone());
        Self {
            payload,
            event_type: sample.event_type.clone(),
            sample: sample.event_id.clone(),
            ..self
        }
    }
}

fn sample_event_type(preset: &str) -> &'static str {
    match preset {
        "shopify" => "orders/create",
        _ => "",
    }
}

pub async fn new_rule(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(source): Path<String>,
) -> Result<Response, ConsoleError> {
    let preset = load_source(&state, &session, &source).await?.preset;
    let samples = recent_samples(&state, &session, &source).await?;
    let form = RuleForm {
        encoding: "unicode".to_owned(),
        priority: "transactional".to_owned(),
        enabled: Some("1".to_owned()),
        payload: presets::sample_payload(&preset).to_owned(),
        event_type: sample_event_type(&preset).to_owned(),
        is_new: "1".to_owned(),
        ..RuleForm::default()
    };
    // The latest real event, when the source has had one, else the preset's.
    let form = match samples.first() {
        Some(sample) => form.with_sample(sample),
        None => form,
    };
    editor(
        &state,
        &session,
        &frame,
        &source,
        &form,
        true,
        &samples,
        &PreviewOutcome::None,
        None,
    )
}

pub async fn edit_rule(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path((source, name)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let preset = load_source(&state, &session, &source).await?.preset;
    let rule = stored_rule(&state, &session, &source, &name)
        .await?
        .ok_or(ConsoleError::NotFound)?;
    let samples = recent_samples(&state, &session, &source).await?;
    let form = RuleForm {
        payload: presets::sample_payload(&preset).to_owned(),
        event_type: sample_event_type(&preset).to_owned(),
        ..RuleForm::from_rule(&rule)
    };
    let form = match samples.first() {
        Some(sample) => form.with_sample(sample),
        None => form,
    };
    let preview = run_preview(&state, &session, &source, &form).await?;
    editor(
        &state, &session, &frame, &source, &form, false, &samples, &preview, None,
    )
}

/// The editor's form post: preview (also after switching to GSM-7) or save.
pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(source): Path<String>,
    Form(mut form): Form<RuleForm>,
) -> Result<Response, ConsoleError> {
    let is_new = !form.is_new.is_empty();
    if form.action == "use_gsm7" {
        form.encoding = "gsm7".to_owned();
    }
    let samples = recent_samples(&state, &session, &source).await?;
    if form.action == "use_sample" {
        let sample = samples
            .iter()
            .find(|sample| sample.event_id == form.sample)
            .ok_or_else(|| ConsoleError::Invalid(frame.text("sample_gone").to_owned()))?;
        form = form.with_sample(sample);
    }
    if form.action != "save" {
        let preview = run_preview(&state, &session, &source, &form).await?;
        return editor(
            &state, &session, &frame, &source, &form, is_new, &samples, &preview, None,
        );
    }
    let saved = save(&state, &session, &source, &form, is_new, &frame).await?;
    match saved {
        Ok(()) => Ok(Redirect::to(&format!(
            "/sources/{}?done=rule_saved",
            path_segment(&source)
        ))
        .into_response()),
        Err(message) => {
            let preview = run_preview(&state, &session, &source, &form).await?;
            editor(
                &state,
                &session,
                &frame,
                &source,
                &form,
                is_new,
                &samples,
                &preview,
                Some(message),
            )
        }
    }
}

/// Saves the rule; `Ok(Err(message))` when control refuses it for a reason the
/// user can fix.
async fn save(
    state: &AppState,
    session: &Session,
    source: &str,
    form: &RuleForm,
    is_new: bool,
    frame: &Frame,
) -> Result<Result<(), String>, ConsoleError> {
    let request = match form.to_request(&session.account, source) {
        Ok(request) => request,
        Err(ConsoleError::Invalid(message)) => return Ok(Err(message)),
        Err(error) => return Err(error),
    };
    // Saving upserts: a new rule must not replace one of the same name.
    if is_new
        && stored_rule(state, session, source, &request.name)
            .await?
            .is_some()
    {
        return Ok(Err(format!(
            "{}: {}",
            request.name,
            frame.text("error_already-exists")
        )));
    }
    match state.control(session)?.upsert_rule(request).await {
        Ok(_) => Ok(Ok(())),
        Err(status) => match kind_of(status.code()) {
            foco_runtime::ErrorKind::InvalidArgument
            | foco_runtime::ErrorKind::NotFound
            | foco_runtime::ErrorKind::AlreadyExists => Ok(Err(status.message().to_owned())),
            _ => Err(status.into()),
        },
    }
}

/// `POST .../rules/preview`: only the preview panel, for `console.js`.
pub async fn preview_fragment(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(source): Path<String>,
    Form(form): Form<RuleForm>,
) -> Result<Response, ConsoleError> {
    let preview = run_preview(&state, &session, &source, &form).await?;
    let html = state.templates().render(
        "preview.html",
        frame.context(Some(&session), "", "sources", preview.context(&form)),
    )?;
    Ok(Html(html).into_response())
}
