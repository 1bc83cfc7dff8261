//! Errors that stop the sender from starting or running. Per-job failures never
//! appear here: they are outcomes, recorded on the message.

use foco_runtime::env::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("invalid configuration")]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Nats(#[from] foco_bus::ConnectError),
    #[error("could not set up the JetStream streams or consumer")]
    Topology(#[from] foco_bus::TopologyError),
    #[error("could not subscribe to configuration changes")]
    Subscribe(#[source] async_nats::SubscribeError),
    #[error("could not connect to Postgres")]
    Database(#[source] sqlx::Error),
    #[error("could not create the control API client")]
    Control(#[from] foco_control_client::ControlClientError),
    #[error("could not build the provider HTTP client")]
    HttpClient(#[from] crate::providers::ClientBuildError),
    #[error("could not bind the admin listener")]
    AdminBind(#[source] std::io::Error),
    #[error("admin listener failed")]
    AdminServe(#[source] std::io::Error),
}
