//! Routes as ordered lists of providers: failover after definite failures only,
//! circuit breakers, destinations by country prefix.

use std::time::Duration;

use foco_testkit::{FakeProvider, FakeResponse};

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

/// `primary` (the env's fake) fails over to `backup` (a second fake).
async fn two_providers(env: &TestEnv, primary_settings: &[(&str, &str)]) -> FakeProvider {
    let backup = FakeProvider::start().await;
    let backup_url = format!("{}/sms", backup.url());
    env.upsert_route_as("backup", "http", &[("url", &backup_url)], &[], false)
        .await;
    let primary_url = format!("{}/sms", env.fake.url());
    let mut settings = vec![("url", primary_url.as_str()), ("failover", "backup")];
    settings.extend_from_slice(primary_settings);
    env.upsert_route("primary", "http", &settings, &[]).await;
    backup
}

#[tokio::test]
async fn a_definite_failure_fails_over_and_the_breaker_then_skips_the_provider() {
    let env = TestEnv::start().await;
    let backup = two_providers(
        &env,
        &[("breaker_threshold", "2"), ("breaker_cooldown", "1m")],
    )
    .await;
    env.fake
        .set_default(FakeResponse::status(503, "primary down"));
    let sender = env.start_sender(env.sender_config()).await;

    for (number, expected_primary_calls) in [(1, 1), (2, 2), (3, 2), (4, 2)] {
        let job = env.job("+525512345678", &format!("pedido {number}"));
        env.publish(&job).await;
        let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
        assert_eq!(row.provider, "backup");
        assert_eq!(row.attempts, 1, "failover happens within one attempt");
        // Two failures open the primary's breaker: later jobs go straight to the backup.
        assert_eq!(
            env.fake.request_count(),
            expected_primary_calls,
            "job {number}"
        );
        assert_eq!(backup.request_count(), number);
    }
    let history: serde_json::Value =
        sqlx::query_scalar("SELECT history FROM messages ORDER BY created_at LIMIT 1")
            .fetch_one(env.pool())
            .await
            .unwrap();
    let outcomes: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|step| step["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["transient", "sent"], "{history}");
    sender.wait_for_jobs("sent", 4).await;
}

#[tokio::test]
async fn an_unknown_outcome_never_fails_over() {
    let env = TestEnv::start().await;
    let backup = two_providers(&env, &[]).await;
    env.fake
        .set_default(FakeResponse::status(200, "{}").with_delay(Duration::from_secs(3)));
    let mut config = env.sender_config();
    config.provider_timeout = Duration::from_millis(400);
    let _sender = env.start_sender(config).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    let row = env.wait_for_status(&job.job_id, "unknown", WAIT).await;
    assert_eq!(row.provider, "primary");
    assert!(row.error.contains("did not answer"), "{}", row.error);
    assert_eq!(env.fake.request_count(), 1);
    assert_eq!(
        backup.request_count(),
        0,
        "the primary may have sent it: no failover"
    );
}

#[tokio::test]
async fn destinations_pick_providers_by_country_prefix() {
    let env = TestEnv::start().await;
    let mexico = FakeProvider::start().await;
    let mexico_url = format!("{}/sms", mexico.url());
    env.upsert_route_as(
        "mx",
        "http",
        &[("url", &mexico_url), ("country_prefixes", "+52")],
        &[],
        false,
    )
    .await;
    let us_url = format!("{}/sms", env.fake.url());
    env.upsert_route(
        "us",
        "http",
        &[
            ("url", &us_url),
            ("country_prefixes", "+1"),
            ("failover", "mx"),
        ],
        &[],
    )
    .await;
    let _sender = env.start_sender(env.sender_config()).await;

    let to_mexico = env.job("55 1234 5678", "hola");
    let to_us = env.job("+1 415 555 2671", "hello");
    let to_spain = env.job("+34 612 345 678", "hola");
    for job in [&to_mexico, &to_us, &to_spain] {
        env.publish(job).await;
    }
    assert_eq!(
        env.wait_for_status(&to_mexico.job_id, "sent", WAIT)
            .await
            .provider,
        "mx"
    );
    assert_eq!(
        env.wait_for_status(&to_us.job_id, "sent", WAIT)
            .await
            .provider,
        "us"
    );
    let refused = env.wait_for_status(&to_spain.job_id, "failed", WAIT).await;
    assert_eq!(refused.error, "no provider route serves this destination");
    assert_eq!(mexico.request_count(), 1);
    assert_eq!(env.fake.request_count(), 1);
    assert_eq!(mexico.requests()[0].json()["to"], "+525512345678");
}
