//! Reads of the `tasks` table.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::client;
use crate::sdk::{OnInterrupt, Restart, Schedule, ScheduleOptions, TaskStatus};
use crate::storage::{Pool, StorageError};

/// A stored task.
#[derive(Debug, Clone)]
pub struct TaskRow {
    /// The task id.
    pub id: Uuid,
    /// The owning connector.
    pub connector_id: String,
    /// The task that scheduled it.
    pub parent_id: Option<Uuid>,
    /// The connector's descriptor.
    pub descriptor: Value,
    /// The status.
    pub status: TaskStatus,
    /// The last error.
    pub error: Option<String>,
    /// The saved state.
    pub state: Option<Value>,
    /// The persisted options.
    pub options: ScheduleOptions,
    /// When the next run or retry is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Retries of the current run.
    pub attempts: u32,
    /// Consecutive failed runs.
    pub restarts: u32,
    /// The current run number.
    pub run_number: i64,
    /// A run was in progress when last written.
    pub running: bool,
    /// When a run last succeeded.
    pub last_success_at: Option<DateTime<Utc>>,
    /// When it was first scheduled.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the current streak of retryable failures began.
    pub failing_since: Option<DateTime<Utc>>,
}

/// The columns [`from_row`] reads, in order.
pub const COLUMNS: &str = "id, connector_id, parent_id, descriptor, status, error, state, \
     schedule, restart, period_ms, on_interrupt, max_restarts, due_at, attempts, restarts, \
     run_number, running, last_success_at, created_at, updated_at, failing_since";

/// Decodes a row selected with [`COLUMNS`]; a status, schedule or restart name this version
/// does not know is an error, never a guess.
pub fn from_row(row: &Row) -> Result<TaskRow, StorageError> {
    let status: String = row.get(4);
    let schedule: String = row.get(7);
    let restart: String = row.get(8);
    let period_ms: Option<i64> = row.get(9);
    let on_interrupt: String = row.get(10);
    let due_at: Option<DateTime<Utc>> = row.get(12);
    let created_at: DateTime<Utc> = row.get(18);
    let period = Duration::from_millis(period_ms.unwrap_or(0).max(0) as u64);
    let schedule = match schedule.as_str() {
        "RUN_NOW_SYNC" => Schedule::RunNowSync,
        "RUN_IN_DURATION" => Schedule::RunInDuration(period),
        "RUN_SCHEDULED_AT" => Schedule::RunScheduledAt(due_at.unwrap_or(created_at)),
        "RUN_PERIODICALLY" => Schedule::RunPeriodically(period),
        "RUN_NOW" => Schedule::RunNow,
        other => {
            return Err(crate::domain::UnknownName {
                what: "schedule",
                name: other.to_string(),
            }
            .into());
        }
    };
    let on_interrupt = match on_interrupt.as_str() {
        "FAIL" => OnInterrupt::Fail,
        "RESUME" => OnInterrupt::Resume,
        other => {
            return Err(crate::domain::UnknownName {
                what: "on_interrupt",
                name: other.to_string(),
            }
            .into());
        }
    };
    let restart = Restart::parse(&restart).ok_or_else(|| crate::domain::UnknownName {
        what: "restart option",
        name: restart.clone(),
    })?;
    let max_restarts: i32 = row.get(11);
    let attempts: i32 = row.get(13);
    let restarts: i32 = row.get(14);
    Ok(TaskRow {
        id: row.get(0),
        connector_id: row.get(1),
        parent_id: row.get(2),
        descriptor: row.get(3),
        status: TaskStatus::parse_stored(&status)?,
        error: row.get(5),
        state: row.get(6),
        options: ScheduleOptions {
            schedule,
            restart,
            on_interrupt,
            max_restarts: max_restarts.max(0) as u32,
        },
        due_at,
        attempts: attempts.max(0) as u32,
        restarts: restarts.max(0) as u32,
        run_number: row.get(15),
        running: row.get(16),
        last_success_at: row.get(17),
        created_at,
        updated_at: row.get(19),
        failing_since: row.get(20),
    })
}

/// The live (PENDING or ACTIVE) tasks of a connector, oldest first: what boot resumes.
pub async fn live(pool: &Pool, connector_id: &str) -> Result<Vec<TaskRow>, StorageError> {
    let client = client(pool, "loading live tasks").await?;
    let rows = super::query(
        &client,
        &format!(
            "SELECT {COLUMNS} FROM tasks
                 WHERE connector_id = $1 AND status IN ('PENDING', 'ACTIVE')
                 ORDER BY created_at, id"
        ),
        &[&connector_id],
        "loading live tasks",
    )
    .await?;
    rows.iter().map(from_row).collect()
}

/// One task of a connector.
pub async fn get(
    pool: &Pool,
    connector_id: &str,
    task_id: Uuid,
) -> Result<Option<TaskRow>, StorageError> {
    let client = client(pool, "reading a task").await?;
    let row = super::query_opt(
        &client,
        &format!("SELECT {COLUMNS} FROM tasks WHERE connector_id = $1 AND id = $2"),
        &[&connector_id, &task_id],
        "reading a task",
    )
    .await?;
    row.as_ref().map(from_row).transpose()
}

/// A page of a connector's tasks, optionally only those with `status`.
pub async fn page(
    pool: &Pool,
    connector_id: &str,
    status: Option<TaskStatus>,
    keyset: &super::page::Keyset,
) -> Result<Vec<TaskRow>, StorageError> {
    let mut sql = super::page::Sql::new(&format!(
        "SELECT {} FROM tasks t WHERE t.connector_id = $1",
        COLUMNS
            .split(", ")
            .map(|c| format!("t.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    sql.params.push(Box::new(connector_id.to_string()));
    if let Some(status) = status {
        let p = sql.param(status.as_str().to_string());
        sql.and(&format!("t.status = {p}"));
    }
    sql.keyset(keyset, "t", "uuid");
    let client = client(pool, "listing tasks").await?;
    let rows = super::query(&client, &sql.text, &sql.params(), "listing tasks").await?;
    rows.iter().map(from_row).collect()
}

/// Tasks per connector and status, every status listed (zero included), for the gauges.
pub async fn count_by_status(pool: &Pool) -> Result<Vec<StatusCount>, StorageError> {
    let client = client(pool, "counting tasks").await?;
    let rows = super::query(
        &client,
        "SELECT c.id, c.name, c.provider, s.status, count(t.id)
             FROM connectors c
             CROSS JOIN (VALUES ('PENDING'), ('ACTIVE'), ('TERMINATED'), ('FAILED'), ('STOPPED'))
                  AS s(status)
             LEFT JOIN tasks t ON t.connector_id = c.id AND t.status = s.status
             GROUP BY c.id, c.name, c.provider, s.status",
        &[],
        "counting tasks",
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| StatusCount {
            connector_id: r.get(0),
            name: r.get(1),
            provider: r.get(2),
            status: r.get(3),
            count: r.get(4),
        })
        .collect())
}

/// How many tasks of one connector have one status (zero included).
#[derive(Debug, Clone)]
pub struct StatusCount {
    /// The connector's id.
    pub connector_id: String,
    /// Its name.
    pub name: String,
    /// Its provider.
    pub provider: String,
    /// The status.
    pub status: String,
    /// How many of its tasks have it.
    pub count: i64,
}
