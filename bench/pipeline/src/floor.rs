//! The floor pipe: the least a pipe can do that keeps the promises Foco keeps,
//! with the same parts, to tell what of Foco's cost its promises take and what
//! its own code adds.
//!
//! Beyond the bare pipe it does what the contract asks of every webhook and SMS,
//! and nothing else:
//! - the webhook's HMAC-SHA256 signature is checked before it is stored, and it
//!   is answered 202 once JetStream stored it (as ingress does);
//! - a relay consumer (rules' share) records each event in Postgres (a batched
//!   insert whose commit does not wait for the disk, as rules records its
//!   events), publishes its job to a second stream and waits for the ack, then
//!   acks the event;
//! - a sender consumer claims each job in Postgres before the provider call (a
//!   batched insert committed durably: a job is never sent twice), makes the
//!   bare pipe's provider call, records the outcome (a batched update, durable),
//!   then acks the job.
//!
//! Batches are grouped the way Foco's are (`foco_runtime::batch`, the same
//! sizes and lingers), on connections kept by each writer. No rules, templates,
//! phone numbers, config lookups, limits, metrics or traces. Everything runs in
//! one process, as the bare pipe does; Foco runs it in four.
//!
//! Environment: `NATS_URL`, `FOCO_BUS_PREFIX`, `DATABASE_URL`,
//! `FOCO_BARE_PROVIDER_URL`, `FOCO_FLOOR_WEBHOOK_SECRET` (all required but
//! `NATS_URL` and `FOCO_BUS_PREFIX`). Prints `http://<addr>` on stdout once it
//! takes webhooks (at `POST /hooks`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, Message};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use foco_bus::{BusNames, ConsumerSettings, PullSettings};
use foco_proto::v1::SmsJob;
use foco_runtime::batch::{BatchSettings, Batcher, SMS_PATH_LINGER, WriterGone};
use foco_runtime::postgres::{FreshRowsFirst, InsertForm, KeptConnections};
use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use prost::Message as _;
use sha2::Sha256;
use tokio_util::sync::CancellationToken;

use crate::bare::{
    Ingest, Order, PROVIDER_URL_ENV, ProviderRequest, RECIPIENT, call_provider, provider_client,
    serve,
};
use crate::sms::order_text;

/// Foco's defaults: rules' and the sender's messages in flight (events, jobs),
/// their batches' largest sizes and flushes in flight, and the outcomes' linger.
const EVENT_CONCURRENCY: usize = 256;
const JOB_CONCURRENCY: usize = 1024;
const MAX_ACK_PENDING: i64 = 10_000;
const EVENT_BATCH: usize = 256;
const JOB_BATCH: usize = 512;
const FLUSHES_IN_FLIGHT: usize = 2;
const OUTCOME_LINGER: Duration = Duration::from_millis(5);
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_AFTER: Duration = Duration::from_secs(1);

