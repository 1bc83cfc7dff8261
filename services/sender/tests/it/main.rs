//! Integration tests of foco-sender over the real NATS JetStream and Postgres on
//! this machine, with a real control App and fake SMS providers.

mod adapters;
mod compliance;
mod crash;
mod delivery_api;
mod failover;
mod handler;
mod harness;
mod kill;
mod limits;
mod metrics;
mod pipeline;
mod providers;
mod receipts;
mod store;
mod validity;
