//! The bare pipe: the least a webhook-to-SMS pipe can do with the same parts, for
//! the ceiling Foco is compared with. An axum handler publishes each webhook's
//! body to JetStream with its event id as `Nats-Msg-Id` and answers 202 after the
//! ack; a pull consumer reads the two fields the SMS needs, makes the same HTTP
//! call the `http` provider makes to the same fake provider, and acks. No
//! signature check, no Postgres, no rules, one stream instead of two.
//!
//! The stream is made by `foco_bus::ensure_streams` under the pipe's own prefix,
//! so it is stored exactly as FOCO_EVENTS is; the consumer takes as many messages
//! at a time as the sender does by default.
//!
//! Environment: `NATS_URL`, `FOCO_BUS_PREFIX`, `FOCO_BARE_PROVIDER_URL`
//! (required), `FOCO_BARE_CONCURRENCY` [256]. Prints `http://<addr>` on stdout once
//! it takes webhooks (at `POST /hooks`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use foco_bus::{BusNames, ConsumerSettings};
use futures::StreamExt as _;

use crate::sms::order_text;

const MAX_ACK_PENDING: i64 = 10_000;
/// Where the bare and floor pipes call the provider.
pub const PROVIDER_URL_ENV: &str = "FOCO_BARE_PROVIDER_URL";
const EVENT_ID_HEADER: &str = "x-shopify-event-id";

/// Where webhooks are stored: the stream's subject on one connection.
#[derive(Clone)]
pub(crate) struct Ingest {
    pub jetstream: jetstream::Context,
    pub nats: async_nats::Client,
    pub subject: Arc<str>,
}

impl Ingest {
    /// Stores the webhook under its event id; 202 once JetStream acked it.
    pub async fn store(&self, headers: &HeaderMap, body: Bytes) -> StatusCode {
        let Some(id) = headers
            .get(EVENT_ID_HEADER)
            .and_then(|value| value.to_str().ok())
        else {
            return StatusCode::BAD_REQUEST;
        };
        match foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.subject.to_string(),
            id,
            body,
            Duration::from_secs(5),
        )
        .await
        {
            Ok(_) => StatusCode::ACCEPTED,
            Err(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

async fn publish(State(ingest): State<Ingest>, headers: HeaderMap, body: Bytes) -> StatusCode {
    ingest.store(&headers, body).await
}

/// The webhook fields the SMS needs.
#[derive(serde::Deserialize)]
pub(crate) struct Order<'a> {
    #[serde(borrow)]
    pub order: Cow<'a, str>,
    pub sent_at_us: u64,
}

/// What the `http` provider posts without a body template.
#[derive(serde::Serialize)]
pub(crate) struct ProviderRequest<'a> {
    pub job_id: &'a str,
    pub to: &'a str,
    pub from: &'a str,
    pub body: &'a str,
    pub account_id: &'a str,
    pub event_id: &'a str,
}

/// The number every SMS of the bare and floor pipes goes to.
pub(crate) const RECIPIENT: &str = "+525512345678";

/// Calls the provider for one message; `true` when it answered 2xx.
async fn deliver(client: &reqwest::Client, provider_url: &str, payload: &[u8]) -> bool {
    let Ok(order) = serde_json::from_slice::<Order<'_>>(payload) else {
        return false;
    };
    let job_id = format!("bare-{}", order.order);
    let text = order_text(&order.order, order.sent_at_us);
    let request = ProviderRequest {
        job_id: &job_id,
        to: RECIPIENT,
        from: "",
        body: &text,
        account_id: "bare",
        event_id: &order.order,
    };
    call_provider(client, provider_url, &request).await
}

/// Makes the call the `http` provider makes; `true` when it answered 2xx.
pub(crate) async fn call_provider(
    client: &reqwest::Client,
    provider_url: &str,
    request: &ProviderRequest<'_>,
) -> bool {
    let Ok(body) = serde_json::to_vec(request) else {
        return false;
    };
    let response = client
        .post(provider_url)
        .header("content-type", "application/json")
        .header("idempotency-key", request.job_id)
        .body(body)
        .send()
        .await;
    match response {
        Ok(response) => {
            let ok = response.status().is_success();
            let _ = response.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// The HTTP client both pipes call the provider with.
pub(crate) fn provider_client() -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(15))
        .build()
}

/// Runs the pipe until the process is killed.
pub async fn run() -> anyhow::Result<()> {
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let prefix = std::env::var("FOCO_BUS_PREFIX").unwrap_or_default();
    let provider_url: Arc<str> = std::env::var(PROVIDER_URL_ENV)
        .with_context(|| format!("{PROVIDER_URL_ENV} is required"))?
        .into();
    let concurrency: usize = std::env::var("FOCO_BARE_CONCURRENCY")
        .ok()
        .map(|value| value.parse())
        .transpose()
        .context("FOCO_BARE_CONCURRENCY")?
        .unwrap_or(256);

    let names = BusNames::new(&prefix)?;
    let nats = async_nats::connect(&nats_url)
        .await
        .with_context(|| format!("connect to NATS at {nats_url}"))?;
    let jetstream = jetstream::new(nats.clone());
    foco_bus::ensure_streams(&jetstream, &names, foco_bus::StreamSettings::default()).await?;
    let consumer = foco_bus::ensure_consumer(
        &jetstream,
        &ConsumerSettings {
            stream: names.events_stream(),
            durable_name: "bare-pipe".to_owned(),
            filter_subject: names.events_filter(),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: MAX_ACK_PENDING,
            max_deliver: 10,
        },
    )
    .await?;

    let client = provider_client()?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(concurrency)
        .messages()
        .await?;
    let consume = tokio::spawn(async move {
        loop {
            let Ok(permit) = semaphore.clone().acquire_owned().await else {
                return;
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    let (client, provider_url) = (client.clone(), provider_url.clone());
                    tokio::spawn(async move {
                        let _permit = permit;
                        let kind = if deliver(&client, &provider_url, &message.payload).await {
                            AckKind::Ack
                        } else {
                            AckKind::Nak(Some(Duration::from_secs(1)))
                        };
                        if let Err(error) = message.ack_with(kind).await {
                            eprintln!("bare pipe: acknowledging failed: {error}");
                        }
                    });
                }
                Some(Err(error)) => {
                    eprintln!("bare pipe: pulling failed: {error}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                None => return,
            }
        }
    });

    let ingest = Ingest {
        jetstream,
        nats,
        subject: names.events_subject("bare", "bench").into(),
    };
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(publish))
        .with_state(ingest);
    serve(router, async {
        let _ = consume.await;
        anyhow::anyhow!("the bare pipe's message stream ended")
    })
    .await
}

/// Serves `router` on a loopback port, printing `http://<addr>` once it takes
/// requests, until it fails or `consumers` end (with the error they give).
pub(crate) async fn serve(
    router: axum::Router,
    consumers: impl std::future::Future<Output = anyhow::Error>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("http://{}", listener.local_addr()?);
    tokio::select! {
        served = axum::serve(listener, router) => Ok(served?),
        ended = consumers => Err(ended),
    }
}
