//! The supervisor's mailbox: messages become [`Event`]s for its [`Machine`]; effects become
//! writes through the storage actor, task actors started and stopped, answers and grants.

use std::collections::VecDeque;
use std::sync::Arc;

use actix::fut::wrap_future;
use actix::prelude::*;
use futures::future::join_all;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::machine::{Answer, Decision, Effect, Event, Machine, Request, ScheduleRequest};
use crate::domain::RunRef;
use crate::ids;
use crate::redact::Redactor;
use crate::runtime::error::{RuntimeError, task_error};
use crate::runtime::guard;
use crate::runtime::host::{ConnectorHost, ConnectorInstance, SupervisorLink};
use crate::runtime::messages::{
    AcquireSlot, CallConnector, ReleaseSlot, ReplaceConnector, RerunTask, ResumeTasks, RunEnding,
    RunHook, ScheduleTask, StopAllTasks, StopSupervisor, StopTask, TaskEnded, TaskGone,
};
use crate::runtime::policy::{self, Counters};
use crate::runtime::task::{TaskActor, TaskSpec};
use crate::sdk::{Clock, Connector, ConnectorContext, Schedule, TaskError};
use crate::settings::RuntimeSettings;
use crate::storage::commands::tasks::{FailInterrupted, UpsertMode, UpsertOutcome, UpsertTask};
use crate::storage::queries::tasks::TaskRow;
use crate::storage::{StorageHandle, queries};

/// Where a request's answer goes.
pub enum Reply {
    /// A schedule: the task id, or the run's error (RUN_NOW_SYNC).
    Schedule(Uuid, oneshot::Sender<Result<Uuid, TaskError>>),
    /// An operator's restart.
    Rerun(Uuid, oneshot::Sender<Result<(), RuntimeError>>),
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reply::Schedule(id, _) => write!(f, "Schedule({id})"),
            Reply::Rerun(id, _) => write!(f, "Rerun({id})"),
        }
    }
}

impl Reply {
    fn send(self, answer: Answer) {
        match self {
            Reply::Schedule(id, tx) => {
                let _ = tx.send(match answer {
                    Answer::Ok => Ok(id),
                    Answer::Err(e) => Err(e),
                    Answer::TaskNotFound => Err(TaskError::non_retryable("task not found")),
                    Answer::TaskIsLive(_) => Ok(id),
                });
            }
            Reply::Rerun(id, tx) => {
                let _ = tx.send(match answer {
                    Answer::Ok => Ok(()),
                    Answer::Err(e) => Err(RuntimeError::Task(e)),
                    Answer::TaskNotFound => Err(RuntimeError::TaskNotFound(id)),
                    Answer::TaskIsLive(status) => Err(RuntimeError::TaskIsLive { id, status }),
                });
            }
        }
    }

    fn sync(&self, request: &ScheduleRequest) -> bool {
        matches!(self, Reply::Schedule(..)) && request.options.schedule == Schedule::RunNowSync
    }
}

/// A slot grant: the run's channel for the connector instance.
pub type Grant = oneshot::Sender<Arc<ConnectorInstance>>;

/// The supervisor of one connector.
pub struct ConnectorSupervisor {
    machine: Machine<Addr<TaskActor>, Reply, Grant>,
    host: Arc<ConnectorHost>,
    instance: Arc<ConnectorInstance>,
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
    /// The storage actor.
    pub storage: StorageHandle,
    /// The runtime's clock.
    pub clock: Arc<dyn Clock>,
    /// Grace period and backoff.
    pub settings: RuntimeSettings,
}

impl ConnectorSupervisor {
    /// Starts a supervisor on the current arbiter, paused: it runs no task until
    /// [`ResumeTasks`].
    pub fn launch(config: SupervisorConfig) -> Addr<Self> {
        Actor::create(move |ctx| {
            let me = ctx.address();
            let host = Arc::new(ConnectorHost {
                connector_id: config.connector_id,
                storage: config.storage,
                clock: config.clock,
                settings: config.settings,
                link: SupervisorLink {
                    schedule: me.clone().recipient(),
                    acquire: me.clone().recipient(),
                    release: me.clone().recipient(),
                    ending: me.clone().recipient(),
                    ended: me.clone().recipient(),
                    gone: me.recipient(),
                },
            });
            ConnectorSupervisor {
                machine: Machine::new(config.allow_tasks),
                host,
                instance: Arc::new(ConnectorInstance {
                    connector: config.connector,
                    redactor: config.redactor,
                }),
            }
        })
    }

