//! `ConnectorSupervisor`: one per installed connector. It owns the connector value, starts a
//! `TaskActor` per live task, decides what a new schedule does (DESIGN §3's restart table),
//! hands out the `allow_tasks` concurrency slots FIFO, answers RUN_NOW_SYNC waiters and stops
//! task trees (a task with its children).
//!
//! Decisions against the stored status of tasks that are not live in memory (new, or ended)
//! are made by the database in one statement (`UpsertTask`), so ended tasks need no memory.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, RwLock};

use actix::fut::wrap_future;
use actix::prelude::*;
use futures::future::join_all;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::error::{RuntimeError, task_error};
use super::host::ConnectorHost;
use super::messages::{
    AcquireSlot, ReleaseSlot, ReplaceConnector, RerunTask, ResumeTasks, RunHook, ScheduleTask,
    StopAllTasks, StopMode, StopSupervisor, StopTask, TaskEnded, TaskGone,
};
use super::policy::{self, Counters};
use super::task_actor::{TaskActor, TaskSpec};
use crate::ids;
use crate::redact::Redactor;
use crate::sdk::host::RunRef;
use crate::sdk::{
    Clock, Connector, ConnectorContext, Restart, Schedule, ScheduleOptions, TaskError, TaskStatus,
};
use crate::settings::RuntimeSettings;
use crate::storage::commands::tasks::{FailInterrupted, UpsertOutcome, UpsertTask};
use crate::storage::queries::tasks::TaskRow;
use crate::storage::{StorageHandle, queries};

/// A live task as the supervisor tracks it.
struct LiveTask {
    /// None while its first write is in flight (a placeholder that makes concurrent
    /// schedules of the same descriptor no-ops).
    addr: Option<Addr<TaskActor>>,
    parent: Option<Uuid>,
    periodic: bool,
    run: i64,
}

/// The `allow_tasks` slots: who holds one, who waits (FIFO).
struct Slots {
    limit: usize,
    holders: HashSet<RunRef>,
    queue: VecDeque<(RunRef, oneshot::Sender<()>)>,
}

impl Slots {
    fn grant(&mut self) {
        while self.holders.len() < self.limit {
            let Some((run, grant)) = self.queue.pop_front() else {
                break;
            };
            if grant.is_closed() || !self.holders.insert(run) {
                continue;
            }
            if grant.send(()).is_err() {
                self.holders.remove(&run);
            }
        }
    }
}

type Waiters = HashMap<Uuid, Vec<oneshot::Sender<Result<(), TaskError>>>>;

/// The supervisor of one connector.
pub struct ConnectorSupervisor {
    host: Arc<ConnectorHost>,
    paused: bool,
    tasks: HashMap<Uuid, LiveTask>,
    slots: Slots,
    waiters: Waiters,
}

/// What a supervisor needs to start.
pub struct SupervisorConfig {
    /// Formance's connector id.
    pub connector_id: String,
    /// The connector value.
    pub connector: Arc<dyn Connector>,
    /// Masks the secrets of the config the connector was built from.
    pub redactor: Redactor,
    /// The most concurrent runs.
    pub allow_tasks: usize,
    /// Start paused (nothing runs until resumed).
    pub paused: bool,
    /// The storage actor.
    pub storage: StorageHandle,
    /// The runtime's clock.
    pub clock: Arc<dyn Clock>,
    /// Grace period and backoff.
    pub settings: RuntimeSettings,
}

impl ConnectorSupervisor {
    /// Starts a supervisor on the current arbiter. It runs no task until told to resume.
    pub fn launch(config: SupervisorConfig) -> Addr<Self> {
        Actor::create(move |ctx| {
            let host = Arc::new(ConnectorHost {
                connector_id: config.connector_id,
                storage: config.storage,
                clock: config.clock,
                settings: config.settings,
                connector: RwLock::new(config.connector),
                supervisor: ctx.address(),
                redactor: RwLock::new(config.redactor),
            });
            ConnectorSupervisor {
                host,
                paused: config.paused,
                tasks: HashMap::new(),
                slots: Slots {
                    limit: config.allow_tasks.max(1),
                    holders: HashSet::new(),
                    queue: VecDeque::new(),
                },
                waiters: HashMap::new(),
            }
        })
    }

