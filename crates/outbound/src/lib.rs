//! The one way Foco calls a URL that an account supplied (a provider route's
//! API, a status-webhook endpoint): an HTTP client whose resolver refuses
//! private, loopback and link-local destinations (`guard`), with TLS from the
//! platform's roots, no redirects, no retries and no proxy (`client`).
//!
//! It knows nothing of providers or webhooks; it must not grow a second way
//! around the guard.

mod client;
pub mod guard;

pub use client::{ClientBuildError, build_http_client};
