//! Integration tests of foco-control against the real Postgres and NATS on
//! loopback; each test gets its own database and bus prefix.

mod api_keys;
mod auth;
mod backlog;
mod bus_topology;
mod endpoints;
mod harness;
mod health;
mod messages;
mod messaging;
mod notify;
mod presets;
mod resolve;
mod samples;
mod scopes;
mod secrets;
mod templates;
mod tls;
mod upserts;
mod validation;
