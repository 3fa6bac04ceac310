//! `ConnectorHost`: the runtime's side of the SDK seam for one connector. Tasks and hooks
//! reach the supervisor (scheduling, slots) and the storage actor (state, key-value store)
//! only through it.

use std::sync::{Arc, RwLock};

use actix::Addr;
use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::error::task_error;
use super::messages::{AcquireSlot, ReleaseSlot, ScheduleTask};
use super::supervisor::ConnectorSupervisor;
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

/// Everything shared by one connector's supervisor and task actors.
pub struct ConnectorHost {
    /// Formance's connector id.
    pub connector_id: String,
    /// The storage actor.
    pub storage: StorageHandle,
    /// The runtime's clock.
    pub clock: Arc<dyn Clock>,
    /// Grace period and backoff.
    pub settings: RuntimeSettings,
    /// The connector; replaced when its config changes, read by each run.
    pub connector: RwLock<Arc<dyn Connector>>,
    /// The connector's supervisor.
    pub supervisor: Addr<ConnectorSupervisor>,
    /// Masks the secrets of the connector's config (current and replaced ones) in the errors
    /// its code returns, before they are logged, stored or answered.
    pub redactor: RwLock<Redactor>,
}

impl ConnectorHost {
    /// The current connector value.
    pub fn connector(&self) -> Arc<dyn Connector> {
        self.connector
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A task or hook error of this connector with its config's secrets masked.
    pub fn redact(&self, error: TaskError) -> TaskError {
        self.redactor
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .task_error(error)
    }
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
        self.supervisor
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
        self.supervisor.do_send(ReleaseSlot { run });
    }

    async fn acquire_slot(&self, run: RunRef) {
        let (grant, granted) = oneshot::channel();
        self.supervisor.do_send(AcquireSlot { run, grant });
        let _ = granted.await;
    }
}
