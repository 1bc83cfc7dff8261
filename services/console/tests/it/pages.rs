//! Every page renders against a real control: sources from a preset with the
//! platform's instructions, write-only secrets, the rule editor's preview
//! (UCS-2 highlighted, the GSM-7 switch, errors), saving, both languages, and
//! the delivery pages.

use crate::harness::{Setup, location, page, submit, text};

const SHOPIFY_ORDER: &str = r##"{"name": "#1001", "total_price": "404.95", "currency": "MXN", "customer": {"first_name": "Ana", "phone": "55 1234 5678"}}"##;

async fn create_shop(setup: &Setup, browser: &reqwest::Client) {
    let response = submit(
        browser,
        &setup.url("/sources"),
        &setup.url("/sources"),
        &[("name", "shop"), ("preset", "shopify"), ("secret", "")],
    )
    .await;
    let status = response.status();
    let target = location(&response);
    assert_eq!(status, 303, "{}", response.text().await.unwrap());
    assert_eq!(target, "/sources/shop?done=source_created");
}

#[tokio::test]
async fn a_source_from_a_preset_shows_its_url_the_platform_steps_and_takes_a_write_only_secret() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    create_shop(&setup, &browser).await;

    let shown = page(&browser, &setup.url("/sources/shop?done=source_created")).await;
    assert!(shown.contains("Source created"), "{shown}");
    assert!(
        shown.contains("https://hooks.example.com/v1/hooks/src_"),
        "{shown}"
    );
    assert!(
        shown.contains("Settings › Notifications › Webhooks"),
        "{shown}"
    );
    assert!(shown.contains("data-copy=\"webhook-url\""));

    let secret = "shpss_0123456789abcdef";
    let response = submit(
        &browser,
        &setup.url("/sources/shop"),
        &setup.url("/sources/shop/secret"),
        &[("secret", secret)],
    )
    .await;
    assert_eq!(response.status(), 303);
    let shown = page(&browser, &setup.url("/sources/shop")).await;
    assert!(shown.contains("A signing secret is set."));
    assert!(!shown.contains(secret), "the secret is shown again");

    let list = page(&browser, &setup.url("/sources")).await;
    assert!(list.contains("https://hooks.example.com/v1/hooks/src_"));
    assert!(!list.contains(secret));

    // Creating a source of an existing name does not reconfigure it.
    let response = submit(
        &browser,
        &setup.url("/sources"),
        &setup.url("/sources"),
        &[("name", "shop"), ("preset", "none")],
    )
    .await;
    assert_eq!(response.status(), 409);
    assert!(
        page(&browser, &setup.url("/sources/shop"))
            .await
            .contains("Shopify")
    );
}

