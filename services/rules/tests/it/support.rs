use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use async_nats::jetstream::{self, consumer};
use foco_harness::TestControl;
use foco_proto::v1::{EventEnvelope, SmsJob, Source, UpsertRuleRequest, UpsertSourceRequest};
use prost::Message as _;
use tokio_util::sync::CancellationToken;

pub const ACCOUNT: &str = "tienda-ale";

/// A clock the test moves by hand.
#[derive(Clone)]
pub struct ManualClock(pub Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn at(instant: DateTime<Utc>) -> Self {
        Self(Arc::new(Mutex::new(instant)))
    }

    pub fn set(&self, instant: DateTime<Utc>) {
        *self.0.lock().unwrap() = instant;
    }
}

impl foco_rules::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

pub struct Rig {
    pub control: TestControl,
    pub state: foco_rules::RulesState,
    pub scheduler: foco_rules::Scheduler,
    pub nats: async_nats::Client,
    pub jetstream: jetstream::Context,
    pub names: foco_bus::BusNames,
    pub source: Source,
    config: foco_rules::Config,
    clock: Arc<dyn foco_rules::Clock>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<Result<(), foco_rules::RulesError>>>,
}

/// Another rules App on the same bus and database.
pub struct Replica {
    pub state: foco_rules::RulesState,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), foco_rules::RulesError>>,
}

impl Replica {
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap().unwrap();
    }
}

impl Rig {
    /// The URL of the rig's database.
    pub fn database_url(&self) -> String {
        self.config.database_url.clone()
    }

    /// Control with one account and source, and a running rules App.
    pub async fn start() -> Self {
        Self::start_with_clock(Arc::new(foco_rules::SystemClock)).await
    }

