//! Status webhook endpoints through the API: the secret is shown once and is
//! a `whsec_` key, rotation gives a new one, refusals name their field, and an
//! account key sees only its account's endpoints.

use foco_proto::v1::{
    CreateEndpointRequest, DeleteEndpointRequest, ListEndpointDeliveriesRequest,
    ListEndpointsRequest, RotateEndpointSecretRequest, UpsertEndpointRequest,
};
use tonic::Code;

use crate::harness::TestControl;

const ACCOUNT: &str = "acme";

fn create(url: &str, event_types: &[&str]) -> CreateEndpointRequest {
    CreateEndpointRequest {
        account: ACCOUNT.to_owned(),
        url: url.to_owned(),
        event_types: event_types.iter().map(|&name| name.to_owned()).collect(),
        description: "crm".to_owned(),
        ..Default::default()
    }
}

fn upsert(name: &str, url: &str, event_types: &[&str]) -> UpsertEndpointRequest {
    UpsertEndpointRequest {
        account: ACCOUNT.to_owned(),
        name: name.to_owned(),
        url: url.to_owned(),
        event_types: event_types.iter().map(|&name| name.to_owned()).collect(),
        ..Default::default()
    }
}

#[tokio::test]
async fn an_upsert_by_name_creates_once_then_changes_in_place() {
    let control = TestControl::start().await;
    control.create_account(ACCOUNT).await;
    let mut messaging = control.messaging(foco_harness::ADMIN_KEY);

    let created = messaging
        .upsert_endpoint(upsert("crm", "https://example.com/a", &["message.sent"]))
        .await
        .expect("create")
        .into_inner();
    assert!(created.created && created.changed);
    assert!(
        created.secret.starts_with("whsec_"),
        "a fresh secret, shown once"
    );
    let endpoint = created.endpoint.expect("endpoint");
    assert_eq!(endpoint.name, "crm");

    let same = messaging
        .upsert_endpoint(upsert("crm", "https://example.com/a", &["message.sent"]))
        .await
        .expect("the same again")
        .into_inner();
    assert!(!same.created && !same.changed);
    assert_eq!(same.secret, "", "the secret is kept and not shown again");

    let moved = messaging
        .upsert_endpoint(upsert("crm", "https://example.com/b", &[]))
        .await
        .expect("changed")
        .into_inner();
    assert!(moved.changed && !moved.created);
    let moved = moved.endpoint.expect("endpoint");
    assert_eq!(
        moved.id, endpoint.id,
        "the same endpoint, its deliveries kept"
    );
    assert_eq!(moved.url, "https://example.com/b");
    assert!(moved.event_types.is_empty());

    let listed = messaging
        .list_endpoints(ListEndpointsRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .expect("list")
        .into_inner()
        .endpoints;
    assert_eq!(listed.len(), 1);

    let taken = messaging
        .create_endpoint(CreateEndpointRequest {
            name: "crm".to_owned(),
            ..create("https://example.com/c", &[])
        })
        .await
        .expect_err("the name is taken");
    assert_eq!(taken.code(), Code::AlreadyExists);
    let unnamed = messaging
        .create_endpoint(create("https://example.com/c", &[]))
        .await
        .expect("a name is made")
        .into_inner()
        .endpoint
        .expect("endpoint");
    assert!(unnamed.name.starts_with("endpoint-"), "{}", unnamed.name);

    for (request, field) in [
        (upsert("", "https://example.com/a", &[]), "name"),
        (upsert("Bad Name", "https://example.com/a", &[]), "name"),
        (
            UpsertEndpointRequest {
                secret: "whsec_c2hvcnQ=".to_owned(),
                ..upsert("crm", "https://example.com/a", &[])
            },
            "secret",
        ),
    ] {
        let refused = messaging
            .upsert_endpoint(request)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains(field), "{}", refused.message());
    }

    control.stop().await;
}

