//! What every request handler needs, in one value that is cheap to clone: axum
//! clones the state for every request, so it is a single `Arc` (cloning the NATS
//! clients and caches field by field cost more than verifying a signature).

use std::ops::Deref;
use std::sync::Arc;

use foco_bus::BusNames;
use foco_control_client::ConfigCache;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;

#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub sources: ConfigCache,
    pub nats: async_nats::Client,
    /// Stores the events: those of requests handled at the same moment go to
    /// NATS in one write.
    pub publisher: foco_bus::Publisher,
    pub names: BusNames,
    pub metrics: Metrics,
    pub config: Config,
    pub rate_limiter: RateLimiter,
}

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
