//! foco-control: the gRPC configuration API of Foco (`foco.v1.ControlService`)
//! and the only owner of the Postgres schema (sqlx migrations in `migrations/`).
//!
//! It also serves `foco.v1.DeliveryService` (dead letters, opt-outs, unknown jobs,
//! message histories; see `api::delivery`).
//!
//! It manages accounts, API keys, sources, rules and provider routes, lists the
//! messages the sender recorded, and answers the lookups the other services make
//! (`ResolveSource`, `ResolveRoute`, service keys and the admin key). Every RPC
//! needs a scope of the calling key (`scopes`, one table). Source signing secrets and
//! provider credentials are sealed with AES-256-GCM at rest; API keys are stored
//! only as SHA-256 hashes (with a short prefix to tell them apart), may expire, and
//! are checked on every call, so revocation is immediate. Every successful write
//! is announced on NATS (core, not JetStream) so the other services drop their
//! cached lookups.
//!
//! It also serves `foco.v1.MessagingService` (see `api::messaging`): internal
//! services send SMS and trigger events through it. It stores those on the bus
//! (FOCO_SMS, FOCO_EVENTS; delayed sends in `scheduled_jobs`) exactly as rules
//! and ingress would, and the other services take them from there.
//!
//! `MessagingService` also streams an account's status changes
//! (`WatchMessages`, from FOCO_STATUS) and manages status webhook endpoints,
//! which control's webhook worker (`webhooks`) delivers: it consumes
//! FOCO_STATUS into Postgres delivery rows and POSTs them, through the
//! SSRF-guarded client of `foco_outbound`.
//!
//! It publishes to the bus only what an API call asks for (sends, triggered
//! events, dead-letter retries, resends) and evaluates rules only to preview
//! them (`PreviewRules`), never to produce jobs. It must not call SMS providers
//! or consume the work-queue streams (FOCO_EVENTS, FOCO_SMS, FOCO_RECEIPTS).
//!
//! Environment (see [`Config::from_env`]):
//! - `FOCO_CONTROL_LISTEN` [127.0.0.1:50051]: gRPC API, health and reflection.
//! - `FOCO_ADMIN_LISTEN` [127.0.0.1:9091]: `/healthz`, `/readyz`, `/metrics`.
//! - `DATABASE_URL` [postgres://postgres@127.0.0.1:5432/foco], `NATS_URL`
//!   [nats://127.0.0.1:4222], `FOCO_BUS_PREFIX` [""].
//! - NATS identity, optional (`foco_bus::NatsAuth`): `NATS_NKEY_FILE`,
//!   `NATS_CREDS_FILE` or `NATS_USER`/`NATS_PASSWORD`, and `NATS_CA_FILE`.
//! - `FOCO_ADMIN_API_KEY` (required, 16+ characters): the bootstrap admin key.
//! - `FOCO_ENCRYPTION_KEY` (required): base64 of 32 random bytes.
//! - `FOCO_BACKLOG_INTERVAL` [15s]: how often the scheduled-job and dead-letter
//!   gauges are read from Postgres.
//! - `FOCO_CONTROL_TLS_CERT`, `FOCO_CONTROL_TLS_KEY` [none: plain HTTP/2]: PEM
//!   files of the gRPC listener's certificate chain and key, reread on change.
//! - `FOCO_SERVICE_KEY_HASHES` [none]: service keys to create at start, as
//!   `service=<hex SHA-256 of the key>` pairs (see `Config`).
//! - `FOCO_WEBHOOK_TIMEOUT` [15s], `FOCO_WEBHOOK_DISABLE_AFTER` [5d],
//!   `FOCO_ALLOW_PRIVATE_WEBHOOK_HOSTS` [false]: see `WebhookSettings`.
//! - `FOCO_BUS_REPLICAS`, `FOCO_BUS_MAX_BYTES`, `FOCO_BUS_STATUS_MAX_AGE`: the
//!   streams, as every service sets them up.

mod api;
mod app;
mod auth;
mod backlog;
pub mod bus_topology;
mod config;
mod crypto;
mod error;
mod metrics;
mod notify;
mod publisher;
pub mod scopes;
pub mod tables;
mod tls;
mod validate;
pub mod webhooks;

pub use app::App;
pub use config::{
    Config, EncryptionKey, parse_admin_api_key, parse_encryption_key, parse_service_key_hashes,
};
pub use error::{ApiError, ControlError};
pub use tls::{RELOAD_CHECK_INTERVAL, TlsFiles};

/// The schema migrations; `App::build` runs them, tests may too.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
