//! The overview: messages per day for the last 30 days in the account's time
//! zone, by outcome, as a bar chart drawn on the server (SVG, no script).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use chrono::{Duration as Days, TimeZone as _, Utc};
use foco_proto::v1::ListMessagesRequest;
use minijinja::context;
use serde_json::json;

use crate::error::ConsoleError;
use crate::render::Frame;
use crate::routes::messages::status_text;
use crate::session::Session;
use crate::state::AppState;

const DAYS: i64 = 30;
/// Messages read for the chart (control's page maximum): the chart says so
/// when a busy account has more.
const LIMIT: u32 = 1000;
const CHART_HEIGHT: f64 = 160.0;
const BAR_WIDTH: f64 = 18.0;
const BAR_GAP: f64 = 6.0;

/// The outcome a status counts as on the chart.
fn outcome(status: &str) -> &'static str {
    match status {
        "sent" | "delivered" => "delivered",
        "failed" | "undelivered" | "unknown" => "failed",
        "cancelled" | "opted-out" | "expired" => "stopped",
        _ => "pending",
    }
}

const OUTCOMES: [&str; 4] = ["delivered", "pending", "stopped", "failed"];

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    frame: Frame,
) -> Result<Response, ConsoleError> {
    let messages = state
        .control(&session)?
        .list_messages(ListMessagesRequest {
            account: session.account.clone(),
            limit: LIMIT,
            ..Default::default()
        })
        .await?
        .into_inner()
        .messages;
    let tz: chrono_tz::Tz = session.timezone.parse().unwrap_or(chrono_tz::UTC);
    let today = Utc::now().with_timezone(&tz).date_naive();
    let first_day = today - Days::days(DAYS - 1);
    let mut per_day: BTreeMap<chrono::NaiveDate, BTreeMap<&str, u32>> = (0..DAYS)
        .map(|offset| (first_day + Days::days(offset), BTreeMap::new()))
        .collect();
    for message in &messages {
        let Some(created) = tz.timestamp_millis_opt(message.created_at_ms).single() else {
            continue;
        };
        if let Some(counts) = per_day.get_mut(&created.date_naive()) {
            *counts
                .entry(outcome(status_text(message.status)))
                .or_default() += 1;
        }
    }
    let busiest = per_day
        .values()
        .map(|counts| counts.values().sum::<u32>())
        .max()
        .unwrap_or(0)
        .max(1);
    let scale = CHART_HEIGHT / f64::from(busiest);
    let mut bars = Vec::new();
    let mut totals: BTreeMap<&str, u32> = BTreeMap::new();
    for (index, (day, counts)) in per_day.iter().enumerate() {
        let x = index as f64 * (BAR_WIDTH + BAR_GAP);
        let mut top = CHART_HEIGHT;
        let mut parts = Vec::new();
        for name in OUTCOMES {
            let count = counts.get(name).copied().unwrap_or(0);
            *totals.entry(name).or_default() += count;
            if count == 0 {
                continue;
            }
            let height = f64::from(count) * scale;
            top -= height;
            parts.push(json!({"outcome": name, "count": count, "y": top, "height": height}));
        }
        bars.push(json!({
            "x": x, "day": day.format("%Y-%m-%d").to_string(),
            "label": day.format("%d").to_string(), "parts": parts,
            "total": counts.values().sum::<u32>(),
        }));
    }
    let legend: Vec<_> = OUTCOMES
        .iter()
        .map(|name| json!({"outcome": name, "total": totals.get(name).copied().unwrap_or(0)}))
        .collect();
    let width = DAYS as f64 * (BAR_WIDTH + BAR_GAP);
    state.page(
        &frame,
        &session,
        "overview.html",
        frame.text("overview_title"),
        "overview",
        context! {
            bars => crate::render::value(&bars),
            legend => crate::render::value(&legend),
            width, height => CHART_HEIGHT, bar_width => BAR_WIDTH, busiest,
            truncated => messages.len() >= LIMIT as usize,
        },
    )
}
