//! Schedule and restart options (Formance's names, kept in the API and the database) and task
//! statuses.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use crate::domain::TaskStatus;

/// When a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schedule {
    /// As soon as a slot is free, asynchronously.
    RunNow,
    /// As `RunNow`, and the caller awaits the run's outcome.
    RunNowSync,
    /// After a duration; the due time is persisted as an absolute time.
    RunInDuration(Duration),
    /// At an absolute time (a past time means now).
    RunScheduledAt(DateTime<Utc>),
    /// Now, then every period; no overlap; missed ticks coalesce into one run.
    RunPeriodically(Duration),
}

/// What scheduling an existing descriptor again does, and what a failed run leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Restart {
    /// Never run again once scheduled; a failed run is final.
    #[serde(rename = "RESTART_NEVER")]
    Never,
    /// Run again only after the task ended.
    #[serde(rename = "RESTART_IF_NOT_ACTIVE")]
    IfNotActive,
    /// Run again after it ended; failed runs (panics included) restart with backoff.
    #[serde(rename = "RESTART_ALWAYS")]
    Always,
    /// Stop the live run and start a new one with the new options.
    #[serde(rename = "STOP_AND_RESTART")]
    StopAndRestart,
}

/// What happens to a run that a crash or shutdown interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OnInterrupt {
    /// Run again (at-least-once): for idempotent work.
    #[default]
    Resume,
    /// Become FAILED "outcome unknown": for work that must never run twice.
    Fail,
}

/// Everything that decides how a task is run; persisted with the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleOptions {
    /// When it runs.
    pub schedule: Schedule,
    /// What rescheduling and failure do.
    pub restart: Restart,
    /// What an interrupted run becomes.
    pub on_interrupt: OnInterrupt,
    /// Consecutive failed runs after which RESTART_ALWAYS gives up.
    pub max_restarts: u32,
}

impl ScheduleOptions {
    /// Options with `schedule` and `restart`, resuming interrupted runs, up to 5 restarts.
    pub fn new(schedule: Schedule, restart: Restart) -> Self {
        Self {
            schedule,
            restart,
            on_interrupt: OnInterrupt::Resume,
            max_restarts: 5,
        }
    }

    /// The same options, failing interrupted runs instead of resuming them.
    pub fn fail_on_interrupt(mut self) -> Self {
        self.on_interrupt = OnInterrupt::Fail;
        self
    }

    /// The same options with another restart limit.
    pub fn max_restarts(mut self, n: u32) -> Self {
        self.max_restarts = n;
        self
    }

    /// Whether the task runs again after a successful run.
    pub fn is_periodic(&self) -> bool {
        matches!(self.schedule, Schedule::RunPeriodically(_))
    }
}

impl Schedule {
    /// The name stored in the database and shown by the API.
    pub fn name(&self) -> &'static str {
        match self {
            Schedule::RunNow => "RUN_NOW",
            Schedule::RunNowSync => "RUN_NOW_SYNC",
            Schedule::RunInDuration(_) => "RUN_IN_DURATION",
            Schedule::RunScheduledAt(_) => "RUN_SCHEDULED_AT",
            Schedule::RunPeriodically(_) => "RUN_PERIODICALLY",
        }
    }
}

impl Restart {
    /// The name stored in the database and shown by the API.
    pub fn name(self) -> &'static str {
        match self {
            Restart::Never => "RESTART_NEVER",
            Restart::IfNotActive => "RESTART_IF_NOT_ACTIVE",
            Restart::Always => "RESTART_ALWAYS",
            Restart::StopAndRestart => "STOP_AND_RESTART",
        }
    }

    /// Parses a stored restart name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "RESTART_NEVER" => Restart::Never,
            "RESTART_IF_NOT_ACTIVE" => Restart::IfNotActive,
            "RESTART_ALWAYS" => Restart::Always,
            "STOP_AND_RESTART" => Restart::StopAndRestart,
            _ => return None,
        })
    }
}

impl OnInterrupt {
    /// The name stored in the database.
    pub fn name(self) -> &'static str {
        match self {
            OnInterrupt::Resume => "RESUME",
            OnInterrupt::Fail => "FAIL",
        }
    }
}
