//! Message validity end to end: a reminder whose time is long past is
//! recorded `expired` with its reason and never reaches the provider, whether
//! it comes from a rule's `send_at` or a `SendMessage` call; one still within
//! its validity is sent.

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{
    ListMessagesRequest, Message, MessageStatus, SendMessageRequest, TriggerEventRequest,
    UpsertRuleRequest, UpsertSourceRequest,
};
use foco_testkit::wait_for;

use crate::support::*;

/// Waits until the messages of `event_id` (every message when empty) have
/// reached a final status, and returns them.
async fn settled(system: &TestSystem, event_id: &str, count: usize) -> Vec<Message> {
    wait_for("messages settled", WAIT, || async {
        let messages = system
            .admin()
            .list_messages(ListMessagesRequest {
                account: ACCOUNT.to_owned(),
                event_id: event_id.to_owned(),
                limit: 100,
                ..Default::default()
            })
            .await
            .expect("list messages")
            .into_inner()
            .messages;
        let final_status = |message: &Message| {
            message.status == MessageStatus::Sent as i32
                || message.status == MessageStatus::Expired as i32
        };
        (messages.len() == count && messages.iter().all(final_status)).then_some(messages)
    })
    .await
}

#[tokio::test]
async fn a_send_at_long_past_without_validity_expires_by_the_account_default() {
    let system = TestSystem::start().await;
    let mut messaging = system.control.messaging(&account_key(&system).await);
    let now = chrono::Utc::now();
    let send = |send_at: chrono::DateTime<chrono::Utc>, to: &str| SendMessageRequest {
        account: ACCOUNT.to_owned(),
        to: to.to_owned(),
        body: "Tu cita es a las 10:20".to_owned(),
        send_at: send_at.to_rfc3339(),
        ..Default::default()
    };
    // Years ago: past the default hour of validity. Ten minutes ago: within it.
    let stale = messaging
        .send_message(send(
            now - chrono::TimeDelta::days(3 * 365),
            "+525512345678",
        ))
        .await
        .expect("a past send_at is accepted")
        .into_inner();
    let recent = messaging
        .send_message(send(now - chrono::TimeDelta::minutes(10), "+525512345679"))
        .await
        .expect("send")
        .into_inner();
    assert_eq!(
        (stale.send_at_ms, recent.send_at_ms),
        (0, 0),
        "both are due at once"
    );

    let messages = settled(&system, "", 2).await;
    let by_id = |id: &str| {
        messages
            .iter()
            .find(|message| message.job_id == id)
            .expect("recorded")
    };
    let expired = by_id(&stale.message_id);
    assert_eq!(expired.status, MessageStatus::Expired as i32);
    assert!(
        expired.error.starts_with("expired: valid until "),
        "{}",
        expired.error
    );
    assert_eq!(by_id(&recent.message_id).status, MessageStatus::Sent as i32);
    let requests = system.provider.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["job_id"], recent.message_id.as_str());
    system.stop().await;
}

#[tokio::test]
async fn a_rule_reminder_of_a_long_gone_appointment_is_expired_on_its_event() {
    let system = TestSystem::start().await;
    let mut admin = system.admin();
    admin
        .upsert_source(UpsertSourceRequest {
            account: ACCOUNT.to_owned(),
            name: "bookings".to_owned(),
            preset: "none".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create source");
    admin
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "bookings".to_owned(),
            name: "reminder".to_owned(),
            to: vec!["{{ event.phone }}".to_owned()],
            body: "Tu cita es a las {{ event.start | date('%H:%M') }}".to_owned(),
            send_at: r#"{{ event.start | shift("-1h") }}"#.to_owned(),
            valid_for: "2h".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create rule");
    let mut messaging = system.control.messaging(&account_key(&system).await);
    let booking =
        |event_id: &str, phone: &str, start: chrono::DateTime<chrono::Utc>| TriggerEventRequest {
            account: ACCOUNT.to_owned(),
            source: "bookings".to_owned(),
            event_type: "booking.created".to_owned(),
            payload: serde_json::json!({ "phone": phone, "start": start.to_rfc3339() }).to_string(),
            event_id: event_id.to_owned(),
            ..Default::default()
        };
    let now = chrono::Utc::now();
    let gone = messaging
        .trigger_event(booking(
            "booking-2023",
            "+525512345678",
            now - chrono::TimeDelta::days(1000),
        ))
        .await
        .expect("trigger")
        .into_inner();
    // Its reminder time was half an hour ago: within the rule's two hours.
    let soon = messaging
        .trigger_event(booking(
            "booking-soon",
            "+525512345679",
            now + chrono::TimeDelta::minutes(30),
        ))
        .await
        .expect("trigger")
        .into_inner();

    let expired = settled(&system, &gone.event_id, 1).await;
    assert_eq!(expired[0].status, MessageStatus::Expired as i32);
    assert!(
        expired[0].error.contains("valid until"),
        "{}",
        expired[0].error
    );
    let sent = settled(&system, &soon.event_id, 1).await;
    assert_eq!(sent[0].status, MessageStatus::Sent as i32);
    let requests = system.provider.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["to"], "+525512345679");
    system.stop().await;
}
