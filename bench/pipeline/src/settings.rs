//! Benchmark settings, from defaults then environment. A value that does not parse
//! stops the benchmark with a message naming the variable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};

/// What to run. `bare` and `floor` run the bare and floor pipes beside Foco in
/// the closed and open modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub closed: bool,
    pub open: bool,
    pub delayed: bool,
    /// The messaging API: SendMessage calls against the sender's ceiling.
    pub api: bool,
    pub bare: bool,
    pub floor: bool,
}

impl Modes {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut modes = Self {
            closed: false,
            open: false,
            delayed: false,
            api: false,
            bare: false,
            floor: false,
        };
        for mode in text
            .split(',')
            .map(str::trim)
            .filter(|mode| !mode.is_empty())
        {
            match mode {
                "closed" => modes.closed = true,
                "open" => modes.open = true,
                "delayed" => modes.delayed = true,
                "api" => modes.api = true,
                "bare" => modes.bare = true,
                "floor" => modes.floor = true,
                "all" => {
                    modes = Self {
                        closed: true,
                        open: true,
                        delayed: true,
                        api: true,
                        bare: true,
                        floor: true,
                    }
                }
                other => bail!(
                    "FOCO_BENCH_MODES: unknown mode {other:?} (closed, open, delayed, api, bare, floor, all)"
                ),
            }
        }
        if !(modes.closed || modes.open || modes.delayed || modes.api) {
            bail!("FOCO_BENCH_MODES names no mode to run (closed, open, delayed, api)");
        }
        Ok(modes)
    }

    pub fn describe(&self) -> String {
        let names = [
            (self.closed, "closed"),
            (self.open, "open"),
            (self.delayed, "delayed"),
            (self.api, "api"),
            (self.bare, "bare"),
            (self.floor, "floor"),
        ];
        names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub modes: Modes,
    /// Load time of each closed- and open-loop phase.
    pub seconds: u64,
    /// Open-loop rates, events/s.
    pub rates: Vec<u64>,
    pub connections: usize,
    pub body_bytes: usize,
    /// How long to wait after the load for the backlog to be delivered.
    pub drain: Duration,
    /// Warm-up webhooks before each measured phase (connections, caches).
    pub warmup: u64,
    /// Scheduled jobs per second in the delayed mode; half are cancelled.
    pub delayed_rate: u64,
    pub delayed_seconds: u64,
    pub delay: Duration,
    /// Concurrent SendMessage callers in the api mode.
    pub api_clients: usize,
    /// Where the service binaries are (target/release).
    pub bin_dir: PathBuf,
    /// Service logs; a fresh temporary directory, kept, unless set.
    pub log_dir: Option<PathBuf>,
}

fn parse_env<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(name) {
        Err(_) => Ok(default),
        Ok(text) if text.trim().is_empty() => Ok(default),
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("{name}={text:?} is not a valid value")),
    }
}

impl Settings {
    pub fn from_env() -> anyhow::Result<Self> {
        let seconds: u64 = parse_env("FOCO_BENCH_SECONDS", 15)?;
        let rates = match std::env::var("FOCO_BENCH_RATES") {
            Ok(text) if !text.trim().is_empty() => text
                .split(',')
                .map(|rate| {
                    rate.trim()
                        .parse::<u64>()
                        .ok()
                        .filter(|rate| *rate > 0)
                        .with_context(|| format!("FOCO_BENCH_RATES: {rate:?} is not a rate"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            _ => vec![1000, 3000, 5000, 8000],
        };
        let bin_dir = match std::env::var_os("FOCO_BENCH_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::current_exe()
                .context("where this binary is")?
                .parent()
                .context("this binary's directory")?
                .to_owned(),
        };
        let settings = Self {
            modes: Modes::parse(
                &std::env::var("FOCO_BENCH_MODES").unwrap_or_else(|_| "all".to_owned()),
            )?,
            seconds,
            rates,
            connections: parse_env("FOCO_BENCH_CONNECTIONS", 64)?,
            body_bytes: parse_env("FOCO_BENCH_BODY_BYTES", 1024)?,
            drain: Duration::from_secs(parse_env("FOCO_BENCH_DRAIN_SECONDS", 30)?),
            warmup: parse_env("FOCO_BENCH_WARMUP", 500)?,
            delayed_rate: parse_env("FOCO_BENCH_DELAYED_RATE", 1000)?,
            delayed_seconds: parse_env("FOCO_BENCH_DELAYED_SECONDS", seconds)?,
            delay: Duration::from_secs(parse_env("FOCO_BENCH_DELAY_SECONDS", 10)?),
            api_clients: parse_env("FOCO_BENCH_API_CLIENTS", 32)?,
            bin_dir,
            log_dir: std::env::var_os("FOCO_BENCH_LOG_DIR").map(PathBuf::from),
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.seconds == 0 || self.seconds > 600 {
            bail!("FOCO_BENCH_SECONDS must be 1 to 600");
        }
        if self.connections == 0 || self.connections > 1024 {
            bail!("FOCO_BENCH_CONNECTIONS must be 1 to 1024");
        }
        if self.rates.iter().any(|rate| *rate > 100_000) {
            bail!("FOCO_BENCH_RATES: at most 100000 events/s");
        }
        if !(256..=65_536).contains(&self.body_bytes) {
            bail!("FOCO_BENCH_BODY_BYTES must be 256 to 65536");
        }
        if self.delayed_rate == 0 || self.delayed_rate > 100_000 {
            bail!("FOCO_BENCH_DELAYED_RATE must be 1 to 100000");
        }
        if self.delayed_seconds == 0 || self.delayed_seconds > 600 {
            bail!("FOCO_BENCH_DELAYED_SECONDS must be 1 to 600");
        }
        if self.delay < Duration::from_secs(2) || self.delay > Duration::from_secs(600) {
            bail!("FOCO_BENCH_DELAY_SECONDS must be 2 to 600");
        }
        if self.drain > Duration::from_secs(3600) {
            bail!("FOCO_BENCH_DRAIN_SECONDS must be at most 3600");
        }
        for binary in [
            "foco-control",
            "foco-ingress",
            "foco-rules",
            "foco-sender",
            "foco-bench-bare-pipe",
            "foco-bench-floor-pipe",
        ] {
            let path = self.bin_dir.join(binary);
            if !path.is_file() {
                bail!(
                    "{} not found: build with `cargo build --release --bins` (or set FOCO_BENCH_BIN_DIR)",
                    path.display()
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_subsets_and_refuse_unknown_names() {
        let modes = Modes::parse("closed, bare").unwrap();
        assert!(modes.closed && modes.bare && !modes.open && !modes.delayed && !modes.floor);
        assert_eq!(modes.describe(), "closed,bare");
        assert_eq!(Modes::parse("open,floor").unwrap().describe(), "open,floor");
        assert_eq!(
            Modes::parse("all").unwrap().describe(),
            "closed,open,delayed,api,bare,floor"
        );
        let api = Modes::parse("api").unwrap();
        assert!(api.api && !api.closed && !api.open && !api.delayed && !api.bare);
        assert!(Modes::parse("closed,fast").is_err());
        assert!(Modes::parse("bare").is_err());
        assert!(Modes::parse("floor").is_err());
    }
}
