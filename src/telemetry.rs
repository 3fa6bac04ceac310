//! Logging and tracing: one tracing subscriber for the whole process — log lines (text or
//! JSON) on stderr and, when `[telemetry] otlp_endpoint` is set, spans exported over OTLP.
//!
//! Task and connector ids reach every line through tracing spans, so the format only has to
//! print the current span context. Text lines are coloured only when stderr is a terminal: a
//! log file or a collector reading a pipe gets plain text.
//!
//! Traces: OTLP over HTTP with protobuf bodies (`opentelemetry-otlp`'s blocking reqwest
//! client, called from the SDK's batch thread; no gRPC stack). A request carrying a W3C
//! `traceparent` header gets its span made a child of the caller's (tracing-actix-web reads it
//! through the global propagator set here); every task run is a span of its own carrying the
//! connector and task ids. The [`Telemetry`] guard flushes what is pending when dropped.

use std::io::IsTerminal;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::filter::Directive;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::settings::{LogFormat, LogSettings, TelemetrySettings};

/// Directives applied on top of any configured level, even `trace`. tokio-postgres logs every
/// statement's parameters at DEBUG (`tokio_postgres::query`): those are connector configs with
/// their secret API keys, and payment data. Nothing else it logs carries values.
const ALWAYS: &[&str] = &["tokio_postgres::query=info"];

/// The spans (and span events) exported, whatever the log level.
const TRACES_LEVEL: &str = "info";

/// The OTLP/HTTP path of traces, added to a base endpoint.
const TRACES_PATH: &str = "/v1/traces";

/// The OTLP exporter could not be built from the settings.
#[derive(Debug, thiserror::Error)]
#[error("key `telemetry.otlp_endpoint` ({endpoint}): {message}")]
pub struct TelemetryError {
    endpoint: String,
    message: String,
}

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

/// Keeps the trace exporter alive; dropping it flushes the spans not sent yet and stops it.
#[must_use = "dropping the guard stops the trace export"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("warning: flushing traces at shutdown failed: {e}");
        }
    }
}

/// The OTLP endpoint of traces for a base URL (`http://collector:4318` →
/// `http://collector:4318/v1/traces`), as the `OTEL_EXPORTER_OTLP_ENDPOINT` convention has it.
fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with(TRACES_PATH) {
        base.to_string()
    } else {
        format!("{base}{TRACES_PATH}")
    }
}

/// The tracer provider exporting to the configured collector, if one is set.
fn tracer_provider(
    settings: &TelemetrySettings,
) -> Result<Option<SdkTracerProvider>, TelemetryError> {
    if settings.otlp_endpoint.is_empty() {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces_url(&settings.otlp_endpoint))
        .build()
        .map_err(|e| TelemetryError {
            endpoint: settings.otlp_endpoint.clone(),
            message: e.to_string(),
        })?;
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .build();
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build(),
    ))
}

/// Installs the global subscriber; `RUST_LOG` wins over the configured level. Call it outside
/// any async runtime (the exporter's blocking HTTP client must not be created inside one).
/// Safe to call more than once (later calls install nothing), which tests rely on.
pub fn init(log: &LogSettings, telemetry: &TelemetrySettings) -> Result<Telemetry, TelemetryError> {
    let filter = match EnvFilter::try_from_default_env() {
        Ok(filter) => with_always(filter),
        Err(_) => filter_for(&log.level),
    };
    let lines = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let lines = match log.format {
        LogFormat::Text => lines.boxed(),
        LogFormat::Json => lines.json().with_current_span(true).boxed(),
    };
    let provider = tracer_provider(telemetry)?;
    // Traces have a filter of their own: the log level (`warn`, say) must not switch them
    // off, and a `trace` level must not attach statements' parameters to exported spans
    // (events become span events): [`ALWAYS`] holds for them as for the lines.
    let traces = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(telemetry.service_name.clone()))
            .with_filter(filter_for(TRACES_LEVEL))
    });
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let installed = tracing_subscriber::registry()
        .with(lines.with_filter(filter))
        .with(traces)
        .try_init();
    // An error only means a subscriber is already installed: this exporter would get nothing.
    Ok(Telemetry {
        provider: provider.filter(|_| installed.is_ok()),
    })
}
