//! A sender killed between the provider call and the outcome write: the job must
//! end `unknown`, and the provider must have seen exactly one request. A job
//! stuck on a Postgres that stopped answering gives its slot back at its
//! deadline.

use std::time::Duration;

use foco_sender::store::ABANDONED_REASON;
use foco_testkit::{FakeResponse, Proxy, ProxyMode};

use crate::harness::TestEnv;

#[tokio::test]
async fn a_sender_killed_mid_call_does_not_send_twice() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.set_default(
        FakeResponse::status(200, r#"{"id": "late"}"#).with_delay(Duration::from_secs(2)),
    );

    let mut first_config = env.sender_config();
    first_config.provider_timeout = Duration::from_secs(5);
    first_config.ack_wait = Duration::from_secs(6);
    let first = env.start_sender(first_config).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    // The request is at the provider, which is taking its time: kill the sender.
    env.fake.wait_for_requests(1, Duration::from_secs(20)).await;
    first.kill().await;
    let row = env
        .message(&job.job_id)
        .await
        .expect("claimed before the call");
    assert_eq!(row.status, "sending");

    // A fresh sender with a short ack_wait gets the redelivery.
    let mut second_config = env.sender_config();
    second_config.provider_timeout = Duration::from_millis(500);
    second_config.ack_wait = Duration::from_secs(1);
    let second = env.start_sender(second_config).await;

    let row = env
        .wait_for_status(&job.job_id, "unknown", Duration::from_secs(30))
        .await;
    assert_eq!(row.error, ABANDONED_REASON);
    second.wait_for_jobs("unknown", 1).await;
    assert_eq!(
        env.fake.request_count(),
        1,
        "the job must not be sent again"
    );
}

/// A Postgres connection that goes silent without closing (the server never
/// sees the statement, so no statement timeout fires) holds a job only until its
/// deadline; once Postgres answers again the job ends in a recorded state.
#[tokio::test]
async fn a_job_stuck_on_a_silent_postgres_is_abandoned_at_its_deadline() {
    let env = TestEnv::start().await;
    env.http_route().await;
    let proxy = Proxy::start(env.app.db.server_addr()).await;
    let mut config = env.sender_config();
    config.database_url = env.app.db.url_through(proxy.addr());
    config.provider_timeout = Duration::from_millis(500);
    config.claim_margin = Duration::from_millis(500);
    config.job_deadline = Duration::from_secs(3);
    let sender = env.start_sender(config).await;

    proxy.set(ProxyMode::Stall);
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    sender.wait_for_jobs("deadline", 1).await;
    assert_eq!(env.fake.request_count(), 0, "nothing was sent meanwhile");

    proxy.set(ProxyMode::Pass);
    let status = foco_testkit::wait_for(
        "the job to end in a recorded state",
        Duration::from_secs(30),
        || async {
            env.message(&job.job_id)
                .await
                .map(|row| row.status)
                .filter(|status| status == "sent" || status == "unknown")
        },
    )
    .await;
    assert!(
        env.fake.request_count() <= 1,
        "sent at most once ({status})"
    );
}
