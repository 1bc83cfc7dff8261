//! One SMS job, from a decoded `SmsJob` to an `Outcome` that says how to
//! acknowledge it. No broker here: the pull loop in `consumer` decodes, calls
//! `handle`, and acks as told, so tests call `handle` directly.
//!
//! Order matters: resolve the route, normalise the number, expire a job past its
//! deadline (a comparison on the job; recorded by the batched claim), resolve
//! the route chain, hold marketing
//! during quiet hours, take a rate-limit token, claim the job in Postgres (which
//! also checks opt-outs), call the providers in order until one gives a definite
//! answer, record the outcome, and only then acknowledge (`send`).

mod send;

use send::{Chain, FirstToken};

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::AckKind;
use chrono::{DateTime, Utc};
use foco_proto::v1::{Priority, SmsJob};
use foco_runtime::telemetry::mask_phone;
use prost::Message as _;
use sqlx::PgPool;
use uuid::Uuid;

use crate::breaker::Breakers;
use crate::limits::{Permit, RouteLimits};
use crate::metrics::Metrics;
use crate::phone::normalize_e164;
use crate::providers::{Providers, Repeat};
use crate::quiet::{QuietHours, recipient_zones};
use crate::retry;
use crate::routing::{self, RouteInfo, RouteSource, Routes};
use crate::store::batch::Writers;
use crate::store::{self, Claim, ClaimRequest, HoldRequest, NewMessage, RouteLock, StoreError};

pub const NO_ROUTE_REASON: &str = "no provider route";
pub const NO_ROUTE_FOR_DESTINATION_REASON: &str = "no provider route serves this destination";
pub const INVALID_NUMBER_REASON: &str = "invalid phone number";
/// Longest wait before looking again at a job another delivery is sending.
const HELD_ELSEWHERE_RECHECK: Duration = Duration::from_secs(2);
/// Job ids are digests (`foco_bus::job_id`); anything far longer is not a job.
const MAX_JOB_ID_LEN: usize = 256;
/// Bounds of the copy recorded for a job that cannot be stored as it came.
const MAX_FIELD_LEN: usize = 256;
const MAX_BODY_LEN: usize = 2_000;

/// How a handled job is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The provider accepted it.
    Sent,
    /// Recorded as failed (invalid number, no route, refused by the provider).
    Failed { reason: String },
    /// Out of attempts or age (or refused for a provider-side reason with no
    /// provider left): recorded failed and kept as a dead letter.
    DeadLettered { reason: String },
    /// Recorded as unknown: may have been sent, not resent.
    Unknown,
    /// The recipient opted out: recorded, not sent.
    OptedOut,
    /// Reached the sender past its deadline (due time plus validity):
    /// recorded `expired` with the reason, not sent.
    Expired { reason: String },
    /// A marketing job parked until the recipient's quiet hours end.
    Held { until: DateTime<Utc> },
    /// The route has no send budget for longer than `park_after`: the job is
    /// parked in Postgres until its paced slot, out of the shared stream.
    Parked { until: DateTime<Utc> },
    /// Recorded as queued after a transient failure; comes back after `delay`.
    Retry { delay: Duration },
    /// The route is rate limited, paused after a 429, or all its providers'
    /// breakers are open: nothing was claimed or called; comes back after `delay`.
    Throttled { delay: Duration },
    /// Another delivery already finished it (or is finishing it): nothing to do.
    AlreadyHandled,
    /// An earlier delivery recorded its final `status` (a `messages.status`
    /// value): acknowledged without a call, and its status change published
    /// again, in case that delivery stopped before it could.
    Finished { status: String },
    /// Another delivery holds a live claim; look again after `delay`.
    HeldElsewhere { delay: Duration },
    /// Configuration or Postgres could not be reached; nothing was decided.
    Deferred { delay: Duration },
    /// Can never be handled (undecodable, or its account is gone): terminated.
    Poison { reason: String },
    /// Its writes fail the same way every time; `handle` records it as failed
    /// (never returned by `handle`).
    Unstorable { reason: String },
}

