//! Telnyx messaging webhooks (API v2): one URL per messaging profile receives
//! `{"data": {"event_type", "payload": <message>}}` for `message.sent` and
//! `message.finalized` (our sends: the recipient's `to[].status`, `errors`) and
//! for `message.received` (a customer's message: `from.phone_number`, `text`).
//! A long message keeps one id (`parts` counts them), so its receipt is part 0.

use foco_proto::v1::{DeliveryReceipt, InboundSms, ReceiptStatus};
use foco_providers::ProviderKind;
use serde_json::Value;

use crate::error::IngressError;
use crate::providers::parse::{
    InboundCallback, StatusCallback, message_body, required, text, text_or_number,
};

/// What a Telnyx webhook is about.
#[derive(Debug, Clone, PartialEq)]
pub enum TelnyxEvent {
    Status(StatusCallback),
    Inbound(InboundCallback),
}

/// A recipient's status in `to[]`: `None` for those still on the way.
fn receipt_status(status: &str) -> Result<Option<ReceiptStatus>, IngressError> {
    match status {
        "queued" | "sending" => Ok(None),
        // `delivery_unconfirmed`: sent, and the carrier never said more.
        "sent" | "delivery_unconfirmed" => Ok(Some(ReceiptStatus::Sent)),
        "delivered" => Ok(Some(ReceiptStatus::Delivered)),
        "sending_failed" | "delivery_failed" | "expired" => Ok(Some(ReceiptStatus::Undelivered)),
        _ => Err(IngressError::InvalidCallback("an unknown delivery status")),
    }
}

/// Reads one webhook body (already verified).
pub fn telnyx_event(
    account_id: &str,
    route: &str,
    body: &Value,
    received_at_ms: i64,
) -> Result<TelnyxEvent, IngressError> {
    let data = body
        .get("data")
        .filter(|data| data.is_object())
        .ok_or(IngressError::MissingField("data"))?;
    let event_type = required(data, "event_type")?;
    let payload = data
        .get("payload")
        .filter(|payload| payload.is_object())
        .ok_or(IngressError::MissingField("payload"))?;
    match event_type {
        "message.sent" | "message.finalized" => {
            telnyx_status(account_id, payload).map(TelnyxEvent::Status)
        }
        "message.received" => {
            telnyx_inbound(account_id, route, payload, received_at_ms).map(TelnyxEvent::Inbound)
        }
        _ => Err(IngressError::InvalidCallback(
            "an event type other than message.sent, message.finalized or message.received",
        )),
    }
}

fn first_recipient(payload: &Value) -> Option<&Value> {
    payload.get("to").and_then(Value::as_array)?.first()
}

fn telnyx_status(account_id: &str, payload: &Value) -> Result<StatusCallback, IngressError> {
    let id = required(payload, "id")?;
    // The sender sends to one number, so its message has one recipient.
    let status = first_recipient(payload)
        .and_then(|recipient| text(recipient, "status"))
        .ok_or(IngressError::MissingField("to[].status"))?
        .to_ascii_lowercase();
    let Some(receipt_status) = receipt_status(&status)? else {
        return Ok(StatusCallback::Ignored { status });
    };
    let error = payload
        .get("errors")
        .and_then(Value::as_array)
        .and_then(|errors| errors.first());
    let error_code = error
        .and_then(|error| text_or_number(error, "code"))
        .unwrap_or_default();
    let error_message = error
        .and_then(|error| text(error, "detail").or_else(|| text(error, "title")))
        .unwrap_or_default();
    let receipt = DeliveryReceipt {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Telnyx.id().to_owned(),
        provider_message_id: id.to_owned(),
        status: receipt_status as i32,
        error_code,
        error_message: error_message.to_owned(),
        ..DeliveryReceipt::default()
    };
    Ok(StatusCallback::receipt(receipt, &status))
}