    /// Feeds `event` to the machine and carries out the effects; returns the stops it sent
    /// (to be awaited by whoever needs them done) and the load it asks for.
    fn apply(&mut self, event: Event<Reply, Grant>, ctx: &mut Context<Self>) -> Applied {
        let mut applied = Applied::default();
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            let host = self.host.clone();
            let mut spawn = |spec: TaskSpec| TaskActor::new(spec, host.clone()).start();
            for effect in self.machine.on(event, &mut spawn) {
                match effect {
                    Effect::Upsert { id, request, reply } => self.upsert(id, request, reply, ctx),
                    Effect::Rerun { id, reply } => self.rerun(id, reply, ctx),
                    Effect::Stop { addr, mode } => {
                        applied.stops.push(addr.send(StopTask { mode }));
                    }
                    Effect::Answer { to, answer } => to.send(answer),
                    Effect::Grant { to, run } => {
                        if to.send(self.instance.clone()).is_err() {
                            // The run stopped waiting: the slot goes to the next one.
                            events.push_back(Event::SlotReleased { run });
                        }
                    }
                    Effect::Load => applied.load = true,
                }
            }
        }
        applied
    }

    /// Applies `event`; the stops it sends are not awaited (the supervisor hears of each
    /// actor's end by itself).
    fn handle_event(&mut self, event: Event<Reply, Grant>, ctx: &mut Context<Self>) {
        spawn_stops(self.apply(event, ctx).stops);
    }

    /// Writes a schedule; its decision comes back as an event.
    fn upsert(
        &mut self,
        id: Uuid,
        request: ScheduleRequest,
        reply: Reply,
        ctx: &mut Context<Self>,
    ) {
        let force = request.replaces();
        let command = UpsertTask {
            id,
            connector_id: self.host.connector_id.clone(),
            parent_id: request.parent,
            descriptor: request.descriptor.clone(),
            options: request.options.clone(),
            due_at: request.due_at,
            now: self.host.clock.now(),
            mode: if force {
                UpsertMode::Force
            } else {
                UpsertMode::IfAllowed
            },
        };
        let storage = self.host.storage.clone();
        let replaces = force;
        let sync = reply.sync(&request);
        ctx.spawn(
            wrap_future::<_, Self>(async move { storage.write(command).await }).map(
                move |written, act, ctx| {
                    let decision = decision(written, request);
                    act.handle_event(
                        Event::Decided {
                            id,
                            replaces,
                            reply,
                            sync,
                            decision,
                        },
                        ctx,
                    );
                },
            ),
        );
    }

    /// Starts a new run of an ended task with its stored options; the decision comes back as
    /// an event.
    fn rerun(&mut self, id: Uuid, reply: Reply, ctx: &mut Context<Self>) {
        let storage = self.host.storage.clone();
        let connector_id = self.host.connector_id.clone();
        let now = self.host.clock.now();
        let write = async move {
            let Some(row) = queries::tasks::get(storage.pool(), &connector_id, id).await? else {
                return Ok(None);
            };
            let request = ScheduleRequest {
                parent: row.parent_id,
                descriptor: row.descriptor,
                options: row.options,
                // A restart runs now, whatever the original schedule's delay.
                due_at: None,
            };
            let command = UpsertTask {
                id,
                connector_id,
                parent_id: request.parent,
                descriptor: request.descriptor.clone(),
                options: request.options.clone(),
                due_at: None,
                now,
                mode: UpsertMode::IfEnded,
            };
            let written = storage.write(command).await;
            Ok(Some((written, request)))
        };
        ctx.spawn(wrap_future::<_, Self>(write).map(
            move |result: Result<_, crate::storage::StorageError>, act, ctx| {
                let decision = match result {
                    Ok(None) => Decision::NotFound,
                    // Live in the database (a run decided meanwhile, or a paused connector's).
                    Ok(Some((Ok(UpsertOutcome::Unchanged { status, .. }), _))) => {
                        Decision::Live(status)
                    }
                    Ok(Some((written, request))) => decision(written, request),
                    Err(e) => Decision::Failed(task_error(e)),
                };
                act.handle_event(
                    Event::Decided {
                        id,
                        replaces: false,
                        reply,
                        sync: false,
                        decision,
                    },
                    ctx,
                );
            },
        ));
    }
}

