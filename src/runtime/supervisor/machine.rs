//! The supervisor's logic as a pure state machine: what a schedule, a rerun, a run's end, a
//! slot request, a pause or a resume does to the connector's tasks. No actix, no database:
//! the mailbox ([`super::actor`]) turns messages into [`Event`]s and carries out the
//! [`Effect`]s, and the tests below drive every interleaving by hand.
//!
//! Per task, one [`Entry`] while anything is going on for it in memory:
//! - [`Phase::Deciding`]: a write that decides a request (schedule, rerun) is in flight and no
//!   actor runs;
//! - [`Phase::Running`]: an actor runs the task, and memory is authoritative: a new schedule
//!   that would be a no-op for a live task is answered at once, without a database round trip;
//! - [`Phase::Leaving`]: the actor's run is ending (its final write is out) or stopping; what
//!   memory says may already be stale, so a new request is decided by the database against the
//!   durable status, and a new run decided meanwhile (`next`) starts only once the old actor is
//!   gone: never two bodies of one task, and no "ended, then scheduled again" window;
//! - [`Phase::Replacing`]: a STOP_AND_RESTART's old run is gone and its new run waits for the
//!   children stopped with the old one, which it will likely schedule again.
//!
//! A RUN_NOW_SYNC waiter waits for one run (the one it found, or the one its schedule
//! started): that run's outcome answers it; a run replaced without an outcome hands its
//! waiters to the run that replaces it.
//!
//! Requests for one task are serialized: while a deciding write is in flight, later requests
//! for the same task wait in the entry's queue and are decided after it, so a second schedule
//! never answers before the row is durable, and a restart request never races a schedule.

use std::collections::{HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::super::task::TaskSpec;
use crate::domain::{RunRef, TaskStatus};
use crate::runtime::messages::StopMode;
use crate::sdk::{Restart, Schedule, ScheduleOptions, TaskError};

/// A request to schedule a task (see `sdk::Scheduler::schedule`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRequest {
    /// The scheduling task, if any.
    pub parent: Option<Uuid>,
    /// The connector's descriptor.
    pub descriptor: Value,
    /// The options.
    pub options: ScheduleOptions,
    /// When the first run is due (None: now).
    pub due_at: Option<DateTime<Utc>>,
}

impl ScheduleRequest {
    fn sync(&self) -> bool {
        self.options.schedule == Schedule::RunNowSync
    }

    /// A STOP_AND_RESTART: a new run even if the task is live.
    pub fn replaces(&self) -> bool {
        self.options.restart == Restart::StopAndRestart
    }
}

/// What a request for one task asks.
#[derive(Debug)]
pub enum Request<W> {
    /// Schedule it; `reply` is answered once the row is durable (RUN_NOW_SYNC: once the run
    /// ended).
    Schedule {
        /// The request.
        request: ScheduleRequest,
        /// Who waits for the answer.
        reply: W,
    },
    /// Run an ended task again with its stored options (operator's restart).
    Rerun {
        /// Who waits for the answer.
        reply: W,
    },
}

/// What the database decided for a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// A new run starts.
    Started {
        /// The new run's number.
        run: i64,
        /// The state kept from earlier runs.
        state: Option<Value>,
        /// What the run is (for a rerun: the stored descriptor and options).
        request: ScheduleRequest,
    },
    /// Nothing changed.
    Unchanged {
        /// The stored status.
        status: TaskStatus,
        /// The stored error.
        error: Option<String>,
        /// Whether the stored task is periodic.
        periodic: bool,
        /// The stored run number.
        run: i64,
    },
    /// A rerun of a task that does not exist.
    NotFound,
    /// A rerun of a task that is live (only an ended task is run again).
    Live(TaskStatus),
    /// The write failed.
    Failed(TaskError),
}

/// The answer to a request's `reply`.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Scheduled (or a no-op), or the awaited run succeeded.
    Ok,
    /// The awaited run failed, was stopped, or the request failed.
    Err(TaskError),
    /// A rerun of an unknown task.
    TaskNotFound,
    /// A rerun of a live task.
    TaskIsLive(TaskStatus),
}

impl From<Result<(), TaskError>> for Answer {
    fn from(result: Result<(), TaskError>) -> Self {
        match result {
            Ok(()) => Answer::Ok,
            Err(e) => Answer::Err(e),
        }
    }
}

/// What happens to one task in memory.
#[derive(Debug)]
pub enum Phase<A> {
    /// No actor runs: a deciding write is in flight, or the entry is about to be forgotten.
    /// `loaded` is a run read at resume while the write was in flight: it starts unless the
    /// write decides a newer one.
    Deciding {
        /// The run read at resume.
        loaded: Option<Box<TaskSpec>>,
    },
    /// `addr` runs run `run`; memory is authoritative.
    Running {
        /// The run.
        run: i64,
        /// Its actor.
        addr: A,
    },
    /// The actor of `run` is ending or stopping; `next` starts once it is gone.
    Leaving {
        /// The run.
        run: i64,
        /// Its actor.
        addr: A,
        /// Why it leaves: what its waiters are told if it goes without an outcome.
        stopped: bool,
        /// The run decided meanwhile.
        next: Option<Box<TaskSpec>>,
    },
    /// The old run is gone; `next` starts once the children stopped with it are gone too
    /// (its new run may schedule them again: they must be ended by then).
    Replacing {
        /// The run to start.
        next: Box<TaskSpec>,
    },
}