const SIGNATURE_HEADER: &str = "x-shopify-hmac-sha256";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS floor_events (
    event_id text PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS floor_messages (
    job_id text PRIMARY KEY,
    event_id text NOT NULL,
    recipient text NOT NULL,
    body text NOT NULL,
    status text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);";

/// Each insert in two forms, as Foco's (`FreshRowsFirst`): plain first, with
/// `ON CONFLICT` after a batch met a stored row.
const RECORD_FRESH_EVENTS: &str =
    "INSERT INTO floor_events (event_id) SELECT * FROM UNNEST($1::text[])";
const RECORD_EVENTS: &str = "INSERT INTO floor_events (event_id) \
     SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING";
static EVENT_FORMS: FreshRowsFirst = FreshRowsFirst::new();

const CLAIM_FRESH_JOBS: &str = "INSERT INTO floor_messages (job_id, event_id, recipient, body, status) \
     SELECT *, 'sending' FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
     RETURNING job_id";
/// Takes each job not taken yet, and again one whose call failed.
const CLAIM_JOBS: &str = "INSERT INTO floor_messages (job_id, event_id, recipient, body, status) \
     SELECT *, 'sending' FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
     ON CONFLICT (job_id) DO UPDATE SET status = 'sending', updated_at = now() \
       WHERE floor_messages.status = 'failed' \
     RETURNING job_id";
static CLAIM_FORMS: FreshRowsFirst = FreshRowsFirst::new();

const RECORD_OUTCOMES: &str = "UPDATE floor_messages m SET status = u.status, updated_at = now() \
     FROM UNNEST($1::text[], $2::text[]) AS u(job_id, status) \
     WHERE m.job_id = u.job_id AND m.status = 'sending'";

/// A batched write that did not happen.
#[derive(Debug)]
struct WriteFailed(String);

impl std::fmt::Display for WriteFailed {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl std::error::Error for WriteFailed {}

impl From<WriterGone> for WriteFailed {
    fn from(gone: WriterGone) -> Self {
        Self(gone.to_string())
    }
}

/// One statement for a whole batch: the keys of the rows it returned.
type Statement<I> = for<'a> fn(
    &'a mut sqlx::PgConnection,
    &'a [I],
) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>>;

/// Runs `statement` for a whole batch on a kept connection and gives every item
/// its answer from the rows it returned (each item may take its row out of
/// them); a failed statement fails every item.
async fn write_batch<I, O>(
    connections: &KeptConnections,
    items: Vec<I>,
    statement: Statement<I>,
    answer: fn(&I, &mut HashSet<String>) -> O,
) -> Vec<Result<O, WriteFailed>> {
    let written = async {
        let mut connection = connections.acquire().await?;
        let rows = statement(&mut connection, &items).await?;
        connection.keep();
        Ok::<_, sqlx::Error>(rows)
    }
    .await;
    match written {
        Ok(rows) => {
            let mut rows: HashSet<String> = rows.into_iter().collect();
            items
                .iter()
                .map(|item| Ok(answer(item, &mut rows)))
                .collect()
        }
        Err(error) => items
            .iter()
            .map(|_| Err(WriteFailed(error.to_string())))
            .collect(),
    }
}

/// A batched writer of `statement` on connections of its own.
fn writer<I, O>(
    pool: &sqlx::PgPool,
    settings: BatchSettings,
    statement: Statement<I>,
    answer: fn(&I, &mut HashSet<String>) -> O,
) -> Batcher<I, O, WriteFailed>
where
    I: Send + Sync + 'static,
    O: Send + 'static,
{
    let connections = KeptConnections::new(pool.clone(), settings.flushes_in_flight);
    Batcher::spawn(
        settings,
        |_| {},
        move |items: Vec<I>| {
            let connections = connections.clone();
            async move { write_batch(&connections, items, statement, answer).await }
        },
    )
}

fn record_events<'a>(
    connection: &'a mut sqlx::PgConnection,
    ids: &'a [String],
) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
    Box::pin(async move {
        if EVENT_FORMS.next_form() == InsertForm::Plain {
            match sqlx::query(RECORD_FRESH_EVENTS)
                .bind(ids)
                .execute(&mut *connection)
                .await
            {
                Err(error) if EVENT_FORMS.met_stored_row(&error) => {}
                recorded => return recorded.map(|_| Vec::new()),
            }
        }
        sqlx::query(RECORD_EVENTS)
            .bind(ids)
            .execute(connection)
            .await
            .map(|_| Vec::new())
    })
}

fn claim_jobs<'a>(
    connection: &'a mut sqlx::PgConnection,
    jobs: &'a [SmsJob],
) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
    Box::pin(async move {
        // A statement may not take the same row twice: a job redelivered while
        // its first delivery waits here is claimed once.
        let mut seen = HashSet::new();
        let jobs: Vec<&SmsJob> = jobs
            .iter()
            .filter(|job| seen.insert(job.job_id.as_str()))
            .collect();
        let column = |field: fn(&SmsJob) -> &str| -> Vec<&str> {
            jobs.iter().map(|job| field(job)).collect()
        };
        let claim = |statement| {
            sqlx::query_scalar(statement)
                .bind(column(|job| &job.job_id))
                .bind(column(|job| &job.event_id))
                .bind(column(|job| &job.to))
                .bind(column(|job| &job.body))
        };
        if CLAIM_FORMS.next_form() == InsertForm::Plain {
            match claim(CLAIM_FRESH_JOBS).fetch_all(&mut *connection).await {
                Err(error) if CLAIM_FORMS.met_stored_row(&error) => {}
                claimed => return claimed,
            }
        }
        claim(CLAIM_JOBS).fetch_all(connection).await
    })
}

