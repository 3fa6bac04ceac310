//! `TaskActor`: one per live task. It waits for the task's due time, takes a concurrency slot
//! from its supervisor, runs the task body as a spawned future (so a panic becomes a failure
//! instead of killing anything), applies the retry/restart policy and persists every step.
//!
//! A run's writes are fenced on its run number, so a superseded run can no longer write.
//! Final status writes are retried until the database takes them: they are never lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::host::ConnectorHost;
use super::messages::{AcquireSlot, ReleaseSlot, StopMode, StopTask, TaskEnded, TaskGone};
use super::policy::{self, Counters, Next};
use super::supervisor::ConnectorSupervisor;
use crate::sdk::host::{Host, RunRef};
use crate::sdk::{FinalWrite, OnInterrupt, ScheduleOptions, TaskContext, TaskError, TaskStatus};
use crate::storage::StorageError;
use crate::storage::commands::tasks::UpdateTaskRun;

/// A run that ends sooner never has its PENDING → ACTIVE write sent.
const ACTIVE_AFTER: Duration = Duration::from_millis(100);

/// How long to wait between attempts of a status write the database refused transiently.
const WRITE_RETRY: Duration = Duration::from_millis(500);

/// What the actor is doing.
enum Phase {
    /// Waiting for the due time (or for nothing, between steps).
    Idle,
    /// Waiting for a concurrency slot.
    AwaitingSlot,
    /// The body runs; `cancel` asks it to stop, `abort` drops it.
    Running {
        cancel: CancellationToken,
        abort: tokio::task::AbortHandle,
    },
    /// Persisting the outcome of a run.
    Writing,
}

/// Everything needed to start a task actor.
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

/// The actor of one live task.
pub struct TaskActor {
    spec: TaskSpec,
    /// The descriptor as compact JSON: idle periodic tasks are many, and a parsed JSON object
    /// costs hundreds of bytes where its text costs tens. Parsed again for each run.
    descriptor: Box<str>,
    host: Arc<ConnectorHost>,
    /// The due time of the current periodic tick (retries keep it; success moves it).
    tick: DateTime<Utc>,
    state: Arc<Mutex<Option<Value>>>,
    phase: Phase,
    timer: Option<SpawnHandle>,
    stopping: Option<StopMode>,
    stop_waiters: Vec<oneshot::Sender<()>>,
    span: tracing::Span,
    /// Counts runs started by this actor, so a delayed write knows whether its run is over.
    attempt: u64,
    /// Cancelled when a stop that writes nothing (shutdown, pause, uninstall) arrives.
    give_up: CancellationToken,
    /// The current run's final write, when the run may end with one (not periodic).
    final_write: Option<Arc<FinalWrite>>,
}

impl TaskActor {
    /// A task actor for `spec`, run by the connector behind `host`.
    pub fn new(mut spec: TaskSpec, host: Arc<ConnectorHost>) -> Self {
        let state = Arc::new(Mutex::new(spec.state.take()));
        let descriptor = std::mem::take(&mut spec.descriptor)
            .to_string()
            .into_boxed_str();
        let tick = spec.due_at.unwrap_or_else(|| host.clock.now());
        let span = tracing::info_span!(
            "task",
            connector_id = %host.connector_id,
            task_id = %spec.run.task_id,
            run = spec.run.run,
        );
        Self {
            spec,
            descriptor,
            host,
            tick,
            state,
            phase: Phase::Idle,
            timer: None,
            stopping: None,
            stop_waiters: Vec::new(),
            span,
            attempt: 0,
            give_up: CancellationToken::new(),
            final_write: None,
        }
    }

    fn supervisor(&self) -> &Addr<ConnectorSupervisor> {
        &self.host.supervisor
    }

    fn counter(&self, name: &'static str) {
        metrics::counter!(name, "connector_id" => self.host.connector_id.clone()).increment(1);
    }

