//! TLS for the gRPC listener: the certificate chain and key come from PEM files
//! and are read again when either file changes, so a renewed certificate (cert-
//! manager, certbot) is served to new connections without a restart.
//!
//! The files are looked at during handshakes, at most once per
//! [`RELOAD_CHECK_INTERVAL`]: a change costs two `stat` calls, no task or watcher.
//! A pair that does not load (a renewal caught half-written, a key that does not
//! match) leaves the previous certificate in service until the files change again.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use futures::Stream;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

/// How often, at most, handshakes look for new files.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// A client that has not finished its handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// `FOCO_CONTROL_TLS_CERT` and `FOCO_CONTROL_TLS_KEY`: PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{0} holds no certificate")]
    NoCertificate(PathBuf),
    #[error("the key in {key} does not fit: {source}")]
    Key { key: PathBuf, source: rustls::Error },
    #[error("TLS set-up: {0}")]
    Config(#[from] rustls::Error),
}

/// What identifies the files' contents without reading them.
type Stamp = [(Option<SystemTime>, u64); 2];

struct Loaded {
    key: Arc<CertifiedKey>,
    stamp: Stamp,
    checked_at: Instant,
}

/// Serves the certificate last loaded from [`TlsFiles`], reloading it when the
/// files change.
pub struct ReloadingCertificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    loaded: RwLock<Loaded>,
}

impl std::fmt::Debug for ReloadingCertificate {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReloadingCertificate")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCertificate {
    /// Loads the files now: a certificate that does not load stops the start.
    pub fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamp = stamp(&files);
        let key = load_certified_key(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            loaded: RwLock::new(Loaded {
                key,
                stamp,
                checked_at: Instant::now(),
            }),
        })
    }

    fn current(&self) -> Arc<CertifiedKey> {
        {
            let loaded = self
                .loaded
                .read()
                .unwrap_or_else(|poison| poison.into_inner());
            if loaded.checked_at.elapsed() < RELOAD_CHECK_INTERVAL {
                return loaded.key.clone();
            }
        }
        let mut loaded = self
            .loaded
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        if loaded.checked_at.elapsed() >= RELOAD_CHECK_INTERVAL {
            loaded.checked_at = Instant::now();
            let stamp = stamp(&self.files);
            if stamp != loaded.stamp {
                loaded.stamp = stamp;
                match load_certified_key(&self.files, &self.provider) {
                    Ok(key) => {
                        tracing::info!(cert = %self.files.cert.display(), "tls certificate reloaded");
                        loaded.key = key;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "tls certificate not reloaded; serving the previous one");
                    }
                }
            }
        }
        loaded.key.clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert, &files.key].map(|path| match std::fs::metadata(path) {
        Ok(metadata) => (metadata.modified().ok(), metadata.len()),
        Err(_) => (None, 0),
    })
}

fn load_certified_key(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Read { path, source }
    };
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .map_err(read_error(&files.cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error(&files.cert))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate(files.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(read_error(&files.key))?;
    let key_error = |source| TlsError::Key {
        key: files.key.clone(),
        source,
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(key_error)?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(key_error)?;
    Ok(Arc::new(certified))
}

/// The server side: HTTP/2 only (gRPC), TLS 1.2 and 1.3, the certificate from
/// `files`.
pub fn acceptor(files: TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCertificate::load(files, provider.clone())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Connections accepted on `listener`, each handed on once its TLS handshake is
/// done. Handshakes run concurrently (a slow client holds up no other) and at
/// most [`MAX_HANDSHAKES`] at once; failed ones are logged and dropped. Stops
/// accepting when `shutdown` fires.
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    shutdown: CancellationToken,
) -> impl Stream<Item = io::Result<TlsStream<TcpStream>>> {
    let (sender, receiver) = mpsc::channel(MAX_HANDSHAKES);
    tokio::spawn(accept_loop(listener, acceptor, sender, shutdown));
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|stream| (Ok(stream), receiver))
    })
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    sender: mpsc::Sender<TlsStream<TcpStream>>,
    shutdown: CancellationToken,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause rather than spin.
                tracing::warn!(%error, "grpc accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let sender = sender.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = sender.send(tls).await;
                }
                Ok(Err(error)) => tracing::debug!(%peer, %error, "tls handshake failed"),
                Err(_) => tracing::debug!(%peer, "tls handshake timed out"),
            }
        });
    }
}
