//! One SMS job, from a decoded `SmsJob` to an `Outcome` that says how to
//! acknowledge it. No broker here: the pull loop in `consumer` decodes, calls
//! `handle`, and acks as told, so tests call `handle` directly.
//!
//! Order matters: resolve the route, normalise the number, claim the job in
//! Postgres, call the provider, record the outcome, and only then acknowledge.

use std::time::{Duration, Instant};

use async_nats::jetstream::AckKind;
use foco_proto::v1::SmsJob;
use foco_runtime::telemetry::mask_phone;
use sqlx::PgPool;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::phone::normalize_e164;
use crate::providers::{OutboundSms, ProviderOutcome, Providers};
use crate::retry;
use crate::routing::{self, RouteSource};
use crate::store::{self, Claim, NewMessage, OutcomeRecord, Status, StoreError};

pub const NO_ROUTE_REASON: &str = "no provider route";
pub const INVALID_NUMBER_REASON: &str = "invalid phone number";
/// Longest wait before looking again at a job another delivery is sending.
const HELD_ELSEWHERE_RECHECK: Duration = Duration::from_secs(2);

/// How a handled job is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Sent,
    /// Recorded as failed (invalid number, no route, refused, out of attempts).
    Failed { reason: String },
    /// Recorded as unknown: may have been sent, not resent.
    Unknown,
    /// Recorded as queued after a transient failure; comes back after `delay`.
    Retry { delay: Duration },
    /// Another delivery already finished it (or is finishing it): nothing to do.
    AlreadyHandled,
    /// Another delivery holds a live claim; look again after `delay`.
    HeldElsewhere { delay: Duration },
    /// Configuration or Postgres could not be reached; nothing was decided.
    Deferred { delay: Duration },
    /// Can never be handled (undecodable, or its account is gone): terminated.
    Poison { reason: String },
}

impl Outcome {
    pub fn ack_kind(&self) -> AckKind {
        match self {
            Self::Sent | Self::Failed { .. } | Self::Unknown | Self::AlreadyHandled => AckKind::Ack,
            Self::Retry { delay } | Self::HeldElsewhere { delay } | Self::Deferred { delay } => {
                AckKind::Nak(Some(*delay))
            }
            Self::Poison { .. } => AckKind::Term,
        }
    }

    /// Metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed { .. } => "failed",
            Self::Unknown => "unknown",
            Self::Retry { .. } => "retry",
            Self::AlreadyHandled => "duplicate",
            Self::HeldElsewhere { .. } => "held_elsewhere",
            Self::Deferred { .. } => "deferred",
            Self::Poison { .. } => "poison",
        }
    }
}

/// Everything `handle` needs; cheap to clone.
#[derive(Clone)]
pub struct Handler<R> {
    pub pool: PgPool,
    pub routes: R,
    pub providers: Providers,
    pub metrics: Metrics,
    pub max_attempts: u32,
    /// How long a `sending` claim is presumed alive (see `Config::claim_lease`).
    pub claim_lease: Duration,
}

