//! Tasks: the unit of work the runtime schedules, runs, retries and persists.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::host::{Host, RunRef};
use super::ingest::{Batch, IngestReport};
use super::{Clock, Schedule, ScheduleOptions, TaskError};

/// A unit of work, resolved from a descriptor by [`crate::Connector::resolve`] for each
/// run. Execution is at-least-once: a run interrupted by a crash or shutdown runs again.
#[async_trait]
pub trait Task: Send + Sync + 'static {
    /// Does the work. Return [`TaskError::Retryable`] for transient failures.
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError>;
}

/// Schedules tasks of the same connector, as children of the current task when there is one.
#[derive(Clone)]
pub struct Scheduler {
    host: Arc<dyn Host>,
    parent: Option<RunRef>,
}

impl Scheduler {
    /// A scheduler for `host`, scheduling children of `parent` if given.
    pub fn new(host: Arc<dyn Host>, parent: Option<RunRef>) -> Self {
        Self { host, parent }
    }

    /// Schedules the task identified by `descriptor` (its canonical JSON identifies it within
    /// the connector). Returns the task id once the row is durable; with RUN_NOW_SYNC, once
    /// the run has ended (its error if it failed). A task waiting on a RUN_NOW_SYNC child
    /// gives up its concurrency slot meanwhile, so nested synchronous children cannot deadlock.
    pub fn schedule<D: Serialize + ?Sized>(
        &self,
        descriptor: &D,
        options: ScheduleOptions,
    ) -> impl Future<Output = Result<Uuid, TaskError>> + Send + use<D> {
        // Serialized now, so the returned future borrows nothing.
        let descriptor = serde_json::to_value(descriptor)
            .map_err(|e| TaskError::non_retryable(format!("descriptor is not JSON: {e}")));
        let host = self.host.clone();
        let parent = self.parent;
        async move {
            let descriptor = descriptor?;
            let sync = options.schedule == Schedule::RunNowSync;
            match (sync, parent) {
                (true, Some(parent)) => {
                    host.release_slot(parent).await;
                    let result = host.schedule(Some(parent), descriptor, options).await;
                    host.acquire_slot(parent).await;
                    result
                }
                _ => host.schedule(parent, descriptor, options).await,
            }
        }
    }
}

/// Shared by a run and the runtime: whether the run sent its final write
/// ([`TaskContext::ingest_final`]), after which the runtime writes no status of its own.
#[derive(Debug, Default)]
pub struct FinalWrite {
    sent: AtomicBool,
    committed: AtomicBool,
}

impl FinalWrite {
    /// The final write was sent (it may not have committed).
    pub fn sent(&self) -> bool {
        self.sent.load(Ordering::Acquire)
    }

    /// The final write committed: the run is TERMINATED in the database.
    pub fn committed(&self) -> bool {
        self.committed.load(Ordering::Acquire)
    }
}

/// What a running task gets from the runtime.
pub struct TaskContext {
    host: Arc<dyn Host>,
    run: RunRef,
    cancel: CancellationToken,
    state: Arc<Mutex<Option<Value>>>,
    /// Present when the run ends with its success (not a periodic task).
    final_write: Option<Arc<FinalWrite>>,
}

impl TaskContext {
    /// Built by the runtime for each run.
    pub fn new(
        host: Arc<dyn Host>,
        run: RunRef,
        cancel: CancellationToken,
        state: Arc<Mutex<Option<Value>>>,
        final_write: Option<Arc<FinalWrite>>,
    ) -> Self {
        Self {
            host,
            run,
            cancel,
            state,
            final_write,
        }
    }

    /// The connector's id.
    pub fn connector_id(&self) -> &str {
        self.host.connector_id()
    }

    /// This task's id.
    pub fn task_id(&self) -> Uuid {
        self.run.task_id
    }

    /// A key stable across retries, restarts and resumes of this task: hand it to a PSP so a
    /// resumed payout is not sent twice.
    pub fn idempotency_key(&self) -> String {
        self.run.task_id.to_string()
    }

    /// Cancelled when the run must stop (shutdown, pause, uninstall, a newer run): finish or
    /// give up within the grace period, after which the run is dropped.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Schedules child tasks (stopped with this task, not when one of its runs ends).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.host.clone(), Some(self.run))
    }

    /// The runtime's clock: use it rather than the system time, so tests can drive time.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.host.clock()
    }

    /// The task's saved state, if any.
    pub fn state<T: DeserializeOwned>(&self) -> Result<Option<T>, TaskError> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match state {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| TaskError::non_retryable(format!("saved task state: {e}"))),
        }
    }

    /// Saves the task's state durably (rejected if a newer run has started).
    pub async fn save_state<T: Serialize>(&self, state: &T) -> Result<(), TaskError> {
        let value = serde_json::to_value(state)
            .map_err(|e| TaskError::non_retryable(format!("task state is not JSON: {e}")))?;
        self.host.save_state(self.run, value.clone()).await?;
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
        Ok(())
    }

    /// Writes a batch of payments, accounts and balances, and the task's new state with it
    /// when given, in one transaction: data and checkpoint commit together, so a crash never
    /// loses or repeats a batch's effect.
    pub async fn ingest<T: Serialize>(
        &self,
        batch: Batch,
        state: Option<&T>,
    ) -> Result<IngestReport, TaskError> {
        let state = state
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| TaskError::non_retryable(format!("task state is not JSON: {e}")))?;
        let report = self
            .host
            .ingest(self.run, batch, state.clone(), false)
            .await?;
        if let Some(state) = state {
            *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(state);
        }
        Ok(report)
    }

    /// Like [`TaskContext::ingest`], for the run's last write: a task that ends when it
    /// succeeds (every schedule but RUN_PERIODICALLY) ends TERMINATED in the same
    /// transaction, sparing each run a status write of its own — what makes a task per file
    /// cheap. Return `Ok(())` right after it: once it has committed, the run is over and a
    /// later write or error of this run is ignored. A periodic task's run goes on as usual.
    pub async fn ingest_final<T: Serialize>(
        &self,
        batch: Batch,
        state: Option<&T>,
    ) -> Result<IngestReport, TaskError> {
        let Some(final_write) = &self.final_write else {
            return self.ingest(batch, state).await;
        };
        let state = state
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| TaskError::non_retryable(format!("task state is not JSON: {e}")))?;
        // Marked before sending, so the runtime's delayed ACTIVE write can never follow it.
        final_write.sent.store(true, Ordering::Release);
        let report = self.host.ingest(self.run, batch, state, true).await?;
        final_write.committed.store(true, Ordering::Release);
        Ok(report)
    }

    /// Reads every key of the connector's store that starts with `prefix`.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, TaskError> {
        self.host.kv_list(prefix).await
    }

    /// Reads a key of the connector's durable key-value store.
    pub async fn kv_get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, TaskError> {
        match self.host.kv_get(key).await? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| TaskError::non_retryable(format!("store key {key:?}: {e}"))),
        }
    }

    /// Writes a key of the connector's durable key-value store.
    pub async fn kv_put<T: Serialize>(&self, key: &str, value: &T) -> Result<(), TaskError> {
        let value = serde_json::to_value(value)
            .map_err(|e| TaskError::non_retryable(format!("store value is not JSON: {e}")))?;
        self.host.kv_put(Some(self.run), key, value).await
    }
}
