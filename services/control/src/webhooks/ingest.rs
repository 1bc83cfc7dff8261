//! From the status feed to delivery rows: a durable consumer on FOCO_STATUS
//! turns each change into one `endpoint_deliveries` row per enabled endpoint
//! of its account that subscribed to its event type (the body gets the
//! message's SendMessage metadata on the way when the change does not carry
//! it, as receipts' changes do not), in one statement per batch,
//! then acknowledges the batch. Row ids are the changes' ids, so a batch
//! redelivered after a crash adds nothing.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use foco_bus::{BusNames, ConsumerSettings, StreamSettings};
use futures::{FutureExt as _, StreamExt as _};
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::payload;
use super::subscribed::SubscribedAccounts;

/// Feed messages handled in one statement (each holds one change or a batch).
const MAX_BATCH: usize = 256;
/// Pause before trying again after NATS or Postgres refused.
const RETRY_PAUSE: Duration = Duration::from_secs(1);

const INSERT_DELIVERIES: &str = "WITH changes AS ( \
       SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[]) \
         AS t(id, account_id, event_type, payload, message_id)), \
     inserted AS ( \
       INSERT INTO endpoint_deliveries (id, endpoint_id, account_id, event_type, payload) \
       SELECT c.id, e.id, c.account_id, c.event_type, \
              jsonb_set(c.payload::jsonb, '{data,metadata}', \
                        COALESCE(s.metadata, '{}'::jsonb) || (c.payload::jsonb #> '{data,metadata}'))::text \
       FROM changes c \
       JOIN endpoints e ON e.account_id = c.account_id AND e.enabled \
         AND (cardinality(e.event_types) = 0 OR c.event_type = ANY (e.event_types)) \
       LEFT JOIN api_sends s ON s.job_id = c.message_id \
       ON CONFLICT DO NOTHING \
       RETURNING 1) \
     SELECT count(*) FROM inserted";

pub(super) struct Ingest {
    pub pool: PgPool,
    pub client: async_nats::Client,
    pub names: BusNames,
    pub streams: StreamSettings,
    /// Told when rows were added, so the dispatcher looks at once.
    pub added: Arc<Notify>,
    pub subscribed: SubscribedAccounts,
}

impl Ingest {
    /// Consumes until shutdown; NATS being away only delays it.
    pub async fn run(self, shutdown: CancellationToken) {
        let jetstream = jetstream::new(self.client.clone());
        loop {
            let consumer = tokio::select! {
                () = shutdown.cancelled() => return,
                consumer = self.consumer(&jetstream) => consumer,
            };
            match consumer {
                Ok(consumer) => {
                    if self.consume(consumer, &shutdown).await {
                        return;
                    }
                }
                Err(error) => {
                    tracing::warn!(error = %crate::error::cause_chain(&error), "status webhook consumer not ready; trying again");
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(RETRY_PAUSE) => {}
            }
        }
    }

    async fn consumer(
        &self,
        jetstream: &jetstream::Context,
    ) -> Result<jetstream::consumer::PullConsumer, foco_bus::TopologyError> {
        // Only the stream this worker reads: the work queues belong to
        // the services that produce and consume them.
        foco_bus::ensure_status_stream(jetstream, &self.names, self.streams).await?;
        foco_bus::ensure_consumer(
            jetstream,
            &ConsumerSettings {
                stream: self.names.status_stream(),
                durable_name: self.names.webhooks_consumer().to_owned(),
                filter_subject: self.names.status_filter(),
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 4 * MAX_BATCH as i64,
                max_deliver: -1,
            },
        )
        .await
    }

    /// Answers true once shutdown was requested, false when the consumer
    /// must be set up again.
    async fn consume(
        &self,
        consumer: jetstream::consumer::PullConsumer,
        shutdown: &CancellationToken,
    ) -> bool {
        let mut messages = match consumer
            .stream()
            .max_messages_per_batch(MAX_BATCH)
            .messages()
            .await
        {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(error = %error, "status webhook consumer not readable");
                return false;
            }
        };
        loop {
            let first = tokio::select! {
                () = shutdown.cancelled() => return true,
                next = messages.next() => next,
            };
            let first = match first {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(error = %error, "pulling status changes failed; continuing");
                    tokio::select! {
                        () = shutdown.cancelled() => return true,
                        () = tokio::time::sleep(RETRY_PAUSE) => {}
                    }
                    continue;
                }
                None => return false,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match messages.next().now_or_never() {
                    Some(Some(Ok(message))) => batch.push(message),
                    _ => break,
                }
            }
            let ack = match self.store(&batch).await {
                Ok(added) => {
                    if added > 0 {
                        self.added.notify_one();
                    }
                    AckKind::Ack
                }
                Err(error) => {
                    tracing::warn!(error = %error, changes = batch.len(), "storing status webhook deliveries failed; the changes come back");
                    AckKind::Nak(Some(RETRY_PAUSE))
                }
            };
            for message in &batch {
                if let Err(error) = message.ack_with(ack).await {
                    tracing::warn!(error = %error, "acknowledging a status change failed");
                }
            }
        }
    }

    async fn store(&self, batch: &[jetstream::Message]) -> Result<i64, sqlx::Error> {
        let changes: Vec<_> = batch
            .iter()
            .flat_map(|message| {
                foco_bus::status::decode(message.headers.as_ref(), &message.payload).unwrap_or_else(|_| {
                    tracing::warn!(subject = %message.subject, "undecodable status change; no webhook for it");
                    Vec::new()
                })
            })
            .filter_map(|change| {
                let account_id = Uuid::parse_str(&change.account_id).ok()?;
                Some((account_id, change))
            })
            .collect();
        // Most changes belong to accounts without endpoints: their bodies are
        // never built, and the batch costs at most one indexed lookup.
        let subscribed = self
            .subscribed
            .of(changes.iter().map(|(account_id, _)| *account_id))
            .await?;
        if subscribed.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(changes.len());
        let mut accounts = Vec::with_capacity(changes.len());
        let mut event_types = Vec::with_capacity(changes.len());
        let mut payloads = Vec::with_capacity(changes.len());
        let mut message_ids = Vec::with_capacity(changes.len());
        let mut seen = HashSet::new();
        for (account_id, change) in changes {
            if !subscribed.contains(&account_id) {
                continue;
            }
            // A change published again after a crash can come twice.
            if !seen.insert(change.id.clone()) {
                continue;
            }
            let Some(event_type) = payload::event_type(&change.kind) else {
                continue;
            };
            payloads.push(payload::body(event_type, &change).to_string());
            ids.push(change.id);
            accounts.push(account_id);
            event_types.push(event_type);
            message_ids.push(change.message_id);
        }
        if ids.is_empty() {
            return Ok(0);
        }
        sqlx::query_scalar(INSERT_DELIVERIES)
            .bind(ids)
            .bind(accounts)
            .bind(event_types)
            .bind(payloads)
            .bind(message_ids)
            .fetch_one(&self.pool)
            .await
    }
}
