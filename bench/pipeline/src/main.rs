//! foco-bench-pipeline: `make bench-pipeline` (see the crate documentation).
//! Without arguments it runs the benchmark; `fake-provider` and `load` are the
//! processes the benchmark starts from this same binary.
//!
//! Settings (environment, defaults in brackets): `FOCO_BENCH_MODES`
//! [all: closed,open,delayed,api,bare,floor] (`bare` and `floor` add the bare
//! and floor pipes to the closed and open modes), `FOCO_BENCH_SECONDS` [15] of
//! load per phase, `FOCO_BENCH_RATES` [1000,3000,5000,8000] events/s,
//! `FOCO_BENCH_CONNECTIONS` [64], `FOCO_BENCH_BODY_BYTES` [1024],
//! `FOCO_BENCH_DRAIN_SECONDS` [30] to wait for a backlog after the load,
//! `FOCO_BENCH_WARMUP` [500] webhooks before each phase,
//! `FOCO_BENCH_DELAYED_RATE` [1000] carts/s, `FOCO_BENCH_DELAYED_SECONDS`
//! [FOCO_BENCH_SECONDS], `FOCO_BENCH_DELAY_SECONDS` [10],
//! `FOCO_BENCH_API_CLIENTS` [32] SendMessage callers in the `api` mode,
//! `FOCO_BENCH_BIN_DIR` [this binary's directory], `FOCO_BENCH_LOG_DIR` [a new
//! temporary directory]. Other `FOCO_*` variables and `RUST_LOG` reach the
//! services unchanged.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use foco_bench_pipeline::deployment::{
    CART_RULE_WHEN, Context, Foco, Kind, ORDER_RULE_WHEN, Pipeline,
};
use foco_bench_pipeline::fake_provider::FakeProviderClient;
use foco_bench_pipeline::load::{self, Plan};
use foco_bench_pipeline::phases::{self, PhaseResult};
use foco_bench_pipeline::processes::ChildGuard;
use foco_bench_pipeline::settings::Settings;
use foco_bench_pipeline::sms::{CART_TEMPLATE, ORDER_TEMPLATE};
use foco_bench_pipeline::{fake_provider, report};

// The allocator the Foco service binaries use.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `cargo bench`-style `--bench` arguments are ignored.
    let mut arguments = std::env::args().skip(1).filter(|arg| arg != "--bench");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match arguments.next().as_deref() {
        None | Some("run") => runtime.block_on(orchestrate()),
        Some("fake-provider") => runtime.block_on(fake_provider::serve()),
        Some("load") => {
            let spec = std::env::var(load::SPEC_ENV)
                .with_context(|| format!("{} is not set", load::SPEC_ENV))?;
            let report = runtime.block_on(load::generate(serde_json::from_str(&spec)?))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Some(other) => {
            anyhow::bail!("unknown subcommand {other:?} (none, run, fake-provider, load)")
        }
    }
}

async fn orchestrate() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    // Interrupted, the run is dropped: every child process is killed, the
    // database dropped and the streams deleted by their guards.
    tokio::select! {
        result = run(settings) => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
    }
}

