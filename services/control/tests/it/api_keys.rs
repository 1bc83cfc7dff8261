//! API key management: listing without secrets, revocation, expiry, and account
//! keys that cannot mint keys of wider reach than their own.

use chrono::{TimeDelta, Utc};
use foco_proto::v1::{
    ApiKey, CreateApiKeyRequest, CreateApiKeyResponse, ListAccountsRequest, ListApiKeysRequest,
    RevokeApiKeyRequest,
};
use tonic::Code;

use crate::harness::TestControl;

fn in_days(days: i64) -> i64 {
    (Utc::now() + TimeDelta::days(days)).timestamp_millis()
}

fn create_request(account: &str, description: &str, expires_at_ms: i64) -> CreateApiKeyRequest {
    CreateApiKeyRequest {
        account: account.to_owned(),
        description: description.to_owned(),
        expires_at_ms,
        ..Default::default()
    }
}

async fn create_key(
    control: &TestControl,
    key: &str,
    request: CreateApiKeyRequest,
) -> Result<CreateApiKeyResponse, tonic::Status> {
    control
        .client(key)
        .create_api_key(request)
        .await
        .map(tonic::Response::into_inner)
}

async fn list_keys(control: &TestControl, key: &str, account: &str) -> Vec<ApiKey> {
    control
        .client(key)
        .list_api_keys(ListApiKeysRequest {
            account: account.to_owned(),
        })
        .await
        .expect("list api keys")
        .into_inner()
        .api_keys
}

fn revoke_request(account: &str, id: &str) -> RevokeApiKeyRequest {
    RevokeApiKeyRequest {
        account: account.to_owned(),
        id: id.to_owned(),
    }
}

/// A call any valid key of the account may make.
async fn authenticate(control: &TestControl, key: &str) -> Result<(), tonic::Status> {
    control
        .client(key)
        .list_accounts(ListAccountsRequest {})
        .await
        .map(drop)
}

