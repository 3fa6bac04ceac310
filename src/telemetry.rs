//! Logging: one tracing subscriber for the whole process, text or JSON.
//!
//! Task and connector ids reach every line through tracing spans, so the format only has to
//! print the current span context.

use tracing_subscriber::{EnvFilter, fmt};

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber; `RUST_LOG` wins over the configured level.
/// Safe to call more than once (later calls are ignored), which tests rely on.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // An error only means a subscriber is already installed.
    let _ = result;
}
