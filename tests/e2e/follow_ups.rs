//! Reference scenarios 2 (a reminder five days after sign-up unless the customer
//! bought) and 3 (abandoned cart), with delays shortened to seconds: the rules
//! service schedules and cancels; the sending systems only post their webhooks.

use std::time::Duration;

use foco_harness::{ACCOUNT, TestSystem};
use foco_proto::v1::{ListScheduledJobsRequest, UpsertRuleRequest};
use foco_testkit::wait_for;

use crate::support::*;

async fn scheduled(system: &TestSystem, state: &str) -> Vec<foco_proto::v1::ScheduledJob> {
    system
        .scheduling()
        .list_scheduled_jobs(ListScheduledJobsRequest {
            account: ACCOUNT.to_owned(),
            state: state.to_owned(),
            ..Default::default()
        })
        .await
        .expect("list scheduled jobs")
        .into_inner()
        .jobs
}

fn bodies_containing(system: &TestSystem, needle: &str) -> Vec<serde_json::Value> {
    system
        .provider
        .requests()
        .iter()
        .map(|request| request.json())
        .filter(|sms| {
            sms["body"]
                .as_str()
                .is_some_and(|body| body.contains(needle))
        })
        .collect()
}

#[tokio::test]
async fn scenario_2_a_purchase_cancels_the_reminder_and_without_one_it_is_sent() {
    let system = TestSystem::start().await;
    let signup = configure_signup(&system).await;
    let shop = configure_shop(&system).await;
    system
        .admin()
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "signup-form".to_owned(),
            name: "reminder".to_owned(),
            when: r#"event_type == "form_response""#.to_owned(),
            to: vec![r#"{{ (event.form_response.answers | selectattr("type", "eq", "phone_number") | first).phone_number }}"#.to_owned()],
            body: "Tu código BIENVENIDA10 sigue vigente".to_owned(),
            // Five days in production; two seconds here.
            delay: "2s".to_owned(),
            key: r#"{{ (event.form_response.answers | selectattr("type", "eq", "email") | first).email }}"#.to_owned(),
            cancel_when: r#"event_type == "orders/create""#.to_owned(),
            cancel_key: "{{ event.email }}".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create reminder rule");

    // Laura signs up and buys: her reminder is cancelled.
    let laura = typeform_response_from("resp-laura", "Laura", "laura@example.com", "+525511111111");
    assert_eq!(post_typeform(&system, &signup, laura).await.status, 202);
    let order = shopify_order_for("laura@example.com", "");
    assert_eq!(
        post_shopify(&system, &shop, "orders/create", "order-laura", order)
            .await
            .status,
        202
    );
    let cancelled = wait_for("Laura's reminder to be cancelled", WAIT, || async {
        let jobs = scheduled(&system, "cancelled").await;
        (!jobs.is_empty()).then_some(jobs)
    })
    .await;
    assert_eq!(cancelled[0].to, "+525511111111");
    assert!(
        cancelled[0].cancel_reason.contains("cancelled by event"),
        "{}",
        cancelled[0].cancel_reason
    );

    // Marco signs up and does not buy: his reminder goes out when due.
    let marco = typeform_response_from("resp-marco", "Marco", "marco@example.com", "+525522222222");
    assert_eq!(post_typeform(&system, &signup, marco).await.status, 202);
    let reminders = wait_for("Marco's reminder", WAIT, || async {
        let reminders = bodies_containing(&system, "sigue vigente");
        (!reminders.is_empty()).then_some(reminders)
    })
    .await;
    assert_eq!(reminders[0]["to"], "+525522222222");
    // Both got the welcome code at once; only Marco got the reminder.
    assert_eq!(
        bodies_containing(&system, "tu código de descuento").len(),
        2
    );
    wait_for("the reminder job to be published", WAIT, || async {
        (scheduled(&system, "published").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(bodies_containing(&system, "sigue vigente").len(), 1);
    assert!(scheduled(&system, "pending").await.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn scenario_3_an_order_cancels_the_abandoned_cart_sms_and_without_one_it_is_sent() {
    let system = TestSystem::start().await;
    let shop = configure_shop(&system).await;
    system
        .admin()
        .upsert_rule(UpsertRuleRequest {
            account: ACCOUNT.to_owned(),
            source: "shop".to_owned(),
            name: "abandoned-cart".to_owned(),
            when: r#"event_type == "checkouts/create""#.to_owned(),
            to: vec!["{{ event.phone }}".to_owned()],
            body: "Hola {{ event.customer.first_name }}, tu carrito te espera: {{ event.abandoned_checkout_url }}".to_owned(),
            delay: "2s".to_owned(),
            key: "{{ event.token }}".to_owned(),
            cancel_when: r#"event_type == "orders/create""#.to_owned(),
            cancel_key: "{{ event.checkout_token }}".to_owned(),
            encoding: "gsm7".to_owned(),
            ..Default::default()
        })
        .await
        .expect("create abandoned-cart rule");
    let checkout = |token: &str, phone: &str| {
        serde_json::to_vec(&serde_json::json!({
            "token": token,
            "phone": phone,
            "customer": { "first_name": "Ramón" },
            "abandoned_checkout_url": format!("https://tienda-ale.mx/checkouts/{token}/recover"),
        }))
        .expect("serialise")
    };

    // Checkout A is completed by an order carrying its token: no SMS.
    assert_eq!(
        post_shopify(
            &system,
            &shop,
            "checkouts/create",
            "chk-a",
            checkout("tok-a", "5511111111")
        )
        .await
        .status,
        202
    );
    let order = shopify_order_for("ramon@example.com", "tok-a");
    assert_eq!(
        post_shopify(&system, &shop, "orders/create", "order-a", order)
            .await
            .status,
        202
    );
    wait_for("checkout A's SMS to be cancelled", WAIT, || async {
        (scheduled(&system, "cancelled").await.len() == 1).then_some(())
    })
    .await;

    // Checkout B is abandoned: one SMS with the link, transliterated to GSM-7.
    assert_eq!(
        post_shopify(
            &system,
            &shop,
            "checkouts/create",
            "chk-b",
            checkout("tok-b", "5522222222")
        )
        .await
        .status,
        202
    );
    let recovered = wait_for("checkout B's SMS", Duration::from_secs(20), || async {
        let sms = bodies_containing(&system, "tu carrito te espera");
        (!sms.is_empty()).then_some(sms)
    })
    .await;
    assert_eq!(recovered[0]["to"], "+525522222222");
    assert_eq!(
        recovered[0]["body"],
        "Hola Ramon, tu carrito te espera: https://tienda-ale.mx/checkouts/tok-b/recover"
    );
    wait_for("checkout B's job to be published", WAIT, || async {
        (scheduled(&system, "published").await.len() == 1).then_some(())
    })
    .await;
    assert_eq!(bodies_containing(&system, "tu carrito te espera").len(), 1);
    system.stop().await;
}
