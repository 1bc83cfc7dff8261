//! No page without a session; sessions sealed in a strict cookie; CSRF refused;
//! the CSP on every response; another account's objects unreachable.

use foco_console::CONTENT_SECURITY_POLICY_VALUE;
use foco_proto::v1::{ListApiKeysRequest, RevokeApiKeyRequest, UpsertSourceRequest};

use crate::harness::{
    ACCOUNT, Setup, account_with_key, browser, csrf_token, location, page, post_sign_in, sign_in,
    submit,
};

#[tokio::test]
async fn pages_need_a_session_and_send_the_browser_to_sign_in() {
    let setup = Setup::start().await;
    let browser = browser();
    for path in [
        "/overview",
        "/sources",
        "/sources/shop",
        "/messages?status=sent",
        "/jobs",
        "/dead-letters",
        "/opt-outs",
        "/events/evt_1",
        "/providers",
        "/providers/new?kind=twilio",
        "/providers/routes/fake",
    ] {
        let response = browser.get(setup.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 303, "{path}");
        assert!(
            location(&response).starts_with("/sign-in?next=%2F"),
            "{path}: {}",
            location(&response)
        );
    }
}

#[tokio::test]
async fn signing_in_seals_the_key_in_a_strict_expiring_cookie_and_signing_out_ends_it() {
    let setup = Setup::start().await;
    let browser = browser();
    let response = post_sign_in(&browser, &setup.console.url, &setup.key, "").await;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/sources");
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .find(|value| value.starts_with(&format!("{}=", foco_console::SESSION_COOKIE)))
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Max-Age=3600", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(
        !cookie.contains(&setup.key),
        "the key is in clear: {cookie}"
    );

    let sources = page(&browser, &setup.url("/sources")).await;
    assert!(sources.contains(ACCOUNT), "{sources}");
    assert!(!sources.contains(&setup.key), "a page shows the key");

    let csrf = csrf_token(&sources);
    let response = browser
        .post(setup.url("/sign-out"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let after = browser.get(setup.url("/sources")).send().await.unwrap();
    assert_eq!(after.status(), 303, "still signed in after signing out");
}

#[tokio::test]
async fn wrong_keys_are_refused_and_the_admin_key_must_choose_an_account() {
    let setup = Setup::start().await;
    let browser = browser();
    let response = post_sign_in(&browser, &setup.console.url, "foco_not-a-key", "").await;
    assert_eq!(response.status(), 401);
    assert!(response.text().await.unwrap().contains("was not accepted"));

    // Two accounts exist: the admin key has to name one.
    account_with_key(&mut setup.control.admin(), "otra-tienda").await;
    let response = post_sign_in(&browser, &setup.console.url, foco_harness::ADMIN_KEY, "").await;
    assert_eq!(response.status(), 401);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("name the one to open")
    );
    sign_in(
        &browser,
        &setup.console.url,
        foco_harness::ADMIN_KEY,
        "otra-tienda",
    )
    .await;
    assert!(
        page(&browser, &setup.url("/sources"))
            .await
            .contains("otra-tienda")
    );

    // An account key cannot open another account.
    let other = crate::harness::browser();
    let response = post_sign_in(&other, &setup.console.url, &setup.key, "otra-tienda").await;
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn forms_without_the_session_csrf_token_are_refused() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    for token in [None, Some("forged-token")] {
        let mut form = vec![("phone", "+525512345678")];
        if let Some(token) = token {
            form.push(("csrf", token));
        }
        let response = browser
            .post(setup.url("/opt-outs"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{token:?}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("This form has expired")
        );
    }
    assert!(
        page(&browser, &setup.url("/opt-outs"))
            .await
            .contains("No opt-outs")
    );

    // The sign-in form has its own token, before there is a session.
    let fresh = browser_without_session();
    let response = fresh
        .post(setup.url("/sign-in"))
        .form(&[("api_key", setup.key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = submit(
        &browser,
        &setup.url("/opt-outs"),
        &setup.url("/opt-outs"),
        &[("phone", "55 1234 5678"), ("reason", "asked by phone")],
    )
    .await;
    assert_eq!(response.status(), 303);
    assert!(
        page(&browser, &setup.url("/opt-outs"))
            .await
            .contains("+525512345678")
    );
}

fn browser_without_session() -> reqwest::Client {
    browser()
}

#[tokio::test]
async fn every_response_carries_a_strict_content_security_policy_and_no_inline_script() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    for path in [
        "/sign-in",
        "/sources",
        "/messages",
        "/providers",
        "/providers/new?kind=http",
        "/no-such-page",
        "/static/console.js",
    ] {
        let response = browser.get(setup.url(path)).send().await.unwrap();
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-security-policy").unwrap(),
            CONTENT_SECURITY_POLICY_VALUE,
            "{path}"
        );
        assert_eq!(headers.get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(headers.get("x-frame-options").unwrap(), "DENY");
        let body = response.text().await.unwrap();
        assert!(!body.contains("<script>"), "{path} has an inline script");
        assert!(!body.contains(" style=\""), "{path} has an inline style");
        assert!(!body.contains(" onclick="), "{path} has an inline handler");
    }
    assert!(!CONTENT_SECURITY_POLICY_VALUE.contains("unsafe-inline"));
}

#[tokio::test]
async fn another_accounts_objects_are_unreachable_by_name_or_id() {
    let setup = Setup::start().await;
    let mut admin = setup.control.admin();
    account_with_key(&mut admin, "otra-tienda").await;
    admin
        .upsert_source(UpsertSourceRequest {
            account: "otra-tienda".to_owned(),
            name: "secret-shop".to_owned(),
            preset: "none".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let browser = setup.signed_in().await;
    for path in [
        "/sources/secret-shop",
        "/sources/secret-shop/rules/new",
        "/messages/job_0123456789abcdef0123456789abcdef",
    ] {
        let response = browser.get(setup.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    assert!(
        !page(&browser, &setup.url("/sources"))
            .await
            .contains("secret-shop")
    );
}

#[tokio::test]
async fn a_revoked_key_ends_its_sessions_at_the_next_page() {
    let setup = Setup::start().await;
    let browser = setup.signed_in().await;
    page(&browser, &setup.url("/sources")).await;
    let mut admin = setup.control.admin();
    let keys = admin
        .list_api_keys(ListApiKeysRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .api_keys;
    for key in keys {
        admin
            .revoke_api_key(RevokeApiKeyRequest {
                account: ACCOUNT.to_owned(),
                id: key.id,
            })
            .await
            .unwrap();
    }
    let response = browser.get(setup.url("/sources")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/sign-in");
    let again = browser.get(setup.url("/messages")).send().await.unwrap();
    assert!(
        location(&again).starts_with("/sign-in?next="),
        "the session cookie was not removed"
    );
}
