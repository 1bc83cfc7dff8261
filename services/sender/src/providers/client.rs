//! The one HTTP client every provider adapter uses: rustls with the ring provider
//! passed in explicitly (no process-wide default to install or race on), the
//! platform's trust roots, no redirects, a whole-request timeout, and the SSRF
//! resolver.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use super::guard::GuardedResolver;

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("could not configure TLS")]
    Tls(#[source] rustls::Error),
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
}

pub fn build_http_client(
    timeout: Duration,
    allow_private_hosts: bool,
) -> Result<reqwest::Client, ClientBuildError> {
    let crypto = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(crypto)
        .with_safe_default_protocol_versions()
        .map_err(ClientBuildError::Tls)?
        .with_platform_verifier()
        .map_err(ClientBuildError::Tls)?
        .with_no_client_auth();
    // reqwest is built without HTTP/2 here, so only offer HTTP/1.1.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        // A redirect could lead to an address the guard never saw.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .dns_resolver(GuardedResolver::new(allow_private_hosts))
        .user_agent(concat!("foco-sender/", env!("CARGO_PKG_VERSION")))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(ClientBuildError::Http)
}
