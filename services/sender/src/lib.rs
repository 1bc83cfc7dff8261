//! foco-sender: the service that turns SMS jobs from JetStream (`FOCO_SMS`) into
//! provider calls, exactly once in effect. For each job it resolves the provider
//! route and its failover chain (through control, cached), normalises the
//! recipient to E.164 with the account's default country, holds marketing jobs
//! during the recipient's quiet hours, takes a rate-limit token shared by all
//! replicas, claims the job in Postgres (`messages`, unique job id; the claim also
//! checks opt-outs) before calling a provider, and records the outcome before
//! acknowledging. Claims and outcomes are written in batches.
//!
//! Transient failures come back through delayed `nak`s with backoff and
//! `Retry-After` and end as dead letters after `FOCO_SENDER_MAX_ATTEMPTS` or
//! `FOCO_SENDER_MAX_JOB_AGE`; a 429 pauses the whole route on every replica; a
//! route fails over only after definite failures. A job whose sender died
//! mid-call is called again with the same idempotency key where the provider has
//! one, and recorded as `unknown` (never resent blindly) where it has not. It also
//! consumes `FOCO_RECEIPTS`: delivery receipts (applied monotonically, per part)
//! and inbound SMS (STOP/START opt-outs, HELP answers).
//!
//! It does not own the schema (control does) and never evaluates rules.
//!
//! Environment (defaults in brackets): `NATS_URL` [nats://127.0.0.1:4222] and
//! its NATS identity (`foco_bus::NatsAuth`: `NATS_NKEY_FILE`,
//! `NATS_CREDS_FILE` or `NATS_USER`/`NATS_PASSWORD`, and `NATS_CA_FILE`),
//! `DATABASE_URL` [postgres://postgres@127.0.0.1:5432/foco], `FOCO_CONTROL_URL`
//! [http://127.0.0.1:50051], `FOCO_CONTROL_API_KEY` [its service
//! key; required], `FOCO_BUS_PREFIX` [""], `FOCO_BUS_REPLICAS` [1],
//! `FOCO_ADMIN_LISTEN` [127.0.0.1:9094], `FOCO_CONFIG_CACHE_TTL` [30s],
//! `FOCO_SENDER_CONCURRENCY` [1024], `FOCO_SENDER_MAX_ACK_PENDING` [10000],
//! `FOCO_SENDER_ACK_WAIT` [60s], `FOCO_PROVIDER_TIMEOUT` [15s],
//! `FOCO_SENDER_MAX_ATTEMPTS` [8], `FOCO_SENDER_MAX_JOB_AGE` [24h],
//! `FOCO_SENDER_CLAIM_MARGIN` [5s], `FOCO_QUIET_HOURS` [21:00-08:00; `off`],
//! `FOCO_SENDER_SHARED_STATE_POLL` [500ms], `FOCO_SENDER_WRITE_BATCH` [512],
//! `FOCO_SENDER_CLAIM_LINGER` [1ms],
//! `FOCO_SENDER_RECEIPTS_CONCURRENCY` [16], `FOCO_CONSOLE_PROVIDER` [false: console
//! routes are a development feature], `FOCO_CONSOLE_OUTBOX` [var/outbox.jsonl],
//! `FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS` [false], `FOCO_SHUTDOWN_GRACE` [25s],
//! `FOCO_LAG_INTERVAL` [5s].
//!
//! Provider kinds, their settings and credentials (with defaults and
//! idempotency), and the route settings every kind takes (`failover`,
//! `country_prefixes`, `rate_limit`, `breaker_threshold`, `breaker_cooldown`,
//! `quiet_hours`, `help_text`) are the `foco_providers` catalog's; how each kind
//! is called is in its adapter's module (`providers::*`) and `docs/providers.md`.

mod app;
pub mod breaker;
mod config;
mod consumer;
mod error;
pub mod handler;
pub mod inbound_events;
pub mod keywords;
pub mod limits;
mod maintenance;
pub mod metrics;
pub mod phone;
pub mod providers;
pub mod quiet;
pub mod receipts;
pub mod retry;
pub mod routing;
pub mod store;

pub use app::App;
pub use config::Config;
pub use error::SenderError;
pub use handler::{Handler, HandlerSettings, Outcome};