    /// Waits for the due time, then asks for a slot.
    fn arm(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::Idle;
        let now = self.host.clock.now();
        match self.spec.due_at {
            Some(due) if due > now => {
                let sleep = self.host.clock.sleep_until(due);
                self.timer = Some(ctx.spawn(sleep.into_actor(self).map(|(), act, ctx| {
                    act.timer = None;
                    act.request_slot(ctx);
                })));
            }
            _ => self.request_slot(ctx),
        }
    }

    fn request_slot(&mut self, ctx: &mut Context<Self>) {
        self.phase = Phase::AwaitingSlot;
        let (grant, granted) = oneshot::channel();
        self.supervisor().do_send(AcquireSlot {
            run: self.spec.run,
            grant,
        });
        ctx.spawn(granted.into_actor(self).map(|granted, act, ctx| {
            if granted.is_ok() {
                act.start_run(ctx);
            }
        }));
    }

    fn release_slot(&self) {
        self.supervisor()
            .do_send(ReleaseSlot { run: self.spec.run });
    }

    /// Marks the task ACTIVE and starts the body.
    fn start_run(&mut self, ctx: &mut Context<Self>) {
        if self.stopping.is_some() {
            self.release_slot();
            self.finish_stop(ctx);
            return;
        }
        let must_persist_start = self.spec.options.on_interrupt == OnInterrupt::Fail;
        let update = self.update(TaskStatus::Active, self.spec.error.clone(), true, None);
        let was = self.spec.status;
        self.spec.status = TaskStatus::Active;
        self.attempt += 1;
        if must_persist_start {
            // The run must be on record before it starts, so a crash mid-run is detected.
            self.phase = Phase::Writing;
            let storage = self.host.storage.clone();
            ctx.spawn(
                async move { storage.write(update).await }
                    .into_actor(self)
                    .map(|result, act, ctx| match result {
                        Ok(()) => act.spawn_body(ctx),
                        Err(e) => act.finish_run(Err(super::error::task_error(e)), ctx),
                    }),
            );
        } else {
            // PENDING → ACTIVE is intermediate: a run that ends within ACTIVE_AFTER never
            // writes it (its final write says all there is). A longer one has it sent without
            // waiting; the storage actor keeps the order of writes of one type, so it lands before
            // a final status write, and a final `ingest_final` that overtakes it makes the
            // database refuse it (an ended run takes no more writes). Periodic tasks are already
            // ACTIVE between runs.
            if was != TaskStatus::Active {
                let attempt = self.attempt;
                ctx.run_later(ACTIVE_AFTER, move |act, _| {
                    let running = matches!(act.phase, Phase::Running { .. });
                    // A run being stopped (shutdown, pause…) writes no status, nor one whose
                    // final write is out (it would land after it).
                    let ending = act.final_write.as_ref().is_some_and(|f| f.sent());
                    if act.attempt == attempt && running && act.stopping.is_none() && !ending {
                        act.host.storage.write_detached(update);
                    }
                });
            }
            self.spawn_body(ctx);
        }
    }

    fn spawn_body(&mut self, ctx: &mut Context<Self>) {
        if self.stopping.is_some() {
            self.release_slot();
            self.finish_stop(ctx);
            return;
        }
        self.counter("tributary_task_runs_total");
        let descriptor: Value = serde_json::from_str(&self.descriptor).unwrap_or(Value::Null);
        let task = match self.host.connector().resolve(&descriptor) {
            Ok(task) => task,
            Err(e) => {
                self.finish_run(Err(e), ctx);
                return;
            }
        };
        let cancel = CancellationToken::new();
        let host: Arc<dyn Host> = self.host.clone();
        self.final_write = (!self.spec.options.is_periodic()).then(Default::default);
        let task_ctx = TaskContext::new(
            host,
            self.spec.run,
            cancel.clone(),
            self.state.clone(),
            self.final_write.clone(),
        );
        let body = async move { task.run(task_ctx).await }.instrument(self.span.clone());
        let handle = actix_rt::spawn(body);
        self.phase = Phase::Running {
            cancel,
            abort: handle.abort_handle(),
        };
        ctx.spawn(handle.into_actor(self).map(|joined, act, ctx| {
            let outcome = match joined {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => Err(TaskError::Failed(format!(
                    "task panicked: {}",
                    panic_message(e.into_panic())
                ))),
                Err(_) => Err(TaskError::Cancelled),
            };
            act.finish_run(outcome, ctx);
        }));
    }

