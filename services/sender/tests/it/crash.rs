//! A sender killed between the provider call and the outcome write: the job must
//! end `unknown`, and the provider must have seen exactly one request.

use std::time::Duration;

use foco_sender::store::ABANDONED_REASON;
use foco_testkit::FakeResponse;

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
