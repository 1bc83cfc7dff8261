//! FOCO_RECEIPTS: what providers tell us after the send, as ingress publishes it.
//! `…status` subjects carry a `DeliveryReceipt`, applied monotonically to the
//! message (see `store::receipts`); `…inbound` subjects carry an `InboundSms`,
//! whose STOP/START keywords change the account's opt-outs at once, in the order
//! they were received (see `store::apply_keyword`), and whose HELP is answered
//! with the route's `help_text`; any other text becomes an event of the
//! account's inbound source, when it has one (`inbound_events`).
//!
//! A receipt can arrive before the sender has recorded the send it reports (the
//! provider is fast, our batch is not written yet): it is retried a few times
//! with a delay, then dropped with a warning.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{self, AckKind, Message};
use chrono::{DateTime, Utc};
use foco_bus::{BusNames, ReceiptKind};
use foco_proto::v1::{DeliveryReceipt, InboundSms, Priority, ReceiptStatus, SmsJob};
use foco_runtime::telemetry::mask_phone;
use prost::Message as _;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use uuid::Uuid;

use crate::handler::error_chain;
use crate::inbound_events;
use crate::keywords::{Keyword, keyword};
use crate::metrics::Metrics;
use crate::phone::normalize_e164;
use crate::routing::{self, RouteSource, Routes};
use crate::store::receipts::{ReceiptApplied, apply_receipt};
use crate::store::{self, KeywordApplied, KeywordChange, Status};

/// Deliveries of a receipt whose message cannot be found before it is dropped.
const MAX_UNMATCHED_DELIVERIES: u32 = 10;
/// The answer to HELP when the route has no `help_text`.
pub const DEFAULT_HELP_TEXT: &str =
    "Reply STOP to unsubscribe. Responde BAJA para dejar de recibir mensajes.";
/// Provider error codes in receipts meaning the recipient opted out (Twilio,
/// Telnyx): the account opts the number out too.
const OPTED_OUT_CODES: [&str; 2] = ["21610", "40300"];

/// How a receipt message is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptOutcome {
    Done(&'static str),
    Retry(Duration),
    Poison(String),
}

pub struct ReceiptHandler<R> {
    pub pool: PgPool,
    pub routes: R,
    pub route_table: Routes,
    pub jetstream: jetstream::Context,
    pub nats: async_nats::Client,
    pub names: BusNames,
    pub feed: foco_bus::StatusFeed,
}

impl<R: RouteSource> ReceiptHandler<R> {
    pub async fn handle(
        &self,
        subject: &str,
        payload: bytes::Bytes,
        delivery: u32,
    ) -> ReceiptOutcome {
        match self.names.receipt_kind_of(subject) {
            Some(ReceiptKind::Status) => match DeliveryReceipt::decode(payload) {
                Ok(receipt) => self.handle_receipt(&receipt, delivery).await,
                Err(_) => ReceiptOutcome::Poison("undecodable delivery receipt".to_owned()),
            },
            Some(ReceiptKind::Inbound) => match InboundSms::decode(payload) {
                Ok(inbound) => self.handle_inbound(&inbound, delivery).await,
                Err(_) => ReceiptOutcome::Poison("undecodable inbound sms".to_owned()),
            },
            None => ReceiptOutcome::Poison(format!("unexpected receipts subject {subject}")),
        }
    }

