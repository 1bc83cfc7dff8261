//! Upserts are idempotent by natural key and return the stored object.

use foco_proto::v1::{
    DeleteRuleRequest, GetSourceRequest, ListProviderRoutesRequest, ListRulesRequest,
    ListSourcesRequest, UpsertAccountRequest,
};
use tonic::Code;

use crate::harness::{TestControl, console_route, create_source, rule_request, source_request};

#[tokio::test]
async fn account_upsert_keeps_the_id_and_updates_fields() {
    let control = TestControl::start().await;
    let first = control.create_account("tienda-ale").await;
    let second = control
        .admin()
        .upsert_account(UpsertAccountRequest {
            name: "tienda-ale".to_owned(),
            default_country: "co".to_owned(),
            timezone: "America/Bogota".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, second.id);
    assert_eq!(second.default_country, "CO");
    assert_eq!(second.timezone, "America/Bogota");
    assert_eq!(first.created_at_ms, second.created_at_ms);
}

#[tokio::test]
async fn source_upsert_keeps_id_and_token() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let first = create_source(&control, "acme", "shop", "s1").await;
    assert!(
        first.token.starts_with("src_") && first.token.len() >= 36,
        "{}",
        first.token
    );
    assert!(first.has_secret);
    assert!(first.enabled);
    assert_eq!(first.max_body_bytes, 256 * 1024);

    let mut request = source_request("acme", "shop", "");
    request.enabled = Some(false);
    request.event_type_from = "body:type".to_owned();
    let second = control
        .admin()
        .upsert_source(request)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(second.id, first.id);
    assert_eq!(second.token, first.token);
    assert!(!second.enabled);
    assert_eq!(second.event_type_from, "body:type");
    assert!(second.has_secret, "an empty secret keeps the stored one");

    let fetched = control
        .admin()
        .get_source(GetSourceRequest {
            account: "acme".to_owned(),
            name: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched, second);
    let listed = control
        .admin()
        .list_sources(ListSourcesRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.sources, vec![second]);

    let status = control
        .admin()
        .get_source(GetSourceRequest {
            account: "acme".to_owned(),
            name: "nope".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("\"nope\""),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn rule_upsert_is_idempotent_and_delete_reports_what_it_did() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;
    let first = control
        .admin()
        .upsert_rule(rule_request("acme", "shop", "owner-alert"))
        .await
        .unwrap()
        .into_inner();
    let mut changed = rule_request("acme", "shop", "owner-alert");
    changed.body = "nueva venta".to_owned();
    changed.priority = 2;
    let second = control
        .admin()
        .upsert_rule(changed)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, second.id);
    assert_eq!(second.body, "nueva venta");
    assert_eq!(second.priority, 2);
    assert_eq!(
        first.priority, 1,
        "unspecified priority is stored as transactional"
    );

    let rules = control
        .admin()
        .list_rules(ListRulesRequest {
            account: "acme".to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules;
    assert_eq!(rules, vec![second]);

    let delete = || DeleteRuleRequest {
        account: "acme".to_owned(),
        source: "shop".to_owned(),
        name: "owner-alert".to_owned(),
    };
    assert!(
        control
            .admin()
            .delete_rule(delete())
            .await
            .unwrap()
            .into_inner()
            .deleted
    );
    assert!(
        !control
            .admin()
            .delete_rule(delete())
            .await
            .unwrap()
            .into_inner()
            .deleted
    );

    let mut orphan = rule_request("acme", "missing", "x");
    orphan.source = "missing".to_owned();
    let status = control.admin().upsert_rule(orphan).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn only_one_route_is_default() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let first = control
        .admin()
        .upsert_provider_route(console_route("acme", "primary", true))
        .await
        .unwrap()
        .into_inner();
    assert!(first.is_default);
    let again = control
        .admin()
        .upsert_provider_route(console_route("acme", "primary", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(first.id, again.id);
    control
        .admin()
        .upsert_provider_route(console_route("acme", "backup", true))
        .await
        .unwrap();
    let routes = control
        .admin()
        .list_provider_routes(ListProviderRoutesRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes;
    let defaults: Vec<_> = routes
        .iter()
        .filter(|route| route.is_default)
        .map(|route| route.name.as_str())
        .collect();
    assert_eq!(defaults, ["backup"]);
}

#[tokio::test]
async fn disabling_or_deleting_a_rule_cancels_its_pending_jobs_with_the_reason() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    create_source(&control, "acme", "shop", "s1").await;
    for name in ["cart", "reminder"] {
        control
            .admin()
            .upsert_rule(rule_request("acme", "shop", name))
            .await
            .unwrap();
    }
    for (job_id, rule) in [("job-cart", "cart"), ("job-reminder", "reminder")] {
        sqlx::query(
            "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, recipient, body,
                                         due_at, trigger_received_at, job)
             SELECT $1, account_id, id, 'evt-' || $1, '+525512345678', 'Hola',
                    now() + interval '5 days', now(), '\\x'::bytea
             FROM rules WHERE name = $2",
        )
        .bind(job_id)
        .bind(rule)
        .execute(&control.db.pool)
        .await
        .unwrap();
    }
    let mut disabled = rule_request("acme", "shop", "cart");
    disabled.enabled = Some(false);
    control.admin().upsert_rule(disabled).await.unwrap();
    control
        .admin()
        .delete_rule(DeleteRuleRequest {
            account: "acme".to_owned(),
            source: "shop".to_owned(),
            name: "reminder".to_owned(),
        })
        .await
        .unwrap();
    let states: Vec<(String, String, String)> =
        sqlx::query_as("SELECT job_id, state, cancel_reason FROM scheduled_jobs ORDER BY job_id")
            .fetch_all(&control.db.pool)
            .await
            .unwrap();
    assert_eq!(
        states,
        [
            (
                "job-cart".into(),
                "cancelled".into(),
                "rule disabled".into()
            ),
            (
                "job-reminder".into(),
                "cancelled".into(),
                "rule deleted".into()
            ),
        ]
    );
}
