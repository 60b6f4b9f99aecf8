//! Logging: `tracing` to standard error, filtered by the configured directive.

use tracing_subscriber::EnvFilter;

pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|e| {
        eprintln!("warning: invalid log filter ({e}); using `info`");
        EnvFilter::new("info")
    });
    // `try_init` so tests that build several applications in one process do not panic.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
