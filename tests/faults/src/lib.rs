//! `make faults`: Foco under faults, end to end. The four service binaries run as
//! processes, configured by environment as in production, on a NATS server and a
//! database path of the suite's own; steady signed webhooks go in while the suite
//! kills each service in turn, stops NATS, takes PostgreSQL away (closed, or
//! silent), and makes the provider fail and throttle. For every fault it prints
//! webhooks accepted, SMS delivered, lost, duplicated, recorded unknown, and the
//! worst end-to-end latency; lost and duplicated must be zero.
//!
//! `foco-faults` runs every fault with production-like durations; the `faults`
//! test runs a reduced, fast set inside `make test`. Loopback only; nothing here
//! is used by production code.

pub mod cluster;
pub mod provider;
pub mod suite;
