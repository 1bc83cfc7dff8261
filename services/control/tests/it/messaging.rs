//! MessagingService over the real Postgres and NATS: what SendMessage and
//! TriggerEvent store, idempotency keys, and the status of every refusal.

use foco_bus::BusNames;
use foco_proto::v1::{
    CancelScheduledJobsRequest, EventEnvelope, ListScheduledJobsRequest, Priority,
    SendMessageRequest, SendMessagesRequest, SmsJob, TriggerEventRequest, UpsertSourceRequest,
    send_message_result,
};
use prost::Message as _;
use tonic::Code;
use tonic_types::StatusExt as _;

use crate::harness::{TestControl, console_route, create_source, source_request};

const ACCOUNT: &str = "acme";

pub(crate) struct Setup {
    pub(crate) control: TestControl,
    pub(crate) account_id: String,
    /// An account key of `acme`.
    key: String,
    pub(crate) names: BusNames,
    jetstream: async_nats::jetstream::Context,
}

/// Control, account `acme` (MX) with a default console route, and the bus's
/// streams (which ingress, rules and the sender create in a full system).
pub(crate) async fn setup() -> Setup {
    let control = TestControl::start().await;
    let account = control.create_account(ACCOUNT).await;
    control
        .admin()
        .upsert_provider_route(console_route(ACCOUNT, "primary", true))
        .await
        .expect("create route");
    let key = control.account_key(ACCOUNT).await;
    let names = BusNames::new(&control.bus.prefix).unwrap();
    let client = async_nats::connect(&control.bus.nats_url).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    foco_bus::ensure_streams(&jetstream, &names, Default::default())
        .await
        .expect("streams");
    Setup {
        control,
        account_id: account.id,
        key,
        names,
        jetstream,
    }
}

impl Setup {
    pub(crate) fn messaging(&self) -> foco_control_client::MessagingApi {
        self.control.messaging(&self.key)
    }

    pub(crate) async fn stream_messages(&self, stream: String) -> u64 {
        self.jetstream
            .get_stream(stream)
            .await
            .unwrap()
            .get_info()
            .await
            .unwrap()
            .state
            .messages
    }

    pub(crate) async fn last_job(&self) -> SmsJob {
        let stream = self
            .jetstream
            .get_stream(self.names.sms_stream())
            .await
            .unwrap();
        let message = stream
            .get_last_raw_message_by_subject(&self.names.sms_subject(&self.account_id))
            .await
            .unwrap();
        SmsJob::decode(message.payload).unwrap()
    }

    async fn api_sends(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM api_sends")
            .fetch_one(&self.control.db.pool)
            .await
            .unwrap()
    }
}

pub(crate) fn message(to: &str, body: &str) -> SendMessageRequest {
    SendMessageRequest {
        to: to.to_owned(),
        body: body.to_owned(),
        ..Default::default()
    }
}

/// The request field a refusal names in its `google.rpc.BadRequest` detail.
pub(crate) fn bad_field(status: &tonic::Status) -> String {
    status
        .get_details_bad_request()
        .and_then(|bad_request| bad_request.field_violations.into_iter().next())
        .map(|violation| violation.field)
        .unwrap_or_default()
}

#[tokio::test]
async fn a_sent_message_is_a_job_on_the_sms_stream() {
    let setup = setup().await;
    let mut request = message("55 1234 5678", "Tu código es 1234");
    request.metadata = [("order".to_owned(), "A-17".to_owned())].into();
    request.encoding = "gsm7".to_owned();
    let sent = setup
        .messaging()
        .send_message(request)
        .await
        .expect("send")
        .into_inner();
    assert!(sent.message_id.starts_with("job_"));
    assert!(!sent.duplicate);
    assert_eq!(sent.send_at_ms, 0);
    assert_eq!((sent.encoding.as_str(), sent.segments), ("GSM-7", 1));

    let job = setup.last_job().await;
    assert_eq!(job.job_id, sent.message_id);
    assert_eq!(job.account_id, setup.account_id);
    assert_eq!(job.to, "+525512345678");
    assert_eq!(job.body, "Tu codigo es 1234");
    assert_eq!(job.priority, Priority::Transactional as i32);
    assert_eq!((job.rule_id.as_str(), job.event_id.as_str()), ("", ""));
    let metadata: serde_json::Value =
        sqlx::query_scalar("SELECT metadata FROM api_sends WHERE job_id = $1")
            .bind(&sent.message_id)
            .fetch_one(&setup.control.db.pool)
            .await
            .unwrap();
    assert_eq!(metadata, serde_json::json!({"order": "A-17"}));
}