    /// Starts the actor of a live task (unless paused: it then waits in the database). An
    /// actor of an older run of the same task, if any, is superseded: its writes are already
    /// fenced off, and it is stopped so that two runs never go on side by side.
    fn start_task(&mut self, spec: TaskSpec) {
        let id = spec.run.task_id;
        if let Some(old) = self.tasks.get(&id).and_then(|t| t.addr.clone()) {
            old.do_send(StopTask {
                mode: StopMode::Superseded,
            });
        }
        if self.paused {
            self.tasks.remove(&id);
            return;
        }
        let entry = LiveTask {
            addr: None,
            parent: spec.parent,
            periodic: spec.options.is_periodic(),
            run: spec.run.run,
        };
        let addr = TaskActor::new(spec, self.host.clone()).start();
        self.tasks.insert(
            id,
            LiveTask {
                addr: Some(addr),
                ..entry
            },
        );
    }

    fn add_waiter(&mut self, id: Uuid) -> oneshot::Receiver<Result<(), TaskError>> {
        let (tx, rx) = oneshot::channel();
        self.waiters.entry(id).or_default().push(tx);
        rx
    }

    fn notify(&mut self, id: Uuid, outcome: &Result<(), TaskError>) {
        for waiter in self.waiters.remove(&id).unwrap_or_default() {
            let _ = waiter.send(outcome.clone());
        }
    }

    /// The live descendants of `root` (children, grandchildren …), nearest first.
    fn descendants(&self, root: Uuid) -> Vec<Uuid> {
        let mut found = Vec::new();
        let mut frontier = vec![root];
        while let Some(parent) = frontier.pop() {
            for (id, task) in &self.tasks {
                if task.parent == Some(parent) && !found.contains(id) {
                    found.push(*id);
                    frontier.push(*id);
                }
            }
        }
        found
    }

    /// Stops the live children of `root` (they become STOPPED) and `root` itself with
    /// `root_mode`; resolves when every run has ended.
    fn stop_tree(&mut self, root: Uuid, root_mode: StopMode) -> impl Future<Output = ()> + use<> {
        let mut stops = Vec::new();
        for id in self.descendants(root) {
            if let Some(task) = self.tasks.remove(&id) {
                self.notify(id, &Err(TaskError::Stopped));
                if let Some(addr) = task.addr {
                    stops.push(addr.send(StopTask {
                        mode: StopMode::Stopped,
                    }));
                }
            }
        }
        if let Some(addr) = self.tasks.get(&root).and_then(|t| t.addr.clone()) {
            stops.push(addr.send(StopTask { mode: root_mode }));
        }
        async move {
            join_all(stops).await;
        }
    }

    /// STOP_AND_RESTART of a live task: fence the old run with a new run number, stop it (and
    /// its children), then start the new run with the new options.
    fn stop_and_restart(
        &mut self,
        command: UpsertTask,
        parent: Option<Uuid>,
        sync: bool,
    ) -> ResponseActFuture<Self, Result<Uuid, TaskError>> {
        let id = command.id;
        let storage = self.host.storage.clone();
        let descriptor = command.descriptor.clone();
        let options = command.options.clone();
        let due_at = command.due_at;
        Box::pin(
            wrap_future::<_, Self>(async move { storage.write(command).await }).then(
                move |written, act, _ctx| -> ResponseActFuture<Self, Result<Uuid, TaskError>> {
                    let (run, state) = match written {
                        Ok(UpsertOutcome::Started { run, state }) => (run, state),
                        Ok(UpsertOutcome::Unchanged { .. }) => return Box::pin(fut::ready(Ok(id))),
                        Err(e) => return Box::pin(fut::ready(Err(task_error(e)))),
                    };
                    let stopped = act.stop_tree(id, StopMode::Superseded);
                    Box::pin(wrap_future::<_, Self>(stopped).then(move |(), act, _ctx| {
                        let waiter = sync.then(|| act.add_waiter(id));
                        act.start_task(TaskSpec::new_run(
                            RunRef { task_id: id, run },
                            parent,
                            descriptor,
                            options,
                            due_at,
                            state,
                        ));
                        wrap_future(await_outcome(id, waiter))
                    }))
                },
            ),
        )
    }

