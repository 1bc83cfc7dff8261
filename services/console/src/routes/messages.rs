//! Messages: the searchable list, one message's whole story (event received,
//! rule decisions, provider attempts, receipts) and an event's decision trace.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{NaiveDate, TimeZone as _};
use foco_proto::v1::{
    CancelMessageRequest, GetMessageRequest, ListEventReportsRequest, ListMessagesRequest,
    ListRulesRequest, ListSourcesRequest, Message, MessageStatus, Rule,
};
use minijinja::context;
use serde::Deserialize;
use serde_json::json;

use crate::error::ConsoleError;
use crate::render::Frame;
use crate::routes::sources::path_segment;
use crate::session::Session;
use crate::state::AppState;

/// Messages fetched for the pages that look an event's or a job's messages up
/// among the latest ones (control's maximum).
const LIST_LIMIT: u32 = 1000;
/// Rows a list page shows: control applies every filter, so this is a page.
const SHOWN: u32 = 200;

const STATUSES: &[MessageStatus] = &[
    MessageStatus::Queued,
    MessageStatus::Sending,
    MessageStatus::Sent,
    MessageStatus::Delivered,
    MessageStatus::Undelivered,
    MessageStatus::Failed,
    MessageStatus::Unknown,
    MessageStatus::Cancelled,
    MessageStatus::OptedOut,
    MessageStatus::Expired,
];

pub use foco_control_client::message_status_text as status_text;

fn status_of_text(text: &str) -> MessageStatus {
    STATUSES
        .iter()
        .copied()
        .find(|status| status_text(*status as i32) == text)
        .unwrap_or(MessageStatus::Unspecified)
}

/// Rule id → rule name.
pub fn rule_names(rules: &[Rule]) -> HashMap<&str, &str> {
    rules
        .iter()
        .map(|rule| (rule.id.as_str(), rule.name.as_str()))
        .collect()
}

/// Every rule of the account, to name the rule of each message.
async fn account_rules(state: &AppState, session: &Session) -> Result<Vec<Rule>, ConsoleError> {
    let mut control = state.control(session)?;
    let sources = control
        .list_sources(ListSourcesRequest {
            account: session.account.clone(),
        })
        .await?
        .into_inner()
        .sources;
    let mut rules = Vec::new();
    for source in sources {
        rules.extend(
            control
                .list_rules(ListRulesRequest {
                    account: session.account.clone(),
                    source: source.name,
                })
                .await?
                .into_inner()
                .rules,
        );
    }
    Ok(rules)
}

fn message_view(message: &Message, names: &HashMap<&str, &str>) -> serde_json::Value {
    json!({
        "job_id": message.job_id,
        "event_id": message.event_id,
        "to": message.to,
        "body": message.body,
        "status": status_text(message.status),
        "rule": names.get(message.rule_id.as_str()).copied().unwrap_or(""),
        "created_at_ms": message.created_at_ms,
        "sent_at_ms": message.sent_at_ms,
    })
}

#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct MessageFilters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    to: String,
    /// A rule's id.
    #[serde(default)]
    rule: String,
    /// `YYYY-MM-DD`, in the account's zone, inclusive.
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    /// Paging: only messages created before this (Unix milliseconds).
    #[serde(default)]
    before: String,
}

impl MessageFilters {
    /// This list's link to the page after one ending at `last_ms`.
    fn older_page(&self, last_ms: i64) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("status", &self.status)
            .append_pair("to", &self.to)
            .append_pair("rule", &self.rule)
            .append_pair("from", &self.from)
            .append_pair("until", &self.until)
            .append_pair("before", &last_ms.to_string())
            .finish();
        format!("/messages?{query}")
    }
}

