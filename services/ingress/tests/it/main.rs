//! Integration tests of foco-ingress against the real NATS JetStream and Postgres
//! on loopback, with a real control service in-process. Each test has its own
//! database and bus prefix, so they run in parallel.

mod accept;
mod callbacks;
mod harness;
mod lifecycle;
mod limits;
mod presets;
mod refusals;
mod replays;
mod trace_context;
