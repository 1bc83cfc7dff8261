//! Rate limits per route that hold across replicas, a 429 that slows the whole
//! route, and bounded in-flight work when a provider is slow.

use std::time::Duration;

use foco_testkit::FakeResponse;
use futures::StreamExt as _;

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_rate_limit_holds_across_two_replicas() {
    const LIMIT: usize = 4;
    const JOBS: usize = 14;
    let env = TestEnv::start().await;
    let url = format!("{}/sms", env.fake.url());
    env.upsert_route(
        "gateway",
        "http",
        &[("url", &url), ("rate_limit", "4")],
        &[],
    )
    .await;
    let first = env.start_sender(env.sender_config()).await;
    let second = env.start_sender(env.sender_config()).await;
    let mut job_ids = Vec::new();
    for number in 0..JOBS {
        let job = env.job("+525512345678", &format!("oferta {number}"));
        env.publish(&job).await;
        job_ids.push(job.job_id);
    }
    for job_id in &job_ids {
        env.wait_for_status(job_id, "sent", WAIT).await;
    }
    let arrivals: Vec<_> = env
        .fake
        .requests()
        .iter()
        .map(|request| request.received_at)
        .collect();
    assert_eq!(arrivals.len(), JOBS);
    // Fixed one-second windows: never more than LIMIT in one window, so never
    // more than 2 × LIMIT in any second, and JOBS need ⌈JOBS / LIMIT⌉ windows.
    for window in arrivals.windows(2 * LIMIT + 1) {
        let span = window[2 * LIMIT] - window[0];
        assert!(
            span >= Duration::from_millis(950),
            "{} calls within {span:?}",
            2 * LIMIT + 1
        );
    }
    let total = arrivals[JOBS - 1] - arrivals[0];
    let windows_needed = JOBS.div_ceil(LIMIT) as u32;
    assert!(
        total >= Duration::from_millis(950) * (windows_needed - 2),
        "{JOBS} calls in {total:?} at {LIMIT}/s"
    );
    // A job's row says sent a moment before its replica counts it.
    let (by_first, by_second) =
        foco_testkit::wait_for("both replicas to count every sent job", WAIT, || async {
            let counts = (
                first.metrics.jobs_with_outcome("sent"),
                second.metrics.jobs_with_outcome("sent"),
            );
            (counts.0 + counts.1 == JOBS as u64).then_some(counts)
        })
        .await;
    assert!(
        by_first > 0 && by_second > 0,
        "both replicas sent: {by_first} + {by_second}"
    );
    assert!(
        first.metrics.jobs_with_outcome("throttled")
            + second.metrics.jobs_with_outcome("throttled")
            > 0,
        "jobs waited for the limit"
    );
}

#[tokio::test]
async fn a_429_slows_the_whole_route_down() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake
        .push_responses([FakeResponse::status(429, "slow down").with_header("Retry-After", "2")]);
    let _sender = env.start_sender(env.sender_config()).await;
    let first = env.job("+525512345678", "primero");
    env.publish(&first).await;
    let throttled_at = env.fake.wait_for_requests(1, WAIT).await[0].received_at;
    let mut others = Vec::new();
    for number in 0..4 {
        let job = env.job("+525512345678", &format!("otro {number}"));
        env.publish(&job).await;
        others.push(job);
    }
    env.wait_for_status(&first.job_id, "sent", WAIT).await;
    for job in &others {
        env.wait_for_status(&job.job_id, "sent", WAIT).await;
    }
    let requests = env.fake.requests();
    assert_eq!(requests.len(), 6, "the throttled job once, then all five");
    for request in &requests[1..] {
        let after = request.received_at - throttled_at;
        assert!(
            after >= Duration::from_millis(1990),
            "a call {after:?} after the 429"
        );
    }
    let paused: i64 = sqlx::query_scalar("SELECT count(*) FROM route_pauses")
        .fetch_one(env.pool())
        .await
        .unwrap();
    assert_eq!(paused, 1, "the pause is shared through Postgres");
}

