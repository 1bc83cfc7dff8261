//! CLI tests against an in-process control App on the real Postgres and NATS.

mod api_keys;
mod apply;
mod binary;
mod delivery;
mod endpoints_apply;
mod harness;
mod messaging;
mod scheduled_apply;
mod scheduling;
mod story;
