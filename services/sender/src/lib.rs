//! foco-sender: the service that turns SMS jobs from JetStream (`FOCO_SMS`) into
//! provider calls, exactly once in effect. For each job it resolves the provider
//! route (through control, cached), normalises the recipient to E.164 with the
//! account's default country, claims the job in Postgres (`messages`, unique job id)
//! before calling the provider, and records the outcome before acknowledging.
//! Transient failures come back through delayed `nak`s with backoff and
//! `Retry-After`; a job whose sender died mid-call is recorded as `unknown`, never
//! resent blindly. It does not own the schema (control does) and never evaluates
//! rules.
//!
//! Environment (defaults in brackets): `NATS_URL` [nats://127.0.0.1:4222],
//! `DATABASE_URL` [postgres://postgres@127.0.0.1:5432/foco], `FOCO_CONTROL_URL`
//! [http://127.0.0.1:50051], `FOCO_CONTROL_API_KEY` [falls back to
//! `FOCO_ADMIN_API_KEY`; required], `FOCO_BUS_PREFIX` [""], `FOCO_BUS_REPLICAS` [1],
//! `FOCO_ADMIN_LISTEN` [127.0.0.1:9094], `FOCO_CONFIG_CACHE_TTL` [30s],
//! `FOCO_SENDER_CONCURRENCY` [64], `FOCO_SENDER_MAX_ACK_PENDING` [10000],
//! `FOCO_SENDER_ACK_WAIT` [60s], `FOCO_PROVIDER_TIMEOUT` [15s],
//! `FOCO_SENDER_MAX_ATTEMPTS` [8], `FOCO_CONSOLE_OUTBOX` [var/outbox.jsonl],
//! `FOCO_ALLOW_PRIVATE_PROVIDER_HOSTS` [false], `FOCO_SHUTDOWN_GRACE` [25s].
//!
//! Provider routes (`kind`, settings, credentials):
//! - `console`: setting `path` (else `FOCO_CONSOLE_OUTBOX`). Prints the SMS and
//!   appends a JSON line.
//! - `http`: setting `url` (required), `from`; credentials `header:<Name>` (or
//!   `header.<Name>`) and `authorization` become request headers. JSON body `{job_id, to, from, body,
//!   account_id, event_id}` with `Idempotency-Key: <job id>`.
//! - `twilio`: settings `base_url` [https://api.twilio.com], `from`,
//!   `messaging_service_sid`, `account_sid`; credentials `account_sid`, `auth_token`.

mod app;
pub mod breaker;
mod config;
mod consumer;
mod error;
pub mod handler;
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