#[tokio::test]
async fn one_idempotency_key_is_one_message_even_when_calls_race() {
    let setup = setup().await;
    let mut request = message("+525512345678", "Alarma: puerta abierta");
    request.idempotency_key = "alarm-42".to_owned();
    let calls = (0..8).map(|_| {
        let mut messaging = setup.messaging();
        let request = request.clone();
        async move {
            messaging
                .send_message(request)
                .await
                .map(|r| r.into_inner())
        }
    });
    let answers: Vec<_> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|answer| answer.expect("send"))
        .collect();
    let first = &answers[0].message_id;
    assert!(answers.iter().all(|answer| &answer.message_id == first));
    assert_eq!(answers.iter().filter(|answer| !answer.duplicate).count(), 1);

    let again = setup
        .messaging()
        .send_message(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((&again.message_id, again.duplicate), (first, true));
    assert_eq!(setup.stream_messages(setup.names.sms_stream()).await, 1);
    assert_eq!(setup.api_sends().await, 1);

    // The same key for another message is a caller's bug, refused.
    request.body = "Alarma: ventana abierta".to_owned();
    let refused = setup.messaging().send_message(request).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert!(
        refused.message().contains("alarm-42"),
        "{}",
        refused.message()
    );
    assert_eq!(setup.stream_messages(setup.names.sms_stream()).await, 1);
}

