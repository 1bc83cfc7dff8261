//! Test kit for Foco's integration and end-to-end tests: a fresh Postgres database
//! and a fresh bus prefix per test (so tests run in parallel on one server), a fake
//! SMS provider that records requests and answers as told, a private NATS server
//! that can be stopped and restarted, a three-node JetStream cluster, a TCP
//! balancer in front of replicas, an OTLP trace receiver, and condition waits
//! with deadlines.
//!
//! Nothing here is used by production code.

mod balancer;
pub mod cpu;
mod fake_provider;
mod nats;
mod nats_cluster;
mod otlp;
mod postgres;
mod proxy;

use std::future::Future;
use std::time::Duration;

pub use balancer::Balancer;
pub use fake_provider::{FakeProvider, FakeResponse, RecordedRequest};
pub use nats::{PrivateNats, TestBus};
pub use nats_cluster::NatsCluster;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use postgres::TestDatabase;
pub use proxy::{Proxy, ProxyMode};

/// NATS used by tests: `FOCO_TEST_NATS_URL`, else the local server.
pub fn nats_url() -> String {
    std::env::var("FOCO_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Waits until `condition` returns `Some`, polling every 20 ms, and panics with
/// `what` after `timeout`. Never use a bare sleep to wait for an effect.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut condition: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = condition().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A loopback port nothing listens on now, for a server the test starts next.
///
/// Taken below the kernel's ephemeral range (`ip_local_port_range`): a port
/// from that range can be handed to an outgoing connection (to NATS, Postgres,
/// a fake provider) between this check and the server's bind, which then fails
/// with "address in use". Below it only another process's pick can collide; a
/// process never gets the same port twice.
pub fn free_port() -> u16 {
    use rand::Rng as _;
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    if ephemeral_low > FREE_PORTS_FROM + 1000 {
        let mut rng = rand::rng();
        for _ in 0..64 {
            let port = rng.random_range(FREE_PORTS_FROM..ephemeral_low);
            if !handed_out.contains(&port)
                && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            {
                handed_out.push(port);
                return port;
            }
        }
    }
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("reserve a port")
        .port()
}

/// The lowest port [`free_port`] picks: above the well-known and the usual
/// service ports (PostgreSQL's 5432, NATS's 4222, and the like).
const FREE_PORTS_FROM: u16 = 20_000;

/// The folder of the webhook bodies every test reads (`tests/fixtures/`; its
/// README says where each came from).
pub const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures");

/// The bytes of fixture `name` exactly as saved (signatures are computed over
/// them).
pub fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(FIXTURES_DIR).join(name);
    std::fs::read(&path).unwrap_or_else(|error| panic!("fixture {}: {error}", path.display()))
}

/// A short random lowercase token for names.
pub fn random_token(len: usize) -> String {
    use rand::distr::{Alphanumeric, SampleString};
    Alphanumeric
        .sample_string(&mut rand::rng(), len)
        .to_ascii_lowercase()
}

/// `GET path` over a plain TCP connection to `addr` (an admin listener):
/// (status code, body). No HTTP client needed for `/healthz`, `/readyz`, `/metrics`.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    try_http_get(addr, path)
        .await
        .unwrap_or_else(|error| panic!("GET {path} from {addr}: {error}"))
}

/// [`http_get`] for a listener that may not be up (yet): the I/O error instead
/// of a panic.
pub async fn try_http_get(
    addr: std::net::SocketAddr,
    path: &str,
) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The value of one series in a Prometheus text exposition: `series` is the
/// metric name with its labels exactly as exported (`foco_dead_letters`,
/// `foco_sender_provider_calls_total{provider="http",route="main",outcome="sent"}`).
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        line.strip_prefix(series)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// `GET /metrics` on an admin listener until `series` has a value that
/// `accept` takes; returns it. Panics with the last exposition after `timeout`.
pub async fn wait_for_metric(
    admin: std::net::SocketAddr,
    series: &str,
    timeout: Duration,
    accept: impl Fn(f64) -> bool,
) -> f64 {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let (_, exposition) = http_get(admin, "/metrics").await;
        if let Some(value) = metric_value(&exposition, series).filter(|value| accept(*value)) {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!(
                "timed out after {timeout:?} waiting for {series}; last exposition:\n{exposition}"
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What `binary --version` prints on stdout; panics unless it exits with 0.
pub fn version_flag_output(binary: &str) -> String {
    let output = std::process::Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("run {binary} --version: {error}"));
    assert!(
        output.status.success(),
        "{binary} --version exited with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 version")
}

#[cfg(test)]
mod tests {
    #[test]
    fn free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let ephemeral_low: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|range| range.split_whitespace().next()?.parse().ok())
            .unwrap_or(32768);
        let ports: Vec<u16> = (0..200).map(|_| super::free_port()).collect();
        let mut distinct = ports.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), ports.len(), "a port was handed out twice");
        for port in ports {
            assert!(port < ephemeral_low, "{port} is in the ephemeral range");
            std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the port");
        }
    }
}
