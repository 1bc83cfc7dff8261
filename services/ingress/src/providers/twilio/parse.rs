//! Twilio: status callbacks (`MessageStatus`, `MessageSid`, `ErrorCode`) and
//! inbound-message webhooks (`From`, `To`, `Body`, `MessageSid`), as form fields
//! turned into a JSON object.

use foco_proto::v1::{DeliveryReceipt, InboundSms, ReceiptStatus};
use foco_providers::ProviderKind;
use serde_json::Value;

use crate::error::IngressError;
use crate::providers::parse::{InboundCallback, StatusCallback, message_body, required, text};

/// Twilio names the message `MessageSid` (and, for older integrations, `SmsSid`).
fn message_sid(fields: &Value) -> Option<&str> {
    text(fields, "MessageSid").or_else(|| text(fields, "SmsSid"))
}

/// Twilio's message statuses as receipt statuses; `None` for intermediate ones.
fn receipt_status(status: &str) -> Option<ReceiptStatus> {
    match status {
        "sent" => Some(ReceiptStatus::Sent),
        // `read` is WhatsApp's "delivered and seen".
        "delivered" | "read" => Some(ReceiptStatus::Delivered),
        "undelivered" | "failed" | "canceled" => Some(ReceiptStatus::Undelivered),
        _ => None,
    }
}

/// A Twilio status callback (`MessageStatus`, `MessageSid`, `ErrorCode`).
pub fn twilio_status(account_id: &str, fields: &Value) -> Result<StatusCallback, IngressError> {
    let sid = message_sid(fields).ok_or(IngressError::MissingField("MessageSid"))?;
    let status = text(fields, "MessageStatus")
        .or_else(|| text(fields, "SmsStatus"))
        .ok_or(IngressError::MissingField("MessageStatus"))?
        .to_ascii_lowercase();
    let Some(receipt_status) = receipt_status(&status) else {
        return Ok(StatusCallback::Ignored { status });
    };
    let receipt = DeliveryReceipt {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Twilio.id().to_owned(),
        provider_message_id: sid.to_owned(),
        status: receipt_status as i32,
        error_code: text(fields, "ErrorCode").unwrap_or_default().to_owned(),
        error_message: text(fields, "ErrorMessage").unwrap_or_default().to_owned(),
        ..DeliveryReceipt::default()
    };
    // Twilio sends one message per SID (no parts), hence part 0.
    Ok(StatusCallback::receipt(receipt, &status))
}

/// A Twilio inbound-message webhook (`From`, `To`, `Body`, `MessageSid`).
pub fn twilio_inbound(
    account_id: &str,
    route: &str,
    fields: &Value,
    received_at_ms: i64,
) -> Result<InboundCallback, IngressError> {
    let sid = message_sid(fields).ok_or(IngressError::MissingField("MessageSid"))?;
    let from = required(fields, "From")?;
    Ok(InboundCallback::new(InboundSms {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Twilio.id().to_owned(),
        route: route.to_owned(),
        from: from.to_owned(),
        to: text(fields, "To").unwrap_or_default().to_owned(),
        body: message_body(fields, "Body"),
        provider_message_id: sid.to_owned(),
        received_at_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::fixture;

    fn fields(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    #[test]
    fn a_delivered_status_becomes_a_receipt() {
        let callback =
            twilio_status("acct", &fields("twilio__message_status_delivered.json")).unwrap();
        let StatusCallback::Receipt {
            receipt,
            message_id,
        } = callback
        else {
            panic!("a receipt");
        };
        assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);
        assert_eq!(receipt.provider, "twilio");
        assert_eq!(
            receipt.provider_message_id,
            "SM1f0e8ae6ade43cb3c0ce4525424e404f"
        );
        assert_eq!(receipt.account_id, "acct");
        assert_eq!(
            message_id,
            foco_bus::receipt_msg_id(
                "acct",
                "twilio",
                "SM1f0e8ae6ade43cb3c0ce4525424e404f",
                0,
                "delivered"
            )
        );
    }

    #[test]
    fn failures_carry_their_code_and_intermediate_statuses_are_ignored() {
        let failed = serde_json::json!({"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30003"});
        let StatusCallback::Receipt { receipt, .. } = twilio_status("a", &failed).unwrap() else {
            panic!("a receipt");
        };
        assert_eq!(receipt.status, ReceiptStatus::Undelivered as i32);
        assert_eq!(receipt.error_code, "30003");
        let queued = serde_json::json!({"MessageSid": "SM1", "MessageStatus": "queued"});
        assert_eq!(
            twilio_status("a", &queued).unwrap(),
            StatusCallback::Ignored {
                status: "queued".to_owned()
            }
        );
        assert!(twilio_status("a", &serde_json::json!({"MessageStatus": "sent"})).is_err());
        assert!(twilio_status("a", &serde_json::json!({"MessageSid": "SM1"})).is_err());
    }

    #[test]
    fn an_inbound_message() {
        let InboundCallback {
            inbound,
            message_id,
        } = twilio_inbound("acct", "primary", &fields("twilio__inbound_sms.json"), 42).unwrap();
        assert_eq!(inbound.from, "+10123456789");
        assert_eq!(inbound.to, "+10123456789");
        assert_eq!(inbound.body, "Ahoy!");
        assert_eq!(inbound.route, "primary");
        assert_eq!(inbound.received_at_ms, 42);
        assert_eq!(
            message_id,
            foco_bus::inbound_msg_id("acct", "twilio", "SMcea2a3bd6f50296f8fab60f377db03eb")
        );
        assert!(twilio_inbound("a", "", &serde_json::json!({"Body": "STOP"}), 0).is_err());
    }
}
