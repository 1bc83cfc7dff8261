//! Sending due deliveries. Each round takes, for every endpoint with nothing
//! in flight, up to `per_endpoint` of its due deliveries (oldest first), and
//! pushes their due time past the attempt's timeout (so another replica does
//! not take them, and a worker that dies mid-attempt leaves them due again).
//! Every attempt runs in its own task under one global bound: an endpoint that
//! is slow or dead holds at most `per_endpoint` of the slots, so other
//! endpoints' (and other accounts') deliveries keep going.
//!
//! After an attempt: its row in `endpoint_attempts`; the delivery succeeded
//! (2xx), failed for good (out of attempts), or is due again after the next
//! step of the retry schedule; the endpoint's `failing_since` is cleared by a
//! success, set by the first failure, and an endpoint failing for longer than
//! `disable_after` is disabled with the reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::{PgPool, Row};
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::WebhookSettings;
use super::signature;
use crate::crypto::SecretSealer;

/// The first bytes of an answer's body kept with the attempt.
const MAX_RESPONSE_BYTES: usize = 1024;

const TAKE_DUE: &str = "WITH due AS ( \
       SELECT endpoint_id, id FROM ( \
         SELECT d.endpoint_id, d.id, \
                row_number() OVER (PARTITION BY d.endpoint_id ORDER BY d.next_attempt_at, d.created_at) AS place \
         FROM endpoint_deliveries d JOIN endpoints e ON e.id = d.endpoint_id AND e.enabled \
         WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND NOT (d.endpoint_id = ANY ($1)) \
       ) ranked WHERE place <= $2 LIMIT $3) \
     UPDATE endpoint_deliveries d \
       SET next_attempt_at = now() + make_interval(secs => $4), updated_at = now() \
     FROM due, endpoints e \
     WHERE d.endpoint_id = due.endpoint_id AND d.id = due.id AND e.id = d.endpoint_id \
       AND d.state = 'pending' AND d.next_attempt_at <= now() \
     RETURNING d.endpoint_id, d.id, d.payload, d.attempts, e.url, e.secret_sealed, \
       CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret_sealed END AS previous_sealed";

const RECORD_ATTEMPT: &str = "INSERT INTO endpoint_attempts \
       (endpoint_id, delivery_id, status_code, response, latency_ms) VALUES ($1, $2, $3, $4, $5)";

/// `$3`: succeeded; `$4`: seconds until the next attempt, or NULL when there
/// is none (the delivery failed for good).
const SETTLE_DELIVERY: &str = "UPDATE endpoint_deliveries SET \
       attempts = attempts + 1, \
       state = CASE WHEN $3 THEN 'succeeded' WHEN $4::float8 IS NULL THEN 'failed' ELSE 'pending' END, \
       next_attempt_at = CASE WHEN $3 OR $4::float8 IS NULL THEN next_attempt_at \
                              ELSE now() + make_interval(secs => $4) END, \
       updated_at = now() \
     WHERE endpoint_id = $1 AND id = $2 AND state = 'pending'";

const ENDPOINT_SUCCEEDED: &str =
    "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL";

/// Starts or continues a run of failures; disables an endpoint whose run is
/// longer than `$2` seconds, with `$3` (the last failure) in the reason.
const ENDPOINT_FAILED: &str = "UPDATE endpoints SET \
       failing_since = COALESCE(failing_since, now()), \
       enabled = CASE WHEN failing_since < now() - make_interval(secs => $2) THEN false ELSE enabled END, \
       disabled_reason = CASE WHEN enabled AND failing_since < now() - make_interval(secs => $2) \
         THEN 'every delivery failed since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
              || '; last: ' || $3 \
         ELSE disabled_reason END \
     WHERE id = $1 \
     RETURNING enabled";

struct Due {
    endpoint_id: Uuid,
    id: String,
    payload: String,
    attempts: i32,
    url: String,
    secret_sealed: Vec<u8>,
    previous_sealed: Option<Vec<u8>>,
}

pub(super) struct Dispatcher {
    pub pool: PgPool,
    pub http: reqwest::Client,
    pub sealer: Arc<SecretSealer>,
    pub settings: WebhookSettings,
    pub wake: Arc<Notify>,
}

