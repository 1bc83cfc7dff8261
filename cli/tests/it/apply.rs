//! `foco apply` through the library: idempotent, prints webhook URLs, prunes.

use foco_cli::apply::{ApplyOptions, apply_file};
use foco_cli::commands;
use foco_cli::output::OutputFormat;
use foco_proto::v1::{
    ListProviderRoutesRequest, ListRulesRequest, ListSourcesRequest, ResolveSourceRequest,
};

use crate::harness::{CONFIG, Control, ControlClients, INGRESS_URL, environment, write_config};

fn options(prune: bool) -> ApplyOptions {
    ApplyOptions {
        ingress_url: INGRESS_URL.to_owned(),
        prune,
    }
}

#[tokio::test]
async fn applying_twice_changes_nothing_and_prints_the_webhook_url() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, CONFIG);
    let env = environment();
    let lookup = |name: &str| env.get(name).cloned();
    let mut api = control.api();

    let mut first_output = Vec::new();
    let first = apply_file(&mut api, &path, &lookup, &options(false), &mut first_output)
        .await
        .unwrap();
    let sources_after_first = api
        .list_sources(ListSourcesRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .sources;
    let rules_after_first = list_rules(&control).await;

    let mut second_output = Vec::new();
    let second = apply_file(
        &mut api,
        &path,
        &lookup,
        &options(false),
        &mut second_output,
    )
    .await
    .unwrap();
    assert_eq!(first, second);
    assert_eq!(first_output, second_output);

    let token = &first.sources[0].token;
    assert!(token.starts_with("src_"));
    let printed = String::from_utf8(first_output).unwrap();
    let mut lines = printed.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("source shop: https://hooks.example.test/v1/hooks/{token}")
    );
    assert_eq!(
        lines.next().unwrap(),
        format!(
            "applied {}: account tienda-ale, 2 providers, 1 source, 2 rules",
            path.display()
        )
    );

    // Same objects, same ids; the secret was not rotated by the second apply.
    let sources_after_second = api
        .list_sources(ListSourcesRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .sources;
    assert_eq!(sources_after_first.len(), 1);
    assert_eq!(sources_after_first[0].id, sources_after_second[0].id);
    assert_eq!(sources_after_first[0].token, sources_after_second[0].token);
    let rules_after_second = list_rules(&control).await;
    let ids = |rules: &[foco_proto::v1::Rule]| {
        rules.iter().map(|rule| rule.id.clone()).collect::<Vec<_>>()
    };
    assert_eq!(ids(&rules_after_first), ids(&rules_after_second));
    let resolved = api
        .resolve_source(ResolveSourceRequest {
            token: token.clone(),
            source_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.secrets, ["shpss_cli_secret"]);
    let routes = api
        .list_provider_routes(ListProviderRoutesRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes;
    let hook = routes.iter().find(|route| route.name == "hook").unwrap();
    assert_eq!(hook.credential_names, ["Authorization"]);
    assert_eq!(hook.settings["url"], "http://127.0.0.1:9999/sms");

    // The listing shows the same URL.
    let mut listing = Vec::new();
    commands::list_sources(
        &mut api,
        "tienda-ale",
        INGRESS_URL,
        OutputFormat::Json,
        &mut listing,
    )
    .await
    .unwrap();
    let listed: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(
        listed[0]["webhook_url"],
        format!("https://hooks.example.test/v1/hooks/{token}")
    );
}

#[tokio::test]
async fn prune_deletes_rules_missing_from_the_file() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = environment();
    let lookup = |name: &str| env.get(name).cloned();
    let mut api = control.api();
    let path = write_config(&dir, CONFIG);
    apply_file(&mut api, &path, &lookup, &options(false), &mut Vec::new())
        .await
        .unwrap();

    let without_thanks = CONFIG
        .split("      - name: thanks")
        .next()
        .unwrap()
        .to_owned();
    let path = write_config(&dir, &without_thanks);
    apply_file(&mut api, &path, &lookup, &options(false), &mut Vec::new())
        .await
        .unwrap();
    assert_eq!(
        list_rules(&control).await.len(),
        2,
        "without --prune nothing is deleted"
    );

    let mut output = Vec::new();
    let summary = apply_file(&mut api, &path, &lookup, &options(true), &mut output)
        .await
        .unwrap();
    assert_eq!(summary.pruned, ["shop/thanks"]);
    let names: Vec<_> = list_rules(&control)
        .await
        .into_iter()
        .map(|rule| rule.name)
        .collect();
    assert_eq!(names, ["owner-alert"]);
    assert!(
        String::from_utf8(output)
            .unwrap()
            .contains("pruned rule shop/thanks")
    );
}

#[tokio::test]
async fn server_side_errors_name_the_file_location() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let env = environment();
    let lookup = |name: &str| env.get(name).cloned();
    let broken = CONFIG.replace(
        "double(event.total_price) >= 500.0'",
        "double(event.total_price) >= '",
    );
    let path = write_config(&dir, &broken);
    let error = apply_file(
        &mut control.api(),
        &path,
        &lookup,
        &options(false),
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    let expected_start = format!(
        "{}: sources[0].rules[0]: save rule \"owner-alert\" of source \"shop\": invalid: when is not a valid CEL expression: line 1, column",
        path.display()
    );
    assert!(error.starts_with(&expected_start), "{error}");
}

async fn list_rules(control: &Control) -> Vec<foco_proto::v1::Rule> {
    control
        .api()
        .list_rules(ListRulesRequest {
            account: "tienda-ale".to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .rules
}
