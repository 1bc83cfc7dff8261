//! A TCP proxy on loopback in front of a server (PostgreSQL, typically), so that
//! a test can take it away from the code under test without stopping the
//! machine's server:
//!
//! - [`ProxyMode::Pass`]: bytes flow both ways.
//! - [`ProxyMode::Refuse`]: every open connection is closed at once and new ones are
//!   closed as soon as they are accepted: what clients see while a server is
//!   stopped (their transactions are rolled back by the server, as on a restart).
//! - [`ProxyMode::Stall`]: connections stay open and nothing flows either way, new
//!   ones included: a server (or a network path) that stops answering without
//!   closing anything. Back to `Pass`, the bytes flow again.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    Pass,
    Refuse,
    Stall,
}

pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<ProxyMode>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on an OS-chosen loopback port, relaying to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (mode, _) = watch::channel(ProxyMode::Pass);
        let modes = mode.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mode = modes.subscribe();
                if *mode.borrow() == ProxyMode::Refuse {
                    drop(client);
                    continue;
                }
                tokio::spawn(relay(client, upstream, mode));
            }
        });
        Self { addr, mode, accept }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn set(&self, mode: ProxyMode) {
        self.mode.send_replace(mode);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Closes every relayed connection.
        self.mode.send_replace(ProxyMode::Refuse);
    }
}

/// Waits until bytes may flow; `false` once the connection must close.
async fn may_flow(mode: &mut watch::Receiver<ProxyMode>) -> bool {
    match mode.wait_for(|mode| *mode != ProxyMode::Stall).await {
        Ok(mode) => *mode == ProxyMode::Pass,
        Err(_) => false,
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<ProxyMode>) {
    if !may_flow(&mut mode).await {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let upstream_half = pump(client_read, server_write, mode.clone());
    let downstream_half = pump(server_read, client_write, mode);
    // Either side closing (or the proxy refusing) ends both.
    tokio::select! {
        () = upstream_half => {}
        () = downstream_half => {}
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<ProxyMode>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        if !may_flow(&mut mode).await {
            return;
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        let Ok(count) = read else { return };
        if count == 0 {
            return;
        }
        // Bytes already read are held while stalled, and dropped on refusal.
        if !may_flow(&mut mode).await || to.write_all(&buffer[..count]).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0_u8; 64];
                    while let Ok(count) = socket.read(&mut buffer).await {
                        if count == 0 || socket.write_all(&buffer[..count]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
        stream.write_all(b"ping").await.ok()?;
        let mut answer = vec![0_u8; 4];
        match tokio::time::timeout(within, stream.read_exact(&mut answer)).await {
            Ok(Ok(_)) => Some(answer),
            _ => None,
        }
    }

    #[tokio::test]
    async fn passes_stalls_and_refuses() {
        let proxy = Proxy::start(echo_server().await).await;
        let mut stream = TcpStream::connect(proxy.addr()).await.unwrap();
        let answer = round_trip(&mut stream, Duration::from_secs(5)).await;
        assert_eq!(answer.as_deref(), Some(&b"ping"[..]));

        proxy.set(ProxyMode::Stall);
        assert_eq!(
            round_trip(&mut stream, Duration::from_millis(300)).await,
            None,
            "nothing flows while stalled"
        );
        proxy.set(ProxyMode::Pass);
        let mut held = vec![0_u8; 4];
        tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut held))
            .await
            .expect("the held bytes flow again")
            .unwrap();
        assert_eq!(&held, b"ping");

        proxy.set(ProxyMode::Refuse);
        let mut rest = Vec::new();
        // Ends (at EOF or with a reset) rather than waiting for more bytes.
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the open connection is closed");
        let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(round_trip(&mut refused, Duration::from_secs(2)).await, None);
    }
}
