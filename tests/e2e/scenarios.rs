//! Reference scenarios 1 and 4 of the architecture brief.

use foco_harness::TestSystem;
use foco_proto::v1::MessageStatus;
use foco_testkit::wait_for;

use crate::support::*;

#[tokio::test]
async fn scenario_1_signup_sends_the_customer_a_discount_code() {
    let system = TestSystem::start().await;
    let source = configure_signup(&system).await;

    let posted = post_typeform_response(&system, &source).await;
    assert_eq!(posted.status, 202, "{}", posted.json);
    let event_id = posted.json["event_id"]
        .as_str()
        .expect("event_id")
        .to_owned();
    assert_eq!(posted.json["duplicate"], false);

    let requests = system.provider.wait_for_requests(1, WAIT).await;
    let sms = requests[0].json();
    assert_eq!(sms["to"], "+525512345678");
    assert_eq!(
        sms["body"],
        "Hola Laura, tu código de descuento es BIENVENIDA10"
    );
    assert_eq!(sms["event_id"], event_id.as_str());

    let message = wait_for("the message to be recorded as sent", WAIT, || async {
        let messages = system.messages().await;
        messages
            .into_iter()
            .find(|message| message.status == MessageStatus::Sent as i32)
    })
    .await;
    assert_eq!(message.to, "+525512345678");
    assert_eq!(message.event_id, event_id);
    assert!(message.sent_at_ms > 0);
    system.stop().await;
}

#[tokio::test]
async fn scenario_4_a_sale_alerts_the_owner_with_details_from_the_payload() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;

    let posted = post_shopify_order(&system, &source, "order-820982911946154508").await;
    assert_eq!(posted.status, 202, "{}", posted.json);

    let requests = system.provider.wait_for_requests(1, WAIT).await;
    let sms = requests[0].json();
    // The owner's number is configured as "+52 55 1234 5678" and normalised.
    assert_eq!(sms["to"], "+525512345678");
    assert_eq!(sms["body"], "John Smith acaba de comprar $404.95 USD");
    assert_eq!(
        requests[0].header("idempotency-key"),
        sms["job_id"].as_str()
    );
    system.stop().await;
}