fn random_token(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random)
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let log_root = match &settings.log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tempfile::Builder::new()
            .prefix("foco-bench-pipeline-")
            .tempdir()?
            .keep(),
    };
    let exe = std::env::current_exe()?;
    let mut fake_command = std::process::Command::new(&exe);
    fake_command.arg("fake-provider");
    let mut fake_process = ChildGuard::spawn_piped(
        "fake provider",
        fake_command,
        &log_root.join("fake-provider.log"),
    )?;
    let fake_url = fake_process.first_line(Duration::from_secs(10)).await?;
    let http = reqwest::Client::builder().build()?;
    let nats_url = foco_testkit::nats_url();
    let nats = async_nats::connect(&nats_url)
        .await
        .with_context(|| format!("connect to NATS at {nats_url} (run scripts/deps.sh)"))?;
    let context = Context {
        exe,
        log_root,
        fake: FakeProviderClient::new(fake_url, http.clone()),
        fake_pid: fake_process.pid(),
        http,
        nats,
        admin_key: format!("bench-admin-{}", random_token(18)),
        encryption_key: base64::engine::general_purpose::STANDARD
            .encode(rand::random::<[u8; 32]>()),
        webhook_secret: format!("bench-shopify-{}", random_token(12)),
        settings,
    };
    print_header(&context);

    let settings = &context.settings;
    let modes = settings.modes;
    let mut results = Vec::new();
    let mut failures = Vec::new();
    let mut number = 0;
    let runs = phase_list(settings);
    for (label, kind, plan) in runs {
        number += 1;
        match one_phase(&context, number, &label, kind, plan).await {
            Ok(result) => results.push(result),
            Err(error) => {
                let name = kind.name();
                println!("\n--- {label} on {name} FAILED: {error:#}");
                failures.push(format!("{label} on {name}"));
            }
        }
    }
    if !results.is_empty() {
        report::print_summary(&results, settings.drain);
    }
    if modes.api {
        number += 1;
        if let Err(error) = api_phase(&context, number).await {
            println!("\n--- messaging API FAILED: {error:#}");
            failures.push("messaging API".to_owned());
        }
    }
    println!(
        "\nlogs: {} (one directory per phase); whole run {:.0} s",
        context.log_root.display(),
        started.elapsed().as_secs_f64()
    );
    drop(fake_process);
    anyhow::ensure!(
        failures.is_empty(),
        "phases failed: {}",
        failures.join(", ")
    );
    Ok(())
}

/// The measured phases, in order: label, pipeline, load.
fn phase_list(settings: &Settings) -> Vec<(String, Kind, PlanFor)> {
    let modes = settings.modes;
    let mut kinds = vec![Kind::Foco];
    if modes.bare {
        kinds.push(Kind::Bare);
    }
    if modes.floor {
        kinds.push(Kind::Floor);
    }
    let mut runs: Vec<(String, Kind, PlanFor)> = Vec::new();
    if modes.closed {
        for kind in &kinds {
            runs.push(("closed loop".to_owned(), *kind, PlanFor::Closed));
        }
    }
    if modes.open {
        for rate in &settings.rates {
            for kind in &kinds {
                runs.push((format!("open loop {rate}/s"), *kind, PlanFor::Open(*rate)));
            }
        }
    }
    if modes.delayed {
        runs.push(("delayed jobs".to_owned(), Kind::Foco, PlanFor::Carts));
    }
    runs
}

/// The messaging API on a fresh, warmed-up Foco.
async fn api_phase(context: &Context, number: usize) -> anyhow::Result<()> {
    let settings = &context.settings;
    let mut pipeline = Pipeline::Foco(Box::new(
        Foco::start(context, &format!("{number:02}-messaging-api")).await?,
    ));
    phases::warm_up(
        context,
        &mut pipeline,
        &format!("w{number}"),
        settings.warmup,
    )
    .await?;
    let Pipeline::Foco(foco) = &pipeline else {
        anyhow::bail!("the messaging API needs Foco");
    };
    analyse_filled_tables(&foco.database.pool).await?;
    let result = foco_bench_pipeline::api::run(
        context,
        foco,
        settings.api_clients,
        settings.seconds,
        &format!("a{number}"),
    )
    .await?;
    foco_bench_pipeline::api::print(&result);
    Ok(())
}

#[derive(Debug, Clone, Copy)]
enum PlanFor {
    Closed,
    Open(u64),
    Carts,
}