    pub async fn start_with_clock(clock: Arc<dyn foco_rules::Clock>) -> Self {
        let control = TestControl::start().await;
        let mut admin = control.admin();
        let account = foco_harness::create_test_account(&mut admin, ACCOUNT).await;
        let source = admin
            .upsert_source(UpsertSourceRequest {
                account: ACCOUNT.into(),
                name: "shop".into(),
                verification: None,
                event_type_from: "header:X-Shopify-Topic".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(source.account_id, account.id);
        let config = foco_rules::Config {
            bus: foco_harness::bus_config(&control.bus, Default::default(), Default::default()),
            database_url: control.db.url.clone(),
            control: foco_harness::control_config(&control, control.service_key("rules").await),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            config_cache_ttl: Duration::from_secs(300),
            concurrency: 4,
            store_writers: 2,
            store_batch: 64,
            store_linger: foco_runtime::batch::SMS_PATH_LINGER,
            limits: foco_rules::Limits::default(),
            ack_wait: Duration::from_secs(10),
            max_deliveries: 20,
            publish_timeout: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(5),
            scheduler_tick: Duration::from_millis(50),
            scheduler_batch: 200,
            scheduler_max_per_second: 5000,
            scheduler_max_hold: Duration::from_secs(30),
            lag_interval: Duration::from_secs(1),
        };
        let shutdown = CancellationToken::new();
        let app =
            foco_rules::App::build_with_clock(config.clone(), shutdown.clone(), clock.clone())
                .await
                .expect("build rules");
        let state = app.state().clone();
        let scheduler = app.scheduler();
        let task = tokio::spawn(app.run());
        let nats = async_nats::connect(&control.bus.nats_url).await.unwrap();
        let jetstream = jetstream::new(nats.clone());
        let names = foco_bus::BusNames::new(&control.bus.prefix).unwrap();
        Self {
            control,
            state,
            scheduler,
            nats,
            jetstream,
            names,
            source,
            config,
            clock,
            shutdown,
            task: Some(task),
        }
    }

    /// Another rules App, on the rig's clock.
    pub async fn start_replica(&self) -> Replica {
        let shutdown = CancellationToken::new();
        let app = foco_rules::App::build_with_clock(
            self.config.clone(),
            shutdown.clone(),
            self.clock.clone(),
        )
        .await
        .expect("build rules replica");
        let state = app.state().clone();
        Replica {
            state,
            shutdown,
            task: tokio::spawn(app.run()),
        }
    }

    /// Stops this rig's rules App (consumer and scheduler), as during downtime.
    pub async fn stop_scheduling(&mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub async fn upsert_rule(&self, name: &str, when: &str, to: &[&str], body: &str) {
        self.upsert_rule_with(UpsertRuleRequest {
            name: name.into(),
            when: when.into(),
            to: to.iter().map(|to| (*to).to_owned()).collect(),
            body: body.into(),
            ..Default::default()
        })
        .await;
    }

    /// Upserts a rule of the `shop` source; account and source are filled in.
    /// Returns once rules' configuration cache serves this version of the rule
    /// (control's change notice reaches it asynchronously), so an event
    /// published next is evaluated against it.
    pub async fn upsert_rule_with(&self, mut request: UpsertRuleRequest) {
        request.account = ACCOUNT.into();
        request.source = "shop".into();
        let rule = self
            .control
            .admin()
            .upsert_rule(request)
            .await
            .expect("upsert rule")
            .into_inner();
        foco_testkit::wait_for(
            "rules to serve the upserted rule",
            Duration::from_secs(10),
            || async {
                let source = self.state.config_cache.source_by_id(&self.source.id).await;
                source.ok().flatten().and_then(|source| {
                    source
                        .rules
                        .iter()
                        .any(|served| {
                            served.id == rule.id && served.updated_at_ms == rule.updated_at_ms
                        })
                        .then_some(())
                })
            },
        )
        .await;
    }

    /// Publishes an event with the sender's own id and a receive time.
    pub async fn publish_external_event(
        &self,
        event_id: &str,
        msg_id: &str,
        event_type: &str,
        payload: &str,
        received_at_ms: i64,
    ) {
        let envelope = EventEnvelope {
            event_id: event_id.into(),
            external_id: event_id.into(),
            account_id: self.source.account_id.clone(),
            source_id: self.source.id.clone(),
            event_type: event_type.into(),
            content_type: "application/json".into(),
            received_at_ms,
            payload: payload.as_bytes().to_vec(),
            ..Default::default()
        };
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.names
                .events_subject(&envelope.account_id, &envelope.source_id),
            msg_id,
            envelope.encode_to_vec().into(),
            Duration::from_secs(5),
        )
        .await
        .expect("publish event");
    }

    /// (state, count) of the account's scheduled jobs.
    pub async fn scheduled_states(&self) -> Vec<(String, i64)> {
        sqlx::query_as("SELECT state, count(*) FROM scheduled_jobs GROUP BY state ORDER BY state")
            .fetch_all(&self.control.db.pool)
            .await
            .unwrap()
    }

    pub async fn reports(&self, kind: &str) -> Vec<String> {
        sqlx::query_scalar("SELECT detail FROM event_reports WHERE kind = $1 ORDER BY id")
            .bind(kind)
            .fetch_all(&self.control.db.pool)
            .await
            .unwrap()
    }

    /// Publishes an event as ingress would, with `msg_id` as its Nats-Msg-Id.
    pub async fn publish_event(
        &self,
        event_id: &str,
        msg_id: &str,
        event_type: &str,
        payload: &str,
    ) {
        let envelope = EventEnvelope {
            event_id: event_id.into(),
            account_id: self.source.account_id.clone(),
            source_id: self.source.id.clone(),
            event_type: event_type.into(),
            content_type: "application/json".into(),
            payload: payload.as_bytes().to_vec(),
            ..Default::default()
        };
        foco_bus::publish_durable(
            &self.jetstream,
            &self.nats,
            self.names
                .events_subject(&envelope.account_id, &envelope.source_id),
            msg_id,
            envelope.encode_to_vec().into(),
            Duration::from_secs(5),
        )
        .await
        .expect("publish event");
    }

    /// Every job on the SMS stream so far (waits until at least `count` are there).
    pub async fn jobs(&self, count: usize) -> Vec<SmsJob> {
        foco_testkit::wait_for(
            &format!("{count} jobs on the SMS stream"),
            Duration::from_secs(15),
            || async {
                let jobs = self.read_jobs().await;
                (jobs.len() >= count).then_some(jobs)
            },
        )
        .await
    }

    /// Every job on the SMS stream, read by sequence (the stream is the
    /// sender's work queue: a consumer here would compete with one).
    pub async fn read_jobs(&self) -> Vec<SmsJob> {
        let mut stream = self
            .jetstream
            .get_stream(self.names.sms_stream())
            .await
            .unwrap();
        let state = stream.info().await.unwrap().state.clone();
        if state.messages == 0 {
            return Vec::new();
        }
        let mut jobs = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            // Sequences of acknowledged (removed) jobs are gaps.
            if let Ok(message) = stream.get_raw_message(sequence).await {
                jobs.push(SmsJob::decode(message.payload.as_ref()).unwrap());
            }
        }
        jobs
    }

    /// Waits until the rules consumer has acked everything (nothing pending or in flight).
    pub async fn wait_until_idle(&self) {
        foco_testkit::wait_for(
            "rules consumer to ack every event",
            Duration::from_secs(15),
            || async {
                let stream = self
                    .jetstream
                    .get_stream(self.names.events_stream())
                    .await
                    .ok()?;
                let mut consumer: consumer::PullConsumer =
                    stream.get_consumer("foco-rules").await.ok()?;
                let info = consumer.info().await.ok()?;
                (info.num_pending == 0 && info.num_ack_pending == 0).then_some(())
            },
        )
        .await;
    }

    pub async fn stop(mut self) {
        self.stop_scheduling().await;
    }
}
