//! Bus isolation for tests (a random prefix whose streams are deleted afterwards)
//! and a private NATS server for tests that stop and restart the broker.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;

/// A random bus prefix; its streams are deleted when the value is dropped.
pub struct TestBus {
    pub prefix: String,
    pub nats_url: String,
}

impl TestBus {
    pub fn new() -> Self {
        Self::on(crate::nats_url())
    }

    pub fn on(nats_url: String) -> Self {
        Self {
            prefix: format!("t{}", crate::random_token(10)),
            nats_url,
        }
    }
}

impl Default for TestBus {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let prefix = self.prefix.to_ascii_uppercase();
        let url = self.nats_url.clone();
        let handle = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let connect = async_nats::ConnectOptions::new()
                    .connection_timeout(Duration::from_secs(2))
                    .connect(url);
                let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(3), connect).await
                else {
                    return;
                };
                let jetstream = async_nats::jetstream::new(client);
                // Every stream of the prefix, whatever foco-bus names them.
                let ours = format!("{prefix}_");
                let mut streams = Vec::new();
                let mut names = jetstream.stream_names();
                let listed = tokio::time::timeout(Duration::from_secs(3), async {
                    while let Some(Ok(name)) = names.next().await {
                        if name.starts_with(&ours) {
                            streams.push(name);
                        }
                    }
                })
                .await;
                if listed.is_err() {
                    return;
                }
                for stream in streams {
                    let _ = tokio::time::timeout(
                        Duration::from_secs(3),
                        jetstream.delete_stream(stream),
                    )
                    .await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A nats-server child process with JetStream, on a fixed port so that it can be
/// stopped and started again at the same address.
pub struct PrivateNats {
    pub port: u16,
    store: tempfile::TempDir,
    /// The server's configuration file, for settings that have no flag.
    config_file: Option<PathBuf>,
    child: Option<Child>,
}

impl PrivateNats {
    /// Starts a server and waits until it accepts connections.
    pub async fn start() -> Self {
        Self::start_configured(None).await
    }

    /// Starts a server that refuses messages over `max_payload` bytes (the
    /// default is 1 MiB; nats-server has no flag for it, only a setting).
    pub async fn start_with_max_payload(max_payload: usize) -> Self {
        Self::start_configured(Some(format!("max_payload: {max_payload}\n"))).await
    }

    /// Starts a server with `config` as its configuration file (e.g. an
    /// `authorization` block); the port, store and JetStream come from flags.
    /// A client without credentials must still be let in (`no_auth_user`):
    /// that is how readiness is checked and a `TestBus` cleans up.
    pub async fn start_with_config(config: &str) -> Self {
        Self::start_configured(Some(config.to_owned())).await
    }

    async fn start_configured(config: Option<String>) -> Self {
        // The port has to outlive the process, so it is chosen here; the listener
        // is released just before the server binds it.
        let port = crate::free_port();
        let store = tempfile::tempdir().expect("temporary JetStream store");
        let config_file = config.map(|config| {
            let path = store.path().join("nats-server.conf");
            std::fs::write(&path, config).expect("write the nats-server configuration");
            path
        });
        let mut nats = Self {
            port,
            store,
            config_file,
            child: None,
        };
        nats.restart().await;
        nats
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and store, and waits until it
    /// accepts connections.
    pub async fn restart(&mut self) {
        self.stop();
        let mut command = Command::new(nats_server_binary(&["FOCO_NATS_SERVER"]));
        if let Some(config_file) = &self.config_file {
            command.arg("-c").arg(config_file);
        }
        let child = command
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server (is it on PATH?)");
        self.child = Some(child);
        let url = self.url();
        crate::wait_for(
            "private nats-server to accept connections",
            Duration::from_secs(10),
            || {
                let url = url.clone();
                async move {
                    let client = async_nats::connect(url).await.ok()?;
                    // A raw API request rather than `query_account`, whose reply
                    // async-nats 0.51 cannot parse from nats-server 2.9 (Debian's).
                    client
                        .request("$JS.API.INFO", "".into())
                        .await
                        .ok()
                        .map(|_| ())
                }
            },
        )
        .await;
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The nats-server tests start: the first of `variables` that is set, else
/// `nats-server` on `PATH`.
pub(crate) fn nats_server_binary(variables: &[&str]) -> PathBuf {
    variables
        .iter()
        .find_map(std::env::var_os)
        .map_or_else(|| PathBuf::from("nats-server"), PathBuf::from)
}
