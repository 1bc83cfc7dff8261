//! The `foco` binary: parse arguments, run, print errors.

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = foco_cli::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match foco_cli::run(cli, &mut stdout).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("foco: error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
