//! Stable message ids. A retried publish carries the same id, so JetStream drops the
//! copy inside its duplicate window and Postgres unique keys catch it after that.

use sha2::{Digest, Sha256};

/// `prefix` followed by the first 16 bytes of a SHA-256 over the parts, in hex.
fn prefixed_digest(prefix: &str, parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        // Length-prefix every part so ("ab","c") and ("a","bc") differ.
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let hash = hasher.finalize();
    let mut hex_digits = [0u8; 32];
    hex::encode_to_slice(&hash[..16], &mut hex_digits).expect("32 hex digits for 16 bytes");
    let mut id = String::with_capacity(prefix.len() + hex_digits.len());
    id.push_str(prefix);
    id.push_str(std::str::from_utf8(&hex_digits).expect("hex digits are ASCII"));
    id
}

/// Event id when the sender supplied its own id (Stripe's `evt_…`, a `webhook-id`).
pub fn event_id_from_external(source_id: &str, external_id: &str) -> String {
    prefixed_digest(
        "evt_",
        &[b"ext", source_id.as_bytes(), external_id.as_bytes()],
    )
}

/// Event id when the sender supplied none, or only one a copy of its request
/// could change (an id header its signature does not cover): the same body to the
/// same source is the same event.
pub fn event_id_from_body(source_id: &str, body: &[u8]) -> String {
    prefixed_digest("evt_", &[b"body", source_id.as_bytes(), body])
}

/// SMS job id: one job per (event, rule, recipient), whatever redelivers the event.
pub fn job_id(event_id: &str, rule_id: &str, recipient: &str) -> String {
    prefixed_digest(
        "job_",
        &[
            event_id.as_bytes(),
            rule_id.as_bytes(),
            recipient.as_bytes(),
        ],
    )
}

/// SMS job id of a message sent through control's messaging API. `request_key`
/// is the caller's idempotency key (so a retry, even one whose first attempt
/// was published but never answered, names the same job and the sender sends it
/// once), or a fresh UUID when the caller gave none. Distinct from rule jobs'
/// ids: their first part is an event id (`evt_…`), never `api`.
pub fn api_job_id(account_id: &str, request_key: &str) -> String {
    prefixed_digest(
        "job_",
        &[b"api", account_id.as_bytes(), request_key.as_bytes()],
    )
}

/// `Nats-Msg-Id` of a provider's delivery report on FOCO_RECEIPTS: a provider
/// retrying its callback is stored once (one id per account, message, part and
/// the provider's own status word, so each step of a message is kept), and two
/// accounts whose providers report the same message id are two reports.
pub fn receipt_msg_id(
    account_id: &str,
    provider: &str,
    provider_message_id: &str,
    part_index: u32,
    status: &str,
) -> String {
    prefixed_digest(
        "rct_",
        &[
            account_id.as_bytes(),
            provider.as_bytes(),
            provider_message_id.as_bytes(),
            &part_index.to_be_bytes(),
            status.as_bytes(),
        ],
    )
}

/// `Nats-Msg-Id` of an inbound SMS on FOCO_RECEIPTS: one per account, provider
/// and the provider's message id.
pub fn inbound_msg_id(account_id: &str, provider: &str, provider_message_id: &str) -> String {
    prefixed_digest(
        "inb_",
        &[
            account_id.as_bytes(),
            provider.as_bytes(),
            provider_message_id.as_bytes(),
        ],
    )
}

/// Event id of an SMS an account received, as an event of its inbound source:
/// one per provider and provider message id, whatever redelivers it (the
/// provider retrying its callback, the sender retrying the publish).
pub fn inbound_event_id(source_id: &str, provider: &str, provider_message_id: &str) -> String {
    prefixed_digest(
        "evt_",
        &[
            b"inbound",
            source_id.as_bytes(),
            provider.as_bytes(),
            provider_message_id.as_bytes(),
        ],
    )
}

/// `Nats-Msg-Id` of a status change on FOCO_STATUS (and the `webhook-id` of the
/// webhooks it causes): one per account, message and status, so a change
/// published again after a crash is stored once.
pub fn status_change_id(account_id: &str, message_id: &str, kind: &str) -> String {
    prefixed_digest(
        "sts_",
        &[
            account_id.as_bytes(),
            message_id.as_bytes(),
            kind.as_bytes(),
        ],
    )
}

/// `Nats-Msg-Id` of a status-feed message carrying several changes: the same
/// batch published again is stored once.
pub fn status_batch_id(change_ids: &[&str]) -> String {
    let parts: Vec<&[u8]> = change_ids.iter().map(|id| id.as_bytes()).collect();
    prefixed_digest("stb_", &parts)
}