    pub async fn handle_receipt(&self, receipt: &DeliveryReceipt, delivery: u32) -> ReceiptOutcome {
        let Ok(account_id) = Uuid::parse_str(&receipt.account_id) else {
            return ReceiptOutcome::Poison("account id is not a UUID".to_owned());
        };
        let status = match ReceiptStatus::try_from(receipt.status) {
            Ok(ReceiptStatus::Sent) => Status::Sent,
            Ok(ReceiptStatus::Delivered) => Status::Delivered,
            Ok(ReceiptStatus::Undelivered) => Status::Undelivered,
            _ => return ReceiptOutcome::Poison("receipt without a status".to_owned()),
        };
        let error = match (receipt.error_code.as_str(), receipt.error_message.as_str()) {
            ("", "") => String::new(),
            (code, "") => code.to_owned(),
            ("", text) => text.to_owned(),
            (code, text) => format!("{code}: {text}"),
        };
        let applied = apply_receipt(
            &self.pool,
            account_id,
            &receipt.provider_message_id,
            &receipt.job_id,
            status,
            &error,
        )
        .await;
        // A receipt that finds its message already at the status it reports
        // publishes the change again: an earlier delivery of it may have
        // applied it and stopped before publishing (the id makes it one change).
        let reached = match &applied {
            Ok(ReceiptApplied::Updated {
                job_id,
                recipient,
                status,
            }) => Some((job_id, recipient, *status)),
            Ok(ReceiptApplied::Unchanged {
                job_id,
                recipient,
                status: Some(current),
            }) if *current == status => Some((job_id, recipient, *current)),
            _ => None,
        };
        if let Some((job_id, recipient, reached_status)) = reached
            && let Some(change_kind) =
                foco_bus::status::kind::of_message_status(reached_status.as_str())
        {
            let mut change = foco_bus::status_change(&receipt.account_id, job_id, change_kind);
            change.reason.clone_from(&error);
            change.to.clone_from(recipient);
            change.provider.clone_from(&receipt.provider);
            change
                .provider_message_id
                .clone_from(&receipt.provider_message_id);
            if let Err(publish_error) = self.feed.publish(change).await {
                // Applied already: the redelivery finds the message at this
                // status and publishes the change then (see above).
                tracing::warn!(error = %error_chain(&publish_error), "publishing a receipt's status change failed; retrying");
                return ReceiptOutcome::Retry(backoff(delivery));
            }
        }
        match applied {
            Ok(
                ReceiptApplied::Updated { recipient, .. }
                | ReceiptApplied::Unchanged { recipient, .. },
            ) => {
                if status == Status::Undelivered
                    && OPTED_OUT_CODES.contains(&receipt.error_code.as_str())
                {
                    self.opt_out(account_id, &recipient, "provider", &error)
                        .await;
                }
                ReceiptOutcome::Done("applied")
            }
            Ok(ReceiptApplied::NotYet) => ReceiptOutcome::Retry(Duration::from_secs(2)),
            Ok(ReceiptApplied::NotFound) if delivery < MAX_UNMATCHED_DELIVERIES => {
                ReceiptOutcome::Retry(backoff(delivery))
            }
            Ok(ReceiptApplied::NotFound) => {
                tracing::warn!(provider = %receipt.provider, provider_message_id = %receipt.provider_message_id, "delivery receipt matches no message; dropped");
                ReceiptOutcome::Done("unmatched")
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not apply a delivery receipt; retrying");
                ReceiptOutcome::Retry(backoff(delivery))
            }
        }
    }

