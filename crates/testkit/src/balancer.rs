//! A TCP load balancer on loopback in front of several replicas of one service,
//! as a Kubernetes Service is in front of a Deployment's pods: each new
//! connection goes to the next backend in turn; a backend taken out (a pod
//! that is terminating and has left the endpoints) gets no new connections, and
//! the connections it already has stay open until one side closes them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Backends {
    ready: Vec<SocketAddr>,
    next: usize,
}

impl Backends {
    fn pick(&mut self) -> Option<SocketAddr> {
        if self.ready.is_empty() {
            return None;
        }
        let backend = self.ready[self.next % self.ready.len()];
        self.next = self.next.wrapping_add(1);
        Some(backend)
    }
}

pub struct Balancer {
    addr: SocketAddr,
    backends: Arc<Mutex<Backends>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Listens on an OS-chosen loopback port, spreading connections over
    /// `backends`.
    pub async fn start(backends: impl IntoIterator<Item = SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the balancer");
        let addr = listener.local_addr().expect("the balancer's address");
        let backends = Arc::new(Mutex::new(Backends {
            ready: backends.into_iter().collect(),
            next: 0,
        }));
        let chosen = backends.clone();
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let backend = chosen.lock().unwrap_or_else(PoisonError::into_inner).pick();
                // No backend ready: the connection is refused, as a Service
                // without endpoints refuses it.
                if let Some(backend) = backend {
                    tokio::spawn(relay(client, backend));
                }
            }
        });
        Self {
            addr,
            backends,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops giving `backend` new connections.
    pub fn remove(&self, backend: SocketAddr) {
        self.lock().ready.retain(|ready| *ready != backend);
    }

    /// Gives `backend` new connections again.
    pub fn add(&self, backend: SocketAddr) {
        let mut backends = self.lock();
        if !backends.ready.contains(&backend) {
            backends.ready.push(backend);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Backends> {
        self.backends.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Bytes both ways until either side closes; a backend that refuses the
/// connection closes the client's.
async fn relay(mut client: TcpStream, backend: SocketAddr) {
    let Ok(mut upstream) = TcpStream::connect(backend).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// A backend that answers each connection with its own name.
    async fn named(name: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let _ = stream.write_all(name.as_bytes()).await;
            }
        });
        addr
    }

    async fn answer(balancer: &Balancer) -> String {
        let mut stream = TcpStream::connect(balancer.addr()).await.unwrap();
        let mut text = String::new();
        let _ = stream.read_to_string(&mut text).await;
        text
    }

    #[tokio::test]
    async fn connections_go_round_the_ready_backends_only() {
        let (a, b) = (named("a").await, named("b").await);
        let balancer = Balancer::start([a, b]).await;
        let mut seen = vec![answer(&balancer).await, answer(&balancer).await];
        seen.sort();
        assert_eq!(seen, ["a", "b"]);

        balancer.remove(a);
        for _ in 0..3 {
            assert_eq!(answer(&balancer).await, "b");
        }
        balancer.remove(b);
        assert_eq!(answer(&balancer).await, "", "no backend: closed at once");
        balancer.add(a);
        assert_eq!(answer(&balancer).await, "a");
    }
}