/// One task with something going on in memory.
#[derive(Debug)]
pub struct Entry<A, W> {
    /// Its phase.
    pub phase: Phase<A>,
    /// The scheduling task, for stopping trees.
    pub parent: Option<Uuid>,
    /// Periodic (a sync schedule of a live periodic task is refused).
    pub periodic: bool,
    /// A deciding write is in flight.
    pub writing: bool,
    /// Requests waiting behind that write, in arrival order (rare: boxed, so an idle entry
    /// pays one pointer for it).
    pub queued: Option<Box<VecDeque<Request<W>>>>,
    /// Children stopped by a STOP_AND_RESTART of this task that are not gone yet.
    pub blockers: u32,
}

impl<A, W> Entry<A, W> {
    /// A task with nothing going on yet.
    fn new(parent: Option<Uuid>, periodic: bool) -> Self {
        Entry {
            phase: Phase::Deciding { loaded: None },
            parent,
            periodic,
            writing: false,
            queued: None,
            blockers: 0,
        }
    }
}

/// What the mailbox must do.
#[derive(Debug)]
pub enum Effect<A, W, G> {
    /// Write the schedule (a STOP_AND_RESTART forces a new run even if live) and report
    /// [`Event::Decided`].
    Upsert {
        /// The task.
        id: Uuid,
        /// What to write.
        request: ScheduleRequest,
        /// The request's reply, handed back in [`Event::Decided`].
        reply: W,
    },
    /// Start a new run of an ended task with its stored options, and report
    /// [`Event::Decided`].
    Rerun {
        /// The task.
        id: Uuid,
        /// The request's reply, handed back in [`Event::Decided`].
        reply: W,
    },
    /// Stop an actor.
    Stop {
        /// The actor.
        addr: A,
        /// Why.
        mode: StopMode,
    },
    /// Answer a request.
    Answer {
        /// Who waits.
        to: W,
        /// The answer.
        answer: Answer,
    },
    /// Hand a concurrency slot over.
    Grant {
        /// Who waits for it.
        to: G,
        /// The run it is for.
        run: RunRef,
    },
    /// Mark FAILED the interrupted `on_interrupt = Fail` runs, read the live tasks, and report
    /// [`Event::Loaded`]. Only ever asked while paused, when no run goes on in memory: a pause
    /// drops every actor's entry, and the manager resumes once their stops are answered.
    Load,
}

/// What happened.
#[derive(Debug)]
pub enum Event<W, G> {
    /// A request for a task.
    Request {
        /// The task.
        id: Uuid,
        /// The request.
        request: Request<W>,
    },
    /// A deciding write came back.
    Decided {
        /// The task.
        id: Uuid,
        /// Whether it was a STOP_AND_RESTART (the live run's children stop too).
        replaces: bool,
        /// The request's reply.
        reply: W,
        /// Whether the reply waits for the run's outcome.
        sync: bool,
        /// What the database decided.
        decision: Decision,
    },
    /// A run asks for a concurrency slot.
    SlotWanted {
        /// The run.
        run: RunRef,
        /// Where the grant goes.
        grant: G,
    },
    /// A run gives its slot back (idempotent); also when a grant could not be delivered.
    SlotReleased {
        /// The run.
        run: RunRef,
    },
    /// A run is about to send a write that ends it.
    Ending {
        /// The run.
        run: RunRef,
    },
    /// A run ended and its end is durable; its body is over.
    Ended {
        /// The run.
        run: RunRef,
        /// Its outcome, for RUN_NOW_SYNC waiters.
        outcome: Result<(), TaskError>,
    },
    /// A run's actor stopped (after [`Event::Ended`], or without an outcome).
    Gone {
        /// The run.
        run: RunRef,
    },
    /// Stop every run (pause, uninstall, shutdown); nothing starts until [`Event::Resume`].
    StopAll {
        /// Why.
        mode: StopMode,
    },
    /// Resume: load and start the live tasks (only when paused).
    Resume,
    /// [`Effect::Load`] failed: still paused, a later resume tries again.
    LoadFailed,
    /// The live tasks read by [`Effect::Load`].
    Loaded {
        /// Their specs.
        tasks: Vec<TaskSpec>,
    },
}

/// The outcome a RUN_NOW_SYNC no-op reports for an ended task.
pub fn ended_outcome(status: TaskStatus, error: Option<String>) -> Result<(), TaskError> {
    match status {
        TaskStatus::Terminated => Ok(()),
        TaskStatus::Stopped => Err(TaskError::Stopped),
        _ => Err(TaskError::Failed(
            error.unwrap_or_else(|| "task failed".into()),
        )),
    }
}

