//! Child processes the benchmark starts, killed when their guard is dropped (also
//! when the orchestrator panics or is interrupted), and the ports they listen on.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;

/// A running child process; SIGKILL and reap on drop.
pub struct ChildGuard {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl ChildGuard {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn_logged(name: &str, command: Command, log: &Path) -> anyhow::Result<Self> {
        Self::spawn(name, command, log, false)
    }

    /// Starts `command` with a pipe on stdout (read it with [`Self::first_line`]);
    /// stderr goes to `log`.
    pub fn spawn_piped(name: &str, command: Command, log: &Path) -> anyhow::Result<Self> {
        Self::spawn(name, command, log, true)
    }

    fn spawn(name: &str, mut command: Command, log: &Path, piped: bool) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("open log {}", log.display()))?;
        let stdout = if piped {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone()?)
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(file)
            .spawn()
            .with_context(|| format!("start {name} ({:?})", command.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            log: log.to_owned(),
            child,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The first line the child prints (its address), within `timeout`.
    pub async fn first_line(&mut self, timeout: Duration) -> anyhow::Result<String> {
        let stdout = self
            .child
            .stdout
            .take()
            .context("the child's stdout is not piped")?;
        let read = tokio::task::spawn_blocking(move || {
            use std::io::BufRead as _;
            let mut line = String::new();
            std::io::BufReader::new(stdout).read_line(&mut line)?;
            Ok::<_, std::io::Error>(line.trim().to_owned())
        });
        let line = tokio::time::timeout(timeout, read)
            .await
            .with_context(|| format!("{} printed nothing within {timeout:?}", self.name))???;
        anyhow::ensure!(
            !line.is_empty(),
            "{} exited before it was ready{}",
            self.name,
            self.log_hint()
        );
        Ok(line)
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last lines of its log, for error messages.
    pub fn log_hint(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!(" (log {}):\n{tail}", self.log.display())
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on loopback now. The services are configured by environment, so
/// the port must be chosen before they start; they bind it at once, and the
/// benchmark waits for their `/readyz`, never for a fixed time.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("reserve a port")?;
    Ok(listener.local_addr()?.port())
}
