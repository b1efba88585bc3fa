use mh_server::LogFormat;
use tracing_subscriber::EnvFilter;

/// Logs go to standard error so that commands keep standard output for their results. The level
/// comes from `RUST_LOG` (e.g. `RUST_LOG=debug`), `info` by default.
pub fn init(format: LogFormat, terminal: bool) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(terminal).init(),
    }
}
