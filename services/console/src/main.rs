//! The foco-console binary: configuration from the environment, then the
//! service until SIGTERM/SIGINT. All behaviour lives in the library.

use std::process::ExitCode;

use foco_console::{App, Config};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    foco_runtime::build_info::exit_if_version_requested("foco-console");
    foco_runtime::workers::runtime("foco-console").block_on(serve())
}

async fn serve() -> anyhow::Result<ExitCode> {
    let _telemetry = foco_runtime::telemetry::init("foco-console");
    let config = match Config::from_lookup(&foco_runtime::env::Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("foco-console: {error}");
            return Ok(ExitCode::from(2));
        }
    };
    let shutdown = CancellationToken::new();
    foco_runtime::shutdown::cancel_on_signal(shutdown.clone());
    let app = App::build(config, shutdown).await?;
    tracing::info!(
        http = %app.http_addr(),
        admin = %app.admin_addr(),
        workers = foco_runtime::workers::current(),
        "foco-console listening"
    );
    app.run().await?;
    Ok(ExitCode::SUCCESS)
}
