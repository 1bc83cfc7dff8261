//! Runtime plumbing every Foco service shares: the async runtime its `main`
//! runs on, reading configuration from the environment, telemetry set-up, the
//! admin endpoints (`/healthz`, `/readyz`, `/metrics`), shutdown on
//! SIGTERM/SIGINT, and the one table that maps error kinds to HTTP and gRPC
//! statuses, the build's version and revision, and (feature `postgres`) the
//! Postgres pool, and the group-commit batcher of the hot paths' writes.
//!
//! No business logic lives here, and nothing here is global except the tracing
//! subscriber, which a process installs once in `main`.

pub mod admin;
pub mod batch;
pub mod build_info;
pub mod env;
pub mod error_kind;
pub mod latency;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod serve;
pub mod shutdown;
pub mod telemetry;
pub mod workers;

pub use admin::{AdminServer, Readiness};
pub use error_kind::ErrorKind;

/// `error: cause: cause`, for the one log line at a boundary: the error and
/// every source below it.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
