//! The provider calls of one claimed job: the route chain in order, failing over
//! only after a definite failure (the provider certainly did not take the
//! message), never after an unknown outcome; then the outcome is recorded
//! (batched) before the job is acknowledged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use foco_proto::v1::SmsJob;
use foco_runtime::telemetry::mask_phone;
use prost::Message as _;
use tracing::Instrument;

use super::{Handler, Outcome, error_chain};
use crate::limits::{DEFAULT_PAUSE, Permit};
use crate::providers::{Accepted, FailureKind, OutboundSms, ProviderOutcome, Repeat};
use crate::retry;
use crate::routing::{RouteInfo, RouteSource};
use crate::store::{self, NewMessage, OutcomeRecord, RouteLock, Status, Step, StoreError};

/// Why the chain ended without a definite answer.
enum Shortfall {
    /// Nothing was called (rate limits, open breakers): wait this long.
    NotCalled { wait: Duration },
    /// Providers failed transiently (or throttled us).
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// Providers refused for reasons of their own (credentials, no credit).
    ProviderSide { reason: String },
}

/// The routes a claimed job may be sent through: `routes` from `start`.
pub(super) struct Chain<'c> {
    pub routes: &'c [Arc<RouteInfo>],
    pub start: usize,
    pub first_token: FirstToken,
}

/// Whether the rate-limit token of the chain's first route was taken before
/// the claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FirstToken {
    Taken,
    ToTake,
}

/// What a provider's answer leaves to do.
enum AfterCall {
    /// The job's outcome is decided.
    Done(Outcome),
    /// Try the next route of the chain; this is why, if none is left.
    Next(Shortfall),
}

impl<R: RouteSource> Handler<R> {
    /// Calls the providers of `chain` in order until one gives a definite answer.
    pub(super) async fn send(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        attempts: u32,
        chain: Chain<'_>,
        lock: RouteLock,
    ) -> Outcome {
        let outbound = OutboundSms {
            job_id: job.job_id.clone(),
            account_id: job.account_id.clone(),
            event_id: job.event_id.clone(),
            to: message.recipient.to_owned(),
            from: job.from.clone(),
            body: job.body.clone(),
        };
        let mut row_provider = message.provider;
        let mut shortfall = Shortfall::NotCalled {
            wait: Duration::ZERO,
        };
        let mut calls = 0_u32;
        // Steps of calls that failed over, recorded with the final outcome.
        let mut earlier: Vec<String> = Vec::new();
        for (index, info) in chain.routes.iter().enumerate().skip(chain.start) {
            let Ok(provider) = &info.provider else {
                continue;
            };
            let first_pick = index == chain.start && chain.first_token == FirstToken::Taken;
            if !first_pick && let Err(wait) = self.gate(info, lock).await {
                shortfall = merge_wait(shortfall, wait);
                continue;
            }
            // The row names the provider being called, so that whoever finds the
            // claim abandoned knows which provider (and key) it concerns; writing
            // it also renews the lease for this call.
            if info.name != row_provider {
                match store::refresh_claim(&self.pool, &job.job_id, &info.name).await {
                    Ok(true) => row_provider = &info.name,
                    Ok(false) => return Outcome::AlreadyHandled,
                    Err(error) => {
                        // Not called yet: give the claim back, try again later.
                        return self
                            .give_back(job, row_provider, lock, &error_chain(&error))
                            .await;
                    }
                }
            }
            // A 429 that another job met after this one took its token pauses
            // this call too: nothing reaches the provider before its Retry-After.
            if let Some(left) = self.limits.paused_for(&info.key) {
                shortfall = merge_wait(shortfall, left);
                continue;
            }
            calls += 1;
            let started = Instant::now();
            let answer = scrubbed(
                info,
                provider
                    .send(&outbound)
                    .instrument(provider_call_span(provider.kind(), &info.name))
                    .await,
            );
            if let Some(route_calls) = &info.calls {
                route_calls.record(answer.label(), started.elapsed().as_secs_f64());
            }
            let call = Call {
                job,
                message,
                attempt: attempts,
                info,
                lock,
            };
            match self.after_call(call, answer, &mut earlier).await {
                AfterCall::Done(outcome) => return outcome,
                AfterCall::Next(why) => shortfall = why,
            }
        }
        let tally = Tally {
            attempt: attempts,
            calls,
            row_provider,
            lock,
            earlier,
        };
        self.shortfall(job, message, tally, shortfall).await
    }

