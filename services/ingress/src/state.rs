//! What every request handler needs, in one cheap-to-clone value.

use std::sync::Arc;

use foco_bus::BusNames;
use foco_control_client::ConfigCache;

use crate::config::Config;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub sources: ConfigCache,
    pub nats: async_nats::Client,
    pub jetstream: async_nats::jetstream::Context,
    pub names: Arc<BusNames>,
    pub metrics: Metrics,
    pub config: Arc<Config>,
}
