//! CLI tests against an in-process control App on the real Postgres and NATS.

mod apply;
mod binary;
mod delivery;
mod harness;
mod scheduled_apply;
mod scheduling;