    /// Before a route's call: its breaker and rate limit. `Err(wait)` when the
    /// route cannot be called now.
    async fn gate(&self, info: &RouteInfo, lock: RouteLock) -> Result<(), Duration> {
        if !lock.is_locked() && self.breakers.open_for(&info.key).is_some() {
            return Err(Duration::ZERO);
        }
        match self.limits.acquire(&info.key, info.rate_limit).await {
            Ok(Permit::Go) => Ok(()),
            Ok(Permit::Wait(wait)) => Err(wait),
            Err(error) => {
                tracing::warn!(error = %error_chain(&error), "rate limit state unavailable");
                Err(Duration::from_secs(1))
            }
        }
    }

    /// A provider's answer: the job's outcome, or the next route.
    async fn after_call(
        &self,
        call: Call<'_>,
        answer: ProviderOutcome,
        earlier: &mut Vec<String>,
    ) -> AfterCall {
        let Call {
            job,
            message,
            attempt,
            info,
            lock,
        } = call;
        let Ok(provider) = &info.provider else {
            return AfterCall::Next(Shortfall::NotCalled {
                wait: Duration::ZERO,
            });
        };
        match answer {
            ProviderOutcome::Sent(accepted) => {
                self.breakers.success(&info.key);
                AfterCall::Done(
                    self.sent(job, message, attempt, info, accepted, earlier)
                        .await,
                )
            }
            ProviderOutcome::Permanent {
                kind: FailureKind::OptedOut,
                reason,
            } => {
                self.breakers.success(&info.key);
                AfterCall::Done(
                    self.opted_out_at_provider(job, message, attempt, info, &reason, earlier)
                        .await,
                )
            }
            ProviderOutcome::Permanent { kind, reason } if kind.is_provider_side() => {
                self.note_failure(info, &reason, kind.as_str());
                earlier.push(Step::now(attempt, &info.name, kind.as_str(), &reason).to_json());
                AfterCall::Next(Shortfall::ProviderSide { reason })
            }
            ProviderOutcome::Permanent { kind, reason } => {
                // The provider works; the message cannot be sent.
                self.breakers.success(&info.key);
                let step = Step::now(attempt, &info.name, kind.as_str(), &reason).to_json();
                let mut record =
                    OutcomeRecord::new(&job.job_id, Status::Failed, steps(earlier, step));
                record.provider = info.name.clone();
                record.route_lock = lock;
                record.error = reason.clone();
                AfterCall::Done(
                    self.finish(
                        record,
                        Outcome::Failed { reason },
                        message,
                        provider.kind(),
                        attempt,
                    )
                    .await,
                )
            }
            ProviderOutcome::Transient {
                retry_after,
                reason,
                throttled: true,
            } => {
                let pause = retry_after.unwrap_or(DEFAULT_PAUSE);
                if let Err(error) = self.limits.pause(&info.key, pause, &reason).await {
                    tracing::warn!(error = %error_chain(&error), "route pause not shared");
                }
                tracing::warn!(route = %info.name, pause_ms = pause.as_millis() as u64, "provider throttled the route; pausing it");
                earlier.push(Step::now(attempt, &info.name, "throttled", &reason).to_json());
                AfterCall::Next(Shortfall::Transient {
                    reason,
                    retry_after: Some(pause),
                })
            }
            ProviderOutcome::Transient {
                retry_after,
                reason,
                throttled: false,
            } => {
                self.note_failure(info, &reason, "transient");
                earlier.push(Step::now(attempt, &info.name, "transient", &reason).to_json());
                AfterCall::Next(Shortfall::Transient {
                    reason,
                    retry_after,
                })
            }
            ProviderOutcome::Unknown { reason } => {
                self.note_failure(info, &reason, "unknown");
                let repeat = provider.repeat();
                AfterCall::Done(
                    self.unknown(job, message, attempt, info, reason, repeat, earlier)
                        .await,
                )
            }
        }
    }

