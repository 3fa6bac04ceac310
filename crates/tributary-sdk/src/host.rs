//! The seam between connector code and the runtime: what the runtime provides to a connector
//! and its tasks. The runtime implements [`Host`]; connector code reaches it only through
//! [`crate::TaskContext`], [`crate::ConnectorContext`] and [`crate::Scheduler`].

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::ingest::{Batch, IngestReport};
use super::{Clock, ScheduleOptions, TaskError};

pub use crate::domain::RunRef;

/// The runtime services for one connector.
#[async_trait]
pub trait Host: Send + Sync + 'static {
    /// The connector's id.
    fn connector_id(&self) -> &str;
    /// The runtime's clock.
    fn clock(&self) -> &Arc<dyn Clock>;
    /// Schedules a task; returns its id once the task row is durable (for RUN_NOW_SYNC,
    /// once the run has ended). `parent` is the scheduling task, if any.
    async fn schedule(
        &self,
        parent: Option<RunRef>,
        descriptor: Value,
        options: ScheduleOptions,
    ) -> Result<Uuid, TaskError>;
    /// Saves a task's state, if `run` is still its current run.
    async fn save_state(&self, run: RunRef, state: Value) -> Result<(), TaskError>;
    /// Reads a key of the connector's store.
    async fn kv_get(&self, key: &str) -> Result<Option<Value>, TaskError>;
    /// Writes a key of the connector's store (fenced on `run` when a task writes it).
    async fn kv_put(&self, run: Option<RunRef>, key: &str, value: Value) -> Result<(), TaskError>;
    /// Reads every key of the connector's store that starts with `prefix`, in key order.
    async fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, TaskError>;
    /// Writes a batch of data, and the task's new state with it when given, in one
    /// transaction (rejected if `run` is no longer the task's current run). With `finish`,
    /// the run ends TERMINATED in the same transaction.
    async fn ingest(
        &self,
        run: RunRef,
        batch: Batch,
        state: Option<Value>,
        finish: bool,
    ) -> Result<IngestReport, TaskError>;
    /// Gives up the run's concurrency slot (while it awaits a RUN_NOW_SYNC child).
    async fn release_slot(&self, run: RunRef);
    /// Takes a concurrency slot again, waiting FIFO for one to free up.
    async fn acquire_slot(&self, run: RunRef);
}
