//! Infobip: delivery reports and inbound messages both come as `{"results":
//! [...]}`, several to a request. A report is judged by its status group
//! (`status.groupName`), the detail is in `status.name` and `error`. The sender
//! sends the job id as `messageId`, so a report names its job directly. A long
//! message keeps one id (`smsCount` counts the parts), so its report is part 0.

use foco_proto::v1::{DeliveryReceipt, InboundSms, ReceiptStatus};
use foco_providers::ProviderKind;
use serde_json::Value;

use crate::error::IngressError;
use crate::providers::parse::{
    InboundCallback, StatusCallback, international, message_body, required, text, text_or_number,
};

/// The `results` array; every entry must be an object.
fn results(body: &Value) -> Result<&[Value], IngressError> {
    let results = body
        .get("results")
        .and_then(Value::as_array)
        .ok_or(IngressError::MissingField("results"))?;
    if results.iter().any(|result| !result.is_object()) {
        return Err(IngressError::InvalidCallback(
            "a result that is not an object",
        ));
    }
    Ok(results)
}

/// Infobip's status groups: `None` for messages still on their way.
fn receipt_status(group: &str) -> Result<Option<ReceiptStatus>, IngressError> {
    match group {
        "PENDING" | "ACCEPTED" => Ok(None),
        "DELIVERED" => Ok(Some(ReceiptStatus::Delivered)),
        "UNDELIVERABLE" | "EXPIRED" | "REJECTED" => Ok(Some(ReceiptStatus::Undelivered)),
        _ => Err(IngressError::InvalidCallback("an unknown status group")),
    }
}

/// Every report of a delivery-report request, in order. One unreadable report
/// refuses the whole request, so nothing of a request is stored half.
pub fn infobip_reports(
    account_id: &str,
    body: &Value,
) -> Result<Vec<StatusCallback>, IngressError> {
    results(body)?
        .iter()
        .map(|result| infobip_report(account_id, result))
        .collect()
}

fn infobip_report(account_id: &str, result: &Value) -> Result<StatusCallback, IngressError> {
    let message_id = required(result, "messageId")?;
    let status = result
        .get("status")
        .ok_or(IngressError::MissingField("status"))?;
    let group = text(status, "groupName")
        .ok_or(IngressError::MissingField("status.groupName"))?
        .to_ascii_uppercase();
    let Some(receipt_status) = receipt_status(&group)? else {
        return Ok(StatusCallback::Ignored {
            status: group.to_ascii_lowercase(),
        });
    };
    // `error.id` 0 (`NO_ERROR`) is no error; then an undelivered message is
    // explained by its status (`EXPIRED_...`, `REJECTED_...`).
    let error = result
        .get("error")
        .filter(|error| text_or_number(error, "id").is_some_and(|id| id != "0"));
    let (error_code, error_message) = match error {
        Some(error) => (
            text(error, "name")
                .map(str::to_owned)
                .or_else(|| text_or_number(error, "id"))
                .unwrap_or_default(),
            text(error, "description").unwrap_or_default(),
        ),
        None if receipt_status == ReceiptStatus::Undelivered => (
            text(status, "name").unwrap_or_default().to_owned(),
            text(status, "description").unwrap_or_default(),
        ),
        None => (String::new(), ""),
    };
    let receipt = DeliveryReceipt {
        account_id: account_id.to_owned(),
        provider: ProviderKind::Infobip.id().to_owned(),
        provider_message_id: message_id.to_owned(),
        job_id: message_id.to_owned(),
        status: receipt_status as i32,
        error_code,
        error_message: error_message.to_owned(),
        occurred_at_ms: 0,
    };
    Ok(StatusCallback::receipt(
        receipt,
        &group.to_ascii_lowercase(),
    ))
}