    /// A job whose last call may have been accepted: only that route may be used.
    pub(super) async fn send_locked(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        attempts: u32,
        route_name: &str,
        delivery: u32,
    ) -> Outcome {
        match self
            .route_table
            .named(&self.routes, &job.account_id, route_name)
            .await
        {
            Ok(Some(info)) => {
                let chain = Chain {
                    routes: std::slice::from_ref(&info),
                    start: 0,
                    first_token: FirstToken::ToTake,
                };
                self.send(job, message, attempts, chain, RouteLock::Locked)
                    .await
            }
            Ok(None) => {
                let reason = "the provider route of an unknown outcome no longer exists; not resent elsewhere";
                let step = Step::now(attempts, route_name, "unknown", reason).to_json();
                let mut record = OutcomeRecord::new(&job.job_id, Status::Unknown, step);
                record.error = reason.to_owned();
                record.attempts_delta = -1;
                self.finish(record, Outcome::Unknown, message, "none", attempts)
                    .await
            }
            Err(error) => {
                tracing::warn!(error = %error, "provider route lookup failed; retrying later");
                let outcome = self
                    .give_back(job, route_name, RouteLock::Locked, "route lookup failed")
                    .await;
                match outcome {
                    Outcome::Retry { .. } => super::deferred(delivery),
                    other => other,
                }
            }
        }
    }

    fn note_failure(&self, info: &RouteInfo, reason: &str, what: &str) {
        if self.breakers.failure(&info.key, info.breaker) {
            tracing::warn!(route = %info.name, what, reason, "circuit breaker opened; failing over while it cools down");
        }
    }

    async fn sent(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        attempt: u32,
        info: &RouteInfo,
        accepted: Accepted,
        earlier: &[String],
    ) -> Outcome {
        let step = Step::now(attempt, &info.name, "sent", &accepted.provider_message_id).to_json();
        let mut record = OutcomeRecord::new(&job.job_id, Status::Sent, steps(earlier, step));
        record.provider = info.name.clone();
        record.provider_message_id = accepted.provider_message_id;
        // Where the provider does not say, the rule's own count stands in.
        let segments = if accepted.segments > 0 {
            accepted.segments
        } else {
            job.segments
        };
        record.segments = i32::try_from(segments).unwrap_or(i32::MAX);
        if let Some(price) = accepted.price {
            record.price = price.amount;
            record.price_currency = price.currency;
        }
        record.part_ids = accepted.part_ids;
        record.receipts_expected = info.provider.as_ref().map_or(true, |provider| {
            provider.provider_kind().spec().has_receipts()
        });
        let kind = info
            .provider
            .as_ref()
            .map_or("none", |provider| provider.kind());
        self.finish(record, Outcome::Sent, message, kind, attempt)
            .await
    }

    /// The provider says the recipient opted out: so does the account, at once.
    async fn opted_out_at_provider(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        attempt: u32,
        info: &RouteInfo,
        reason: &str,
        earlier: &[String],
    ) -> Outcome {
        if let Err(error) = store::add_opt_out(
            &self.pool,
            message.account_id,
            message.recipient,
            "provider",
            reason,
        )
        .await
        {
            tracing::warn!(error = %error_chain(&error), "could not record the provider's opt-out");
        }
        let step = Step::now(attempt, &info.name, "opted_out", reason).to_json();
        let mut record = OutcomeRecord::new(&job.job_id, Status::OptedOut, steps(earlier, step));
        record.provider = info.name.clone();
        record.error = reason.to_owned();
        let kind = info
            .provider
            .as_ref()
            .map_or("none", |provider| provider.kind());
        self.finish(record, Outcome::OptedOut, message, kind, attempt)
            .await
    }

    /// The call may have been accepted. An idempotent provider is called again
    /// later with the same key (through the same route only); any other leaves
    /// the job unknown.
    #[allow(clippy::too_many_arguments)]
    async fn unknown(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        attempt: u32,
        info: &RouteInfo,
        reason: String,
        repeat: Repeat,
        earlier: &[String],
    ) -> Outcome {
        let kind = info
            .provider
            .as_ref()
            .map_or("none", |provider| provider.kind());
        let retry = repeat == Repeat::Deduplicated && attempt < self.settings.max_attempts;
        let status = if retry {
            Status::Queued
        } else {
            Status::Unknown
        };
        let step = Step::now(attempt, &info.name, "unknown", &reason).to_json();
        let mut record = OutcomeRecord::new(&job.job_id, status, steps(earlier, step));
        record.provider = info.name.clone();
        record.route_lock = RouteLock::Locked;
        record.error = reason;
        let outcome = if retry {
            Outcome::Retry {
                delay: retry::next_delay(attempt, None),
            }
        } else {
            Outcome::Unknown
        };
        self.finish(record, outcome, message, kind, attempt).await
    }

