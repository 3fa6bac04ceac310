//! Writes to the `tasks` table. Every write from a task run is fenced on its run number: once
//! a newer run has started (STOP_AND_RESTART, a new schedule), the old run's writes are
//! rejected with [`StorageError::Superseded`].

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::rounds::rounds;
use crate::sdk::host::RunRef;
use crate::sdk::{Schedule, ScheduleOptions, TaskStatus};
use crate::storage::actor::single;
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
    /// The options to persist.
    pub options: ScheduleOptions,
    /// When the first run is due (None: as soon as a slot is free).
    pub due_at: Option<DateTime<Utc>>,
    /// The runtime clock's now.
    pub now: DateTime<Utc>,
    /// When a new run starts.
    pub mode: UpsertMode,
}

/// When [`UpsertTask`] starts a new run of an existing task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertMode {
    /// As the restart option allows: only an ended task, never under RESTART_NEVER.
    IfAllowed,
    /// Always, even if the task is live (STOP_AND_RESTART).
    Force,
    /// Only an ended task, whatever the restart option (an operator's restart).
    IfEnded,
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
        /// Whether the stored task is periodic.
        periodic: bool,
        /// The stored run number (the live run a RUN_NOW_SYNC no-op waits for).
        run: i64,
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
/// statement for many tasks: the SELECT sees the rows as they were before the INSERT
/// (data-modifying CTE). `$12` forces a new run (STOP_AND_RESTART of a live task); `$13` starts
/// one for an ended task whatever its restart option (an operator's restart). A task of
/// a connector that does not exist is neither inserted nor found (no foreign key: the check
/// is this semi-join, without a row lock).
const UPSERT_TASKS: &str = "WITH input AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::jsonb[],
                         $5::text[], $6::text[], $7::int8[], $8::text[], $9::int4[],
                         $10::timestamptz[], $11::timestamptz[])
        AS i(id, connector_id, parent_id, descriptor, schedule, restart,
             period_ms, on_interrupt, max_restarts, due_at, now)
 ),
 upsert AS (
    INSERT INTO tasks (id, connector_id, parent_id, descriptor, status,
                       schedule, restart, period_ms, on_interrupt, max_restarts,
                       due_at, created_at, updated_at)
    SELECT id, connector_id, parent_id, descriptor, 'PENDING', schedule,
           restart, period_ms, on_interrupt, max_restarts, due_at, now, now
    FROM input
    WHERE EXISTS (SELECT 1 FROM connectors c WHERE c.id = input.connector_id)
    ON CONFLICT (id) DO UPDATE SET
        status = 'PENDING', error = NULL, parent_id = EXCLUDED.parent_id,
        schedule = EXCLUDED.schedule, restart = EXCLUDED.restart,
        period_ms = EXCLUDED.period_ms, on_interrupt = EXCLUDED.on_interrupt,
        max_restarts = EXCLUDED.max_restarts, due_at = EXCLUDED.due_at,
        attempts = 0, restarts = 0, failing_since = NULL, running = FALSE,
        run_number = tasks.run_number + 1, updated_at = EXCLUDED.updated_at
    WHERE $12
       OR (tasks.status IN ('TERMINATED', 'FAILED', 'STOPPED')
           AND ($13 OR EXCLUDED.restart <> 'RESTART_NEVER'))
    RETURNING id, run_number, state
 )
 SELECT id, TRUE, run_number, state, NULL::text, NULL::text, NULL::bool FROM upsert
 UNION ALL
 SELECT t.id, FALSE, t.run_number, t.state, t.status, t.error,
        t.schedule = 'RUN_PERIODICALLY'
   FROM tasks t JOIN input i ON i.id = t.id
  WHERE NOT EXISTS (SELECT 1 FROM upsert u WHERE u.id = t.id)";

impl WriteCommand for UpsertTask {
    type Output = UpsertOutcome;
    const MERGEABLE: bool = true;

