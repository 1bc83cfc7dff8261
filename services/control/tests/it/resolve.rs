//! The lookups ingress, rules and sender make.

use foco_proto::v1::{
    ResolveRouteRequest, ResolveSourceRequest, UpsertAccountRequest, UpsertProviderRouteRequest,
};
use tonic::Code;

use crate::harness::{TestControl, console_route, create_source, rule_request, source_request};

#[tokio::test]
async fn resolve_source_by_token_and_id_with_enabled_rules_in_name_order() {
    let control = TestControl::start().await;
    let account = control.create_account("acme").await;
    let source = create_source(&control, "acme", "shop", "s1").await;
    let admin = control.admin();
    for name in ["zeta", "alpha", "off"] {
        let mut rule = rule_request("acme", "shop", name);
        rule.enabled = Some(name != "off");
        admin.clone().upsert_rule(rule).await.unwrap();
    }

    let by_token = admin
        .clone()
        .resolve_source(ResolveSourceRequest {
            token: source.token.clone(),
            source_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_token.source.as_ref().unwrap().id, source.id);
    assert_eq!(by_token.account.as_ref().unwrap(), &account);
    assert_eq!(by_token.secrets, ["s1"]);
    let names: Vec<_> = by_token
        .rules
        .iter()
        .map(|rule| rule.name.as_str())
        .collect();
    assert_eq!(names, ["alpha", "zeta"]);

    let by_id = admin
        .clone()
        .resolve_source(ResolveSourceRequest {
            token: String::new(),
            source_id: source.id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_id, by_token);

    // Disabled sources resolve too, so ingress can answer 410.
    let mut disable = source_request("acme", "shop", "");
    disable.enabled = Some(false);
    admin.clone().upsert_source(disable).await.unwrap();
    let disabled = admin
        .clone()
        .resolve_source(ResolveSourceRequest {
            token: source.token.clone(),
            source_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!disabled.source.unwrap().enabled);

    for request in [
        ResolveSourceRequest {
            token: "src_unknown".to_owned(),
            source_id: String::new(),
        },
        ResolveSourceRequest {
            token: String::new(),
            source_id: "not-a-uuid".to_owned(),
        },
    ] {
        let status = admin.clone().resolve_source(request).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    let status = admin
        .clone()
        .resolve_source(ResolveSourceRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn resolve_route_by_name_and_default() {
    let control = TestControl::start().await;
    let account = control.create_account("acme").await;
    let admin = control.admin();
    let resolve = |name: &str| {
        let mut admin = admin.clone();
        let request = ResolveRouteRequest {
            account_id: account.id.clone(),
            name: name.to_owned(),
        };
        async move { admin.resolve_route(request).await }
    };
    assert_eq!(resolve("").await.unwrap_err().code(), Code::NotFound);

    // No default marked: the oldest route is the default.
    admin
        .clone()
        .upsert_provider_route(console_route("acme", "first", false))
        .await
        .unwrap();
    let hook = UpsertProviderRouteRequest {
        account: "acme".to_owned(),
        name: "hook".to_owned(),
        kind: "http".to_owned(),
        settings: [("url".to_owned(), "http://127.0.0.1:9999/sms".to_owned())].into(),
        credentials: [("Authorization".to_owned(), "Bearer hook-token".to_owned())].into(),
        is_default: false,
    };
    admin
        .clone()
        .upsert_provider_route(hook.clone())
        .await
        .unwrap();
    assert_eq!(
        resolve("").await.unwrap().into_inner().route.unwrap().name,
        "first"
    );

    // Marked default wins.
    admin
        .clone()
        .upsert_provider_route(UpsertProviderRouteRequest {
            is_default: true,
            ..hook
        })
        .await
        .unwrap();
    let default = resolve("").await.unwrap().into_inner();
    assert_eq!(default.route.as_ref().unwrap().name, "hook");
    assert_eq!(default.credentials["Authorization"], "Bearer hook-token");
    assert_eq!(default.account.unwrap().name, "acme");

    let named = resolve("first").await.unwrap().into_inner();
    assert_eq!(named.route.unwrap().kind, "console");
    assert!(named.credentials.is_empty());
    assert_eq!(resolve("missing").await.unwrap_err().code(), Code::NotFound);
}

#[tokio::test]
async fn a_route_carries_the_accounts_inbound_source_while_it_is_enabled() {
    let control = TestControl::start().await;
    let account = control.create_account("acme").await;
    let admin = control.admin();
    admin
        .clone()
        .upsert_provider_route(console_route("acme", "primary", true))
        .await
        .unwrap();
    let resolve = || {
        let mut admin = admin.clone();
        let account_id = account.id.clone();
        async move {
            admin
                .resolve_route(ResolveRouteRequest {
                    account_id,
                    name: String::new(),
                })
                .await
                .unwrap()
                .into_inner()
        }
    };
    let name_inbound_source = |inbound_source: &str| UpsertAccountRequest {
        name: "acme".to_owned(),
        default_country: account.default_country.clone(),
        timezone: account.timezone.clone(),
        inbound_source: inbound_source.to_owned(),
        ..Default::default()
    };
    assert_eq!(resolve().await.inbound_source_id, "", "none named");

    let named = admin
        .clone()
        .upsert_account(name_inbound_source("sms"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.inbound_source, "sms");
    assert_eq!(resolve().await.inbound_source_id, "", "no such source yet");
    let source = create_source(&control, "acme", "sms", "s1").await;
    assert_eq!(resolve().await.inbound_source_id, source.id);
    let mut disable = source_request("acme", "sms", "s1");
    disable.enabled = Some(false);
    admin.clone().upsert_source(disable).await.unwrap();
    assert_eq!(resolve().await.inbound_source_id, "", "disabled");

    let refused = admin
        .clone()
        .upsert_account(name_inbound_source("Not A Name"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert!(
        refused.message().contains("inbound_source"),
        "{}",
        refused.message()
    );
}
