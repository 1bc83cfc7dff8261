//! Sources: the list with each webhook URL, creating one from a platform
//! preset, and a source's page (how to connect it, its secret, its rules and
//! the events that made them act).

use std::collections::{BTreeMap, HashSet};

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use foco_proto::v1::{
    GetSourceRequest, ListEventReportsRequest, ListMessagesRequest, ListRulesRequest,
    ListSourcesRequest, Rule, Source, UpsertSourceRequest,
};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::error::ConsoleError;
use crate::presets::{self, GUIDES};
use crate::render::Frame;
use crate::routes::messages::{rule_names, status_text};
use crate::session::Session;
use crate::state::AppState;

/// How many events a source's page lists.
const RECENT_EVENTS: usize = 20;

fn source_view(state: &AppState, source: &Source) -> serde_json::Value {
    let needs_secret = presets::guide(&source.preset).is_none_or(|guide| guide.needs_secret);
    json!({
        "name": source.name,
        "preset": source.preset,
        "preset_label": presets::label(&source.preset),
        "enabled": source.enabled,
        "has_secret": source.has_secret,
        "needs_secret": needs_secret,
        "webhook_url": foco_control_client::webhook_url(&state.config().ingress_url, &source.token),
    })
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
) -> Result<Response, ConsoleError> {
    let sources = state
        .control(&session)?
        .list_sources(ListSourcesRequest {
            account: session.account.clone(),
        })
        .await?
        .into_inner()
        .sources;
    let views: Vec<_> = sources
        .iter()
        .map(|source| source_view(&state, source))
        .collect();
    let presets: Vec<_> = GUIDES
        .iter()
        .map(|guide| json!({"slug": guide.slug, "label": guide.label}))
        .collect();
    state.page(
        &frame,
        &session,
        "sources.html",
        frame.text("sources_title"),
        "sources",
        context! {
            sources => crate::render::value(&views),
            presets => crate::render::value(&presets),
        },
    )
}

#[derive(Deserialize)]
pub struct NewSource {
    name: String,
    preset: String,
    #[serde(default)]
    secret: String,
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    Form(form): Form<NewSource>,
) -> Result<Response, ConsoleError> {
    let name = form.name.trim().to_owned();
    let Some(guide) = presets::guide(&form.preset) else {
        return Err(ConsoleError::Invalid(format!(
            "unknown platform {:?}",
            form.preset
        )));
    };
    // Control needs a secret for a verifying source, but some platforms show
    // theirs only once the URL is registered: until the owner sets it, a random
    // one nobody knows keeps the source closed.
    let secret = match form.secret.trim() {
        "" if guide.needs_secret => crate::session::random_token(),
        given => given.to_owned(),
    };
    let mut control = state.control(&session)?;
    // Upserting would reconfigure a source of the same name: creating must not.
    let existing = control
        .get_source(GetSourceRequest {
            account: session.account.clone(),
            name: name.clone(),
        })
        .await;
    match existing {
        Ok(_) => {
            return Err(ConsoleError::Control(tonic::Status::already_exists(
                format!("source {name:?} already exists"),
            )));
        }
        Err(status) if status.code() == tonic::Code::NotFound => {}
        Err(status) => return Err(status.into()),
    }
    control
        .upsert_source(UpsertSourceRequest {
            account: session.account.clone(),
            name: name.clone(),
            preset: form.preset,
            secret,
            ..Default::default()
        })
        .await?;
    Ok(Redirect::to(&format!(
        "/sources/{}?done=source_created",
        path_segment(&name)
    ))
    .into_response())
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(name): Path<String>,
) -> Result<Response, ConsoleError> {
    let mut control = state.control(&session)?;
    let source = load_source(&state, &session, &name).await?;
    let rules = control
        .list_rules(ListRulesRequest {
            account: session.account.clone(),
            source: name.clone(),
        })
        .await?
        .into_inner()
        .rules;
    let events = recent_events(&state, &session, &rules).await?;
    let instructions: Vec<&str> = presets::guide(&source.preset)
        .map(|guide| guide.steps(frame.lang).to_vec())
        .unwrap_or_default();
    let rule_views: Vec<_> = rules
        .iter()
        .map(|rule| {
            json!({
                "name": rule.name, "when": rule.when, "to": rule.to,
                "enabled": rule.enabled, "warnings": rule.warnings,
            })
        })
        .collect();
    state.page(
        &frame,
        &session,
        "source.html",
        &source.name,
        "sources",
        context! {
            source => crate::render::value(source_view(&state, &source)),
            instructions,
            rules => crate::render::value(&rule_views),
            events => crate::render::value(&events),
        },
    )
}

