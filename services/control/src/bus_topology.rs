//! `foco-control bus-topology`: prints Foco's streams with their settings and
//! backlog, and each consumer with what it has still to do, read from the NATS
//! server that `NATS_URL` and `FOCO_BUS_PREFIX` name, as control's NATS user
//! (the same variables the services read). For an operator in the control pod:
//! `kubectl exec deploy/foco-control -- foco-control bus-topology`.
//!
//! `foco-control bus-permissions`: prints the nats-server `authorization`
//! block that gives each service its own NATS user, allowed only the subjects
//! it needs under `FOCO_BUS_PREFIX` (see `foco_bus::Service`).

use std::time::Duration;

use foco_runtime::env::{self, Env};

/// How long the command waits for NATS before it gives up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum TopologyCommandError {
    #[error(transparent)]
    Config(#[from] env::ConfigError),
    #[error(transparent)]
    Connect(#[from] foco_bus::ConnectError),
    #[error(transparent)]
    Describe(#[from] foco_bus::describe::DescribeError),
}

/// The bus topology as printed.
pub async fn bus_topology() -> Result<String, TopologyCommandError> {
    let bus = foco_bus::BusConfig::from_lookup(&Env::process())?;
    let client = bus
        .connect_once(foco_bus::Service::Control, CONNECT_TIMEOUT)
        .await?;
    let jetstream = async_nats::jetstream::new(client);
    Ok(foco_bus::describe::describe(&jetstream, &bus.names)
        .await?
        .to_string())
}

/// The server configuration of the services' NATS users, as printed.
pub fn bus_permissions() -> Result<String, TopologyCommandError> {
    let bus = foco_bus::BusConfig::from_lookup(&Env::process())?;
    Ok(foco_bus::services_authorization(&bus.names))
}
