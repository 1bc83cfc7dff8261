use foco_rules::{App, Config};
use tokio_util::sync::CancellationToken;

// A faster allocator than the system one under many concurrent requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    foco_runtime::build_info::exit_if_version_requested("foco-rules");
    let _telemetry = match foco_runtime::telemetry::init("foco-rules") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("foco-rules: {error}");
            std::process::exit(2);
        }
    };
    let config = match Config::from_lookup(&foco_runtime::env::Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("foco-rules: {error}");
            std::process::exit(2);
        }
    };
    let shutdown = CancellationToken::new();
    foco_runtime::shutdown::cancel_on_signal(shutdown.clone());
    // A start still waiting for its dependencies ends at the signal.
    let Some(app) = shutdown
        .clone()
        .run_until_cancelled_owned(App::build(config, shutdown))
        .await
    else {
        return Ok(());
    };
    let app = app?;
    tracing::info!(admin = %app.admin_addr(), "foco-rules started");
    app.run().await?;
    tracing::info!("foco-rules stopped");
    Ok(())
}
