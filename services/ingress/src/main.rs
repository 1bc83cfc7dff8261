//! The foco-ingress binary: configuration from the environment, then the service
//! until SIGTERM/SIGINT. All behaviour lives in the library.

use std::process::ExitCode;

use foco_ingress::{App, Config};
use tokio_util::sync::CancellationToken;

// A faster allocator than the system one under many concurrent requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    foco_runtime::build_info::exit_if_version_requested("foco-ingress");
    let _telemetry = match foco_runtime::telemetry::init("foco-ingress") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("foco-ingress: {error}");
            std::process::exit(2);
        }
    };
    let config = match Config::from_lookup(&foco_runtime::env::Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("foco-ingress: {error}");
            return Ok(ExitCode::from(2));
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
        return Ok(ExitCode::SUCCESS);
    };
    let app = app?;
    tracing::info!(http = %app.http_addr(), admin = %app.admin_addr(), "foco-ingress listening");
    app.run().await?;
    Ok(ExitCode::SUCCESS)
}
