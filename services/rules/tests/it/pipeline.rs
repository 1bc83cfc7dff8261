use std::time::Duration;

use foco_proto::v1::Priority;

use crate::support::Rig;

const ORDER: &str = r#"{"total_price": "512.00", "currency": "MXN", "customer": {"first_name": "Ale", "last_name": "Ruiz", "phone": "55 1234 5678"}}"#;

#[tokio::test]
async fn matching_rules_become_jobs_on_the_sms_stream() {
    let rig = Rig::start().await;
    rig.upsert_rule(
        "owner-alert",
        r#"event_type == "orders/create" && double(event.total_price) >= 500.0"#,
        &["+52 55 0000 0001"],
        "{{ event.customer.first_name }} {{ event.customer.last_name }} acaba de comprar ${{ event.total_price }}",
    )
    .await;
    rig.upsert_rule(
        "thanks",
        r#"event_type == "orders/create""#,
        &["{{ event.customer.phone }}"],
        "Gracias {{ event.customer.first_name }}",
    )
    .await;
    rig.upsert_rule("never", "false", &["+52 55 0000 0002"], "x")
        .await;

    rig.publish_event("evt-1", "evt-1", "orders/create", ORDER)
        .await;
    let mut jobs = rig.jobs(2).await;
    rig.wait_until_idle().await;
    jobs.sort_by(|a, b| a.body.cmp(&b.body));
    assert_eq!(jobs.len(), 2);
    assert_eq!(jobs[0].body, "Ale Ruiz acaba de comprar $512.00");
    assert_eq!(jobs[0].to, "+525500000001");
    assert_eq!(jobs[1].body, "Gracias Ale");
    assert_eq!(
        jobs[1].to, "+525512345678",
        "normalised with the account's country"
    );
    for job in &jobs {
        assert_eq!(job.event_id, "evt-1");
        assert_eq!(job.account_id, rig.source.account_id);
        assert_eq!(job.priority, Priority::Transactional as i32);
        assert_eq!(job.job_id, foco_bus::job_id("evt-1", &job.rule_id, &job.to));
    }
    rig.stop().await;
}

#[tokio::test]
async fn an_event_delivered_twice_yields_each_job_once() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["{{ event.customer.phone }}"], "Gracias")
        .await;
    // Two copies of one event with different Nats-Msg-Ids get past JetStream's
    // event dedup; the job ids they produce are the same, so the SMS stream keeps one.
    rig.publish_event("evt-dup", "copy-1", "orders/create", ORDER)
        .await;
    rig.publish_event("evt-dup", "copy-2", "orders/create", ORDER)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(rig.read_jobs().await.len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn a_failing_rule_does_not_stop_the_others_or_block_the_event() {
    let rig = Rig::start().await;
    rig.upsert_rule(
        "typo",
        "",
        &["+52 55 0000 0001"],
        "{{ event.custumer.first_name }}",
    )
    .await;
    rig.upsert_rule("good", "", &["+52 55 0000 0002"], "ok {{ event.currency }}")
        .await;
    rig.publish_event("evt-typo", "evt-typo", "orders/create", ORDER)
        .await;
    rig.wait_until_idle().await;
    let jobs = rig.read_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].body, "ok MXN");
    rig.stop().await;
}

#[tokio::test]
async fn rule_changes_reach_the_rules_service_without_waiting_for_the_cache_ttl() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "version one")
        .await;
    rig.publish_event("evt-a", "evt-a", "orders/create", ORDER)
        .await;
    assert_eq!(rig.jobs(1).await[0].body, "version one");

    // The cache TTL is 5 minutes here: only the change announcement can refresh it.
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "version two")
        .await;
    let mut attempt = 0;
    foco_testkit::wait_for(
        "a job rendered with the new rule",
        Duration::from_secs(5),
        || {
            attempt += 1;
            let event_id = format!("evt-b{attempt}");
            let rig = &rig;
            async move {
                rig.publish_event(&event_id, &event_id, "orders/create", ORDER)
                    .await;
                rig.wait_until_idle().await;
                rig.read_jobs()
                    .await
                    .into_iter()
                    .any(|job| job.body == "version two")
                    .then_some(())
            }
        },
    )
    .await;
    rig.stop().await;
}

#[tokio::test]
async fn an_undecodable_event_is_terminated_not_redelivered_for_ever() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "hola")
        .await;
    rig.jetstream
        .publish(
            rig.names.events_subject("x", "y"),
            "not protobuf at all \u{1}".into(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    rig.publish_event("evt-ok", "evt-ok", "orders/create", ORDER)
        .await;
    rig.wait_until_idle().await;
    assert_eq!(rig.read_jobs().await.len(), 1);
    rig.stop().await;
}

/// Ingress stores a platform's body unread, so one that is not JSON can reach
/// rules: it is reported on the event and acknowledged, and the next event is
/// handled as usual.
#[tokio::test]
async fn an_event_whose_payload_is_not_json_is_reported_not_lost() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "hola")
        .await;
    rig.publish_event("evt-broken", "evt-broken", "orders/create", "{\"id\": ")
        .await;
    rig.publish_event("evt-ok", "evt-ok", "orders/create", ORDER)
        .await;
    rig.wait_until_idle().await;
    let reports = rig.reports("unreadable").await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].starts_with("event payload is not valid JSON: EOF while parsing"),
        "{}",
        reports[0]
    );
    assert_eq!(rig.read_jobs().await.len(), 1, "only the readable event");
    rig.stop().await;
}

#[tokio::test]
async fn a_form_with_thousands_of_numbers_sends_to_the_limit_and_reports_the_rest() {
    let rig = Rig::start().await;
    rig.upsert_rule("welcome", "", &["{{ event.phones }}"], "hola")
        .await;
    let phones: Vec<String> = (0..5_000)
        .map(|index| format!("+52 55 1000 {:04}", index))
        .collect();
    let payload = serde_json::json!({ "phones": phones.join(";") }).to_string();
    rig.publish_event("evt-pump", "evt-pump", "form_response", &payload)
        .await;
    rig.wait_until_idle().await;
    let limit = foco_rules::Limits::default().recipients_per_rule;
    assert_eq!(rig.read_jobs().await.len(), limit);
    let reports = rig.reports("recipients_limited").await;
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(
        reports[0].starts_with(&format!("{} more recipient(s) not sent", 5_000 - limit)),
        "{}",
        reports[0]
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_event_postgres_always_refuses_is_recorded_and_terminated_and_others_flow() {
    let rig = Rig::start().await;
    rig.upsert_rule("thanks", "", &["+52 55 0000 0001"], "hola")
        .await;
    // Postgres will refuse this one event's writes on every delivery.
    sqlx::query(
        "ALTER TABLE seen_events ADD CONSTRAINT refuse_poison CHECK (event_id NOT LIKE 'evt-poison%')",
    )
    .execute(&rig.control.db.pool)
    .await
    .unwrap();
    rig.publish_external_event("evt-poison-1", "evt-poison-1", "orders/create", ORDER, 0)
        .await;
    rig.publish_external_event("evt-fine-1", "evt-fine-1", "orders/create", ORDER, 0)
        .await;
    rig.wait_until_idle().await;
    let dead = rig.reports(foco_rules::DEAD_LETTERED).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert!(dead[0].contains("refuse_poison"), "{}", dead[0]);
    let jobs = rig.read_jobs().await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].event_id, "evt-fine-1");
    rig.stop().await;
}

#[test]
fn the_binary_answers_version() {
    assert_eq!(
        foco_testkit::version_flag_output(env!("CARGO_BIN_EXE_foco-rules")),
        format!("foco-rules {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}
