//! Event samples for the rule editor's preview: a few recent events of each
//! source as they arrived, since the events themselves are not kept (FOCO_EVENTS
//! is a work queue). Best effort and off the event's path: an event is offered
//! without waiting, at most one per source every `SAMPLE_EVERY` is taken, and
//! one task writes them through a small bounded channel (a full channel drops
//! the sample). Each source has `SLOTS_PER_SOURCE` rows used in turn, so what
//! is kept stays bounded; the scheduler prunes samples older than 7 days.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use foco_proto::v1::EventEnvelope;
use tokio::sync::mpsc;
use uuid::Uuid;

/// At most one sample of a source this often.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);
/// Rows kept per source.
pub const SLOTS_PER_SOURCE: i16 = 5;
/// A preview payload's limit in control: larger bodies are not sampled.
const MAX_SAMPLE_PAYLOAD: usize = 256 * 1024;
/// Samples waiting for the writer; more are dropped.
const QUEUE: usize = 64;

struct Sample {
    account_id: Uuid,
    source_id: String,
    slot: i16,
    event_id: String,
    event_type: String,
    headers: serde_json::Value,
    payload: String,
    received_at: DateTime<Utc>,
}

/// Per source: when the last sample was taken and the slot it used.
#[derive(Default)]
struct Taken {
    by_source: HashMap<String, (Instant, i16)>,
}

impl Taken {
    /// The slot for a sample of `source` now, or `None` when one was taken
    /// less than `SAMPLE_EVERY` ago.
    fn slot_for(&mut self, source: &str, now: Instant) -> Option<i16> {
        match self.by_source.get_mut(source) {
            Some((at, _)) if now.duration_since(*at) < SAMPLE_EVERY => None,
            Some((at, slot)) => {
                *at = now;
                *slot = (*slot + 1) % SLOTS_PER_SOURCE;
                Some(*slot)
            }
            None => {
                self.by_source.insert(source.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Takes samples of events and hands them to the writer task.
#[derive(Clone)]
pub struct Sampler {
    queue: mpsc::Sender<Sample>,
    taken: Arc<Mutex<Taken>>,
}

impl Sampler {
    /// Starts the writer task; it ends when every `Sampler` is dropped.
    pub fn start(pool: sqlx::PgPool) -> Self {
        let (queue, samples) = mpsc::channel(QUEUE);
        tokio::spawn(write_samples(pool, samples));
        Self {
            queue,
            taken: Arc::new(Mutex::new(Taken::default())),
        }
    }

    /// Offers an event; never waits.
    pub fn offer(&self, event: &EventEnvelope) {
        if event.payload.len() > MAX_SAMPLE_PAYLOAD {
            return;
        }
        // The throttle first: an event not sampled costs one map lookup.
        let slot = {
            let mut taken = self
                .taken
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            taken.slot_for(&event.source_id, Instant::now())
        };
        let Some(slot) = slot else {
            return;
        };
        let Ok(account_id) = Uuid::parse_str(&event.account_id) else {
            return;
        };
        let Ok(payload) = std::str::from_utf8(&event.payload) else {
            return;
        };
        let sample = Sample {
            account_id,
            source_id: event.source_id.clone(),
            slot,
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            headers: serde_json::to_value(&event.headers).unwrap_or_default(),
            payload: payload.to_owned(),
            received_at: DateTime::from_timestamp_millis(event.received_at_ms)
                .filter(|_| event.received_at_ms > 0)
                .unwrap_or_else(Utc::now),
        };
        // A full queue means Postgres is slow: the preview can do without.
        let _ = self.queue.try_send(sample);
    }
}

async fn write_samples(pool: sqlx::PgPool, mut samples: mpsc::Receiver<Sample>) {
    while let Some(sample) = samples.recv().await {
        let written = sqlx::query(
            "INSERT INTO event_samples (account_id, source_id, slot, event_id, event_type, headers, payload, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (source_id, slot) DO UPDATE SET
                 account_id = EXCLUDED.account_id, event_id = EXCLUDED.event_id,
                 event_type = EXCLUDED.event_type, headers = EXCLUDED.headers,
                 payload = EXCLUDED.payload, received_at = EXCLUDED.received_at",
        )
        .bind(sample.account_id)
        .bind(&sample.source_id)
        .bind(sample.slot)
        .bind(&sample.event_id)
        .bind(&sample.event_type)
        .bind(&sample.headers)
        .bind(&sample.payload)
        .bind(sample.received_at)
        .execute(&pool)
        .await;
        if let Err(error) = written {
            tracing::warn!(error = %foco_runtime::error_chain(&error), "event sample not stored");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_sampled_once_per_interval_in_turning_slots() {
        let mut taken = Taken::default();
        let start = Instant::now();
        assert_eq!(taken.slot_for("a", start), Some(0));
        assert_eq!(taken.slot_for("a", start + Duration::from_secs(1)), None);
        assert_eq!(
            taken.slot_for("b", start),
            Some(0),
            "each source on its own"
        );
        let mut slots = Vec::new();
        for step in 1..=SLOTS_PER_SOURCE {
            let at = start + SAMPLE_EVERY * u32::try_from(step).unwrap();
            slots.push(taken.slot_for("a", at).unwrap());
        }
        assert_eq!(slots, [1, 2, 3, 4, 0]);
    }
}
