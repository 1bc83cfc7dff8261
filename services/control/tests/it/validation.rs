//! Bad input is refused at save time with InvalidArgument naming the field.

use foco_proto::v1::{UpsertAccountRequest, UpsertProviderRouteRequest};
use tonic::{Code, Status};

use crate::harness::{TestControl, create_source, rule_request};

fn assert_invalid(status: Status, expected: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains(expected),
        "{:?} does not contain {expected:?}",
        status.message()
    );
}

#[tokio::test]
async fn bad_cel_is_refused_with_its_position() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;
    let mut rule = rule_request("acme", "shop", "broken");
    rule.when = r#"event_type == "orders/create" &&"#.to_owned();
    let status = control.admin().upsert_rule(rule).await.unwrap_err();
    assert_invalid(
        status.clone(),
        "when is not a valid CEL expression: line 1, column ",
    );
}

#[tokio::test]
async fn bad_templates_are_refused_naming_the_field() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;

    let mut rule = rule_request("acme", "shop", "broken");
    rule.body = "Hola {{ event.name ".to_owned();
    assert_invalid(
        control.admin().upsert_rule(rule).await.unwrap_err(),
        "body is not a valid template (line 1, column ",
    );

    let mut rule = rule_request("acme", "shop", "broken");
    rule.to = vec!["+525512345678".to_owned(), "{% if %}".to_owned()];
    assert_invalid(
        control.admin().upsert_rule(rule).await.unwrap_err(),
        "to[1] is not a valid template",
    );

    let mut rule = rule_request("acme", "shop", "broken");
    rule.to.clear();
    assert_invalid(
        control.admin().upsert_rule(rule).await.unwrap_err(),
        "at least one recipient",
    );

    let mut rule = rule_request("acme", "shop", "broken");
    rule.body = "  ".to_owned();
    assert_invalid(
        control.admin().upsert_rule(rule).await.unwrap_err(),
        "body is required",
    );
}

#[tokio::test]
async fn names_countries_and_timezones_are_checked() {
    let control = TestControl::start().await;
    let account = |name: &str, country: &str, timezone: &str| UpsertAccountRequest {
        name: name.to_owned(),
        default_country: country.to_owned(),
        timezone: timezone.to_owned(),
        ..Default::default()
    };
    let admin = control.admin();
    assert_invalid(
        admin
            .clone()
            .upsert_account(account("Tienda Ale", "MX", "UTC"))
            .await
            .unwrap_err(),
        "name \"Tienda Ale\"",
    );
    assert_invalid(
        admin
            .clone()
            .upsert_account(account("ale", "Mexico", "UTC"))
            .await
            .unwrap_err(),
        "default_country",
    );
    assert_invalid(
        admin
            .clone()
            .upsert_account(account("ale", "MX", ""))
            .await
            .unwrap_err(),
        "timezone is required",
    );
    assert_invalid(
        admin
            .clone()
            .upsert_account(account("ale", "MX", "Mars/Base"))
            .await
            .unwrap_err(),
        "timezone",
    );
}

#[tokio::test]
async fn provider_routes_are_checked_by_kind() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let route = |kind: &str| UpsertProviderRouteRequest {
        account: "acme".to_owned(),
        name: "out".to_owned(),
        kind: kind.to_owned(),
        settings: Default::default(),
        credentials: Default::default(),
        is_default: true,
    };
    let admin = control.admin();
    assert_invalid(
        admin
            .clone()
            .upsert_provider_route(route("carrier-pigeon"))
            .await
            .unwrap_err(),
        "console, http, twilio",
    );
    assert_invalid(
        admin
            .clone()
            .upsert_provider_route(route("http"))
            .await
            .unwrap_err(),
        "settings.url",
    );
    assert_invalid(
        admin
            .clone()
            .upsert_provider_route(route("twilio"))
            .await
            .unwrap_err(),
        "credentials.account_sid",
    );

    // A twilio route without a from number needs rules that give one.
    let mut twilio = route("twilio");
    twilio.credentials = [
        ("account_sid".to_owned(), "AC1".to_owned()),
        ("auth_token".to_owned(), "t".to_owned()),
    ]
    .into();
    admin.clone().upsert_provider_route(twilio).await.unwrap();
    create_source(&control, "acme", "shop", "s1").await;
    let rule = rule_request("acme", "shop", "alert");
    assert_invalid(
        admin.clone().upsert_rule(rule.clone()).await.unwrap_err(),
        "needs from",
    );
    let mut with_from = rule;
    with_from.from = "+15005550006".to_owned();
    admin.clone().upsert_rule(with_from).await.unwrap();
}

#[tokio::test]
async fn a_bad_valid_for_is_refused_naming_the_field_and_a_good_one_round_trips() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;

    for (text, why) in [
        ("soon", "not a duration"),
        ("20s", "shorter than a minute"),
        ("500d", "longer than 400 days"),
    ] {
        let mut rule = rule_request("acme", "shop", "reminder");
        rule.valid_for = text.to_owned();
        let status = control.admin().upsert_rule(rule).await.unwrap_err();
        assert_invalid(status.clone(), "valid_for");
        assert_invalid(status, why);
    }
    let mut rule = rule_request("acme", "shop", "reminder");
    rule.valid_for = " 2h ".to_owned();
    let saved = control
        .admin()
        .upsert_rule(rule)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.valid_for, "2h");

    let account = |default_valid_for: &str| UpsertAccountRequest {
        name: "acme".to_owned(),
        default_country: "MX".to_owned(),
        timezone: "America/Mexico_City".to_owned(),
        default_valid_for: default_valid_for.to_owned(),
        ..Default::default()
    };
    assert_invalid(
        control
            .admin()
            .upsert_account(account("forever"))
            .await
            .unwrap_err(),
        "default_valid_for",
    );
    let saved = control
        .admin()
        .upsert_account(account("4h"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.default_valid_for, "4h");
}
