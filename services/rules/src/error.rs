//! Errors that stop rules from starting or running. What goes wrong with one
//! event is its outcome (`consumer::Outcome`), recorded on the event, never here.

use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error(transparent)]
    Nats(#[from] foco_bus::ConnectError),
    #[error("could not set up JetStream")]
    Topology(#[from] foco_bus::TopologyError),
    #[error("could not reach the control API")]
    Control(#[from] foco_control_client::ControlClientError),
    #[error("could not subscribe to configuration changes")]
    Subscribe(#[from] async_nats::SubscribeError),
    #[error("could not bind the admin listener on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("could not connect to Postgres")]
    Database(#[from] sqlx::Error),
    #[error("admin server failed")]
    Serve(#[source] std::io::Error),
}
