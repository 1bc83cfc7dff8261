//! The lookups ingress, rules and sender make.

use foco_proto::v1::{ResolveRouteRequest, ResolveSourceRequest, UpsertProviderRouteRequest};
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
