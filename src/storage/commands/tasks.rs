//! Writes to the `tasks` table. Every write from a task run is fenced on its run number: once
//! a newer run has started (STOP_AND_RESTART, a new schedule), the old run's writes are
//! rejected with [`StorageError::Superseded`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::sdk::host::RunRef;
use crate::sdk::{Schedule, ScheduleOptions, TaskStatus};
use crate::storage::{StorageError, Tx, WriteCommand};

/// Schedules a task: inserts it, or starts a new run of an existing one when the restart
/// option allows (decided here, atomically, against the stored status).
#[derive(Debug, Clone)]
pub struct UpsertTask {
    /// The task id (derived from connector id and descriptor key).
    pub id: Uuid,
    /// The owning connector.
    pub connector_id: String,
    /// The scheduling task, if a task scheduled it.
    pub parent_id: Option<Uuid>,
    /// The connector's descriptor.
    pub descriptor: Value,
    /// Its canonical JSON.
    pub descriptor_key: String,
    /// The options to persist.
    pub options: ScheduleOptions,
    /// When the first run is due (None: as soon as a slot is free).
    pub due_at: Option<DateTime<Utc>>,
    /// The runtime clock's now.
    pub now: DateTime<Utc>,
    /// Start a new run even if the task is live (STOP_AND_RESTART of a live task).
    pub force: bool,
}

/// What [`UpsertTask`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertOutcome {
    /// A new run starts, with this run number and the task's kept state.
    Started {
        /// The run number of the new run.
        run: i64,
        /// The state kept from earlier runs.
        state: Option<Value>,
    },
    /// Nothing changed: the schedule was a no-op for a task in this status.
    Unchanged {
        /// The stored status.
        status: TaskStatus,
        /// The stored error.
        error: Option<String>,
    },
}

/// The period (or delay) persisted with a task, in milliseconds.
fn period_ms(schedule: &Schedule) -> Option<i64> {
    match schedule {
        Schedule::RunInDuration(d) | Schedule::RunPeriodically(d) => {
            Some(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        }
        _ => None,
    }
}

/// Insert, or start a new run when allowed; otherwise report the stored status. One
/// statement: the SELECT sees the row as it was before the INSERT (data-modifying CTE).
const UPSERT_TASK: &str = "WITH upsert AS (
    INSERT INTO tasks (id, connector_id, parent_id, descriptor, descriptor_key, status,
                       schedule, restart, period_ms, on_interrupt, max_restarts,
                       due_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, 'PENDING', $6, $7, $8, $9, $10, $11, $12, $12)
    ON CONFLICT (connector_id, descriptor_key) DO UPDATE SET
        status = 'PENDING', error = NULL, parent_id = EXCLUDED.parent_id,
        schedule = EXCLUDED.schedule, restart = EXCLUDED.restart,
        period_ms = EXCLUDED.period_ms, on_interrupt = EXCLUDED.on_interrupt,
        max_restarts = EXCLUDED.max_restarts, due_at = EXCLUDED.due_at,
        attempts = 0, restarts = 0, running = FALSE,
        run_number = tasks.run_number + 1, updated_at = EXCLUDED.updated_at
    WHERE $13
       OR (tasks.status IN ('TERMINATED', 'FAILED', 'STOPPED')
           AND EXCLUDED.restart <> 'RESTART_NEVER')
    RETURNING run_number, state
 )
 SELECT TRUE, run_number, state, NULL::text, NULL::text FROM upsert
 UNION ALL
 SELECT FALSE, t.run_number, t.state, t.status, t.error FROM tasks t
  WHERE t.id = $1 AND NOT EXISTS (SELECT 1 FROM upsert)";

impl WriteCommand for UpsertTask {
    type Output = UpsertOutcome;

    fn statement(&self) -> Option<&'static str> {
        Some(UPSERT_TASK)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<UpsertOutcome, StorageError> {
        let context = "scheduling a task";
        let stmt = tx
            .prepare_cached(UPSERT_TASK)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let o = &self.options;
        let row = tx
            .query_one(
                &stmt,
                &[
                    &self.id,
                    &self.connector_id,
                    &self.parent_id,
                    &self.descriptor,
                    &self.descriptor_key,
                    &o.schedule.name(),
                    &o.restart.name(),
                    &period_ms(&o.schedule),
                    &o.on_interrupt.name(),
                    &(o.max_restarts.min(i32::MAX as u32) as i32),
                    &self.due_at,
                    &self.now,
                    &self.force,
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION => {
                    StorageError::NotFound(format!("connector {} not found", self.connector_id))
                }
                _ => StorageError::db(context, e),
            })?;
        if row.get::<_, bool>(0) {
            return Ok(UpsertOutcome::Started {
                run: row.get(1),
                state: row.get(2),
            });
        }
        let status: String = row.get(3);
        Ok(UpsertOutcome::Unchanged {
            status: TaskStatus::parse(&status).unwrap_or(TaskStatus::Failed),
            error: row.get(4),
        })
    }
}