impl Outcome {
    pub fn ack_kind(&self) -> AckKind {
        match self {
            Self::Sent
            | Self::Failed { .. }
            | Self::DeadLettered { .. }
            | Self::Unknown
            | Self::OptedOut
            | Self::Expired { .. }
            | Self::Held { .. }
            | Self::Parked { .. }
            | Self::AlreadyHandled
            | Self::Finished { .. } => AckKind::Ack,
            Self::Retry { delay }
            | Self::Throttled { delay }
            | Self::HeldElsewhere { delay }
            | Self::Deferred { delay } => AckKind::Nak(Some(*delay)),
            Self::Poison { .. } => AckKind::Term,
            // Not returned by `handle`; kept for a retry if it ever were.
            Self::Unstorable { .. } => AckKind::Nak(Some(Duration::from_secs(60))),
        }
    }

    /// Metrics label.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Failed { .. } => "failed",
            Self::DeadLettered { .. } => "dead_lettered",
            Self::Unknown => "unknown",
            Self::OptedOut => "opted_out",
            Self::Expired { .. } => "expired",
            Self::Held { .. } => "held",
            Self::Parked { .. } => "parked",
            Self::Retry { .. } => "retry",
            Self::Throttled { .. } => "throttled",
            Self::AlreadyHandled | Self::Finished { .. } => "duplicate",
            Self::HeldElsewhere { .. } => "held_elsewhere",
            Self::Deferred { .. } => "deferred",
            Self::Poison { .. } => "poison",
            Self::Unstorable { .. } => "unstorable",
        }
    }
}

/// The handler's limits, from `Config`.
#[derive(Debug, Clone)]
pub struct HandlerSettings {
    pub max_attempts: u32,
    pub max_job_age: Duration,
    /// How long a `sending` claim is presumed alive (see `Config::claim_lease`).
    pub claim_lease: Duration,
    /// Default quiet hours for marketing messages (routes may override).
    pub quiet_hours: Option<QuietHours>,
    pub write_batch: usize,
    /// How long a batch of claims waits for company (see `Config::claim_linger`).
    pub claim_linger: Duration,
    /// A job whose route has no budget for longer than this is parked in
    /// Postgres rather than waiting in the stream (see `Config::park_after`).
    pub park_after: Duration,
    /// Deliveries of a job whose writes keep failing before it is recorded as
    /// failed (see `Config::max_deliveries`).
    pub max_deliveries: u32,
}

/// Everything `handle` needs; shared by all jobs of a process.
pub struct Handler<R> {
    pub pool: PgPool,
    pub routes: R,
    pub route_table: Routes,
    pub writers: Writers,
    pub limits: RouteLimits,
    pub breakers: Breakers,
    pub metrics: Metrics,
    pub settings: HandlerSettings,
}

impl<R: RouteSource> Handler<R> {
    /// Starts the batched writers (a tokio runtime must be running).
    pub fn new(
        pool: PgPool,
        routes: R,
        providers: Providers,
        metrics: Metrics,
        settings: HandlerSettings,
    ) -> Self {
        Self {
            writers: Writers::start(
                pool.clone(),
                settings.write_batch,
                settings.claim_linger,
                &metrics,
            ),
            limits: RouteLimits::new(pool.clone()),
            route_table: Routes::new(providers, metrics.clone()),
            breakers: Breakers::default(),
            pool,
            routes,
            metrics,
            settings,
        }
    }

    /// Handles one job. `delivery` is JetStream's delivery count (1 on the first),
    /// used to back off when infrastructure is failing.
    pub async fn handle(&self, job: &SmsJob, delivery: u32) -> Outcome {
        match self.handle_job(job, delivery).await {
            Outcome::Unstorable { reason } => {
                Box::pin(self.record_unstorable(job, &reason, delivery)).await
            }
            outcome => outcome,
        }
    }

