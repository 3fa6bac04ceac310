//! The runtime's error type: what installing, configuring or controlling a connector can fail
//! with. The API maps each variant to a Formance error code.

use uuid::Uuid;

use crate::sdk::{ConfigError, TaskError, TaskStatus};
use crate::storage::StorageError;

/// Why a runtime operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// No loader is registered for this provider.
    #[error("unknown provider {0:?}")]
    UnknownProvider(String),
    /// The config failed validation (each field named).
    #[error("invalid config: {0}")]
    Validation(#[from] ConfigError),
    /// No such connector is installed.
    #[error("connector {0} not found")]
    ConnectorNotFound(String),
    /// No such task in this connector.
    #[error("task {0} not found")]
    TaskNotFound(Uuid),
    /// The task is live; only FAILED, TERMINATED or STOPPED tasks can be restarted.
    #[error("task {id} is {status:?}: only an ended task can be restarted")]
    TaskIsLive {
        /// The task.
        id: Uuid,
        /// Its status.
        status: TaskStatus,
    },
    /// The request conflicts with the current state (a duplicate name, an operation already
    /// in progress on this connector).
    #[error("{0}")]
    Conflict(String),
    /// The connector's own install hook failed; nothing of it was kept.
    #[error("connector install failed: {0}")]
    InstallFailed(#[source] TaskError),
    /// The connector's `config_updated` hook failed; the new config is stored.
    #[error("applying the new config failed: {0}")]
    ConfigHookFailed(#[source] TaskError),
    /// A call into the connector (money out, a bank account, a webhook) failed; its own
    /// error, secrets masked.
    #[error("the connector refused: {0}")]
    ConnectorCallFailed(#[source] TaskError),
    /// The connector's stored config does not load, so nothing can be asked of it.
    #[error("connector {0} cannot be called: its stored config does not load")]
    ConnectorNotLoaded(String),
    /// The database failed.
    #[error(transparent)]
    Storage(StorageError),
    /// A task operation could not be carried out (the database failed meanwhile).
    #[error("{0}")]
    Task(#[source] TaskError),
    /// The runtime is shutting down.
    #[error("the runtime is shutting down")]
    Stopped,
    /// A stored secret could not be decrypted (a wrong or missing key).
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
}

impl From<StorageError> for RuntimeError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Conflict(m) => RuntimeError::Conflict(m),
            StorageError::Stopped => RuntimeError::Stopped,
            other => RuntimeError::Storage(other),
        }
    }
}

/// How a storage error reaches connector code (DESIGN §2: database errors are retryable; only
/// the task's own code decides that a failure is final). A superseded run is cancelled. Two
/// refusals are about the task's own input, not the database, and retrying the same write
/// cannot help: a value the database rejects as malformed, and a row that does not exist.
pub fn task_error(e: StorageError) -> TaskError {
    match e {
        StorageError::Superseded { .. } | StorageError::Stopped => TaskError::Cancelled,
        StorageError::InvalidInput(_) | StorageError::NotFound(_) => {
            TaskError::NonRetryable(e.to_string())
        }
        e => TaskError::Retryable(e.to_string()),
    }
}