    pub async fn handle_inbound(&self, inbound: &InboundSms, delivery: u32) -> ReceiptOutcome {
        let Ok(account_id) = Uuid::parse_str(&inbound.account_id) else {
            return ReceiptOutcome::Poison("account id is not a UUID".to_owned());
        };
        let message_id = foco_bus::inbound_msg_id(
            &inbound.account_id,
            &inbound.provider,
            &inbound.provider_message_id,
        );
        let mut change = foco_bus::status_change(
            &inbound.account_id,
            &message_id,
            foco_bus::status::kind::INBOUND,
        );
        change.to.clone_from(&inbound.from);
        change.body.clone_from(&inbound.body);
        change.provider.clone_from(&inbound.route);
        change
            .provider_message_id
            .clone_from(&inbound.provider_message_id);
        if let Err(error) = self.feed.publish(change).await {
            tracing::warn!(error = %error_chain(&error), "publishing an inbound sms to the status feed failed; retrying");
            return ReceiptOutcome::Retry(backoff(delivery));
        }
        let Some(word) = keyword(&inbound.body) else {
            return self.deliver_as_event(inbound, delivery).await;
        };
        let route = match self.routes.route(&inbound.account_id, &inbound.route).await {
            Ok(route) => route,
            Err(error) => {
                tracing::warn!(error = %error, "provider route lookup failed; retrying later");
                return ReceiptOutcome::Retry(backoff(delivery));
            }
        };
        let country = route.as_deref().map_or("", routing::default_country);
        let Ok(phone) = normalize_e164(&inbound.from, country) else {
            tracing::warn!(from = %mask_phone(&inbound.from), "inbound sms from an unreadable number; ignored");
            return ReceiptOutcome::Done("inbound");
        };
        let reason = inbound.body.trim().to_uppercase();
        let (change, label) = match word {
            Keyword::Stop => (KeywordChange::OptOut { reason: &reason }, "opt_out"),
            Keyword::Start => (KeywordChange::OptIn, "opt_in"),
            Keyword::Help => {
                let help_text = route
                    .as_ref()
                    .and_then(|route| self.route_table.info(route).help_text.clone())
                    .unwrap_or_else(|| DEFAULT_HELP_TEXT.to_owned());
                return self.answer_help(inbound, &phone, help_text, delivery).await;
            }
        };
        let received_at = keyword_received_at(inbound);
        match store::apply_keyword(&self.pool, account_id, &phone, change, received_at).await {
            Ok(KeywordApplied::Applied) => {
                tracing::info!(from = %mask_phone(&phone), keyword = label, "opt-out keyword applied");
                ReceiptOutcome::Done(label)
            }
            Ok(KeywordApplied::Superseded) => {
                tracing::info!(from = %mask_phone(&phone), keyword = label, "opt-out keyword older than the number's last one; ignored");
                ReceiptOutcome::Done("superseded")
            }
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not apply an opt-out keyword; retrying");
                ReceiptOutcome::Retry(backoff(delivery))
            }
        }
    }

    /// A message that is no keyword becomes an event of the account's inbound
    /// source, when it has one (`inbound_events`); without, it is only on the
    /// status feed.
    async fn deliver_as_event(&self, inbound: &InboundSms, delivery: u32) -> ReceiptOutcome {
        let route = match self.routes.route(&inbound.account_id, &inbound.route).await {
            Ok(route) => route,
            Err(error) => {
                tracing::warn!(error = %error, "provider route lookup failed; retrying later");
                return ReceiptOutcome::Retry(backoff(delivery));
            }
        };
        let Some(route) = route.filter(|route| !route.inbound_source_id.is_empty()) else {
            return ReceiptOutcome::Done("inbound");
        };
        let route_name = route
            .route
            .as_ref()
            .map_or(inbound.route.as_str(), |route| route.name.as_str());
        let published = inbound_events::publish(
            &self.jetstream,
            &self.nats,
            &self.names,
            inbound,
            route_name,
            &route.inbound_source_id,
        )
        .await;
        match published {
            Ok(_) => ReceiptOutcome::Done("inbound_event"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not publish an inbound sms as an event; retrying");
                ReceiptOutcome::Retry(backoff(delivery))
            }
        }
    }

    /// The reply is an ordinary transactional job through the route that
    /// received the message, from the number that received it. Its id derives
    /// from the inbound message, so a redelivered HELP is answered once.
    async fn answer_help(
        &self,
        inbound: &InboundSms,
        phone: &str,
        help_text: String,
        delivery: u32,
    ) -> ReceiptOutcome {
        let event_id = foco_bus::help_event_id(
            &inbound.account_id,
            &inbound.provider,
            &inbound.provider_message_id,
        );
        let job = SmsJob {
            job_id: foco_bus::job_id(&event_id, "help", phone),
            account_id: inbound.account_id.clone(),
            event_id,
            source_id: String::new(),
            rule_id: "help".to_owned(),
            to: phone.to_owned(),
            body: help_text,
            provider: inbound.route.clone(),
            from: inbound.to.clone(),
            priority: Priority::Transactional as i32,
            created_at_ms: chrono::Utc::now().timestamp_millis(),
            ..SmsJob::default()
        };
        let published = foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.names.sms_subject(&job.account_id),
            &job.job_id,
            job.encode_to_vec().into(),
            Duration::from_secs(5),
        )
        .await;
        match published {
            Ok(_) => ReceiptOutcome::Done("help"),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not queue the help answer; retrying");
                ReceiptOutcome::Retry(backoff(delivery))
            }
        }
    }

    async fn opt_out(&self, account_id: Uuid, phone: &str, source: &str, reason: &str) {
        if let Err(error) = store::add_opt_out(&self.pool, account_id, phone, source, reason).await
        {
            tracing::warn!(error = %error_chain(&error), "could not record an opt-out from a receipt");
        }
    }
}

