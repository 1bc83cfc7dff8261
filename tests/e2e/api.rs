//! The messaging API end to end: SendMessage and TriggerEvent through the same
//! rules, scheduler and sender as webhooks, to the fake provider.

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{
    ListScheduledJobsRequest, MessageStatus, SendMessageRequest, TriggerEventRequest,
};
use foco_testkit::wait_for;

use crate::support::*;

fn message(to: &str, body: &str, idempotency_key: &str) -> SendMessageRequest {
    SendMessageRequest {
        to: to.to_owned(),
        body: body.to_owned(),
        idempotency_key: idempotency_key.to_owned(),
        ..Default::default()
    }
}

/// Waits until `count` messages are recorded sent: the pipeline is ordered, so
/// once a later message is out, a duplicate of an earlier one would be too.
async fn wait_for_sent(system: &TestSystem, count: usize) {
    wait_for("messages sent", WAIT, || async {
        let sent = system
            .messages()
            .await
            .iter()
            .filter(|message| message.status == MessageStatus::Sent as i32)
            .count();
        (sent == count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn one_idempotency_key_sends_one_sms_even_when_calls_race() {
    let system = TestSystem::start().await;
    let messaging = system.control.messaging(&account_key(&system).await);
    let request = message("55 1234 5678", "Tu código es 4821", "otp-4821");
    let calls = (0..6).map(|_| {
        let mut messaging = messaging.clone();
        let request = request.clone();
        async move { messaging.send_message(request).await }
    });
    let answers: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.expect("send").into_inner())
        .collect();
    let message_id = answers[0].message_id.clone();
    assert!(answers.iter().all(|answer| answer.message_id == message_id));
    let retried = messaging
        .clone()
        .send_message(request)
        .await
        .expect("retry")
        .into_inner();
    assert_eq!(
        (&retried.message_id, retried.duplicate),
        (&message_id, true)
    );
    let fence = messaging
        .clone()
        .send_message(message("+525512345679", "después", ""))
        .await
        .expect("send")
        .into_inner();

    wait_for_sent(&system, 2).await;
    let requests = system.provider.requests();
    assert_eq!(requests.len(), 2);
    let sms = requests
        .iter()
        .map(|request| request.json())
        .find(|sms| sms["job_id"] == message_id.as_str())
        .expect("the keyed message reached the provider");
    assert_eq!(sms["to"], "+525512345678");
    assert_eq!(sms["body"], "Tu código es 4821");
    let messages = system.messages().await;
    let recorded: Vec<_> = messages.iter().map(|m| m.job_id.as_str()).collect();
    assert!(recorded.contains(&message_id.as_str()));
    assert!(recorded.contains(&fence.message_id.as_str()));
    system.stop().await;
}

#[tokio::test]
async fn a_delayed_message_is_sent_by_the_scheduler_when_due() {
    let system = TestSystem::start().await;
    let mut messaging = system.control.messaging(&account_key(&system).await);
    let sent = messaging
        .send_message(SendMessageRequest {
            delay: "1s".to_owned(),
            ..message("+525512345678", "Recordatorio de tu cita", "")
        })
        .await
        .expect("send")
        .into_inner();
    assert!(sent.send_at_ms > 0);

    let requests = system.provider.wait_for_requests(1, WAIT).await;
    assert_eq!(requests[0].json()["job_id"], sent.message_id.as_str());
    let jobs = system
        .scheduling()
        .list_scheduled_jobs(ListScheduledJobsRequest {
            account: ACCOUNT.to_owned(),
            state: "published".to_owned(),
            ..Default::default()
        })
        .await
        .expect("list jobs")
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, sent.message_id);
    system.stop().await;
}

#[tokio::test]
async fn a_triggered_event_sends_what_its_webhook_sends() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;
    let mut messaging = system.control.messaging(&account_key(&system).await);

    let order = |source: &str| TriggerEventRequest {
        source: source.to_owned(),
        event_type: "orders/create".to_owned(),
        payload: String::from_utf8(shopify_order(|order| order["token"] = "api".into()))
            .expect("fixture is text"),
        event_id: "order-api".to_owned(),
        ..Default::default()
    };
    let triggered = messaging
        .trigger_event(order("shop"))
        .await
        .expect("trigger")
        .into_inner();
    assert!(!triggered.duplicate);
    let posted = post_shopify_order(&system, &source, "order-webhook").await;
    assert_eq!(posted.status, 202, "{}", posted.json);

    let requests = system.provider.wait_for_requests(2, WAIT).await;
    let bodies: Vec<_> = requests.iter().map(|request| request.json()).collect();
    for sms in &bodies {
        assert_eq!(sms["to"], "+525512345678");
        assert_eq!(sms["body"], "John Smith acaba de comprar $404.95 USD");
    }
    assert!(
        bodies
            .iter()
            .any(|sms| sms["event_id"] == triggered.event_id.as_str())
    );

    // The same event triggered again is a duplicate and sends nothing more.
    let again = messaging
        .trigger_event(order(&source.id))
        .await
        .expect("trigger again")
        .into_inner();
    assert_eq!(
        (&again.event_id, again.duplicate),
        (&triggered.event_id, true)
    );
    wait_for_sent(&system, 2).await;
    assert_eq!(system.provider.request_count(), 2);
    system.stop().await;
}
