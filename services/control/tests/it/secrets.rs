//! Signing secrets rotate (two valid at once) and, like provider credentials,
//! are stored encrypted.

use foco_proto::v1::{ResolveRouteRequest, ResolveSourceRequest, UpsertProviderRouteRequest};
use tonic::Code;
use uuid::Uuid;

use crate::harness::{TestControl, create_source, source_request};

async fn secrets(control: &TestControl, token: &str) -> Vec<String> {
    control
        .admin()
        .resolve_source(ResolveSourceRequest {
            token: token.to_owned(),
            source_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .secrets
}

#[tokio::test]
async fn a_new_secret_becomes_current_and_the_previous_stays_valid() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let source = create_source(&control, "acme", "shop", "secret-one").await;
    assert_eq!(secrets(&control, &source.token).await, ["secret-one"]);

    create_source(&control, "acme", "shop", "secret-two").await;
    assert_eq!(
        secrets(&control, &source.token).await,
        ["secret-two", "secret-one"]
    );

    // Empty keeps both; re-sending the current one (a re-apply) changes nothing.
    create_source(&control, "acme", "shop", "").await;
    create_source(&control, "acme", "shop", "secret-two").await;
    assert_eq!(
        secrets(&control, &source.token).await,
        ["secret-two", "secret-one"]
    );

    create_source(&control, "acme", "shop", "secret-three").await;
    assert_eq!(
        secrets(&control, &source.token).await,
        ["secret-three", "secret-two"]
    );
}

#[tokio::test]
async fn signed_schemes_need_a_secret() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let status = control
        .admin()
        .upsert_source(source_request("acme", "shop", ""))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status
            .message()
            .contains("hmac-sha256 needs a signing secret"),
        "{}",
        status.message()
    );
}

#[tokio::test]
async fn secrets_and_credentials_are_encrypted_at_rest() {
    let control = TestControl::start().await;
    let account = control.create_account("acme").await;
    let source = create_source(&control, "acme", "shop", "shpss_super-secret-value").await;
    assert!(source.has_secret);

    let mut route = UpsertProviderRouteRequest {
        account: "acme".to_owned(),
        name: "twilio".to_owned(),
        kind: "twilio".to_owned(),
        settings: [("from".to_owned(), "+15005550006".to_owned())].into(),
        credentials: [
            ("account_sid".to_owned(), "AC-the-account-sid".to_owned()),
            ("auth_token".to_owned(), "the-auth-token-value".to_owned()),
        ]
        .into(),
        is_default: false,
    };
    let saved = control
        .admin()
        .upsert_provider_route(route.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.credential_names, ["account_sid", "auth_token"]);
    assert_eq!(saved.settings["from"], "+15005550006");

    let (sealed_secrets,): (Vec<Vec<u8>>,) =
        sqlx::query_as("SELECT secrets_encrypted FROM sources WHERE id = $1")
            .bind(Uuid::parse_str(&source.id).unwrap())
            .fetch_one(&control.db.pool)
            .await
            .unwrap();
    assert_eq!(sealed_secrets.len(), 1);
    assert!(!contains(&sealed_secrets[0], b"super-secret"));
    let (sealed_credentials,): (Vec<u8>,) =
        sqlx::query_as("SELECT credentials_encrypted FROM provider_routes WHERE id = $1")
            .bind(Uuid::parse_str(&saved.id).unwrap())
            .fetch_one(&control.db.pool)
            .await
            .unwrap();
    assert!(!contains(&sealed_credentials, b"the-auth-token-value"));
    assert!(!contains(&sealed_credentials, b"AC-the-account-sid"));

    // An update without credentials keeps the stored ones.
    route.credentials.clear();
    control.admin().upsert_provider_route(route).await.unwrap();
    let resolved = control
        .admin()
        .resolve_route(ResolveRouteRequest {
            account_id: account.id,
            name: "twilio".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resolved.credentials["auth_token"], "the-auth-token-value");
    assert_eq!(resolved.credentials["account_sid"], "AC-the-account-sid");
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
