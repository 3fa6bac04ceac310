//! The ground floor: the few names that storage, runtime and API all speak of — a task's
//! status, a connector's lifecycle, one run of a task. Each has one spelling in the database
//! and the API, parsed in one place; a name read back that is not known is an error, never
//! silently taken for another. Task statuses and runs are the SDK's (connectors speak of them
//! too) and re-exported here; a connector's lifecycle is the runtime's alone.

pub use tributary_sdk::domain::{RunRef, TaskStatus, UnknownName};

/// The lifecycle marks of a connector row, written durably before each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Being installed: rolled back at boot if the process died meanwhile.
    Installing,
    /// Installed and serving.
    Installed,
    /// Being uninstalled: finished at boot.
    Uninstalling,
    /// Being reset: finished at boot.
    Resetting,
}

impl Lifecycle {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Installing => "installing",
            Lifecycle::Installed => "installed",
            Lifecycle::Uninstalling => "uninstalling",
            Lifecycle::Resetting => "resetting",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "installing" => Lifecycle::Installing,
            "installed" => Lifecycle::Installed,
            "uninstalling" => Lifecycle::Uninstalling,
            "resetting" => Lifecycle::Resetting,
            _ => return None,
        })
    }
}