    async fn apply(&self, tx: &Tx<'_>) -> Result<UpsertOutcome, StorageError> {
        single(Self::apply_many(&[self], tx).await?)
    }

    async fn apply_many(
        commands: &[&Self],
        tx: &Tx<'_>,
    ) -> Result<Vec<Result<UpsertOutcome, StorageError>>, StorageError> {
        let context = "scheduling tasks";
        let stmt = tx
            .prepare_cached(UPSERT_TASKS)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let mut out = Vec::with_capacity(commands.len());
        // Schedules of different modes go in separate statements (`$12`, `$13` are per
        // statement).
        for same_mode in commands.chunk_by(|a, b| a.mode == b.mode) {
            for round in rounds(same_mode, |c| [c.id]) {
                let ids: Vec<Uuid> = round.iter().map(|c| c.id).collect();
                let connectors: Vec<&str> = round.iter().map(|c| c.connector_id.as_str()).collect();
                let parents: Vec<Option<Uuid>> = round.iter().map(|c| c.parent_id).collect();
                let descriptors: Vec<&Value> = round.iter().map(|c| &c.descriptor).collect();
                let schedules: Vec<&str> =
                    round.iter().map(|c| c.options.schedule.name()).collect();
                let restarts: Vec<&str> = round.iter().map(|c| c.options.restart.name()).collect();
                let periods: Vec<Option<i64>> = round
                    .iter()
                    .map(|c| period_ms(&c.options.schedule))
                    .collect();
                let interrupts: Vec<&str> = round
                    .iter()
                    .map(|c| c.options.on_interrupt.name())
                    .collect();
                let max_restarts: Vec<i32> = round
                    .iter()
                    .map(|c| c.options.max_restarts.min(i32::MAX as u32) as i32)
                    .collect();
                let due: Vec<Option<DateTime<Utc>>> = round.iter().map(|c| c.due_at).collect();
                let now: Vec<DateTime<Utc>> = round.iter().map(|c| c.now).collect();
                let mode = round.first().map_or(UpsertMode::IfAllowed, |c| c.mode);
                let force = mode == UpsertMode::Force;
                let if_ended = mode == UpsertMode::IfEnded;
                let rows = tx
                    .query(
                        &stmt,
                        &[
                            &ids,
                            &connectors,
                            &parents,
                            &descriptors,
                            &schedules,
                            &restarts,
                            &periods,
                            &interrupts,
                            &max_restarts,
                            &due,
                            &now,
                            &force,
                            &if_ended,
                        ],
                    )
                    .await
                    .map_err(|e| StorageError::db(context, e))?;
                let mut by_id: HashMap<Uuid, UpsertOutcome> = HashMap::with_capacity(rows.len());
                for row in &rows {
                    let outcome = if row.get::<_, bool>(1) {
                        UpsertOutcome::Started {
                            run: row.get(2),
                            state: row.get(3),
                        }
                    } else {
                        UpsertOutcome::Unchanged {
                            status: TaskStatus::parse_stored(row.get(4))?,
                            error: row.get(5),
                            periodic: row.get(6),
                            run: row.get(2),
                        }
                    };
                    by_id.insert(row.get(0), outcome);
                }
                out.extend(round.iter().map(|c| {
                    by_id.remove(&c.id).ok_or_else(|| {
                        StorageError::NotFound(format!("connector {} not found", c.connector_id))
                    })
                }));
            }
        }
        Ok(out)
    }
}

/// Records the progress of a run: status, error, counters, next due time.
#[derive(Debug, Clone, PartialEq)]
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
    /// When the current streak of retryable failures began (for the maximum retry age).
    pub failing_since: Option<DateTime<Utc>>,
    /// When the next run or retry is due.
    pub due_at: Option<DateTime<Utc>>,
    /// Whether a run is in progress (for on_interrupt = FAIL).
    pub running: bool,
    /// Set when a run just succeeded.
    pub succeeded_at: Option<DateTime<Utc>>,
    /// The runtime clock's now.
    pub now: DateTime<Utc>,
}