/// Whether the claim statement took `job` for this delivery: a job twice in one
/// batch was taken once, by its first delivery.
fn take_claim(job: &SmsJob, claimed: &mut HashSet<String>) -> bool {
    claimed.remove(&job.job_id)
}

fn record_outcomes<'a>(
    connection: &'a mut sqlx::PgConnection,
    outcomes: &'a [(String, &'static str)],
) -> BoxFuture<'a, Result<Vec<String>, sqlx::Error>> {
    Box::pin(async move {
        let (ids, statuses): (Vec<&str>, Vec<&str>) = outcomes
            .iter()
            .map(|(id, status)| (id.as_str(), *status))
            .unzip();
        sqlx::query(RECORD_OUTCOMES)
            .bind(ids)
            .bind(statuses)
            .execute(connection)
            .await
            .map(|_| Vec::new())
    })
}

/// The bare pipe's webhook handler behind a signature check.
#[derive(Clone)]
struct Signed {
    ingest: Ingest,
    secret: Arc<[u8]>,
}

fn signed(secret: &[u8], headers: &HeaderMap, body: &[u8]) -> bool {
    let Some(signature) = headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| base64::engine::general_purpose::STANDARD.decode(value).ok())
    else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

async fn take_webhook(
    State(signed_by): State<Signed>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    if !signed(&signed_by.secret, &headers, &body) {
        return StatusCode::UNAUTHORIZED;
    }
    signed_by.ingest.store(&headers, body).await
}

/// Rules' share: record the event, publish its job, ack the event.
struct Relay {
    jetstream: jetstream::Context,
    nats: async_nats::Client,
    subject: String,
    events: Batcher<String, (), WriteFailed>,
}

impl Relay {
    async fn relay(&self, message: &Message) -> anyhow::Result<()> {
        let order: Order<'_> = serde_json::from_slice(&message.payload)?;
        let event_id = message
            .headers
            .as_ref()
            .and_then(|headers| headers.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|id| id.as_str().to_owned())
            .context("an event without its id")?;
        self.events.submit(event_id.clone()).await?;
        let job = SmsJob {
            job_id: format!("floor-{}", order.order),
            event_id,
            to: RECIPIENT.to_owned(),
            body: order_text(&order.order, order.sent_at_us),
            ..SmsJob::default()
        };
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.subject.clone(),
            &job.job_id,
            job.encode_to_vec().into(),
            PUBLISH_TIMEOUT,
        )
        .await?;
        Ok(())
    }
}

impl foco_bus::Handle for Relay {
    async fn handle(&self, message: &Message) -> AckKind {
        match self.relay(message).await {
            Ok(()) => AckKind::Ack,
            Err(error) => {
                eprintln!("floor pipe: relaying an event failed: {error:#}");
                AckKind::Nak(Some(RETRY_AFTER))
            }
        }
    }
}