    /// Applies the policy to a run's outcome and persists the next step.
    fn finish_run(&mut self, outcome: Result<(), TaskError>, ctx: &mut Context<Self>) {
        // From here the error is logged, stored and handed to waiters: no secret may be in it.
        let outcome = outcome.map_err(|e| self.host.redact(e));
        self.release_slot();
        self.phase = Phase::Idle;
        if self.stopping.is_some() {
            self.finish_stop(ctx);
            return;
        }
        if self.final_write.take().is_some_and(|f| f.committed()) {
            // The run's last write ended it in the database: nothing more to persist.
            self.span.in_scope(|| match &outcome {
                Ok(()) => tracing::debug!("run succeeded"),
                Err(e) => tracing::warn!(error = %e, "run failed after its final write; it stays TERMINATED"),
            });
            self.spec.status = TaskStatus::Terminated;
            self.spec.due_at = None;
            self.spec.counters = Counters::default();
            self.supervisor().do_send(TaskEnded {
                run: self.spec.run,
                outcome: Ok(()),
            });
            ctx.stop();
            return;
        }
        if outcome == Err(TaskError::Cancelled) {
            // Only a superseded write cancels a run we did not stop: a newer run owns the task.
            self.span
                .in_scope(|| tracing::info!("run superseded; stopping"));
            ctx.stop();
            return;
        }
        let now = self.host.clock.now();
        let counters = Counters {
            attempts: self.spec.counters.attempts,
            restarts: self.spec.counters.restarts,
            failing_since: self.spec.counters.failing_since,
        };
        let next = policy::after_run(
            &self.spec.options,
            counters,
            &outcome,
            self.tick,
            now,
            &self.host.settings,
            rand::random::<f64>(),
        );
        self.span.in_scope(|| match &outcome {
            Ok(()) => tracing::debug!("run succeeded"),
            Err(e) => tracing::warn!(error = %e, "run failed"),
        });
        match next {
            Next::RunAgain {
                due,
                counters,
                error,
                succeeded,
                new_tick,
            } => {
                if !succeeded {
                    let metric = if matches!(outcome, Err(TaskError::Retryable(_))) {
                        "tributary_task_retries_total"
                    } else {
                        "tributary_task_restarts_total"
                    };
                    self.counter(metric);
                }
                self.spec.counters = counters;
                self.spec.error = error.clone();
                self.spec.due_at = Some(due);
                if new_tick {
                    self.tick = due;
                }
                let update =
                    self.update(TaskStatus::Active, error, false, succeeded.then_some(now));
                self.persist(update, ctx, |act, ctx| act.arm(ctx));
            }
            Next::End {
                status,
                error,
                succeeded,
            } => {
                if status == TaskStatus::Failed {
                    self.counter("tributary_task_failures_total");
                }
                self.spec.status = status;
                self.spec.due_at = None;
                if succeeded {
                    self.spec.counters = Counters::default();
                }
                let update = self.update(status, error.clone(), false, succeeded.then_some(now));
                // RUN_NOW_SYNC waiters get the error with its class: a refusal stays final.
                let outcome = match (&outcome, error) {
                    (_, None) => Ok(()),
                    (Err(TaskError::NonRetryable(_)), Some(e)) => Err(TaskError::NonRetryable(e)),
                    (_, Some(e)) => Err(TaskError::Failed(e)),
                };
                self.persist(update, ctx, move |act, ctx| {
                    act.supervisor().do_send(TaskEnded {
                        run: act.spec.run,
                        outcome,
                    });
                    ctx.stop();
                });
            }
        }
    }

