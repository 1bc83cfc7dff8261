//! ListEventSamples reads the recent events rules keeps per source: newest
//! first, only the named source's, only the caller's account.

use foco_proto::v1::ListEventSamplesRequest;
use uuid::Uuid;

use crate::harness::{TestControl, create_source};

async fn insert_sample(
    control: &TestControl,
    account_id: &str,
    source_id: &str,
    slot: i16,
    event_id: &str,
    minutes_ago: i32,
) {
    sqlx::query(
        "INSERT INTO event_samples (account_id, source_id, slot, event_id, event_type, headers, payload, received_at)
         VALUES ($1, $2, $3, $4, 'orders/create', '{\"x-shopify-topic\": \"orders/create\"}',
                 '{\"total_price\": \"404.95\"}', now() - make_interval(mins => $5))",
    )
    .bind(Uuid::parse_str(account_id).unwrap())
    .bind(source_id)
    .bind(slot)
    .bind(event_id)
    .bind(minutes_ago)
    .execute(&control.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_sources_samples_are_listed_newest_first_and_only_to_its_account() {
    let control = TestControl::start().await;
    let acme = control.create_account("acme").await;
    let globex = control.create_account("globex").await;
    let shop = create_source(&control, "acme", "shop", "s1").await;
    let other = create_source(&control, "acme", "other", "s2").await;
    let theirs = create_source(&control, "globex", "shop", "s3").await;
    insert_sample(&control, &acme.id, &shop.id, 0, "evt-old", 30).await;
    insert_sample(&control, &acme.id, &shop.id, 1, "evt-new", 1).await;
    insert_sample(&control, &acme.id, &other.id, 0, "evt-other", 2).await;
    insert_sample(&control, &globex.id, &theirs.id, 0, "evt-theirs", 0).await;

    let samples = control
        .scheduling()
        .list_event_samples(ListEventSamplesRequest {
            account: "acme".to_owned(),
            source: "shop".to_owned(),
        })
        .await
        .unwrap()
        .into_inner()
        .samples;
    let ids: Vec<_> = samples
        .iter()
        .map(|sample| sample.event_id.as_str())
        .collect();
    assert_eq!(ids, ["evt-new", "evt-old"]);
    assert_eq!(samples[0].event_type, "orders/create");
    assert_eq!(samples[0].payload, "{\"total_price\": \"404.95\"}");
    assert_eq!(samples[0].headers["x-shopify-topic"], "orders/create");
    assert!(samples[0].received_at_ms > samples[1].received_at_ms);

    let missing = control
        .scheduling()
        .list_event_samples(ListEventSamplesRequest {
            account: "acme".to_owned(),
            source: "nope".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);
}