/// The sender's share: claim, call, record, ack.
struct Sender {
    client: reqwest::Client,
    provider_url: String,
    claims: Batcher<SmsJob, bool, WriteFailed>,
    outcomes: Batcher<(String, &'static str), (), WriteFailed>,
}

impl Sender {
    async fn send(&self, message: &Message) -> anyhow::Result<AckKind> {
        let job = SmsJob::decode(message.payload.clone())?;
        let job_id = job.job_id.clone();
        if !self.claims.submit(job.clone()).await? {
            // Sent, or being sent, already.
            return Ok(AckKind::Ack);
        }
        let request = ProviderRequest {
            job_id: &job.job_id,
            to: &job.to,
            from: "",
            body: &job.body,
            account_id: "floor",
            event_id: &job.event_id,
        };
        let sent = call_provider(&self.client, &self.provider_url, &request).await;
        let status = if sent { "sent" } else { "failed" };
        self.outcomes.submit((job_id, status)).await?;
        Ok(if sent {
            AckKind::Ack
        } else {
            AckKind::Nak(Some(RETRY_AFTER))
        })
    }
}

impl foco_bus::Handle for Sender {
    async fn handle(&self, message: &Message) -> AckKind {
        self.send(message).await.unwrap_or_else(|error| {
            eprintln!("floor pipe: sending a job failed: {error:#}");
            AckKind::Nak(Some(RETRY_AFTER))
        })
    }
}

fn required(name: &str) -> anyhow::Result<String> {
    std::env::var(name).with_context(|| format!("{name} is required"))
}

async fn consumer(
    jetstream: &jetstream::Context,
    stream: String,
    durable_name: &str,
    filter_subject: String,
) -> anyhow::Result<jetstream::consumer::PullConsumer> {
    Ok(foco_bus::ensure_consumer(
        jetstream,
        &ConsumerSettings {
            stream,
            durable_name: durable_name.to_owned(),
            filter_subject,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: MAX_ACK_PENDING,
            max_deliver: 10,
        },
    )
    .await?)
}

fn pull_settings(what: &'static str, concurrency: usize) -> PullSettings {
    PullSettings {
        what,
        concurrency,
        shutdown_grace: Duration::from_secs(1),
        keep_alive: None,
    }
}

/// Runs the pipe until the process is killed.
pub async fn run() -> anyhow::Result<()> {
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
    let prefix = std::env::var("FOCO_BUS_PREFIX").unwrap_or_default();
    let database_url = required("DATABASE_URL")?;
    let provider_url = required(PROVIDER_URL_ENV)?;
    let secret: Arc<[u8]> = required("FOCO_FLOOR_WEBHOOK_SECRET")?.into_bytes().into();

    let durable = foco_runtime::postgres::connect(&database_url, 4).await?;
    let lazy = foco_runtime::postgres::connect_without_commit_wait(&database_url, 2).await?;
    sqlx::raw_sql(SCHEMA).execute(&durable).await?;

    let names = BusNames::new(&prefix)?;
    let nats = async_nats::connect(&nats_url)
        .await
        .with_context(|| format!("connect to NATS at {nats_url}"))?;
    let jetstream = jetstream::new(nats.clone());
    foco_bus::ensure_streams(&jetstream, &names, foco_bus::StreamSettings::default()).await?;
    let events = consumer(
        &jetstream,
        names.events_stream(),
        "floor-relay",
        names.events_filter(),
    )
    .await?;
    let jobs = consumer(
        &jetstream,
        names.sms_stream(),
        "floor-sender",
        names.sms_filter(),
    )
    .await?;

    let relay = Relay {
        jetstream: jetstream.clone(),
        nats: nats.clone(),
        subject: names.sms_subject("floor"),
        events: writer(
            &lazy,
            BatchSettings {
                linger: SMS_PATH_LINGER,
                ..BatchSettings::natural(EVENT_BATCH, FLUSHES_IN_FLIGHT)
            },
            record_events,
            |_, _| (),
        ),
    };
    let send = Sender {
        client: provider_client()?,
        provider_url,
        claims: writer(
            &durable,
            BatchSettings {
                linger: SMS_PATH_LINGER,
                ..BatchSettings::natural(JOB_BATCH, FLUSHES_IN_FLIGHT)
            },
            claim_jobs,
            take_claim,
        ),
        outcomes: writer(
            &durable,
            BatchSettings {
                linger: OUTCOME_LINGER,
                ..BatchSettings::natural(JOB_BATCH, FLUSHES_IN_FLIGHT)
            },
            record_outcomes,
            |_, _| (),
        ),
    };

    let shutdown = CancellationToken::new();
    let relaying = tokio::spawn(foco_bus::pull::run(
        events,
        Arc::new(relay),
        pull_settings("floor events", EVENT_CONCURRENCY),
        shutdown.clone(),
    ));
    let sending = tokio::spawn(foco_bus::pull::run(
        jobs,
        Arc::new(send),
        pull_settings("floor jobs", JOB_CONCURRENCY),
        shutdown.clone(),
    ));
    let signed_by = Signed {
        ingest: Ingest {
            jetstream,
            nats,
            subject: names.events_subject("floor", "bench").into(),
        },
        secret,
    };
    let router = axum::Router::new()
        .route("/hooks", axum::routing::post(take_webhook))
        .with_state(signed_by);
    serve(router, async {
        tokio::select! {
            _ = relaying => anyhow::anyhow!("the floor pipe's relay ended"),
            _ = sending => anyhow::anyhow!("the floor pipe's sender ended"),
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor batches as Foco batches only while its constants are the
    /// services' defaults: a default that moves must move here too.
    #[test]
    fn in_flight_limits_and_batch_sizes_are_the_services_defaults() {
        let rules = foco_rules::Config::from_lookup(&foco_runtime::env::Env::from_pairs([(
            "FOCO_CONTROL_API_KEY",
            "rules-key",
        )]))
        .expect("rules' defaults");
        assert_eq!(EVENT_CONCURRENCY, rules.concurrency);
        assert_eq!(EVENT_BATCH, rules.store_batch);
        assert_eq!(FLUSHES_IN_FLIGHT, rules.store_writers);
        let sender = foco_sender::Config::default();
        assert_eq!(JOB_CONCURRENCY, sender.concurrency);
        assert_eq!(JOB_BATCH, sender.write_batch);
        assert_eq!(MAX_ACK_PENDING, sender.max_ack_pending);
    }

    fn job(id: &str) -> SmsJob {
        SmsJob {
            job_id: id.to_owned(),
            event_id: format!("event-of-{id}"),
            to: RECIPIENT.to_owned(),
            body: "Pedido 1".to_owned(),
            ..SmsJob::default()
        }
    }

    async fn claim(connections: &KeptConnections, jobs: &[SmsJob]) -> Vec<bool> {
        write_batch(connections, jobs.to_vec(), claim_jobs, take_claim)
            .await
            .into_iter()
            .map(|answer| answer.expect("claimed"))
            .collect()
    }

    async fn record(connections: &KeptConnections, id: &str, status: &'static str) {
        let answers = write_batch(
            connections,
            vec![(id.to_owned(), status)],
            record_outcomes,
            |_, _| (),
        )
        .await;
        assert!(answers.into_iter().all(|answer| answer.is_ok()));
    }

    /// The floor measures the promises only if it keeps them: a job is taken
    /// once, whatever the deliveries, and again only after its call failed.
    #[tokio::test]
    async fn a_job_is_claimed_once_and_again_only_after_a_failed_call() {
        let database = foco_testkit::TestDatabase::create().await;
        let pool = foco_runtime::postgres::connect(&database.url, 2)
            .await
            .unwrap();
        sqlx::raw_sql(SCHEMA).execute(&pool).await.unwrap();
        let connections = KeptConnections::new(pool.clone(), 1);

        assert_eq!(
            claim(&connections, &[job("a"), job("a"), job("b")]).await,
            [true, false, true],
            "one statement takes a job once, for its first delivery"
        );
        assert_eq!(claim(&connections, &[job("a")]).await, [false]);

        record(&connections, "a", "sent").await;
        record(&connections, "b", "failed").await;
        assert_eq!(
            claim(&connections, &[job("a"), job("b")]).await,
            [false, true],
            "a sent job stays sent; a failed one is taken again"
        );
        let statuses: Vec<(String, String)> =
            sqlx::query_as("SELECT job_id, status FROM floor_messages ORDER BY job_id")
                .fetch_all(&pool)
                .await
                .unwrap();
        assert_eq!(
            statuses,
            [
                ("a".to_owned(), "sent".to_owned()),
                ("b".to_owned(), "sending".to_owned())
            ]
        );
    }
}