#[tokio::test]
async fn endpoints_are_created_listed_rotated_and_deleted() {
    let control = TestControl::start().await;
    control.create_account(ACCOUNT).await;
    control.create_account("other").await;
    let mut messaging = control.messaging(foco_harness::ADMIN_KEY);

    let created = messaging
        .create_endpoint(create(
            "https://example.com/hooks",
            &["message.delivered", "message.failed", "message.delivered"],
        ))
        .await
        .expect("create")
        .into_inner();
    assert!(created.secret.starts_with("whsec_"), "{}", created.secret);
    let endpoint = created.endpoint.expect("endpoint");
    assert_eq!(endpoint.url, "https://example.com/hooks");
    assert_eq!(
        endpoint.event_types,
        ["message.delivered", "message.failed"]
    );
    assert!(endpoint.enabled);

    let rotated = messaging
        .rotate_endpoint_secret(RotateEndpointSecretRequest {
            account: ACCOUNT.to_owned(),
            id: endpoint.id.clone(),
            previous_valid_for: "1h".to_owned(),
        })
        .await
        .expect("rotate")
        .into_inner();
    assert!(rotated.secret.starts_with("whsec_"));
    assert_ne!(rotated.secret, created.secret);

    let mut other_key = control.messaging(&control.account_key("other").await);
    let listed = other_key
        .list_endpoints(ListEndpointsRequest::default())
        .await
        .expect("list as the other account")
        .into_inner();
    assert!(listed.endpoints.is_empty(), "another account sees none");
    let refused = other_key
        .list_endpoint_deliveries(ListEndpointDeliveriesRequest {
            account: ACCOUNT.to_owned(),
            endpoint_id: endpoint.id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("another account's endpoint");
    assert_eq!(refused.code(), Code::PermissionDenied);

    let listed = messaging
        .list_endpoints(ListEndpointsRequest {
            account: ACCOUNT.to_owned(),
        })
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.endpoints.len(), 1);
    messaging
        .delete_endpoint(DeleteEndpointRequest {
            account: ACCOUNT.to_owned(),
            id: endpoint.id.clone(),
        })
        .await
        .expect("delete");
    let again = messaging
        .delete_endpoint(DeleteEndpointRequest {
            account: ACCOUNT.to_owned(),
            id: endpoint.id,
        })
        .await
        .expect_err("deleted already");
    assert_eq!(again.code(), Code::NotFound);
    control.stop().await;
}

#[tokio::test]
async fn bad_urls_and_event_types_are_refused() {
    let control = TestControl::start().await;
    control.create_account(ACCOUNT).await;
    let mut messaging = control.messaging(foco_harness::ADMIN_KEY);
    for (request, field) in [
        (create("ftp://example.com/x", &[]), "url"),
        (create("https://user:pw@example.com/x", &[]), "url"),
        (create("not a url", &[]), "url"),
        (
            create("https://example.com/x", &["message.exploded"]),
            "event_types",
        ),
    ] {
        let refused = messaging
            .create_endpoint(request)
            .await
            .expect_err("refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert!(
            refused.message().starts_with(field),
            "{}",
            refused.message()
        );
    }
    control.stop().await;
}

#[tokio::test]
async fn every_rpc_that_names_an_endpoint_takes_its_name() {
    let control = TestControl::start().await;
    control.create_account(ACCOUNT).await;
    let mut messaging = control.messaging(foco_harness::ADMIN_KEY);
    let endpoint = messaging
        .upsert_endpoint(upsert("crm", "https://example.com/a", &[]))
        .await
        .expect("create")
        .into_inner()
        .endpoint
        .expect("endpoint");
    let deliveries = messaging
        .list_endpoint_deliveries(ListEndpointDeliveriesRequest {
            account: ACCOUNT.to_owned(),
            endpoint_id: "crm".to_owned(),
            ..Default::default()
        })
        .await
        .expect("deliveries by name")
        .into_inner();
    assert!(deliveries.deliveries.is_empty());
    let rotated = messaging
        .rotate_endpoint_secret(RotateEndpointSecretRequest {
            account: ACCOUNT.to_owned(),
            id: "crm".to_owned(),
            ..Default::default()
        })
        .await
        .expect("rotate by name")
        .into_inner();
    assert_eq!(rotated.endpoint.expect("endpoint").id, endpoint.id);
    let unknown = messaging
        .delete_endpoint(DeleteEndpointRequest {
            account: ACCOUNT.to_owned(),
            id: "nope".to_owned(),
        })
        .await
        .expect_err("no such name");
    assert_eq!(unknown.code(), Code::NotFound);
    messaging
        .delete_endpoint(DeleteEndpointRequest {
            account: ACCOUNT.to_owned(),
            id: "crm".to_owned(),
        })
        .await
        .expect("delete by name");
    control.stop().await;
}
