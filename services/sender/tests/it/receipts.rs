//! Delivery receipts on FOCO_RECEIPTS: applied monotonically, per part for
//! multi-part messages, late ones retried, and able to settle an unknown job.

use std::time::Duration;

use foco_proto::v1::{DeliveryReceipt, ReceiptStatus};
use foco_testkit::FakeResponse;

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

fn receipt(env: &TestEnv, provider_message_id: &str, status: ReceiptStatus) -> DeliveryReceipt {
    DeliveryReceipt {
        account_id: env.account.id.clone(),
        provider: "twilio".to_owned(),
        provider_message_id: provider_message_id.to_owned(),
        status: status as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_late_sent_never_overwrites_delivered() {
    let env = TestEnv::start().await;
    env.twilio_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    let provider_id = row.provider_message_id;

    env.publish_receipt(&receipt(&env, &provider_id, ReceiptStatus::Delivered))
        .await;
    env.wait_for_status(&job.job_id, "delivered", WAIT).await;
    env.publish_receipt(&receipt(&env, &provider_id, ReceiptStatus::Sent))
        .await;
    let mut late = receipt(&env, &provider_id, ReceiptStatus::Undelivered);
    late.error_code = "30003".to_owned();
    env.publish_receipt(&late).await;
    foco_testkit::wait_for("three receipts", WAIT, || async {
        (sender.metrics.receipts_with_result("applied") >= 3).then_some(())
    })
    .await;
    let row = env.message(&job.job_id).await.unwrap();
    assert_eq!(row.status, "delivered");
}

#[tokio::test]
async fn a_multi_part_message_is_delivered_when_every_part_is() {
    let env = TestEnv::start().await;
    env.upsert_route(
        "vonage",
        "vonage",
        &[("base_url", &env.fake.url()), ("from", "Foco")],
        &[("api_key", "k"), ("api_secret", "s")],
    )
    .await;
    let parts = |first: &str, second: &str| {
        FakeResponse::status(
            200,
            format!(
                r#"{{"message-count":"2","messages":[{{"status":"0","message-id":"{first}","message-price":"0.01"}},{{"status":"0","message-id":"{second}","message-price":"0.01"}}]}}"#
            ),
        )
    };
    env.fake
        .push_responses([parts("A-1", "A-2"), parts("B-1", "B-2")]);
    let _sender = env.start_sender(env.sender_config()).await;
    let long_body = "Hola ".repeat(40);
    let first = env.job("+525512345678", &long_body);
    let second = env.job("+525598765432", &long_body);
    env.publish(&first).await;
    env.publish(&second).await;
    env.wait_for_status(&first.job_id, "sent", WAIT).await;
    env.wait_for_status(&second.job_id, "sent", WAIT).await;
    let (segments, price): (i32, String) =
        sqlx::query_as("SELECT segments, price FROM messages WHERE job_id = $1")
            .bind(&first.job_id)
            .fetch_one(env.pool())
            .await
            .unwrap();
    assert_eq!((segments, price.as_str()), (2, "0.02000000"));

    // First message: part 2 first, then part 1.
    env.publish_receipt(&receipt(&env, "A-2", ReceiptStatus::Delivered))
        .await;
    let part_delivered = || async {
        let status: String = sqlx::query_scalar(
            "SELECT status FROM message_parts WHERE provider_message_id = 'A-2'",
        )
        .fetch_one(env.pool())
        .await
        .unwrap();
        (status == "delivered").then_some(())
    };
    foco_testkit::wait_for("part A-2 delivered", WAIT, part_delivered).await;
    assert_eq!(env.message(&first.job_id).await.unwrap().status, "sent");
    env.publish_receipt(&receipt(&env, "A-1", ReceiptStatus::Delivered))
        .await;
    env.wait_for_status(&first.job_id, "delivered", WAIT).await;

    // Second message: one part failing makes the message undelivered.
    let mut failed = receipt(&env, "B-1", ReceiptStatus::Undelivered);
    failed.error_code = "err-4".to_owned();
    env.publish_receipt(&failed).await;
    let row = env
        .wait_for_status(&second.job_id, "undelivered", WAIT)
        .await;
    assert_eq!(row.error, "err-4");
    env.publish_receipt(&receipt(&env, "B-2", ReceiptStatus::Delivered))
        .await;
    env.publish_receipt(&receipt(&env, "B-2", ReceiptStatus::Sent))
        .await;
    foco_testkit::wait_for("part B-2 delivered", WAIT, || async {
        let status: String = sqlx::query_scalar(
            "SELECT status FROM message_parts WHERE provider_message_id = 'B-2'",
        )
        .fetch_one(env.pool())
        .await
        .unwrap();
        (status == "delivered").then_some(())
    })
    .await;
    assert_eq!(
        env.message(&second.job_id).await.unwrap().status,
        "undelivered"
    );
}

#[tokio::test]
async fn an_early_receipt_waits_for_its_message() {
    let env = TestEnv::start().await;
    env.twilio_route().await;
    env.fake
        .push_responses([FakeResponse::status(201, r#"{"sid": "early-1"}"#)]);
    env.ensure_streams().await;
    env.publish_receipt(&receipt(&env, "early-1", ReceiptStatus::Delivered))
        .await;
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "delivered", WAIT).await;
}

#[tokio::test]
async fn a_receipt_naming_the_job_settles_an_unknown_outcome() {
    let env = TestEnv::start().await;
    env.twilio_route().await;
    env.fake
        .set_default(FakeResponse::status(200, "{}").with_delay(Duration::from_secs(2)));
    let mut config = env.sender_config();
    config.provider_timeout = Duration::from_millis(300);
    let _sender = env.start_sender(config).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "unknown", WAIT).await;

    let mut settles = receipt(&env, "gw-991", ReceiptStatus::Delivered);
    settles.job_id = job.job_id.clone();
    env.publish_receipt(&settles).await;
    let row = env.wait_for_status(&job.job_id, "delivered", WAIT).await;
    assert_eq!(row.provider_message_id, "gw-991");
    assert_eq!(env.fake.request_count(), 1);
}

/// Receipts find their message through `provider_message_ids`; a provider kind
/// that sends none (the http gateway) is not given a row there, a kind that
/// does (Twilio) is, and both messages keep the provider's id on their row.
#[tokio::test]
async fn only_providers_with_receipts_index_their_message_ids() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.upsert_route_as(
        "twilio",
        "twilio",
        &[("base_url", &env.fake.url()), ("from", "+15005550006")],
        &[("account_sid", "AC1"), ("auth_token", "tw")],
        false,
    )
    .await;
    env.fake.push_responses([
        FakeResponse::status(200, r#"{"id": "gw-1"}"#),
        FakeResponse::status(201, r#"{"sid": "SM-1"}"#),
    ]);
    let _sender = env.start_sender(env.sender_config()).await;
    let gateway = env.job("+525512345678", "por el gateway");
    env.publish(&gateway).await;
    let gateway_row = env.wait_for_status(&gateway.job_id, "sent", WAIT).await;
    let mut twilio = env.job("+525598765432", "por twilio");
    twilio.provider = "twilio".to_owned();
    env.publish(&twilio).await;
    let twilio_row = env.wait_for_status(&twilio.job_id, "sent", WAIT).await;
    assert_eq!(
        (
            gateway_row.provider_message_id.as_str(),
            twilio_row.provider_message_id.as_str()
        ),
        ("gw-1", "SM-1")
    );
    let indexed: Vec<(String, String)> = sqlx::query_as(
        "SELECT provider_message_id, job_id FROM provider_message_ids ORDER BY provider_message_id",
    )
    .fetch_all(env.pool())
    .await
    .unwrap();
    assert_eq!(indexed, vec![("SM-1".to_owned(), twilio.job_id.clone())]);

    env.publish_receipt(&receipt(&env, "SM-1", ReceiptStatus::Delivered))
        .await;
    env.wait_for_status(&twilio.job_id, "delivered", WAIT).await;
}