    fn spec_from_row(row: TaskRow) -> TaskSpec {
        TaskSpec {
            run: RunRef {
                task_id: row.id,
                run: row.run_number,
            },
            parent: row.parent_id,
            descriptor: row.descriptor,
            options: row.options,
            status: row.status,
            counters: Counters {
                attempts: row.attempts,
                restarts: row.restarts,
                failing_since: None,
            },
            error: row.error,
            due_at: row.due_at,
            state: row.state,
        }
    }
}

/// Waits for a RUN_NOW_SYNC outcome (or answers at once without a waiter).
async fn await_outcome(
    id: Uuid,
    waiter: Option<oneshot::Receiver<Result<(), TaskError>>>,
) -> Result<Uuid, TaskError> {
    match waiter {
        None => Ok(id),
        Some(rx) => match rx.await {
            Ok(Ok(())) => Ok(id),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(TaskError::Cancelled),
        },
    }
}

/// The outcome a RUN_NOW_SYNC no-op reports for an ended task.
fn ended_outcome(status: TaskStatus, error: Option<String>) -> Result<(), TaskError> {
    match status {
        TaskStatus::Terminated => Ok(()),
        TaskStatus::Stopped => Err(TaskError::Stopped),
        _ => Err(TaskError::Failed(
            error.unwrap_or_else(|| "task failed".into()),
        )),
    }
}

impl Actor for ConnectorSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<ScheduleTask> for ConnectorSupervisor {
    type Result = ResponseActFuture<Self, Result<Uuid, TaskError>>;

    fn handle(&mut self, msg: ScheduleTask, _ctx: &mut Self::Context) -> Self::Result {
        let ScheduleTask {
            parent,
            descriptor,
            options,
        } = msg;
        let key = ids::canonical_json(&descriptor);
        let id = ids::task_id(&self.host.connector_id, &key);
        let sync = options.schedule == Schedule::RunNowSync;
        let now = self.host.clock.now();
        let command = UpsertTask {
            id,
            connector_id: self.host.connector_id.clone(),
            parent_id: parent.map(|p| p.task_id),
            descriptor,
            due_at: policy::first_due(&options.schedule, now),
            options,
            now,
            force: false,
        };
        let parent_id = command.parent_id;

        if let Some(live) = self.tasks.get(&id) {
            if command.options.restart == Restart::StopAndRestart && live.addr.is_some() {
                let command = UpsertTask {
                    force: true,
                    ..command
                };
                return self.stop_and_restart(command, parent_id, sync);
            }
            // Scheduled again while live: a no-op (never two runs of one task).
            if !sync {
                return Box::pin(fut::ready(Ok(id)));
            }
            if live.periodic {
                return Box::pin(fut::ready(Err(TaskError::AlreadyScheduled)));
            }
            let waiter = self.add_waiter(id);
            return Box::pin(wrap_future(await_outcome(id, Some(waiter))));
        }

        // Not live in memory: a new task, an ended one, or one waiting while paused. For
        // STOP_AND_RESTART nothing runs to be stopped, so the new options always take over.
        let command = UpsertTask {
            force: command.options.restart == Restart::StopAndRestart,
            ..command
        };
        // A placeholder until the row is written: concurrent schedules see a live task.
        self.tasks.insert(
            id,
            LiveTask {
                addr: None,
                parent: parent_id,
                periodic: command.options.is_periodic(),
                run: -1,
            },
        );
        let waiter = sync.then(|| self.add_waiter(id));
        let storage = self.host.storage.clone();
        let descriptor = command.descriptor.clone();
        let options = command.options.clone();
        let due_at = command.due_at;
        Box::pin(
            wrap_future::<_, Self>(async move { storage.write(command).await })
                .map(move |written, act, _ctx| match written {
                    Ok(UpsertOutcome::Started { run, state }) => {
                        act.start_task(TaskSpec::new_run(
                            RunRef { task_id: id, run },
                            parent_id,
                            descriptor,
                            options,
                            due_at,
                            state,
                        ));
                        Step::Wait(waiter)
                    }
                    Ok(UpsertOutcome::Unchanged { status, error }) => {
                        act.tasks.remove(&id);
                        if status.is_live() {
                            // Live in the database only: the connector is paused.
                            return Step::Wait(waiter);
                        }
                        // A no-op on an ended task: RUN_NOW_SYNC gets its last outcome.
                        let outcome = ended_outcome(status, error);
                        act.notify(id, &outcome);
                        Step::Done(if sync { outcome.map(|()| id) } else { Ok(id) })
                    }
                    Err(e) => {
                        act.tasks.remove(&id);
                        let error = task_error(e);
                        act.notify(id, &Err(error.clone()));
                        Step::Done(Err(error))
                    }
                })
                .then(move |step, _act, _ctx| {
                    wrap_future(async move {
                        match step {
                            Step::Wait(waiter) => await_outcome(id, waiter).await,
                            Step::Done(result) => result,
                        }
                    })
                }),
        )
    }
}

