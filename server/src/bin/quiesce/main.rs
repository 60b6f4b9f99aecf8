//! `quiesce`: maintenance from upgrade pipelines. Talks to a running Quiesce server over HTTP
//! with an API token and turns the answers into exit codes a pipeline can branch on.
//!
//! The token comes from the environment (`QUIESCE_TOKEN`) or a file (`--token-file`), never
//! from a flag: flags show in `ps` and in CI logs. The server is `--url` or `QUIESCE_URL`.
//!
//! Exit codes (documented in README.md, "Maintenance from pipelines"):
//! 0 done (or skipped: nothing to do), 1 failed (the window failed, the server erred or could not
//! be reached), 2 usage or authorisation (bad arguments, no token, token refused, role too low),
//! 3 refused because another maintenance window is active, 4 timed out waiting.

mod api;
mod sse;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use api::{Client, Failure};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_REFUSED: u8 = 3;
pub const EXIT_TIMED_OUT: u8 = 4;

#[derive(Parser)]
#[command(
    name = "quiesce",
    version,
    about = "Maintenance mode from upgrade pipelines (talks to a Quiesce server)"
)]
struct Cli {
    /// The server's base URL.
    #[arg(long, env = "QUIESCE_URL", default_value = "http://127.0.0.1:3000", global = true)]
    url: String,
    /// A file holding the API token (instead of the QUIESCE_TOKEN environment variable).
    #[arg(long, global = true)]
    token_file: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start, end and inspect maintenance windows.
    #[command(subcommand)]
    Maintenance(Maintenance),
}

#[derive(Subcommand)]
enum Maintenance {
    /// Opens a maintenance window: every running mirror in scope is paused at a checkpoint.
    Enable(EnableArgs),
    /// Ends the active window: the mirrors it paused resume. Nothing active: nothing to do.
    Disable(WaitArgs),
    /// Shows the active window (or "no maintenance window is active").
    Status {
        /// Print the server's JSON answer instead of a summary.
        #[arg(long)]
        json: bool,
    },
    /// Tells the active window to stop waiting for one mirror's snapshot (id or name).
    SkipWait { mirror: String },
}

#[derive(Args)]
struct EnableArgs {
    /// Why (recorded in the history).
    #[arg(long)]
    reason: String,
    /// `all`, `mirrors:NAME,NAME…` or `peers:NAME,NAME…` (names or ids).
    #[arg(long, default_value = "all")]
    scope: String,
    /// Skip (exit 0) when the newest window already recorded this version; the new window
    /// records it otherwise.
    #[arg(long, value_name = "VERSION")]
    skip_if_version: Option<String>,
    /// The version to record on the window (default: the --skip-if-version value).
    #[arg(long = "record-version", value_name = "VERSION")]
    record_version: Option<String>,
    /// Skip (exit 0) when enabling would pause nothing (no running or snapshotting mirror in scope).
    #[arg(long)]
    skip_if_no_mirrors: bool,
    #[command(flatten)]
    wait: WaitArgs,
}

#[derive(Args)]
struct WaitArgs {
    /// Follow the live stream until the window is enabled (or disabled), printing progress.
    #[arg(long)]
    wait: bool,
    /// How long --wait waits: `90s`, `15m`, `1h` or seconds.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    timeout: Duration,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a duration like 90s, 15m or 1h"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => return Err(format!("{s:?}: the unit must be s, m or h")),
    };
    if secs == 0 || secs > 7 * 24 * 3600 {
        return Err("the timeout must be between 1 second and 7 days".into());
    }
    Ok(Duration::from_secs(secs))
}

/// The API token: `--token-file` if given, else `QUIESCE_TOKEN`.
fn token(file: Option<&std::path::Path>) -> Result<String, Failure> {
    let raw = match file {
        Some(path) => {
            use std::io::Read;
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(4096).read_to_string(&mut text))
                .map_err(|e| Failure::usage(format!("cannot read the token file {}: {e}", path.display())))?;
            text
        }
        None => std::env::var("QUIESCE_TOKEN").map_err(|_| {
            Failure::usage(
                "no API token: set QUIESCE_TOKEN or pass --token-file (create one on your Account page)",
            )
        })?,
    };
    let t = raw.trim().to_string();
    if t.is_empty() {
        return Err(Failure::usage("the API token is empty"));
    }
    Ok(t)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("quiesce: cannot start: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            eprintln!("quiesce: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let token = token(cli.token_file.as_deref())?;
    let client = Client::new(&cli.url, &token)?;
    let Command::Maintenance(command) = cli.command;
    match command {
        Maintenance::Status { json } => api::status(&client, json).await,
        Maintenance::Enable(args) => {
            let version = args.record_version.as_deref().or(args.skip_if_version.as_deref());
            api::enable(
                &client,
                api::Enable {
                    reason: &args.reason,
                    scope: &args.scope,
                    skip_if_version: args.skip_if_version.as_deref(),
                    version,
                    skip_if_no_mirrors: args.skip_if_no_mirrors,
                    wait: args.wait.wait.then_some(args.wait.timeout),
                },
            )
            .await
        }
        Maintenance::Disable(w) => api::disable(&client, w.wait.then_some(w.timeout)).await,
        Maintenance::SkipWait { mirror } => api::skip_wait(&client, &mirror).await,
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
