//! Opt-outs (API, STOP/START keywords applied in the order they were received,
//! provider errors), HELP answers and quiet hours for marketing messages.

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
    inbound_at(env, id, body, chrono::Utc::now().timestamp_millis())
}

/// An inbound SMS that ingress received at `received_at_ms`.
fn inbound_at(env: &TestEnv, id: &str, body: &str, received_at_ms: i64) -> InboundSms {
    InboundSms {
        account_id: env.account.id.clone(),
        provider: "http".to_owned(),
        route: String::new(),
        from: "55 1234 5678".to_owned(),
        to: "+15550009999".to_owned(),
        body: body.to_owned(),
        provider_message_id: id.to_owned(),
        received_at_ms,
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

/// Waits until the customer's number is opted out (`true`) or not (`false`).
async fn wait_for_opt_out(env: &TestEnv, expected: bool) {
    let what = if expected { "opt-out" } else { "opt-in" };
    foco_testkit::wait_for(what, WAIT, || async {
        (opted_out(env).await == expected).then_some(())
    })
    .await;
}

/// A test env with the http route and a running sender.
async fn env_with_sender() -> (TestEnv, crate::harness::RunningSender) {
    let env = TestEnv::start().await;
    env.http_route().await;
    let sender = env.start_sender(env.sender_config()).await;
    (env, sender)
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
    let (env, sender) = env_with_sender().await;

    env.publish_inbound(&inbound(&env, "in-1", "Baja")).await;
    wait_for_opt_out(&env, true).await;
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "opted-out", WAIT).await;

    env.publish_inbound(&inbound(&env, "in-2", "START")).await;
    wait_for_opt_out(&env, false).await;
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "sent", WAIT).await;

    env.publish_inbound(&inbound(&env, "in-3", " stop. ")).await;
    wait_for_opt_out(&env, true).await;
    // Ordinary replies change nothing.
    env.publish_inbound(&inbound(&env, "in-4", "gracias, ¿a qué hora abren?"))
        .await;
    sender_receipts(&sender, 4).await;
    assert!(opted_out(&env).await);
    assert_eq!(env.fake.request_count(), 1);
}

#[tokio::test]
async fn a_start_received_before_a_stop_but_handled_after_it_leaves_the_number_opted_out() {
    let (env, sender) = env_with_sender().await;
    let stop_received_at = chrono::Utc::now().timestamp_millis();

    env.publish_inbound(&inbound_at(&env, "in-stop", "STOP", stop_received_at))
        .await;
    wait_for_opt_out(&env, true).await;
    // The customer's START came a minute before the STOP; its callback is
    // handled only now (a redelivery, or a slower replica).
    env.publish_inbound(&inbound_at(
        &env,
        "in-start-earlier",
        "START",
        stop_received_at - 60_000,
    ))
    .await;
    sender_receipts(&sender, 2).await;
    assert!(opted_out(&env).await, "the older START changed nothing");
    assert_eq!(sender.metrics.receipts_with_result("superseded"), 1);
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "opted-out", WAIT).await;
    assert_eq!(env.fake.request_count(), 0);
}

#[tokio::test]
async fn a_start_received_after_a_stop_resubscribes_and_an_older_stop_does_not_undo_it() {
    let (env, sender) = env_with_sender().await;
    let stop_received_at = chrono::Utc::now().timestamp_millis() - 120_000;

    env.publish_inbound(&inbound_at(&env, "in-stop", "Baja", stop_received_at))
        .await;
    wait_for_opt_out(&env, true).await;
    env.publish_inbound(&inbound_at(
        &env,
        "in-start",
        "Alta",
        stop_received_at + 60_000,
    ))
    .await;
    wait_for_opt_out(&env, false).await;
    // A second STOP sent between the two, handled last: the START is newer.
    env.publish_inbound(&inbound_at(
        &env,
        "in-stop-between",
        "STOP",
        stop_received_at + 30_000,
    ))
    .await;
    sender_receipts(&sender, 3).await;
    assert!(!opted_out(&env).await, "the older STOP changed nothing");
    assert_eq!(sender.metrics.receipts_with_result("superseded"), 1);
    let job = env.job(CUSTOMER, "promo");
    env.publish(&job).await;
    env.wait_for_status(&job.job_id, "sent", WAIT).await;
}

#[tokio::test]
async fn yes_is_an_ordinary_reply_not_a_start() {
    let (env, sender) = env_with_sender().await;

    env.publish_inbound(&inbound(&env, "in-stop", "STOP")).await;
    wait_for_opt_out(&env, true).await;
    env.publish_inbound(&inbound(&env, "in-yes", "Yes")).await;
    sender_receipts(&sender, 2).await;
    assert!(opted_out(&env).await, "YES does not re-subscribe");
    assert_eq!(sender.metrics.receipts_with_result("inbound"), 1);
}

async fn sender_receipts(sender: &crate::harness::RunningSender, count: u64) {
    foco_testkit::wait_for("receipts handled", WAIT, || async {
        let handled: u64 = [
            "opt_out",
            "opt_in",
            "superseded",
            "inbound",
            "help",
            "applied",
        ]
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
    env.twilio_route().await;
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
    // Control announces the change once it is stored; a probe the sender takes
    // before the announcement reaches its cache is held like the promotion, so
    // probes go out until one is sent.
    let mut probes = 0;
    loop {
        probes += 1;
        assert!(
            probes <= 20,
            "the sender never saw the route without quiet hours"
        );
        let held_before = sender.metrics.jobs_with_outcome("held");
        let mut probe = env.job("+525511112222", "probe");
        probe.priority = Priority::Marketing as i32;
        env.publish(&probe).await;
        let sent = foco_testkit::wait_for("the probe sent or held", WAIT, || async {
            if env
                .message(&probe.job_id)
                .await
                .is_some_and(|row| row.status == "sent")
            {
                return Some(true);
            }
            (sender.metrics.jobs_with_outcome("held") > held_before).then_some(false)
        })
        .await;
        if sent {
            break;
        }
    }
    sqlx::query("UPDATE held_jobs SET release_at = now() WHERE job_id = $1")
        .bind(&marketing.job_id)
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