/// Records the progress of a run: status, error, counters, next due time.
#[derive(Debug, Clone)]
pub struct UpdateTaskRun {
    /// The run this write comes from.
    pub run: RunRef,
    /// The new status.
    pub status: TaskStatus,
    /// The error to show (the last failure, while retrying or once FAILED).
    pub error: Option<String>,
    /// Retries of the current run.
    pub attempts: u32,
    /// Consecutive failed runs (RESTART_ALWAYS).
    pub restarts: u32,
    /// When the next run or retry is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Whether a run is in progress (for on_interrupt = FAIL).
    pub running: bool,
    /// Set when a run just succeeded.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// The runtime clock's now.
    pub now: DateTime<Utc>,
}

const UPDATE_TASK_RUN: &str = "UPDATE tasks SET status = $3, error = $4, attempts = $5,
        restarts = $6, due_at = $7, running = $8,
        last_success_at = COALESCE($9, last_success_at), updated_at = $10
     WHERE id = $1 AND run_number = $2";

impl WriteCommand for UpdateTaskRun {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(UPDATE_TASK_RUN)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "updating a task";
        let stmt = tx
            .prepare_cached(UPDATE_TASK_RUN)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(
                &stmt,
                &[
                    &self.run.task_id,
                    &self.run.run,
                    &self.status.as_str(),
                    &self.error,
                    &(self.attempts.min(i32::MAX as u32) as i32),
                    &(self.restarts.min(i32::MAX as u32) as i32),
                    &self.due_at,
                    &self.running,
                    &self.succeeded_at,
                    &self.now,
                ],
            )
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::Superseded {
                task_id: self.run.task_id,
                run: self.run.run,
            });
        }
        Ok(())
    }
}

/// Runs `inner` only if `run` is still the task's current run, and saves the task's new state
/// in the same transaction: data and checkpoint commit together (exactly-once effect).
#[derive(Debug, Clone)]
pub struct Fenced<C> {
    /// The run the write comes from.
    pub run: RunRef,
    /// The task's new state, if it changes.
    pub state: Option<Value>,
    /// The write itself.
    pub inner: C,
}

impl<C: WriteCommand + Sync> WriteCommand for Fenced<C> {
    type Output = C::Output;

    async fn apply(&self, tx: &Tx<'_>) -> Result<C::Output, StorageError> {
        let current = match &self.state {
            Some(state) => tx
                .execute(
                    "UPDATE tasks SET state = $3 WHERE id = $1 AND run_number = $2",
                    &[&self.run.task_id, &self.run.run, state],
                )
                .await
                .map_err(|e| StorageError::db("saving task state", e))?,
            None => tx
                .execute(
                    "SELECT 1 FROM tasks WHERE id = $1 AND run_number = $2",
                    &[&self.run.task_id, &self.run.run],
                )
                .await
                .map_err(|e| StorageError::db("checking a task's run", e))?,
        };
        if current == 0 {
            return Err(StorageError::Superseded {
                task_id: self.run.task_id,
                run: self.run.run,
            });
        }
        self.inner.apply(tx).await
    }
}

/// Marks FAILED every live task of a connector that was mid-run when the process stopped and
/// must not run twice (`on_interrupt = FAIL`). Returns their ids.
#[derive(Debug, Clone)]
pub struct FailInterrupted {
    /// The connector.
    pub connector_id: String,
    /// The runtime clock's now.
    pub now: DateTime<Utc>,
}

/// The error kept on a task whose interrupted run may or may not have taken effect.
pub const OUTCOME_UNKNOWN: &str =
    "outcome unknown: the run was interrupted (crash or shutdown) and on_interrupt is FAIL";

impl WriteCommand for FailInterrupted {
    type Output = Vec<Uuid>;

    async fn apply(&self, tx: &Tx<'_>) -> Result<Vec<Uuid>, StorageError> {
        let rows = tx
            .query(
                "UPDATE tasks SET status = 'FAILED', error = $2, running = FALSE, updated_at = $3
                 WHERE connector_id = $1 AND status IN ('PENDING', 'ACTIVE')
                   AND running AND on_interrupt = 'FAIL'
                 RETURNING id",
                &[&self.connector_id, &OUTCOME_UNKNOWN, &self.now],
            )
            .await
            .map_err(|e| StorageError::db("failing interrupted tasks", e))?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
