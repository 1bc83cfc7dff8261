//! A body that says JSON and is not: refused at the door where Foco reads it,
//! stored and reported on its event where a platform signed it.

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{ListEventReportsRequest, MessageStatus};
use foco_testkit::wait_for;

use crate::support::*;

/// Shopify's body is stored as signed (a 400 would make Shopify retry and, in
/// the end, disable the webhook); rules cannot read it, says so on the event and
/// sends nothing, and the next order goes through as usual.
#[tokio::test]
async fn a_shopify_body_that_is_not_json_is_reported_on_its_event() {
    let system = TestSystem::start().await;
    let source = configure_shop(&system).await;

    let broken = br#"{"id": 820982911946154508, "total_price": "#.to_vec();
    let posted = post_shopify(&system, &source, "orders/create", "evt-broken", broken).await;
    assert_eq!(posted.status, 202, "{}", posted.json);
    let event_id = posted.json["event_id"].as_str().unwrap().to_owned();

    let report = wait_for("the event's unreadable report", WAIT, || async {
        system
            .scheduling()
            .list_event_reports(ListEventReportsRequest {
                account: ACCOUNT.to_owned(),
                event_id: event_id.clone(),
                limit: 10,
            })
            .await
            .expect("list event reports")
            .into_inner()
            .reports
            .into_iter()
            .find(|report| report.kind == "unreadable")
    })
    .await;
    assert!(
        report
            .detail
            .starts_with("event payload is not valid JSON: "),
        "{}",
        report.detail
    );

    let next = post_shopify_order(&system, &source, "evt-next").await;
    assert_eq!(next.status, 202);
    wait_for("the next order's message sent", WAIT, || async {
        system
            .messages()
            .await
            .iter()
            .any(|message| message.status == MessageStatus::Sent as i32)
            .then_some(())
    })
    .await;
    assert_eq!(
        system.messages().await.len(),
        1,
        "nothing for the broken body"
    );
    assert_eq!(system.provider.request_count(), 1);
    system.stop().await;
}
