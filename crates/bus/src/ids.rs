//! Stable message ids. A retried publish carries the same id, so JetStream drops the
//! copy inside its duplicate window and Postgres unique keys catch it after that.

use sha2::{Digest, Sha256};

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefix every part so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let hash = hasher.finalize();
    hex::encode(&hash[..16])
}

/// Event id when the sender supplied its own id (Stripe's `evt_…`, a `webhook-id`).
pub fn event_id_from_external(source_id: &str, external_id: &str) -> String {
    format!(
        "evt_{}",
        digest(&[b"ext", source_id.as_bytes(), external_id.as_bytes()])
    )
}

/// Event id when the sender supplied none: the same body to the same source is the
/// same event.
pub fn event_id_from_body(source_id: &str, body: &[u8]) -> String {
    format!("evt_{}", digest(&[b"body", source_id.as_bytes(), body]))
}

/// SMS job id: one job per (event, rule, recipient), whatever redelivers the event.
pub fn job_id(event_id: &str, rule_id: &str, recipient: &str) -> String {
    format!(
        "job_{}",
        digest(&[
            event_id.as_bytes(),
            rule_id.as_bytes(),
            recipient.as_bytes()
        ])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        assert_eq!(
            event_id_from_external("s", "e1"),
            event_id_from_external("s", "e1")
        );
        assert_ne!(
            event_id_from_external("s", "e1"),
            event_id_from_external("s2", "e1")
        );
        assert_ne!(
            event_id_from_body("s", b"x"),
            event_id_from_external("s", "x")
        );
        assert_ne!(job_id("ab", "c", "r"), job_id("a", "bc", "r"));
        assert_eq!(job_id("e", "r", "+1").len(), 4 + 32);
    }
}
