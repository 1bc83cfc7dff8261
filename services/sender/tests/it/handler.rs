//! `Handler::handle` called directly, over a real Postgres and the fake provider,
//! with fixed routes instead of control: the claim state machine, rejections, and
//! how outcomes are acknowledged.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::jetstream::AckKind;
use foco_control_client::LookupError;
use foco_proto::v1::{Account, ProviderRoute, ResolvedRoute, SmsJob};
use foco_sender::handler::{INVALID_NUMBER_REASON, NO_ROUTE_REASON};
use foco_sender::metrics::Metrics;
use foco_sender::providers::Providers;
use foco_sender::routing::RouteSource;
use foco_sender::store::ABANDONED_REASON;
use foco_sender::{Handler, HandlerSettings, Outcome};
use foco_testkit::{FakeProvider, FakeResponse, TestDatabase};
use sqlx::Row;
use uuid::Uuid;

#[derive(Default)]
pub(crate) struct FixedRoutes {
    routes: HashMap<String, Arc<ResolvedRoute>>,
    unreachable: AtomicBool,
}

impl RouteSource for FixedRoutes {
    async fn route(
        &self,
        _account_id: &str,
        name: &str,
    ) -> Result<Option<Arc<ResolvedRoute>>, LookupError> {
        if self.unreachable.load(Ordering::Relaxed) {
            return Err(LookupError(tonic::Status::unavailable("control is down")));
        }
        Ok(self.routes.get(name).cloned())
    }
}

pub(crate) struct Fixture {
    pub(crate) db: TestDatabase,
    pub(crate) fake: FakeProvider,
    pub(crate) account_id: Uuid,
    pub(crate) handler: Handler<Arc<FixedRoutes>>,
    routes: Arc<FixedRoutes>,
}

pub(crate) async fn fixture(max_attempts: u32) -> Fixture {
    let db = TestDatabase::create().await;
    foco_control::MIGRATOR.run(&db.pool).await.expect("migrate");
    let account_id = Uuid::new_v4();
    sqlx::query("INSERT INTO accounts (id, name, default_country) VALUES ($1, 'acme', 'MX')")
        .bind(account_id)
        .execute(&db.pool)
        .await
        .unwrap();
    let fake = FakeProvider::start().await;
    let route = ResolvedRoute {
        route: Some(ProviderRoute {
            name: "gateway".to_owned(),
            kind: "http".to_owned(),
            settings: HashMap::from([("url".to_owned(), format!("{}/sms", fake.url()))]),
            is_default: true,
            ..Default::default()
        }),
        account: Some(Account {
            id: account_id.to_string(),
            name: "acme".to_owned(),
            default_country: "MX".to_owned(),
            ..Default::default()
        }),
        credentials: HashMap::new(),
        inbound_source_id: String::new(),
    };
    let routes = Arc::new(FixedRoutes {
        routes: HashMap::from([(String::new(), Arc::new(route))]),
        unreachable: AtomicBool::new(false),
    });
    let handler = Handler::new(
        db.pool.clone(),
        routes.clone(),
        Providers::new(Duration::from_secs(2), true, None).unwrap(),
        Metrics::unregistered(),
        HandlerSettings {
            max_attempts,
            max_job_age: Duration::from_secs(3600),
            claim_lease: Duration::from_secs(7),
            quiet_hours: None,
            write_batch: 64,
            claim_linger: Duration::ZERO,
            park_after: Duration::from_secs(10),
            max_deliveries: 50,
        },
    );
    Fixture {
        db,
        fake,
        account_id,
        handler,
        routes,
    }
}

impl Fixture {
    pub(crate) fn job(&self, to: &str) -> SmsJob {
        let event_id = format!("evt_{}", Uuid::new_v4().simple());
        SmsJob {
            job_id: foco_bus::job_id(&event_id, "rule-1", to),
            account_id: self.account_id.to_string(),
            event_id,
            rule_id: "rule-1".to_owned(),
            to: to.to_owned(),
            body: "hola".to_owned(),
            ..Default::default()
        }
    }

