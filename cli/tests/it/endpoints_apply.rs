//! Status webhook endpoints in `foco apply` files: created once (the secret
//! printed once), unchanged when the same file is applied again, updated in
//! place, pruned only with `--prune` and only from a file that lists
//! endpoints; secrets come from `env:` only.

use std::collections::HashMap;

use foco_cli::manifest::Manifest;
use foco_proto::v1::ListEndpointsRequest;

use crate::harness::{ADMIN_KEY, Control, run_foco, write_config};

const ACCOUNT_ONLY: &str = "
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
";

fn with_endpoints(endpoints: &str) -> String {
    format!("{ACCOUNT_ONLY}endpoints:\n{endpoints}")
}

const TWO: &str = "
  - name: crm
    url: https://crm.example.com/foco
    events: [message.delivered, message.failed]
    description: CRM timeline
  - name: audit
    url: https://audit.example.com/foco
";

const CRM_MOVED: &str = "
  - name: crm
    url: https://crm.example.com/foco/v2
    events: [message.delivered]
";

async fn endpoint_names(control: &Control) -> Vec<(String, String, Vec<String>)> {
    control
        .messaging(ADMIN_KEY)
        .list_endpoints(ListEndpointsRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .expect("list endpoints")
        .into_inner()
        .endpoints
        .into_iter()
        .map(|endpoint| (endpoint.name, endpoint.url, endpoint.event_types))
        .collect()
}

async fn apply(control: &Control, dir: &tempfile::TempDir, text: &str, prune: bool) -> String {
    let path = write_config(dir, text);
    let mut args = vec!["apply", "-f", path.to_str().unwrap()];
    if prune {
        args.push("--prune");
    }
    run_foco(control, ADMIN_KEY, &args).await.expect("apply")
}

#[tokio::test]
async fn endpoints_are_created_once_updated_in_place_and_pruned_on_request() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();

    let first = apply(&control, &dir, &with_endpoints(TWO), false).await;
    assert!(
        first.contains("endpoint crm: created -> https://crm.example.com/foco"),
        "{first}"
    );
    assert_eq!(
        first
            .matches("signing secret (shown only now): whsec_")
            .count(),
        2,
        "{first}"
    );
    assert!(
        first.contains("2 endpoints (2 created, 0 updated, 0 unchanged)"),
        "{first}"
    );

    let again = apply(&control, &dir, &with_endpoints(TWO), false).await;
    assert!(!again.contains("whsec_"), "a secret is shown once: {again}");
    assert!(
        again.contains("2 endpoints (0 created, 0 updated, 2 unchanged)"),
        "{again}"
    );

    let unpruned = apply(&control, &dir, &with_endpoints(CRM_MOVED), false).await;
    assert!(
        unpruned.contains("endpoint crm: updated -> https://crm.example.com/foco/v2"),
        "{unpruned}"
    );
    assert_eq!(
        endpoint_names(&control).await.len(),
        2,
        "without --prune nothing is deleted"
    );

    let no_key = apply(&control, &dir, ACCOUNT_ONLY, true).await;
    assert!(!no_key.contains("pruned endpoint"), "{no_key}");
    assert_eq!(
        endpoint_names(&control).await.len(),
        2,
        "a file without `endpoints` leaves them alone, even with --prune"
    );

    let pruned = apply(&control, &dir, &with_endpoints(CRM_MOVED), true).await;
    assert!(pruned.contains("pruned endpoint audit"), "{pruned}");
    assert_eq!(
        endpoint_names(&control).await,
        [(
            "crm".to_owned(),
            "https://crm.example.com/foco/v2".to_owned(),
            vec!["message.delivered".to_owned()]
        )]
    );

    let listed = run_foco(&control, ADMIN_KEY, &["endpoints", "list", "-o", "json"])
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "crm");
    control.stop().await;
}

#[test]
fn secrets_come_from_the_environment_only() {
    let dir = tempfile::tempdir().unwrap();
    let env: HashMap<&str, &str> =
        [("CRM_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")].into();
    let lookup = |name: &str| env.get(name).map(|value| (*value).to_owned());
    let resolve = |endpoints: &str| {
        let path = write_config(&dir, &with_endpoints(endpoints));
        Manifest::load(&path).unwrap().resolve(&lookup)
    };

    let plan = resolve(
        "
  - name: crm
    url: https://crm.example.com/foco
    secret: env:CRM_SECRET
",
    )
    .unwrap();
    let endpoints = plan.endpoints.expect("the file lists endpoints");
    assert_eq!(
        endpoints[0].request.secret,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );

    let written = resolve(
        "
  - name: crm
    url: https://crm.example.com/foco
    secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
",
    )
    .unwrap_err()
    .to_string();
    assert!(written.contains("endpoints[0].secret"), "{written}");
    assert!(written.contains("env:NAME"), "{written}");

    let missing = resolve(
        "
  - name: crm
    url: https://crm.example.com/foco
    secret: env:NOT_SET
",
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("NOT_SET"), "{missing}");

    let twice = resolve(
        "
  - name: crm
    url: https://a.example.com
  - name: crm
    url: https://b.example.com
",
    )
    .unwrap_err()
    .to_string();
    assert!(twice.contains("endpoint \"crm\" appears twice"), "{twice}");
}
