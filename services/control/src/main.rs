//! The foco-control binary: configuration from the environment, then the App.

// A faster allocator than the system one under many concurrent requests.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    foco_runtime::build_info::exit_if_version_requested("foco-control");
    foco_runtime::workers::runtime("foco-control").block_on(serve())
}

async fn serve() -> anyhow::Result<()> {
    let command = match std::env::args().nth(1).as_deref() {
        Some("bus-topology") => Some(foco_control::bus_topology::bus_topology().await),
        Some("bus-permissions") => Some(foco_control::bus_topology::bus_permissions()),
        _ => None,
    };
    if let Some(result) = command {
        match result {
            Ok(printed) => {
                print!("{printed}");
                return Ok(());
            }
            Err(error) => {
                eprintln!("foco-control: {}", foco_runtime::error_chain(&error));
                std::process::exit(1);
            }
        }
    }
    let _telemetry = match foco_runtime::telemetry::init("foco-control") {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("foco-control: {error}");
            std::process::exit(2);
        }
    };
    let config = match foco_control::Config::from_lookup(&foco_runtime::env::Env::process()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("foco-control: {error}");
            std::process::exit(2);
        }
    };
    let Some(app) = foco_runtime::shutdown::build_until_signal(|shutdown| {
        foco_control::App::build(config, shutdown)
    })
    .await
    else {
        return Ok(());
    };
    let app = app?;
    tracing::info!(
        grpc = %app.grpc_addr(),
        admin = %app.admin_addr(),
        workers = foco_runtime::workers::current(),
        "foco-control listening"
    );
    app.run().await?;
    Ok(())
}