impl<R: RouteSource> Handler<R> {
    /// Handles one job. `delivery` is JetStream's delivery count (1 on the first),
    /// used to back off when infrastructure is failing.
    pub async fn handle(&self, job: &SmsJob, delivery: u32) -> Outcome {
        let Ok(account_id) = Uuid::parse_str(&job.account_id) else {
            return Outcome::Poison {
                reason: "account id is not a UUID".to_owned(),
            };
        };
        let route = match self.routes.route(&job.account_id, &job.provider).await {
            Ok(route) => route,
            Err(error) => {
                tracing::warn!(error = %error, "provider route lookup failed; retrying later");
                return deferred(delivery);
            }
        };
        let mut message = NewMessage {
            job_id: &job.job_id,
            account_id,
            event_id: &job.event_id,
            source_id: &job.source_id,
            rule_id: &job.rule_id,
            recipient: &job.to,
            body: &job.body,
            provider: &job.provider,
        };
        let Some(route) = route else {
            return self.reject(&message, NO_ROUTE_REASON, delivery).await;
        };
        message.provider = routing::route_name(&route, &job.provider);
        let Ok(recipient) = normalize_e164(&job.to, routing::default_country(&route)) else {
            return self.reject(&message, INVALID_NUMBER_REASON, delivery).await;
        };
        message.recipient = &recipient;
        let provider = match self.providers.for_route(&route) {
            Ok(provider) => provider,
            Err(error) => return self.reject(&message, &error.to_string(), delivery).await,
        };

        let attempts = match store::claim(&self.pool, &message, self.claim_lease).await {
            Ok(Claim::Claimed { attempts }) => attempts,
            Ok(Claim::Finished { status }) => {
                tracing::info!(%status, "job already handled; acknowledging without a call");
                return Outcome::AlreadyHandled;
            }
            Ok(Claim::HeldElsewhere { retry_in }) => {
                tracing::info!("job held by another delivery; looking again later");
                // The holder usually finishes long before its lease runs out, so look
                // again soon; a dead holder's lease still expires on schedule.
                return Outcome::HeldElsewhere {
                    delay: retry_in.min(HELD_ELSEWHERE_RECHECK) + Duration::from_millis(250),
                };
            }
            Ok(Claim::Abandoned) => {
                tracing::warn!(
                    "job was abandoned during a provider call; recorded as unknown, not resent"
                );
                return Outcome::Unknown;
            }
            Err(error) => return self.store_failure(&error, delivery),
        };

        let outbound = OutboundSms {
            job_id: job.job_id.clone(),
            account_id: job.account_id.clone(),
            event_id: job.event_id.clone(),
            to: recipient.clone(),
            from: job.from.clone(),
            body: job.body.clone(),
        };
        let started = Instant::now();
        let provider_outcome = provider.send(&outbound).await;
        self.metrics.provider_call(
            provider.kind(),
            provider_outcome_label(&provider_outcome),
            started.elapsed().as_secs_f64(),
        );
        let (record, outcome) = self.decide(&job.job_id, attempts, provider_outcome);
        match self.record_with_retries(&record).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    status = record.status.as_str(),
                    "job row moved on during the call; outcome not recorded"
                );
            }
            Err(error) => {
                // The claim stays `sending`; a redelivery after the lease records the
                // job as unknown rather than resending it.
                tracing::error!(error = %error_chain(&error), "could not record the provider outcome");
                return Outcome::Deferred {
                    delay: self.claim_lease + Duration::from_secs(1),
                };
            }
        }
        log_outcome(
            &outcome,
            &recipient,
            provider.kind(),
            attempts,
            &record.error,
        );
        outcome
    }

    /// Turns the provider's answer into the row to store and the acknowledgement.
    fn decide(
        &self,
        job_id: &str,
        attempts: u32,
        provider_outcome: ProviderOutcome,
    ) -> (OutcomeRecord, Outcome) {
        let record = |status: Status, provider_message_id: String, error: String| OutcomeRecord {
            job_id: job_id.to_owned(),
            status,
            provider_message_id,
            error,
        };
        match provider_outcome {
            ProviderOutcome::Sent {
                provider_message_id,
            } => (
                record(Status::Sent, provider_message_id, String::new()),
                Outcome::Sent,
            ),
            ProviderOutcome::Permanent { reason } => (
                record(Status::Failed, String::new(), reason.clone()),
                Outcome::Failed { reason },
            ),
            ProviderOutcome::Unknown { reason } => (
                record(Status::Unknown, String::new(), reason),
                Outcome::Unknown,
            ),
            ProviderOutcome::Transient { reason, .. } if attempts >= self.max_attempts => {
                let reason = format!("gave up after {attempts} attempts: {reason}");
                (
                    record(Status::Failed, String::new(), reason.clone()),
                    Outcome::Failed { reason },
                )
            }
            ProviderOutcome::Transient {
                retry_after,
                reason,
            } => (
                record(Status::Queued, String::new(), reason),
                Outcome::Retry {
                    delay: retry::next_delay(attempts, retry_after),
                },
            ),
        }
    }

    /// A brief Postgres hiccup should not turn a known outcome into `unknown`.
    async fn record_with_retries(&self, record: &OutcomeRecord) -> Result<bool, StoreError> {
        let mut pause = Duration::from_millis(100);
        let mut tries = 0;
        loop {
            tries += 1;
            match store::record_outcome(&self.pool, record).await {
                Err(StoreError::Database(error)) if tries < 4 => {
                    tracing::warn!(error = %error, "outcome write failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
    }

    async fn reject(&self, message: &NewMessage<'_>, reason: &str, delivery: u32) -> Outcome {
        match store::record_rejected(&self.pool, message, reason).await {
            Ok(()) => {
                tracing::warn!(to = %mask_phone(message.recipient), reason, "job failed before sending");
                Outcome::Failed {
                    reason: reason.to_owned(),
                }
            }
            Err(error) => self.store_failure(&error, delivery),
        }
    }

    fn store_failure(&self, error: &StoreError, delivery: u32) -> Outcome {
        match error {
            StoreError::AccountMissing => Outcome::Poison {
                reason: "the job's account no longer exists".to_owned(),
            },
            StoreError::Contended => Outcome::HeldElsewhere {
                delay: Duration::from_secs(1),
            },
            other => {
                tracing::warn!(error = %error_chain(other), "messages table unavailable; retrying later");
                deferred(delivery)
            }
        }
    }
}

fn deferred(delivery: u32) -> Outcome {
    Outcome::Deferred {
        delay: retry::backoff(delivery.max(1)),
    }
}

fn provider_outcome_label(outcome: &ProviderOutcome) -> &'static str {
    match outcome {
        ProviderOutcome::Sent { .. } => "sent",
        ProviderOutcome::Transient { .. } => "transient",
        ProviderOutcome::Permanent { .. } => "permanent",
        ProviderOutcome::Unknown { .. } => "unknown",
    }
}

fn log_outcome(
    outcome: &Outcome,
    recipient: &str,
    provider: &'static str,
    attempts: u32,
    error: &str,
) {
    let to = mask_phone(recipient);
    match outcome {
        Outcome::Sent => tracing::info!(%to, provider, attempts, "sms sent"),
        Outcome::Retry { delay } => {
            tracing::warn!(%to, provider, attempts, error, retry_in_ms = delay.as_millis() as u64, "provider failed transiently; will retry");
        }
        Outcome::Failed { .. } => tracing::warn!(%to, provider, attempts, error, "sms failed"),
        Outcome::Unknown => {
            tracing::warn!(%to, provider, attempts, error, "sms outcome unknown; not resent")
        }
        _ => {}
    }
}

/// `error: cause: cause` for the log line at this boundary.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
