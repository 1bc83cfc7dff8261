//! The built `foco` binary: help, apply, and a listing, as a user runs them.

use std::process::Command;

use crate::harness::{ADMIN_KEY, CONFIG, Control, environment, write_config};

fn foco() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_foco"));
    for variable in [
        "FOCO_API_URL",
        "FOCO_API_KEY",
        "FOCO_ADMIN_API_KEY",
        "FOCO_INGRESS_URL",
        "FOCO_ACCOUNT",
    ] {
        command.env_remove(variable);
    }
    command
}

#[test]
fn help_lists_the_commands() {
    let output = foco().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for command in [
        "apply",
        "sources",
        "rules",
        "messages",
        "accounts",
        "api-keys",
        "--api-url",
        "--api-key",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
}

#[test]
fn version_names_the_revision() {
    let output = foco().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        format!("foco {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}

#[tokio::test]
async fn the_binary_applies_a_file_and_lists_messages() {
    let control = Control::start().await;
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(&dir, CONFIG);
    let run = |args: &[&str]| {
        let mut command = foco();
        command
            .args(args)
            .env("FOCO_API_URL", &control.grpc_url)
            .env("FOCO_ADMIN_API_KEY", ADMIN_KEY)
            .env("FOCO_INGRESS_URL", "http://127.0.0.1:8080");
        for (name, value) in environment() {
            command.env(name, value);
        }
        // The binary blocks; keep the runtime (and control) free while it runs.
        tokio::task::spawn_blocking(move || command.output().unwrap())
    };

    let dry = run(&["apply", "-f", path.to_str().unwrap(), "--dry-run"])
        .await
        .unwrap();
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(
        String::from_utf8_lossy(&dry.stdout)
            .contains("valid (account tienda-ale: 2 providers, 1 source, 2 rules)")
    );

    let applied = run(&["apply", "-f", path.to_str().unwrap()]).await.unwrap();
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let stdout = String::from_utf8(applied.stdout).unwrap();
    assert!(
        stdout.starts_with("source shop: http://127.0.0.1:8080/v1/hooks/src_"),
        "{stdout}"
    );

    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, provider,
                               provider_message_id, attempts, created_at, updated_at, sent_at)
         SELECT 'job-1', id, 'evt-1', '+5215512345678', 'Ale acaba de comprar $500', 'sent', 'primary',
                'console-1', 1, '2025-01-02T03:04:05Z', '2025-01-02T03:04:06Z', '2025-01-02T03:04:06Z'
         FROM accounts WHERE name = 'tienda-ale'",
    )
    .execute(&control.db.pool)
    .await
    .unwrap();
    let messages = run(&["messages", "list", "-o", "json", "--account", "tienda-ale"])
        .await
        .unwrap();
    assert!(
        messages.status.success(),
        "{}",
        String::from_utf8_lossy(&messages.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&messages.stdout).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{
            "id": "job-1",
            "event_id": "evt-1",
            "to": "+5215512345678",
            "body": "Ale acaba de comprar $500",
            "status": "sent",
            "provider": "primary",
            "provider_message_id": "console-1",
            "attempts": 1,
            "error": "",
            "created_at": "2025-01-02T03:04:05.000Z",
            "updated_at": "2025-01-02T03:04:06.000Z",
            "sent_at": "2025-01-02T03:04:06.000Z",
        }])
    );

    let missing = run(&["sources", "list"]).await.unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no account: pass --account or set FOCO_ACCOUNT")
    );
}
