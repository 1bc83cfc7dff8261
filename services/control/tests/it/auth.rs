//! Bearer keys: none, wrong, admin, and account keys confined to their account.

use foco_proto::v1::control_service_client::ControlServiceClient;
use foco_proto::v1::{
    GetAccountRequest, ListAccountsRequest, ListSourcesRequest, ResolveRouteRequest,
    ResolveSourceRequest, UpsertAccountRequest,
};
use tonic::Code;

use crate::harness::{TestControl, create_source};

#[tokio::test]
async fn calls_without_a_valid_key_are_unauthenticated() {
    let control = TestControl::start().await;
    control.create_account("acme").await;

    let channel = tonic::transport::Endpoint::from_shared(control.grpc_url.clone())
        .unwrap()
        .connect_lazy();
    let mut anonymous = ControlServiceClient::new(channel);
    let status = anonymous
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    let status = control
        .client("foco_not-a-real-key-000000000000000000000000000")
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("API key"), "{}", status.message());
}

#[tokio::test]
async fn admin_key_sees_every_account() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    control.create_account("globex").await;
    let accounts = control
        .admin()
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = accounts
        .accounts
        .iter()
        .map(|account| account.name.as_str())
        .collect();
    assert_eq!(names, ["acme", "globex"]);
}

#[tokio::test]
async fn account_keys_are_confined_to_their_account() {
    let control = TestControl::start().await;
    let acme = control.create_account("acme").await;
    control.create_account("globex").await;
    create_source(&control, "globex", "shop", "secret-globex").await;
    let key = control.account_key("acme").await;
    assert!(key.starts_with("foco_") && key.len() == 48, "{key}");
    let mut client = control.client(&key);

    // Its own account works.
    let own = client
        .get_account(GetAccountRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(own.id, acme.id);
    client
        .list_sources(ListSourcesRequest {
            account: "acme".to_owned(),
        })
        .await
        .unwrap();
    let updated = client
        .upsert_account(UpsertAccountRequest {
            name: "acme".to_owned(),
            default_country: "US".to_owned(),
            timezone: "America/New_York".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.default_country, "US");

    // ListAccounts shows only its own.
    let listed = client
        .list_accounts(ListAccountsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.accounts.len(), 1);
    assert_eq!(listed.accounts[0].name, "acme");

    // Another account, existing or not, is denied.
    for other in ["globex", "does-not-exist"] {
        let status = client
            .list_sources(ListSourcesRequest {
                account: other.to_owned(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{other}: {status:?}");
    }
    let status = client
        .upsert_account(UpsertAccountRequest {
            name: "newco".to_owned(),
            default_country: "MX".to_owned(),
            timezone: "America/Mexico_City".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);

    // Lookups with secrets in clear are for admin keys only.
    let status = client
        .resolve_source(ResolveSourceRequest {
            token: "src_whatever".to_owned(),
            source_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .resolve_route(ResolveRouteRequest {
            account_id: acme.id.clone(),
            name: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn api_keys_are_stored_only_as_hashes() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let key = control.account_key("acme").await;
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM api_keys")
        .fetch_all(&control.db.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].len(), 32);
    assert!(
        !stored[0]
            .windows(8)
            .any(|window| window == &key.as_bytes()[5..13])
    );
}
