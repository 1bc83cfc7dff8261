//! The status feed end to end: an SMS sent through the messaging API and then
//! delivered (a Telnyx receipt) shows up on `WatchMessages` and at a status
//! webhook endpoint, signed as Standard Webhooks say; a watch resumed from its
//! cursor misses nothing; an endpoint that was down gets every delivery once it
//! is up; one account's dead endpoint does not hold up another account's;
//! and an account gets webhooks from its first endpoint on, and only its own.

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use foco_harness::{ACCOUNT, ADMIN_KEY, TestSystem};
use foco_proto::v1::{
    CreateEndpointRequest, EndpointDelivery, ListEndpointDeliveriesRequest, MessageStatus,
    MessageStatusUpdate, RotateEndpointSecretRequest, SendMessageRequest, UpsertEndpointRequest,
    WatchMessagesRequest,
};
use foco_testkit::{FakeProvider, FakeResponse, RecordedRequest, wait_for};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::receipts::{finalized, post_telnyx, route_through_telnyx};
use crate::support::WAIT;

const OWNER: &str = "+525512345678";

/// What a receiver must do with a delivery: recompute the signature over
/// `{webhook-id}.{webhook-timestamp}.{body}` with the secret's key, and find
/// it among the header's space-separated signatures.
fn verified_body(request: &RecordedRequest, secret: &str) -> Option<serde_json::Value> {
    let id = request.header("webhook-id")?;
    let timestamp = request.header("webhook-timestamp")?;
    let signatures = request.header("webhook-signature")?;
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .expect("secret is base64");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).expect("any key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(&request.body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    signatures
        .split(' ')
        .any(|signature| signature == expected)
        .then(|| request.json())
}