/// Many runs' progress in one statement; a row not returned was superseded (or its run had
/// already ended: a late intermediate write never reopens it).
const UPDATE_TASK_RUNS: &str = "UPDATE tasks t SET status = i.status, error = i.error,
        attempts = i.attempts, restarts = i.restarts, due_at = i.due_at, running = i.running,
        last_success_at = COALESCE(i.succeeded_at, t.last_success_at), updated_at = i.now,
        failing_since = i.failing_since
     FROM unnest($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::int4[], $6::int4[],
                 $7::timestamptz[], $8::bool[], $9::timestamptz[], $10::timestamptz[],
                 $11::timestamptz[])
          AS i(id, run, status, error, attempts, restarts, due_at, running, succeeded_at, now,
               failing_since)
     WHERE t.id = i.id AND t.run_number = i.run AND t.status NOT IN ('TERMINATED', 'FAILED')
     RETURNING t.id";

impl WriteCommand for UpdateTaskRun {
    type Output = ();
    const MERGEABLE: bool = true;

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        single(Self::apply_many(&[self], tx).await?)
    }

    async fn apply_many(
        commands: &[&Self],
        tx: &Tx<'_>,
    ) -> Result<Vec<Result<(), StorageError>>, StorageError> {
        let context = "updating tasks";
        let stmt = tx
            .prepare_cached(UPDATE_TASK_RUNS)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let mut out = Vec::with_capacity(commands.len());
        for round in rounds(commands, |c| [c.run.task_id]) {
            let count = |n: u32| n.min(i32::MAX as u32) as i32;
            let ids: Vec<Uuid> = round.iter().map(|c| c.run.task_id).collect();
            let runs: Vec<i64> = round.iter().map(|c| c.run.run).collect();
            let statuses: Vec<&str> = round.iter().map(|c| c.status.as_str()).collect();
            let errors: Vec<Option<&str>> = round.iter().map(|c| c.error.as_deref()).collect();
            let attempts: Vec<i32> = round.iter().map(|c| count(c.attempts)).collect();
            let restarts: Vec<i32> = round.iter().map(|c| count(c.restarts)).collect();
            let due: Vec<Option<DateTime<Utc>>> = round.iter().map(|c| c.due_at).collect();
            let running: Vec<bool> = round.iter().map(|c| c.running).collect();
            let succeeded: Vec<Option<DateTime<Utc>>> =
                round.iter().map(|c| c.succeeded_at).collect();
            let now: Vec<DateTime<Utc>> = round.iter().map(|c| c.now).collect();
            let failing: Vec<Option<DateTime<Utc>>> =
                round.iter().map(|c| c.failing_since).collect();
            let rows = tx
                .query(
                    &stmt,
                    &[
                        &ids, &runs, &statuses, &errors, &attempts, &restarts, &due, &running,
                        &succeeded, &now, &failing,
                    ],
                )
                .await
                .map_err(|e| StorageError::db(context, e))?;
            let updated: HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
            out.extend(round.iter().map(|c| superseded_unless(&updated, c.run)));
        }
        Ok(out)
    }
}