    /// No provider gave a definite answer: retry later, or give up as a dead letter.
    async fn shortfall(
        &self,
        job: &SmsJob,
        message: &NewMessage<'_>,
        tally: Tally<'_>,
        shortfall: Shortfall,
    ) -> Outcome {
        let Tally {
            attempt,
            calls,
            row_provider,
            lock,
            earlier,
        } = tally;
        let (reason, retry_after, provider_side) = match shortfall {
            Shortfall::NotCalled { wait } => {
                return match self
                    .give_back(job, row_provider, lock, "no provider could be called now")
                    .await
                {
                    Outcome::Retry { .. } => Outcome::Throttled {
                        delay: super::spread(wait.max(Duration::from_millis(100))),
                    },
                    other => other,
                };
            }
            Shortfall::Transient {
                reason,
                retry_after,
            } => (reason, retry_after, false),
            Shortfall::ProviderSide { reason } => (reason, None, true),
        };
        debug_assert!(calls > 0);
        let too_old = sendable_since_ms(job).is_some_and(|since| {
            chrono::Utc::now().timestamp_millis() - since
                > i64::try_from(self.settings.max_job_age.as_millis()).unwrap_or(i64::MAX)
        });
        if provider_side || too_old || attempt >= self.settings.max_attempts {
            let why = if provider_side {
                reason.clone()
            } else if too_old {
                format!("gave up after {attempt} attempts (job too old): {reason}")
            } else {
                format!("gave up after {attempt} attempts: {reason}")
            };
            let step = Step::now(attempt, row_provider, "dead_lettered", &why).to_json();
            let mut record = OutcomeRecord::new(&job.job_id, Status::Failed, steps(&earlier, step));
            record.provider = row_provider.to_owned();
            record.error = why.clone();
            return self.dead_letter(job, record, message, why, attempt).await;
        }
        // Each failed call is a step already.
        let step = match earlier.split_last() {
            Some((last, before)) => steps(before, last.clone()),
            None => Step::now(attempt, row_provider, "transient", &reason).to_json(),
        };
        let mut record = OutcomeRecord::new(&job.job_id, Status::Queued, step);
        record.provider = row_provider.to_owned();
        record.route_lock = lock;
        record.error = reason;
        let outcome = Outcome::Retry {
            delay: retry::next_delay(attempt, retry_after),
        };
        self.finish(record, outcome, message, "chain", attempt)
            .await
    }

    /// Gives the claim back without counting an attempt (nothing was called).
    async fn give_back(
        &self,
        job: &SmsJob,
        provider: &str,
        lock: RouteLock,
        reason: &str,
    ) -> Outcome {
        let step = Step::now(0, provider, "throttled", reason).to_json();
        let mut record = OutcomeRecord::new(&job.job_id, Status::Queued, step);
        record.provider = provider.to_owned();
        record.route_lock = lock;
        record.attempts_delta = -1;
        record.error = reason.to_owned();
        match self.record_with_retries(record).await {
            Ok(_) => Outcome::Retry {
                delay: Duration::from_secs(1),
            },
            Err(error) => {
                tracing::error!(error = %error_chain(&error), "could not give a claim back");
                Outcome::Deferred {
                    delay: self.settings.claim_lease + Duration::from_secs(1),
                }
            }
        }
    }

    async fn dead_letter(
        &self,
        job: &SmsJob,
        record: OutcomeRecord,
        message: &NewMessage<'_>,
        reason: String,
        attempt: u32,
    ) -> Outcome {
        let encoded = job.encode_to_vec();
        let mut pause = Duration::from_millis(100);
        for tries in 1.. {
            match store::dead_letter(&self.pool, &record, &encoded).await {
                Ok(held) => {
                    if !held {
                        tracing::warn!(
                            "job row moved on during the call; dead letter not recorded"
                        );
                    }
                    tracing::warn!(to = %mask_phone(message.recipient), attempts = attempt, error = %reason, "sms dead-lettered");
                    return Outcome::DeadLettered { reason };
                }
                Err(StoreError::Database(error)) if tries < 4 => {
                    tracing::warn!(error = %error, "dead letter write failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "could not record the dead letter");
                    break;
                }
            }
        }
        Outcome::Deferred {
            delay: self.settings.claim_lease + Duration::from_secs(1),
        }
    }

    /// Records the outcome (batched), then says how to acknowledge.
    async fn finish(
        &self,
        record: OutcomeRecord,
        outcome: Outcome,
        message: &NewMessage<'_>,
        provider_kind: &'static str,
        attempt: u32,
    ) -> Outcome {
        let error = record.error.clone();
        match self.record_with_retries(record).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("job row moved on during the call; outcome not recorded");
            }
            Err(error) => {
                // The claim stays `sending`; a redelivery after the lease decides
                // (unknown, or the same key again for an idempotent provider).
                tracing::error!(error = %error_chain(&error), "could not record the provider outcome");
                return Outcome::Deferred {
                    delay: self.settings.claim_lease + Duration::from_secs(1),
                };
            }
        }
        log_outcome(&outcome, message.recipient, provider_kind, attempt, &error);
        outcome
    }

    /// Batched; the writer itself tries a failing batch again, so a brief
    /// Postgres hiccup does not turn a known outcome into `unknown`.
    async fn record_with_retries(&self, record: OutcomeRecord) -> Result<bool, StoreError> {
        self.writers.record(record).await
    }
}

