//! `TaskActor`: the mailbox of one live task. It turns timers, slot grants, the body's end,
//! write results and stop requests into events for its [`Machine`], and carries out the
//! effects: it spawns the body (so a panic becomes a failure instead of killing anything),
//! writes through the storage actor (retrying until the database takes a write), and reports
//! to its supervisor through the recipients in [`ConnectorHost::link`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::TaskSpec;
use super::machine::{Effect, Event, Machine, Written};
use crate::runtime::guard;
use crate::runtime::host::{ConnectorHost, ConnectorInstance};
use crate::runtime::messages::{
    AcquireSlot, ReleaseSlot, RunEnding, StopTask, TaskEnded, TaskGone,
};
use crate::sdk::host::Host;
use crate::sdk::{FinalWrite, TaskContext, TaskError};
use crate::storage::StorageError;
use crate::storage::commands::tasks::UpdateTaskRun;

/// A run that ends sooner never has its PENDING → ACTIVE write sent.
const ACTIVE_AFTER: Duration = Duration::from_millis(100);

/// How long to wait between attempts of a status write the database refused.
const WRITE_RETRY: Duration = Duration::from_millis(500);

/// The actor of one live task.
pub struct TaskActor {
    machine: Machine,
    /// The descriptor as compact JSON: idle periodic tasks are many, and a parsed JSON object
    /// costs hundreds of bytes where its text costs tens. Parsed again for each run.
    descriptor: Box<str>,
    host: Arc<ConnectorHost>,
    /// The connector (and its secrets' redactor) of the current run, handed over with the
    /// slot grant: a run sees the config that was current when it started.
    instance: Option<Arc<ConnectorInstance>>,
    state: Arc<Mutex<Option<Value>>>,
    timer: Option<SpawnHandle>,
    body: Option<(CancellationToken, tokio::task::AbortHandle)>,
    /// The current run's final write, when the run may end with one (not periodic).
    final_write: Option<Arc<FinalWrite>>,
    /// Cancelled when a stop that writes nothing (shutdown, pause, uninstall) arrives.
    give_up: CancellationToken,
    stop_waiters: Vec<oneshot::Sender<()>>,
    span: tracing::Span,
}

impl TaskActor {
    /// A task actor for `spec`, run by the connector behind `host`.
    pub fn new(mut spec: TaskSpec, host: Arc<ConnectorHost>) -> Self {
        let state = Arc::new(Mutex::new(spec.state.take()));
        let descriptor = std::mem::take(&mut spec.descriptor)
            .to_string()
            .into_boxed_str();
        let span = tracing::info_span!(
            "task",
            connector_id = %host.connector_id,
            task_id = %spec.run.task_id,
            run = spec.run.run,
        );
        let machine = Machine::new(&spec, host.clock.now());
        Self {
            machine,
            descriptor,
            host,
            instance: None,
            state,
            timer: None,
            body: None,
            final_write: None,
            give_up: CancellationToken::new(),
            stop_waiters: Vec::new(),
            span,
        }
    }

    /// Feeds `event` to the machine and carries out what follows, until nothing does.
    fn apply(&mut self, event: Event, ctx: &mut Context<Self>) {
        let mut events = VecDeque::from([event]);
        while let Some(event) = events.pop_front() {
            for effect in self.machine.on(event, &self.host.settings) {
                if let Some(next) = self.perform(effect, ctx) {
                    events.push_back(next);
                }
            }
        }
    }

    fn perform(&mut self, effect: Effect, ctx: &mut Context<Self>) -> Option<Event> {
        let run = self.machine.run;
        match effect {
            Effect::ArmTimer(due) => {
                let sleep = self.host.clock.sleep_until(due);
                self.timer = Some(ctx.spawn(sleep.into_actor(self).map(|(), act, ctx| {
                    act.timer = None;
                    act.apply(Event::Due, ctx);
                })));
            }
            Effect::CancelTimer => {
                if let Some(timer) = self.timer.take() {
                    ctx.cancel_future(timer);
                }
            }
            Effect::RequestSlot => {
                let (grant, granted) = oneshot::channel();
                self.host.link.acquire.do_send(AcquireSlot { run, grant });
                ctx.spawn(granted.into_actor(self).map(|granted, act, ctx| {
                    // No grant: the supervisor dropped the request (a stop follows).
                    if let Ok(instance) = granted {
                        act.instance = Some(instance);
                        let now = act.host.clock.now();
                        act.apply(Event::Granted { now }, ctx);
                    }
                }));
            }
            Effect::ReleaseSlot => self.host.link.release.do_send(ReleaseSlot { run }),
            Effect::StartBody => return self.start_body(ctx),
            Effect::CancelBody => {
                if let Some((cancel, _)) = &self.body {
                    cancel.cancel();
                }
                ctx.run_later(self.host.settings.task_grace_period, |act, ctx| {
                    act.apply(Event::GraceOver, ctx)
                });
            }
            Effect::AbortBody => {
                if let Some((_, abort)) = &self.body {
                    self.span.in_scope(|| {
                        tracing::warn!("task did not stop within the grace period; dropped")
                    });
                    abort.abort();
                }
            }
            Effect::ArmActive { attempt } => {
                ctx.run_later(ACTIVE_AFTER, move |act, ctx| {
                    let final_sent = act.final_write.as_ref().is_some_and(|f| f.sent());
                    let now = act.host.clock.now();
                    act.apply(
                        Event::ActiveDue {
                            attempt,
                            final_sent,
                            now,
                        },
                        ctx,
                    );
                });
            }
            Effect::Write(update) => self.write(update, ctx),
            Effect::WriteDetached(update) => self.host.storage.write_detached(update),
            Effect::GiveUpWrites => self.give_up.cancel(),
            Effect::Ending => self.host.link.ending.do_send(RunEnding { run }),
            Effect::Ended(outcome) => self.host.link.ended.do_send(TaskEnded { run, outcome }),
            Effect::Count(name) => {
                metrics::counter!(name, "connector_id" => self.host.connector_id.clone())
                    .increment(1)
            }
            Effect::Close => {
                for waiter in self.stop_waiters.drain(..) {
                    let _ = waiter.send(());
                }
                ctx.stop();
            }
        }
        None
    }

