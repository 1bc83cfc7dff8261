//! Two-way SMS: an SMS an account received that is no compliance keyword
//! becomes an event of the account's inbound source (`Account.inbound_source`),
//! so its rules can answer it (an auto-reply to `event.from`, an alert to the
//! owner). The event goes where a webhook's goes: the same envelope
//! (`foco_bus::encode_envelope`) on FOCO_EVENTS, with an id derived from the
//! provider and its message id, so a redelivered SMS is one event (JetStream's
//! duplicate window, then the rules' memory of event ids).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use foco_bus::{BusNames, EventParts, PublishError, Published};
use foco_proto::v1::InboundSms;

/// How long the publish may wait for JetStream's ack.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(5);

/// What rules read as `event`: `{from, to, body, route, provider,
/// provider_message_id, received_at}`.
pub fn payload(inbound: &InboundSms, route_name: &str, received_at_ms: i64) -> Vec<u8> {
    let received_at = DateTime::<Utc>::from_timestamp_millis(received_at_ms)
        .map(|at| at.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default();
    serde_json::to_vec(&serde_json::json!({
        "from": inbound.from,
        "to": inbound.to,
        "body": inbound.body,
        "route": route_name,
        "provider": inbound.provider,
        "provider_message_id": inbound.provider_message_id,
        "received_at": received_at,
    }))
    .unwrap_or_default()
}

/// Publishes `inbound` as an `sms.inbound` event of the source `source_id`
/// and waits for JetStream's ack.
pub async fn publish(
    jetstream: &async_nats::jetstream::Context,
    nats: &async_nats::Client,
    names: &BusNames,
    inbound: &InboundSms,
    route_name: &str,
    source_id: &str,
) -> Result<Published, PublishError> {
    let event_id =
        foco_bus::inbound_event_id(source_id, &inbound.provider, &inbound.provider_message_id);
    // Stamped by ingress when the callback was stored, so redeliveries keep it.
    let received_at_ms = if inbound.received_at_ms > 0 {
        inbound.received_at_ms
    } else {
        Utc::now().timestamp_millis()
    };
    let payload = payload(inbound, route_name, received_at_ms);
    let envelope = foco_bus::encode_envelope(&EventParts {
        event_id: &event_id,
        account_id: &inbound.account_id,
        source_id,
        event_type: foco_bus::INBOUND_SMS_EVENT_TYPE,
        external_id: &inbound.provider_message_id,
        received_at_ms,
        headers: &[],
        payload: &payload,
    });
    foco_bus::publish_durable(
        jetstream,
        nats,
        names.events_subject(&inbound.account_id, source_id),
        &event_id,
        envelope,
        PUBLISH_TIMEOUT,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_names_sender_receiver_text_and_provenance() {
        let inbound = InboundSms {
            account_id: "acc".to_owned(),
            provider: "telnyx".to_owned(),
            from: "+525512345678".to_owned(),
            to: "+18445550001".to_owned(),
            body: "¿Abren mañana?".to_owned(),
            provider_message_id: "in-1".to_owned(),
            received_at_ms: 1_764_712_934_512,
            ..InboundSms::default()
        };
        let payload: serde_json::Value =
            serde_json::from_slice(&payload(&inbound, "telnyx-main", inbound.received_at_ms))
                .unwrap();
        assert_eq!(
            payload,
            serde_json::json!({
                "from": "+525512345678",
                "to": "+18445550001",
                "body": "¿Abren mañana?",
                "route": "telnyx-main",
                "provider": "telnyx",
                "provider_message_id": "in-1",
                "received_at": "2025-12-02T22:02:14.512Z",
            })
        );
    }
}