/// A provider's answer with the route's credential values taken out of its
/// reason (some providers echo what they were sent in their error bodies).
/// The span of one call to a provider's API, a child of the job's span. Only
/// created when the job is part of an exported trace: it exists for the trace,
/// and the job's span already carries what the logs need.
fn provider_call_span(kind: &str, route: &str) -> tracing::Span {
    if !foco_runtime::telemetry::propagation::in_trace() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "provider.call",
        otel.kind = "client",
        provider = kind,
        route = route,
    )
}

fn scrubbed(info: &RouteInfo, answer: ProviderOutcome) -> ProviderOutcome {
    match answer {
        ProviderOutcome::Sent(accepted) => ProviderOutcome::Sent(accepted),
        ProviderOutcome::Transient {
            retry_after,
            reason,
            throttled,
        } => ProviderOutcome::Transient {
            retry_after,
            reason: info.scrub(reason),
            throttled,
        },
        ProviderOutcome::Permanent { kind, reason } => ProviderOutcome::Permanent {
            kind,
            reason: info.scrub(reason),
        },
        ProviderOutcome::Unknown { reason } => ProviderOutcome::Unknown {
            reason: info.scrub(reason),
        },
    }
}

/// One provider call of a job, for [`Handler::after_call`].
struct Call<'a> {
    job: &'a SmsJob,
    message: &'a NewMessage<'a>,
    attempt: u32,
    info: &'a RouteInfo,
    lock: RouteLock,
}

/// What the call loop leaves for `shortfall`.
struct Tally<'a> {
    attempt: u32,
    calls: u32,
    row_provider: &'a str,
    lock: RouteLock,
    earlier: Vec<String>,
}

/// `last` alone, or a JSON array of `earlier` steps and `last` (`||` appends the
/// elements of an array to the history).
fn steps(earlier: &[String], last: String) -> String {
    if earlier.is_empty() {
        return last;
    }
    let mut array = String::from("[");
    for step in earlier {
        array.push_str(step);
        array.push(',');
    }
    array.push_str(&last);
    array.push(']');
    array
}

fn merge_wait(shortfall: Shortfall, wait: Duration) -> Shortfall {
    match shortfall {
        Shortfall::NotCalled { wait: current } if current.is_zero() || wait < current => {
            Shortfall::NotCalled { wait }
        }
        other => other,
    }
}

fn log_outcome(
    outcome: &Outcome,
    recipient: &str,
    provider: &'static str,
    attempts: u32,
    error: &str,
) {
    // A sent SMS is counted by the metrics and recorded in its row: at thousands
    // a second, a log line each would cost more than the send. Only what an
    // operator acts on is logged at info and above.
    match outcome {
        Outcome::Sent => {
            tracing::debug!(to = %mask_phone(recipient), provider, attempts, "sms sent")
        }
        Outcome::Retry { delay } => {
            tracing::warn!(to = %mask_phone(recipient), provider, attempts, error, retry_in_ms = delay.as_millis() as u64, "provider failed transiently; will retry");
        }
        Outcome::Failed { .. } => {
            tracing::warn!(to = %mask_phone(recipient), provider, attempts, error, "sms failed")
        }
        Outcome::OptedOut => {
            tracing::info!(to = %mask_phone(recipient), provider, "recipient opted out at the provider")
        }
        Outcome::Unknown => {
            tracing::warn!(to = %mask_phone(recipient), provider, attempts, error, "sms outcome unknown; not resent")
        }
        _ => {}
    }
}

/// Since when a job could be sent: a delayed job's age counts from its due
/// time, not from when it was planned (a `delay: 5d` job is not "too old" on
/// its first failed call).
fn sendable_since_ms(job: &SmsJob) -> Option<i64> {
    let since = job.created_at_ms.max(job.due_at_ms);
    (since > 0).then_some(since)
}