    pub(crate) async fn row(&self, job_id: &str) -> (String, i32, String) {
        let row = sqlx::query("SELECT status, attempts, error FROM messages WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(&self.db.pool)
            .await
            .unwrap();
        (row.get("status"), row.get("attempts"), row.get("error"))
    }

    /// A row as a previous delivery left it, `age` ago.
    async fn preexisting(&self, job: &SmsJob, status: &str, age: Duration) {
        sqlx::query(
            "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, attempts, updated_at)
             VALUES ($1, $2, $3, '+525512345678', 'hola', $4, 1, now() - make_interval(secs => $5))",
        )
        .bind(&job.job_id)
        .bind(self.account_id)
        .bind(&job.event_id)
        .bind(status)
        .bind(age.as_secs_f64())
        .execute(&self.db.pool)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_job_is_sent_and_recorded() {
    let fixture = fixture(8).await;
    let job = fixture.job("55 1234 5678");
    assert_eq!(fixture.handler.handle(&job, 1).await, Outcome::Sent);
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("sent".to_owned(), 1, String::new())
    );
    let requests = fixture.fake.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].json()["to"], "+525512345678");
    // Redelivered afterwards: acknowledged without a call.
    assert_eq!(
        fixture.handler.handle(&job, 2).await,
        Outcome::Finished {
            status: "sent".to_owned()
        }
    );
    assert_eq!(fixture.fake.request_count(), 1);
}

#[tokio::test]
async fn an_abandoned_claim_becomes_unknown_without_a_call() {
    let fixture = fixture(8).await;
    let job = fixture.job("+525512345678");
    fixture
        .preexisting(&job, "sending", Duration::from_secs(60))
        .await;
    let outcome = fixture.handler.handle(&job, 2).await;
    assert_eq!(outcome, Outcome::Unknown);
    assert!(matches!(outcome.ack_kind(), AckKind::Ack));
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("unknown".to_owned(), 1, ABANDONED_REASON.to_owned())
    );
    assert_eq!(fixture.fake.request_count(), 0);
}

#[tokio::test]
async fn a_live_claim_elsewhere_is_looked_at_again_later() {
    let fixture = fixture(8).await;
    let job = fixture.job("+525512345678");
    fixture.preexisting(&job, "sending", Duration::ZERO).await;
    let outcome = fixture.handler.handle(&job, 2).await;
    let Outcome::HeldElsewhere { delay } = outcome else {
        panic!("expected HeldElsewhere, got {outcome:?}");
    };
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(3),
        "{delay:?}"
    );
    assert_eq!(fixture.row(&job.job_id).await.0, "sending");
    assert_eq!(fixture.fake.request_count(), 0);
}

#[tokio::test]
async fn finished_jobs_are_not_sent_again() {
    let fixture = fixture(8).await;
    for status in ["sent", "failed", "unknown", "delivered", "undelivered"] {
        let job = fixture.job("+525512345678");
        fixture.preexisting(&job, status, Duration::ZERO).await;
        assert_eq!(
            fixture.handler.handle(&job, 2).await,
            Outcome::Finished {
                status: status.to_owned()
            },
            "{status}"
        );
    }
    assert_eq!(fixture.fake.request_count(), 0);
}

#[tokio::test]
async fn a_queued_job_is_claimed_again_and_counts_its_attempts() {
    let fixture = fixture(8).await;
    let job = fixture.job("+525512345678");
    fixture.preexisting(&job, "queued", Duration::ZERO).await;
    assert_eq!(fixture.handler.handle(&job, 2).await, Outcome::Sent);
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("sent".to_owned(), 2, String::new())
    );
}

