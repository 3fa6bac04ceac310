//! What a task run can end with, besides success.

/// A task's error. The variant decides what the runtime does next (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// A transient failure (network, database, rate limit): retried with backoff under every
    /// restart option; the task stays ACTIVE.
    #[error("{0}")]
    Retryable(String),
    /// A final failure (e.g. a payout the PSP refused): FAILED under every option.
    #[error("{0}")]
    NonRetryable(String),
    /// Any other failure, a panic included: FAILED, or restarted under RESTART_ALWAYS.
    #[error("{0}")]
    Failed(String),
    /// A RUN_NOW_SYNC wait on a task that was stopped.
    #[error("task stopped")]
    Stopped,
    /// A RUN_NOW_SYNC schedule of a periodic task that is already live.
    #[error("task already scheduled")]
    AlreadyScheduled,
    /// The run was cancelled (shutdown, pause, uninstall, or a newer run superseded it), or a
    /// RUN_NOW_SYNC wait was cut short by a pause or uninstall. Returned by a run that is not
    /// being stopped, it counts as a plain failure: only the database's fence, not this
    /// error, tells the runtime that a newer run owns the task.
    #[error("task run cancelled")]
    Cancelled,
}

impl TaskError {
    /// A transient failure, retried with backoff.
    pub fn retryable(e: impl std::fmt::Display) -> Self {
        TaskError::Retryable(e.to_string())
    }

    /// A final failure, never retried.
    pub fn non_retryable(e: impl std::fmt::Display) -> Self {
        TaskError::NonRetryable(e.to_string())
    }

    /// A plain failure: FAILED, or restarted under RESTART_ALWAYS.
    pub fn failed(e: impl std::fmt::Display) -> Self {
        TaskError::Failed(e.to_string())
    }
}