/// What a schedule's write decided.
fn decision(
    written: Result<UpsertOutcome, crate::storage::StorageError>,
    request: ScheduleRequest,
) -> Decision {
    match written {
        Ok(UpsertOutcome::Started { run, state }) => Decision::Started {
            run,
            state,
            request,
        },
        Ok(UpsertOutcome::Unchanged {
            status,
            error,
            periodic,
            run,
        }) => Decision::Unchanged {
            status,
            error,
            periodic,
            run,
        },
        Err(e) => Decision::Failed(task_error(e)),
    }
}

/// What [`ConnectorSupervisor::apply`] leaves to its caller.
#[derive(Default)]
struct Applied {
    stops: Vec<StopRequest>,
    /// The live tasks must be loaded (a resume of a paused supervisor).
    load: bool,
}

/// A stop sent to a task actor, answered once its run is over.
type StopRequest = actix::dev::Request<TaskActor, StopTask>;

/// A stored live task as a task actor's spec.
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
            failing_since: row.failing_since,
        },
        error: row.error,
        due_at: row.due_at,
        state: row.state,
    }
}

impl Actor for ConnectorSupervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1024);
    }
}

impl Handler<ScheduleTask> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<Uuid, TaskError>>;

    fn handle(&mut self, msg: ScheduleTask, ctx: &mut Self::Context) -> Self::Result {
        let key = ids::canonical_json(&msg.descriptor);
        let id = ids::task_id(&self.host.connector_id, &key);
        let request = ScheduleRequest {
            parent: msg.parent.map(|p| p.task_id),
            due_at: policy::first_due(&msg.options.schedule, self.host.clock.now()),
            descriptor: msg.descriptor,
            options: msg.options,
        };
        let (tx, rx) = oneshot::channel();
        self.handle_event(
            Event::Request {
                id,
                request: Request::Schedule {
                    request,
                    reply: Reply::Schedule(id, tx),
                },
            },
            ctx,
        );
        Box::pin(async move { rx.await.unwrap_or(Err(TaskError::Cancelled)) })
    }
}

impl Handler<RerunTask> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: RerunTask, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        let id = msg.task_id;
        self.handle_event(
            Event::Request {
                id,
                request: Request::Rerun {
                    reply: Reply::Rerun(id, tx),
                },
            },
            ctx,
        );
        Box::pin(async move { rx.await.unwrap_or(Err(RuntimeError::Stopped)) })
    }
}

/// Sends stops whose completion nobody awaits (STOP_AND_RESTART: the new run starts when the
/// old actor is gone, which the supervisor hears of by itself).
fn spawn_stops(stops: Vec<StopRequest>) {
    for stop in stops {
        actix_rt::spawn(async move {
            let _ = stop.await;
        });
    }
}

impl Handler<AcquireSlot> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: AcquireSlot, ctx: &mut Self::Context) {
        self.handle_event(
            Event::SlotWanted {
                run: msg.run,
                grant: msg.grant,
            },
            ctx,
        );
    }
}

impl Handler<ReleaseSlot> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: ReleaseSlot, ctx: &mut Self::Context) {
        self.handle_event(Event::SlotReleased { run: msg.run }, ctx);
    }
}

impl Handler<RunEnding> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: RunEnding, ctx: &mut Self::Context) {
        self.handle_event(Event::Ending { run: msg.run }, ctx);
    }
}

impl Handler<TaskEnded> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: TaskEnded, ctx: &mut Self::Context) {
        self.handle_event(
            Event::Ended {
                run: msg.run,
                outcome: msg.outcome,
            },
            ctx,
        );
    }
}