#[tokio::test]
async fn a_delayed_message_waits_as_a_scheduled_job() {
    let setup = setup().await;
    let mut request = message("+525512345678", "Recordatorio");
    request.delay = "2h".to_owned();
    request.priority = Priority::Marketing as i32;
    let sent = setup
        .messaging()
        .send_message(request)
        .await
        .unwrap()
        .into_inner();
    assert!(sent.send_at_ms > 0);
    assert_eq!(setup.stream_messages(setup.names.sms_stream()).await, 0);

    let mut scheduling = setup.control.scheduling();
    let jobs = scheduling
        .list_scheduled_jobs(ListScheduledJobsRequest {
            account: ACCOUNT.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].job_id, sent.message_id);
    assert_eq!(jobs[0].due_at_ms, sent.send_at_ms);
    assert_eq!(
        (jobs[0].rule_id.as_str(), jobs[0].state.as_str()),
        ("", "pending")
    );
    let cancelled = scheduling
        .cancel_scheduled_jobs(CancelScheduledJobsRequest {
            account: ACCOUNT.to_owned(),
            job_ids: vec![sent.message_id],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cancelled.cancelled, 1);
}

#[tokio::test]
async fn refusals_carry_their_status_and_field() {
    let setup = setup().await;
    let mut messaging = setup.messaging();
    let refused = |request: SendMessageRequest| {
        let mut messaging = messaging.clone();
        async move { messaging.send_message(request).await.unwrap_err() }
    };

    for (request, field) in [
        (message("12", "hola"), "to"),
        (message("", "hola"), "to"),
        (message("+525512345678", " "), "body"),
        (message("+525512345678", &"x".repeat(1531)), "body"),
        (
            SendMessageRequest {
                delay: "1h".to_owned(),
                send_at: "2030-01-01 10:00".to_owned(),
                ..message("+525512345678", "hola")
            },
            "send_at",
        ),
        (
            SendMessageRequest {
                valid_for: "soon".to_owned(),
                ..message("+525512345678", "hola")
            },
            "valid_for",
        ),
        (
            SendMessageRequest {
                delay: "soon".to_owned(),
                ..message("+525512345678", "hola")
            },
            "delay",
        ),
        (
            SendMessageRequest {
                priority: 7,
                ..message("+525512345678", "hola")
            },
            "priority",
        ),
        (
            SendMessageRequest {
                encoding: "latin1".to_owned(),
                ..message("+525512345678", "hola")
            },
            "encoding",
        ),
        (
            SendMessageRequest {
                metadata: (0..21).map(|n| (format!("k{n}"), "v".to_owned())).collect(),
                ..message("+525512345678", "hola")
            },
            "metadata",
        ),
    ] {
        let status = refused(request).await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_field(&status), field, "{status:?}");
    }

    let unknown_route = refused(SendMessageRequest {
        route: "nope".to_owned(),
        ..message("+525512345678", "hola")
    })
    .await;
    assert_eq!(unknown_route.code(), Code::NotFound);

    let other_account = refused(SendMessageRequest {
        account: "globex".to_owned(),
        ..message("+525512345678", "hola")
    })
    .await;
    assert_eq!(other_account.code(), Code::PermissionDenied);

    // The admin key names the account it sends for.
    let mut admin = setup.control.messaging(foco_harness::ADMIN_KEY);
    let no_account = admin
        .send_message(message("+525512345678", "hola"))
        .await
        .unwrap_err();
    assert_eq!(
        (no_account.code(), bad_field(&no_account).as_str()),
        (Code::InvalidArgument, "account")
    );
    setup.control.create_account("globex").await;
    let no_route = admin
        .send_message(SendMessageRequest {
            account: "globex".to_owned(),
            ..message("+525512345678", "hola")
        })
        .await
        .unwrap_err();
    assert_eq!(no_route.code(), Code::FailedPrecondition);

    let trigger_unknown = messaging
        .trigger_event(TriggerEventRequest {
            source: "nope".to_owned(),
            payload: "{}".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(trigger_unknown.code(), Code::NotFound);
    assert_eq!(setup.api_sends().await, 0);
}

#[tokio::test]
async fn a_bus_that_refuses_is_unavailable_and_stores_nothing() {
    // No streams: JetStream has nothing to store the job in.
    let control = TestControl::start().await;
    control.create_account(ACCOUNT).await;
    control
        .admin()
        .upsert_provider_route(console_route(ACCOUNT, "primary", true))
        .await
        .unwrap();
    let key = control.account_key(ACCOUNT).await;
    let mut request = message("+525512345678", "hola");
    request.idempotency_key = "k1".to_owned();
    let status = control
        .messaging(&key)
        .send_message(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_sends")
        .fetch_one(&control.db.pool)
        .await
        .unwrap();
    assert_eq!(
        stored, 0,
        "a retry with the key must store the message anew"
    );
}

#[tokio::test]
async fn a_batch_answers_each_message() {
    let setup = setup().await;
    let keyed = SendMessageRequest {
        idempotency_key: "batch-1".to_owned(),
        ..message("+525512345678", "uno")
    };
    let response = setup
        .messaging()
        .send_messages(SendMessagesRequest {
            account: String::new(),
            messages: vec![
                keyed.clone(),
                message("not a number", "dos"),
                keyed,
                message("+525512345679", "tres"),
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let results: Vec<_> = response
        .results
        .into_iter()
        .map(|result| result.result.unwrap())
        .collect();
    let send_message_result::Result::Message(first) = &results[0] else {
        panic!("{results:?}")
    };
    let send_message_result::Result::Error(invalid) = &results[1] else {
        panic!("{results:?}")
    };
    assert_eq!(
        (invalid.code, invalid.field.as_str()),
        (Code::InvalidArgument as i32, "to")
    );
    let send_message_result::Result::Message(repeat) = &results[2] else {
        panic!("{results:?}")
    };
    assert_eq!(
        (&repeat.message_id, repeat.duplicate),
        (&first.message_id, true)
    );
    assert!(matches!(&results[3], send_message_result::Result::Message(m) if !m.duplicate));
    assert_eq!(setup.stream_messages(setup.names.sms_stream()).await, 2);

    let too_many = setup
        .messaging()
        .send_messages(SendMessagesRequest {
            account: String::new(),
            messages: vec![message("+525512345678", "x"); 1001],
        })
        .await
        .unwrap_err();
    assert_eq!(too_many.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn a_triggered_event_is_stored_as_ingress_stores_a_webhook() {
    let setup = setup().await;
    let source = create_source(&setup.control, ACCOUNT, "shop", "secret").await;
    let payload = r#"{"total_price":"500.00"}"#;
    let request = TriggerEventRequest {
        source: "shop".to_owned(),
        event_type: "orders/create".to_owned(),
        payload: payload.to_owned(),
        event_id: "order-1".to_owned(),
        headers: [("x-shop".to_owned(), "tienda".to_owned())].into(),
        ..Default::default()
    };
    let mut messaging = setup.messaging();
    let first = messaging
        .trigger_event(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        first.event_id,
        foco_bus::event_id_from_external(&source.id, "order-1")
    );
    assert!(!first.duplicate);
    let stream = setup
        .jetstream
        .get_stream(setup.names.events_stream())
        .await
        .unwrap();
    let stored = stream
        .get_last_raw_message_by_subject(&setup.names.events_subject(&setup.account_id, &source.id))
        .await
        .unwrap();
    let envelope = EventEnvelope::decode(stored.payload).unwrap();
    assert_eq!(envelope.event_id, first.event_id);
    assert_eq!(envelope.source_id, source.id);
    assert_eq!(envelope.event_type, "orders/create");
    assert_eq!(envelope.external_id, "order-1");
    assert_eq!(envelope.payload, payload.as_bytes());
    assert_eq!(
        envelope.headers.get("x-shop").map(String::as_str),
        Some("tienda")
    );

    // A retry is the same event; the source may be named by its id.
    let again = messaging
        .trigger_event(TriggerEventRequest {
            source: source.id.clone(),
            ..request.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((&again.event_id, again.duplicate), (&first.event_id, true));
    // Without an event id, the payload names the event, as for a webhook.
    let unnamed = messaging
        .trigger_event(TriggerEventRequest {
            event_id: String::new(),
            ..request.clone()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        unnamed.event_id,
        foco_bus::event_id_from_body(&source.id, payload.as_bytes())
    );

    let not_json = messaging
        .trigger_event(TriggerEventRequest {
            payload: "{".to_owned(),
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (not_json.code(), bad_field(&not_json).as_str()),
        (Code::InvalidArgument, "payload")
    );
    setup
        .control
        .admin()
        .upsert_source(UpsertSourceRequest {
            enabled: Some(false),
            ..source_request(ACCOUNT, "shop", "")
        })
        .await
        .unwrap();
    let disabled = messaging.trigger_event(request).await.unwrap_err();
    assert_eq!(disabled.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn a_job_carries_its_deadline_and_a_past_send_at_counts_from_its_time() {
    let setup = setup().await;
    let mut messaging = setup.messaging();
    let before = chrono::Utc::now().timestamp_millis();
    let hour_ms = 3_600_000;

    // At once, no validity: an hour (the built-in default) from now.
    messaging
        .send_message(message("+525512345678", "hola"))
        .await
        .expect("send");
    let job = setup.last_job().await;
    let after = chrono::Utc::now().timestamp_millis();
    assert!(
        (before + hour_ms..=after + hour_ms).contains(&job.expires_at_ms),
        "{}",
        job.expires_at_ms
    );

    // Its own validity, counted from a delayed send's due time.
    let sent = messaging
        .send_message(SendMessageRequest {
            delay: "1h".to_owned(),
            valid_for: "15m".to_owned(),
            ..message("+525512345678", "hola")
        })
        .await
        .expect("send")
        .into_inner();
    let stored: Vec<u8> = sqlx::query_scalar("SELECT job FROM scheduled_jobs WHERE job_id = $1")
        .bind(&sent.message_id)
        .fetch_one(&setup.control.db.pool)
        .await
        .expect("scheduled");
    let delayed = SmsJob::decode(stored.as_slice()).unwrap();
    assert_eq!(delayed.expires_at_ms, sent.send_at_ms + 15 * 60_000);

    // A send_at long past is accepted, due at once, and already past its
    // deadline: the sender records it expired rather than sending it.
    let stale = messaging
        .send_message(SendMessageRequest {
            send_at: "2020-01-01T10:00:00Z".to_owned(),
            ..message("+525512345678", "Tu cita es a las 10:20")
        })
        .await
        .expect("a past send_at is accepted")
        .into_inner();
    assert_eq!(stale.send_at_ms, 0, "due at once");
    let job = setup.last_job().await;
    assert_eq!(job.job_id, stale.message_id);
    assert_eq!(job.expires_at_ms, 1_577_872_800_000 + hour_ms);
    assert!(foco_bus::validity::is_past_deadline(
        &job,
        chrono::Utc::now().timestamp_millis()
    ));

    let too_short = messaging
        .send_message(SendMessageRequest {
            valid_for: "30s".to_owned(),
            ..message("+525512345678", "hola")
        })
        .await
        .unwrap_err();
    assert_eq!(too_short.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_field(&too_short), "valid_for");
    assert!(
        too_short.message().contains("shorter than a minute"),
        "{too_short:?}"
    );
}

type Updates = tonic::Streaming<foco_proto::v1::MessageStatusUpdate>;

async fn watch_after(setup: &Setup, after_cursor: u64) -> Updates {
    setup
        .messaging()
        .watch_messages(foco_proto::v1::WatchMessagesRequest {
            account: ACCOUNT.to_owned(),
            after_cursor,
            from_oldest: after_cursor == 0,
            ..Default::default()
        })
        .await
        .expect("watch")
        .into_inner()
}

/// The next `count` updates, as (cursor, message id).
async fn next_updates(updates: &mut Updates, count: usize) -> Vec<(u64, String)> {
    let mut seen = Vec::with_capacity(count);
    while seen.len() < count {
        let update = tokio::time::timeout(std::time::Duration::from_secs(10), updates.message())
            .await
            .expect("an update before the deadline")
            .expect("the stream is healthy")
            .expect("the stream is open");
        let change = update.change.expect("a change");
        seen.push((update.cursor, change.message_id));
    }
    seen
}

/// Changes published at about the same time travel in one feed message; a
/// watch resumed from the cursor of any change, the middle of such a message
/// included, gets the changes after it, in order, and none before.
#[tokio::test]
async fn a_watch_resumed_from_any_change_gets_those_after_it_even_inside_a_batch() {
    const BURST: usize = 32;
    let setup = setup().await;
    let client = async_nats::connect(&setup.control.bus.nats_url)
        .await
        .unwrap();
    let feed = foco_bus::StatusFeed::new(
        client,
        setup.names.clone(),
        std::time::Duration::from_secs(10),
    );
    let mut published = Vec::new();
    let mut seen = Vec::new();
    let mut updates = watch_after(&setup, 0).await;
    // The first change of a burst goes out alone; those that wait behind it
    // share messages. Bursts until the feed holds fewer messages than changes
    // (at once, unless the machine is very slow).
    for round in 0..20 {
        let ids: Vec<String> = (0..BURST)
            .map(|index| format!("m-{round}-{index}"))
            .collect();
        let results = futures::future::join_all(ids.iter().map(|id| {
            feed.publish(foco_bus::status_change(
                &setup.account_id,
                id,
                foco_bus::status::kind::SENT,
            ))
        }))
        .await;
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        published.extend(ids);
        seen.extend(next_updates(&mut updates, BURST).await);
        if setup.stream_messages(setup.names.status_stream()).await < published.len() as u64 {
            break;
        }
    }
    drop(updates);
    assert!(
        setup.stream_messages(setup.names.status_stream()).await < published.len() as u64,
        "changes published together share messages"
    );
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    let mut expected: Vec<&String> = published.iter().collect();
    expected.sort();
    assert_eq!(ids, expected, "every change once");

    for (position, (cursor, _)) in seen.iter().enumerate() {
        let rest = &seen[position + 1..];
        let checked = rest.len().min(8);
        let mut resumed = watch_after(&setup, *cursor).await;
        assert_eq!(
            next_updates(&mut resumed, checked).await,
            rest[..checked],
            "resumed after change {position}"
        );
    }
}

fn delivery(setup: &Setup, key: &str) -> foco_control_client::DeliveryApi {
    foco_control_client::connect_delivery(
        &setup.control.grpc_url,
        &secrecy::SecretString::from(key.to_owned()),
    )
    .expect("delivery client")
}

async fn story(setup: &Setup, message_id: &str) -> foco_proto::v1::MessageStory {
    delivery(setup, &setup.key)
        .get_message(foco_proto::v1::GetMessageRequest {
            account: ACCOUNT.to_owned(),
            message_id: message_id.to_owned(),
        })
        .await
        .expect("get message")
        .into_inner()
}

/// A delayed API message has a story before the sender ever sees it: waiting,
/// then cancelled with the reason, with the caller's metadata throughout.
#[tokio::test]
async fn a_messages_story_starts_in_the_scheduler_with_its_callers_metadata() {
    let setup = setup().await;
    let mut request = message("55 1234 5678", "Tu cita es mañana");
    request.delay = "2h".to_owned();
    request.metadata = [("appointment".to_owned(), "A-7".to_owned())].into();
    let sent = setup
        .messaging()
        .send_message(request)
        .await
        .unwrap()
        .into_inner();

    let waiting = story(&setup, &sent.message_id).await;
    assert_eq!(waiting.status, "scheduled");
    assert_eq!(waiting.origin, "api");
    assert_eq!(waiting.to, "+525512345678");
    assert_eq!(waiting.body, "Tu cita es mañana");
    assert_eq!(waiting.metadata["appointment"], "A-7");
    let scheduled = waiting.scheduled.expect("its wait in the scheduler");
    assert_eq!(
        (scheduled.state.as_str(), scheduled.due_at_ms),
        ("pending", sent.send_at_ms)
    );
    assert!(waiting.message.is_none(), "the sender has not claimed it");

    setup
        .control
        .scheduling()
        .cancel_scheduled_jobs(CancelScheduledJobsRequest {
            account: ACCOUNT.to_owned(),
            job_ids: vec![sent.message_id.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    let cancelled = story(&setup, &sent.message_id).await;
    assert_eq!(cancelled.status, "cancelled");
    assert_eq!(
        cancelled.scheduled.expect("still told").cancel_reason,
        "cancelled through the API"
    );
}

/// A rule's message tells its event, source, rule and the rule's decisions on
/// that event (not another rule's), then the sender's attempts; another
/// account's key cannot read it.
#[tokio::test]
async fn a_rules_message_tells_its_event_rule_decisions_and_attempts() {
    let setup = setup().await;
    let source = create_source(&setup.control, ACCOUNT, "tienda", "s3cret").await;
    let rule = setup
        .control
        .admin()
        .upsert_rule(crate::harness::rule_request(ACCOUNT, "tienda", "aviso"))
        .await
        .expect("create rule")
        .into_inner();
    let account_id = uuid::Uuid::parse_str(&setup.account_id).unwrap();
    let pool = &setup.control.db.pool;
    for (rule_id, rule_name, kind, detail) in [
        (
            rule.id.as_str(),
            "aviso",
            "capped",
            "first of two recipients kept",
        ),
        ("another-rule", "otra", "error", "not this message's rule"),
    ] {
        sqlx::query(
            "INSERT INTO event_reports (account_id, event_id, rule_id, rule_name, kind, detail) \
             VALUES ($1, 'evt-1', $2, $3, $4, $5)",
        )
        .bind(account_id)
        .bind(rule_id)
        .bind(rule_name)
        .bind(kind)
        .bind(detail)
        .execute(pool)
        .await
        .unwrap();
    }
    // The rows the sender writes for a message it sent after a failover.
    let history = serde_json::json!([
        {"at": 1_700_000_000_000i64, "attempt": 1, "provider": "primary", "outcome": "transient", "detail": "503 from the provider"},
        {"at": 1_700_000_001_000i64, "attempt": 2, "provider": "backup", "outcome": "sent", "detail": ""},
    ]);
    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, source_id, rule_id, recipient, body, \
                               status, provider, attempts, history, sent_at) \
         VALUES ('job-1', $1, 'evt-1', $2, $3, '+525512345678', 'Ana compró $404.95', 'sent', \
                 'backup', 2, $4, now())",
    )
    .bind(account_id)
    .bind(&source.id)
    .bind(&rule.id)
    .bind(&history)
    .execute(pool)
    .await
    .unwrap();

    let told = story(&setup, "job-1").await;
    assert_eq!(told.origin, "rule");
    assert_eq!(told.status, "sent");
    assert_eq!(
        (
            told.event_id.as_str(),
            told.source_name.as_str(),
            told.rule_name.as_str()
        ),
        ("evt-1", "tienda", "aviso")
    );
    let decisions: Vec<&str> = told.decisions.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(decisions, ["capped"], "only this rule's decisions");
    assert!(told.sent_at_ms > 0);
    let sent = told.message.expect("the sender's record");
    let routes: Vec<(&str, &str)> = sent
        .history
        .iter()
        .map(|step| (step.provider.as_str(), step.outcome.as_str()))
        .collect();
    assert_eq!(routes, [("primary", "transient"), ("backup", "sent")]);

    setup.control.create_account("otra-tienda").await;
    let other_key = setup.control.account_key("otra-tienda").await;
    let refused = delivery(&setup, &other_key)
        .get_message(foco_proto::v1::GetMessageRequest {
            account: "otra-tienda".to_owned(),
            message_id: "job-1".to_owned(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::NotFound, "{refused:?}");
    let missing = delivery(&setup, &setup.key)
        .get_message(foco_proto::v1::GetMessageRequest {
            account: ACCOUNT.to_owned(),
            message_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::InvalidArgument);
}