/// Every message of an inbound request, in order.
pub fn infobip_inbound(
    account_id: &str,
    route: &str,
    body: &Value,
    received_at_ms: i64,
) -> Result<Vec<InboundCallback>, IngressError> {
    results(body)?
        .iter()
        .map(|result| {
            let message_id = required(result, "messageId")?;
            let from = required(result, "from")?;
            Ok(InboundCallback::new(InboundSms {
                account_id: account_id.to_owned(),
                provider: ProviderKind::Infobip.id().to_owned(),
                route: route.to_owned(),
                from: international(from),
                to: text(result, "to").unwrap_or_default().to_owned(),
                // The whole text: `cleanText` drops the first word when it is
                // one of the number's keywords, and that word may be STOP.
                body: message_body(result, "text"),
                provider_message_id: message_id.to_owned(),
                received_at_ms,
            }))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::test_support::fixture;

    fn body(name: &str) -> Value {
        serde_json::from_slice(&fixture(name)).unwrap()
    }

    fn receipt(callback: &StatusCallback) -> (&DeliveryReceipt, &str) {
        match callback {
            StatusCallback::Receipt {
                receipt,
                message_id,
            } => (receipt, message_id),
            StatusCallback::Ignored { status } => panic!("{status} ignored"),
        }
    }

    #[test]
    fn every_report_of_a_request_becomes_a_receipt() {
        let reports = infobip_reports("acct", &body("infobip__delivery_reports.json")).unwrap();
        assert_eq!(reports.len(), 2);
        let (delivered, id) = receipt(&reports[0]);
        assert_eq!(delivered.status, ReceiptStatus::Delivered as i32);
        assert_eq!(delivered.provider, "infobip");
        assert_eq!(delivered.provider_message_id, "MESSAGE-ID-123-xyz");
        assert_eq!(delivered.job_id, "MESSAGE-ID-123-xyz");
        assert_eq!(delivered.error_code, "");
        assert_eq!(
            id,
            foco_bus::receipt_msg_id("acct", "infobip", "MESSAGE-ID-123-xyz", 0, "delivered")
        );
        let (undelivered, id) = receipt(&reports[1]);
        assert_eq!(undelivered.status, ReceiptStatus::Undelivered as i32);
        assert_eq!(undelivered.error_code, "EC_ABSENT_SUBSCRIBER");
        assert_eq!(undelivered.error_message, "Absent Subscriber");
        assert_eq!(
            id,
            foco_bus::receipt_msg_id(
                "acct",
                "infobip",
                "12db39c3-7822-4e72-a3ec-c87442c0ffc5",
                0,
                "undeliverable"
            )
        );
    }

    #[test]
    fn groups_map_and_pending_changes_nothing() {
        let report = |group: &str, error_id: u32| {
            serde_json::json!({"results": [{"messageId": "m1", "status": {
                "groupName": group, "name": format!("{group}_X"), "description": "why"},
                "error": {"id": error_id, "name": "E", "description": "err"}}]})
        };
        let expired = infobip_reports("a", &report("EXPIRED", 0)).unwrap();
        let (receipt_expired, _) = receipt(&expired[0]);
        assert_eq!(receipt_expired.status, ReceiptStatus::Undelivered as i32);
        assert_eq!(receipt_expired.error_code, "EXPIRED_X");
        assert_eq!(receipt_expired.error_message, "why");
        let rejected = infobip_reports("a", &report("REJECTED", 5)).unwrap();
        assert_eq!(receipt(&rejected[0]).0.error_code, "E");
        assert_eq!(
            infobip_reports("a", &report("PENDING", 0)).unwrap(),
            vec![StatusCallback::Ignored {
                status: "pending".to_owned()
            }]
        );
        assert!(matches!(
            infobip_reports("a", &report("LOST", 0)),
            Err(IngressError::InvalidCallback(_))
        ));
    }

    #[test]
    fn one_bad_report_refuses_the_request() {
        let mixed = serde_json::json!({"results": [
            {"messageId": "m1", "status": {"groupName": "DELIVERED"}},
            {"status": {"groupName": "DELIVERED"}},
        ]});
        assert!(matches!(
            infobip_reports("a", &mixed),
            Err(IngressError::MissingField("messageId"))
        ));
        assert!(matches!(
            infobip_reports("a", &serde_json::json!({"results": ["x"]})),
            Err(IngressError::InvalidCallback(_))
        ));
        assert!(matches!(
            infobip_reports("a", &serde_json::json!({"reports": []})),
            Err(IngressError::MissingField("results"))
        ));
        assert_eq!(
            infobip_reports("a", &serde_json::json!({"results": []})).unwrap(),
            vec![]
        );
    }

    #[test]
    fn inbound_messages_keep_the_whole_text() {
        let messages =
            infobip_inbound("acct", "eu", &body("infobip__inbound_sms.json"), 9).unwrap();
        assert_eq!(messages.len(), 1);
        let InboundCallback {
            inbound,
            message_id,
        } = &messages[0];
        assert_eq!(inbound.from, "+385916242493");
        assert_eq!(inbound.to, "385921004026");
        assert_eq!(inbound.body, "QKZKYBFD Some message text");
        assert_eq!(inbound.route, "eu");
        assert_eq!(inbound.received_at_ms, 9);
        assert_eq!(
            *message_id,
            foco_bus::inbound_msg_id("acct", "infobip", "817790313235066447")
        );
        let no_sender = serde_json::json!({"results": [{"messageId": "m", "text": "STOP"}]});
        assert!(infobip_inbound("a", "", &no_sender, 0).is_err());
    }
}