/// The supervisor's state. `A` is an actor's handle, `W` a request's reply, `G` a slot grant.
#[derive(Debug)]
pub struct Machine<A, W, G> {
    /// Paused (or not resumed yet): no actor starts, no slot is granted.
    paused: bool,
    /// A [`Effect::Load`] is in flight: runs decided meanwhile start with the loaded ones.
    loading: Option<Vec<TaskSpec>>,
    tasks: HashMap<Uuid, Entry<A, W>>,
    /// Children being stopped by a STOP_AND_RESTART, and the task whose new run waits for them.
    stopping_children: HashMap<Uuid, Uuid>,
    /// RUN_NOW_SYNC replies waiting for a task's run to end, each with the run it awaits (0:
    /// whichever ends next): a run's outcome answers its own waiters, never those of the run
    /// decided after it.
    waiters: HashMap<Uuid, Vec<(i64, W)>>,
    limit: usize,
    holders: HashSet<RunRef>,
    queue: VecDeque<(RunRef, G)>,
}

impl<A: Clone, W, G> Machine<A, W, G> {
    /// A paused supervisor with `limit` concurrency slots: nothing runs until resumed.
    pub fn new(limit: usize) -> Self {
        Self {
            paused: true,
            loading: None,
            tasks: HashMap::new(),
            stopping_children: HashMap::new(),
            waiters: HashMap::new(),
            limit: limit.max(1),
            holders: HashSet::new(),
            queue: VecDeque::new(),
        }
    }

    /// The task's entry, for inspection.
    pub fn entry(&self, id: Uuid) -> Option<&Entry<A, W>> {
        self.tasks.get(&id)
    }

    /// Whether nothing is going on in memory.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Whether runs may start.
    pub fn paused(&self) -> bool {
        self.paused
    }

    /// Applies `event`; `spawn` starts an actor for a run and returns its handle.
    pub fn on(
        &mut self,
        event: Event<W, G>,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
    ) -> Vec<Effect<A, W, G>> {
        let mut fx = Vec::new();
        match event {
            Event::Request { id, request } => self.request(id, request, &mut fx),
            Event::Decided {
                id,
                replaces,
                reply,
                sync,
                decision,
            } => {
                self.decided(id, replaces, reply, sync, decision, spawn, &mut fx);
                self.next_request(id, spawn, &mut fx);
            }
            Event::SlotWanted { run, grant } => {
                self.queue.push_back((run, grant));
                self.grant(&mut fx);
            }
            Event::SlotReleased { run } => {
                if self.holders.remove(&run) {
                    self.grant(&mut fx);
                }
            }
            Event::Ending { run } => {
                if let Some(entry) = self.tasks.get_mut(&run.task_id)
                    && let Phase::Running { run: r, addr } = &entry.phase
                    && *r == run.run
                {
                    entry.phase = Phase::Leaving {
                        run: *r,
                        addr: addr.clone(),
                        stopped: false,
                        next: None,
                    };
                }
            }
            Event::Ended { run, outcome } => self.gone(run, Some(outcome), spawn, &mut fx),
            Event::Gone { run } => self.gone(run, None, spawn, &mut fx),
            Event::StopAll { mode } => self.stop_all(mode, &mut fx),
            Event::Resume => {
                if self.paused && self.loading.is_none() {
                    self.loading = Some(Vec::new());
                    fx.push(Effect::Load);
                }
            }
            Event::LoadFailed => {
                // Runs decided meanwhile are durable: the next load reads them.
                self.loading = None;
            }
            Event::Loaded { tasks } => {
                // A stop that came while loading cancelled this resume: stay paused.
                let Some(decided) = self.loading.take() else {
                    return fx;
                };
                self.paused = false;
                let specs: Vec<TaskSpec> = if decided.is_empty() {
                    // The common case (boot): what was read.
                    tasks
                } else {
                    // Runs decided while loading may postdate what was read: they win.
                    let mut latest: HashMap<Uuid, TaskSpec> = HashMap::new();
                    for spec in tasks.into_iter().chain(decided) {
                        match latest.get(&spec.run.task_id) {
                            Some(known) if known.run.run >= spec.run.run => {}
                            _ => {
                                latest.insert(spec.run.task_id, spec);
                            }
                        }
                    }
                    latest.into_values().collect()
                };
                for spec in specs {
                    let id = spec.run.task_id;
                    match self.tasks.get_mut(&id) {
                        // A write decides it: what it decides wins, else this run starts then.
                        Some(Entry {
                            phase: Phase::Deciding { loaded },
                            ..
                        }) => *loaded = Some(Box::new(spec)),
                        // An actor already runs it.
                        Some(_) => {}
                        None => self.start(spec, spawn),
                    }
                }
                self.grant(&mut fx);
            }
        }
        fx
    }