/// `Nats-Msg-Id` of a held job released onto FOCO_SMS when its hold ends: a
/// release retried after a crash is stored once; a later hold of the same job
/// (another `release_at_ms`) is a new message.
pub fn release_msg_id(job_id: &str, release_at_ms: i64) -> String {
    format!("{job_id}:release:{release_at_ms}")
}

/// `Nats-Msg-Id` of a dead-lettered job put back on FOCO_SMS by an operator:
/// one per retry, so the nth retry is not taken for a copy of the first.
pub fn retry_msg_id(job_id: &str, retry_number: i32) -> String {
    format!("{job_id}:retry:{retry_number}")
}

/// `Nats-Msg-Id` of a job whose outcome was unknown, resent by an operator at
/// `at_ms`: each resend an operator asks for is one message.
pub fn resend_msg_id(job_id: &str, at_ms: i64) -> String {
    format!("{job_id}:resend:{at_ms}")
}

/// Event id the answer to an inbound HELP is filed under (its job id derives
/// from it): one per account, provider and provider message id, so a
/// redelivered HELP is answered once.
pub fn help_event_id(account_id: &str, provider: &str, provider_message_id: &str) -> String {
    prefixed_digest(
        "evt_",
        &[
            b"help",
            account_id.as_bytes(),
            provider.as_bytes(),
            provider_message_id.as_bytes(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_and_release_ids_name_each_attempt() {
        assert_ne!(release_msg_id("job_a", 1), release_msg_id("job_a", 2));
        assert_ne!(retry_msg_id("job_a", 1), retry_msg_id("job_a", 2));
        assert_ne!(resend_msg_id("job_a", 1), resend_msg_id("job_a", 2));
        assert_ne!(retry_msg_id("job_a", 1), resend_msg_id("job_a", 1));
        assert_eq!(
            help_event_id("acc", "twilio", "SM1"),
            help_event_id("acc", "twilio", "SM1")
        );
        assert_ne!(
            help_event_id("acc", "twilio", "SM1"),
            help_event_id("other", "twilio", "SM1"),
            "two accounts' messages are two answers"
        );
        assert_ne!(
            help_event_id("acc", "twilio", "SM1"),
            inbound_event_id("acc", "twilio", "SM1")
        );
    }

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
        assert_eq!(api_job_id("a1", "k1"), api_job_id("a1", "k1"));
        assert_ne!(api_job_id("a1", "k1"), api_job_id("a2", "k1"));
        assert_eq!(api_job_id("a1", "k1").len(), 4 + 32);
        assert_eq!(job_id("e", "r", "+1").len(), 4 + 32);
        assert_ne!(
            status_change_id("a1", "job_1", "sent"),
            status_change_id("a1", "job_1", "delivered")
        );
        assert_ne!(
            status_change_id("a1", "job_1", "sent"),
            status_change_id("a2", "job_1", "sent")
        );
    }

    #[test]
    fn receipt_and_inbound_ids_are_scoped_by_account() {
        let receipt =
            |account, part, status| receipt_msg_id(account, "twilio", "SM1", part, status);
        assert_eq!(receipt("a1", 0, "delivered"), receipt("a1", 0, "delivered"));
        assert_ne!(receipt("a1", 0, "delivered"), receipt("a2", 0, "delivered"));
        assert_ne!(receipt("a1", 0, "delivered"), receipt("a1", 1, "delivered"));
        assert_ne!(receipt("a1", 0, "delivered"), receipt("a1", 0, "sent"));
        assert_ne!(
            inbound_msg_id("a1", "twilio", "SM1"),
            inbound_msg_id("a2", "twilio", "SM1")
        );
        // A provider's id of any length or content gives a short header value.
        let odd = receipt_msg_id("a1", "http", &"x\r\n".repeat(1000), 0, "sent");
        assert_eq!(odd.len(), 4 + 32);
    }

    /// Ids are stored and compared across releases (a redelivery days later must
    /// map to the same event), so their bytes are pinned.
    #[test]
    fn ids_keep_their_published_form() {
        assert_eq!(
            event_id_from_external("src_1", "evt_123"),
            "evt_3d8e0d7e61c7475c5d8028cb32869746"
        );
        assert_eq!(
            job_id("evt_x", "rule_1", "+525512345678"),
            "job_9a39cac4e820eb49c1c9185605d490f0"
        );
        assert_eq!(
            receipt_msg_id("acc_1", "twilio", "SM1", 0, "delivered"),
            "rct_c2852a91e8c7df05a1573903d282d55c"
        );
        assert_eq!(
            inbound_msg_id("acc_1", "twilio", "SM2"),
            "inb_3d9de450a2af639d512ce8b6a247e4b9"
        );
        assert_eq!(
            inbound_event_id("src_1", "telnyx", "in-1"),
            "evt_a924d3e5f3541071895e18fc573d7cd9"
        );
    }
}