/// Where a schedule stands once its row is written.
enum Step {
    /// Wait for the run's outcome (RUN_NOW_SYNC) or answer at once (no waiter).
    Wait(Option<oneshot::Receiver<Result<(), TaskError>>>),
    /// The answer is known.
    Done(Result<Uuid, TaskError>),
}

impl Handler<AcquireSlot> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: AcquireSlot, _ctx: &mut Self::Context) {
        self.slots.queue.push_back((msg.run, msg.grant));
        if !self.paused {
            self.slots.grant();
        }
    }
}

impl Handler<ReleaseSlot> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ReleaseSlot, _ctx: &mut Self::Context) {
        if self.slots.holders.remove(&msg.run) && !self.paused {
            self.slots.grant();
        }
    }
}

impl Handler<TaskEnded> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: TaskEnded, _ctx: &mut Self::Context) {
        let id = msg.run.task_id;
        if self.tasks.get(&id).map(|t| t.run) == Some(msg.run.run) {
            self.tasks.remove(&id);
            self.notify(id, &msg.outcome);
        }
    }
}

impl Handler<TaskGone> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: TaskGone, _ctx: &mut Self::Context) {
        let id = msg.run.task_id;
        if self.tasks.get(&id).map(|t| t.run) == Some(msg.run.run) {
            self.tasks.remove(&id);
            // A waiter of a run that ended without an outcome learns it was cancelled.
            self.notify(id, &Err(TaskError::Cancelled));
        }
    }
}

impl Handler<StopAllTasks> for ConnectorSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopAllTasks, _ctx: &mut Self::Context) -> Self::Result {
        self.paused = true;
        // Waiters are dropped: a RUN_NOW_SYNC caller sees its wait cancelled.
        self.waiters.clear();
        self.slots.queue.clear();
        let stops: Vec<_> = self
            .tasks
            .drain()
            .filter_map(|(_, task)| task.addr)
            .map(|addr| addr.send(StopTask { mode: msg.mode }))
            .collect();
        Box::pin(async move {
            join_all(stops).await;
        })
    }
}

impl Handler<ResumeTasks> for ConnectorSupervisor {
    type Result = ResponseActFuture<Self, Result<usize, RuntimeError>>;

    fn handle(&mut self, _msg: ResumeTasks, _ctx: &mut Self::Context) -> Self::Result {
        self.paused = false;
        let storage = self.host.storage.clone();
        let connector_id = self.host.connector_id.clone();
        let now = self.host.clock.now();
        let load = async move {
            let failed = storage
                .write(FailInterrupted {
                    connector_id: connector_id.clone(),
                    now,
                })
                .await?;
            if !failed.is_empty() {
                tracing::warn!(%connector_id, tasks = ?failed, "interrupted runs marked FAILED (on_interrupt = FAIL)");
            }
            queries::tasks::live(storage.pool(), &connector_id).await
        };
        Box::pin(wrap_future::<_, Self>(load).map(|rows, act, _ctx| {
            let rows = rows?;
            let mut resumed = 0;
            for row in rows {
                if act.tasks.contains_key(&row.id) {
                    continue;
                }
                act.start_task(Self::spec_from_row(row));
                resumed += 1;
            }
            act.slots.grant();
            Ok(resumed)
        }))
    }
}

