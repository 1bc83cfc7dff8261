//! `foco-control bus-topology`: prints Foco's streams with their settings and
//! backlog, and each consumer with what it has still to do, read from the NATS
//! server that `NATS_URL` and `FOCO_BUS_PREFIX` name (the same variables the
//! services read). For an operator in the control pod:
//! `kubectl exec deploy/foco-control -- foco-control bus-topology`.

use std::time::Duration;

use foco_runtime::env;

/// How long the command waits for NATS before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TopologyCommandError {
    #[error("invalid bus prefix")]
    Prefix(#[from] foco_bus::InvalidPrefix),
    #[error("could not connect to NATS at {url}")]
    Connect {
        url: String,
        #[source]
        source: async_nats::ConnectError,
    },
    #[error(transparent)]
    Describe(#[from] foco_bus::describe::DescribeError),
}

/// The bus topology as printed.
pub async fn bus_topology() -> Result<String, TopologyCommandError> {
    let url = env::string_or("NATS_URL", "nats://127.0.0.1:4222");
    let names = foco_bus::BusNames::new(&env::string_or("FOCO_BUS_PREFIX", ""))?;
    let client = async_nats::ConnectOptions::new()
        .name("foco-control bus-topology")
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(&url)
        .await
        .map_err(|source| TopologyCommandError::Connect {
            url: env::redacted_url(&url),
            source,
        })?;
    let jetstream = async_nats::jetstream::new(client);
    Ok(foco_bus::describe::describe(&jetstream, &names)
        .await?
        .to_string())
}