/// Midnight starting `date` in `zone`, as Unix milliseconds.
fn start_of_day_ms(date: &str, zone: &str) -> Option<i64> {
    let day = NaiveDate::parse_from_str(date.trim(), "%Y-%m-%d").ok()?;
    let midnight = day.and_hms_opt(0, 0, 0)?;
    let tz: chrono_tz::Tz = zone.parse().unwrap_or(chrono_tz::UTC);
    Some(
        tz.from_local_datetime(&midnight)
            .earliest()?
            .timestamp_millis(),
    )
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Query(filters): Query<MessageFilters>,
) -> Result<Response, ConsoleError> {
    let until_ms =
        start_of_day_ms(&filters.until, &session.timezone).map_or(0, |start| start + 86_400_000);
    let before_ms = match (filters.before.trim().parse::<i64>().ok(), until_ms) {
        (Some(before), 0) => before,
        (Some(before), until) => before.min(until),
        (None, until) => until,
    };
    let from_ms = start_of_day_ms(&filters.from, &session.timezone).unwrap_or(0);
    let rules = account_rules(&state, &session).await?;
    let names = rule_names(&rules);
    // Every filter goes to control, which applies it in the database.
    let messages = state
        .control(&session)?
        .list_messages(ListMessagesRequest {
            account: session.account.clone(),
            status: status_of_text(&filters.status) as i32,
            limit: SHOWN,
            before_ms,
            after_ms: from_ms,
            to: filters.to.trim().to_owned(),
            rule_id: filters.rule.trim().to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner()
        .messages;
    let shown: Vec<_> = messages
        .iter()
        .map(|message| message_view(message, &names))
        .collect();
    let older = messages
        .last()
        .filter(|_| messages.len() == SHOWN as usize)
        .map(|last| filters.older_page(last.created_at_ms));
    let statuses: Vec<&str> = STATUSES
        .iter()
        .map(|status| status_text(*status as i32))
        .collect();
    let sources = source_names(&state, &session).await?;
    let rule_choices: Vec<_> = rules
        .iter()
        .map(|rule| {
            let source = sources
                .get(rule.source_id.as_str())
                .map_or("?", String::as_str);
            json!({"id": rule.id, "label": format!("{source} › {}", rule.name)})
        })
        .collect();
    state.page(
        &frame,
        &session,
        "messages.html",
        frame.text("messages_title"),
        "messages",
        context! {
            messages => crate::render::value(&shown),
            filters => crate::render::value(&filters),
            statuses,
            older,
            rules => crate::render::value(&rule_choices),
        },
    )
}

/// Source id → source name.
async fn source_names(
    state: &AppState,
    session: &Session,
) -> Result<HashMap<String, String>, ConsoleError> {
    Ok(state
        .control(session)?
        .list_sources(ListSourcesRequest {
            account: session.account.clone(),
        })
        .await?
        .into_inner()
        .sources
        .into_iter()
        .map(|source| (source.id, source.name))
        .collect())
}

/// The messages an event produced.
async fn messages_of_event(
    state: &AppState,
    session: &Session,
    event_id: &str,
) -> Result<Vec<Message>, ConsoleError> {
    Ok(state
        .control(session)?
        .list_messages(ListMessagesRequest {
            account: session.account.clone(),
            event_id: event_id.to_owned(),
            limit: LIST_LIMIT,
            ..Default::default()
        })
        .await?
        .into_inner()
        .messages)
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(job_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let story = state
        .delivery(&session)?
        .get_message(GetMessageRequest {
            account: session.account.clone(),
            message_id: job_id,
        })
        .await?
        .into_inner();
    let mut timeline = Vec::new();
    if story.origin == "api" {
        timeline.push(json!({"at_ms": story.created_at_ms, "kind": "created", "title": frame.text("step_created"), "detail": frame.text("sent_through_api")}));
    } else {
        let first_decision = story
            .decisions
            .iter()
            .map(|report| report.created_at_ms)
            .min();
        let received = first_decision.map_or(story.created_at_ms, |at| at.min(story.created_at_ms));
        timeline.push(json!({"at_ms": received, "kind": "event", "title": frame.text("step_event"), "detail": story.event_id}));
        for report in &story.decisions {
            let title = format!("{}: {}", story.rule_name, report_text(&frame, &report.kind));
            timeline.push(json!({"at_ms": report.created_at_ms, "kind": report.kind, "title": title, "detail": report.detail}));
        }
        timeline.push(json!({"at_ms": story.created_at_ms, "kind": "created", "title": frame.text("step_created"), "detail": story.rule_name}));
    }
    let sent = story.message.clone().unwrap_or_default();
    for attempt in &sent.history {
        let title = if attempt.provider.is_empty() {
            attempt.outcome.clone()
        } else {
            format!("{} · {}", attempt.outcome, attempt.provider)
        };
        timeline.push(json!({"at_ms": attempt.at_ms, "kind": attempt.outcome, "title": title, "detail": attempt.detail}));
    }
    timeline.sort_by_key(|step| step["at_ms"].as_i64().unwrap_or(0));
    let history_view = json!({
        "job_id": story.message_id, "to": story.to, "status": story.status,
        "provider": sent.provider, "segments": sent.segments, "price": sent.price,
        "price_currency": sent.price_currency, "error": sent.error,
    });
    let message_view = json!({
        "body": story.body, "rule": story.rule_name, "event_id": story.event_id,
    });
    state.page(
        &frame,
        &session,
        "message.html",
        frame.text("message"),
        "messages",
        context! {
            history => crate::render::value(&history_view),
            message => crate::render::value(&message_view),
            timeline => crate::render::value(&timeline),
        },
    )
}

fn report_text(frame: &Frame, kind: &str) -> String {
    match frame.text(&format!("report_{kind}")) {
        "" => kind.to_owned(),
        text => text.to_owned(),
    }
}

/// An event's decision trace: each rule's report and the messages it made.
pub async fn event(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
    Path(event_id): Path<String>,
) -> Result<Response, ConsoleError> {
    let reports = state
        .scheduling(&session)?
        .list_event_reports(ListEventReportsRequest {
            account: session.account.clone(),
            event_id: event_id.clone(),
            limit: 100,
        })
        .await?
        .into_inner()
        .reports;
    let messages = messages_of_event(&state, &session, &event_id).await?;
    if reports.is_empty() && messages.is_empty() {
        return Err(ConsoleError::NotFound);
    }
    let rules = account_rules(&state, &session).await?;
    let names = rule_names(&rules);
    let report_views: Vec<_> = reports
        .iter()
        .map(|report| {
            json!({"rule_name": report.rule_name, "kind": report.kind, "detail": report.detail,
                   "created_at_ms": report.created_at_ms})
        })
        .collect();
    let message_views: Vec<_> = messages
        .iter()
        .map(|message| message_view(message, &names))
        .collect();
    state.page(
        &frame,
        &session,
        "event.html",
        frame.text("event"),
        "sources",
        context! {
            event_id,
            reports => crate::render::value(&report_views),
            messages => crate::render::value(&message_views),
        },
    )
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    Path(job_id): Path<String>,
) -> Result<Response, ConsoleError> {
    state
        .delivery(&session)?
        .cancel_message(CancelMessageRequest {
            account: session.account.clone(),
            job_id: job_id.clone(),
        })
        .await?;
    Ok(Redirect::to(&format!(
        "/messages/{}?done=message_cancelled",
        path_segment(&job_id)
    ))
    .into_response())
}
