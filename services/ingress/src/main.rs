//! The foco-ingress binary: configuration from the environment, then the service
//! until SIGTERM/SIGINT. All behaviour lives in the library.

use std::process::ExitCode;

use foco_ingress::{App, Config};

// A faster allocator than the system one under many concurrent requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<ExitCode> {
    foco_runtime::build_info::exit_if_version_requested("foco-ingress");
    foco_runtime::workers::runtime("foco-ingress").block_on(serve())
}

async fn serve() -> anyhow::Result<ExitCode> {
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
    let Some(app) =
        foco_runtime::shutdown::build_until_signal(|shutdown| App::build(config, shutdown)).await
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let app = app?;
    tracing::info!(
        http = %app.http_addr(),
        admin = %app.admin_addr(),
        workers = foco_runtime::workers::current(),
        "foco-ingress listening"
    );
    app.run().await?;
    Ok(ExitCode::SUCCESS)
}
