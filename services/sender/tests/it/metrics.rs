//! What the sender's `/metrics` tells an operator: provider calls by provider
//! kind, route and outcome, and which build is running.

use std::time::Duration;

use foco_testkit::{FakeResponse, wait_for_metric};

use crate::harness::TestEnv;

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn provider_calls_are_counted_per_route_and_outcome() {
    let env = TestEnv::start().await;
    env.http_route().await;
    env.fake
        .push_responses([FakeResponse::status(503, "maintenance")]);
    let sender = env.start_sender(env.sender_config()).await;
    let calls = |outcome: &str| {
        format!(
            r#"foco_sender_provider_calls_total{{provider="http",route="gateway",outcome="{outcome}"}}"#
        )
    };
    let job = env.job("+525512345678", "hola");
    env.publish(&job).await;

    // The first call fails (transient), the retry is sent: one of each, on the
    // route the job went through.
    wait_for_metric(sender.admin_addr, &calls("sent"), WAIT, |v| v == 1.0).await;
    let (_, metrics) = sender.admin_get("/metrics").await;
    let value = |series: &str| foco_testkit::metric_value(&metrics, series);
    assert_eq!(value(&calls("transient")), Some(1.0), "{metrics}");
    assert_eq!(value(&calls("permanent")), Some(0.0), "{metrics}");
    assert_eq!(
        value(
            r#"foco_sender_provider_call_duration_seconds_count{provider="http",route="gateway",outcome="sent"}"#
        ),
        Some(1.0),
        "{metrics}"
    );
    let build_info = format!(
        "foco_build_info{{service=\"foco-sender\",version=\"{}\",revision=\"{}\"}}",
        foco_runtime::build_info::VERSION,
        foco_runtime::build_info::REVISION,
    );
    assert_eq!(value(&build_info), Some(1.0), "{metrics}");
    sender.stop().await.expect("sender stops cleanly");
}

#[test]
fn the_binary_answers_version() {
    assert_eq!(
        foco_testkit::version_flag_output(env!("CARGO_BIN_EXE_foco-sender")),
        format!("foco-sender {}\n", foco_runtime::build_info::VERSION_LINE)
    );
}
