//! What providers tell us after a send, turned into the FOCO_RECEIPTS messages the
//! sender applies: delivery reports become `DeliveryReceipt`s and inbound
//! messages `InboundSms`s (whose STOP/START/HELP the sender acts on). Each
//! provider's `parse` module is a set of pure functions of the verified fields,
//! built on the shapes and helpers here; verifying and publishing are its
//! `route`'s job.
//!
//! Message ids are `foco_bus::receipt_msg_id` and `foco_bus::inbound_msg_id`,
//! so a provider retrying a callback is deduplicated by JetStream: one id per
//! account, provider, message id, part and status word for receipts (the
//! provider's own status word, so each step of a message is stored once) and
//! per account, provider and message id for inbound messages. Providers that
//! report each part of a long message under its own id (Vonage) need no part
//! index: it is 0, as for providers that report a message once.

use foco_proto::v1::{DeliveryReceipt, InboundSms};
use serde_json::Value;

use crate::error::IngressError;

/// A receipt to publish, or a status that changes nothing (Twilio's `queued`,
/// Vonage's `buffered`, Infobip's `PENDING`).
#[derive(Debug, Clone, PartialEq)]
pub enum StatusCallback {
    Receipt {
        receipt: DeliveryReceipt,
        message_id: String,
    },
    Ignored {
        status: String,
    },
}

impl StatusCallback {
    /// A provider's report about one message (part 0: see above).
    pub(crate) fn receipt(receipt: DeliveryReceipt, status: &str) -> Self {
        let message_id = foco_bus::receipt_msg_id(
            &receipt.account_id,
            &receipt.provider,
            &receipt.provider_message_id,
            0,
            status,
        );
        Self::Receipt {
            receipt,
            message_id,
        }
    }
}

/// An inbound SMS and the id it is published under.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundCallback {
    pub inbound: InboundSms,
    pub message_id: String,
}

impl InboundCallback {
    pub(crate) fn new(inbound: InboundSms) -> Self {
        let message_id = foco_bus::inbound_msg_id(
            &inbound.account_id,
            &inbound.provider,
            &inbound.provider_message_id,
        );
        Self {
            inbound,
            message_id,
        }
    }
}

/// A non-blank text field of a JSON object, trimmed.
pub(crate) fn text<'a>(fields: &'a Value, name: &str) -> Option<&'a str> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// A text field the callback cannot do without: 400 naming it when absent.
pub(crate) fn required<'a>(fields: &'a Value, name: &'static str) -> Result<&'a str, IngressError> {
    text(fields, name).ok_or(IngressError::MissingField(name))
}

/// A message's text as the customer sent it, untrimmed (STOP may come padded),
/// or empty (a binary message has none).
pub(crate) fn message_body(fields: &Value, name: &str) -> String {
    fields
        .get(name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A field as text whether the provider sent a string or a number (Infobip's
/// error ids are numbers, Vonage's codes strings).
pub(crate) fn text_or_number(fields: &Value, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `447700900001` → `+447700900001`: providers that write international numbers
/// without the `+` (Vonage, Infobip) would otherwise be read as national numbers
/// of the account's country. Anything that is not all digits is kept as given.
pub(crate) fn international(number: &str) -> String {
    let trimmed = number.trim();
    if !trimmed.is_empty() && trimmed.bytes().all(|byte| byte.is_ascii_digit()) {
        format!("+{trimmed}")
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_without_plus_become_international() {
        assert_eq!(international("447700900001"), "+447700900001");
        assert_eq!(international(" +5215512345678 "), "+5215512345678");
        assert_eq!(international("AcmeInc"), "AcmeInc");
        assert_eq!(international(""), "");
    }

    #[test]
    fn codes_are_read_from_strings_or_numbers() {
        let fields = serde_json::json!({"a": "27", "b": 27, "c": "", "d": null});
        assert_eq!(text_or_number(&fields, "a").as_deref(), Some("27"));
        assert_eq!(text_or_number(&fields, "b").as_deref(), Some("27"));
        assert_eq!(text_or_number(&fields, "c"), None);
        assert_eq!(text_or_number(&fields, "d"), None);
        assert_eq!(text_or_number(&fields, "e"), None);
    }
}
