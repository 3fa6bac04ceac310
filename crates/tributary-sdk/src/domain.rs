//! The ground floor: the names that connectors, storage, runtime and API all speak of — a
//! task's status, one run of a task. Each has one spelling in the database and the API, parsed
//! in one place; a name read back that is not known is an error, never silently taken for
//! another. (A connector's lifecycle marks, which connectors never see, are the root crate's
//! `tributary::domain::Lifecycle`.)

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A stored name that this version does not know (a newer version wrote it, or the row was
/// edited by hand).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?} in the database")]
pub struct UnknownName {
    /// What kind of name.
    pub what: &'static str,
    /// The name read.
    pub name: String,
}

/// One run of one task: writes carrying it are rejected once a newer run has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunRef {
    /// The task.
    pub task_id: Uuid,
    /// Its run number.
    pub run: i64,
}

/// A task's status (Formance's set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskStatus {
    /// Waiting for its due time or a free slot.
    Pending,
    /// Running, between periodic runs, or waiting to retry.
    Active,
    /// A one-shot run succeeded.
    Terminated,
    /// Failed; the error is kept.
    Failed,
    /// Stopped by a newer run or with its parent.
    Stopped,
}

impl TaskStatus {
    /// PENDING or ACTIVE.
    pub fn is_live(self) -> bool {
        matches!(self, TaskStatus::Pending | TaskStatus::Active)
    }

    /// The name stored in the database and shown by the API.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::Active => "ACTIVE",
            TaskStatus::Terminated => "TERMINATED",
            TaskStatus::Failed => "FAILED",
            TaskStatus::Stopped => "STOPPED",
        }
    }

    /// Parses a status name (from the API).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PENDING" => TaskStatus::Pending,
            "ACTIVE" => TaskStatus::Active,
            "TERMINATED" => TaskStatus::Terminated,
            "FAILED" => TaskStatus::Failed,
            "STOPPED" => TaskStatus::Stopped,
            _ => return None,
        })
    }

    /// Parses a status read from the database: an unknown one is an error, never a guess.
    pub fn parse_stored(s: &str) -> Result<Self, UnknownName> {
        Self::parse(s).ok_or_else(|| UnknownName {
            what: "task status",
            name: s.to_string(),
        })
    }
}
