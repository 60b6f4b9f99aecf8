//! The `server` binary: parse the command line, set up telemetry, then either serve or run a
//! one-shot command. Everything substantial lives in the library half of this crate.

use std::process::ExitCode;

use clap::Parser;
use server::{config::Cli, startup::Application, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(&cli.log);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line, no backtrace: this is what an operator reads.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), server::startup::StartupError> {
    let config = cli.into_config();
    let app = Application::build(config).await?;
    app.run_until_stopped(server::startup::shutdown_signal())
        .await
}
