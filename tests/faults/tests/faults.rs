//! The fast subset of `make faults`, run by `make test`: the service binaries of
//! this build as processes, light load, short outages; zero SMS lost or
//! duplicated under each fault, a rolling restart of two replicas of each
//! service included, and on a three-node JetStream cluster. Also: a service
//! whose start waits for JetStream stops at SIGTERM.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use foco_bench_pipeline::processes::ChildGuard;
use foco_faults::suite::{self, Fault, Settings};

/// target/<profile>, where cargo put the service binaries of this build.
fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("FOCO_FAULTS_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/faults-<hash>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sms_is_lost_or_duplicated_under_faults() {
    let settings = Settings {
        bin_dir: bin_dir(),
        faults: vec![
            Fault::Kill("rules"),
            Fault::Kill("sender"),
            Fault::NatsDown,
            Fault::PostgresDown,
            Fault::ProviderDown,
            Fault::ThrottledNeighbour,
            Fault::RollingRestart,
            Fault::NatsNodesKilled,
        ],
        rate: 40,
        load_seconds: 12,
        outage: Duration::from_secs(4),
        provider_outage: Duration::from_secs(3),
        cart_delay: Duration::from_secs(3),
        settle: Duration::from_secs(90),
        neighbour_latency_bound: None,
    };
    let rows = suite::run(&settings).await.expect("the fault suite runs");
    let table = suite::table(&rows);
    println!("{table}");
    for row in &rows {
        assert!(row.accepted > 0, "{}: nothing accepted\n{table}", row.fault);
        assert!(row.passed(), "{}\n{table}", row.fault);
    }
}

/// A service whose start waits for JetStream (NATS is not up) stops at SIGTERM,
/// as a pod deleted meanwhile must, rather than waiting out the rest of
/// `foco_bus::SETUP_PATIENCE` first.
#[tokio::test]
async fn a_service_waiting_for_jetstream_at_start_stops_at_sigterm() {
    let database = foco_testkit::TestDatabase::create().await;
    let logs = tempfile::tempdir().expect("a log directory");
    // Nothing listens there.
    let nats_url = format!("nats://127.0.0.1:{}", foco_testkit::free_port());
    let mut children = Vec::new();
    for service in ["ingress", "rules", "sender"] {
        let mut command = Command::new(bin_dir().join(format!("foco-{service}")));
        command
            .env("NATS_URL", &nats_url)
            .env("DATABASE_URL", &database.url)
            .env("FOCO_CONTROL_URL", "http://127.0.0.1:1")
            .env("FOCO_CONTROL_API_KEY", "unused")
            .env("FOCO_INGRESS_LISTEN", "127.0.0.1:0")
            .env("FOCO_ADMIN_LISTEN", "127.0.0.1:0")
            .env("FOCO_LOG_FORMAT", "json")
            .env("RUST_LOG", "warn");
        let log = logs.path().join(format!("{service}.log"));
        let child = ChildGuard::spawn_logged(service, command, &log).expect("the service starts");
        children.push((child, log));
    }
    for (child, log) in &mut children {
        // Until its first setup attempt has failed and it waits to try again.
        let waiting = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                let text = std::fs::read_to_string(&*log).unwrap_or_default();
                if text.contains("JetStream is not ready; trying again") {
                    return;
                }
                assert!(child.exited().is_none(), "exited{}", child.log_hint());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            waiting.is_ok(),
            "never waited for JetStream{}",
            child.log_hint()
        );
    }
    for (child, _) in &mut children {
        let status = child
            .terminate(Duration::from_secs(20))
            .await
            .expect("SIGTERM");
        assert!(
            status.is_some_and(|status| status.success()),
            "not stopped cleanly at SIGTERM ({status:?}){}",
            child.log_hint()
        );
    }
}
