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

/// Writes `count` messages of the account as the sender would, one a minute
/// back from `newest_minutes_ago`; the SQL names the rest of each row.
async fn insert_messages(
    setup: &Setup,
    prefix: &str,
    count: i32,
    newest_minutes_ago: i32,
    recipient: &str,
    rule_id: &str,
) {
    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, rule_id, recipient, body, status, provider,
                               attempts, created_at, updated_at, sent_at, segments, price, price_currency)
         SELECT $1 || n, (SELECT id FROM accounts WHERE name = $2), 'evt-' || $1 || n, $3, $4,
                'hola ' || $1 || n, 'sent', 'fake', 1,
                now() - make_interval(mins => $5 + n), now(), now(), 1, '1234.5', 'MXN'
         FROM generate_series(0, $6 - 1) AS n",
    )
    .bind(prefix)
    .bind(crate::harness::ACCOUNT)
    .bind(rule_id)
    .bind(recipient)
    .bind(newest_minutes_ago)
    .bind(count)
    .execute(&setup.control.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn message_filters_are_applied_by_control_beyond_the_latest_page() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    // 1,100 recent messages hide the one to find from any single page of the
    // latest messages: only filtering in the database finds it.
    insert_messages(&setup, "recent-", 1100, 1, "+525511112222", "").await;
    insert_messages(&setup, "needle-", 1, 3 * 1440, "+14155550100", "rule-x").await;

    // A page of 200, and a link to the next, older one.
    let first = page(&browser, &setup.url("/messages?status=sent")).await;
    assert_eq!(first.matches("hola recent-").count(), 200);
    assert!(first.contains("hola recent-0<"), "the newest first");
    let older = first
        .split("id=\"older\"")
        .next()
        .and_then(|before| before.rsplit("href=\"").next())
        .and_then(|link| link.split('"').next())
        .expect("a link to older messages")
        .replace("&amp;", "&");
    assert!(older.contains("status=sent"), "{older}");
    let second = page(&browser, &setup.url(&older)).await;
    assert!(second.contains("hola recent-200<"), "{second}");
    assert!(!second.contains("hola recent-199<"), "{second}");

    let by_number = page(&browser, &setup.url("/messages?to=415+555")).await;
    assert!(by_number.contains("hola needle-0"), "{by_number}");
    assert!(!by_number.contains("hola recent-"), "{by_number}");

    let by_rule = page(&browser, &setup.url("/messages?rule=rule-x")).await;
    assert!(by_rule.contains("hola needle-0"), "{by_rule}");
    assert!(!by_rule.contains("hola recent-"));

    // The needle's day in the account's zone (Mexico City): three days back, so
    // none of the recent ones falls on it.
    let day = |days_ago: i64| {
        (chrono::Utc::now().with_timezone(&chrono_tz::America::Mexico_City)
            - chrono::Duration::days(days_ago))
        .format("%Y-%m-%d")
        .to_string()
    };
    let needle_day = (chrono::Utc::now() - chrono::Duration::minutes(3 * 1440))
        .with_timezone(&chrono_tz::America::Mexico_City)
        .format("%Y-%m-%d")
        .to_string();
    let in_range = page(
        &browser,
        &setup.url(&format!(
            "/messages?from={needle_day}&until={needle_day}&status=sent"
        )),
    )
    .await;
    assert!(in_range.contains("hola needle-0"), "{in_range}");
    let after = page(&browser, &setup.url(&format!("/messages?from={}", day(-1)))).await;
    assert!(after.contains("No messages match."), "{after}");

    let refused = browser
        .get(setup.url("/messages?to=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn a_messages_price_reads_in_the_accounts_country_and_its_times_in_its_zone() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    insert_messages(&setup, "priced-", 1, 0, "+525511112222", "").await;
    let created_ms: i64 = sqlx::query_scalar(
        "SELECT floor(extract(epoch FROM created_at) * 1000)::bigint FROM messages WHERE job_id = 'priced-0'",
    )
    .fetch_one(&setup.control.db.pool)
    .await
    .unwrap();
    let shown = page(&browser, &setup.url("/messages/priced-0")).await;
    assert!(shown.contains("$1,234.50"), "{shown}");
    let list = page(&browser, &setup.url("/messages")).await;
    let local = chrono::DateTime::from_timestamp_millis(created_ms)
        .unwrap()
        .with_timezone(&chrono_tz::America::Mexico_City)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    assert!(list.contains(&local), "{local} missing: {list}");
}

#[tokio::test]
async fn the_editor_shows_an_error_at_its_line_and_column() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    create_shop(&setup, &browser).await;
    let url = setup.url("/sources/shop/rules/new");
    let action = setup.url("/sources/shop/rules");
    let rule = |when: &'static str, body: &'static str| {
        vec![
            ("is_new", "1"),
            ("name", "owner-alert"),
            ("when", when),
            ("to", "+52 55 1234 5678"),
            ("body", body),
            ("encoding", "unicode"),
            ("payload", SHOPIFY_ORDER),
            ("event_type", "orders/create"),
            ("action", "preview"),
        ]
    };
    let cel = text(
        submit(
            &browser,
            &url,
            &action,
            &rule(
                "event_type == \"orders/create\" &&\n  double(event.total_price) >",
                "Hola",
            ),
        )
        .await,
    )
    .await;
    assert!(
        cel.contains("href=\"#when\">Condition</a>, line 2"),
        "{cel}"
    );
    assert!(cel.contains("data-line=\"2\""), "{cel}");
    assert!(cel.contains("  double(event.total_price) &gt;"), "{cel}");

    let template = text(
        submit(
            &browser,
            &url,
            &action,
            &rule("", "Hola\n{{ event.customer.first_name | }}"),
        )
        .await,
    )
    .await;
    assert!(template.contains("href=\"#body\">"), "{template}");
    assert!(template.contains("line 2, column "), "{template}");
    assert!(
        template.contains("data-line=\"2\" data-column=\""),
        "{template}"
    );
    assert!(
        template.contains("{{ event.customer.first_name | }}"),
        "{template}"
    );

    let csrf = crate::harness::csrf_token(&page(&browser, &url).await);
    let mut form: Vec<(&str, &str)> = rule("event_type ==", "Hola");
    form.push(("csrf", csrf.as_str()));
    let spanish = browser
        .post(setup.url("/sources/shop/rules/preview"))
        .header("accept-language", "es")
        .form(&form)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(spanish.contains("línea 1, columna "), "{spanish}");
}

#[tokio::test]
async fn the_editor_previews_against_a_recent_real_event_of_the_source() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    create_shop(&setup, &browser).await;
    let empty = page(&browser, &setup.url("/sources/shop/rules/new")).await;
    assert!(
        empty.contains("No real event of this source yet"),
        "{empty}"
    );

    let source = setup
        .control
        .admin()
        .get_source(foco_proto::v1::GetSourceRequest {
            account: crate::harness::ACCOUNT.to_owned(),
            name: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    for (slot, event_id, name, minutes_ago) in [
        (0_i16, "evt-older", "Beto", 20),
        (1, "evt-latest", "Carla", 2),
    ] {
        sqlx::query(
            "INSERT INTO event_samples (account_id, source_id, slot, event_id, event_type, payload, received_at)
             VALUES ((SELECT id FROM accounts WHERE name = $1), $2, $3, $4, 'orders/create',
                     '{\"total_price\": \"10.00\", \"customer\": {\"first_name\": \"' || $5 || '\"}}',
                     now() - make_interval(mins => $6))",
        )
        .bind(crate::harness::ACCOUNT)
        .bind(&source.id)
        .bind(slot)
        .bind(event_id)
        .bind(name)
        .bind(minutes_ago)
        .execute(&setup.control.db.pool)
        .await
        .unwrap();
    }

    // The latest real event is the sample at first.
    let editor = page(&browser, &setup.url("/sources/shop/rules/new")).await;
    assert!(editor.contains("value=\"evt-latest\" selected"), "{editor}");
    assert!(editor.contains("value=\"evt-older\""), "{editor}");
    assert!(editor.contains("&quot;Carla&quot;"), "{editor}");

    let url = setup.url("/sources/shop/rules/new");
    let used = text(
        submit(
            &browser,
            &url,
            &setup.url("/sources/shop/rules"),
            &[
                ("is_new", "1"),
                ("name", "owner-alert"),
                ("to", "+52 55 1234 5678"),
                ("body", "Gracias {{ event.customer.first_name }}"),
                ("payload", SHOPIFY_ORDER),
                ("event_type", ""),
                ("sample", "evt-older"),
                ("action", "use_sample"),
            ],
        )
        .await,
    )
    .await;
    assert!(used.contains("Gracias Beto"), "{used}");
    assert!(used.contains("value=\"evt-older\" selected"), "{used}");
    assert!(
        used.contains("value=\"orders/create\""),
        "the event's type: {used}"
    );
    assert!(
        !used.contains("Ana"),
        "the pasted payload was replaced: {used}"
    );

    let gone = submit(
        &browser,
        &url,
        &setup.url("/sources/shop/rules"),
        &[
            ("is_new", "1"),
            ("sample", "evt-nope"),
            ("action", "use_sample"),
        ],
    )
    .await;
    assert_eq!(gone.status(), 400);
}