    /// Resolves the descriptor with the granted connector and spawns the body.
    fn start_body(&mut self, ctx: &mut Context<Self>) -> Option<Event> {
        let Some(instance) = self.instance.clone() else {
            return Some(self.ended(Err(TaskError::failed("no connector was granted"))));
        };
        let task = serde_json::from_str::<Value>(&self.descriptor)
            .map_err(|e| TaskError::non_retryable(format!("stored descriptor: {e}")))
            .and_then(|descriptor| {
                crate::runtime::builtin::resolve(&instance.connector, &descriptor, &self.host)
            });
        let task = match task {
            Ok(task) => task,
            Err(e) => return Some(self.ended(Err(e))),
        };
        let cancel = CancellationToken::new();
        let host: Arc<dyn Host> = self.host.clone();
        self.final_write = (!self.machine.options.is_periodic()).then(Default::default);
        let task_ctx = TaskContext::new(
            host,
            self.machine.run,
            cancel.clone(),
            self.state.clone(),
            self.final_write.clone(),
        );
        // A span per run (the actor's own span lives as long as the task, across the runs of
        // a periodic one): a trace backend gets one finished span for each, with its ids.
        // A root, not a child of the actor's span, which would never end for a periodic task.
        let run = self.machine.run;
        let run_span = tracing::info_span!(
            parent: None,
            "task_run",
            connector_id = %self.host.connector_id,
            task_id = %run.task_id,
            run = run.run,
        );
        let body = async move { task.run(task_ctx).await }.instrument(run_span);
        let (outcome, abort) = guard::spawn("task", body);
        self.body = Some((cancel, abort));
        ctx.spawn(outcome.into_actor(self).map(|outcome, act, ctx| {
            act.body = None;
            let event = act.ended(outcome);
            act.apply(event, ctx);
        }));
        None
    }

    /// The event of a run's end, its error masked (from here it is logged, stored and
    /// handed to waiters: no secret may be in it).
    fn ended(&mut self, outcome: Result<(), TaskError>) -> Event {
        // The instance was this run's: the next run gets the one current at its grant, and an
        // idle actor keeps no replaced connector alive.
        let outcome = match self.instance.take() {
            Some(instance) => outcome.map_err(|e| instance.redactor.task_error(e)),
            None => outcome,
        };
        self.span.in_scope(|| match &outcome {
            Ok(()) => tracing::debug!("run succeeded"),
            Err(e) => tracing::warn!(error = %e, "run failed"),
        });
        let final_committed = self.final_write.take().is_some_and(|f| f.committed());
        Event::BodyEnded {
            outcome,
            final_committed,
            now: self.host.clock.now(),
            jitter: rand::random::<f64>(),
        }
    }

    /// Writes `update`, retrying until the database takes it — unless a newer run owns the
    /// task, or a stop that writes nothing gives it up (the run is redone at the next start).
    fn write(&mut self, update: UpdateTaskRun, ctx: &mut Context<Self>) {
        let storage = self.host.storage.clone();
        let giving_up = self.give_up.clone();
        let write = async move {
            loop {
                match storage.write(update.clone()).await {
                    Ok(()) => return Written::Ok,
                    Err(StorageError::Superseded { .. }) => return Written::Superseded,
                    Err(e) => {
                        tracing::warn!(error = %e, "task status write failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(WRITE_RETRY) => {}
                            _ = giving_up.cancelled() => {
                                return Written::Failed(crate::runtime::error::task_error(e));
                            }
                        }
                    }
                }
            }
        }
        .instrument(self.span.clone());
        ctx.spawn(write.into_actor(self).map(|written, act, ctx| {
            if written != Written::Ok {
                act.span
                    .in_scope(|| tracing::info!(?written, "task write not taken; stopping"));
            }
            let now = act.host.clock.now();
            act.apply(Event::Written { written, now }, ctx);
        }));
    }
}

impl Actor for TaskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Idle periodic tasks are many: keep each actor's mailbox small.
        ctx.set_mailbox_capacity(4);
        let now = self.host.clock.now();
        self.apply(Event::Begin { now }, ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Whatever happened, never keep a slot or a body, and never leave the supervisor
        // believing the task is still run by this actor.
        let run = self.machine.run;
        self.host.link.release.do_send(ReleaseSlot { run });
        self.host.link.gone.do_send(TaskGone { run });
        if let Some((_, abort)) = &self.body {
            abort.abort();
        }
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }
}

impl Handler<StopTask> for TaskActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, msg: StopTask, ctx: &mut Self::Context) -> Self::Result {
        let (tx, rx) = oneshot::channel();
        self.stop_waiters.push(tx);
        let now = self.host.clock.now();
        self.apply(
            Event::Stop {
                mode: msg.mode,
                now,
            },
            ctx,
        );
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