/// Gives the tables the warm-up filled their statistics, as autovacuum keeps
/// them in a running system; this phase's database is minutes old. Without
/// them, statements planned while `messages` was nearly empty (foreign-key
/// checks among them, whose plans are kept) go on scanning the whole table for
/// every row. Tables still empty are left alone: statistics saying "empty"
/// would make plans cached now scan them for good as they fill.
async fn analyse_filled_tables(pool: &sqlx::PgPool) -> anyhow::Result<()> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(relname) FROM pg_class \
         WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace",
    )
    .fetch_all(pool)
    .await?;
    for table in tables {
        let filled: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {table})"
        )))
        .fetch_one(pool)
        .await?;
        if filled {
            sqlx::query(sqlx::AssertSqlSafe(format!("ANALYZE {table}")))
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// A phase on a fresh pipeline: start, warm up, measure, print, tear down.
async fn one_phase(
    context: &Context,
    number: usize,
    label: &str,
    kind: Kind,
    plan_for: PlanFor,
) -> anyhow::Result<PhaseResult> {
    let settings = &context.settings;
    let directory = format!(
        "{number:02}-{}-{}",
        label.replace([' ', '/'], "-"),
        kind.name().trim_end_matches(" pipe")
    );
    let setup_started = std::time::Instant::now();
    let mut pipeline = Pipeline::start(kind, context, &directory).await?;
    phases::warm_up(
        context,
        &mut pipeline,
        &format!("w{number}"),
        settings.warmup,
    )
    .await?;
    if let (PlanFor::Carts, Pipeline::Foco(foco)) = (plan_for, &pipeline) {
        let cart_url = foco.cart_url.clone();
        phases::warm_up_carts(
            context,
            &mut pipeline,
            &cart_url,
            &format!("c{number}"),
            settings.warmup,
        )
        .await?;
    }
    if let Some(database) = pipeline.database() {
        analyse_filled_tables(&database.pool).await?;
    }
    let url = pipeline.order_url().to_owned();
    let plan = match plan_for {
        PlanFor::Closed => Plan::Closed {
            url,
            seconds: settings.seconds as f64,
            max_requests: None,
        },
        PlanFor::Open(rate) => Plan::Open {
            url,
            rate,
            seconds: settings.seconds,
        },
        PlanFor::Carts => {
            let Pipeline::Foco(foco) = &pipeline else {
                anyhow::bail!("delayed jobs need Foco");
            };
            let delay_us = settings.delay.as_micros() as u64;
            Plan::Carts {
                url: foco.cart_url.clone(),
                rate: settings.delayed_rate,
                seconds: settings.delayed_seconds,
                delay_us,
                cancel_after_us: delay_us / 2,
            }
        }
    };
    let wait = match plan_for {
        PlanFor::Carts => settings.drain + settings.delay,
        _ => settings.drain,
    };
    let tag = format!("p{number}");
    let setup = setup_started.elapsed();
    let result = phases::measure(context, &mut pipeline, setup, label, &tag, plan).await?;
    report::print_phase(&result, wait);
    drop(pipeline);
    Ok(result)
}

fn print_header(context: &Context) {
    let settings = &context.settings;
    println!(
        "foco pipeline benchmark: {} cores, modes {}, {} connections, {} s of load a phase, drain wait {} s",
        foco_bench_pipeline::cpu::cores(),
        settings.modes.describe(),
        settings.connections,
        settings.seconds,
        settings.drain.as_secs(),
    );
    let rates: Vec<String> = settings.rates.iter().map(u64::to_string).collect();
    println!(
        "  open-loop rates {} events/s; delayed: {} carts/s for {} s, due after {} s, every second one cancelled {} s later",
        rates.join(", "),
        settings.delayed_rate,
        settings.delayed_seconds,
        settings.delay.as_secs(),
        settings.delay.as_secs_f64() / 2.0,
    );
    println!(
        "  webhooks: {}-byte JSON, Shopify preset (HMAC-SHA256 over the body, event id from X-Shopify-Event-Id), {} warm-up webhooks a phase",
        settings.body_bytes, settings.warmup
    );
    println!("  orders rule: when '{ORDER_RULE_WHEN}', body '{ORDER_TEMPLATE}'");
    println!(
        "  carts rule:  when '{CART_RULE_WHEN}', body '{CART_TEMPLATE}', key/cancel_key on the cart token"
    );
    println!(
        "  provider: http route to the fake provider at {}; services from {}",
        context.fake.url,
        settings.bin_dir.display()
    );
    let defaults: Vec<String> = foco_bench_pipeline::processes::SERVICE_DEFAULTS
        .iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !defaults.is_empty() {
        println!("  every service: {}", defaults.join(" "));
    }
    let inherited: Vec<String> = std::env::vars()
        .filter(|(name, _)| {
            (name.starts_with("FOCO_") && !name.starts_with("FOCO_BENCH_")) || name == "RUST_LOG"
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    if !inherited.is_empty() {
        println!(
            "  from your environment (the benchmark's own settings win): {}",
            inherited.join(" ")
        );
    }
    println!(
        "  every phase: fresh processes, database and bus prefix; logs in {}",
        context.log_root.display()
    );
}