    /// A marketing SMS inside its recipient's quiet hours is parked until they
    /// end: `Some` with the outcome when it was (or could not be stored).
    async fn hold_for_quiet_hours(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        first: &RouteInfo,
        recipient: &str,
        delivery: u32,
    ) -> Option<Outcome> {
        let window = first.quiet_hours.unwrap_or(self.settings.quiet_hours);
        let zones = recipient_zones(recipient, &first.account_timezone);
        if let Some(release_at) = window.and_then(|window| window.release_time(Utc::now(), &zones))
        {
            let reason = format!("held for quiet hours until {}", release_at.to_rfc3339());
            let hold = HoldRequest {
                message: message.to_request(),
                outcome: "held",
                reason,
                release_at,
                job: job.encode_to_vec(),
                trace_context: foco_runtime::telemetry::propagation::current_context_text(),
            };
            match self.writers.hold(hold).await {
                Ok(true) => {
                    tracing::info!(to = %mask_phone(recipient), %release_at, "marketing sms held for quiet hours");
                    return Some(Outcome::Held { until: release_at });
                }
                // Past queued: claiming tells what became of it.
                Ok(false) => {}
                Err(error) => return Some(self.store_failure(&error, delivery)),
            }
        }
        None
    }

    /// The first usable route of `chain` and its rate-limit token, taken before
    /// the claim; otherwise what to do with the job now.
    async fn first_token(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        chain: &[Arc<RouteInfo>],
        delivery: u32,
    ) -> Result<usize, Outcome> {
        let Some(start) = chain
            .iter()
            .position(|info| info.provider.is_ok() && self.breakers.open_for(&info.key).is_none())
        else {
            return Err(self.nothing_usable(chain, message, delivery).await);
        };
        match self
            .limits
            .acquire(&chain[start].key, chain[start].rate_limit)
            .await
        {
            Ok(Permit::Go) => Ok(start),
            Ok(Permit::Wait(wait)) if wait > self.settings.park_after => {
                Err(Box::pin(self.park(job, message, &chain[start], wait, delivery)).await)
            }
            Ok(Permit::Wait(wait)) => Err(Outcome::Throttled { delay: wait }),
            Err(error) => Err(self.store_failure(&error, delivery)),
        }
    }

    async fn handle_job(&self, job: &SmsJob, delivery: u32) -> Outcome {
        let account_id = match well_formed(job) {
            Ok(account_id) => account_id,
            Err(poison) => return poison,
        };
        let requested = match self.routes.route(&job.account_id, &job.provider).await {
            Ok(route) => route,
            Err(error) => return lookup_failed(&error, "provider route", delivery),
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
            sender_id: &job.from,
            priority: i16::try_from(job.priority).unwrap_or_default(),
        };
        let Some(requested) = requested else {
            return self.reject(&message, NO_ROUTE_REASON, delivery).await;
        };
        message.provider = routing::route_name(&requested, &job.provider);
        let Ok(recipient) = normalize_e164(&job.to, routing::default_country(&requested)) else {
            return self.reject(&message, INVALID_NUMBER_REASON, delivery).await;
        };
        message.recipient = &recipient;
        // Before quiet hours, rate limits and routes: an expired job must not
        // wait for, or use up, what valid jobs need.
        if foco_bus::validity::is_past_deadline(job, Utc::now().timestamp_millis()) {
            return Box::pin(self.expire(job, &message, delivery)).await;
        }
        let chain = match self
            .route_table
            .chain(&self.routes, &job.account_id, &requested, &recipient)
            .await
        {
            Ok(chain) => chain,
            Err(error) => return lookup_failed(&error, "failover route", delivery),
        };
        let Some(first) = chain.first() else {
            return self
                .reject(&message, NO_ROUTE_FOR_DESTINATION_REASON, delivery)
                .await;
        };
        if job.priority == Priority::Marketing as i32
            && let Some(held) = self
                .hold_for_quiet_hours(job, &message, first, &recipient, delivery)
                .await
        {
            return held;
        }
        // Take a token before claiming, so a rate-limited job waits in the stream
        // rather than as a claimed row.
        let start = match self.first_token(job, &message, &chain, delivery).await {
            Ok(start) => start,
            Err(outcome) => return outcome,
        };
        let claim = self.claim(&message, "").await;
        match claim {
            Ok(Claim::Claimed {
                attempts,
                locked_provider: None,
            }) => {
                let chain = Chain {
                    routes: &chain,
                    start,
                    first_token: FirstToken::Taken,
                };
                self.send(job, &message, attempts, chain, RouteLock::Free)
                    .await
            }
            Ok(Claim::Claimed {
                attempts,
                locked_provider: Some(name),
            }) => {
                // Rare paths are boxed so that they do not enlarge every job's task.
                Box::pin(self.send_locked(job, &message, attempts, &name, delivery)).await
            }
            Ok(Claim::OptedOut) => {
                tracing::info!(to = %mask_phone(&recipient), "recipient opted out; not sent");
                Outcome::OptedOut
            }
            // Only a job sent past its deadline is claimed so; it was not.
            Ok(Claim::PastDeadline) => Outcome::AlreadyHandled,
            Ok(Claim::Finished { status }) => {
                tracing::info!(%status, "job already handled; acknowledging without a call");
                Outcome::Finished { status }
            }
            Ok(Claim::HeldElsewhere { retry_in }) => {
                tracing::info!("job held by another delivery; looking again later");
                held_elsewhere(retry_in)
            }
            Ok(Claim::LeaseExpired { provider }) => {
                Box::pin(self.take_over_or_abandon(job, &message, &provider, delivery)).await
            }
            Err(error) => self.store_failure(&error, delivery),
        }
    }

