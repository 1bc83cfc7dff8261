//! The fake SMS provider of the suite, in this process: answers the `http`
//! provider's POST as the current [`Behaviour`] says and records, per webhook of
//! a phase, how many times its SMS was accepted (answered 2xx), when the first
//! copy arrived and the timestamp the webhook carried; and every 429 it gave, to
//! check that nothing was sent for the same account before its `Retry-After`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use foco_bench_pipeline::sms::parse_sms;
use foco_bench_pipeline::unix_micros;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a message id.
    Accept,
    /// 503: the provider is down.
    Unavailable,
    /// 429 with `Retry-After: <seconds>`.
    Throttle { retry_after_secs: u64 },
}

/// What one phase's SMS looked like at the provider.
#[derive(Debug, Default, Clone)]
pub struct PhaseRecord {
    /// Sequence → (accepted copies, first arrival µs, the webhook's timestamp µs).
    pub delivered: HashMap<u64, (u32, u64, u64)>,
    /// Calls answered other than 2xx.
    pub refused_calls: u64,
}

#[derive(Default)]
struct Recorded {
    behaviour: Option<Behaviour>,
    /// How long each answer takes (a provider's usual latency, so that a
    /// stopping sender has calls in flight).
    latency: Duration,
    phases: HashMap<String, PhaseRecord>,
    /// Every call, and every call answered 429 with its Retry-After (µs).
    calls: Vec<Call>,
    throttles: Vec<(Call, u64)>,
    unreadable: u64,
}

/// When a call arrived (Unix µs), and the job and account it was for.
#[derive(Debug, Clone)]
pub struct Call {
    pub at_us: u64,
    pub job_id: String,
    pub account_id: String,
}

/// A call that came before the Retry-After of a 429 given earlier.
#[derive(Debug, Clone)]
pub struct EarlyCall {
    pub call: Call,
    /// The call that was answered 429.
    pub throttled: Call,
}

impl std::fmt::Display for EarlyCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "account {}: job {} {} ms after job {} was answered 429",
            self.call.account_id,
            self.call.job_id,
            self.call.at_us.saturating_sub(self.throttled.at_us) / 1_000,
            self.throttled.job_id
        )
    }
}

#[derive(Clone)]
pub struct FakeProvider {
    url: String,
    recorded: Arc<Mutex<Recorded>>,
}

#[derive(serde::Deserialize)]
struct ProviderRequest {
    job_id: String,
    account_id: String,
    body: String,
}

impl FakeProvider {
    pub async fn start() -> anyhow::Result<Self> {
        let recorded: Arc<Mutex<Recorded>> = Arc::default();
        let router = Router::new()
            .route("/sms", axum::routing::post(send_sms))
            .with_state(recorded.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("bind the fake provider")?;
        let url = format!("http://{}/sms", listener.local_addr()?);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Self { url, recorded })
    }

    /// What the accounts' `http` route posts to.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.lock().behaviour = Some(behaviour);
    }

    /// Every answer from now on comes `latency` after its call.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn phase(&self, tag: &str) -> PhaseRecord {
        self.lock().phases.get(tag).cloned().unwrap_or_default()
    }

    pub fn unreadable(&self) -> u64 {
        self.lock().unreadable
    }

    /// Calls that arrived more than `grace` after a 429 given to the same
    /// account and before its `Retry-After` was over (calls already on their
    /// way when the 429 was given arrive within `grace`). A 429 is the answer
    /// to one account's credentials: Foco pauses that account's route, and
    /// other accounts' routes to the same provider go on.
    pub fn calls_before_retry_after(&self, grace: Duration) -> Vec<EarlyCall> {
        let recorded = self.lock();
        let grace_us = u64::try_from(grace.as_micros()).unwrap_or(u64::MAX);
        // Each account's throttles, in arrival order; for a call, the latest
        // 429 given more than `grace` before it has the pause that ends last
        // (every 429 of a run says the same Retry-After).
        let mut throttles: HashMap<&str, Vec<&(Call, u64)>> = HashMap::new();
        for throttle in &recorded.throttles {
            throttles
                .entry(throttle.0.account_id.as_str())
                .or_default()
                .push(throttle);
        }
        recorded
            .calls
            .iter()
            .filter_map(|call| {
                let account = throttles.get(call.account_id.as_str())?;
                let before = account
                    .partition_point(|(throttled, _)| throttled.at_us + grace_us < call.at_us);
                let (throttled, retry_after_us) = account.get(before.checked_sub(1)?)?;
                (call.at_us < throttled.at_us + retry_after_us).then(|| EarlyCall {
                    call: call.clone(),
                    throttled: throttled.clone(),
                })
            })
            .collect()
    }

    /// Forgets the calls and 429s seen so far: each phase checks its own.
    pub fn forget_calls(&self) {
        let mut recorded = self.lock();
        recorded.calls.clear();
        recorded.throttles.clear();
    }

    pub fn throttles_given(&self) -> usize {
        self.lock().throttles.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn send_sms(State(recorded): State<Arc<Mutex<Recorded>>>, body: Bytes) -> Response {
    let arrived_us = unix_micros();
    let latency = recorded
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut guard = recorded.lock().unwrap_or_else(PoisonError::into_inner);
    let Ok(request) = serde_json::from_slice::<ProviderRequest>(&body) else {
        guard.unreadable += 1;
        guard.calls.push(Call {
            at_us: arrived_us,
            job_id: "(unreadable)".to_owned(),
            account_id: String::new(),
        });
        return (StatusCode::BAD_REQUEST, "unreadable request").into_response();
    };
    let call = Call {
        at_us: arrived_us,
        job_id: request.job_id.clone(),
        account_id: request.account_id.clone(),
    };
    guard.calls.push(call.clone());
    let Some(mark) = parse_sms(&request.body) else {
        guard.unreadable += 1;
        return (StatusCode::BAD_REQUEST, "unreadable SMS").into_response();
    };
    let behaviour = guard.behaviour.unwrap_or(Behaviour::Accept);
    if let Behaviour::Throttle { retry_after_secs } = behaviour {
        guard.throttles.push((call, retry_after_secs * 1_000_000));
    }
    let phase = guard.phases.entry(mark.tag.to_owned()).or_default();
    match behaviour {
        Behaviour::Accept => {
            let entry =
                phase
                    .delivered
                    .entry(mark.sequence)
                    .or_insert((0, arrived_us, mark.stamp_us));
            entry.0 += 1;
            let answer = serde_json::json!({ "id": format!("fake-{}", request.job_id) });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                answer.to_string(),
            )
                .into_response()
        }
        Behaviour::Unavailable => {
            phase.refused_calls += 1;
            (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance").into_response()
        }
        Behaviour::Throttle { retry_after_secs } => {
            phase.refused_calls += 1;
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "slow down",
            )
                .into_response()
        }
    }
}
