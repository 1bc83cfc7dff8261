//! The provider routes page against a real control: routes listed with their
//! settings and the names of their credentials, a route created and updated
//! from the catalog's fields with write-only credentials, a new route never
//! overwriting one of the same name, the test send through `SendMessage`, and
//! the forms' CSRF token.

use foco_proto::v1::ListProviderRoutesRequest;

use crate::harness::{ACCOUNT, Setup, location, page, submit, text};

const AUTH_TOKEN: &str = "tok_0123456789abcdef_secret";

async fn stored_routes(setup: &Setup) -> Vec<foco_proto::v1::ProviderRoute> {
    setup
        .control
        .admin()
        .list_provider_routes(ListProviderRoutesRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes
}

#[tokio::test]
#[allow(clippy::too_many_lines, reason = "one page's story, step by step")]
async fn a_route_is_configured_from_the_catalog_and_its_credentials_are_never_shown_again() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    let empty = page(&browser, &setup.url("/providers")).await;
    assert!(empty.contains("No provider routes yet."), "{empty}");
    assert!(
        empty.contains("<option value=\"twilio\">Twilio</option>"),
        "{empty}"
    );

    let form = page(&browser, &setup.url("/providers/new?kind=twilio")).await;
    for field in [
        "name=\"credential.account_sid\" type=\"password\"",
        "name=\"credential.auth_token\" type=\"password\"",
        "name=\"setting.from\"",
        "name=\"setting.base_url\"",
    ] {
        assert!(form.contains(field), "{field} missing: {form}");
    }

    let new_route = setup.url("/providers/new?kind=twilio");
    let saved = submit(
        &browser,
        &new_route,
        &setup.url("/providers"),
        &[
            ("is_new", "1"),
            ("kind", "twilio"),
            ("name", "primary"),
            ("credential.account_sid", "AC0123456789"),
            ("credential.auth_token", AUTH_TOKEN),
            ("setting.from", "+15005550006"),
            ("setting.base_url", ""),
            ("extra_settings", ""),
            ("is_default", "1"),
        ],
    )
    .await;
    assert_eq!(saved.status(), 303, "{}", text(saved).await);
    assert_eq!(location(&saved), "/providers?done=route_saved");

    let stored = stored_routes(&setup).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].kind, "twilio");
    assert!(stored[0].is_default);
    assert_eq!(stored[0].settings["from"], "+15005550006");
    let mut names = stored[0].credential_names.clone();
    names.sort();
    assert_eq!(names, ["account_sid", "auth_token"]);

    let listed = page(&browser, &setup.url("/providers?done=route_saved")).await;
    assert!(listed.contains("Route saved."), "{listed}");
    assert!(listed.contains("/providers/routes/primary"), "{listed}");
    assert!(listed.contains("from=+15005550006"), "{listed}");
    assert!(listed.contains("auth_token"), "{listed}");
    let edit = page(&browser, &setup.url("/providers/routes/primary")).await;
    for shown in [&listed, &edit] {
        assert!(!shown.contains(AUTH_TOKEN), "a credential is shown again");
        assert!(
            !shown.contains("AC0123456789"),
            "a credential is shown again"
        );
    }
    assert!(edit.contains("value=\"+15005550006\""), "{edit}");
    assert!(edit.contains("Saved"), "{edit}");

    // Updating the settings with the credential fields left empty keeps them.
    let updated = submit(
        &browser,
        &setup.url("/providers/routes/primary"),
        &setup.url("/providers"),
        &[
            ("is_new", ""),
            ("kind", "twilio"),
            ("name", "primary"),
            ("credential.account_sid", ""),
            ("credential.auth_token", ""),
            ("setting.from", "+15005550007"),
            ("extra_settings", ""),
        ],
    )
    .await;
    assert_eq!(updated.status(), 303);
    let stored = stored_routes(&setup).await;
    assert_eq!(stored[0].settings["from"], "+15005550007");
    assert_eq!(stored[0].credential_names.len(), 2, "credentials kept");
    assert!(!stored[0].is_default, "the checkbox was left unticked");

    // A new route of an existing name is refused, not an overwrite.
    let again = submit(
        &browser,
        &new_route,
        &setup.url("/providers"),
        &[("is_new", "1"), ("kind", "console"), ("name", "primary")],
    )
    .await;
    assert_eq!(again.status(), 422);
    assert_eq!(stored_routes(&setup).await[0].kind, "twilio");

    // What control refuses is shown on the form, without the credentials typed.
    let refused = submit(
        &browser,
        &new_route,
        &setup.url("/providers"),
        &[
            ("is_new", "1"),
            ("kind", "twilio"),
            ("name", "second"),
            ("credential.auth_token", AUTH_TOKEN),
        ],
    )
    .await;
    assert_eq!(refused.status(), 422);
    let refused = text(refused).await;
    assert!(refused.contains("account_sid"), "{refused}");
    assert!(!refused.contains(AUTH_TOKEN), "{refused}");
}