    /// The batched claim for a fresh job; the per-job path for one whose row
    /// exists (a retry, a released hold, a redelivery).
    /// `expired`: the reason the job is past its deadline, or empty. The
    /// request is built again for the per-job path rather than cloned for
    /// every job.
    async fn claim(&self, message: &NewMessage<'_>, expired: &str) -> Result<Claim, StoreError> {
        let request = || ClaimRequest {
            expired: expired.to_owned(),
            ..message.to_request()
        };
        match self.writers.claim(request()).await {
            Ok(Some(claim)) => Ok(claim),
            Ok(None) => store::claim(&self.pool, &request(), self.settings.claim_lease).await,
            Err(error) => Err(error),
        }
    }

    /// Records a job that reached the sender past its deadline as `expired`,
    /// through the same (batched) claim as a job to send, so no call is made
    /// and nothing else is written for it.
    async fn expire(&self, job: &SmsJob, message: &NewMessage<'_>, delivery: u32) -> Outcome {
        let reason = expiry_reason(job);
        match self.claim(message, &reason).await {
            Ok(Claim::PastDeadline) => {
                tracing::info!(to = %mask_phone(message.recipient), reason = %reason, "sms past its deadline; recorded expired, not sent");
                Outcome::Expired { reason }
            }
            Ok(Claim::OptedOut) => Outcome::OptedOut,
            Ok(Claim::Finished { status }) => Outcome::Finished { status },
            Ok(Claim::HeldElsewhere { retry_in }) => held_elsewhere(retry_in),
            // The holder died during its call: the SMS may have gone out, so the
            // row says unknown; a deadline never makes a job be sent again.
            Ok(Claim::LeaseExpired { .. }) => self.abandon(&job.job_id, delivery).await,
            // Not answered to an expired request; never send one anyway.
            Ok(Claim::Claimed { .. }) => Outcome::AlreadyHandled,
            Err(error) => self.store_failure(&error, delivery),
        }
    }