impl Handler<TaskGone> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, msg: TaskGone, ctx: &mut Self::Context) {
        self.handle_event(Event::Gone { run: msg.run }, ctx);
    }
}

impl Handler<StopAllTasks> for ConnectorSupervisor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopAllTasks, ctx: &mut Self::Context) -> Self::Result {
        let applied = self.apply(Event::StopAll { mode: msg.mode }, ctx);
        Box::pin(async move {
            join_all(applied.stops).await;
        })
    }
}

impl Handler<ResumeTasks> for ConnectorSupervisor {
    type Result = ResponseActFuture<Self, Result<usize, RuntimeError>>;

    fn handle(&mut self, _msg: ResumeTasks, ctx: &mut Self::Context) -> Self::Result {
        let applied = self.apply(Event::Resume, ctx);
        if !applied.load {
            // Not paused (or a resume already loading): nothing was interrupted.
            return Box::pin(fut::ready(Ok(0)));
        }
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
        Box::pin(wrap_future::<_, Self>(load).map(|rows, act, ctx| {
            let rows = match rows {
                Ok(rows) => rows,
                Err(e) => {
                    // Still paused: a later resume tries again.
                    act.handle_event(Event::LoadFailed, ctx);
                    return Err(RuntimeError::from(e));
                }
            };
            let tasks: Vec<TaskSpec> = rows.into_iter().map(spec_from_row).collect();
            let resumed = tasks.len();
            act.handle_event(Event::Loaded { tasks }, ctx);
            Ok(resumed)
        }))
    }
}

impl Handler<RunHook> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<(), TaskError>>;

    fn handle(&mut self, msg: RunHook, _ctx: &mut Self::Context) -> Self::Result {
        let instance = self.instance.clone();
        let ctx = ConnectorContext::new(self.host.clone());
        // Hooks run like task bodies: spawned, so a panic is a failure, not a crash.
        let connector = instance.connector.clone();
        let (outcome, _) = guard::spawn("connector hook", async move {
            match msg {
                RunHook::Install => connector.install(&ctx).await,
                RunHook::Uninstall => connector.uninstall(&ctx).await,
            }
        });
        Box::pin(async move {
            // Hook errors are logged and answered by the manager: no secret may be in them.
            outcome.await.map_err(|e| instance.redactor.task_error(e))
        })
    }
}

impl<T: Send + 'static> Handler<CallConnector<T>> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<T, RuntimeError>>;

    fn handle(&mut self, msg: CallConnector<T>, _ctx: &mut Self::Context) -> Self::Result {
        let instance = self.instance.clone();
        let ctx = ConnectorContext::new(self.host.clone());
        let call = (msg.call)(instance.connector.clone(), ctx);
        // Spawned like a hook: a panic in the connector is an error answered to the caller.
        let (outcome, _) = guard::spawn("connector call", call);
        Box::pin(async move {
            outcome
                .await
                .map_err(|e| RuntimeError::ConnectorCallFailed(instance.redactor.task_error(e)))
        })
    }
}

impl Handler<ReplaceConnector> for ConnectorSupervisor {
    type Result = ResponseFuture<Result<(), TaskError>>;

    fn handle(&mut self, msg: ReplaceConnector, _ctx: &mut Self::Context) -> Self::Result {
        // Old secrets stay masked too: a run that started before the swap still uses them.
        let redactor = msg.redactor.merged(&self.instance.redactor);
        self.instance = Arc::new(ConnectorInstance {
            connector: msg.connector,
            redactor,
        });
        let instance = self.instance.clone();
        let ctx = ConnectorContext::new(self.host.clone());
        let connector = instance.connector.clone();
        let (outcome, _) = guard::spawn("config_updated hook", async move {
            connector.config_updated(&ctx).await
        });
        Box::pin(async move { outcome.await.map_err(|e| instance.redactor.task_error(e)) })
    }
}

impl Handler<StopSupervisor> for ConnectorSupervisor {
    type Result = ();

    fn handle(&mut self, _msg: StopSupervisor, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
