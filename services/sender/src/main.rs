//! foco-sender binary: configuration from the environment, then the `App` until
//! SIGTERM/SIGINT.

use foco_sender::{App, Config};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    foco_runtime::build_info::exit_if_version_requested("foco-sender");
    foco_runtime::workers::runtime("foco-sender").block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let _telemetry = match foco_runtime::telemetry::init("foco-sender") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("foco-sender: {error}");
            std::process::exit(2);
        }
    };
    let config = match Config::from_lookup(&foco_runtime::env::Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("foco-sender: {error}");
            std::process::exit(2);
        }
    };
    let Some(app) =
        foco_runtime::shutdown::build_until_signal(|shutdown| App::build(config, shutdown)).await
    else {
        return Ok(());
    };
    let app = app?;
    tracing::info!(
        admin = %app.admin_addr(),
        workers = foco_runtime::workers::current(),
        "foco-sender started"
    );
    app.run().await?;
    tracing::info!("foco-sender stopped");
    Ok(())
}