    fn request(&mut self, id: Uuid, request: Request<W>, fx: &mut Vec<Effect<A, W, G>>) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            let (parent, periodic) = match &request {
                Request::Schedule { request, .. } => {
                    (request.parent, request.options.is_periodic())
                }
                Request::Rerun { .. } => (None, false),
            };
            self.tasks.insert(id, Entry::new(parent, periodic));
            self.decide(id, request, fx);
            return;
        };
        if entry.writing {
            entry
                .queued
                .get_or_insert_with(Default::default)
                .push_back(request);
            return;
        }
        let Phase::Running { run, .. } = entry.phase else {
            self.decide(id, request, fx);
            return;
        };
        // Memory is authoritative while the run goes on: a no-op needs no round trip.
        let answer = match request {
            Request::Schedule { request, reply } if !request.replaces() => {
                if !request.sync() {
                    (reply, Answer::Ok)
                } else if entry.periodic {
                    (reply, Answer::Err(TaskError::AlreadyScheduled))
                } else {
                    self.waiters.entry(id).or_default().push((run, reply));
                    return;
                }
            }
            Request::Rerun { reply } => (reply, Answer::TaskIsLive(TaskStatus::Active)),
            request => {
                self.decide(id, request, fx);
                return;
            }
        };
        fx.push(Effect::Answer {
            to: answer.0,
            answer: answer.1,
        });
    }

    /// Sends the write that decides `request` against the durable status; its reply travels
    /// with the write and comes back in [`Event::Decided`].
    fn decide(&mut self, id: Uuid, request: Request<W>, fx: &mut Vec<Effect<A, W, G>>) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        entry.writing = true;
        match request {
            Request::Schedule { request, reply } => fx.push(Effect::Upsert { id, request, reply }),
            Request::Rerun { reply } => fx.push(Effect::Rerun { id, reply }),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn decided(
        &mut self,
        id: Uuid,
        replaces: bool,
        reply: W,
        sync: bool,
        decision: Decision,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        if let Some(entry) = self.tasks.get_mut(&id) {
            entry.writing = false;
        }
        match decision {
            Decision::Started {
                run,
                state,
                request,
            } => {
                let spec = TaskSpec::new_run(
                    RunRef { task_id: id, run },
                    request.parent,
                    request.descriptor,
                    request.options,
                    request.due_at,
                    state,
                );
                if sync {
                    self.waiters.entry(id).or_default().push((run, reply));
                } else {
                    fx.push(Effect::Answer {
                        to: reply,
                        answer: Answer::Ok,
                    });
                }
                self.begin_run(id, spec, replaces, spawn, fx);
            }
            Decision::Unchanged {
                status,
                error,
                periodic,
                run,
            } => {
                let answer = if !sync {
                    Answer::Ok
                } else if status.is_live() {
                    if periodic {
                        Answer::Err(TaskError::AlreadyScheduled)
                    } else {
                        // Live: the reply waits for the stored run, in memory or to start
                        // at resume.
                        self.waiters.entry(id).or_default().push((run, reply));
                        return;
                    }
                } else {
                    ended_outcome(status, error).into()
                };
                fx.push(Effect::Answer { to: reply, answer });
            }
            Decision::NotFound => fx.push(Effect::Answer {
                to: reply,
                answer: Answer::TaskNotFound,
            }),
            Decision::Live(status) => fx.push(Effect::Answer {
                to: reply,
                answer: Answer::TaskIsLive(status),
            }),
            Decision::Failed(e) => fx.push(Effect::Answer {
                to: reply,
                answer: Answer::Err(e),
            }),
        }
    }

    /// A new run was decided: start it now, or once the old actor is gone.
    fn begin_run(
        &mut self,
        id: Uuid,
        spec: TaskSpec,
        replaces: bool,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        entry.parent = spec.parent;
        entry.periodic = spec.options.is_periodic();
        match &mut entry.phase {
            Phase::Deciding { loaded } => {
                *loaded = None;
                if self.paused {
                    if let Some(decided) = &mut self.loading {
                        decided.push(spec);
                    }
                    // Otherwise the row is durable before any later load reads it.
                    return;
                }
                self.start(spec, spawn);
            }
            Phase::Running { run, addr } => {
                // STOP_AND_RESTART (or a run the database says ended): the old run goes first.
                let (run, addr) = (*run, addr.clone());
                entry.phase = Phase::Leaving {
                    run,
                    addr: addr.clone(),
                    stopped: false,
                    next: Some(Box::new(spec)),
                };
                fx.push(Effect::Stop {
                    addr,
                    mode: StopMode::Superseded,
                });
                if replaces {
                    self.stop_children(id, fx);
                }
            }
            Phase::Replacing { next } => **next = spec,
            Phase::Leaving { addr, next, .. } => {
                let addr = addr.clone();
                *next = Some(Box::new(spec));
                if replaces {
                    fx.push(Effect::Stop {
                        addr,
                        mode: StopMode::Superseded,
                    });
                    self.stop_children(id, fx);
                }
            }
        }
    }

    /// Starts an actor for `spec` (never while paused: the row waits in the database).
    fn start(&mut self, spec: TaskSpec, spawn: &mut dyn FnMut(TaskSpec) -> A) {
        let id = spec.run.task_id;
        let run = spec.run.run;
        let parent = spec.parent;
        let periodic = spec.options.is_periodic();
        let addr = spawn(spec);
        let entry = self
            .tasks
            .entry(id)
            .or_insert_with(|| Entry::new(parent, periodic));
        entry.phase = Phase::Running { run, addr };
        entry.parent = parent;
        entry.periodic = periodic;
    }

    /// Takes the next queued request of `id`, or forgets an entry with nothing going on.
    fn next_request(
        &mut self,
        id: Uuid,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        if entry.writing {
            return;
        }
        if let Some(request) = entry.queued.as_mut().and_then(|q| q.pop_front()) {
            if entry.queued.as_ref().is_some_and(|q| q.is_empty()) {
                entry.queued = None;
            }
            self.request_queued(id, request, spawn, fx);
            return;
        }
        if let Phase::Deciding { loaded } = &mut entry.phase {
            match loaded.take() {
                Some(spec) if !self.paused => self.start(*spec, spawn),
                _ => {
                    self.tasks.remove(&id);
                }
            }
        }
    }

    fn request_queued(
        &mut self,
        id: Uuid,
        request: Request<W>,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        self.request(id, request, fx);
        // A request answered from memory leaves the entry idle: take the next one.
        if self.tasks.get(&id).is_some_and(|e| !e.writing) {
            self.next_request(id, spawn, fx);
        }
    }

    /// The actor of `run` ended (with its outcome) or went away.
    fn gone(
        &mut self,
        run: RunRef,
        outcome: Option<Result<(), TaskError>>,
        spawn: &mut dyn FnMut(TaskSpec) -> A,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        let id = run.task_id;
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        let (current, stopped, next) = match &mut entry.phase {
            Phase::Running { run: r, .. } => (*r, false, None),
            Phase::Leaving {
                run: r,
                stopped,
                next,
                ..
            } => (*r, *stopped, next.take()),
            Phase::Deciding { .. } | Phase::Replacing { .. } => return,
        };
        if current != run.run {
            if let Some(next) = next
                && let Phase::Leaving { next: slot, .. } = &mut entry.phase
            {
                *slot = Some(next);
            }
            return;
        }
        if let Some(outcome) = &outcome {
            // This run's waiters hear its outcome; those of a run decided after it wait on.
            self.answer_waiters(id, |awaited| awaited <= run.run, outcome, fx);
        }
        let Some(entry) = self.tasks.get_mut(&id) else {
            return;
        };
        match next {
            Some(spec) => {
                // A run that went without an outcome (stopped, superseded): its waiters now
                // wait for the run that replaces it.
                if self.paused {
                    entry.phase = Phase::Deciding { loaded: None };
                    if let Some(decided) = &mut self.loading {
                        decided.push(*spec);
                    }
                } else if entry.blockers > 0 {
                    entry.phase = Phase::Replacing { next: spec };
                } else {
                    self.start(*spec, spawn);
                }
            }
            None => {
                entry.phase = Phase::Deciding { loaded: None };
                let answer = match outcome {
                    Some(outcome) => outcome,
                    None if stopped => Err(TaskError::Stopped),
                    None => Err(TaskError::Cancelled),
                };
                self.answer_waiters(id, |_| true, &answer, fx);
            }
        }
        // The run is over: its slot is free even if its actor never said so.
        if self.holders.remove(&run) {
            self.grant(fx);
        }
        self.unblock(id, spawn);
        if let Some(entry) = self.tasks.get(&id)
            && matches!(entry.phase, Phase::Deciding { .. })
            && !entry.writing
        {
            self.next_request(id, spawn, fx);
        }
    }

    /// Answers the waiters of `id` whose awaited run matches.
    fn answer_waiters(
        &mut self,
        id: Uuid,
        matches: impl Fn(i64) -> bool,
        outcome: &Result<(), TaskError>,
        fx: &mut Vec<Effect<A, W, G>>,
    ) {
        let Some(waiters) = self.waiters.remove(&id) else {
            return;
        };
        let (now, later): (Vec<_>, Vec<_>) = waiters.into_iter().partition(|(r, _)| matches(*r));
        for (_, to) in now {
            fx.push(Effect::Answer {
                to,
                answer: outcome.clone().into(),
            });
        }
        if !later.is_empty() {
            self.waiters.insert(id, later);
        }
    }

    /// A child stopped with `id`'s parent is gone: the parent's new run may start once its
    /// last such child is.
    fn unblock(&mut self, child: Uuid, spawn: &mut dyn FnMut(TaskSpec) -> A) {
        let Some(root) = self.stopping_children.remove(&child) else {
            return;
        };
        let Some(entry) = self.tasks.get_mut(&root) else {
            return;
        };
        entry.blockers = entry.blockers.saturating_sub(1);
        if entry.blockers > 0 || self.paused {
            return;
        }
        if let Phase::Replacing { .. } = entry.phase {
            let Phase::Replacing { next } =
                std::mem::replace(&mut entry.phase, Phase::Deciding { loaded: None })
            else {
                return;
            };
            self.start(*next, spawn);
        }
    }

    /// Stops the live descendants of `root` (they become STOPPED); its new run waits for them.
    fn stop_children(&mut self, root: Uuid, fx: &mut Vec<Effect<A, W, G>>) {
        let mut blockers = 0;
        let mut frontier = vec![root];
        let mut seen = HashSet::new();
        while let Some(parent) = frontier.pop() {
            let children: Vec<Uuid> = self
                .tasks
                .iter()
                .filter(|(id, e)| e.parent == Some(parent) && !seen.contains(*id))
                .map(|(id, _)| *id)
                .collect();
            for child in children {
                seen.insert(child);
                frontier.push(child);
                let Some(entry) = self.tasks.get_mut(&child) else {
                    continue;
                };
                let addr = match &mut entry.phase {
                    Phase::Running { run, addr } => {
                        let addr = addr.clone();
                        entry.phase = Phase::Leaving {
                            run: *run,
                            addr: addr.clone(),
                            stopped: true,
                            next: None,
                        };
                        addr
                    }
                    // A run decided after this one began to end (`next`) is durable and not
                    // part of the stopped tree: it starts once the old actor is gone.
                    Phase::Leaving { addr, stopped, .. } => {
                        *stopped = true;
                        addr.clone()
                    }
                    Phase::Deciding { .. } | Phase::Replacing { .. } => continue,
                };
                fx.push(Effect::Stop {
                    addr,
                    mode: StopMode::Stopped,
                });
                if self.stopping_children.insert(child, root).is_none() {
                    blockers += 1;
                }
            }
        }
        if let Some(entry) = self.tasks.get_mut(&root) {
            entry.blockers += blockers;
        }
    }

    fn stop_all(&mut self, mode: StopMode, fx: &mut Vec<Effect<A, W, G>>) {
        self.paused = true;
        self.loading = None;
        // Sync callers see their wait cancelled (their replies are dropped); the runs resume
        // at the next resume or boot.
        self.waiters.clear();
        self.queue.clear();
        self.holders.clear();
        self.stopping_children.clear();
        self.tasks.retain(|_, entry| {
            match &entry.phase {
                Phase::Running { addr, .. } | Phase::Leaving { addr, .. } => {
                    fx.push(Effect::Stop {
                        addr: addr.clone(),
                        mode,
                    });
                }
                Phase::Deciding { .. } | Phase::Replacing { .. } => {}
            }
            // Entries whose write is in flight stay until it comes back (it is answered).
            if entry.writing {
                entry.phase = Phase::Deciding { loaded: None };
                entry.blockers = 0;
                true
            } else {
                false
            }
        });
    }

    /// Grants free slots to the waiting runs, first come first served.
    fn grant(&mut self, fx: &mut Vec<Effect<A, W, G>>) {
        if self.paused {
            return;
        }
        while self.holders.len() < self.limit {
            let Some((run, to)) = self.queue.pop_front() else {
                break;
            };
            if !self.holders.insert(run) {
                continue;
            }
            fx.push(Effect::Grant { to, run });
        }
    }
}

