//! foco-rules: a durable pull consumer on FOCO_EVENTS. For each event it evaluates
//! the enabled rules of the event's source (`foco-rule-engine`), applies what the
//! event cancels (pending jobs of any rule of the account whose cancel clause
//! matches and whose key equals), stores delayed jobs in Postgres, publishes
//! immediate ones to FOCO_SMS with the job id as `Nats-Msg-Id`, and acks the event
//! only after all of that is durable. A scheduler in every replica publishes
//! delayed jobs when they are due (see `scheduler`).
//!
//! It also keeps a few recent events of each source, sampled and off the event's
//! path (see `samples`), for the rule editor's preview.
//!
//! Configuration comes from foco-control (cached, dropped on change). This service
//! never calls a provider and never writes message state.
//!
//! Environment: `NATS_URL` and its NATS identity (`foco_bus::NatsAuth`:
//! `NATS_NKEY_FILE`, `NATS_CREDS_FILE` or `NATS_USER`/`NATS_PASSWORD`, and
//! `NATS_CA_FILE`), `DATABASE_URL`, `FOCO_BUS_PREFIX`, `FOCO_BUS_REPLICAS`,
//! `FOCO_CONTROL_URL`, `FOCO_CONTROL_API_KEY` (its service key, required),
//! `FOCO_ADMIN_LISTEN` (127.0.0.1:9093), `FOCO_CONFIG_CACHE_TTL` (30s),
//! `FOCO_RULES_CONCURRENCY` (256 events in flight), `FOCO_RULES_STORE_WRITERS`
//! (2 transactions at once), `FOCO_RULES_STORE_BATCH` (256 events a transaction),
//! `FOCO_RULES_STORE_LINGER` (1ms a batch waits for more events),
//! `FOCO_RULES_MAX_RECIPIENTS_PER_RULE` (10) and `FOCO_RULES_MAX_JOBS_PER_EVENT`
//! (25): what one event may produce, the rest reported on the event,
//! `FOCO_RULES_ACK_WAIT` (30s), `FOCO_RULES_MAX_DELIVERIES` (20: an event that
//! still fails after that many deliveries, about 15 minutes of retries, is
//! recorded on the event as `dead_lettered` and terminated),
//! `FOCO_PUBLISH_TIMEOUT` (5s), `FOCO_SHUTDOWN_GRACE` (20s),
//! `FOCO_SCHEDULER_TICK` (100ms), `FOCO_SCHEDULER_BATCH` (200),
//! `FOCO_SCHEDULER_MAX_PER_SECOND` (2000), `FOCO_SCHEDULER_MAX_HOLD` (30s: the
//! longest a due job waits for earlier events to be evaluated), `FOCO_LAG_INTERVAL` (5s: how often
//! the consumer's lag is read for `/metrics`).

mod app;
mod config;
mod consumer;
mod error;
pub mod metrics;
mod samples;
pub mod scheduler;
pub mod store;

pub use app::{App, RulesState};
pub use config::Config;
pub use consumer::{DEAD_LETTERED, Delivery, Outcome, handle_event};
pub use error::RulesError;
pub use foco_rule_engine::Limits;
pub use scheduler::{Clock, Scheduler, SchedulerSettings, SystemClock};