impl Handler<RunHook> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<(), TaskError>>;

    fn handle(&mut self, msg: RunHook, _ctx: &mut Self::Context) -> Self::Result {
        let connector = self.host.connector();
        let ctx = ConnectorContext::new(self.host.clone());
        let host = self.host.clone();
        // Hooks run like task bodies: spawned, so a panic is a failure, not a crash.
        let handle = actix_rt::spawn(async move {
            match msg {
                RunHook::Install => connector.install(&ctx).await,
                RunHook::Uninstall => connector.uninstall(&ctx).await,
            }
        });
        Box::pin(async move {
            let outcome = match handle.await {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => Err(TaskError::Failed("connector hook panicked".into())),
                Err(_) => Err(TaskError::Cancelled),
            };
            // Hook errors are logged and answered by the manager: no secret may be in them.
            outcome.map_err(|e| host.redact(e))
        })
    }
}

impl Handler<ReplaceConnector> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<(), TaskError>>;

    fn handle(&mut self, msg: ReplaceConnector, _ctx: &mut Self::Context) -> Self::Result {
        *self
            .host
            .connector
            .write()
            .unwrap_or_else(|e| e.into_inner()) = msg.connector.clone();
        {
            // Old secrets stay masked too: a run that started before the swap still uses them.
            let mut redactor = self
                .host
                .redactor
                .write()
                .unwrap_or_else(|e| e.into_inner());
            *redactor = msg.redactor.merged(&redactor);
        }
        let ctx = ConnectorContext::new(self.host.clone());
        let connector = msg.connector;
        let host = self.host.clone();
        let handle = actix_rt::spawn(async move { connector.config_updated(&ctx).await });
        Box::pin(async move {
            let outcome = match handle.await {
                Ok(outcome) => outcome,
                Err(_) => Err(TaskError::Failed("config_updated hook panicked".into())),
            };
            outcome.map_err(|e| host.redact(e))
        })
    }
}

impl Handler<RerunTask> for ConnectorSupervisor {
    type Result = ResponseActFuture<Self, Result<(), RuntimeError>>;

    fn handle(&mut self, msg: RerunTask, _ctx: &mut Self::Context) -> Self::Result {
        let storage = self.host.storage.clone();
        let connector_id = self.host.connector_id.clone();
        let now = self.host.clock.now();
        let task_id = msg.task_id;
        let write = async move {
            let row = queries::tasks::get(storage.pool(), &connector_id, task_id)
                .await?
                .ok_or(RuntimeError::TaskNotFound(task_id))?;
            if row.status.is_live() {
                return Err(RuntimeError::TaskIsLive {
                    id: task_id,
                    status: row.status,
                });
            }
            let options: ScheduleOptions = row.options.clone();
            let command = UpsertTask {
                id: row.id,
                connector_id,
                parent_id: row.parent_id,
                descriptor: row.descriptor.clone(),
                // A restart runs now, whatever the original schedule's delay.
                due_at: None,
                options,
                now,
                force: true,
            };
            let outcome = storage.write(command).await?;
            Ok((row, outcome))
        };
        Box::pin(wrap_future::<_, Self>(write).map(move |result, act, _ctx| {
            let (row, outcome) = result?;
            if let UpsertOutcome::Started { run, state } = outcome {
                act.start_task(TaskSpec::new_run(
                    RunRef {
                        task_id: row.id,
                        run,
                    },
                    row.parent_id,
                    row.descriptor,
                    row.options,
                    None,
                    state,
                ));
            }
            Ok(())
        }))
    }
}

impl Handler<StopSupervisor> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, _msg: StopSupervisor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
