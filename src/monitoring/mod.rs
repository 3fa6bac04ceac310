//! Metrics kept in memory, so that `/metrics` answers from memory alone — also while the
//! database is down (the health route is where the database's state shows).
//!
//! Three sources make up a scrape ([`crate::api::metrics`]):
//! - the process-wide `metrics` recorder ([`recorder`]): HTTP request counts and latencies,
//!   storage batch distributions, and every counter carrying a `connector_id` label, which
//!   [`connectors`] keeps aside to label with the connector's current name and provider;
//! - the task gauges, refreshed in the background from the database ([`tasks`]);
//! - what the service can read in memory at the scrape: pool status, storage counters,
//!   build information ([`text`] writes them).

pub mod connectors;
pub mod http;
pub mod tasks;
pub mod text;

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, SharedString, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

/// The process-wide recorder: the Prometheus one, with per-connector counters routed to
/// [`connectors`].
struct Recorder {
    prometheus: PrometheusRecorder,
}

impl metrics::Recorder for Recorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_counter(key, unit, description)
    }

    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_gauge(key, unit, description)
    }

    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.prometheus.describe_histogram(key, unit, description)
    }

    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        match connectors::counter(key) {
            Some(counter) => counter,
            None => self.prometheus.register_counter(key, metadata),
        }
    }

    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.prometheus.register_gauge(key, metadata)
    }

    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.prometheus.register_histogram(key, metadata)
    }
}

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls reuse it). `None` when another
/// recorder was installed first (an embedding program's own).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let prometheus = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(http::DURATION_METRIC.to_string()),
                    http::DURATION_BUCKETS,
                )
                .ok()?
                .build_recorder();
            let handle = prometheus.handle();
            metrics::set_global_recorder(Recorder { prometheus }).ok()?;
            Some(handle)
        })
        .as_ref()
}
