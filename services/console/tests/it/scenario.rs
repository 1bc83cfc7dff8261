//! The owner's path with all four services running: sign in, create a Shopify
//! source, write a rule with an accent (GSM-7 transliteration), post a signed
//! order to the source's URL, and follow it in the console: the message in
//! Messages, its timeline up to the provider's answer, the event's decision
//! trace, and the event on the source's page.

use std::time::Duration;

use base64::Engine as _;
use foco_harness::{ACCOUNT, TestSystem};
use hmac::{KeyInit as _, Mac as _};

use crate::harness::{Console, account_with_key, location, page, sign_in, submit};

pub const SECRET: &str = "shpss_scenario_secret";
pub const ORDER: &str = r##"{"id": 820982911946154508, "name": "#1001", "total_price": "404.95", "currency": "MXN", "customer": {"first_name": "Ana", "phone": "55 1234 5678"}}"##;

pub fn shopify_signature(body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("{start} not in {text}"))
        + start.len();
    let to = text[from..].find(end).unwrap() + from;
    &text[from..to]
}

#[tokio::test]
async fn a_signed_order_becomes_a_message_whose_story_the_console_tells() {
    let system = TestSystem::start().await;
    let key = account_with_key(&mut system.admin(), ACCOUNT).await;
    let console = Console::start(&system.control.grpc_url, &system.ingress_url).await;
    let url = |path: &str| format!("{}{path}", console.url);
    let browser = crate::harness::browser();
    sign_in(&browser, &console.url, &key, "").await;

    let created = submit(
        &browser,
        &url("/sources"),
        &url("/sources"),
        &[("name", "shop"), ("preset", "shopify"), ("secret", SECRET)],
    )
    .await;
    assert_eq!(created.status(), 303);
    let source_page = page(&browser, &url("/sources/shop")).await;
    let webhook_url = format!(
        "{}/v1/hooks/{}",
        system.ingress_url,
        between(&source_page, "/v1/hooks/", "\"")
    );

    let saved = submit(
        &browser,
        &url("/sources/shop/rules/new"),
        &url("/sources/shop/rules"),
        &[
            ("is_new", "1"),
            ("name", "owner-alert"),
            ("when", "event_type == \"orders/create\""),
            ("to", "+52 55 1234 5678"),
            (
                "body",
                "{{ event.customer.first_name }} compró {{ event.total_price }}",
            ),
            ("encoding", "gsm7"),
            ("enabled", "1"),
            ("action", "save"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303, "{}", saved.text().await.unwrap());

    let posted = crate::harness::http_client()
        .post(&webhook_url)
        .header("content-type", "application/json")
        .header("x-shopify-topic", "orders/create")
        .header("x-shopify-event-id", "scenario-1")
        .header("x-shopify-hmac-sha256", shopify_signature(ORDER))
        .body(ORDER)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202, "{}", posted.text().await.unwrap());

    let messages = foco_testkit::wait_for("the SMS in Messages", Duration::from_secs(30), || {
        let browser = browser.clone();
        let list = url("/messages?status=sent");
        async move {
            let shown = page(&browser, &list).await;
            shown.contains("Ana compro 404.95").then_some(shown)
        }
    })
    .await;
    let message_path = format!(
        "/messages/{}",
        between(&messages, "href=\"/messages/", "\"")
    );
    let story = page(&browser, &url(&message_path)).await;
    for step in [
        "Event received",
        "Rule matched: message created",
        "sent · fake",
    ] {
        assert!(story.contains(step), "{step} missing from {story}");
    }
    let event_path = format!("/events/{}", between(&story, "href=\"/events/", "\""));
    let trace = page(&browser, &url(&event_path)).await;
    assert!(trace.contains("owner-alert"), "{trace}");
    let source_page = page(&browser, &url("/sources/shop")).await;
    assert!(
        source_page.contains(&event_path),
        "the event is not on its source's page"
    );

    let overview = page(&browser, &url("/overview")).await;
    assert!(
        overview.contains("Sent or delivered: <strong>1</strong>"),
        "{overview}"
    );
    assert!(overview.contains("<svg"), "{overview}");

    let response = browser
        .get(url(&message_path))
        .header("accept-language", "es")
        .send()
        .await
        .unwrap();
    assert!(response.text().await.unwrap().contains("Evento recibido"));
    assert!(location(&created).starts_with("/sources/shop"));
}