#[tokio::test]
async fn the_rule_editor_previews_the_cost_highlights_ucs2_offers_gsm7_and_saves() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    create_shop(&setup, &browser).await;
    let editor = page(&browser, &setup.url("/sources/shop/rules/new")).await;
    assert!(
        editor.contains("orders/create"),
        "the sample event type is offered"
    );

    let rule = |action: &'static str, encoding: &'static str, body: &'static str| {
        vec![
            ("is_new", "1"),
            ("name", "owner-alert"),
            ("when", "event_type == \"orders/create\""),
            ("to", "+52 55 1234 5678\n{{ event.customer.phone }}"),
            ("body", body),
            ("encoding", encoding),
            ("enabled", "1"),
            ("payload", SHOPIFY_ORDER),
            ("event_type", "orders/create"),
            ("action", action),
        ]
    };
    let accented =
        "{{ event.customer.first_name }} compró {{ event.total_price }} (pedido {{ event.name }})";
    let url = setup.url("/sources/shop/rules/new");
    let action = setup.url("/sources/shop/rules");

    let preview = text(
        submit(
            &browser,
            &url,
            &action,
            &rule("preview", "unicode", accented),
        )
        .await,
    )
    .await;
    assert!(preview.contains("Ana compr<mark"), "{preview}");
    assert!(preview.contains("data-encoding=\"UCS-2\""), "{preview}");
    assert!(preview.contains("Transliterate to GSM-7"));
    assert!(
        preview.contains("+525512345678"),
        "recipients are normalised: {preview}"
    );

    let switched = text(
        submit(
            &browser,
            &url,
            &action,
            &rule("use_gsm7", "unicode", accented),
        )
        .await,
    )
    .await;
    assert!(switched.contains("data-encoding=\"GSM-7\""), "{switched}");
    assert!(switched.contains("Ana compro 404.95"), "{switched}");
    assert!(!switched.contains("<mark"), "{switched}");

    // The fragment the script refreshes as the user types.
    let fragment = text(
        submit(
            &browser,
            &url,
            &setup.url("/sources/shop/rules/preview"),
            &rule("preview", "unicode", accented),
        )
        .await,
    )
    .await;
    assert!(fragment.contains("data-encoding=\"UCS-2\"") && !fragment.contains("<html"));

    let broken = text(
        submit(
            &browser,
            &url,
            &action,
            &rule("preview", "unicode", "Hola {{ event.customer.first_name"),
        )
        .await,
    )
    .await;
    assert!(broken.contains("class=\"error\""), "{broken}");

    let saved = submit(&browser, &url, &action, &rule("save", "gsm7", accented)).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(location(&saved), "/sources/shop?done=rule_saved");
    let source = page(&browser, &setup.url("/sources/shop")).await;
    assert!(source.contains("owner-alert"));

    // Saving a second new rule of the same name is refused, not an overwrite.
    let again = submit(&browser, &url, &action, &rule("save", "unicode", "otro")).await;
    assert_eq!(again.status(), 422);

    let edit = page(&browser, &setup.url("/sources/shop/rules/owner-alert")).await;
    assert!(edit.contains("value=\"gsm7\" checked"), "{edit}");
}

#[tokio::test]
async fn pages_speak_the_browsers_language_until_the_switch_says_otherwise() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    create_shop(&setup, &browser).await;
    let spanish = browser
        .get(setup.url("/sources/shop"))
        .header("accept-language", "es-MX,es;q=0.9,en;q=0.5")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(spanish.contains("<html lang=\"es\">"));
    assert!(
        spanish.contains("Configuración › Notificaciones › Webhooks"),
        "{spanish}"
    );

    let switched = browser
        .get(setup.url("/lang/en?next=/sources/shop"))
        .send()
        .await
        .unwrap();
    assert_eq!(switched.status(), 303);
    assert_eq!(location(&switched), "/sources/shop");
    let english = browser
        .get(setup.url("/sources/shop"))
        .header("accept-language", "es")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(english.contains("<html lang=\"en\">"));

    let elsewhere = browser
        .get(setup.url("/lang/es?next=https://evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&elsewhere), "/");
}

#[tokio::test]
async fn the_delivery_pages_render_empty_and_filtered() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    for (path, text) in [
        ("/overview", "Sent or delivered: <strong>0</strong>"),
        ("/messages", "No messages match."),
        (
            "/messages?status=sent&to=5512&rule=x&from=2026-01-01&until=2026-12-31",
            "No messages match.",
        ),
        ("/jobs", "Nothing is scheduled."),
        ("/dead-letters", "No dead letters."),
        ("/opt-outs", "No opt-outs."),
    ] {
        let shown = page(&browser, &setup.url(path)).await;
        assert!(shown.contains(text), "{path}: {shown}");
        assert!(
            shown.contains("aria-current=\"page\""),
            "{path}: navigation marks the page"
        );
    }
}

#[test]
fn the_binary_answers_version() {
    assert_eq!(
        foco_testkit::version_flag_output(env!("CARGO_BIN_EXE_foco-console")),
        format!("foco-console {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}
