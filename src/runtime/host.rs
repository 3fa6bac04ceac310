//! `ConnectorHost`: the runtime's side of the SDK seam for one connector. Tasks and hooks
//! reach the supervisor (scheduling, slots) and the storage actor (state, key-value store)
//! only through it; task actors reach their supervisor through its [`SupervisorLink`].

use std::sync::Arc;

use actix::Recipient;
use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::error::task_error;
use super::messages::{AcquireSlot, ReleaseSlot, RunEnding, ScheduleTask, TaskEnded, TaskGone};
use crate::ids::ConnectorKey;
use crate::redact::Redactor;
use crate::sdk::host::{Host, RunRef};
use crate::sdk::ingest::{Batch, IngestReport};
use crate::sdk::{Clock, Connector, ScheduleOptions, TaskError};
use crate::settings::RuntimeSettings;
use crate::storage::commands::ingest::IngestBatch;
use crate::storage::commands::kv::PutKv;
use crate::storage::commands::tasks::Fenced;
use crate::storage::{Noop, StorageHandle, queries};

/// Counts committed rows per connector: how fast a connector ingests, from outside.
fn count_ingested(connector_id: &str, report: &IngestReport) {
    for (kind, n) in [
        ("payment_inserted", report.payments_inserted),
        ("payment_updated", report.payments_updated),
        ("account", report.accounts_written),
        ("balance", report.balances_added),
    ] {
        if n > 0 {
            metrics::counter!(INGESTED_METRIC, "connector_id" => connector_id.to_string(), "kind" => kind)
                .increment(n);
        }
    }
}

/// Rows committed by ingestion, by connector and kind (`payment_inserted`, `payment_updated`,
/// `account`, `balance`).
pub const INGESTED_METRIC: &str = "tributary_ingested_rows_total";

/// A connector value with the redactor of the config it was built from: what a run uses.
/// The supervisor swaps it on a config update and hands the current one over with each slot
/// grant, so no lock is shared between actors.
pub struct ConnectorInstance {
    /// The connector.
    pub connector: Arc<dyn Connector>,
    /// Masks the secrets of its config (and of the configs it replaced) in errors.
    pub redactor: Redactor,
}

/// How task actors and task bodies reach their supervisor: the messages they send, nothing
/// more (no address of the supervisor's type, so the two modules do not import each other).
#[derive(Clone)]
pub struct SupervisorLink {
    /// Schedules a task.
    pub schedule: Recipient<ScheduleTask>,
    /// Asks for a concurrency slot.
    pub acquire: Recipient<AcquireSlot>,
    /// Gives a slot back.
    pub release: Recipient<ReleaseSlot>,
    /// A run is about to send the write that ends it.
    pub ending: Recipient<RunEnding>,
    /// A run ended, durably.
    pub ended: Recipient<TaskEnded>,
    /// A task actor stopped.
    pub gone: Recipient<TaskGone>,
}

/// Everything one connector's task actors and task bodies share (immutable).
pub struct ConnectorHost {
    /// Formance's connector id.
    pub connector_id: String,
    /// The storage actor.
    pub storage: StorageHandle,
    /// The runtime's clock.
    pub clock: Arc<dyn Clock>,
    /// Grace period and backoff.
    pub settings: RuntimeSettings,
    /// The connector's supervisor.
    pub link: SupervisorLink,
}

#[async_trait]
impl Host for ConnectorHost {
    fn connector_id(&self) -> &str {
        &self.connector_id
    }

    fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    async fn schedule(
        &self,
        parent: Option<RunRef>,
        descriptor: Value,
        options: ScheduleOptions,
    ) -> Result<Uuid, TaskError> {
        self.link
            .schedule
            .send(ScheduleTask {
                parent,
                descriptor,
                options,
            })
            .await
            .map_err(|_| TaskError::Cancelled)?
    }

    async fn save_state(&self, run: RunRef, state: Value) -> Result<(), TaskError> {
        self.storage
            .write(Fenced {
                run,
                state: Some(state),
                finish: None,
                inner: Noop,
            })
            .await
            .map_err(task_error)
    }

    async fn kv_get(&self, key: &str) -> Result<Option<Value>, TaskError> {
        queries::kv::get(self.storage.pool(), &self.connector_id, key)
            .await
            .map_err(task_error)
    }

    async fn kv_put(&self, run: Option<RunRef>, key: &str, value: Value) -> Result<(), TaskError> {
        let put = PutKv {
            connector_id: self.connector_id.clone(),
            key: key.to_string(),
            value,
        };
        let result = match run {
            Some(run) => {
                self.storage
                    .write(Fenced {
                        run,
                        state: None,
                        finish: None,
                        inner: put,
                    })
                    .await
            }
            None => self.storage.write(put).await,
        };
        result.map_err(task_error)
    }

    async fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, TaskError> {
        queries::kv::list(self.storage.pool(), &self.connector_id, prefix)
            .await
            .map_err(task_error)
    }

    async fn ingest(
        &self,
        run: RunRef,
        batch: Batch,
        state: Option<Value>,
        finish: bool,
    ) -> Result<IngestReport, TaskError> {
        let connector = ConnectorKey::parse(&self.connector_id)
            .map_err(|e| TaskError::non_retryable(e.to_string()))?;
        if finish {
            // Told before the write goes out: a schedule that arrives while it commits is
            // decided against the durable status, not against "still running".
            self.link.ending.do_send(RunEnding { run });
        }
        let report = self
            .storage
            .write(Fenced {
                run,
                state,
                finish: finish.then(|| self.clock.now()),
                inner: IngestBatch { connector, batch },
            })
            .await
            .map_err(task_error)?;
        count_ingested(&self.connector_id, &report);
        Ok(report)
    }

    async fn release_slot(&self, run: RunRef) {
        self.link.release.do_send(ReleaseSlot { run });
    }

    async fn acquire_slot(&self, run: RunRef) {
        let (grant, granted) = oneshot::channel();
        self.link.acquire.do_send(AcquireSlot { run, grant });
        let _ = granted.await;
    }
}
