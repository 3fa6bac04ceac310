//! The actor of one live task. [`machine`] decides (due times, slots, runs, the retry and
//! restart policy, what is written and when, how a stop completes); [`actor`] carries it out
//! (timers, the spawned body, writes through the storage actor, messages to the supervisor).

pub mod actor;
pub mod machine;

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

pub use actor::TaskActor;

use super::policy::Counters;
use crate::domain::{RunRef, TaskStatus};
use crate::sdk::ScheduleOptions;

/// Everything needed to start a task actor.
#[derive(Debug, Clone)]
pub struct TaskSpec {
    /// The task and its current run.
    pub run: RunRef,
    /// The scheduling task, if any.
    pub parent: Option<Uuid>,
    /// The connector's descriptor.
    pub descriptor: Value,
    /// The options.
    pub options: ScheduleOptions,
    /// The status as stored.
    pub status: TaskStatus,
    /// The failure counters as stored.
    pub counters: Counters,
    /// The last error as stored.
    pub error: Option<String>,
    /// When the next run is due (None: now).
    pub due_at: Option<DateTime<Utc>>,
    /// The saved state.
    pub state: Option<Value>,
}

impl TaskSpec {
    /// A new run of a task: PENDING, counters and error cleared.
    pub fn new_run(
        run: RunRef,
        parent: Option<Uuid>,
        descriptor: Value,
        options: ScheduleOptions,
        due_at: Option<DateTime<Utc>>,
        state: Option<Value>,
    ) -> Self {
        Self {
            run,
            parent,
            descriptor,
            options,
            status: TaskStatus::Pending,
            counters: Counters::default(),
            error: None,
            due_at,
            state,
        }
    }
}
