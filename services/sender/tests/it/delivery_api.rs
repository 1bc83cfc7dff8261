//! The DeliveryService over a real sender: dead letters with their history and
//! their retry, and unknown jobs resolved or resent by an operator.

use std::time::Duration;

use foco_proto::v1::{
    GetDeadLetterRequest, GetMessageHistoryRequest, ListDeadLettersRequest, ListUnknownJobsRequest,
    ResendUnknownJobRequest, ResolveUnknownJobRequest, RetryDeadLetterRequest, UnknownResolution,
};
use foco_testkit::FakeResponse;

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn exhausted_jobs_are_dead_lettered_with_history_and_retried_from_the_api() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.push_responses([
        FakeResponse::status(503, "maintenance"),
        FakeResponse::status(502, "bad gateway"),
    ]);
    let mut config = env.sender_config();
    config.max_attempts = 2;
    let _sender = env.start_sender(config).await;
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;
    let row = env.wait_for_status(&job.job_id, "failed", WAIT).await;
    assert_eq!(row.error, "gave up after 2 attempts: HTTP 502: bad gateway");

    let mut delivery = env.delivery();
    let listed = delivery
        .list_dead_letters(ListDeadLettersRequest {
            account: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .dead_letters;
    assert_eq!(listed.len(), 1);
    let dead = &listed[0];
    assert_eq!(dead.job_id, job.job_id);
    assert_eq!(dead.attempts, 2);
    assert_eq!(dead.to, "+525512345678");
    let outcomes: Vec<(u32, &str)> = dead
        .history
        .iter()
        .map(|step| (step.attempt, step.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [(1, "transient"), (2, "transient"), (2, "dead_lettered")]
    );
    assert_eq!(dead.history[0].detail, "HTTP 503: maintenance");

    let requeued = delivery
        .retry_dead_letter(RetryDeadLetterRequest {
            account: "acme".to_owned(),
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(requeued.publish_id, foco_bus::retry_msg_id(&job.job_id, 1));
    let row = env.wait_for_status(&job.job_id, "sent", WAIT).await;
    assert_eq!(
        row.attempts, 1,
        "a retried dead letter has a fresh attempt budget"
    );
    assert_eq!(env.fake.request_count(), 3);

    let shown = delivery
        .get_dead_letter(GetDeadLetterRequest {
            account: "acme".to_owned(),
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.status, "sent");
    assert_eq!(shown.retry_count, 1);
    assert_eq!(
        shown.history.last().map(|step| step.outcome.as_str()),
        Some("sent")
    );
    let pending = delivery
        .list_dead_letters(ListDeadLettersRequest {
            account: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        pending.dead_letters.is_empty(),
        "retried dead letters leave the default list"
    );
    let again = delivery
        .retry_dead_letter(RetryDeadLetterRequest {
            account: "acme".to_owned(),
            job_id: job.job_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), tonic::Code::InvalidArgument);
}

#[tokio::test]
async fn unknown_jobs_are_listed_resolved_and_resent_by_an_operator() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake.push_responses([
        FakeResponse::status(200, "{}").with_delay(Duration::from_secs(2)),
        FakeResponse::status(200, "{}").with_delay(Duration::from_secs(2)),
    ]);
    let mut config = env.sender_config();
    config.provider_timeout = Duration::from_millis(300);
    let _sender = env.start_sender(config).await;
    let resolved = env.job("+525512345678", "uno");
    let resent = env.job("+525598765432", "dos");
    env.publish(&resolved).await;
    env.publish(&resent).await;
    env.wait_for_status(&resolved.job_id, "unknown", WAIT).await;
    env.wait_for_status(&resent.job_id, "unknown", WAIT).await;

    let mut delivery = env.delivery();
    let unknown = delivery
        .list_unknown_jobs(ListUnknownJobsRequest {
            account: "acme".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(unknown.len(), 2);
    assert!(unknown.iter().all(|job| job.provider == "gateway"));

    let answer = delivery
        .resolve_unknown_job(ResolveUnknownJobRequest {
            account: "acme".to_owned(),
            job_id: resolved.job_id.clone(),
            resolution: UnknownResolution::Sent as i32,
            provider_message_id: "gw-found-it".to_owned(),
            note: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.status, "sent");
    let row = env.message(&resolved.job_id).await.unwrap();
    assert_eq!(row.provider_message_id, "gw-found-it");

    delivery
        .resend_unknown_job(ResendUnknownJobRequest {
            account: "acme".to_owned(),
            job_id: resent.job_id.clone(),
        })
        .await
        .unwrap();
    env.wait_for_status(&resent.job_id, "sent", WAIT).await;
    let resends: Vec<_> = env
        .fake
        .requests()
        .into_iter()
        .filter(|request| request.json()["body"] == "dos")
        .collect();
    assert_eq!(
        resends.len(),
        2,
        "the operator's resend is the only second call"
    );
    assert_eq!(
        resends[1].header("idempotency-key"),
        Some(resent.job_id.as_str())
    );

    let history = delivery
        .get_message_history(GetMessageHistoryRequest {
            account: "acme".to_owned(),
            job_id: resent.job_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let outcomes: Vec<&str> = history
        .history
        .iter()
        .map(|step| step.outcome.as_str())
        .collect();
    assert_eq!(outcomes, ["unknown", "requeued", "sent"]);
    assert!(
        delivery
            .list_unknown_jobs(ListUnknownJobsRequest {
                account: "acme".to_owned(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .jobs
            .is_empty()
    );
}
