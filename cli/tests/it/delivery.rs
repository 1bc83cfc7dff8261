//! `foco opt-outs`, `foco dead-letters` and `foco jobs unknown` against control's
//! DeliveryService, and `providers:` entries of the new kinds with the route
//! settings every kind takes. Dead letters and unknown jobs are written straight
//! into their tables (the schema is the contract between control and the sender).

use std::collections::HashMap;

use foco_proto::v1::ListProviderRoutesRequest;
use serde_json::Value;

use crate::harness::{ADMIN_KEY, Control, ControlClients, run_foco};

const CONFIG: &str = r#"
account: tienda-ale
default_country: MX
timezone: America/Mexico_City
providers:
  - name: main
    kind: telnyx
    api_key: env:TELNYX_KEY
    public_key: 11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=
    from: "+15550001111"
    failover: [mx, backup]
    rate_limit: 50
    quiet_hours: "21:00-08:00"
    default: true
  - name: mx
    kind: smsmasivos
    api_key: env:MASIVOS_KEY
    country_prefixes: "+52"
    sandbox: true
  - name: backup
    kind: vonage
    api_key: vk
    api_secret: env:VONAGE_SECRET
    signature_secret: env:VONAGE_SIGNATURE_SECRET
    signature_method: sha256
    from: Foco
  - name: ib
    kind: infobip
    api_key: env:INFOBIP_KEY
    webhook_secret: env:INFOBIP_WEBHOOK_SECRET
    base_url: https://xyz.api.infobip.com
"#;

async fn applied_control() -> Control {
    let env = HashMap::from([
        ("TELNYX_KEY", "tx-secret"),
        ("MASIVOS_KEY", "sm-secret"),
        ("VONAGE_SECRET", "vs-secret"),
        ("INFOBIP_KEY", "ib-secret"),
        ("VONAGE_SIGNATURE_SECRET", "vsig-secret"),
        ("INFOBIP_WEBHOOK_SECRET", "ib-hook-secret"),
    ]);
    crate::harness::applied_control(CONFIG, &|name| {
        env.get(name).map(|value| (*value).to_owned())
    })
    .await
}

async fn foco(control: &Control, args: &[&str]) -> Result<String, foco_cli::CliError> {
    run_foco(control, ADMIN_KEY, args).await
}

#[tokio::test]
async fn new_provider_kinds_and_route_settings_apply() {
    let control = applied_control().await;
    let routes = control
        .api()
        .list_provider_routes(ListProviderRoutesRequest {
            account: "tienda-ale".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .routes;
    let route = |name: &str| routes.iter().find(|route| route.name == name).unwrap();
    let main = route("main");
    assert_eq!(main.kind, "telnyx");
    assert_eq!(main.settings["failover"], "mx,backup");
    assert_eq!(main.settings["rate_limit"], "50");
    assert_eq!(main.settings["quiet_hours"], "21:00-08:00");
    let mut main_credentials = main.credential_names.clone();
    main_credentials.sort();
    assert_eq!(main_credentials, ["api_key", "public_key"]);
    assert!(
        !main.settings.contains_key("api_key"),
        "secrets are credentials"
    );
    assert_eq!(route("mx").settings["sandbox"], "true");
    assert_eq!(route("mx").settings["country_prefixes"], "+52");
    let mut backup_credentials = route("backup").credential_names.clone();
    backup_credentials.sort();
    assert_eq!(
        backup_credentials,
        ["api_key", "api_secret", "signature_secret"]
    );
    assert_eq!(route("backup").settings["signature_method"], "sha256");
    let mut ib_credentials = route("ib").credential_names.clone();
    ib_credentials.sort();
    assert_eq!(ib_credentials, ["api_key", "webhook_secret"]);
    assert_eq!(route("ib").kind, "infobip");
}

#[tokio::test]
async fn opt_outs_dead_letters_and_unknown_jobs_from_the_command_line() {
    let control = applied_control().await;
    let added = foco(
        &control,
        &["opt-outs", "add", "55 1234 5678", "--reason", "llamó"],
    )
    .await
    .unwrap();
    assert_eq!(added, "opted out +525512345678\n");
    let listed: Value = serde_json::from_str(
        &foco(&control, &["opt-outs", "list", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed[0]["phone"], "+525512345678");
    assert_eq!(listed[0]["source"], "api");
    assert_eq!(listed[0]["reason"], "llamó");

    // A dead letter and an unknown job, as the sender leaves them.
    for (job_id, status) in [("job_dead", "failed"), ("job_unknown", "unknown")] {
        sqlx::query(
            "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, provider, attempts, error, history, unknown_since) \
             VALUES ($1, (SELECT id FROM accounts WHERE name = 'tienda-ale'), 'evt', '+525598765432', \
                     'hola', $2, 'main', 3, 'gave up', \
                     '[{\"at\": 1700000000000, \"attempt\": 3, \"provider\": \"main\", \"outcome\": \"transient\", \"detail\": \"HTTP 503\"}]', \
                     CASE WHEN $2 = 'unknown' THEN now() END)",
        )
        .bind(job_id)
        .bind(status)
        .execute(&control.db.pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO dead_letters (job_id, account_id, reason, attempts, job, history) \
         SELECT job_id, account_id, 'gave up after 3 attempts: HTTP 503', 3, '\\x'::bytea, history \
         FROM messages WHERE job_id = 'job_dead'",
    )
    .execute(&control.db.pool)
    .await
    .unwrap();

    let dead = foco(&control, &["dead-letters", "list"]).await.unwrap();
    assert!(dead.starts_with("DEAD SINCE"), "{dead}");
    assert!(
        dead.contains("gave up after 3 attempts: HTTP 503"),
        "{dead}"
    );
    let shown = foco(&control, &["dead-letters", "show", "job_dead"])
        .await
        .unwrap();
    assert!(
        shown.contains("2023-11-14T22:13:20.000Z  3        main   transient  HTTP 503"),
        "{shown}"
    );

    let unknown: Value = serde_json::from_str(
        &foco(&control, &["jobs", "unknown", "list", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(unknown.as_array().unwrap().len(), 1);
    assert_eq!(unknown[0]["job_id"], "job_unknown");
    let resolved = foco(
        &control,
        &[
            "jobs",
            "unknown",
            "resolve",
            "job_unknown",
            "--as",
            "failed",
            "--note",
            "not in the provider log",
        ],
    )
    .await
    .unwrap();
    assert_eq!(resolved, "job_unknown is failed\n");
    let again = foco(
        &control,
        &["jobs", "unknown", "resolve", "job_unknown", "--as", "sent"],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(again.contains("is failed, not unknown"), "{again}");

    let removed = foco(&control, &["opt-outs", "remove", "+525512345678"])
        .await
        .unwrap();
    assert_eq!(removed, "opted +525512345678 back in\n");
}
