//! foco-ingress receives webhooks at `POST /v1/hooks/{source_token}`, checks them
//! against their source (size, content type, signature over the raw bytes), wraps
//! them in an `EventEnvelope` and answers `202 {"event_id", "duplicate"}` only once
//! JetStream has stored the event. When the bus cannot take it the answer is 503
//! with `Retry-After`: never a 2xx for an event that is not durably stored. Every
//! error is RFC 9457 `application/problem+json`.
//!
//! Ingress owns no configuration: sources come from control (cached, dropped on
//! change announcements), and it never evaluates rules or talks to SMS providers.
//!
//! Environment (defaults in brackets): `FOCO_INGRESS_LISTEN` [0.0.0.0:8080],
//! `FOCO_ADMIN_LISTEN` [127.0.0.1:9092], `NATS_URL`, `FOCO_BUS_PREFIX`,
//! `FOCO_BUS_REPLICAS`, `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (or
//! `FOCO_ADMIN_API_KEY`, required), `FOCO_CONFIG_CACHE_TTL` [30s],
//! `FOCO_INGRESS_MAX_BODY` [1048576 bytes, a cap over every source's own limit,
//! which defaults to 256 KiB], `FOCO_PUBLISH_TIMEOUT` [5s],
//! `FOCO_INGRESS_REQUEST_TIMEOUT` [30s], `FOCO_SHUTDOWN_GRACE` [30s].

mod app;
mod body;
mod config;
mod error;
mod event_fields;
mod http_trace;
mod metrics;
mod problem;
mod publish;
mod routes;
pub mod signature;
mod state;
mod woocommerce_ping;

pub use app::App;
pub use config::{Config, DEFAULT_SOURCE_MAX_BODY};
pub use error::{AppError, IngressError};
pub use problem::PROBLEM_CONTENT_TYPE;
pub use routes::WEBHOOK_ROUTE;
