//! Opt-outs (API, STOP/START keywords, provider errors), HELP answers and quiet
//! hours for marketing messages.

use std::time::Duration;

use chrono::Timelike as _;
use foco_proto::v1::{
    AddOptOutRequest, InboundSms, ListMessagesRequest, ListOptOutsRequest, MessageStatus, Priority,
    RemoveOptOutRequest,
};
use foco_testkit::FakeResponse;

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);
const CUSTOMER: &str = "+525512345678";

fn inbound(env: &TestEnv, id: &str, body: &str) -> InboundSms {
    InboundSms {
        account_id: env.account.id.clone(),
        provider: "http".to_owned(),
        route: String::new(),
        from: "55 1234 5678".to_owned(),
        to: "+15550009999".to_owned(),
        body: body.to_owned(),
        provider_message_id: id.to_owned(),
        received_at_ms: chrono::Utc::now().timestamp_millis(),
    }
}

async fn opted_out(env: &TestEnv) -> bool {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM opt_outs WHERE phone = $1")
        .bind(CUSTOMER)
        .fetch_one(env.pool())
        .await
        .unwrap();
    count == 1
}

#[tokio::test]
async fn opt_outs_from_the_api_are_checked_before_every_send() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let mut delivery = env.delivery();
    let added = delivery
        .add_opt_out(AddOptOutRequest {
            account: "acme".to_owned(),
            phone: "(55) 1234-5678".to_owned(),
            reason: "asked by phone".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(added.phone, CUSTOMER);
    assert_eq!(added.source, "api");
    let _sender = env.start_sender(env.sender_config()).await;

    let blocked = env.job("55 1234 5678", "promo");
    let other = env.job("+525598765432", "promo");
    env.publish(&blocked).await;
    env.publish(&other).await;
    let row = env
        .wait_for_status(&blocked.job_id, "opted-out", WAIT)
        .await;
    assert_eq!(row.attempts, 0);
    env.wait_for_status(&other.job_id, "sent", WAIT).await;
    assert_eq!(env.fake.request_count(), 1);
    assert_eq!(env.fake.requests()[0].json()["to"], "+525598765432");
    // The messages API reports it as opted out, and filters on it.
    let opted_out = env
        .control()
        .list_messages(ListMessagesRequest {
            account: "acme".to_owned(),
            status: MessageStatus::OptedOut as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .messages;
    assert_eq!(opted_out.len(), 1);
    assert_eq!(opted_out[0].job_id, blocked.job_id);
    assert_eq!(opted_out[0].status, MessageStatus::OptedOut as i32);

    let listed = delivery
        .list_opt_outs(ListOptOutsRequest {
            account: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.opt_outs.len(), 1);
    let removed = delivery
        .remove_opt_out(RemoveOptOutRequest {
            account: "acme".to_owned(),
            phone: CUSTOMER.to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(removed.removed);
    let again = env.job("55 1234 5678", "promo 2");
    env.publish(&again).await;
    env.wait_for_status(&again.job_id, "sent", WAIT).await;
}

#[tokio::test]
async fn stop_baja_and_start_from_inbound_sms() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;

    env.publish_inbound(&inbound(&env, "in-1", "Baja")).await;
    foco_testkit::wait_for("opt-out", WAIT, || async {
        opted_out(&env).await.then_some(())
    })
    .await;
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "opted-out", WAIT).await;

    env.publish_inbound(&inbound(&env, "in-2", "START")).await;
    foco_testkit::wait_for("opt-in", WAIT, || async {
        (!opted_out(&env).await).then_some(())
    })
    .await;
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "sent", WAIT).await;

    env.publish_inbound(&inbound(&env, "in-3", " stop. ")).await;
    foco_testkit::wait_for("opt-out again", WAIT, || async {
        opted_out(&env).await.then_some(())
    })
    .await;
    // Ordinary replies change nothing.
    env.publish_inbound(&inbound(&env, "in-4", "gracias, ¿a qué hora abren?"))
        .await;
    sender_receipts(&sender, 4).await;
    assert!(opted_out(&env).await);
    assert_eq!(env.fake.request_count(), 1);
}

async fn sender_receipts(sender: &crate::harness::RunningSender, count: u64) {
    foco_testkit::wait_for("receipts handled", WAIT, || async {
        let handled: u64 = ["opt_out", "opt_in", "inbound", "help", "applied"]
            .iter()
            .map(|result| sender.metrics.receipts_with_result(result))
            .sum();
        (handled >= count).then_some(())
    })
    .await;
}

#[tokio::test]
async fn help_is_answered_with_the_route_help_text() {
    let env = TestEnv::start().await;
    let url = format!("{}/sms", env.fake.url());
    env.upsert_route(
        "gateway",
        "http",
        &[
            ("url", &url),
            (
                "help_text",
                "Tienda Ale: ayuda en ale.mx/ayuda. BAJA para salir.",
            ),
        ],
        &[],
    )
    .await;
    let _sender = env.start_sender(env.sender_config()).await;
    env.publish_inbound(&inbound(&env, "in-help", "ayuda"))
        .await;
    let requests = env.fake.wait_for_requests(1, WAIT).await;
    let body = requests[0].json();
    assert_eq!(body["to"], CUSTOMER);
    assert_eq!(body["from"], "+15550009999");
    assert_eq!(
        body["body"],
        "Tienda Ale: ayuda en ale.mx/ayuda. BAJA para salir."
    );
}

#[tokio::test]
async fn a_provider_opt_out_error_opts_the_number_out() {
    let env = TestEnv::start().await;
    env.upsert_route(
        "twilio",
        "twilio",
        &[("base_url", &env.fake.url()), ("from", "+15005550006")],
        &[("account_sid", "AC1"), ("auth_token", "tw")],
    )
    .await;
    env.fake.push_responses([FakeResponse::status(
        400,
        r#"{"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}"#,
    )]);
    let _sender = env.start_sender(env.sender_config()).await;
    let job = env.job(CUSTOMER, "hola");
    env.publish(&job).await;
    let row = env.wait_for_status(&job.job_id, "opted-out", WAIT).await;
    assert!(row.error.starts_with("21610"), "{}", row.error);
    let source: String = sqlx::query_scalar("SELECT source FROM opt_outs WHERE phone = $1")
        .bind(CUSTOMER)
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(source, "provider");
    let next = env.job(CUSTOMER, "otra vez");
    env.publish(&next).await;
    env.wait_for_status(&next.job_id, "opted-out", WAIT).await;
    assert_eq!(
        env.fake.request_count(),
        1,
        "the opted-out number is not called again"
    );
}

/// A quiet window around the current minute in Mexico City.
fn quiet_now_in_mexico_city() -> String {
    let now = chrono::Utc::now().with_timezone(&chrono_tz::America::Mexico_City);
    let minutes = now.hour() * 60 + now.minute();
    let start = (minutes + 24 * 60 - 30) % (24 * 60);
    let end = (minutes + 30) % (24 * 60);
    format!(
        "{:02}:{:02}-{:02}:{:02}",
        start / 60,
        start % 60,
        end / 60,
        end % 60
    )
}

#[tokio::test]
async fn marketing_waits_for_quiet_hours_and_transactional_does_not() {
    let env = TestEnv::start().await;
    let url = format!("{}/sms", env.fake.url());
    let quiet = quiet_now_in_mexico_city();
    env.upsert_route(
        "gateway",
        "http",
        &[("url", &url), ("quiet_hours", &quiet)],
        &[],
    )
    .await;
    let sender = env.start_sender(env.sender_config()).await;

    let mut marketing = env.job(CUSTOMER, "20% de descuento hoy");
    marketing.priority = Priority::Marketing as i32;
    let mut cancelled = env.job("+525598765432", "otra promo");
    cancelled.priority = Priority::Marketing as i32;
    let code = env.job(CUSTOMER, "Tu código es 4921");
    for job in [&marketing, &cancelled, &code] {
        env.publish(job).await;
    }
    env.wait_for_status(&code.job_id, "sent", WAIT).await;
    sender.wait_for_jobs("held", 2).await;
    let row = env.message(&marketing.job_id).await.unwrap();
    assert_eq!(row.status, "queued");
    assert!(
        row.error.starts_with("held for quiet hours until"),
        "{}",
        row.error
    );
    assert_eq!(env.fake.request_count(), 1, "only the code went out");

    let answer = env
        .delivery()
        .cancel_message(foco_proto::v1::CancelMessageRequest {
            account: "acme".to_owned(),
            job_id: cancelled.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(answer.cancelled);
    assert_eq!(answer.status, "cancelled");

    // The morning comes: quiet hours end (here: the route drops them; a marketing
    // probe shows the sender has the new route) and the held job is released.
    env.upsert_route(
        "gateway",
        "http",
        &[("url", &url), ("quiet_hours", "off")],
        &[],
    )
    .await;
    let mut probe = env.job("+525511112222", "probe");
    probe.priority = Priority::Marketing as i32;
    env.publish(&probe).await;
    env.wait_for_status(&probe.job_id, "sent", WAIT).await;
    sqlx::query("UPDATE held_jobs SET release_at = now()")
        .execute(env.pool())
        .await
        .unwrap();
    env.wait_for_status(&marketing.job_id, "sent", WAIT).await;
    assert_eq!(
        env.message(&cancelled.job_id).await.unwrap().status,
        "cancelled"
    );
    assert_eq!(env.fake.request_count(), 3);
}
