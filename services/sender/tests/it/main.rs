//! Integration tests of foco-sender over the real NATS JetStream and Postgres on
//! this machine, with a real control App and a fake SMS provider.

mod crash;
mod handler;
mod harness;
mod pipeline;
mod providers;
