//! What a status webhook says: its event type (from the status change's kind)
//! and its JSON body, `{"type", "timestamp", "data"}` as the Standard Webhooks
//! specification suggests.

use foco_bus::status::kind;
use foco_proto::v1::StatusChange;

/// Every event type an endpoint may subscribe to.
pub const EVENT_TYPES: [&str; 9] = [
    "message.scheduled",
    "message.sent",
    "message.delivered",
    "message.failed",
    "message.undelivered",
    "message.expired",
    "message.cancelled",
    "message.opted_out",
    "inbound.received",
];

/// The event type of a status change; `None` for kinds no webhook carries
/// (`unknown`: the sender itself cannot tell whether it went out).
pub fn event_type(change_kind: &str) -> Option<&'static str> {
    Some(match change_kind {
        kind::SCHEDULED => "message.scheduled",
        kind::SENT => "message.sent",
        kind::DELIVERED => "message.delivered",
        kind::FAILED => "message.failed",
        kind::UNDELIVERED => "message.undelivered",
        kind::EXPIRED => "message.expired",
        kind::CANCELLED => "message.cancelled",
        kind::OPTED_OUT => "message.opted_out",
        kind::INBOUND => "inbound.received",
        _ => return None,
    })
}

/// The body. `data.metadata` is the change's; for a change without it
/// (receipts), the message's is added from `api_sends` when the delivery rows
/// are written.
pub fn body(event_type: &str, change: &StatusChange) -> serde_json::Value {
    let at = chrono::DateTime::from_timestamp_millis(change.at_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut data = serde_json::json!({
        "message_id": change.message_id,
        "status": change.kind,
        "to": change.to,
        "reason": change.reason,
        "provider": change.provider,
        "provider_message_id": change.provider_message_id,
        "event_id": change.event_id,
        "rule_id": change.rule_id,
        "metadata": change.metadata,
    });
    if change.kind == kind::INBOUND {
        data["from"] = serde_json::Value::String(change.to.clone());
        data["body"] = serde_json::Value::String(change.body.clone());
    }
    serde_json::json!({
        "type": event_type,
        "timestamp": at,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_its_kind() {
        for change_kind in kind::ALL {
            if let Some(event_type) = event_type(change_kind) {
                assert!(EVENT_TYPES.contains(&event_type), "{event_type}");
            }
        }
        assert_eq!(event_type(kind::UNKNOWN), None);
        assert_eq!(event_type(kind::OPTED_OUT), Some("message.opted_out"));
    }

    #[test]
    fn the_body_names_type_time_and_message() {
        let mut change = foco_bus::status_change("a1", "job_1", kind::DELIVERED);
        change.at_ms = 1_764_700_000_000;
        let body = body("message.delivered", &change);
        assert_eq!(body["type"], "message.delivered");
        assert_eq!(body["timestamp"], "2025-12-02T18:26:40.000Z");
        assert_eq!(body["data"]["message_id"], "job_1");
        assert_eq!(body["data"]["status"], "delivered");
    }
}
