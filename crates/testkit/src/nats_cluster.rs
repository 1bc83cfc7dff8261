//! A JetStream cluster of three nats-server processes on loopback, as
//! production runs the bus (file storage, `sync_interval: always`), whose nodes
//! can be killed and started again on their own store.
//!
//! The binary is `FOCO_NATS_CLUSTER_SERVER`, else `FOCO_NATS_SERVER`, else
//! `nats-server` on PATH; it must be 2.12 or later (`scripts/test.sh` and
//! `make faults` point to the release pinned in `scripts/nats-server.sh`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The oldest nats-server this cluster is run with.
const MINIMUM_VERSION: (u32, u32) = (2, 12);
/// How long a started node may take to be healthy (its streams caught up).
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);

struct Node {
    name: String,
    client_port: u16,
    monitor_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct NatsCluster {
    binary: PathBuf,
    nodes: Vec<Node>,
    _store: tempfile::TempDir,
}

impl NatsCluster {
    /// Starts three nodes and waits until each is healthy (a JetStream meta
    /// leader is elected and the node is current with it).
    pub async fn start() -> Self {
        let binary = server_binary();
        let store = tempfile::tempdir().expect("temporary JetStream stores");
        let ports: Vec<[u16; 3]> = (0..3)
            .map(|_| [crate::free_port(), crate::free_port(), crate::free_port()])
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|[_, cluster, _]| format!("nats-route://127.0.0.1:{cluster}"))
            .collect();
        let mut nodes = Vec::new();
        for (index, [client_port, cluster_port, monitor_port]) in ports.into_iter().enumerate() {
            let name = format!("n{}", index + 1);
            let dir = store.path().join(&name);
            std::fs::create_dir_all(&dir).expect("a node's store");
            let config = dir.join("nats-server.conf");
            std::fs::write(
                &config,
                format!(
                    "server_name: {name}\n\
                     listen: 127.0.0.1:{client_port}\n\
                     http: 127.0.0.1:{monitor_port}\n\
                     jetstream {{\n  store_dir: \"{store}\"\n  sync_interval: always\n}}\n\
                     cluster {{\n  name: foco-test\n  listen: 127.0.0.1:{cluster_port}\n  routes: [{routes}]\n}}\n",
                    store = dir.join("jetstream").display(),
                    routes = routes.join(", "),
                ),
            )
            .expect("write a node's configuration");
            nodes.push(Node {
                name,
                client_port,
                monitor_port,
                config,
                child: None,
            });
        }
        let mut cluster = Self {
            binary,
            nodes,
            _store: store,
        };
        for index in 0..cluster.nodes.len() {
            cluster.spawn(index);
        }
        for index in 0..cluster.nodes.len() {
            cluster.wait_healthy(index).await;
        }
        cluster
    }

    /// Every node's client URL, comma-separated (as `NATS_URL` takes them).
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server name of node `index` (0, 1 or 2), as stream info reports it.
    pub fn name(&self, index: usize) -> &str {
        &self.nodes[index].name
    }

    /// The index of the node that leads `stream` now, if one does (none while
    /// a new leader is being elected).
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let urls: Vec<String> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .map(|node| format!("nats://127.0.0.1:{}", node.client_port))
            .collect();
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(urls)
            .await
            .ok()?;
        let reply = tokio::time::timeout(
            Duration::from_secs(2),
            client.request(format!("$JS.API.STREAM.INFO.{stream}"), "".into()),
        )
        .await
        .ok()?
        .ok()?;
        let info: serde_json::Value = serde_json::from_slice(&reply.payload).ok()?;
        let leader = info.pointer("/cluster/leader")?.as_str()?;
        self.nodes.iter().position(|node| node.name == leader)
    }

    /// SIGKILL of node `index`; its store is kept.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts node `index` again on its store and waits until it is healthy:
    /// back in the cluster, with every stream and consumer it holds caught up.
    pub async fn restart(&mut self, index: usize) {
        self.kill(index);
        self.spawn(index);
        self.wait_healthy(index).await;
    }

    fn spawn(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        let child = Command::new(&self.binary)
            .arg("-c")
            .arg(&node.config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("start {}: {error}", self.binary.display()));
        node.child = Some(child);
    }

    /// Waits for the node's `/healthz`, which answers 200 only once JetStream is
    /// up and every stream and consumer assigned to the node is current.
    async fn wait_healthy(&self, index: usize) {
        let node = &self.nodes[index];
        let monitor = SocketAddr::from(([127, 0, 0, 1], node.monitor_port));
        crate::wait_for(
            &format!("nats-server {} to be healthy", node.name),
            HEALTHY_TIMEOUT,
            || async move {
                match crate::try_http_get(monitor, "/healthz").await {
                    Ok((200, _)) => Some(()),
                    _ => None,
                }
            },
        )
        .await;
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}

/// The configured nats-server, checked to be recent enough for the cluster
/// settings production uses.
fn server_binary() -> PathBuf {
    let binary = crate::nats::nats_server_binary(&["FOCO_NATS_CLUSTER_SERVER", "FOCO_NATS_SERVER"]);
    let output = Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|error| panic!("run {} --version: {error}", binary.display()));
    let text = String::from_utf8_lossy(&output.stdout);
    let version = parse_version(&text);
    assert!(
        version.is_some_and(|version| version >= MINIMUM_VERSION),
        "the JetStream cluster needs nats-server {}.{} or later; {} says {:?}. \
         Set FOCO_NATS_CLUSTER_SERVER (scripts/nats-server.sh installs the pinned release)",
        MINIMUM_VERSION.0,
        MINIMUM_VERSION.1,
        binary.display(),
        text.trim()
    );
    binary
}

/// (major, minor) of `nats-server: v2.14.2`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let version = text.trim().rsplit(['v', ' ']).next()?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn versions_are_read_from_the_servers_own_words() {
        assert_eq!(parse_version("nats-server: v2.14.2\n"), Some((2, 14)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert_eq!(parse_version("something else"), None);
    }
}