/// The bus's streams, which ingress, rules and the sender create in a full
/// system; the SMS stream's message count.
async fn sms_stream(setup: &Setup) -> impl AsyncFn() -> u64 {
    let names = foco_bus::BusNames::new(&setup.control.bus.prefix).unwrap();
    let client = async_nats::connect(&setup.control.bus.nats_url)
        .await
        .unwrap();
    let jetstream = async_nats::jetstream::new(client);
    foco_bus::ensure_streams(&jetstream, &names, Default::default())
        .await
        .expect("streams");
    async move || {
        jetstream
            .get_stream(names.sms_stream())
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
    }
}

#[tokio::test]
async fn a_test_send_goes_through_send_message_and_links_its_message() {
    let setup = Setup::start().await;
    let sms_published = sms_stream(&setup).await;
    let browser = setup.signed_in().await;
    let saved = submit(
        &browser,
        &setup.url("/providers/new?kind=console"),
        &setup.url("/providers"),
        &[("is_new", "1"), ("kind", "console"), ("name", "demo")],
    )
    .await;
    assert_eq!(saved.status(), 303);
    let providers = page(&browser, &setup.url("/providers")).await;
    assert!(
        providers.contains("<option value=\"demo\">demo (Console)</option>"),
        "{providers}"
    );

    let sent = submit(
        &browser,
        &setup.url("/providers"),
        &setup.url("/providers/test-send"),
        &[
            ("to", "55 1234 5678"),
            ("body", "Mensaje de prueba"),
            ("route", "demo"),
        ],
    )
    .await;
    assert_eq!(sent.status(), 303, "{}", text(sent).await);
    let target = location(&sent);
    let message_id = target
        .strip_prefix("/providers?sent=")
        .expect("the message id")
        .to_owned();
    assert!(!message_id.is_empty());
    assert_eq!(sms_published().await, 1, "one SMS job on the bus");
    let shown = page(&browser, &setup.url(&target)).await;
    assert!(shown.contains("Test SMS queued:"), "{shown}");
    assert!(
        shown.contains(&format!("href=\"/messages/{message_id}\"")),
        "{shown}"
    );

    // Control refuses an unknown route: the page says so.
    let refused = submit(
        &browser,
        &setup.url("/providers"),
        &setup.url("/providers/test-send"),
        &[("to", "55 1234 5678"), ("body", "hola"), ("route", "nope")],
    )
    .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
    assert!(text(refused).await.contains("nope"));
    assert_eq!(sms_published().await, 1, "nothing more sent");
}

#[tokio::test]
async fn the_provider_forms_need_the_session_csrf_token() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    for (path, form) in [
        (
            "/providers",
            vec![("kind", "console"), ("name", "forged"), ("is_new", "1")],
        ),
        (
            "/providers/test-send",
            vec![("to", "+525512345678"), ("body", "x"), ("route", "")],
        ),
    ] {
        let response = browser
            .post(setup.url(path))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{path}");
    }
    assert!(stored_routes(&setup).await.is_empty());
    let spanish = browser
        .get(setup.url("/providers"))
        .header("accept-language", "es")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(spanish.contains("Enviar un SMS de prueba"), "{spanish}");
}