#[cfg(test)]
mod tests {
    //! The supervisor's rules, event by event, with every interleaving the audit named.
    //! Actors are numbers, replies and grants are names.

    use super::*;

    type M = Machine<u32, &'static str, &'static str>;
    type Fx = Vec<Effect<u32, &'static str, &'static str>>;

    /// Starts actors numbered 1, 2, …; `spawned` lists the runs started.
    struct World {
        machine: M,
        spawned: Vec<RunRef>,
    }

    fn task() -> Uuid {
        Uuid::from_u128(7)
    }

    fn request(restart: Restart, schedule: Schedule) -> ScheduleRequest {
        ScheduleRequest {
            parent: None,
            descriptor: Value::Null,
            options: ScheduleOptions::new(schedule, restart),
            due_at: None,
        }
    }

    fn run(n: i64) -> RunRef {
        RunRef {
            task_id: task(),
            run: n,
        }
    }

    impl World {
        fn new(limit: usize) -> Self {
            let mut world = World {
                machine: M::new(limit),
                spawned: Vec::new(),
            };
            let fx = world.on(Event::Resume);
            assert!(matches!(fx[..], [Effect::Load]));
            world.on(Event::Loaded { tasks: vec![] });
            world
        }

        fn on(&mut self, event: Event<&'static str, &'static str>) -> Fx {
            let spawned = &mut self.spawned;
            self.machine.on(event, &mut |spec| {
                spawned.push(spec.run);
                spawned.len() as u32
            })
        }

