//! `make bench-pipeline`: Foco end to end, as in production, against a bare pipe
//! and a floor pipe in the same run.
//!
//! The orchestrator (`foco-bench-pipeline`) starts the four release binaries as
//! separate processes configured by environment variables, on a fresh Postgres
//! database and bus prefix for every measured phase, configures an account through
//! control's gRPC API, and drives signed Shopify webhooks at ingress from a load
//! generator process. A fake provider process answers the `http` provider at once
//! and records, per SMS, the end-to-end latency from the timestamp the webhook
//! carried (rendered into the SMS by the rule's template). The bare pipe
//! (`foco-bench-bare-pipe`) takes the same load and makes the same provider call
//! through one JetStream stream, without Postgres: the ceiling Foco is compared
//! with. The floor pipe (`foco-bench-floor-pipe`) is the bare pipe plus what
//! Foco's promises take (signature check, a second stream, the event recorded,
//! the job claimed before the call and its outcome recorded in Postgres) and
//! nothing else: what of Foco's cost its promises account for, and what its own
//! code adds. CPU is read from `/proc` per process. Each phase's log directory also
//! gets `arrivals.tsv`: every SMS the fake provider recorded, with the time its
//! webhook carried and its arrival, to see when in a phase a tail happened.
//!
//! This crate measures; it must not change how the services behave. Nothing here is
//! used by production code. Loopback only, bounded in time and count.

pub mod api;
pub mod bare;
pub mod cpu;
pub mod deployment;
pub mod fake_provider;
pub mod floor;
pub mod load;
pub mod phases;
pub mod processes;
pub mod report;
pub mod settings;
pub mod sms;
pub mod stages;
pub mod stats;

/// Microseconds since the Unix epoch: the clock every process of the benchmark
/// shares (one machine), so that a timestamp written by the load generator can be
/// compared with an arrival seen by the fake provider.
pub fn unix_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