    /// The route has no budget for `wait`: the job leaves the stream and waits
    /// in `held_jobs` (its row queued, saying why) until its slot.
    async fn park(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        route: &RouteInfo,
        wait: Duration,
        delivery: u32,
    ) -> Outcome {
        let release_at = Utc::now() + wait;
        let why = match route.rate_limit {
            Some(limit) => format!("the route's send rate ({limit}/s)"),
            None => "the provider's request to slow down".to_owned(),
        };
        let hold = HoldRequest {
            message: message.to_request(),
            outcome: "throttled",
            reason: format!(
                "waiting for {why} on route {}; queued until {}",
                route.name,
                release_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            release_at,
            job: job.encode_to_vec(),
            trace_context: foco_runtime::telemetry::propagation::current_context_text(),
        };
        match self.writers.hold(hold).await {
            Ok(true) => Outcome::Parked { until: release_at },
            // Past queued (a duplicate of a job already handled): it waits in the
            // stream, and claiming then tells what became of it.
            Ok(false) => Outcome::Throttled { delay: wait },
            Err(error) => self.store_failure(&error, delivery),
        }
    }

    /// No provider of the chain can be called now: open breakers wait (nothing
    /// claimed); routes that cannot work as configured fail the job.
    async fn nothing_usable(
        &self,
        chain: &[std::sync::Arc<RouteInfo>],
        message: &NewMessage<'_>,
        delivery: u32,
    ) -> Outcome {
        let shortest_open = chain
            .iter()
            .filter_map(|info| self.breakers.open_for(&info.key))
            .min();
        if let Some(open_for) = shortest_open {
            tracing::info!(
                route = message.provider,
                "every provider of the route has an open circuit breaker; waiting"
            );
            return Outcome::Throttled {
                delay: spread(open_for),
            };
        }
        let reason = chain
            .iter()
            .find_map(|info| info.provider.as_ref().err())
            .map_or_else(|| NO_ROUTE_REASON.to_owned(), ToString::to_string);
        self.reject(message, &reason, delivery).await
    }

    /// The previous holder of the job died during its provider call. An
    /// idempotent provider is called again with the same key (same route, no
    /// failover); otherwise the job is recorded unknown and not resent.
    async fn take_over_or_abandon(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        route_name: &str,
        delivery: u32,
    ) -> Outcome {
        let info = match self
            .route_table
            .named(&self.routes, &job.account_id, route_name)
            .await
        {
            Ok(info) => info,
            Err(error) => {
                tracing::warn!(error = %error, "provider route lookup failed; retrying later");
                return deferred(delivery);
            }
        };
        let lease = self.settings.claim_lease;
        if let Some(info) = info.filter(|info| {
            info.provider
                .as_ref()
                .is_ok_and(|provider| provider.repeat() == Repeat::Deduplicated)
        }) {
            return match store::take_over(&self.pool, &job.job_id, lease).await {
                Ok(Some((attempts, _))) => {
                    tracing::warn!(route = %info.name, "job was abandoned during a provider call; calling the idempotent provider again with the same key");
                    let chain = Chain {
                        routes: std::slice::from_ref(&info),
                        start: 0,
                        first_token: FirstToken::ToTake,
                    };
                    self.send(job, message, attempts, chain, RouteLock::Locked)
                        .await
                }
                Ok(None) => Outcome::HeldElsewhere {
                    delay: Duration::from_millis(250),
                },
                Err(error) => self.store_failure(&error, delivery),
            };
        }
        self.abandon(&job.job_id, delivery).await
    }

    /// Records a job whose holder died during its provider call as unknown:
    /// it may have been sent, so it is not sent again.
    async fn abandon(&self, job_id: &str, delivery: u32) -> Outcome {
        match store::mark_abandoned(&self.pool, job_id, self.settings.claim_lease).await {
            Ok(true) => {
                tracing::warn!(
                    "job was abandoned during a provider call; recorded as unknown, not resent"
                );
                Outcome::Unknown
            }
            // Another delivery moved the row first: look at it again.
            Ok(false) => Outcome::HeldElsewhere {
                delay: Duration::from_millis(250),
            },
            Err(error) => self.store_failure(&error, delivery),
        }
    }

    /// A job whose writes fail the same way every time (a NUL byte in its body,
    /// a value over a Postgres limit), or keep failing past `max_deliveries`: its
    /// row is recorded `failed` with the reason, from a copy with control
    /// characters removed and fields cut to size, and the job leaves the stream.
    /// If even that cannot be written, Postgres itself is failing: the job stays.
    async fn record_unstorable(&self, job: &SmsJob, reason: &str, delivery: u32) -> Outcome {
        let Ok(account_id) = Uuid::parse_str(&job.account_id) else {
            return deferred(delivery);
        };
        let clean = |text: &str, limit: usize| -> String {
            text.chars()
                .filter(|character| !character.is_control() || *character == '\n')
                .take(limit)
                .collect()
        };
        let fields = [
            clean(&job.event_id, MAX_FIELD_LEN),
            clean(&job.source_id, MAX_FIELD_LEN),
            clean(&job.rule_id, MAX_FIELD_LEN),
            clean(&job.to, MAX_FIELD_LEN),
            clean(&job.body, MAX_BODY_LEN),
            clean(&job.provider, MAX_FIELD_LEN),
            clean(&job.from, MAX_FIELD_LEN),
        ];
        let reason = clean(reason, MAX_BODY_LEN);
        let message = NewMessage {
            job_id: &job.job_id,
            account_id,
            event_id: &fields[0],
            source_id: &fields[1],
            rule_id: &fields[2],
            recipient: &fields[3],
            body: &fields[4],
            provider: &fields[5],
            sender_id: &fields[6],
            priority: i16::try_from(job.priority).unwrap_or_default(),
        };
        match store::record_rejected(&self.pool, &message, &reason).await {
            Ok(true) => {
                tracing::warn!(reason = %reason, "job cannot be stored; recorded as failed");
                Outcome::Failed { reason }
            }
            // Its row is past queued: that row says what became of it, and a
            // later delivery acts on it.
            Ok(false) => deferred(delivery),
            Err(StoreError::AccountMissing) => Outcome::Poison {
                reason: "the job's account no longer exists".to_owned(),
            },
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "could not record a job that cannot be stored; retrying later");
                deferred(delivery)
            }
        }
    }

    async fn reject(&self, message: &NewMessage<'_>, reason: &str, delivery: u32) -> Outcome {
        match store::record_rejected(&self.pool, message, reason).await {
            Ok(_) => {
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
            StoreError::Database(database)
                if foco_runtime::postgres::is_deterministic(database) =>
            {
                Outcome::Unstorable {
                    reason: format!("the job cannot be stored: {}", error_chain(error)),
                }
            }
            StoreError::Database(_)
                if out_of_deliveries(delivery, self.settings.max_deliveries) =>
            {
                Outcome::Unstorable {
                    reason: format!(
                        "gave up after {delivery} deliveries failing to store the job: {}",
                        error_chain(error)
                    ),
                }
            }
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

/// Whether the `delivery`-th delivery of a job whose writes keep failing is its
/// last: the job is then recorded as failed rather than retried again.
fn out_of_deliveries(delivery: u32, max_deliveries: u32) -> bool {
    max_deliveries > 0 && delivery >= max_deliveries
}

/// Another delivery holds the job's claim for `retry_in` more. The holder
/// usually finishes long before its lease runs out, so look again soon; a dead
/// holder's lease still expires on schedule.
fn held_elsewhere(retry_in: Duration) -> Outcome {
    Outcome::HeldElsewhere {
        delay: retry_in.min(HELD_ELSEWHERE_RECHECK) + Duration::from_millis(250),
    }
}

/// What an expired job's row says: when its validity ended, and since when it
/// was due.
fn expiry_reason(job: &SmsJob) -> String {
    let at = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms).map_or_else(
            || ms.to_string(),
            |at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        )
    };
    let mut reason = format!("expired: valid until {}", at(job.expires_at_ms));
    if job.due_at_ms > 0 {
        reason.push_str(&format!(" (due {})", at(job.due_at_ms)));
    }
    reason.push_str("; not sent");
    reason
}

/// A job whose ids no store can take is poison: its account id, when it is
/// not.
fn well_formed(job: &SmsJob) -> Result<Uuid, Outcome> {
    if job.job_id.is_empty() || job.job_id.len() > MAX_JOB_ID_LEN {
        return Err(Outcome::Poison {
            reason: format!("job id of {} bytes", job.job_id.len()),
        });
    }
    Uuid::parse_str(&job.account_id).map_err(|_| Outcome::Poison {
        reason: "account id is not a UUID".to_owned(),
    })
}

/// A route lookup failed (control unreachable): the job waits and comes back.
fn lookup_failed(error: &dyn std::fmt::Display, what: &str, delivery: u32) -> Outcome {
    tracing::warn!(error = %error, "{what} lookup failed; retrying later");
    deferred(delivery)
}

fn deferred(delivery: u32) -> Outcome {
    Outcome::Deferred {
        delay: retry::backoff(delivery.max(1)),
    }
}

/// Jobs that wait for the same window or pause do not all come back at once.
fn spread(wait: Duration) -> Duration {
    wait + wait.mul_f64(0.25 * rand::random::<f64>())
        + Duration::from_millis(rand::random_range(0..50))
}

pub use foco_runtime::error_chain;
