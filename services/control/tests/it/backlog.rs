//! The backlog gauges: delayed jobs pending and overdue, dead letters waiting
//! for a retry, and `foco_build_info`, as `/metrics` shows them.

use std::time::Duration;

use foco_testkit::wait_for_metric;
use uuid::Uuid;

use crate::harness::TestControl;

const WAIT: Duration = Duration::from_secs(20);

async fn schedule_job(control: &TestControl, account_id: Uuid, job_id: &str, due_in_minutes: i32) {
    sqlx::query(
        "INSERT INTO scheduled_jobs (job_id, account_id, rule_id, event_id, recipient, body, due_at,
                                     trigger_received_at, job)
         VALUES ($1, $2, NULL, 'evt-backlog', '+5215512345678', 'hola',
                 now() + make_interval(mins => $3), now(), '\\x00')",
    )
    .bind(job_id)
    .bind(account_id)
    .bind(due_in_minutes)
    .execute(&control.db.pool)
    .await
    .unwrap();
}

async fn dead_letter(control: &TestControl, account_id: Uuid, job_id: &str, minutes_ago: i32) {
    sqlx::query(
        "INSERT INTO messages (job_id, account_id, event_id, recipient, body, status, attempts)
         VALUES ($1, $2, 'evt-backlog', '+5215512345678', 'hola', 'failed', 5)",
    )
    .bind(job_id)
    .bind(account_id)
    .execute(&control.db.pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO dead_letters (job_id, account_id, reason, attempts, job, dead_lettered_at)
         VALUES ($1, $2, 'provider kept failing', 5, '\\x00', now() - make_interval(mins => $3))",
    )
    .bind(job_id)
    .bind(account_id)
    .bind(minutes_ago)
    .execute(&control.db.pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn overdue_jobs_and_dead_letters_show_on_the_metrics_endpoint() {
    let control = TestControl::start().await;
    let account = control.create_account("acme").await;
    let account_id = Uuid::parse_str(&account.id).unwrap();
    let admin = control.admin_addr;
    for series in [
        "foco_scheduled_jobs_pending",
        "foco_scheduled_jobs_overdue",
        "foco_scheduled_jobs_overdue_age_seconds",
        "foco_dead_letters",
        "foco_dead_letters_oldest_age_seconds",
    ] {
        wait_for_metric(admin, series, WAIT, |value| value == 0.0).await;
    }

    // One job due in an hour (pending), one due ten minutes ago that no
    // scheduler published (overdue).
    schedule_job(&control, account_id, "job-later", 60).await;
    schedule_job(&control, account_id, "job-late", -10).await;
    wait_for_metric(admin, "foco_scheduled_jobs_pending", WAIT, |v| v == 2.0).await;
    wait_for_metric(admin, "foco_scheduled_jobs_overdue", WAIT, |v| v == 1.0).await;
    wait_for_metric(
        admin,
        "foco_scheduled_jobs_overdue_age_seconds",
        WAIT,
        |age| age >= 600.0,
    )
    .await;

    // Published: no longer pending nor overdue.
    sqlx::query("UPDATE scheduled_jobs SET state = 'published' WHERE job_id = 'job-late'")
        .execute(&control.db.pool)
        .await
        .unwrap();
    wait_for_metric(admin, "foco_scheduled_jobs_overdue", WAIT, |v| v == 0.0).await;
    wait_for_metric(
        admin,
        "foco_scheduled_jobs_overdue_age_seconds",
        WAIT,
        |v| v == 0.0,
    )
    .await;
    wait_for_metric(admin, "foco_scheduled_jobs_pending", WAIT, |v| v == 1.0).await;

    dead_letter(&control, account_id, "job-dead-1", 30).await;
    dead_letter(&control, account_id, "job-dead-2", 5).await;
    wait_for_metric(admin, "foco_dead_letters", WAIT, |v| v == 2.0).await;
    wait_for_metric(admin, "foco_dead_letters_oldest_age_seconds", WAIT, |age| {
        age >= 30.0 * 60.0
    })
    .await;

    // A retried dead letter no longer waits; the oldest is now the other one.
    sqlx::query("UPDATE dead_letters SET retried_at = now() WHERE job_id = 'job-dead-1'")
        .execute(&control.db.pool)
        .await
        .unwrap();
    wait_for_metric(admin, "foco_dead_letters", WAIT, |v| v == 1.0).await;
    wait_for_metric(admin, "foco_dead_letters_oldest_age_seconds", WAIT, |age| {
        (5.0 * 60.0..30.0 * 60.0).contains(&age)
    })
    .await;
    let (_, metrics) = control.admin_get("/metrics").await;
    assert!(
        metrics.contains("foco_control_backlog_refresh_failures_total 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn build_info_names_the_service_version_and_revision() {
    let control = TestControl::start().await;
    let (_, metrics) = control.admin_get("/metrics").await;
    let series = format!(
        "foco_build_info{{service=\"foco-control\",version=\"{}\",revision=\"{}\"}}",
        foco_runtime::build_info::VERSION,
        foco_runtime::build_info::REVISION,
    );
    assert_eq!(
        foco_testkit::metric_value(&metrics, &series),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn the_binary_answers_version() {
    assert_eq!(
        foco_testkit::version_flag_output(env!("CARGO_BIN_EXE_foco-control")),
        format!("foco-control {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}
