//! `GET /metrics`: Prometheus text. The runtime's counters come from the `metrics` recorder;
//! the task gauges (tasks by connector and status) are read from the database at each scrape,
//! so they are right even for tasks that ended long ago.

use std::sync::OnceLock;

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::AppState;
use super::error::ApiError;
use crate::storage::queries;

/// Where the metrics are served: at the root, where Prometheus looks, not under the API.
pub const PATH: &str = "/metrics";

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it).
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| PrometheusBuilder::new().install_recorder().ok())
        .as_ref()
}

/// Serves the metrics.
#[utoipa::path(get, path = "/metrics", tag = "metrics", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let counts = queries::tasks::count_by_status(state.storage.pool()).await?;
    for (connector_id, status, n) in counts {
        metrics::gauge!("tributary_tasks", "connector_id" => connector_id, "status" => status)
            .set(n as f64);
    }
    let stats = state.storage.stats();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    metrics::gauge!("tributary_storage_transactions").set(load(&stats.transactions) as f64);
    metrics::gauge!("tributary_storage_writes").set(load(&stats.writes) as f64);
    metrics::gauge!("tributary_storage_failed_writes").set(load(&stats.failed_writes) as f64);
    let body = recorder().map(|h| h.render()).unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}
