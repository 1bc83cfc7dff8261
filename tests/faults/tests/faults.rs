//! The fast subset of `make faults`, run by `make test`: the service binaries of
//! this build as processes, light load, short outages; zero SMS lost or
//! duplicated under each fault, a rolling restart of two replicas of each
//! service included, and on a three-node JetStream cluster.

use std::path::PathBuf;
use std::time::Duration;

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
