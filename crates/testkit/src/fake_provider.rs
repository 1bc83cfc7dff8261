//! A fake SMS provider: an HTTP server on loopback that records every request and
//! answers from a script (errors, 429 with Retry-After, slow answers), else 200.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// When the request arrived, for tests that check retry timing.
    pub received_at: std::time::Instant,
}

impl RecordedRequest {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// Form-encoded body as (name, value) pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        url_decode_pairs(&self.body)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

fn url_decode_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct FakeResponse {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
    pub delay: Duration,
}

impl FakeResponse {
    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            body: body.into(),
            headers: Vec::new(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<RecordedRequest>,
    script: VecDeque<FakeResponse>,
    default: Option<FakeResponse>,
}

#[derive(Clone)]
pub struct FakeProvider {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
}

impl FakeProvider {
    /// Starts on 127.0.0.1 with an OS-chosen port. By default every request gets
    /// `200 {"id": "fake-<n>", "status": "queued"}` (and a Twilio-shaped `sid`).
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake provider");
        let addr = listener.local_addr().expect("fake provider address");
        let router = Router::new().fallback(record).with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { addr, inner }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next requests are answered with these, in order.
    pub fn push_responses(&self, responses: impl IntoIterator<Item = FakeResponse>) {
        self.lock().script.extend(responses);
    }

    /// Answer every request not covered by the script with this.
    pub fn set_default(&self, response: FakeResponse) {
        self.lock().default = Some(response);
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    /// Waits until at least `count` requests arrived and returns them all.
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        crate::wait_for(&format!("{count} provider requests"), timeout, || async {
            let requests = self.requests();
            (requests.len() >= count).then_some(requests)
        })
        .await
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn record(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
            .collect(),
        body,
        received_at: std::time::Instant::now(),
    };
    let (scripted, number) = {
        let mut guard = inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        guard.requests.push(request);
        let number = guard.requests.len();
        let scripted = guard.script.pop_front().or_else(|| guard.default.clone());
        (scripted, number)
    };
    let response = scripted.unwrap_or_else(|| {
        FakeResponse::status(
            200,
            format!(r#"{{"id":"fake-{number}","sid":"SMfake{number}","status":"queued"}}"#),
        )
        .with_header("content-type", "application/json")
    });
    if !response.delay.is_zero() {
        tokio::time::sleep(response.delay).await;
    }
    let mut answer = (
        StatusCode::from_u16(response.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        response.body,
    )
        .into_response();
    for (name, value) in response.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            answer.headers_mut().insert(name, value);
        }
    }
    answer
}