#[tokio::test]
async fn listed_keys_show_a_prefix_and_never_the_secret() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    control.create_account("globex").await;
    let expires_at_ms = in_days(30);
    let first = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        create_request("acme", "ci", 0),
    )
    .await
    .unwrap();
    let second = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        create_request("acme", "laptop", expires_at_ms),
    )
    .await
    .unwrap();
    control.account_key("globex").await;
    assert_eq!(
        second.api_key.as_ref().unwrap().expires_at_ms,
        expires_at_ms
    );

    for caller in [foco_harness::ADMIN_KEY, first.key.as_str()] {
        let mut listed = list_keys(&control, caller, "acme").await;
        // Listing with `first` uses it.
        assert_eq!(listed[0].last_used_at_ms > 0, caller == first.key);
        listed[0].last_used_at_ms = 0;
        assert_eq!(listed.len(), 2, "only acme's keys: {listed:?}");
        assert_eq!(listed[0], first.api_key.clone().unwrap());
        assert_eq!(listed[1], second.api_key.clone().unwrap());
        assert_eq!(listed[0].id, first.id);
        assert_eq!(listed[0].description, "ci");
        assert_eq!(listed[0].prefix, &first.key[..11]);
        assert_eq!(listed[0].expires_at_ms, 0);
        assert_eq!(listed[0].revoked_at_ms, 0);
        assert!(listed[0].created_at_ms > 0);
        assert_eq!(listed[1].prefix, &second.key[..11]);
        assert_eq!(listed[1].expires_at_ms, expires_at_ms);
        let shown = format!("{listed:?}");
        for key in [&first.key, &second.key] {
            assert!(!shown.contains(&key[11..]), "secret in listing: {shown}");
        }
    }

    let stored_prefixes: Vec<String> = sqlx::query_scalar("SELECT key_prefix FROM api_keys")
        .fetch_all(&control.db.pool)
        .await
        .unwrap();
    assert!(stored_prefixes.iter().all(|prefix| prefix.len() == 11));

    let status = control
        .client(&first.key)
        .list_api_keys(ListApiKeysRequest {
            account: "globex".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn a_revoked_key_stops_authenticating_at_once() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    control.create_account("globex").await;
    let created = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        create_request("acme", "ci", 0),
    )
    .await
    .unwrap();
    authenticate(&control, &created.key).await.unwrap();

    let revoked = control
        .admin()
        .revoke_api_key(revoke_request("acme", &created.id))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked_at_ms > 0);
    let status = authenticate(&control, &created.key).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("revoked"), "{}", status.message());

    // Idempotent: the first revocation time stays.
    let again = control
        .admin()
        .revoke_api_key(revoke_request("acme", &created.id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again, revoked);
    assert_eq!(
        list_keys(&control, foco_harness::ADMIN_KEY, "acme").await,
        [revoked]
    );

    // Wrong account, unknown id, malformed id.
    let status = control
        .admin()
        .revoke_api_key(revoke_request("globex", &created.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = control
        .admin()
        .revoke_api_key(revoke_request("acme", &uuid::Uuid::now_v7().to_string()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let status = control
        .admin()
        .revoke_api_key(revoke_request("acme", "not-an-id"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn an_account_key_revokes_its_account_keys_and_itself_but_no_others() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    control.create_account("globex").await;
    let admin = foco_harness::ADMIN_KEY;
    let own = create_key(&control, admin, create_request("acme", "own", 0))
        .await
        .unwrap();
    let sibling = create_key(&control, admin, create_request("acme", "sibling", 0))
        .await
        .unwrap();
    let foreign = create_key(&control, admin, create_request("globex", "other", 0))
        .await
        .unwrap();
    let mut client = control.client(&own.key);

    client
        .revoke_api_key(revoke_request("acme", &sibling.id))
        .await
        .unwrap();
    assert_eq!(
        authenticate(&control, &sibling.key)
            .await
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );

    // Another account's key, named by its account or by its own.
    let status = client
        .revoke_api_key(revoke_request("globex", &foreign.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let status = client
        .revoke_api_key(revoke_request("acme", &foreign.id))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    authenticate(&control, &foreign.key).await.unwrap();

    client
        .revoke_api_key(revoke_request("acme", &own.id))
        .await
        .unwrap();
    let status = authenticate(&control, &own.key).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let created = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        create_request("acme", "short-lived", in_days(1)),
    )
    .await
    .unwrap();
    authenticate(&control, &created.key).await.unwrap();

    // Expiry is checked against the clock; move it into the past rather than wait.
    sqlx::query("UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&created.id).unwrap())
        .execute(&control.db.pool)
        .await
        .unwrap();
    let status = authenticate(&control, &created.key).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("expired"), "{}", status.message());
}

#[tokio::test]
async fn expiry_must_be_in_the_future_and_within_two_years() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    for expires_at_ms in [in_days(-1), in_days(2 * 365 + 1)] {
        let status = create_key(
            &control,
            foco_harness::ADMIN_KEY,
            create_request("acme", "", expires_at_ms),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    create_key(
        &control,
        foco_harness::ADMIN_KEY,
        create_request("acme", "", in_days(2 * 365 - 1)),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_account_key_cannot_mint_keys_of_wider_reach() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    control.create_account("globex").await;
    let admin = foco_harness::ADMIN_KEY;
    let caller_expires_at_ms = in_days(10);
    let expiring = create_key(
        &control,
        admin,
        create_request("acme", "expiring", caller_expires_at_ms),
    )
    .await
    .unwrap()
    .key;
    let lasting = create_key(&control, admin, create_request("acme", "lasting", 0))
        .await
        .unwrap()
        .key;

    // Another account: denied to both account keys.
    for key in [&expiring, &lasting] {
        let status = create_key(&control, key, create_request("globex", "", in_days(1)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied);
    }

    // An expiring key cannot create a key that never expires or outlives it.
    for expires_at_ms in [0, caller_expires_at_ms + 1, in_days(20)] {
        let status = create_key(
            &control,
            &expiring,
            create_request("acme", "", expires_at_ms),
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::PermissionDenied, "{expires_at_ms}");
        assert!(status.message().contains("expire"), "{}", status.message());
    }
    for expires_at_ms in [in_days(5), caller_expires_at_ms] {
        let created = create_key(
            &control,
            &expiring,
            create_request("acme", "", expires_at_ms),
        )
        .await
        .unwrap();
        authenticate(&control, &created.key).await.unwrap();
    }

    // A key that never expires, and the admin key, may create one that never does.
    create_key(&control, &lasting, create_request("acme", "", 0))
        .await
        .unwrap();
    for account in ["acme", "globex"] {
        create_key(&control, admin, create_request(account, "", 0))
            .await
            .unwrap();
        create_key(&control, admin, create_request(account, "", in_days(700)))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn scoped_keys_do_only_what_their_scopes_allow_and_create_no_wider_keys() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let reader = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        CreateApiKeyRequest {
            name: "dashboard".to_owned(),
            scopes: vec!["read".to_owned()],
            ..create_request("acme", "", 0)
        },
    )
    .await
    .unwrap();
    let listed = reader.api_key.clone().unwrap();
    assert_eq!(
        (listed.name.as_str(), listed.scopes.as_slice()),
        ("dashboard", &["read".to_owned()][..])
    );
    authenticate(&control, &reader.key).await.unwrap();
    let status = create_key(&control, &reader.key, create_request("acme", "", 0))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");

    // A manager without send cannot hand send out; with none asked, the new key
    // gets the creator's scopes.
    let manager = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        CreateApiKeyRequest {
            scopes: vec!["read".to_owned(), "manage".to_owned()],
            ..create_request("acme", "", 0)
        },
    )
    .await
    .unwrap();
    let status = create_key(
        &control,
        &manager.key,
        CreateApiKeyRequest {
            scopes: vec!["send".to_owned()],
            ..create_request("acme", "", 0)
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(status.message().contains("send"), "{}", status.message());
    let inherited = create_key(&control, &manager.key, create_request("acme", "", 0))
        .await
        .unwrap();
    assert_eq!(
        inherited.api_key.unwrap().scopes,
        ["read".to_owned(), "manage".to_owned()]
    );
    for refused in [vec!["resolve:sources".to_owned()], vec!["root".to_owned()]] {
        let status = create_key(
            &control,
            foco_harness::ADMIN_KEY,
            CreateApiKeyRequest {
                scopes: refused,
                ..create_request("acme", "", 0)
            },
        )
        .await
        .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}

#[tokio::test]
async fn service_keys_resolve_for_every_account_and_only_the_admin_key_manages_them() {
    let control = TestControl::start().await;
    control.create_account("acme").await;
    let account_key = control.account_key("acme").await;
    let service_request = |service: &str| CreateApiKeyRequest {
        service: service.to_owned(),
        name: format!("{service}-1"),
        ..Default::default()
    };
    let status = create_key(&control, &account_key, service_request("rules"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = create_key(
        &control,
        foco_harness::ADMIN_KEY,
        CreateApiKeyRequest {
            account: "acme".to_owned(),
            ..service_request("rules")
        },
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    let rules = create_key(&control, foco_harness::ADMIN_KEY, service_request("rules"))
        .await
        .unwrap();
    let shown = rules.api_key.clone().unwrap();
    assert_eq!(shown.service, "rules");
    assert_eq!(shown.scopes, ["resolve:sources".to_owned()]);

    // The lookups its scope allows, and nothing of an account's.
    let resolve = foco_proto::v1::ResolveSourceRequest {
        source_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    };
    let status = control
        .client(&rules.key)
        .resolve_source(resolve.clone())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    let status = control
        .client(&rules.key)
        .resolve_route(foco_proto::v1::ResolveRouteRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert_eq!(
        authenticate(&control, &rules.key).await.unwrap_err().code(),
        Code::PermissionDenied
    );

    // Listed apart from the accounts' keys, used, revoked at once.
    let listed = list_keys(&control, foco_harness::ADMIN_KEY, "").await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(listed[0].last_used_at_ms > 0);
    assert_eq!(
        list_keys(&control, foco_harness::ADMIN_KEY, "acme")
            .await
            .len(),
        1
    );
    let status = control
        .client(&account_key)
        .list_api_keys(ListApiKeysRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    control
        .admin()
        .revoke_api_key(revoke_request("", &rules.id))
        .await
        .unwrap();
    let status = control
        .client(&rules.key)
        .resolve_source(resolve)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}
