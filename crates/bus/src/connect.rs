//! How every service connects to NATS, and how it tells its readiness probe
//! whether the connection is up.

use async_nats::connection::State;

/// NATS could not be reached at `url` (credentials masked).
#[derive(Debug, thiserror::Error)]
#[error("could not connect to NATS at {url}")]
pub struct ConnectError {
    pub url: String,
    #[source]
    pub source: async_nats::ConnectError,
}

/// Connects as `service` (the name NATS monitoring shows). The service starts
/// even while NATS is still coming up, and reconnects for ever after; work that
/// needs the bus meanwhile fails and is retried by its own rules.
pub async fn connect(service: &str, url: &str) -> Result<async_nats::Client, ConnectError> {
    async_nats::ConnectOptions::new()
        .name(service)
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|source| ConnectError {
            url: foco_runtime::env::redacted_url(url),
            source,
        })
}

/// A readiness check: ready while connected, else the connection's state.
pub fn readiness_check(
    client: &async_nats::Client,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    let client = client.clone();
    move || match client.connection_state() {
        State::Connected => Ok(()),
        other => Err(format!("{other:?}").to_lowercase()),
    }
}
