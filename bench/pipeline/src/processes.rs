//! Child processes the benchmark starts, killed when their guard is dropped (also
//! when the orchestrator panics or is interrupted), the ports they listen on, and
//! [`Services`]: Foco's services as processes that can be killed and started
//! again by name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
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
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, as Kubernetes stops a pod, then waits up to `grace` for the
    /// process to exit: `Some(status)` if it did (else it is left running, to be
    /// killed when dropped).
    pub async fn terminate(&mut self, grace: Duration) -> anyhow::Result<Option<ExitStatus>> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.pid())?)
            .context("a child's pid is never 0")?;
        rustix::process::kill_process(pid, rustix::process::Signal::TERM)
            .with_context(|| format!("SIGTERM to {}", self.name))?;
        let deadline = tokio::time::Instant::now() + grace;
        while tokio::time::Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Ok(Some(status));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(None)
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

/// How long a service may take to answer its `/readyz` after it starts.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Foco's services as child processes sharing one environment (as an operator
/// configures them), each on an admin port of its own that it keeps when it is
/// started again. Dropping it kills every process.
pub struct Services {
    bin_dir: PathBuf,
    log_dir: PathBuf,
    env: Vec<(String, String)>,
    http: reqwest::Client,
    running: Vec<ChildGuard>,
    admin_ports: HashMap<String, u16>,
}

/// What every service gets where neither the benchmark nor your environment
/// chose: logs a run can be searched by, and one async worker per service, its
/// share of a small machine it shares with three others, NATS and PostgreSQL
/// (the Kubernetes manifests size it from the CPU request the same way).
pub const SERVICE_DEFAULTS: [(&str, &str); 2] = [
    ("FOCO_LOG_FORMAT", "json"),
    (foco_runtime::workers::WORKER_THREADS_ENV, "1"),
];

impl Services {
    /// `env`: what every service gets; each also gets `FOCO_ADMIN_LISTEN` and,
    /// unless set here or in `start`'s `extra`, [`SERVICE_DEFAULTS`].
    pub fn new(bin_dir: &Path, log_dir: &Path, env: Vec<(String, String)>) -> Self {
        Self {
            bin_dir: bin_dir.to_owned(),
            log_dir: log_dir.to_owned(),
            env,
            http: reqwest::Client::new(),
            running: Vec::new(),
            admin_ports: HashMap::new(),
        }
    }

    /// Starts `foco-<service>` as `name` (`rules`, or `rules-2` for a second
    /// replica) with `extra` on top of the shared environment, and waits for its
    /// `/readyz`. A name already running is an error.
    pub async fn start(
        &mut self,
        name: &str,
        service: &str,
        extra: &[(&str, String)],
    ) -> anyhow::Result<()> {
        anyhow::ensure!(self.pid(name).is_none(), "{name} is already running");
        let admin_port = match self.admin_ports.get(name) {
            Some(port) => *port,
            None => foco_testkit::free_port(),
        };
        self.admin_ports.insert(name.to_owned(), admin_port);
        let mut command = Command::new(self.bin_dir.join(format!("foco-{service}")));
        command
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .envs(extra.iter().map(|(key, value)| (*key, value)))
            .env("FOCO_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"));
        for (key, default) in SERVICE_DEFAULTS {
            let chosen = self.env.iter().any(|(name, _)| name == key)
                || extra.iter().any(|(name, _)| *name == key)
                || std::env::var_os(key).is_some();
            if !chosen {
                command.env(key, default);
            }
        }
        let log = self.log_dir.join(format!("{name}.log"));
        let mut guard = ChildGuard::spawn_logged(name, command, &log)?;
        wait_ready(&self.http, &mut guard, admin_port).await?;
        self.running.push(guard);
        Ok(())
    }

    /// Starts each service under its own name, one after the other.
    pub async fn start_all(&mut self, services: &[&str]) -> anyhow::Result<()> {
        for service in services {
            self.start(service, service, &[]).await?;
        }
        Ok(())
    }

    /// SIGKILL, no drain; `false` if `name` was not running.
    pub fn kill(&mut self, name: &str) -> bool {
        let Some(index) = self.running.iter().position(|guard| guard.name == name) else {
            return false;
        };
        drop(self.running.remove(index));
        true
    }

    /// Stops `name` as a rolling update does (SIGTERM, then at most `grace` to
    /// drain and exit): how it exited and how long it took; an error if it was
    /// not running or did not exit within `grace` (it is then killed).
    pub async fn terminate(
        &mut self,
        name: &str,
        grace: Duration,
    ) -> anyhow::Result<(ExitStatus, Duration)> {
        let index = self
            .running
            .iter()
            .position(|guard| guard.name == name)
            .with_context(|| format!("{name} is not running"))?;
        let started = std::time::Instant::now();
        let exited = self.running[index].terminate(grace).await;
        let guard = self.running.remove(index);
        match exited? {
            Some(status) => Ok((status, started.elapsed())),
            None => anyhow::bail!(
                "{name} did not exit within {grace:?} of SIGTERM{}",
                guard.log_hint()
            ),
        }
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.running
            .iter()
            .find(|guard| guard.name == name)
            .map(ChildGuard::pid)
    }

    /// (name, pid) of each running process.
    pub fn processes(&self) -> Vec<(String, u32)> {
        self.running
            .iter()
            .map(|guard| (guard.name.clone(), guard.pid()))
            .collect()
    }

    /// An error naming the process and its log when one of them has exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        for guard in &mut self.running {
            if let Some(status) = guard.exited() {
                anyhow::bail!("{} exited ({status}){}", guard.name, guard.log_hint());
            }
        }
        Ok(())
    }

    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The text of `name`'s `/metrics`.
    pub async fn metrics(&self, name: &str) -> anyhow::Result<String> {
        let port = self
            .admin_ports
            .get(name)
            .with_context(|| format!("{name} was never started"))?;
        Ok(self
            .http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .timeout(Duration::from_secs(5))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }
}

async fn wait_ready(
    http: &reqwest::Client,
    guard: &mut ChildGuard,
    admin_port: u16,
) -> anyhow::Result<()> {
    let url = format!("http://127.0.0.1:{admin_port}/readyz");
    let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = guard.exited() {
            anyhow::bail!(
                "{} exited at start ({status}){}",
                guard.name,
                guard.log_hint()
            );
        }
        let ready = http
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success());
        if ready {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "{} not ready within {READY_TIMEOUT:?}{}",
                guard.name,
                guard.log_hint()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