/// The latest events that made one of `rules` act: reports (scheduled,
/// cancelled, failed...) and messages, grouped by event, newest first.
async fn recent_events(
    state: &AppState,
    session: &Session,
    rules: &[Rule],
) -> Result<Vec<serde_json::Value>, ConsoleError> {
    if rules.is_empty() {
        return Ok(Vec::new());
    }
    let rule_ids: HashSet<&str> = rules.iter().map(|rule| rule.id.as_str()).collect();
    let names = rule_names(rules);
    let reports = state
        .scheduling(session)?
        .list_event_reports(ListEventReportsRequest {
            account: session.account.clone(),
            event_id: String::new(),
            limit: 200,
        })
        .await?
        .into_inner()
        .reports;
    let messages = state
        .control(session)?
        .list_messages(ListMessagesRequest {
            account: session.account.clone(),
            limit: 200,
            ..Default::default()
        })
        .await?
        .into_inner()
        .messages;
    // event id → (latest time, what happened)
    let mut events: BTreeMap<String, (i64, Vec<String>)> = BTreeMap::new();
    for report in reports
        .iter()
        .filter(|report| rule_ids.contains(report.rule_id.as_str()))
    {
        let entry = events.entry(report.event_id.clone()).or_default();
        entry.0 = entry.0.max(report.created_at_ms);
        entry
            .1
            .push(format!("{}: {}", report.rule_name, report.kind));
    }
    for message in messages
        .iter()
        .filter(|message| rule_ids.contains(message.rule_id.as_str()))
    {
        let entry = events.entry(message.event_id.clone()).or_default();
        entry.0 = entry.0.max(message.created_at_ms);
        let rule = names.get(message.rule_id.as_str()).copied().unwrap_or("?");
        entry
            .1
            .push(format!("{rule}: {}", status_text(message.status)));
    }
    let mut listed: Vec<_> = events.into_iter().collect();
    listed.sort_by_key(|(_, (at_ms, _))| std::cmp::Reverse(*at_ms));
    Ok(listed
        .into_iter()
        .take(RECENT_EVENTS)
        .map(|(event_id, (at_ms, happened))| {
            json!({"event_id": event_id, "at_ms": at_ms, "summary": happened.join(", ")})
        })
        .collect())
}

#[derive(Deserialize)]
pub struct SecretForm {
    secret: String,
}

/// Sets (or rotates to) a new signing secret, keeping everything else of the
/// source as it is.
pub async fn set_secret(
    State(state): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    Form(form): Form<SecretForm>,
) -> Result<Response, ConsoleError> {
    let secret = form.secret.trim().to_owned();
    if secret.is_empty() {
        return Err(ConsoleError::Invalid("the secret is empty".to_owned()));
    }
    let mut control = state.control(&session)?;
    let source = load_source(&state, &session, &name).await?;
    control
        .upsert_source(UpsertSourceRequest {
            account: session.account.clone(),
            name: source.name.clone(),
            verification: source.verification,
            secret,
            event_type_from: source.event_type_from,
            event_id_from: source.event_id_from,
            enabled: Some(source.enabled),
            max_body_bytes: source.max_body_bytes,
            preset: source.preset,
            content_type: source.content_type,
            rate_limit_per_second: source.rate_limit_per_second,
            rate_limit_burst: source.rate_limit_burst,
            ..Default::default()
        })
        .await?;
    Ok(Redirect::to(&format!(
        "/sources/{}?done=secret_saved",
        path_segment(&name)
    ))
    .into_response())
}

/// One source of the signed-in account.
pub async fn load_source(
    state: &AppState,
    session: &Session,
    name: &str,
) -> Result<Source, ConsoleError> {
    Ok(state
        .control(session)?
        .get_source(GetSourceRequest {
            account: session.account.clone(),
            name: name.to_owned(),
        })
        .await?
        .into_inner())
}

/// `name` as one path segment.
pub fn path_segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes()).collect()
}
