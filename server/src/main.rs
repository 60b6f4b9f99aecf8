//! The `server` binary: parse the command line, set up telemetry, then either serve or run a
//! one-shot command. Everything substantial lives in the library half of this crate.

use std::process::ExitCode;

use clap::Parser;
use server::config::{Cli, Command};
use server::{cli, startup::Application, telemetry};

/// mimalloc instead of glibc's malloc: under `wrk -c 32` on the maintenance page, glibc's
/// allocator (its arena locks and consolidation) took about a quarter of the server's CPU time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Cli::parse();
    telemetry::init(&args.log);
    let result = match &args.command {
        None | Some(Command::Serve) => serve(&args).await,
        Some(Command::User(cmd)) => cli::user(&args, cmd).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One clear line, no backtrace: this is what an operator reads.
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: &Cli) -> Result<(), server::startup::StartupError> {
    let app = Application::build(args.config()).await?;
    app.run_until_stopped(server::startup::shutdown_signal()).await
}