/// `Ok` if `run`'s task is among the rows a fenced statement touched.
fn superseded_unless(touched: &HashSet<Uuid>, run: RunRef) -> Result<(), StorageError> {
    if touched.contains(&run.task_id) {
        Ok(())
    } else {
        Err(StorageError::Superseded {
            task_id: run.task_id,
            run: run.run,
        })
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
    /// When set, the write is the run's last: the task ends TERMINATED (succeeded at this
    /// time) in the same statement, sparing the run a status write of its own.
    pub finish: Option<DateTime<Utc>>,
    /// The write itself.
    pub inner: C,
}

/// Checks many runs, saving the new state of those that bring one and ending those that
/// finish; returns the tasks whose run is current. An ended run (TERMINATED, FAILED) is never
/// current again: its late writes are rejected.
const FENCE_RUNS: &str = "UPDATE tasks t SET
        state = CASE WHEN i.has_state THEN i.state ELSE t.state END,
        status = COALESCE(CASE WHEN i.finish IS NOT NULL THEN 'TERMINATED' END, t.status),
        error = CASE WHEN i.finish IS NULL THEN t.error END,
        attempts = CASE WHEN i.finish IS NULL THEN t.attempts ELSE 0 END,
        failing_since = CASE WHEN i.finish IS NULL THEN t.failing_since END,
        restarts = CASE WHEN i.finish IS NULL THEN t.restarts ELSE 0 END,
        due_at = CASE WHEN i.finish IS NULL THEN t.due_at END,
        running = i.finish IS NULL AND t.running,
        last_success_at = COALESCE(i.finish, t.last_success_at),
        updated_at = COALESCE(i.finish, t.updated_at)
     FROM unnest($1::uuid[], $2::int8[], $3::jsonb[], $4::bool[], $5::timestamptz[])
          AS i(id, run, state, has_state, finish)
     WHERE t.id = i.id AND t.run_number = i.run AND t.status NOT IN ('TERMINATED', 'FAILED')
     RETURNING t.id";

impl<C: WriteCommand + Sync> WriteCommand for Fenced<C> {
    type Output = C::Output;
    const MERGEABLE: bool = C::MERGEABLE;

    async fn apply(&self, tx: &Tx<'_>) -> Result<C::Output, StorageError> {
        single(Self::apply_many(&[self], tx).await?)
    }

    async fn apply_many(
        commands: &[&Self],
        tx: &Tx<'_>,
    ) -> Result<Vec<Result<C::Output, StorageError>>, StorageError> {
        let context = "checking task runs";
        let stmt = tx
            .prepare_cached(FENCE_RUNS)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let mut out = Vec::with_capacity(commands.len());
        for round in rounds(commands, |c| [c.run.task_id]) {
            let ids: Vec<Uuid> = round.iter().map(|c| c.run.task_id).collect();
            let runs: Vec<i64> = round.iter().map(|c| c.run.run).collect();
            let states: Vec<Option<&Value>> = round.iter().map(|c| c.state.as_ref()).collect();
            let has_state: Vec<bool> = round.iter().map(|c| c.state.is_some()).collect();
            let finish: Vec<Option<DateTime<Utc>>> = round.iter().map(|c| c.finish).collect();
            let rows = tx
                .query(&stmt, &[&ids, &runs, &states, &has_state, &finish])
                .await
                .map_err(|e| StorageError::db(context, e))?;
            let current: HashSet<Uuid> = rows.iter().map(|row| row.get(0)).collect();
            // Only the writes of current runs are applied.
            let passed: Vec<&C> = round
                .iter()
                .filter(|c| current.contains(&c.run.task_id))
                .map(|c| &c.inner)
                .collect();
            let applied = if passed.is_empty() {
                Vec::new()
            } else {
                C::apply_many(&passed, tx).await?
            };
            // The fence already saved these runs' state (and maybe their end): a write that
            // failed alone must not keep them, so the group fails and each runs alone.
            if let Some(Err(e)) = applied.iter().find(|r| r.is_err()) {
                return Err(e.clone());
            }
            let mut applied = applied.into_iter();
            for command in round {
                out.push(match superseded_unless(&current, command.run) {
                    Ok(()) => applied.next().unwrap_or(Err(StorageError::Stopped)),
                    Err(e) => Err(e),
                });
            }
        }
        Ok(out)
    }
}

/// Marks FAILED every live task of a connector that was mid-run when the process (or the
/// connector, paused) stopped and must not run twice (`on_interrupt = FAIL`). Sent only while
/// the connector runs nothing (a resume of a paused supervisor, or boot). Returns their ids.
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
        let failed: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        // The money-out sends among them fail with them, in the same transaction.
        super::transfers::fail_interrupted(tx, &self.connector_id, &failed, self.now).await?;
        Ok(failed)
    }
}
