//! The messages between the runtime's actors, named as commands. Messages to the
//! `ConnectorManager` come from the API and boot; the others stay inside the runtime.

use actix::Message;
use serde_json::Value;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::error::RuntimeError;
use crate::sdk::host::RunRef;
use crate::sdk::{Config, ScheduleOptions, TaskError};

// ---- to the ConnectorManager ----

/// Installs a connector of `provider` with `config`; answers its connector id.
#[derive(Message)]
#[rtype(result = "Result<String, RuntimeError>")]
pub struct InstallConnector {
    /// The provider, any case.
    pub provider: String,
    /// The config as sent (defaults not yet applied).
    pub config: Config,
    /// Declared in the settings file.
    pub declared: bool,
}

/// Uninstalls a connector: stops its tasks, calls its `uninstall`, deletes its data.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct UninstallConnector {
    /// The connector.
    pub connector_id: String,
}

/// Resets a connector: as uninstall, then install again with the same id and config.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct ResetConnector {
    /// The connector.
    pub connector_id: String,
}

/// Replaces a connector's config; running tasks see it from their next run.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct UpdateConnectorConfig {
    /// The connector.
    pub connector_id: String,
    /// The new config as sent.
    pub config: Config,
}

/// Pauses a connector (persisted): runs stop as at shutdown and nothing starts until resume.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct PauseConnector {
    /// The connector.
    pub connector_id: String,
}

/// Resumes a paused connector: its live tasks start again.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct ResumeConnector {
    /// The connector.
    pub connector_id: String,
}

/// Runs an ended (FAILED, TERMINATED or STOPPED) task again with its stored options.
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct RestartTask {
    /// The connector.
    pub connector_id: String,
    /// The task.
    pub task_id: Uuid,
}

/// Loads every installed connector and resumes its live tasks (at boot); finishes
/// uninstalls and resets a crash interrupted. Answers how many connectors run.
#[derive(Message)]
#[rtype(result = "Result<usize, RuntimeError>")]
pub struct RestoreConnectors {
    /// New configs (as declared, defaults not applied) by connector id: each is stored in
    /// place of the connector's config before the connector is loaded, so that none of its
    /// tasks resumes with the old one.
    pub configs: std::collections::HashMap<String, Config>,
}

/// Stops every task without changing its status, then the supervisors (service shutdown).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ShutdownRuntime;

// ---- to a ConnectorSupervisor ----

/// Schedules a task of this connector (see `sdk::Scheduler::schedule`).
#[derive(Message)]
#[rtype(result = "Result<Uuid, TaskError>")]
pub struct ScheduleTask {
    /// The scheduling task, if any.
    pub parent: Option<RunRef>,
    /// The connector's descriptor.
    pub descriptor: Value,
    /// The options.
    pub options: ScheduleOptions,
}

/// Asks for a concurrency slot; `grant` fires when the run may go, with the connector
/// instance the run must use.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AcquireSlot {
    /// The run asking (slots belong to runs, so an old and a new run never share one).
    pub run: RunRef,
    /// Fired when the slot is granted.
    pub grant: oneshot::Sender<std::sync::Arc<super::host::ConnectorInstance>>,
}

/// Gives a slot back (idempotent).
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReleaseSlot {
    /// The run releasing.
    pub run: RunRef,
}

/// A task actor has stopped, for whatever reason: the supervisor forgets it (if it is still
/// the current run) so that a later schedule is not mistaken for a no-op.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TaskGone {
    /// The run whose actor stopped.
    pub run: RunRef,
}

/// A run is about to send the write that ends its task: from now on the supervisor decides
/// new schedules of the task against the durable status.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RunEnding {
    /// The run.
    pub run: RunRef,
}

/// A task actor reports that its task ended (TERMINATED or FAILED), durably; its body is over.
#[derive(Message)]
#[rtype(result = "()")]
pub struct TaskEnded {
    /// The run that ended.
    pub run: RunRef,
    /// Its outcome, for RUN_NOW_SYNC waiters.
    pub outcome: Result<(), TaskError>,
}

/// Why a task actor is being stopped; decides what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Service shutdown: the status is left as it is; the task resumes at the next boot.
    Shutdown,
    /// Connector paused: as shutdown, and nothing starts until resume.
    Pause,
    /// Connector uninstalled or reset: its rows are about to be deleted.
    Uninstall,
    /// A newer run of the same task replaces this one (STOP_AND_RESTART).
    Superseded,
    /// Stopped with its parent: becomes STOPPED.
    Stopped,
}

/// Stops a task actor; answered once its run has ended (or was dropped after the grace period)
/// and what the stop writes has landed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopTask {
    /// Why.
    pub mode: StopMode,
}

/// Stops every task of the connector (shutdown, pause or uninstall); answered when all ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopAllTasks {
    /// Why.
    pub mode: StopMode,
}

/// Starts the connector's live tasks from the database (boot, resume, after reset). A no-op
/// unless the supervisor is paused: a new supervisor starts paused, and runs that go on are
/// never taken for interrupted.
#[derive(Message)]
#[rtype(result = "Result<usize, RuntimeError>")]
pub struct ResumeTasks;

/// Runs the connector's install or uninstall hook.
#[derive(Message)]
#[rtype(result = "Result<(), TaskError>")]
pub enum RunHook {
    /// `Connector::install`.
    Install,
    /// `Connector::uninstall`.
    Uninstall,
}

/// Swaps in a connector built from a new config, then runs its `config_updated` hook.
#[derive(Message)]
#[rtype(result = "Result<(), TaskError>")]
pub struct ReplaceConnector {
    /// The new connector value.
    pub connector: std::sync::Arc<dyn crate::sdk::Connector>,
    /// Masks the new config's secrets (added to the old ones').
    pub redactor: crate::redact::Redactor,
}

/// A call into an installed connector from outside its tasks (money out, bank accounts,
/// webhooks): the function gets the current connector value and a context to schedule with,
/// and runs spawned on the supervisor's side, so a panic is an error, not a crash.
pub struct CallConnector<T> {
    /// The connector.
    pub connector_id: String,
    /// What to do with it.
    pub call: ConnectorCall<T>,
}

/// The function a [`CallConnector`] carries.
pub type ConnectorCall<T> = Box<
    dyn FnOnce(
            std::sync::Arc<dyn crate::sdk::Connector>,
            crate::sdk::ConnectorContext,
        ) -> futures::future::BoxFuture<'static, Result<T, TaskError>>
        + Send,
>;

impl<T: Send + 'static> actix::Message for CallConnector<T> {
    type Result = Result<T, RuntimeError>;
}

/// Runs an ended task again (supervisor side of [`RestartTask`]).
#[derive(Message)]
#[rtype(result = "Result<(), RuntimeError>")]
pub struct RerunTask {
    /// The task.
    pub task_id: Uuid,
}

/// Stops the supervisor itself (after its tasks were stopped).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSupervisor;
