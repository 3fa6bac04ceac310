//! The task gauges (tasks by connector and status), refreshed in the background.
//!
//! Ended tasks live only in the database, so the database is where their counts come from;
//! but a scrape must not wait on it (it would answer 503 in an outage, exactly when an operator
//! looks). A refresher runs the one counting query every `metrics.refresh_interval` (default
//! 15 s) and keeps the answer; a scrape renders the last answer, with whether the last refresh
//! succeeded and when one last did. Counting in the runtime instead would mean keeping a
//! second, incremental truth beside the durable statuses (coalesced writes, retried final
//! writes, cascading uninstalls and resets) that could drift from them; one `GROUP BY` every
//! 15 s costs nothing and cannot drift.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::{connectors, text};
use crate::storage::{Pool, queries};

/// Tasks by connector and status.
pub const TASKS_METRIC: &str = "tributary_tasks";
/// 1 when the last refresh of the task gauges succeeded, 0 otherwise.
pub const REFRESH_SUCCESS_METRIC: &str = "tributary_metrics_refresh_success";
/// When the task gauges were last refreshed successfully (Unix seconds).
pub const REFRESH_TIMESTAMP_METRIC: &str =
    "tributary_metrics_refresh_last_success_timestamp_seconds";

/// The last known counts.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    /// `(connector id, name, provider, status, count)`, as the database last answered.
    rows: Vec<queries::tasks::StatusCount>,
    /// Whether the last attempt succeeded.
    ok: bool,
    /// When an attempt last succeeded.
    last_success: Option<SystemTime>,
}

/// The gauges a scrape renders; cloned into every HTTP worker.
#[derive(Clone)]
pub struct TaskGauges {
    snapshot: watch::Receiver<Snapshot>,
}

/// Stops the refresher when dropped (the service stopped).
pub struct Refresher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Refresher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the refresher on the current runtime: a first refresh at once, then one every
/// `interval`, each given `timeout`.
pub fn start(pool: Pool, interval: Duration, timeout: Duration) -> (TaskGauges, Refresher) {
    let (tx, rx) = watch::channel(Snapshot::default());
    let task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            // Histograms are drained into buckets at a scrape; without scrapes their samples
            // would pile up.
            if let Some(handle) = super::recorder() {
                handle.run_upkeep();
            }
            let answer =
                tokio::time::timeout(timeout, queries::tasks::count_by_status(&pool)).await;
            tx.send_modify(|s| match answer {
                Ok(Ok(rows)) => {
                    s.rows = rows;
                    s.ok = true;
                    s.last_success = Some(SystemTime::now());
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "task gauges not refreshed; serving the last known counts");
                    s.ok = false;
                }
                Err(_) => {
                    tracing::warn!(?timeout, "task gauges not refreshed in time; serving the last known counts");
                    s.ok = false;
                }
            });
        }
    });
    (TaskGauges { snapshot: rx }, Refresher { task })
}

impl TaskGauges {
    /// Writes the gauges in the Prometheus text format. A connector uninstalled since the last
    /// refresh shows until the next one; a renamed one shows its current name at once.
    pub fn render(&self, out: &mut String) {
        let snapshot = self.snapshot.borrow();
        text::family(out, TASKS_METRIC, "gauge");
        for row in &snapshot.rows {
            // The runtime's labels are current (a rename shows at once); the database's serve
            // a connector the runtime did not start (an unknown provider).
            let (name, provider) = connectors::labels(&row.connector_id)
                .unwrap_or_else(|| (row.name.clone(), row.provider.clone()));
            let labels = vec![
                (connectors::ID_LABEL.to_string(), row.connector_id.clone()),
                ("name".to_string(), name),
                ("provider".to_string(), provider),
                ("status".to_string(), row.status.clone()),
            ];
            text::sample(out, TASKS_METRIC, &labels, row.count);
        }
        text::single(
            out,
            REFRESH_SUCCESS_METRIC,
            "gauge",
            &[],
            u8::from(snapshot.ok),
        );
        if let Some(at) = snapshot.last_success {
            let secs = at
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            text::single(out, REFRESH_TIMESTAMP_METRIC, "gauge", &[], secs);
        }
    }
}