#[tokio::test]
async fn a_slow_provider_backs_up_the_stream_not_memory() {
    const CONCURRENCY: usize = 3;
    let env = TestEnv::start().await;
    env.http_route().await;
    let delay = Duration::from_millis(300);
    env.fake
        .set_default(FakeResponse::status(200, r#"{"id": "slow"}"#).with_delay(delay));
    let mut config = env.sender_config();
    config.concurrency = CONCURRENCY;
    let _sender = env.start_sender(config).await;
    let mut job_ids = Vec::new();
    for number in 0..12 {
        let job = env.job("+525512345678", &format!("lento {number}"));
        env.publish(&job).await;
        job_ids.push(job.job_id);
    }
    env.fake.wait_for_requests(2, WAIT).await;
    let mut consumer = env
        .jetstream
        .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            "foco-sender",
            env.names.sms_stream(),
        )
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert!(
        info.num_ack_pending <= 2 * CONCURRENCY,
        "{} jobs taken from the stream at once",
        info.num_ack_pending
    );
    assert!(info.num_pending > 0, "the rest waits in the stream");
    for job_id in &job_ids {
        env.wait_for_status(job_id, "sent", WAIT).await;
    }
    // No more than CONCURRENCY calls at the provider at once: any CONCURRENCY + 1
    // arrivals span at least one call's duration.
    let arrivals: Vec<_> = env
        .fake
        .requests()
        .iter()
        .map(|request| request.received_at)
        .collect();
    for window in arrivals.windows(CONCURRENCY + 1) {
        assert!(window[CONCURRENCY] - window[0] >= delay - Duration::from_millis(20));
    }
}

/// Account A's route allows one SMS a second and A has 5,000 jobs queued, more
/// than the consumer's whole ack-pending window; account B's one job still goes
/// out while A's backlog waits, and A's jobs wait parked in Postgres (visible as
/// queued), not in the stream. How long B waits is a figure for benchmarks (the
/// fault suite prints it), not a timed assertion here.
#[tokio::test]
async fn a_throttled_account_does_not_hold_up_another() {
    const THROTTLED_JOBS: usize = 5_000;
    let env = TestEnv::start().await;
    let url = format!("{}/sms", env.fake.url());
    env.upsert_route(
        "slow-gateway",
        "http",
        &[("url", &url), ("rate_limit", "1")],
        &[],
    )
    .await;
    let other_fake = foco_testkit::FakeProvider::start().await;
    let other = env.second_account("otra", &other_fake).await;

    let jobs: Vec<_> = (0..THROTTLED_JOBS)
        .map(|number| env.job("+525512345678", &format!("oferta {number}")))
        .collect();
    env.ensure_streams().await;
    futures::stream::iter(&jobs)
        .for_each_concurrent(64, |job| env.publish(job))
        .await;
    let mut config = env.sender_config();
    config.concurrency = 256;
    config.max_ack_pending = 1_000;
    let _sender = env.start_sender(config).await;
    env.fake.wait_for_requests(1, WAIT).await;
    // A's route is held to its limit from its first call on.
    let a_first_call = std::time::Instant::now();
    // The sender is working through A's backlog when B's job arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let job = other.job("+525512345679", "su cita es mañana");
    let published = std::time::Instant::now();
    env.publish_for(&other.account_id, &job).await;
    other_fake.wait_for_requests(1, WAIT).await;
    // B's SMS goes out while A's backlog is still waiting for its route: A has
    // sent at most one SMS a second meanwhile. (Before pacing and parking, B's
    // job waited behind A's until A's backlog fell under the ack-pending window,
    // more than an hour at one a second.) Typically well under a second.
    let waited = published.elapsed();
    let sent_by_a = env.fake.requests().len();
    let a_sending = a_first_call.elapsed();
    assert!(
        sent_by_a <= 2 + a_sending.as_secs() as usize,
        "A's route kept to its limit: {sent_by_a} calls in {a_sending:?} since its first"
    );
    assert!(
        sent_by_a < 20,
        "B's SMS went out only after {sent_by_a} of A's ({waited:?} after it was queued)"
    );
    let parked: i64 = foco_testkit::wait_for("A's backlog to be parked", WAIT, || async {
        let parked: i64 = sqlx::query_scalar("SELECT count(*) FROM held_jobs")
            .fetch_one(env.pool())
            .await
            .unwrap();
        (parked > THROTTLED_JOBS as i64 / 2).then_some(parked)
    })
    .await;
    let queued = env.count_status("queued").await;
    assert!(queued >= parked, "{parked} parked, {queued} queued rows");
}
