//! `GET /metrics`: Prometheus text, from memory only — it answers while the database is down
//! (`/_health` is where the database's state shows). See [`crate::monitoring`] for where each
//! part comes from.

use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{HttpResponse, web};

use super::AppState;
use crate::monitoring::{self, text};

/// Where the metrics are served: at the root, where Prometheus looks, not under the API.
pub const PATH: &str = "/metrics";

/// The build's version and, when it was known at build time, its git commit.
pub const BUILD_INFO_METRIC: &str = "tributary_build_info";

/// Serves the metrics.
#[utoipa::path(get, path = "/metrics", tag = "metrics", operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format",
        content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let mut body = monitoring::recorder()
        .map(|h| h.render())
        .unwrap_or_default();
    monitoring::connectors::render(&mut body);
    state.task_gauges.render(&mut body);
    render_pool(&state, &mut body);
    render_storage(&state, &mut body);
    render_build_info(&mut body);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body)
}

/// The connection pool, as deadpool counts it (memory only).
fn render_pool(state: &AppState, out: &mut String) {
    let status = state.storage.pool().status();
    for (name, value) in [
        ("tributary_db_pool_max_size", status.max_size),
        ("tributary_db_pool_size", status.size),
        (
            "tributary_db_pool_in_use",
            status.size.saturating_sub(status.available),
        ),
        ("tributary_db_pool_idle", status.available),
        ("tributary_db_pool_waiting", status.waiting),
    ] {
        text::single(out, name, "gauge", &[], value);
    }
}

/// The storage actor's counters.
fn render_storage(state: &AppState, out: &mut String) {
    let stats = state.storage.stats();
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    for (name, value) in [
        (
            "tributary_storage_transactions_total",
            load(&stats.transactions),
        ),
        ("tributary_storage_writes_total", load(&stats.writes)),
        (
            "tributary_storage_failed_writes_total",
            load(&stats.failed_writes),
        ),
    ] {
        text::single(out, name, "counter", &[], value);
    }
}

fn render_build_info(out: &mut String) {
    let mut labels = vec![("version".to_string(), env!("CARGO_PKG_VERSION").to_string())];
    if let Some(commit) = option_env!("TRIBUTARY_GIT_COMMIT") {
        labels.push(("commit".to_string(), commit.to_string()));
    }
    text::single(out, BUILD_INFO_METRIC, "gauge", &labels, 1);
}
