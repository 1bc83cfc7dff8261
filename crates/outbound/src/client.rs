//! The HTTP client for account-supplied URLs: rustls with the ring provider
//! passed in explicitly (no process-wide default to install or race on), the
//! platform's trust roots, no redirects, no retries, no proxy, a whole-request
//! timeout, and the SSRF resolver.

use std::sync::Arc;
use std::time::Duration;

use rustls_platform_verifier::BuilderVerifierExt;

use crate::guard::GuardedResolver;

#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    #[error("could not configure TLS")]
    Tls(#[source] rustls::Error),
    #[error("could not build the HTTP client")]
    Http(#[source] reqwest::Error),
}

/// `user_agent` names the calling service (`foco-sender/0.1.0`).
pub fn build_http_client(
    timeout: Duration,
    allow_private_hosts: bool,
    user_agent: &str,
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
        // reqwest's default policy retries only HTTP/2 refusals, and this client
        // speaks HTTP/1.1; but it still copies every request's headers in case it
        // might. Allowing no retry at all skips the copy.
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .dns_resolver(GuardedResolver::new(allow_private_hosts))
        // Through a proxy from HTTP_PROXY, HTTPS_PROXY or ALL_PROXY, the proxy would
        // resolve and connect to the destination, and the guard would only see
        // the proxy's address. Destinations are reached directly; egress restrictions
        // belong to the network (see docs/operations.md).
        .no_proxy()
        .user_agent(user_agent)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(ClientBuildError::Http)
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::TcpListener;
    use std::process::Command;

    use super::*;
    use crate::guard::is_blocked;

    /// Run on its own, and by `proxy_variables_do_not_route_around_the_guard` in
    /// a process whose environment names a proxy.
    #[tokio::test]
    async fn a_url_resolving_to_loopback_is_refused() {
        let client = build_http_client(Duration::from_secs(2), false, "foco-test").unwrap();
        let error = client
            .get("http://localhost:9/")
            .send()
            .await
            .expect_err("the guard refuses loopback");
        assert!(is_blocked(&error), "refused by the guard, not by {error:?}");
    }

    /// The environment is the process's, so the proxy variables are set for a
    /// child process running the test above, never in this one.
    #[test]
    fn proxy_variables_do_not_route_around_the_guard() {
        let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
        proxy.set_nonblocking(true).unwrap();
        let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
        let mut child = Command::new(std::env::current_exe().unwrap());
        child.args([
            "--exact",
            "client::tests::a_url_resolving_to_loopback_is_refused",
            "--nocapture",
        ]);
        for name in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            child.env(name, &proxy_url);
            child.env(name.to_ascii_lowercase(), &proxy_url);
        }
        child.env_remove("NO_PROXY").env_remove("no_proxy");
        let output = child.output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("1 passed"), "the test ran: {stdout}");
        let connected = proxy.accept();
        assert!(
            matches!(&connected, Err(error) if error.kind() == ErrorKind::WouldBlock),
            "nothing connected to the proxy: {connected:?}"
        );
    }
}
