//! `foco api-keys list|create|revoke` against control: the key is printed once,
//! listings show only its prefix, and a revoked key stops working.

use chrono::{TimeDelta, Utc};
use clap::Parser as _;
use foco_cli::args::Cli;
use foco_proto::v1::ListAccountsRequest;
use serde_json::Value;

use crate::harness::{ADMIN_KEY, Control, ControlClients, run_foco as foco};

async fn control_with_account() -> Control {
    let control = Control::start().await;
    foco_harness::create_test_account(&mut control.api(), "tienda-ale").await;
    control
}

#[tokio::test]
async fn keys_are_created_once_listed_without_secrets_and_revoked() {
    let control = control_with_account().await;

    let printed = foco(
        &control,
        ADMIN_KEY,
        &["api-keys", "create", "--description", "laptop"],
    )
    .await
    .unwrap();
    let lines: Vec<&str> = printed.lines().collect();
    assert!(lines[0].starts_with("created API key "), "{printed}");
    let laptop_key = lines[1];
    assert!(
        laptop_key.starts_with("foco_") && laptop_key.len() == 48,
        "{printed}"
    );
    assert_eq!(lines[2], "scopes: send,trigger,read,manage");
    assert_eq!(lines[3], "never expires");
    assert_eq!(lines[4], "store it now: it is not shown again");

    let created: Value = serde_json::from_str(
        &foco(
            &control,
            ADMIN_KEY,
            &["api-keys", "create", "--expires-in", "30d", "-o", "json"],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let ci_key = created["key"].as_str().unwrap().to_owned();
    let ci_id = created["id"].as_str().unwrap().to_owned();
    let expires_at: chrono::DateTime<Utc> =
        created["expires_at"].as_str().unwrap().parse().unwrap();
    let expected = Utc::now() + TimeDelta::days(30);
    assert!(
        (expected - expires_at).abs() < TimeDelta::minutes(1),
        "{created}"
    );

    // An account key lists its account's keys; nothing secret is shown.
    let listing = foco(&control, &ci_key, &["api-keys", "list", "-o", "json"])
        .await
        .unwrap();
    for key in [laptop_key, ci_key.as_str()] {
        assert!(
            !listing.contains(&key[11..]),
            "secret in listing: {listing}"
        );
    }
    let listed: Value = serde_json::from_str(&listing).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0]["prefix"], laptop_key[..11]);
    assert_eq!(listed[0]["description"], "laptop");
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["expires_at"], Value::Null);
    assert_eq!(listed[1]["id"], ci_id);
    assert_eq!(listed[1]["prefix"], ci_key[..11]);
    assert_eq!(listed[1]["expires_at"], created["expires_at"]);
    assert!(listed.iter().all(|key| key.get("key").is_none()));

    let table = foco(&control, ADMIN_KEY, &["api-keys", "list"])
        .await
        .unwrap();
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        table.contains(&laptop_key[..11]) && table.contains("never"),
        "{table}"
    );

    let revoked = foco(&control, ADMIN_KEY, &["api-keys", "revoke", &ci_id])
        .await
        .unwrap();
    assert!(
        revoked.starts_with(&format!("API key {ci_id} revoked at ")),
        "{revoked}"
    );
    let status = control
        .client(&ci_key)
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let listed: Value = serde_json::from_str(
        &foco(&control, ADMIN_KEY, &["api-keys", "list", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed[1]["state"], "revoked");
}

#[tokio::test]
async fn lifetimes_are_checked() {
    let control = control_with_account().await;
    let parsed = Cli::try_parse_from(["foco", "api-keys", "create", "--expires-in", "soon"]);
    assert!(parsed.is_err());

    let error = foco(
        &control,
        ADMIN_KEY,
        &["api-keys", "create", "--expires-in", "3y"],
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(message.contains("more than two years"), "{message}");

    let error = foco(
        &control,
        ADMIN_KEY,
        &["api-keys", "create", "--expires-in", "0s"],
    )
    .await
    .unwrap_err();
    assert!(matches!(error, foco_cli::CliError::Input { .. }), "{error}");
}

#[tokio::test]
async fn scoped_and_service_keys_are_created_listed_and_revoked() {
    let control = control_with_account().await;
    let created: Value = serde_json::from_str(
        &foco(
            &control,
            ADMIN_KEY,
            &[
                "api-keys",
                "create",
                "--name",
                "dashboard",
                "--scope",
                "read",
                "-o",
                "json",
            ],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(created["scopes"], serde_json::json!(["read"]));
    let reader_key = created["key"].as_str().unwrap().to_owned();
    // A read key lists, and cannot create a key (that needs manage).
    let listed: Value = serde_json::from_str(
        &foco(&control, &reader_key, &["api-keys", "list", "-o", "json"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(listed[0]["name"], "dashboard");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["read"]));
    assert!(listed[0]["last_used_at"].is_string(), "{listed}");
    let error = foco(&control, &reader_key, &["api-keys", "create"])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("manage"), "{error}");

    let printed = foco(
        &control,
        ADMIN_KEY,
        &[
            "api-keys",
            "create",
            "--service",
            "sender",
            "--name",
            "sender-1",
        ],
    )
    .await
    .unwrap();
    assert!(printed.contains("for service sender"), "{printed}");
    assert!(printed.contains("scopes: resolve:routes"), "{printed}");
    let services: Value = serde_json::from_str(
        &foco(
            &control,
            ADMIN_KEY,
            &["api-keys", "list", "--services", "-o", "json"],
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let services = services.as_array().unwrap();
    assert_eq!(services.len(), 1, "{services:?}");
    assert_eq!(services[0]["service"], "sender");
    let id = services[0]["id"].as_str().unwrap();
    let revoked = foco(
        &control,
        ADMIN_KEY,
        &["api-keys", "revoke", "--services", id],
    )
    .await
    .unwrap();
    assert!(revoked.contains("revoked at"), "{revoked}");
    assert!(Cli::try_parse_from(["foco", "api-keys", "create", "--service", "billing"]).is_err());
}