impl Dispatcher {
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.max_in_flight));
        let busy: Arc<Mutex<HashMap<Uuid, usize>>> = Arc::default();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            while tasks.try_join_next().is_some() {}
            let free = slots.available_permits();
            let taken = if free == 0 {
                Ok(Vec::new())
            } else {
                let busy_now: Vec<Uuid> = busy.lock().expect("busy map").keys().copied().collect();
                this.take_due(&busy_now, free).await
            };
            let due = match taken {
                Ok(due) => due,
                Err(error) => {
                    tracing::warn!(error = %error, "reading due status webhooks failed; trying again");
                    Vec::new()
                }
            };
            let took_any = !due.is_empty();
            for delivery in due {
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    break;
                };
                *busy
                    .lock()
                    .expect("busy map")
                    .entry(delivery.endpoint_id)
                    .or_default() += 1;
                let this = this.clone();
                let busy = busy.clone();
                tasks.spawn(async move {
                    let endpoint_id = delivery.endpoint_id;
                    this.attempt(delivery).await;
                    {
                        let mut busy = busy.lock().expect("busy map");
                        if let Some(count) = busy.get_mut(&endpoint_id) {
                            *count -= 1;
                            if *count == 0 {
                                busy.remove(&endpoint_id);
                            }
                        }
                    }
                    drop(permit);
                    this.wake.notify_one();
                });
            }
            if took_any && slots.available_permits() > 0 {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = this.wake.notified() => {}
                () = tokio::time::sleep(this.settings.poll_interval) => {}
            }
        }
        // In-flight attempts finish (each is bounded by the request timeout);
        // one cut off is due again once its pushed-back due time passes.
        let drain = async { while tasks.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(this.settings.request_timeout, drain).await;
    }

    async fn take_due(&self, busy: &[Uuid], limit: usize) -> Result<Vec<Due>, sqlx::Error> {
        let lease = self.settings.request_timeout.as_secs_f64() * 2.0 + 5.0;
        let rows = sqlx::query(TAKE_DUE)
            .bind(busy)
            .bind(i64::try_from(self.settings.per_endpoint).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(lease)
            .fetch_all(&self.pool)
            .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Due {
                    endpoint_id: row.try_get("endpoint_id")?,
                    id: row.try_get("id")?,
                    payload: row.try_get("payload")?,
                    attempts: row.try_get("attempts")?,
                    url: row.try_get("url")?,
                    secret_sealed: row.try_get("secret_sealed")?,
                    previous_sealed: row.try_get("previous_sealed")?,
                })
            })
            .collect()
    }

    /// One POST and what it leaves in Postgres.
    async fn attempt(&self, delivery: Due) {
        let started = Instant::now();
        let answer = self.post(&delivery).await;
        let latency_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let (status_code, response, succeeded) = match answer {
            Ok((status, body)) => (i32::from(status), body, (200..300).contains(&status)),
            Err(reason) => (0, reason, false),
        };
        // Attempts counts this one: the schedule's next step, if any is left.
        let attempts_made = usize::try_from(delivery.attempts).unwrap_or(0) + 1;
        let next_in = (!succeeded)
            .then(|| self.settings.retry_schedule.get(attempts_made - 1))
            .flatten()
            .map(Duration::as_secs_f64);
        if let Err(error) = self
            .settle(
                &delivery,
                status_code,
                &response,
                latency_ms,
                succeeded,
                next_in,
            )
            .await
        {
            // The delivery is due again once its pushed-back due time passes.
            tracing::warn!(error = %error, delivery_id = %delivery.id, "recording a status webhook attempt failed");
        }
    }

    async fn settle(
        &self,
        delivery: &Due,
        status_code: i32,
        response: &str,
        latency_ms: i32,
        succeeded: bool,
        next_in: Option<f64>,
    ) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query(RECORD_ATTEMPT)
            .bind(delivery.endpoint_id)
            .bind(&delivery.id)
            .bind(status_code)
            .bind(response)
            .bind(latency_ms)
            .execute(&mut *transaction)
            .await?;
        sqlx::query(SETTLE_DELIVERY)
            .bind(delivery.endpoint_id)
            .bind(&delivery.id)
            .bind(succeeded)
            .bind(next_in)
            .execute(&mut *transaction)
            .await?;
        if succeeded {
            sqlx::query(ENDPOINT_SUCCEEDED)
                .bind(delivery.endpoint_id)
                .execute(&mut *transaction)
                .await?;
        } else {
            let last = if status_code == 0 {
                response.to_owned()
            } else {
                format!("HTTP {status_code}")
            };
            let enabled: Option<bool> = sqlx::query_scalar(ENDPOINT_FAILED)
                .bind(delivery.endpoint_id)
                .bind(self.settings.disable_after.as_secs_f64())
                .bind(last)
                .fetch_optional(&mut *transaction)
                .await?;
            if enabled == Some(false) {
                tracing::warn!(endpoint_id = %delivery.endpoint_id, "status webhook endpoint disabled: it failed for too long");
            }
        }
        transaction.commit().await
    }

    /// The answer's status and the start of its body, or why there was none.
    async fn post(&self, delivery: &Due) -> Result<(u16, String), String> {
        let mut keys = Vec::with_capacity(2);
        for sealed in std::iter::once(&delivery.secret_sealed).chain(&delivery.previous_sealed) {
            let secret = self
                .sealer
                .open_string(delivery.endpoint_id, sealed)
                .map_err(|_| "the endpoint's secret could not be read".to_owned())?;
            keys.push(
                signature::secret_key(&secret)
                    .ok_or_else(|| "the endpoint's secret is malformed".to_owned())?,
            );
        }
        let url = url::Url::parse(&delivery.url).map_err(|_| "invalid URL".to_owned())?;
        foco_outbound::guard::check_url(&url, self.settings.allow_private_hosts)
            .map_err(|refused| refused.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let body = delivery.payload.as_bytes();
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &delivery.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature::signature_header(&keys, &delivery.id, timestamp, body),
            )
            .body(delivery.payload.clone())
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) if foco_outbound::guard::is_blocked(&error) => {
                return Err(
                    "host resolves only to private, loopback or link-local addresses".to_owned(),
                );
            }
            Err(error) if error.is_timeout() => return Err("timed out".to_owned()),
            Err(error) if error.is_connect() => return Err("connection failed".to_owned()),
            Err(_) => return Err("request failed".to_owned()),
        };
        let status = response.status().as_u16();
        let mut kept = Vec::new();
        let mut response = response;
        while kept.len() < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => kept.extend_from_slice(&chunk),
                _ => break,
            }
        }
        kept.truncate(MAX_RESPONSE_BYTES);
        Ok((status, String::from_utf8_lossy(&kept).into_owned()))
    }
}