/// When the keyword was sent, as far as Foco can tell: the time ingress received
/// the provider's callback (`received_at_ms`). `InboundSms` carries no provider
/// timestamp (Twilio sends none; the others' clocks would be compared with
/// ingress's). The receive time is stamped once, when the callback is stored, so
/// redeliveries to the sender keep it, and a provider's retry of a stored
/// callback is dropped as a duplicate within the bus's duplicate window; a retry
/// after that window is stamped when it arrives. A message without it (ingress
/// always sets it) counts as received now.
fn keyword_received_at(inbound: &InboundSms) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(inbound.received_at_ms)
        .filter(|_| inbound.received_at_ms > 0)
        .unwrap_or_else(Utc::now)
}

fn backoff(delivery: u32) -> Duration {
    crate::retry::backoff(delivery.max(1)).min(Duration::from_secs(30))
}

/// How the sender handles one message of the receipts stream, for the bus's
/// pull loop.
struct Receipts<R> {
    handler: Arc<ReceiptHandler<R>>,
    metrics: Metrics,
}

impl<R: RouteSource + 'static> foco_bus::Handle for Receipts<R> {
    async fn handle(&self, message: &Message) -> AckKind {
        process(&self.handler, message, &self.metrics).await
    }
}

/// Consumes receipts and inbound messages until `shutdown`.
pub async fn run<R: RouteSource + 'static>(
    handler: Arc<ReceiptHandler<R>>,
    consumer: PullConsumer,
    concurrency: usize,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    foco_bus::pull::run(
        consumer,
        Arc::new(Receipts { handler, metrics }),
        foco_bus::PullSettings {
            what: "receipts",
            concurrency,
            shutdown_grace: RECEIPTS_SHUTDOWN_GRACE,
            keep_alive: None,
        },
        shutdown,
    )
    .await;
}

/// Receipts are short database writes: what is not done by then is redelivered.
const RECEIPTS_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

async fn process<R: RouteSource>(
    handler: &ReceiptHandler<R>,
    message: &Message,
    metrics: &Metrics,
) -> AckKind {
    let delivery = message
        .info()
        .map(|info| u32::try_from(info.delivered).unwrap_or(u32::MAX))
        .unwrap_or(1);
    let span = tracing::info_span!("receipt", subject = %message.subject, delivery);
    foco_bus::trace::set_parent_from(&span, message.headers.as_ref());
    let outcome = handler
        .handle(message.subject.as_str(), message.payload.clone(), delivery)
        .instrument(span)
        .await;
    match &outcome {
        ReceiptOutcome::Done(label) => {
            metrics.receipt(label);
            AckKind::Ack
        }
        ReceiptOutcome::Retry(delay) => {
            metrics.receipt("retry");
            AckKind::Nak(Some(*delay))
        }
        ReceiptOutcome::Poison(reason) => {
            tracing::warn!(reason = %reason, "receipt cannot be handled; terminating it");
            metrics.receipt("poison");
            AckKind::Term
        }
    }
}