    /// A status write for the current run.
    fn update(
        &self,
        status: TaskStatus,
        error: Option<String>,
        running: bool,
        succeeded_at: Option<DateTime<Utc>>,
    ) -> UpdateTaskRun {
        UpdateTaskRun {
            run: self.spec.run,
            status,
            // PostgreSQL text cannot hold NUL; an error message must never fail its own write.
            error: error.map(|e| e.replace('\0', "\u{fffd}")),
            attempts: self.spec.counters.attempts,
            restarts: self.spec.counters.restarts,
            due_at: self.spec.due_at,
            running,
            succeeded_at,
            now: self.host.clock.now(),
        }
    }

    /// Writes `update` (retrying transient failures), then continues with `then`. A
    /// superseded run stops without writing anything more.
    fn persist<F>(&mut self, update: UpdateTaskRun, ctx: &mut Context<Self>, then: F)
    where
        F: FnOnce(&mut Self, &mut Context<Self>) + 'static,
    {
        self.phase = Phase::Writing;
        let storage = self.host.storage.clone();
        let span = self.span.clone();
        // Shutdown, pause and uninstall give up on a write the database cannot take: the run
        // is redone at the next start (at-least-once), so the process never hangs on it.
        let giving_up = self.give_up.clone();
        let write = async move {
            loop {
                match storage.write(update.clone()).await {
                    Err(e) if e.is_transient() && !matches!(e, StorageError::Stopped) => {
                        tracing::warn!(error = %e, "task status write failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(WRITE_RETRY) => {}
                            _ = giving_up.cancelled() => return Err(e),
                        }
                    }
                    other => return other,
                }
            }
        }
        .instrument(span);
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.phase = Phase::Idle;
            match result {
                Ok(()) if act.stopping.is_some() => act.finish_stop(ctx),
                Ok(()) => then(act, ctx),
                Err(e) => {
                    act.span
                        .in_scope(|| tracing::info!(error = %e, "task write rejected; stopping"));
                    act.finish_stop(ctx);
                }
            }
        }));
    }

    /// Completes a stop once no run is in progress.
    fn finish_stop(&mut self, ctx: &mut Context<Self>) {
        if self.stopping == Some(StopMode::Stopped) && self.spec.status.is_live() {
            self.spec.status = TaskStatus::Stopped;
            self.spec.due_at = None;
            let update = self.update(TaskStatus::Stopped, None, false, None);
            let storage = self.host.storage.clone();
            ctx.spawn(
                async move { storage.write(update).await }
                    .into_actor(self)
                    .map(|_, act, ctx| act.close(ctx)),
            );
            return;
        }
        self.close(ctx);
    }

    fn close(&mut self, ctx: &mut Context<Self>) {
        for waiter in self.stop_waiters.drain(..) {
            let _ = waiter.send(());
        }
        ctx.stop();
    }
}

impl Actor for TaskActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Idle periodic tasks are many: keep each actor's mailbox small.
        ctx.set_mailbox_capacity(4);
        self.arm(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        // Whatever happened, never keep a slot, and never leave the supervisor believing the
        // task is still run by this actor.
        self.release_slot();
        self.supervisor().do_send(TaskGone { run: self.spec.run });
        if let Phase::Running { abort, .. } = &self.phase {
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
        if self.stopping.is_none() {
            self.stopping = Some(msg.mode);
            if msg.mode != StopMode::Stopped {
                self.give_up.cancel();
            }
            if let Some(timer) = self.timer.take() {
                ctx.cancel_future(timer);
            }
            match &self.phase {
                Phase::Running { cancel, abort } => {
                    cancel.cancel();
                    let abort = abort.clone();
                    // After the grace period the body is dropped; finish_run then completes the stop.
                    ctx.run_later(self.host.settings.task_grace_period, move |act, _| {
                        if matches!(act.phase, Phase::Running { .. }) {
                            act.span.in_scope(|| {
                                tracing::warn!("task did not stop within the grace period; dropped")
                            });
                            abort.abort();
                        }
                    });
                }
                // The write in flight completes the stop when it returns.
                Phase::Writing => {}
                // A pending slot request dies with the actor; the supervisor skips it.
                Phase::AwaitingSlot | Phase::Idle => self.finish_stop(ctx),
            }
        }
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// The text of a panic payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}
