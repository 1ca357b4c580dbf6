//! Logging to stderr (never stdout, which belongs to the user's program), with a level
//! that can change while running.

use std::sync::OnceLock;

use napi_derive::napi;
use tracing::level_filters::LevelFilter;
use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, Registry};

use crate::error::{CodedError, IrohError};

// `Targets` rather than `EnvFilter`: the same `target=level,level` directives without
// span and field filters, and without the regex engine they need (about 1 MB of binary).
static FILTER: OnceLock<reload::Handle<Targets, Registry>> = OnceLock::new();

fn parse_filter(level: &str) -> Result<Targets, IrohError> {
    let level = level.trim();
    if level.is_empty() {
        return Err(IrohError::invalid_argument("the log level is empty"));
    }
    level.to_ascii_lowercase().parse::<Targets>().map_err(|e| {
        IrohError::invalid_argument(format!(
            "invalid log level {level:?} ({e}): use off, error, warn, info, debug, trace or directives like iroh=debug,warn"
        ))
    })
}

/// Installs the addon's subscriber with every level off; runs when the addon loads.
///
/// Why at load and not at the first `setLogLevel`: until some subscriber is global,
/// tracing hands every span entered and left to its `log` bridge (a dependency turns on
/// tracing's `log` feature), which cost a few percent of each packet's CPU. Once one is
/// global, the spans of callsites that are off cost next to nothing.
pub fn install_quiet() {
    filter();
}

fn filter() -> &'static reload::Handle<Targets, Registry> {
    FILTER.get_or_init(|| {
        let (layer, handle) = reload::Layer::new(Targets::new());
        let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
        // Another subscriber (e.g. a second copy of this addon) may already be global; then
        // our logs go there and the level is still ours to change.
        let _ = tracing_subscriber::registry().with(layer).with(fmt).try_init();
        handle
    })
}

/// Sets the log level (`off`, `error`, `warn`, `info`, `debug`, `trace`, or a directive
/// like `iroh=debug`). Call it as often as you like; logs go to stderr.
#[napi(catch_unwind)]
pub fn set_log_level(level: String) -> Result<(), CodedError> {
    let targets = parse_filter(&level)?;
    filter().reload(targets).map_err(|e| IrohError::new(crate::error::ErrorCode::Internal, e.to_string()))?;
    // Records of crates that log through `log` reach tracing through its bridge, which
    // passes only what `log`'s own level lets through: keep it in step.
    log::set_max_level(match LevelFilter::current().into_level() {
        None => log::LevelFilter::Off,
        Some(Level::ERROR) => log::LevelFilter::Error,
        Some(Level::WARN) => log::LevelFilter::Warn,
        Some(Level::INFO) => log::LevelFilter::Info,
        Some(Level::DEBUG) => log::LevelFilter::Debug,
        Some(_) => log::LevelFilter::Trace,
    });
    Ok(())
}

/// The old binding's name for `setLogLevel`.
#[napi(catch_unwind)]
pub fn init_logging(level: String) -> Result<(), CodedError> {
    set_log_level(level)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse() {
        for ok in ["off", "error", "WARN", "info", "debug", "trace", "iroh=debug,warn"] {
            assert!(parse_filter(ok).is_ok(), "{ok}");
        }
        assert!(parse_filter("").is_err());
        assert!(parse_filter("iroh=loud").is_err());
    }
}