#[tokio::test]
async fn transient_failures_retry_then_give_up_at_max_attempts() {
    let fixture = fixture(2).await;
    fixture.fake.set_default(FakeResponse::status(503, "down"));
    let job = fixture.job("+525512345678");
    let first = fixture.handler.handle(&job, 1).await;
    let Outcome::Retry { delay } = first else {
        panic!("expected a retry, got {first:?}");
    };
    assert!(
        delay >= Duration::from_millis(800) && delay <= Duration::from_millis(1200),
        "{delay:?}"
    );
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("queued".to_owned(), 1, "HTTP 503: down".to_owned())
    );
    let second = fixture.handler.handle(&job, 2).await;
    assert_eq!(
        second,
        Outcome::DeadLettered {
            reason: "gave up after 2 attempts: HTTP 503: down".to_owned()
        }
    );
    assert_eq!(fixture.row(&job.job_id).await.0, "failed");
    assert_eq!(fixture.fake.request_count(), 2);
}

#[tokio::test]
async fn a_long_delayed_job_is_aged_from_its_due_time_not_from_its_planning() {
    let fixture = fixture(8).await;
    fixture.fake.set_default(FakeResponse::status(503, "down"));
    let now = chrono::Utc::now().timestamp_millis();
    // Planned five days ago with `delay: 5d`, due a minute ago; jobs may be 1 h old.
    let mut delayed = fixture.job("+525512345678");
    delayed.created_at_ms = now - 5 * 24 * 3_600_000;
    delayed.due_at_ms = now - 60_000;
    let outcome = fixture.handler.handle(&delayed, 1).await;
    assert!(matches!(outcome, Outcome::Retry { .. }), "{outcome:?}");
    assert_eq!(fixture.row(&delayed.job_id).await.0, "queued");

    // An immediate job planned as long ago is too old.
    let mut stale = fixture.job("+525512345679");
    stale.created_at_ms = now - 2 * 3_600_000;
    let outcome = fixture.handler.handle(&stale, 1).await;
    assert!(
        matches!(&outcome, Outcome::DeadLettered { reason } if reason.contains("job too old")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn invalid_numbers_and_missing_routes_fail_without_a_call() {
    let fixture = fixture(8).await;
    let job = fixture.job("not a phone");
    assert_eq!(
        fixture.handler.handle(&job, 1).await,
        Outcome::Failed {
            reason: INVALID_NUMBER_REASON.to_owned()
        }
    );
    assert_eq!(
        fixture.row(&job.job_id).await,
        ("failed".to_owned(), 0, INVALID_NUMBER_REASON.to_owned())
    );
    let mut job = fixture.job("+525512345678");
    job.provider = "missing".to_owned();
    assert_eq!(
        fixture.handler.handle(&job, 1).await,
        Outcome::Failed {
            reason: NO_ROUTE_REASON.to_owned()
        }
    );
    assert_eq!(fixture.fake.request_count(), 0);
}

#[tokio::test]
async fn unreachable_control_defers_without_recording() {
    let fixture = fixture(8).await;
    fixture.routes.unreachable.store(true, Ordering::Relaxed);
    let job = fixture.job("+525512345678");
    let outcome = fixture.handler.handle(&job, 1).await;
    assert!(matches!(outcome, Outcome::Deferred { .. }), "{outcome:?}");
    assert!(matches!(outcome.ack_kind(), AckKind::Nak(Some(_))));
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&fixture.db.pool)
        .await
        .unwrap();
    assert_eq!(rows, 0);
}

#[tokio::test]
async fn jobs_of_unknown_accounts_are_poison() {
    let fixture = fixture(8).await;
    let mut job = fixture.job("+525512345678");
    job.account_id = "not-a-uuid".to_owned();
    assert!(matches!(
        fixture.handler.handle(&job, 1).await,
        Outcome::Poison { .. }
    ));
    job.account_id = Uuid::new_v4().to_string();
    let outcome = fixture.handler.handle(&job, 1).await;
    assert!(matches!(outcome, Outcome::Poison { .. }), "{outcome:?}");
    assert!(matches!(outcome.ack_kind(), AckKind::Term));
    assert_eq!(fixture.fake.request_count(), 0);
}