/// Deliveries the receiver got, verified, as (type, message id).
fn received(receiver: &FakeProvider, secret: &str) -> Vec<(String, String)> {
    receiver
        .requests()
        .iter()
        .map(|request| {
            let body = verified_body(request, secret).expect("every delivery is signed");
            (
                body["type"].as_str().unwrap_or_default().to_owned(),
                body["data"]["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

async fn create_endpoint(system: &TestSystem, account: &str, url: String) -> (String, String) {
    let created = system
        .control
        .messaging(ADMIN_KEY)
        .create_endpoint(CreateEndpointRequest {
            account: account.to_owned(),
            url,
            event_types: vec!["message.sent".to_owned(), "message.delivered".to_owned()],
            description: "status".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create endpoint")
        .into_inner();
    (created.endpoint.expect("endpoint").id, created.secret)
}

async fn send(system: &TestSystem, account: &str, body: &str) -> String {
    system
        .control
        .messaging(ADMIN_KEY)
        .send_message(SendMessageRequest {
            account: account.to_owned(),
            to: OWNER.to_owned(),
            body: body.to_owned(),
            metadata: [("order".to_owned(), body.to_owned())].into(),
            ..Default::default()
        })
        .await
        .expect("send")
        .into_inner()
        .message_id
}

async fn deliveries(
    system: &TestSystem,
    account: &str,
    endpoint_id: &str,
) -> Vec<EndpointDelivery> {
    system
        .control
        .messaging(ADMIN_KEY)
        .list_endpoint_deliveries(ListEndpointDeliveriesRequest {
            account: account.to_owned(),
            endpoint_id: endpoint_id.to_owned(),
            ..Default::default()
        })
        .await
        .expect("deliveries")
        .into_inner()
        .deliveries
}

pub(crate) type Updates = tonic::Streaming<MessageStatusUpdate>;

pub(crate) async fn watch(system: &TestSystem, after_cursor: u64) -> Updates {
    system
        .control
        .messaging(ADMIN_KEY)
        .watch_messages(WatchMessagesRequest {
            account: ACCOUNT.to_owned(),
            after_cursor,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next update, within the test's deadline.
pub(crate) async fn next_update(updates: &mut Updates) -> MessageStatusUpdate {
    tokio::time::timeout(WAIT, updates.message())
        .await
        .expect("an update before the deadline")
        .expect("the stream is healthy")
        .expect("the stream is open")
}

pub(crate) fn kind_and_message(update: &MessageStatusUpdate) -> (String, String) {
    let change = update.change.as_ref().expect("change");
    (change.kind.clone(), change.message_id.clone())
}

#[tokio::test]
async fn a_delivered_sms_reaches_the_watch_and_a_signed_endpoint() {
    let system = TestSystem::start().await;
    let account_id = route_through_telnyx(&system).await;
    system.provider.set_default(FakeResponse::status(
        200,
        r#"{"data": {"id": "tx-feed-1", "parts": 1}}"#,
    ));
    let receiver = FakeProvider::start().await;
    let (_, secret) = create_endpoint(&system, ACCOUNT, format!("{}/hooks", receiver.url())).await;
    let mut updates = watch(&system, 0).await;

    let message_id = send(&system, ACCOUNT, "A-17").await;
    let sent = next_update(&mut updates).await;
    assert_eq!(
        kind_and_message(&sent),
        ("sent".to_owned(), message_id.clone())
    );
    assert_eq!(sent.metadata.get("order").map(String::as_str), Some("A-17"));

    assert_eq!(
        post_telnyx(&system, &account_id, finalized("tx-feed-1", "delivered")).await,
        200
    );
    let delivered = next_update(&mut updates).await;
    assert_eq!(
        kind_and_message(&delivered),
        ("delivered".to_owned(), message_id.clone())
    );
    assert!(delivered.cursor > sent.cursor);

    let expected: HashSet<(String, String)> = [
        ("message.sent".to_owned(), message_id.clone()),
        ("message.delivered".to_owned(), message_id.clone()),
    ]
    .into();
    wait_for("both webhooks, signed", WAIT, || async {
        let got: HashSet<_> = received(&receiver, &secret).into_iter().collect();
        (got == expected).then_some(())
    })
    .await;
    let delivered_body = receiver
        .requests()
        .iter()
        .filter_map(|request| verified_body(request, &secret))
        .find(|body| body["type"] == "message.delivered")
        .expect("delivered webhook");
    assert_eq!(delivered_body["data"]["metadata"]["order"], "A-17");
    assert_eq!(delivered_body["data"]["provider_message_id"], "tx-feed-1");
    system.stop().await;
}

/// A `whsec_` secret of 32 bytes, all `byte`.
fn operator_secret(byte: u8) -> String {
    format!("whsec_{}", STANDARD.encode([byte; 32]))
}

#[tokio::test]
async fn an_endpoint_upserted_with_the_operators_secret_signs_with_it_and_rotates() {
    let system = TestSystem::start().await;
    let receiver = FakeProvider::start().await;
    let upsert = |secret: String| UpsertEndpointRequest {
        account: ACCOUNT.to_owned(),
        name: "crm".to_owned(),
        url: format!("{}/hooks", receiver.url()),
        event_types: vec!["message.sent".to_owned()],
        description: "from a file".to_owned(),
        secret,
    };
    let mut messaging = system.control.messaging(ADMIN_KEY);
    let (first, second) = (operator_secret(1), operator_secret(2));
    let created = messaging
        .upsert_endpoint(upsert(first.clone()))
        .await
        .expect("create")
        .into_inner();
    assert!(created.created);
    assert_eq!(
        created.secret, "",
        "a secret the operator chose is not echoed"
    );
    let again = messaging
        .upsert_endpoint(upsert(first.clone()))
        .await
        .expect("the same again")
        .into_inner();
    assert!(!again.created && !again.changed, "nothing to change");

    let one = send(&system, ACCOUNT, "one").await;
    wait_for(
        "a delivery signed with the operator's secret",
        WAIT,
        || async {
            (received(&receiver, &first) == [("message.sent".to_owned(), one.clone())])
                .then_some(())
        },
    )
    .await;

    let rotated = messaging
        .upsert_endpoint(upsert(second.clone()))
        .await
        .expect("a new secret")
        .into_inner();
    assert!(rotated.changed && !rotated.created);
    let two = send(&system, ACCOUNT, "two").await;
    let by_new = wait_for(
        "the next delivery, signed with both secrets",
        WAIT,
        || async {
            let requests = receiver.requests();
            let next = requests.get(1)?;
            let by_old = verified_body(next, &first)?;
            let by_new = verified_body(next, &second)?;
            (by_old == by_new).then_some(by_new)
        },
    )
    .await;
    assert_eq!(by_new["data"]["message_id"], two.as_str());
    assert!(
        verified_body(&receiver.requests()[0], &second).is_none(),
        "the new secret signs only what came after it"
    );
    system.stop().await;
}

#[tokio::test]
async fn a_watch_resumed_from_its_cursor_misses_no_change() {
    let system = TestSystem::start().await;
    let mut updates = watch(&system, 0).await;
    let first = send(&system, ACCOUNT, "first").await;
    let seen = next_update(&mut updates).await;
    assert_eq!(kind_and_message(&seen), ("sent".to_owned(), first.clone()));
    drop(updates);

    // Changes made while nobody watches.
    let second = send(&system, ACCOUNT, "second").await;
    let third = send(&system, ACCOUNT, "third").await;
    wait_for("both to be sent", WAIT, || async {
        let sent = system
            .messages()
            .await
            .into_iter()
            .filter(|message| {
                message.job_id != first && message.status == MessageStatus::Sent as i32
            })
            .count();
        (sent == 2).then_some(())
    })
    .await;

    let mut resumed = watch(&system, seen.cursor).await;
    let mut missed = HashSet::new();
    while missed.len() < 2 {
        let update = next_update(&mut resumed).await;
        assert!(update.cursor > seen.cursor);
        let (kind, message_id) = kind_and_message(&update);
        assert_eq!(kind, "sent");
        assert_ne!(
            message_id, first,
            "the change before the cursor is not repeated"
        );
        missed.insert(message_id);
    }
    assert_eq!(missed, [second, third].into());
    system.stop().await;
}

#[tokio::test]
async fn an_endpoint_that_was_down_gets_every_delivery_once_it_is_up() {
    let system = TestSystem::start().await;
    let receiver = FakeProvider::start().await;
    receiver.set_default(FakeResponse::status(503, "down for maintenance"));
    let (endpoint_id, secret) =
        create_endpoint(&system, ACCOUNT, format!("{}/hooks", receiver.url())).await;

    let mut message_ids = HashSet::new();
    for body in ["one", "two", "three"] {
        message_ids.insert(send(&system, ACCOUNT, body).await);
    }
    // Every delivery was tried and refused at least once...
    wait_for("three refused deliveries", WAIT, || async {
        let refused: HashSet<String> = receiver
            .requests()
            .iter()
            .filter_map(|request| verified_body(request, &secret))
            .filter_map(|body| body["data"]["message_id"].as_str().map(str::to_owned))
            .collect();
        (refused == message_ids).then_some(())
    })
    .await;
    let refused_attempts = receiver.request_count();
    // ...and once the endpoint answers again, each arrives.
    receiver.set_default(FakeResponse::status(204, ""));
    let deliveries = wait_for("every delivery to succeed", WAIT, || async {
        let listed = deliveries(&system, ACCOUNT, &endpoint_id).await;
        (listed.len() == 3 && listed.iter().all(|delivery| delivery.state == "succeeded"))
            .then_some(listed)
    })
    .await;
    assert!(receiver.request_count() > refused_attempts);
    for delivery in &deliveries {
        assert!(delivery.attempts >= 2, "{delivery:?}");
        let last = delivery.attempt_log.last().expect("attempts recorded");
        assert_eq!(last.status_code, 204);
        assert_eq!(delivery.attempt_log[0].status_code, 503);
        assert_eq!(delivery.attempt_log[0].response, "down for maintenance");
    }
    let delivered: HashSet<String> = deliveries
        .iter()
        .map(|delivery| {
            let body: serde_json::Value = serde_json::from_str(&delivery.payload).expect("json");
            body["data"]["message_id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(delivered, message_ids);
    system.stop().await;
}

#[tokio::test]
async fn a_dead_endpoint_of_one_account_does_not_hold_up_another_account() {
    const OTHER: &str = "otra-tienda";
    let system = TestSystem::start().await;
    system.add_account(OTHER).await;

    // The first account's endpoint takes connections and never answers.
    let dead = FakeProvider::start().await;
    dead.set_default(
        FakeResponse::status(200, "").with_delay(std::time::Duration::from_secs(3600)),
    );
    let (dead_endpoint, _) =
        create_endpoint(&system, ACCOUNT, format!("{}/hooks", dead.url())).await;
    let alive = FakeProvider::start().await;
    let (_, alive_secret) = create_endpoint(&system, OTHER, format!("{}/hooks", alive.url())).await;

    let mut stuck = HashSet::new();
    for index in 0..12 {
        stuck.insert(send(&system, ACCOUNT, &format!("stuck-{index}")).await);
    }
    // The dead endpoint is busy with its first deliveries...
    dead.wait_for_requests(1, WAIT).await;
    let other_message = send(&system, OTHER, "other").await;
    // ...while the other account's arrives.
    wait_for("the other account's webhook", WAIT, || async {
        received(&alive, &alive_secret)
            .contains(&("message.sent".to_owned(), other_message.clone()))
            .then_some(())
    })
    .await;
    let pending = deliveries(&system, ACCOUNT, &dead_endpoint).await;
    assert!(
        pending.iter().all(|delivery| delivery.state == "pending"),
        "none of the dead endpoint's deliveries got through: {pending:?}"
    );
    system.stop().await;
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign() {
    let system = TestSystem::start().await;
    let receiver = FakeProvider::start().await;
    let (endpoint_id, old_secret) =
        create_endpoint(&system, ACCOUNT, format!("{}/hooks", receiver.url())).await;
    let new_secret = system
        .control
        .messaging(ADMIN_KEY)
        .rotate_endpoint_secret(RotateEndpointSecretRequest {
            account: ACCOUNT.to_owned(),
            id: endpoint_id,
            previous_valid_for: String::new(),
        })
        .await
        .expect("rotate")
        .into_inner()
        .secret;

    let message_id = send(&system, ACCOUNT, "rotated").await;
    let request = receiver.wait_for_requests(1, WAIT).await.remove(0);
    let signatures = request.header("webhook-signature").expect("signed");
    assert_eq!(signatures.split(' ').count(), 2, "{signatures}");
    for secret in [&old_secret, &new_secret] {
        let body = verified_body(&request, secret).expect("verifies with each secret");
        assert_eq!(body["data"]["message_id"], message_id.as_str());
    }
    system.stop().await;
}

/// Control skips the changes of accounts without an endpoint, batch by batch:
/// an account's changes from before its first endpoint reach no one, and the
/// ones after it arrive, while another account's endpoint gets only its own.
#[tokio::test]
async fn an_account_gets_webhooks_from_its_first_endpoint_on() {
    const OTHER: &str = "otra-tienda";
    let system = TestSystem::start().await;
    system.add_account(OTHER).await;
    let receiver = FakeProvider::start().await;
    let (_, secret) = create_endpoint(&system, ACCOUNT, format!("{}/hooks", receiver.url())).await;
    let mut updates = system
        .control
        .messaging(ADMIN_KEY)
        .watch_messages(WatchMessagesRequest {
            account: OTHER.to_owned(),
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner();

    let before = send(&system, OTHER, "before").await;
    let mut sent = HashSet::new();
    while !sent.contains(&before) {
        let (kind, message) = kind_and_message(&next_update(&mut updates).await);
        if kind == "sent" {
            sent.insert(message);
        }
    }
    // Published after OTHER's change, so read by control after it too.
    let marker = send(&system, ACCOUNT, "marker").await;
    wait_for("the first account's webhook", WAIT, || async {
        received(&receiver, &secret)
            .contains(&("message.sent".to_owned(), marker.clone()))
            .then_some(())
    })
    .await;

    let other_receiver = FakeProvider::start().await;
    let (_, other_secret) =
        create_endpoint(&system, OTHER, format!("{}/hooks", other_receiver.url())).await;
    let after = send(&system, OTHER, "after").await;
    wait_for("the other account's webhook", WAIT, || async {
        received(&other_receiver, &other_secret)
            .contains(&("message.sent".to_owned(), after.clone()))
            .then_some(())
    })
    .await;
    let other_got: Vec<_> = received(&other_receiver, &other_secret)
        .into_iter()
        .map(|(_, message)| message)
        .collect();
    assert_eq!(other_got, [after], "nothing from before its endpoint");
    assert!(
        received(&receiver, &secret)
            .iter()
            .all(|(_, message)| *message == marker),
        "the first account's endpoint gets only its own changes"
    );
    system.stop().await;
}