fn telnyx_inbound(
    account_id: &str,
    route: &str,
    payload: &Value,
    received_at_ms: i64,
) -> Result<InboundCallback, IngressError> {
    let id = required(payload, "id")?;
    let from = payload
        .get("from")
        .and_then(|from| text(from, "phone_number"))
        .ok_or(IngressError::MissingField("from.phone_number"))?;
    Ok(InboundCallback::new(InboundSms {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Telnyx.id().to_owned(),
        route: route.to_owned(),
        from: from.to_owned(),
        to: first_recipient(payload)
            .and_then(|recipient| text(recipient, "phone_number"))
            .unwrap_or_default()
            .to_owned(),
        body: message_body(payload, "text"),
        provider_message_id: id.to_owned(),
        received_at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::fixture;

    fn body(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    fn finalized(status: &str, errors: Value) -> Value {
        serde_json::json!({"data": {"event_type": "message.finalized", "payload": {
            "id": "40385f64", "to": [{"phone_number": "+18665550001", "status": status}],
            "errors": errors,
        }}})
    }

    #[test]
    fn a_finalized_delivery_becomes_a_receipt() {
        let event = telnyx_event(
            "acct",
            "",
            &body("telnyx__message_finalized_delivered.json"),
            0,
        )
        .unwrap();
        let TelnyxEvent::Status(StatusCallback::Receipt {
            receipt,
            message_id,
        }) = event
        else {
            panic!("a receipt");
        };
        assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);
        assert_eq!(receipt.provider, "telnyx");
        assert_eq!(
            receipt.provider_message_id,
            "40385f64-5717-4562-b3fc-2c963f66afa6"
        );
        assert_eq!(
            message_id,
            foco_bus::receipt_msg_id(
                "acct",
                "telnyx",
                "40385f64-5717-4562-b3fc-2c963f66afa6",
                0,
                "delivered"
            )
        );
    }

    #[test]
    fn failures_carry_the_first_error_and_queued_changes_nothing() {
        let failed = finalized(
            "delivery_failed",
            serde_json::json!([{"code": "40300", "title": "Blocked", "detail": "STOP received"}]),
        );
        let Ok(TelnyxEvent::Status(StatusCallback::Receipt { receipt, .. })) =
            telnyx_event("a", "", &failed, 0)
        else {
            panic!("a receipt");
        };
        assert_eq!(receipt.status, ReceiptStatus::Undelivered as i32);
        assert_eq!(receipt.error_code, "40300");
        assert_eq!(receipt.error_message, "STOP received");
        for (status, expected) in [
            ("sent", ReceiptStatus::Sent),
            ("delivery_unconfirmed", ReceiptStatus::Sent),
            ("sending_failed", ReceiptStatus::Undelivered),
            ("expired", ReceiptStatus::Undelivered),
        ] {
            let Ok(TelnyxEvent::Status(StatusCallback::Receipt { receipt, .. })) =
                telnyx_event("a", "", &finalized(status, serde_json::json!([])), 0)
            else {
                panic!("{status} is a receipt");
            };
            assert_eq!(receipt.status, expected as i32, "{status}");
        }
        assert_eq!(
            telnyx_event("a", "", &finalized("queued", serde_json::json!([])), 0).unwrap(),
            TelnyxEvent::Status(StatusCallback::Ignored {
                status: "queued".to_owned()
            })
        );
        assert!(matches!(
            telnyx_event("a", "", &finalized("vanished", serde_json::json!([])), 0),
            Err(IngressError::InvalidCallback(_))
        ));
    }

    #[test]
    fn an_inbound_message() {
        let event = telnyx_event("acct", "us", &body("telnyx__message_received.json"), 7).unwrap();
        let TelnyxEvent::Inbound(InboundCallback {
            inbound,
            message_id,
        }) = event
        else {
            panic!("an inbound message");
        };
        assert_eq!(inbound.from, "+18665550001");
        assert_eq!(inbound.to, "+18445550001");
        assert_eq!(inbound.body, "Hello, World!");
        assert_eq!(inbound.route, "us");
        assert_eq!(inbound.received_at_ms, 7);
        assert_eq!(
            message_id,
            foco_bus::inbound_msg_id("acct", "telnyx", "7ee4241c-f127-47e5-9c34-3aac291f8058")
        );
    }

    #[test]
    fn other_events_and_other_shapes_are_refused() {
        let other = serde_json::json!({"data": {"event_type": "call.initiated", "payload": {}}});
        assert!(matches!(
            telnyx_event("a", "", &other, 0),
            Err(IngressError::InvalidCallback(_))
        ));
        assert!(matches!(
            telnyx_event("a", "", &serde_json::json!([1]), 0),
            Err(IngressError::MissingField("data"))
        ));
        let no_id = serde_json::json!({"data": {"event_type": "message.received", "payload": {"from": {"phone_number": "+1"}}}});
        assert!(matches!(
            telnyx_event("a", "", &no_id, 0),
            Err(IngressError::MissingField("id"))
        ));
    }
}
