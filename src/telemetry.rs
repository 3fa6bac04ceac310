//! Logging: one tracing subscriber for the whole process, text or JSON.
//!
//! Task and connector ids reach every line through tracing spans, so the format only has to
//! print the current span context.

use tracing_subscriber::filter::Directive;
use tracing_subscriber::{EnvFilter, fmt};

use crate::settings::{LogFormat, LogSettings};

/// Directives applied on top of any configured level, even `trace`. tokio-postgres logs every
/// statement's parameters at DEBUG (`tokio_postgres::query`): those are connector configs with
/// their secret API keys, and payment data. Nothing else it logs carries values.
const ALWAYS: &[&str] = &["tokio_postgres::query=info"];

/// The filter for `directives` (such as `info` or `tributary=debug`; `info` when they do not
/// parse), with [`ALWAYS`] on top.
pub fn filter_for(directives: &str) -> EnvFilter {
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|_| EnvFilter::new("info"));
    with_always(filter)
}

fn with_always(mut filter: EnvFilter) -> EnvFilter {
    for directive in ALWAYS {
        // A directive for the same target replaces the configured one: ours win.
        if let Ok(d) = directive.parse::<Directive>() {
            filter = filter.add_directive(d);
        }
    }
    filter
}

/// Installs the global subscriber; `RUST_LOG` wins over the configured level.
/// Safe to call more than once (later calls are ignored), which tests rely on.
pub fn init(settings: &LogSettings) {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => with_always(filter),
        Err(_) => filter_for(&settings.level),
    };
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    // An error only means a subscriber is already installed.
    let _ = result;
}