        fn schedule(&mut self, id: Uuid, reply: &'static str, request: ScheduleRequest) -> Fx {
            self.on(Event::Request {
                id,
                request: Request::Schedule { request, reply },
            })
        }

        fn started(&mut self, id: Uuid, reply: &'static str, run: i64, replaces: bool) -> Fx {
            self.on(Event::Decided {
                id,
                replaces,
                reply,
                sync: false,
                decision: Decision::Started {
                    run,
                    state: None,
                    request: request(Restart::IfNotActive, Schedule::RunNow),
                },
            })
        }
    }

    fn upserts(fx: &Fx) -> Vec<(&'static str, bool)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Upsert { reply, request, .. } => Some((*reply, request.replaces())),
                _ => None,
            })
            .collect()
    }

    fn answers(fx: &Fx) -> Vec<(&'static str, Answer)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Answer { to, answer } => Some((*to, answer.clone())),
                _ => None,
            })
            .collect()
    }

    fn stops(fx: &Fx) -> Vec<(u32, StopMode)> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::Stop { addr, mode } => Some((*addr, *mode)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_schedule_of_a_live_task_is_answered_from_memory() {
        let mut w = World::new(10);
        let fx = w.schedule(task(), "a", request(Restart::IfNotActive, Schedule::RunNow));
        assert_eq!(upserts(&fx), [("a", false)]);
        let fx = w.started(task(), "a", 1, false);
        assert_eq!(answers(&fx), [("a", Answer::Ok)]);
        assert_eq!(w.spawned, [run(1)]);
        let fx = w.schedule(task(), "b", request(Restart::IfNotActive, Schedule::RunNow));
        assert!(upserts(&fx).is_empty(), "no round trip for a no-op");
        assert_eq!(answers(&fx), [("b", Answer::Ok)]);
    }

    #[test]
    fn a_schedule_after_the_run_said_it_is_ending_is_decided_by_the_database() {
        let mut w = World::new(10);
        w.schedule(task(), "a", request(Restart::IfNotActive, Schedule::RunNow));
        w.started(task(), "a", 1, false);
        w.on(Event::Ending { run: run(1) });
        let fx = w.schedule(task(), "b", request(Restart::IfNotActive, Schedule::RunNow));
        assert_eq!(upserts(&fx), [("b", false)], "memory may be stale now");
        // The end committed first: a new run, which waits for the old body to be over.
        w.started(task(), "b", 2, false);
        assert_eq!(w.spawned, [run(1)]);
        w.on(Event::Ended {
            run: run(1),
            outcome: Ok(()),
        });
        assert_eq!(w.spawned, [run(1), run(2)]);
        // The old actor's goodbye changes nothing.
        w.on(Event::Gone { run: run(1) });
        assert!(matches!(
            w.machine.entry(task()).map(|e| &e.phase),
            Some(Phase::Running { run: 2, .. })
        ));
    }

    #[test]
    fn a_waiter_of_a_decided_run_is_not_answered_by_the_run_it_replaces() {
        let mut w = World::new(10);
        w.schedule(task(), "a", request(Restart::IfNotActive, Schedule::RunNow));
        w.started(task(), "a", 1, false);
        w.on(Event::Ending { run: run(1) });
        w.schedule(
            task(),
            "sync",
            request(Restart::IfNotActive, Schedule::RunNowSync),
        );
        let fx = w.on(Event::Decided {
            id: task(),
            replaces: false,
            reply: "sync",
            sync: true,
            decision: Decision::Started {
                run: 2,
                state: None,
                request: request(Restart::IfNotActive, Schedule::RunNowSync),
            },
        });
        assert!(answers(&fx).is_empty());
        let fx = w.on(Event::Ended {
            run: run(1),
            outcome: Ok(()),
        });
        assert!(
            answers(&fx).is_empty(),
            "run 1's end answered run 2's waiter"
        );
        let fx = w.on(Event::Ended {
            run: run(2),
            outcome: Err(TaskError::failed("run 2")),
        });
        assert_eq!(
            answers(&fx),
            [("sync", Answer::Err(TaskError::failed("run 2")))]
        );
    }

    #[test]
    fn requests_for_one_task_wait_for_the_write_in_flight() {
        let mut w = World::new(10);
        w.schedule(task(), "a", request(Restart::IfNotActive, Schedule::RunNow));
        let fx = w.schedule(
            task(),
            "b",
            request(Restart::StopAndRestart, Schedule::RunNow),
        );
        assert!(
            fx.is_empty(),
            "neither answered nor written before the first write"
        );
        let fx = w.started(task(), "a", 1, false);
        // The queued STOP_AND_RESTART is decided now, against the live run, with its options.
        assert_eq!(answers(&fx), [("a", Answer::Ok)]);
        assert_eq!(upserts(&fx), [("b", true)]);
    }

    #[test]
    fn a_rerun_racing_a_schedule_gives_one_actor_that_a_pause_stops() {
        let mut w = World::new(10);
        let fx = w.on(Event::Request {
            id: task(),
            request: Request::Rerun { reply: "rerun" },
        });
        assert!(matches!(fx[..], [Effect::Rerun { reply: "rerun", .. }]));
        assert!(
            w.schedule(task(), "s", request(Restart::IfNotActive, Schedule::RunNow))
                .is_empty()
        );
        let fx = w.started(task(), "rerun", 2, false);
        assert_eq!(answers(&fx), [("rerun", Answer::Ok), ("s", Answer::Ok)]);
        assert_eq!(w.spawned, [run(2)]);
        let fx = w.on(Event::StopAll {
            mode: StopMode::Pause,
        });
        assert_eq!(stops(&fx), [(1, StopMode::Pause)]);
        assert!(w.machine.is_empty());
    }

    #[test]
    fn a_stop_and_restart_hands_the_waiters_over_to_the_new_run() {
        let mut w = World::new(10);
        let mut sync = request(Restart::IfNotActive, Schedule::RunNowSync);
        w.schedule(
            task(),
            "first",
            request(Restart::IfNotActive, Schedule::RunNow),
        );
        w.started(task(), "first", 1, false);
        let fx = w.schedule(task(), "parent", sync.clone());
        assert!(fx.is_empty(), "a sync wait on a live run");
        sync.options.restart = Restart::StopAndRestart;
        w.schedule(
            task(),
            "s&r",
            request(Restart::StopAndRestart, Schedule::RunNow),
        );
        let fx = w.started(task(), "s&r", 2, true);
        assert_eq!(stops(&fx), [(1, StopMode::Superseded)]);
        // The old run goes without an outcome: the parent keeps waiting, for the new run.
        let fx = w.on(Event::Gone { run: run(1) });
        assert!(answers(&fx).is_empty());
        assert_eq!(w.spawned, [run(1), run(2)]);
        let fx = w.on(Event::Ended {
            run: run(2),
            outcome: Ok(()),
        });
        assert_eq!(answers(&fx), [("parent", Answer::Ok)]);
    }

    #[test]
    fn a_stop_and_restart_waits_for_the_stopped_children() {
        let mut w = World::new(10);
        let parent = task();
        let child = Uuid::from_u128(8);
        w.schedule(
            parent,
            "p",
            request(Restart::StopAndRestart, Schedule::RunNow),
        );
        w.started(parent, "p", 1, false);
        let mut by_parent = request(Restart::IfNotActive, Schedule::RunNow);
        by_parent.parent = Some(parent);
        w.schedule(child, "c", by_parent.clone());
        w.on(Event::Decided {
            id: child,
            replaces: false,
            reply: "c",
            sync: false,
            decision: Decision::Started {
                run: 1,
                state: None,
                request: by_parent,
            },
        });
        w.schedule(
            parent,
            "p2",
            request(Restart::StopAndRestart, Schedule::RunNow),
        );
        let fx = w.started(parent, "p2", 2, true);
        assert_eq!(
            stops(&fx),
            [(1, StopMode::Superseded), (2, StopMode::Stopped)]
        );
        w.on(Event::Gone { run: run(1) });
        assert_eq!(
            w.spawned.len(),
            2,
            "the new parent run waits for its stopped child"
        );
        w.on(Event::Gone {
            run: RunRef {
                task_id: child,
                run: 1,
            },
        });
        assert_eq!(w.spawned.last(), Some(&run(2)));
    }

    #[test]
    fn resume_is_a_no_op_unless_paused() {
        let mut w = World::new(10);
        assert!(w.on(Event::Resume).is_empty());
        w.on(Event::StopAll {
            mode: StopMode::Pause,
        });
        assert!(matches!(w.on(Event::Resume)[..], [Effect::Load]));
    }

    #[test]
    fn a_stop_while_loading_cancels_the_resume() {
        let mut w = World::new(10);
        w.on(Event::StopAll {
            mode: StopMode::Pause,
        });
        w.on(Event::Resume);
        w.on(Event::StopAll {
            mode: StopMode::Uninstall,
        });
        let spec = TaskSpec::new_run(
            run(1),
            None,
            Value::Null,
            ScheduleOptions::new(Schedule::RunNow, Restart::Never),
            None,
            None,
        );
        w.on(Event::Loaded { tasks: vec![spec] });
        assert!(w.spawned.is_empty());
        assert!(w.machine.paused());
    }

    #[test]
    fn a_run_decided_while_loading_starts_with_the_loaded_ones() {
        let mut w = World::new(10);
        w.on(Event::StopAll {
            mode: StopMode::Pause,
        });
        w.on(Event::Resume);
        w.schedule(task(), "a", request(Restart::IfNotActive, Schedule::RunNow));
        w.started(task(), "a", 3, false);
        assert!(w.spawned.is_empty(), "paused");
        w.on(Event::Loaded { tasks: vec![] });
        assert_eq!(w.spawned, [run(3)]);
    }

    #[test]
    fn slots_go_first_come_first_served() {
        let mut w = World::new(1);
        let grants = |fx: &Fx| -> Vec<&'static str> {
            fx.iter()
                .filter_map(|e| match e {
                    Effect::Grant { to, .. } => Some(*to),
                    _ => None,
                })
                .collect()
        };
        let r = |n| RunRef {
            task_id: Uuid::from_u128(n),
            run: 1,
        };
        assert_eq!(
            grants(&w.on(Event::SlotWanted {
                run: r(1),
                grant: "1"
            })),
            ["1"]
        );
        assert!(
            grants(&w.on(Event::SlotWanted {
                run: r(2),
                grant: "2"
            }))
            .is_empty()
        );
        assert!(
            grants(&w.on(Event::SlotWanted {
                run: r(3),
                grant: "3"
            }))
            .is_empty()
        );
        assert_eq!(grants(&w.on(Event::SlotReleased { run: r(1) })), ["2"]);
        assert_eq!(grants(&w.on(Event::SlotReleased { run: r(2) })), ["3"]);
    }
}
