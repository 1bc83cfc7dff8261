//! The gRPC API over TLS: a client that trusts the certificate calls it at an
//! `https://` URL, others are refused, and a certificate replaced on disk is
//! served to new connections without a restart.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use foco_proto::v1::ListAccountsRequest;
use rustls::pki_types::{CertificateDer, ServerName};
use secrecy::SecretString;
use tokio::net::TcpStream;

use crate::harness::TestControl;

struct Certificate {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

/// A self-signed certificate for 127.0.0.1, with its own subject so that two of
/// them are told apart as trust anchors.
fn self_signed(common_name: &str) -> Certificate {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Certificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// Replaces `path` at once, as a renewal tool would (write aside, rename).
fn replace(path: &Path, contents: &str) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

fn install(files: &foco_control::TlsFiles, certificate: &Certificate) {
    replace(&files.key, &certificate.key_pem);
    replace(&files.cert, &certificate.cert_pem);
}

/// The leaf certificate a new connection to `address` is served, checked
/// against `anchors`.
async fn served_certificate(address: &str, anchors: &[&Certificate]) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for anchor in anchors {
        roots.add(CertificateDer::from(anchor.der.clone())).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (_, session) = tls.get_ref();
    assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
    session.peer_certificates().unwrap()[0].to_vec()
}

async fn list_accounts(url: &str, ca_file: Option<&Path>) -> Result<(), tonic::Status> {
    let mut api = foco_control_client::connect_with_ca(
        url,
        ca_file,
        &SecretString::from(foco_harness::ADMIN_KEY),
    )
    .unwrap();
    api.list_accounts(ListAccountsRequest {}).await.map(drop)
}

#[tokio::test]
async fn clients_trusting_the_certificate_call_over_tls_and_a_renewal_is_served_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| -> PathBuf { dir.path().join(name) };
    let files = foco_control::TlsFiles {
        cert: path("tls.crt"),
        key: path("tls.key"),
    };
    let first = self_signed("foco control first");
    let second = self_signed("foco control second");
    install(&files, &first);
    std::fs::write(path("first-ca.pem"), &first.cert_pem).unwrap();
    std::fs::write(path("second-ca.pem"), &second.cert_pem).unwrap();

    let control = TestControl::start_with_tls(files.clone()).await;
    let url = control.grpc_url.clone();
    let address = url.strip_prefix("https://").unwrap().to_owned();

    list_accounts(&url, Some(&path("first-ca.pem")))
        .await
        .unwrap();
    // Not the CA of this certificate; no TLS at all.
    assert!(
        list_accounts(&url, Some(&path("second-ca.pem")))
            .await
            .is_err()
    );
    assert!(list_accounts(&url, None).await.is_err());
    let plain = format!("http://{address}");
    assert!(list_accounts(&plain, None).await.is_err());
    assert_eq!(
        served_certificate(&address, &[&first, &second]).await,
        first.der
    );

    install(&files, &second);
    let deadline = Instant::now() + foco_control::RELOAD_CHECK_INTERVAL + Duration::from_secs(10);
    while served_certificate(&address, &[&first, &second]).await != second.der {
        assert!(
            Instant::now() < deadline,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    list_accounts(&url, Some(&path("second-ca.pem")))
        .await
        .unwrap();

    // A broken renewal keeps the last good certificate in service.
    std::fs::write(&files.cert, "not a certificate").unwrap();
    tokio::time::sleep(foco_control::RELOAD_CHECK_INTERVAL + Duration::from_millis(200)).await;
    assert_eq!(
        served_certificate(&address, &[&first, &second]).await,
        second.der
    );
    list_accounts(&url, Some(&path("second-ca.pem")))
        .await
        .unwrap();
    control.stop().await;
}
