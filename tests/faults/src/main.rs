//! `foco-faults`: every fault of the suite, with the table. Settings (env):
//! `FOCO_FAULTS_RATE` [100 webhooks/s], `FOCO_FAULTS_SECONDS` [40 s of load per
//! fault], `FOCO_FAULTS_OUTAGE` [20 s of NATS or Postgres away],
//! `FOCO_FAULTS_PROVIDER_OUTAGE` [60 s of 503, then 30 s of 429],
//! `FOCO_FAULTS_BIN_DIR` [this binary's directory], `FOCO_FAULTS_KEEP_LOGS`,
//! `FOCO_FAULTS_ONLY` [all; or a comma-separated list of `none`, `kill-ingress`,
//! `kill-rules`, `kill-sender`, `kill-control`, `nats`, `postgres-down`,
//! `postgres-stalled`, `provider`, `delayed`, `neighbour`, `rolling`,
//! `nats-nodes`]. `FOCO_NATS_CLUSTER_SERVER`: nats-server 2.12 or later for the
//! three-node bus (`make faults` sets it).
//! Exits non-zero when any SMS was lost or duplicated.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use foco_faults::suite::{self, Fault, Settings};

fn env_u64(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .with_context(|| format!("{name}={text:?} is not a whole number")),
        _ => Ok(default),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bin_dir = match std::env::var_os("FOCO_FAULTS_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => std::env::current_exe()?
            .parent()
            .context("this binary's directory")?
            .to_owned(),
    };
    let outage = Duration::from_secs(env_u64("FOCO_FAULTS_OUTAGE", 20)?);
    let provider_outage = Duration::from_secs(env_u64("FOCO_FAULTS_PROVIDER_OUTAGE", 60)?);
    let load_seconds = env_u64("FOCO_FAULTS_SECONDS", 40)?;
    let faults = match std::env::var("FOCO_FAULTS_ONLY") {
        Ok(list) if !list.trim().is_empty() => {
            let mut chosen = Vec::new();
            for key in list.split(',').map(str::trim) {
                let fault = Fault::all()
                    .into_iter()
                    .find(|fault| fault.key() == key)
                    .with_context(|| format!("FOCO_FAULTS_ONLY: no fault is called {key:?}"))?;
                chosen.push(fault);
            }
            chosen
        }
        _ => Fault::all(),
    };
    let settings = Settings {
        bin_dir,
        faults,
        rate: env_u64("FOCO_FAULTS_RATE", 100)?,
        load_seconds,
        outage,
        provider_outage,
        cart_delay: Duration::from_secs(10),
        settle: Duration::from_secs(300),
        neighbour_latency_bound: Some(Duration::from_secs(3)),
    };
    println!(
        "foco-faults: {} faults, {} webhooks/s for {} s each (longer where a fault lasts longer)",
        settings.faults.len(),
        settings.rate,
        settings.load_seconds
    );
    let rows = suite::run(&settings).await?;
    print!("{}", suite::table(&rows));
    if rows.iter().all(suite::Row::passed) {
        println!("foco-faults: zero lost, zero duplicated");
        Ok(())
    } else {
        anyhow::bail!("foco-faults: SMS were lost or duplicated, or a check failed")
    }
}
