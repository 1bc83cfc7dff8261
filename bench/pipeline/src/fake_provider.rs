//! The fake SMS provider: answers the `http` provider's POST at once (`200
//! {"id": <job id>}`) and records, per SMS, which webhook it came from and when
//! it arrived. Runs as its own process (`foco-bench-pipeline fake-provider`) so
//! that its CPU is counted apart; the orchestrator reads what it recorded over
//! HTTP.
//!
//! Requests: `POST /sms` (the provider call), `GET /count/<tag>` (`<distinct>
//! <duplicates> <unreadable>`, cheap enough to poll) and `GET /records/<tag>`
//! (every SMS of a phase, 24 bytes each: sequence, arrival and timestamp, all
//! little-endian u64).

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::sms::parse_sms;

/// One SMS as the fake provider saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    pub sequence: u64,
    pub arrived_us: u64,
    pub stamp_us: u64,
}

const ARRIVAL_BYTES: usize = 24;

#[derive(Default)]
struct Phase {
    arrivals: Vec<Arrival>,
    seen: HashSet<u64>,
    duplicates: u64,
}

#[derive(Default)]
struct Recorded {
    phases: HashMap<String, Phase>,
    unreadable: u64,
}

type Shared = Arc<Mutex<Recorded>>;

/// The body the `http` provider posts when its route has no `body_template`.
#[derive(serde::Deserialize)]
struct ProviderRequest<'a> {
    #[serde(borrow)]
    job_id: Cow<'a, str>,
    #[serde(borrow)]
    body: Cow<'a, str>,
}

/// Serves until the process is killed. Prints `http://<addr>` on stdout once
/// listening, and nothing else there.
pub async fn serve() -> anyhow::Result<()> {
    let recorded: Shared = Arc::default();
    let router = Router::new()
        .route("/sms", axum::routing::post(send_sms))
        .route("/count/{tag}", axum::routing::get(count))
        .route("/records/{tag}", axum::routing::get(records))
        .with_state(recorded);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("bind the fake provider")?;
    println!("http://{}", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}

fn lock(recorded: &Shared) -> std::sync::MutexGuard<'_, Recorded> {
    recorded
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn send_sms(State(recorded): State<Shared>, body: Bytes) -> Response {
    let arrived_us = crate::unix_micros();
    let Ok(request) = serde_json::from_slice::<ProviderRequest<'_>>(&body) else {
        lock(&recorded).unreadable += 1;
        return (StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    {
        let mut guard = lock(&recorded);
        match parse_sms(&request.body) {
            Some(mark) => {
                let phase = guard.phases.entry(mark.tag.to_owned()).or_default();
                if !phase.seen.insert(mark.sequence) {
                    phase.duplicates += 1;
                }
                phase.arrivals.push(Arrival {
                    sequence: mark.sequence,
                    arrived_us,
                    stamp_us: mark.stamp_us,
                });
            }
            None => guard.unreadable += 1,
        }
    }
    let answer =
        serde_json::json!({ "id": format!("fake-{}", request.job_id), "status": "queued" });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        answer.to_string(),
    )
        .into_response()
}

async fn count(State(recorded): State<Shared>, Path(tag): Path<String>) -> String {
    let guard = lock(&recorded);
    let (distinct, duplicates) = guard
        .phases
        .get(&tag)
        .map_or((0, 0), |phase| (phase.seen.len(), phase.duplicates));
    format!("{distinct} {duplicates} {}", guard.unreadable)
}

async fn records(State(recorded): State<Shared>, Path(tag): Path<String>) -> Vec<u8> {
    let guard = lock(&recorded);
    let Some(phase) = guard.phases.get(&tag) else {
        return Vec::new();
    };
    let mut bytes = Vec::with_capacity(phase.arrivals.len() * ARRIVAL_BYTES);
    for arrival in &phase.arrivals {
        bytes.extend_from_slice(&arrival.sequence.to_le_bytes());
        bytes.extend_from_slice(&arrival.arrived_us.to_le_bytes());
        bytes.extend_from_slice(&arrival.stamp_us.to_le_bytes());
    }
    bytes
}

/// What `/count/<tag>` answers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count {
    pub distinct: u64,
    pub duplicates: u64,
    /// Over all phases: provider calls whose body the fake could not read.
    pub unreadable: u64,
}

/// The orchestrator's side.
#[derive(Clone)]
pub struct FakeProviderClient {
    pub url: String,
    client: reqwest::Client,
}

impl FakeProviderClient {
    pub fn new(url: String, client: reqwest::Client) -> Self {
        Self { url, client }
    }

    /// Where routes point the `http` provider.
    pub fn sms_url(&self) -> String {
        format!("{}/sms", self.url)
    }

    pub async fn count(&self, tag: &str) -> anyhow::Result<Count> {
        let text = self
            .client
            .get(format!("{}/count/{tag}", self.url))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let numbers: Vec<u64> = text
            .split_whitespace()
            .filter_map(|number| number.parse().ok())
            .collect();
        let [distinct, duplicates, unreadable] = numbers[..] else {
            anyhow::bail!("fake provider answered {text:?} to a count");
        };
        Ok(Count {
            distinct,
            duplicates,
            unreadable,
        })
    }

    pub async fn arrivals(&self, tag: &str) -> anyhow::Result<Vec<Arrival>> {
        let bytes = self
            .client
            .get(format!("{}/records/{tag}", self.url))
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        Ok(decode(&bytes))
    }
}

fn decode(bytes: &[u8]) -> Vec<Arrival> {
    let number = |chunk: &[u8]| u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
    bytes
        .chunks_exact(ARRIVAL_BYTES)
        .map(|chunk| Arrival {
            sequence: number(&chunk[0..8]),
            arrived_us: number(&chunk[8..16]),
            stamp_us: number(&chunk[16..24]),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrivals_round_trip_through_bytes() {
        let arrival = Arrival {
            sequence: 7,
            arrived_us: 1_700_000_000_000_123,
            stamp_us: 1_700_000_000_000_001,
        };
        let mut bytes = Vec::new();
        for value in [arrival.sequence, arrival.arrived_us, arrival.stamp_us] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        assert_eq!(decode(&bytes), vec![arrival]);
    }
}
