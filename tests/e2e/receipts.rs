//! What providers say after a send, through all four services: a Telnyx delivery
//! receipt posted to ingress marks the message delivered, and a customer's STOP
//! received by Telnyx keeps the next SMS from being sent.

use foco_harness::{ACCOUNT, TestSystem};
use foco_ingress::signature::signing;
use foco_proto::v1::{GetAccountRequest, MessageStatus, UpsertProviderRouteRequest};
use foco_testkit::{FakeResponse, wait_for};

use crate::support::*;

/// The Telnyx account's signing key in this test (the public half goes to the route).
const TELNYX_KEY: [u8; 32] = [7; 32];
/// The shop owner the Shopify rule alerts, as the route sends to it.
const OWNER: &str = "+525512345678";

/// The account's default route becomes Telnyx, pointed at the fake provider.
pub async fn route_through_telnyx(system: &TestSystem) -> String {
    let (public_key, _) = signing::telnyx(&TELNYX_KEY, 0, b"");
    let mut admin = system.admin();
    admin
        .upsert_provider_route(UpsertProviderRouteRequest {
            account: ACCOUNT.to_owned(),
            name: "telnyx".to_owned(),
            kind: "telnyx".to_owned(),
            settings: [
                ("base_url".to_owned(), system.provider.url()),
                ("from".to_owned(), "+18445550001".to_owned()),
            ]
            .into(),
            credentials: [
                ("api_key".to_owned(), "KEY0123".to_owned()),
                ("public_key".to_owned(), public_key),
            ]
            .into(),
            is_default: true,
        })
        .await
        .expect("telnyx route");
    admin
        .get_account(GetAccountRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .expect("account")
        .into_inner()
        .id
}

/// Posts a Telnyx webhook, signed now, to the account's default-route URL.
pub async fn post_telnyx(system: &TestSystem, account_id: &str, body: serde_json::Value) -> u16 {
    let body = serde_json::to_vec(&body).expect("json");
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let timestamp = i64::try_from(timestamp).expect("timestamp");
    let (_, signature) = signing::telnyx(&TELNYX_KEY, timestamp, &body);
    http()
        .post(format!(
            "{}/v1/providers/telnyx/{account_id}/events",
            system.ingress_url
        ))
        .header("content-type", "application/json")
        .header("telnyx-timestamp", timestamp.to_string())
        .header("telnyx-signature-ed25519", signature)
        .body(body)
        .send()
        .await
        .expect("post to ingress")
        .status()
        .as_u16()
}

pub fn finalized(message_id: &str, status: &str) -> serde_json::Value {
    serde_json::json!({
        "data": {
            "event_type": "message.finalized",
            "id": format!("evt-{message_id}-{status}"),
            "record_type": "event",
            "payload": {
                "id": message_id,
                "direction": "outbound",
                "parts": 1,
                "errors": [],
                "from": {"phone_number": "+18445550001"},
                "to": [{"phone_number": OWNER, "status": status}],
                "text": "…",
                "type": "SMS"
            }
        }
    })
}

pub fn received(message_id: &str, from: &str, text: &str) -> serde_json::Value {
    serde_json::json!({
        "data": {
            "event_type": "message.received",
            "id": format!("evt-{message_id}"),
            "record_type": "event",
            "payload": {
                "id": message_id,
                "direction": "inbound",
                "from": {"phone_number": from},
                "to": [{"phone_number": "+18445550001"}],
                "text": text,
                "type": "SMS"
            }
        }
    })
}

/// Waits for a STOP from `phone` to land on the opt-out list: asynchronously,
/// ingress → receipts stream → sender.
pub async fn wait_for_opt_out(system: &TestSystem, phone: &str) {
    wait_for("the STOP to reach the opt-out list", WAIT, || async {
        let opted: i64 = sqlx::query_scalar("SELECT count(*) FROM opt_outs WHERE phone = $1")
            .bind(phone)
            .fetch_one(&system.control.db.pool)
            .await
            .expect("read opt-outs");
        (opted == 1).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_telnyx_delivery_receipt_marks_the_message_delivered() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;
    let account_id = route_through_telnyx(&system).await;
    system.provider.set_default(FakeResponse::status(
        200,
        r#"{"data": {"id": "tx-delivered-1", "parts": 1}}"#,
    ));

    assert_eq!(
        post_shopify_order(&system, &source, "evt-receipt")
            .await
            .status,
        202
    );
    let sent = wait_for("the alert to be sent", WAIT, || async {
        system
            .messages()
            .await
            .into_iter()
            .find(|message| message.status == MessageStatus::Sent as i32)
    })
    .await;
    assert_eq!(sent.provider_message_id, "tx-delivered-1");

    assert_eq!(
        post_telnyx(
            &system,
            &account_id,
            finalized("tx-delivered-1", "delivered")
        )
        .await,
        200
    );
    wait_for("the message to be delivered", WAIT, || async {
        system.messages().await.into_iter().find(|message| {
            message.job_id == sent.job_id && message.status == MessageStatus::Delivered as i32
        })
    })
    .await;
    system.stop().await;
}

#[tokio::test]
async fn a_stop_received_by_telnyx_keeps_the_next_sms_from_being_sent() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;
    let account_id = route_through_telnyx(&system).await;
    system.provider.set_default(FakeResponse::status(
        200,
        r#"{"data": {"id": "tx-1", "parts": 1}}"#,
    ));

    assert_eq!(
        post_telnyx(&system, &account_id, received("in-1", OWNER, " Stop ")).await,
        200
    );
    wait_for_opt_out(&system, OWNER).await;

    assert_eq!(
        post_shopify_order(&system, &source, "evt-after-stop")
            .await
            .status,
        202
    );
    let opted_out = wait_for("the alert to be recorded opted out", WAIT, || async {
        system
            .messages()
            .await
            .into_iter()
            .find(|message| message.status == MessageStatus::OptedOut as i32)
    })
    .await;
    assert_eq!(opted_out.to, OWNER);
    assert_eq!(
        system.provider.request_count(),
        0,
        "nothing reached the provider"
    );
    system.stop().await;
}
