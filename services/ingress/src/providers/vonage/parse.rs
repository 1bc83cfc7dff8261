//! Vonage SMS API: delivery receipts (`messageId`, `status`, `err-code`,
//! `client-ref`, ...) and inbound messages (`msisdn`, `to`, `messageId`, `text`,
//! `type`, `concat-*`), whether they came as a query, a form or JSON.
//!
//! A long message is sent as parts with their own ids, and Vonage sends one
//! receipt per part: each names its part's id, which the sender recorded, so the
//! part index in the stream id stays 0. Parts of a long inbound message also
//! arrive one by one under their own ids; each is stored as it comes (a STOP is
//! never longer than one part).

use foco_proto::v1::{DeliveryReceipt, InboundSms, ReceiptStatus};
use foco_providers::ProviderKind;
use serde_json::Value;

use crate::error::IngressError;
use crate::providers::parse::{
    InboundCallback, StatusCallback, international, message_body, required, text,
};

/// Vonage's DLR statuses: `None` for those that change nothing yet.
fn receipt_status(status: &str) -> Result<Option<ReceiptStatus>, IngressError> {
    match status {
        // Accepted by the carrier: sent on, not delivered yet.
        "accepted" => Ok(Some(ReceiptStatus::Sent)),
        "delivered" => Ok(Some(ReceiptStatus::Delivered)),
        "expired" | "failed" | "rejected" => Ok(Some(ReceiptStatus::Undelivered)),
        // Held by a carrier for a later attempt, or no word from the carrier.
        "buffered" | "unknown" => Ok(None),
        _ => Err(IngressError::InvalidCallback("an unknown delivery status")),
    }
}

/// A delivery receipt for one message or one part of it.
pub fn vonage_status(account_id: &str, fields: &Value) -> Result<StatusCallback, IngressError> {
    let message_id = required(fields, "messageId")?;
    let status = required(fields, "status")?.to_ascii_lowercase();
    let Some(receipt_status) = receipt_status(&status)? else {
        return Ok(StatusCallback::Ignored { status });
    };
    // `0` is "no error"; other codes explain an undelivered (or unknown) message.
    let error_code = text(fields, "err-code")
        .filter(|code| *code != "0")
        .unwrap_or_default();
    let receipt = DeliveryReceipt {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Vonage.id().to_owned(),
        provider_message_id: message_id.to_owned(),
        // The sender sends the job id as `client-ref`; Vonage echoes it.
        job_id: text(fields, "client-ref").unwrap_or_default().to_owned(),
        status: receipt_status as i32,
        error_code: error_code.to_owned(),
        ..DeliveryReceipt::default()
    };
    Ok(StatusCallback::receipt(receipt, &status))
}

/// An SMS a customer sent to one of the route's numbers.
pub fn vonage_inbound(
    account_id: &str,
    route: &str,
    fields: &Value,
    received_at_ms: i64,
) -> Result<InboundCallback, IngressError> {
    let message_id = required(fields, "messageId")?;
    let from = required(fields, "msisdn")?;
    Ok(InboundCallback::new(InboundSms {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Vonage.id().to_owned(),
        route: route.to_owned(),
        from: international(from),
        // Kept as Vonage writes it: it is the `from` of a reply through Vonage.
        to: text(fields, "to").unwrap_or_default().to_owned(),
        body: message_body(fields, "text"),
        provider_message_id: message_id.to_owned(),
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
    fn a_delivered_receipt_names_the_part_and_the_job() {
        let callback = vonage_status("acct", &fields("vonage__delivery_receipt.json")).unwrap();
        let StatusCallback::Receipt {
            receipt,
            message_id,
        } = callback
        else {
            panic!("a receipt");
        };
        assert_eq!(receipt.status, ReceiptStatus::Delivered as i32);
        assert_eq!(receipt.provider, "vonage");
        assert_eq!(receipt.provider_message_id, "0A0000001234567B");
        assert_eq!(receipt.job_id, "job_632ab8f835a57e3cc741a1fdee125517");
        assert_eq!(receipt.error_code, "");
        assert_eq!(
            message_id,
            foco_bus::receipt_msg_id("acct", "vonage", "0A0000001234567B", 0, "delivered")
        );
    }

    #[test]
    fn every_documented_status_maps_and_unknown_words_are_refused() {
        let status = |word: &str, code: &str| {
            vonage_status(
                "a",
                &serde_json::json!({"messageId": "0A", "status": word, "err-code": code}),
            )
        };
        for (word, expected) in [
            ("accepted", ReceiptStatus::Sent),
            ("delivered", ReceiptStatus::Delivered),
            ("expired", ReceiptStatus::Undelivered),
            ("failed", ReceiptStatus::Undelivered),
            ("rejected", ReceiptStatus::Undelivered),
        ] {
            let Ok(StatusCallback::Receipt { receipt, .. }) = status(word, "6") else {
                panic!("{word} is a receipt");
            };
            assert_eq!(receipt.status, expected as i32, "{word}");
            assert_eq!(receipt.error_code, "6");
        }
        for word in ["buffered", "unknown"] {
            assert_eq!(
                status(word, "1").unwrap(),
                StatusCallback::Ignored {
                    status: word.to_owned()
                }
            );
        }
        assert!(matches!(
            status("lost", "0"),
            Err(IngressError::InvalidCallback(_))
        ));
        assert!(matches!(
            vonage_status("a", &serde_json::json!({"status": "delivered"})),
            Err(IngressError::MissingField("messageId"))
        ));
    }

    #[test]
    fn an_inbound_message_gets_an_international_sender() {
        let InboundCallback {
            inbound,
            message_id,
        } = vonage_inbound("acct", "mx", &fields("vonage__inbound_sms.json"), 42).unwrap();
        assert_eq!(inbound.from, "+447700900001");
        assert_eq!(inbound.to, "447700900000");
        assert_eq!(inbound.body, "Hello world");
        assert_eq!(inbound.route, "mx");
        assert_eq!(inbound.provider, "vonage");
        assert_eq!(inbound.received_at_ms, 42);
        assert_eq!(
            message_id,
            foco_bus::inbound_msg_id("acct", "vonage", "0A0000000123ABCD1")
        );
        assert!(vonage_inbound("a", "", &serde_json::json!({"text": "STOP"}), 0).is_err());
    }
}
