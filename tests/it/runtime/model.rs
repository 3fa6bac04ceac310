//! Model-based test of the scheduling contract (DESIGN §3, issue 12): seeded random sequences
//! of schedules, task bodies, releases, pause/resume, uninstall, reset, restart_task, clock
//! advances and crashes run against the real runtime on a fresh database, and after every step
//! the durable statuses, run counts and RUN_NOW_SYNC answers are compared with a reference
//! model, and invariants are checked (one body per task at a time, no body while paused, every
//! sync caller answered, superseded writes refused). A failing sequence is shrunk (delta
//! debugging) and printed as a regression case.
//!
//! `MODEL_CASES`, `MODEL_STEPS` size the run; `MODEL_SEED` replays one seed (docs/runtime.md).

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_rt::Arbiter;
use chrono::{DateTime, Utc};
use serde_json::json;
use tributary::runtime::{Registry, Runtime, RuntimeError};
use tributary::sdk::{
    Config, Restart, Schedule, ScheduleOptions, Scheduler, TaskError, TaskStatus, TestClock,
};
use tributary::settings::RuntimeSettings;
use tributary::storage::StorageHandle;
use uuid::Uuid;

use super::support::{Behaviour, Probe, Script, TestLoader, t0};
use crate::helpers::TestDb;

/// The tasks of a sequence: `t0` is also the child that `AwaitChild` bodies await.
const NAMES: [&str; 4] = ["t0", "t1", "t2", "t3"];

/// The period of `When::Every`, in seconds.
const PERIOD: u64 = 60;

/// How long the model waits for the runtime to reach the expected state after a step.
const SETTLE: Duration = Duration::from_secs(3);

/// When a `Sched` step runs its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// RUN_NOW.
    Now,
    /// RUN_NOW_SYNC (the answer is awaited by a spawned caller).
    NowSync,
    /// RUN_IN_DURATION of 10 s.
    InDelay,
    /// RUN_SCHEDULED_AT a day ago (runs now).
    AtPast,
    /// RUN_SCHEDULED_AT 30 s from now.
    AtLater,
    /// RUN_PERIODICALLY every 60 s.
    Every,
}

/// What a task's runs do (set by `Sched`), or how a blocked run ends (`Release`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// Succeeds.
    Succeed,
    /// Fails plainly.
    FailPlain,
    /// Fails non-retryably.
    Refuse,
    /// Panics.
    Crash,
    /// Fails retryably.
    Retry,
    /// Blocks until released or cancelled.
    Block,
    /// Blocks ignoring cancellation (dropped after the grace period).
    Stubborn,
    /// Ignores cancellation until released, then saves its state.
    LateWrite,
    /// Commits its final write, then blocks until released or cancelled.
    FinalBlock,
    /// Awaits `t0` scheduled RUN_NOW_SYNC as its child.
    AwaitChild,
}

/// One step of a sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Schedules `task` (its runs from now on doing `body`).
    Sched {
        /// Index into `NAMES`.
        task: usize,
        /// The schedule.
        when: When,
        /// The restart option.
        restart: Restart,
        /// `on_interrupt = FAIL`.
        fail_on_interrupt: bool,
        /// What its runs do.
        body: Body,
    },
    /// Ends the blocked run of `task`, if any, as `then` says.
    Release {
        /// Index into `NAMES`.
        task: usize,
        /// Succeed, FailPlain, Refuse, Crash or Retry.
        then: Body,
    },
    /// Moves the test clock.
    Advance {
        /// Seconds.
        secs: u64,
    },
    /// Pauses the connector.
    Pause,
    /// Resumes the connector (also when it is not paused).
    Resume,
    /// Uninstalls the connector and installs a new one.
    Uninstall,
    /// Resets the connector.
    Reset,
    /// `runtime.restart_task`.
    RestartTask {
        /// Index into `NAMES`.
        task: usize,
    },
    /// `restart_task` and a RUN_NOW RESTART_IF_NOT_ACTIVE schedule of the same task at once.
    RaceRestart {
        /// Index into `NAMES`.
        task: usize,
    },
    /// STOP_AND_RESTART of `task`, releasing a LateWrite run once the new run is fenced in.
    Supersede {
        /// Index into `NAMES`.
        task: usize,
    },
    /// Kills the runtime (its arbiter stops, nothing is shut down) and boots a new one.
    Kill,
}

/// SplitMix64: small, seedable, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// A random sequence of `steps` operations from `seed`.
fn generate(seed: u64, steps: usize) -> Vec<Op> {
    let mut rng = Rng(seed);
    let restarts = [
        Restart::Never,
        Restart::IfNotActive,
        Restart::Always,
        Restart::StopAndRestart,
    ];
    let whens = [
        When::Now,
        When::NowSync,
        When::InDelay,
        When::AtPast,
        When::AtLater,
        When::Every,
    ];
    let ends = [
        Body::Succeed,
        Body::FailPlain,
        Body::Refuse,
        Body::Crash,
        Body::Retry,
    ];
    (0..steps)
        .map(|_| match rng.below(100) {
            0..=39 => {
                let task = rng.below(NAMES.len());
                let mut bodies = vec![
                    Body::Succeed,
                    Body::FailPlain,
                    Body::Refuse,
                    Body::Crash,
                    Body::Retry,
                    Body::Block,
                    Body::Block,
                    Body::Block,
                    Body::Stubborn,
                    Body::LateWrite,
                    Body::FinalBlock,
                ];
                if task != 0 {
                    bodies.extend([Body::AwaitChild, Body::AwaitChild]);
                }
                Op::Sched {
                    task,
                    when: rng.pick(&whens),
                    restart: rng.pick(&restarts),
                    fail_on_interrupt: rng.below(3) == 0,
                    body: rng.pick(&bodies),
                }
            }
            40..=56 => Op::Release {
                task: rng.below(NAMES.len()),
                then: rng.pick(&ends),
            },
            57..=65 => Op::Advance {
                secs: rng.pick(&[1, 10, 30, 61, 3600]),
            },
            66..=70 => Op::Pause,
            71..=76 => Op::Resume,
            77..=78 => Op::Uninstall,
            79..=80 => Op::Reset,
            81..=86 => Op::RestartTask {
                task: rng.below(NAMES.len()),
            },
            87..=90 => Op::RaceRestart {
                task: rng.below(NAMES.len()),
            },
            91..=94 => Op::Supersede {
                task: rng.below(NAMES.len()),
            },
            _ => Op::Kill,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The reference model.

/// A task row as the model expects it after the step settled.
#[derive(Debug, Clone)]
struct MRow {
    status: TaskStatus,
    restart: Restart,
    periodic: bool,
    fail_on_interrupt: bool,
    /// When the next run is due (None: now).
    due: Option<DateTime<Utc>>,
    /// A retry or restart backoff: the due time is jittered, so it is read from the row.
    due_unknown: bool,
    /// The current periodic tick.
    tick: DateTime<Utc>,
    /// Consecutive failed runs (RESTART_ALWAYS).
    restarts: u32,
    /// The row says a run is in progress (what on_interrupt = FAIL looks at).
    running_flag: bool,
    /// The body's final write ended the run in the database; the body still runs.
    final_committed: bool,
    /// The task whose run scheduled the current run.
    parent: Option<usize>,
}

/// Who waits on a RUN_NOW_SYNC answer.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Waiter {
    /// The test's caller number `n`.
    Caller(usize),
    /// The running body of a task (AwaitChild).
    Parent(usize),
}

/// What a RUN_NOW_SYNC caller must be answered.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// Not yet: the awaited run has not ended.
    Pending,
    /// Ok.
    Ok,
    /// The run's failure (Failed or NonRetryable).
    Failure,
    /// `Stopped`.
    Stopped,
    /// `AlreadyScheduled`.
    AlreadyScheduled,
    /// Some error: the wait was cut short (pause, uninstall, crash).
    AnyError,
    /// Any answer, but an answer: a run that had succeeded was cut short.
    Any,
    /// Ok: the run of this task ended with its final write; the answer may wait until
    /// its body returns, no longer.
    OkBy(usize),
    /// Answered and checked.
    Checked,
}

/// How a run ended, for the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    Plain,
    NonRetryable,
    Retryable,
}

/// One task in the model.
#[derive(Debug, Clone)]
struct MTask {
    row: Option<MRow>,
    behaviour: Body,
    runs: usize,
    /// The body running now.
    body: Option<Body>,
    waiters: Vec<Waiter>,
    /// The running body belongs to a run that its final write already ended, and a newer run
    /// was decided since: that run waits for the body (never two bodies of one task), and
    /// these waiters of the ended run hear Ok when the body returns.
    outlived: Option<Vec<Waiter>>,
}

/// The whole model.
#[derive(Debug, Clone)]
struct Model {
    tasks: Vec<MTask>,
    paused: bool,
    now: DateTime<Utc>,
    answers: Vec<Answer>,
    /// LateWrite writes that must have been accepted, per task.
    writes: Vec<usize>,
}

impl Model {
    fn new() -> Self {
        Model {
            tasks: (0..NAMES.len())
                .map(|_| MTask {
                    row: None,
                    behaviour: Body::Succeed,
                    runs: 0,
                    body: None,
                    waiters: Vec::new(),
                    outlived: None,
                })
                .collect(),
            paused: false,
            now: t0(),
            answers: Vec::new(),
            writes: vec![0; NAMES.len()],
        }
    }

    /// Delivers an answer to whoever waits on `t`; `refused` says a failure was
    /// non-retryable (the class reaches a parent).
    fn answer(&mut self, t: usize, answer: Answer, refused: bool) {
        for waiter in std::mem::take(&mut self.tasks[t].waiters) {
            self.deliver(Some(waiter), answer.clone(), refused);
        }
    }

    /// Delivers an answer to one waiter: a caller keeps it, a parent's body ends with it.
    fn deliver(&mut self, waiter: Option<Waiter>, answer: Answer, refused: bool) {
        match waiter {
            Some(Waiter::Caller(n)) => self.answers[n] = answer,
            Some(Waiter::Parent(p)) if self.tasks[p].body == Some(Body::AwaitChild) => {
                let outcome = match answer {
                    Answer::Ok => Outcome::Ok,
                    Answer::Failure if refused => Outcome::NonRetryable,
                    Answer::Failure | Answer::Stopped | Answer::AlreadyScheduled => Outcome::Plain,
                    _ => return,
                };
                self.end_run(p, outcome);
            }
            _ => {}
        }
    }

    /// Cuts every wait short (pause, uninstall, crash): callers get an error, bodies stop.
    fn cut_waits(&mut self) {
        for t in 0..self.tasks.len() {
            for waiter in std::mem::take(&mut self.tasks[t].waiters) {
                if let Waiter::Caller(n) = waiter {
                    self.answers[n] = Answer::AnyError;
                }
            }
            self.tasks[t].body = None;
            for waiter in self.tasks[t].outlived.take().unwrap_or_default() {
                if let Waiter::Caller(n) = waiter {
                    self.answers[n] = Answer::AnyError;
                }
            }
        }
        for answer in &mut self.answers {
            if matches!(answer, Answer::OkBy(_)) {
                *answer = Answer::Any;
            }
        }
    }

    /// Starts the runs that are due, until none is.
    fn run_due(&mut self) {
        if self.paused {
            return;
        }
        loop {
            let ready = |t: &usize| {
                let task = &self.tasks[*t];
                task.body.is_none()
                    && task.row.as_ref().is_some_and(|r| {
                        r.status.is_live() && !r.due_unknown && r.due.is_none_or(|d| d <= self.now)
                    })
            };
            // Parents first: when a parent and its child are due together, the parent's
            // schedule reaches the supervisor before the child's run can end (a message
            // against a database round trip), so it finds the child live.
            let due = (0..self.tasks.len())
                .filter(ready)
                .find(|&t| self.tasks[t].behaviour == Body::AwaitChild)
                .or_else(|| (0..self.tasks.len()).find(ready));
            match due {
                Some(t) => self.run_body(t),
                None => return,
            }
        }
    }

    /// A run of `t` starts now.
    fn run_body(&mut self, t: usize) {
        let now = self.now;
        let behaviour = self.tasks[t].behaviour;
        let task = &mut self.tasks[t];
        task.runs += 1;
        let row = task.row.as_mut().expect("a running task has a row");
        row.status = TaskStatus::Active;
        row.running_flag = true;
        if row.periodic && row.due.is_none() {
            row.tick = now;
        }
        match behaviour {
            Body::Succeed => self.end_run(t, Outcome::Ok),
            Body::FailPlain | Body::Crash => self.end_run(t, Outcome::Plain),
            Body::Refuse => self.end_run(t, Outcome::NonRetryable),
            Body::Retry => self.end_run(t, Outcome::Retryable),
            Body::Block | Body::Stubborn | Body::LateWrite => task.body = Some(behaviour),
            Body::FinalBlock => {
                task.body = Some(behaviour);
                if !row.periodic {
                    row.status = TaskStatus::Terminated;
                    row.final_committed = true;
                    row.running_flag = false;
                    row.due = None;
                    // The run is over: its callers are owed Ok (parents hear it when the
                    // body returns).
                    let waiters = std::mem::take(&mut task.waiters);
                    for waiter in waiters {
                        match waiter {
                            Waiter::Caller(n) => self.answers[n] = Answer::OkBy(t),
                            parent => task.waiters.push(parent),
                        }
                    }
                }
            }
            Body::AwaitChild => {
                task.body = Some(behaviour);
                self.schedule(0, When::NowSync, Restart::IfNotActive, false, Some(t), None);
            }
        }
    }

    /// The body of `t` returned `outcome`: apply the policy.
    fn end_run(&mut self, t: usize, outcome: Outcome) {
        let now = self.now;
        if let Some(waiters) = self.tasks[t].outlived.take() {
            self.tasks[t].body = None;
            for waiter in waiters {
                self.deliver(Some(waiter), Answer::Ok, false);
            }
            self.run_due();
            return;
        }
        let task = &mut self.tasks[t];
        task.body = None;
        let Some(row) = task.row.as_mut() else {
            return;
        };
        row.running_flag = false;
        if row.final_committed {
            row.final_committed = false;
            self.answer(t, Answer::Ok, false);
            return;
        }
        match outcome {
            Outcome::Ok if row.periodic => {
                row.restarts = 0;
                let next = row.tick + chrono::Duration::seconds(PERIOD as i64);
                let next = next.max(now);
                row.tick = next;
                row.due = Some(next);
                row.status = TaskStatus::Active;
            }
            Outcome::Ok => {
                row.status = TaskStatus::Terminated;
                row.due = None;
                row.restarts = 0;
                self.answer(t, Answer::Ok, false);
            }
            Outcome::Retryable => {
                row.status = TaskStatus::Active;
                row.due_unknown = true;
            }
            Outcome::Plain if row.restart == Restart::Always && row.restarts + 1 < 5 => {
                row.restarts += 1;
                row.status = TaskStatus::Active;
                row.due_unknown = true;
            }
            Outcome::Plain | Outcome::NonRetryable => {
                row.status = TaskStatus::Failed;
                row.due = None;
                self.answer(t, Answer::Failure, outcome == Outcome::NonRetryable);
            }
        }
        self.run_due();
    }

    /// Stops the live descendants of `root` (they become STOPPED).
    fn stop_children(&mut self, root: usize) {
        for c in 0..self.tasks.len() {
            let is_child = self.tasks[c]
                .row
                .as_ref()
                .is_some_and(|r| r.parent == Some(root) && r.status.is_live());
            if is_child && c != root {
                self.stop_children(c);
                self.tasks[c].body = None;
                if let Some(waiters) = self.tasks[c].outlived.take() {
                    // Its live row is a run decided after the stopped one ended (durably
                    // TERMINATED): that run goes on, and the ended run's waiters hear Ok.
                    for waiter in waiters {
                        self.deliver(Some(waiter), Answer::Ok, false);
                    }
                    continue;
                }
                let task = &mut self.tasks[c];
                let row = task.row.as_mut().expect("row");
                row.status = TaskStatus::Stopped;
                row.running_flag = false;
                row.due = None;
                self.answer(c, Answer::Stopped, false);
            }
        }
    }

    /// A new run of `t` with these options (the row's run number moves on).
    fn new_run(
        &mut self,
        t: usize,
        when: When,
        restart: Restart,
        fail_on_interrupt: bool,
        parent: Option<usize>,
    ) {
        let now = self.now;
        if self.tasks[t].body.is_some()
            && self.tasks[t]
                .row
                .as_ref()
                .is_some_and(|r| r.final_committed)
        {
            // The body that outlived its final write goes on; the new run waits for it.
            let waiters = std::mem::take(&mut self.tasks[t].waiters);
            self.tasks[t].outlived = Some(waiters);
        }
        let due = match when {
            When::InDelay => Some(now + chrono::Duration::seconds(10)),
            When::AtPast => Some(t0() - chrono::Duration::days(1)),
            When::AtLater => Some(now + chrono::Duration::seconds(30)),
            _ => None,
        };
        self.tasks[t].row = Some(MRow {
            status: TaskStatus::Pending,
            restart,
            periodic: when == When::Every,
            fail_on_interrupt,
            due,
            due_unknown: false,
            tick: due.unwrap_or(now),
            restarts: 0,
            running_flag: false,
            final_committed: false,
            parent,
        });
    }

    /// A schedule of `t`; `caller` is the test's sync caller number, if any.
    fn schedule(
        &mut self,
        t: usize,
        when: When,
        restart: Restart,
        fail_on_interrupt: bool,
        parent: Option<usize>,
        caller: Option<usize>,
    ) {
        let sync = when == When::NowSync;
        let waiter = match (caller, parent) {
            (Some(n), _) => Some(Waiter::Caller(n)),
            (None, Some(p)) if sync => Some(Waiter::Parent(p)),
            _ => None,
        };
        // A run that committed its final write has ended, even if its body still returns.
        let live_in_memory = !self.paused
            && self.tasks[t]
                .row
                .as_ref()
                .is_some_and(|r| r.status.is_live());
        match self.tasks[t].row.clone() {
            None => {
                self.new_run(t, when, restart, fail_on_interrupt, parent);
                self.tasks[t].waiters.extend(waiter);
                self.run_due();
            }
            Some(row) if live_in_memory => {
                if restart == Restart::StopAndRestart {
                    // The old run stops (its children become STOPPED); its waiters wait for
                    // the new run.
                    self.tasks[t].body = None;
                    // A body that outlived its final write belonged to a run that ended
                    // (durably TERMINATED): its waiters hear Ok.
                    for waiter in self.tasks[t].outlived.take().unwrap_or_default() {
                        self.deliver(Some(waiter), Answer::Ok, false);
                    }
                    self.stop_children(t);
                    self.new_run(t, when, restart, fail_on_interrupt, parent);
                    self.tasks[t].waiters.extend(waiter);
                    self.run_due();
                } else if !sync {
                } else if row.periodic {
                    self.deliver(waiter, Answer::AlreadyScheduled, false);
                } else {
                    self.tasks[t].waiters.extend(waiter);
                }
            }
            Some(row) if row.status.is_live() => {
                // Live in the database only: the connector is paused.
                if restart == Restart::StopAndRestart {
                    self.new_run(t, when, restart, fail_on_interrupt, parent);
                    self.tasks[t].waiters.extend(waiter);
                } else if sync && row.periodic {
                    self.deliver(waiter, Answer::AlreadyScheduled, false);
                } else {
                    self.tasks[t].waiters.extend(waiter);
                }
            }
            Some(row) => {
                if restart == Restart::StopAndRestart
                    && self.tasks[t].body.is_some()
                    && row.final_committed
                {
                    // The body that outlived its final write is stopped; its run had ended
                    // (durably TERMINATED), so its waiters hear Ok.
                    self.end_run(t, Outcome::Ok);
                }
                if restart != Restart::Never {
                    self.new_run(t, when, restart, fail_on_interrupt, parent);
                    self.tasks[t].waiters.extend(waiter);
                    self.run_due();
                } else if sync {
                    let answer = match row.status {
                        TaskStatus::Terminated if row.final_committed => Answer::OkBy(t),
                        TaskStatus::Terminated => Answer::Ok,
                        TaskStatus::Stopped => Answer::Stopped,
                        _ => Answer::Failure,
                    };
                    self.deliver(waiter, answer, false);
                }
            }
        }
    }

    /// Resume after a pause or a crash: interrupted FAIL tasks become FAILED, the rest run.
    fn resume_tasks(&mut self) {
        for task in &mut self.tasks {
            if let Some(row) = task.row.as_mut() {
                if row.status.is_live() && row.running_flag && row.fail_on_interrupt {
                    row.status = TaskStatus::Failed;
                    row.due = None;
                }
                row.running_flag = row.running_flag && row.status.is_live();
                // A restored actor's periodic tick is its stored due time.
                if let Some(due) = row.due {
                    row.tick = due;
                }
            }
        }
        self.run_due();
    }

    /// Everything stops (pause, crash, uninstall); rows keep their statuses.
    fn stop_everything(&mut self) {
        self.cut_waits();
        for task in &mut self.tasks {
            if let Some(row) = task.row.as_mut() {
                row.final_committed = false;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The system under test.

/// A runtime with its storage actor on an arbiter of its own, so that it can be killed.
struct Node {
    arbiter: Arbiter,
    runtime: Runtime,
    storage: StorageHandle,
}

/// The runtime, its database and the test connector.
struct World {
    db: TestDb,
    pool: tributary::storage::Pool,
    clock: TestClock,
    probe: Arc<Probe>,
    node: Option<Node>,
    connector_id: String,
    callers: Vec<actix_rt::task::JoinHandle<Result<Uuid, TaskError>>>,
}

/// Short grace period: stops settle fast.
fn model_settings() -> RuntimeSettings {
    RuntimeSettings {
        task_grace_period: Duration::from_millis(100),
        ..RuntimeSettings::default()
    }
}

fn script(t: usize) -> Script {
    Script::Model {
        name: NAMES[t].into(),
    }
}

fn behaviour(body: Body) -> Behaviour {
    match body {
        Body::Succeed => Behaviour::Succeed,
        Body::FailPlain => Behaviour::Fail,
        Body::Refuse => Behaviour::Refuse,
        Body::Crash => Behaviour::Panic,
        Body::Retry => Behaviour::Retry,
        Body::Block => Behaviour::Block,
        Body::Stubborn => Behaviour::Stubborn,
        Body::LateWrite => Behaviour::LateWrite,
        Body::FinalBlock => Behaviour::FinalBlock,
        Body::AwaitChild => Behaviour::AwaitChild(NAMES[0].into()),
    }
}

fn options(
    when: When,
    restart: Restart,
    fail_on_interrupt: bool,
    now: DateTime<Utc>,
) -> ScheduleOptions {
    let schedule = match when {
        When::Now => Schedule::RunNow,
        When::NowSync => Schedule::RunNowSync,
        When::InDelay => Schedule::RunInDuration(Duration::from_secs(10)),
        When::AtPast => Schedule::RunScheduledAt(t0() - chrono::Duration::days(1)),
        When::AtLater => Schedule::RunScheduledAt(now + chrono::Duration::seconds(30)),
        When::Every => Schedule::RunPeriodically(Duration::from_secs(PERIOD)),
    };
    let options = ScheduleOptions::new(schedule, restart);
    if fail_on_interrupt {
        options.fail_on_interrupt()
    } else {
        options
    }
}

/// A bounded wait: every await on the runtime goes through it, so a hang is a failure.
async fn bounded<F: std::future::Future>(what: &str, f: F) -> Result<F::Output, String> {
    tokio::time::timeout(SETTLE, f)
        .await
        .map_err(|_| format!("{what} did not answer within {SETTLE:?}"))
}

impl World {
    async fn new() -> Result<World, String> {
        let db = TestDb::new().await;
        let pool = db.pool();
        let mut world = World {
            db,
            pool,
            clock: TestClock::new(t0()),
            probe: Arc::new(Probe::default()),
            node: None,
            connector_id: String::new(),
            callers: Vec::new(),
        };
        world.boot().await?;
        world.install().await?;
        Ok(world)
    }

    /// Starts a runtime and its storage actor on a new arbiter and restores from the database.
    async fn boot(&mut self) -> Result<(), String> {
        let arbiter = Arbiter::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let url = self.db.url.clone();
        let clock = self.clock.clone();
        let probe = self.probe.clone();
        arbiter.spawn(async move {
            let pool = tributary::storage::database::connect(&url, 4, Duration::from_secs(10))
                .expect("pool");
            let storage = StorageHandle::start(pool, 1000, Duration::ZERO);
            let registry = Registry::new().with(Arc::new(TestLoader { probe, allow: 10 }));
            let runtime = Runtime::start(
                registry,
                storage.clone(),
                Arc::new(clock),
                model_settings(),
                Arc::new(tributary::secrets::Vault::ephemeral()),
            );
            let _ = tx.send((runtime, storage));
        });
        let (runtime, storage) = rx.await.map_err(|_| "the node did not start".to_string())?;
        bounded("restore", runtime.restore())
            .await?
            .map_err(|e| format!("restore: {e}"))?;
        self.node = Some(Node {
            arbiter,
            runtime,
            storage,
        });
        Ok(())
    }

    fn runtime(&self) -> &Runtime {
        &self.node.as_ref().expect("a node").runtime
    }

    fn config() -> Config {
        let mut config = Config::new();
        config.insert("name".into(), json!("model"));
        config
    }

    async fn install(&mut self) -> Result<(), String> {
        self.connector_id = bounded(
            "install",
            self.runtime().install("test", Self::config(), false),
        )
        .await?
        .map_err(|e| format!("install: {e}"))?;
        Ok(())
    }

    /// Kills the node: its arbiter stops, dropping every actor and body, and nothing is
    /// written on the way out (what was acknowledged is durable, the rest is lost).
    fn kill(&mut self) {
        if let Some(node) = self.node.take() {
            node.arbiter.stop();
            let _ = node.arbiter.join();
        }
    }

    fn scheduler(&self) -> Scheduler {
        self.probe.scheduler()
    }

    fn task_id(&self, t: usize) -> Uuid {
        let value = serde_json::to_value(script(t)).expect("json");
        tributary::ids::task_id(&self.connector_id, &tributary::ids::canonical_json(&value))
    }

    async fn row(
        &self,
        t: usize,
    ) -> Result<Option<tributary::storage::queries::tasks::TaskRow>, String> {
        tributary::storage::queries::tasks::get(&self.pool, &self.connector_id, self.task_id(t))
            .await
            .map_err(|e| format!("read task: {e}"))
    }
}

/// What the runtime shows for one task, compared with the model.
#[derive(Debug, PartialEq)]
struct Seen {
    status: Option<TaskStatus>,
    restart: Option<Restart>,
    runs: usize,
    running: usize,
}

/// Runs `ops` against a fresh runtime; the first disagreement with the model or broken
/// invariant is the error.
async fn run_case(ops: &[Op]) -> Result<(), String> {
    let mut w = World::new().await?;
    let result = run_ops(&mut w, ops).await;
    w.kill();
    result
}

async fn run_ops(w: &mut World, ops: &[Op]) -> Result<(), String> {
    let mut m = Model::new();
    for (i, op) in ops.iter().enumerate() {
        step(w, &mut m, op)
            .await
            .map_err(|e| format!("step {i} {op:?}: {e}"))?;
        settle(w, &mut m)
            .await
            .map_err(|e| format!("after step {i} {op:?}: {e}"))?;
    }
    Ok(())
}

/// Applies one operation to the runtime and to the model.
async fn step(w: &mut World, m: &mut Model, op: &Op) -> Result<(), String> {
    match *op {
        Op::Sched {
            task,
            when,
            restart,
            fail_on_interrupt,
            body,
        } => {
            let name = NAMES[task];
            let body = if body == Body::AwaitChild && task == 0 {
                Body::Block
            } else {
                body
            };
            w.probe.set_behaviour(name, behaviour(body));
            m.tasks[task].behaviour = body;
            let options = options(when, restart, fail_on_interrupt, m.now);
            let scheduler = w.scheduler();
            if when == When::NowSync {
                // A sync caller must not block the driver: spawned, answered later.
                let handle = start_now(scheduler.schedule(&script(task), options));
                w.callers.push(handle);
                m.answers.push(Answer::Pending);
                let n = m.answers.len() - 1;
                m.schedule(task, when, restart, fail_on_interrupt, None, Some(n));
            } else {
                bounded("schedule", scheduler.schedule(&script(task), options))
                    .await?
                    .map_err(|e| format!("schedule failed: {e:?}"))?;
                m.schedule(task, when, restart, fail_on_interrupt, None, None);
            }
        }
        Op::Release { task, then } => {
            w.probe.release_model(NAMES[task], behaviour(then));
            let running = m.tasks[task].body;
            let outcome = match then {
                Body::Succeed => Outcome::Ok,
                Body::Refuse => Outcome::NonRetryable,
                Body::Retry => Outcome::Retryable,
                _ => Outcome::Plain,
            };
            match running {
                Some(Body::Block | Body::Stubborn | Body::FinalBlock) => m.end_run(task, outcome),
                Some(Body::LateWrite) => {
                    m.writes[task] += 1;
                    m.end_run(task, outcome);
                }
                _ => {}
            }
        }
        Op::Advance { secs } => {
            w.clock.advance(chrono::Duration::seconds(secs as i64));
            m.now += chrono::Duration::seconds(secs as i64);
            m.run_due();
        }
        Op::Pause => {
            bounded("pause", w.runtime().pause(&w.connector_id))
                .await?
                .map_err(|e| format!("pause: {e}"))?;
            // Pausing a paused connector is a no-op: a sync caller of a task scheduled
            // meanwhile waits for the resume. A first pause cancels the waits.
            if !m.paused {
                m.paused = true;
                m.stop_everything();
            }
        }
        Op::Resume => {
            bounded("resume", w.runtime().resume(&w.connector_id))
                .await?
                .map_err(|e| format!("resume: {e}"))?;
            if m.paused {
                m.paused = false;
                m.resume_tasks();
            }
        }
        Op::Uninstall => {
            bounded("uninstall", w.runtime().uninstall(&w.connector_id))
                .await?
                .map_err(|e| format!("uninstall: {e}"))?;
            // Nothing of it may run any more.
            eventually_ok("no body after uninstall", || async {
                w.probe.running() == 0
            })
            .await?;
            w.install().await?;
            m.stop_everything();
            for task in &mut m.tasks {
                task.row = None;
            }
            m.paused = false;
        }
        Op::Reset => {
            bounded("reset", w.runtime().reset(&w.connector_id))
                .await?
                .map_err(|e| format!("reset: {e}"))?;
            m.stop_everything();
            for task in &mut m.tasks {
                task.row = None;
            }
            m.paused = false;
        }
        Op::RestartTask { task } => {
            let result = bounded(
                "restart_task",
                w.runtime().restart_task(&w.connector_id, w.task_id(task)),
            )
            .await?;
            restart_task_model(m, task, result)?;
        }
        Op::RaceRestart { task } => {
            let rt = w.runtime().clone();
            let id = w.task_id(task);
            let connector = w.connector_id.clone();
            let scheduler = w.scheduler();
            // The schedule carries the row's own options (IF_NOT_ACTIVE), so that whichever
            // of the two starts the new run, the model knows the options.
            let row = m.tasks[task].row.clone();
            let when = match &row {
                Some(r) if r.periodic => When::Every,
                _ => When::Now,
            };
            let fail = row.as_ref().is_some_and(|r| r.fail_on_interrupt);
            let restart = row.as_ref().map_or(Restart::IfNotActive, |r| r.restart);
            let opts = options(when, Restart::IfNotActive, fail, m.now);
            let restarted = start_now(async move { rt.restart_task(&connector, id).await });
            let scheduled = start_now(scheduler.schedule(&script(task), opts));
            let restarted = bounded("restart_task", restarted)
                .await?
                .map_err(|e| e.to_string())?;
            let scheduled = bounded("schedule", scheduled)
                .await?
                .map_err(|e| e.to_string())?;
            scheduled.map_err(|e| format!("schedule failed: {e:?}"))?;
            if let Err(e) = &restarted
                && !matches!(
                    e,
                    RuntimeError::TaskIsLive { .. } | RuntimeError::TaskNotFound(_)
                )
            {
                return Err(format!("restart_task: {e}"));
            }
            match row {
                // Exactly one new run: the later of the two sees it live.
                Some(r) if !r.status.is_live() => {
                    m.new_run(task, when, restart, fail, r.parent);
                    if restarted.is_err() {
                        // The schedule came first and started it: its options
                        // (IF_NOT_ACTIVE, no parent); else the restart did, with the stored
                        // ones, and the schedule found it live.
                        let row = m.tasks[task].row.as_mut().expect("row");
                        row.restart = Restart::IfNotActive;
                        row.parent = None;
                    }
                    m.run_due();
                }
                None => m.schedule(task, when, Restart::IfNotActive, fail, None, None),
                Some(_) => {}
            }
        }
        Op::Supersede { task } => {
            let late = m.tasks[task].body == Some(Body::LateWrite);
            let before = w.row(task).await?.map(|r| r.run_number);
            let scheduler = w.scheduler();
            let opts = ScheduleOptions::new(Schedule::RunNow, Restart::StopAndRestart);
            let handle = start_now(scheduler.schedule(&script(task), opts));
            if late {
                // Once the new run number is durable, the old run's write must be refused.
                eventually_ok("STOP_AND_RESTART to write its fence", || async {
                    w.row(task).await.ok().flatten().map(|r| r.run_number) > before
                })
                .await?;
                w.probe.release_model(NAMES[task], Behaviour::Succeed);
            }
            bounded("STOP_AND_RESTART", handle)
                .await?
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("STOP_AND_RESTART failed: {e:?}"))?;
            m.schedule(task, When::Now, Restart::StopAndRestart, false, None, None);
        }
        Op::Kill => {
            w.kill();
            w.boot().await?;
            // A restored runtime calls no install: a config update hands us its scheduler.
            bounded(
                "update_config",
                w.runtime().update_config(&w.connector_id, World::config()),
            )
            .await?
            .map_err(|e| format!("update_config: {e}"))?;
            m.stop_everything();
            if !m.paused {
                m.resume_tasks();
            }
        }
    }
    Ok(())
}

/// The model's side of `restart_task`, checking the runtime's answer.
fn restart_task_model(
    m: &mut Model,
    task: usize,
    result: Result<(), RuntimeError>,
) -> Result<(), String> {
    match m.tasks[task].row.clone() {
        None => match result {
            Err(RuntimeError::TaskNotFound(_)) => Ok(()),
            other => Err(format!(
                "restart_task of an unknown task answered {other:?}"
            )),
        },
        Some(row) if row.status.is_live() => match result {
            Err(RuntimeError::TaskIsLive { .. }) => Ok(()),
            other => Err(format!("restart_task of a live task answered {other:?}")),
        },
        Some(row) => {
            result.map_err(|e| format!("restart_task of an ended task: {e}"))?;
            let when = if row.periodic { When::Every } else { When::Now };
            m.new_run(task, when, row.restart, row.fail_on_interrupt, row.parent);
            m.run_due();
            Ok(())
        }
    }
}

/// Polls `check` until it holds, within the settle time.
async fn eventually_ok<F, Fut>(what: &str, mut check: F) -> Result<(), String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + SETTLE;
    while !check().await {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for: {what}"));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Spawns `fut` after polling it once, so that the message it sends is in the supervisor's
/// mailbox (FIFO) before the driver's next operation sends anything.
fn start_now<F>(fut: F) -> actix_rt::task::JoinHandle<F::Output>
where
    F: std::future::Future + 'static,
    F::Output: 'static,
{
    let mut fut = Box::pin(fut);
    let waker = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(value) => actix_rt::spawn(async move { value }),
        std::task::Poll::Pending => actix_rt::spawn(fut),
    }
}

async fn seen(w: &World, t: usize) -> Result<Seen, String> {
    let row = w.row(t).await?;
    Ok(Seen {
        status: row.as_ref().map(|r| r.status),
        restart: row.as_ref().map(|r| r.options.restart),
        runs: w.probe.runs(NAMES[t]),
        running: w.probe.running_of(NAMES[t]),
    })
}

fn expected(m: &Model, t: usize) -> Seen {
    let task = &m.tasks[t];
    Seen {
        status: task.row.as_ref().map(|r| r.status),
        restart: task.row.as_ref().map(|r| r.restart),
        runs: task.runs,
        running: task.body.is_some() as usize,
    }
}

/// Waits until the runtime shows what the model expects, then checks the invariants.
async fn settle(w: &mut World, m: &mut Model) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut diff = Vec::new();
        for (t, name) in NAMES.iter().enumerate() {
            let (got, want) = (seen(w, t).await?, expected(m, t));
            if got != want {
                diff.push(format!("{}: runtime {got:?}, model {want:?}", name));
            }
        }
        if diff.is_empty() {
            // Everything queued has landed, and still agrees.
            if let Some(node) = &w.node {
                bounded("storage drain", node.storage.drain()).await?;
            }
            let mut again = Vec::new();
            for (t, name) in NAMES.iter().enumerate() {
                let (got, want) = (seen(w, t).await?, expected(m, t));
                if got != want {
                    again.push(format!("{}: runtime {got:?}, model {want:?}", name));
                }
            }
            if again.is_empty() {
                break;
            }
            diff = again;
        }
        if Instant::now() >= deadline {
            return Err(diff.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Backoff due times are jittered: take them from the rows, within the policy's bounds.
    for (t, name) in NAMES.iter().enumerate() {
        if m.tasks[t].row.as_ref().is_some_and(|r| r.due_unknown) {
            // The failed run's body has ended (the diff above is empty), but under load the
            // runtime may not have queued its retry write yet: the row can still show the
            // previous, past due time for a moment. Wait for a due time in the future.
            let due = loop {
                let due = w.row(t).await?.and_then(|r| r.due_at);
                match due {
                    Some(due) if due > m.now => break due,
                    _ if Instant::now() < deadline => {
                        tokio::time::sleep(Duration::from_millis(5)).await
                    }
                    None => return Err(format!("{}: a retry without a due time", name)),
                    Some(due) => {
                        return Err(format!("{}: retry due at {due}, now {}", name, m.now));
                    }
                }
            };
            if due > m.now + chrono::Duration::minutes(2) {
                return Err(format!("{}: retry due at {due}, now {}", name, m.now));
            }
            let row = m.tasks[t].row.as_mut().expect("row");
            row.due = Some(due);
            row.due_unknown = false;
        }
    }
    let overlaps = w.probe.overlaps();
    if !overlaps.is_empty() {
        return Err(format!("two bodies of one task at once: {overlaps:?}"));
    }
    // Writes of current runs accepted, of superseded ones refused (or never made: a
    // superseded LateWrite released after the grace period was dropped before writing).
    for (t, name) in NAMES.iter().enumerate() {
        let accepted = w.probe.writes(name).iter().filter(|r| r.is_ok()).count();
        if accepted != m.writes[t] {
            return Err(format!(
                "{}: {accepted} LateWrite writes accepted, model {}",
                name, m.writes[t]
            ));
        }
    }
    // Every sync caller whose wait is over has its answer.
    for n in 0..m.answers.len() {
        let want = m.answers[n].clone();
        let handle = &mut w.callers[n];
        if want == Answer::Pending {
            if handle.is_finished() {
                return Err(format!(
                    "sync caller {n} was answered while its run goes on"
                ));
            }
            continue;
        }
        if want == Answer::Checked {
            continue;
        }
        if let Answer::OkBy(t) = want
            && !handle.is_finished()
            && m.tasks[t].body.is_some()
        {
            continue;
        }
        let got = match bounded(&format!("sync caller {n}"), &mut *handle).await? {
            Ok(answer) => answer,
            Err(e) => return Err(format!("sync caller {n} panicked: {e}")),
        };
        let fits = matches!(
            (&want, &got),
            (Answer::Ok | Answer::OkBy(_), Ok(_))
                | (
                    Answer::Failure,
                    Err(TaskError::Failed(_) | TaskError::NonRetryable(_))
                )
                | (Answer::Stopped, Err(TaskError::Stopped))
                | (Answer::AlreadyScheduled, Err(TaskError::AlreadyScheduled))
                | (Answer::AnyError, Err(_))
                | (Answer::Any, _)
        );
        if !fits {
            return Err(format!("sync caller {n} answered {got:?}, model {want:?}"));
        }
        m.answers[n] = Answer::Checked;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Driver: cases, shrinking, replay.

/// Runs one case in a System of its own on a fresh thread; a panic is a failure too.
fn run_isolated(ops: Vec<Op>) -> Result<(), String> {
    std::thread::spawn(move || actix_rt::System::new().block_on(run_case(&ops)))
        .join()
        .unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        })
}

/// Delta debugging: drops chunks of steps while the sequence still fails.
fn shrink(mut ops: Vec<Op>, mut error: String) -> (Vec<Op>, String) {
    let mut chunk = ops.len() / 2;
    while chunk >= 1 {
        let mut start = 0;
        let mut progressed = false;
        while start < ops.len() {
            let mut candidate = ops.clone();
            candidate.drain(start..(start + chunk).min(ops.len()));
            match run_isolated(candidate.clone()) {
                Err(e) => {
                    ops = candidate;
                    error = e;
                    progressed = true;
                }
                Ok(()) => start += chunk,
            }
        }
        if !progressed {
            chunk /= 2;
        }
    }
    (ops, error)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Random sequences against the runtime (sized for CI; see docs/runtime.md for long runs).
#[test]
fn random_sequences_agree_with_the_model() {
    crate::helpers::ensure_server_started();
    let cases = env_usize("MODEL_CASES", 25);
    let steps = env_usize("MODEL_STEPS", 15);
    let seeds: Vec<u64> = match std::env::var("MODEL_SEED") {
        Ok(seed) => vec![seed.parse().expect("MODEL_SEED is a number")],
        Err(_) => {
            let base = env_usize("MODEL_BASE", 0x5eed) as u64;
            (0..cases as u64).map(|i| base.wrapping_add(i)).collect()
        }
    };
    let started = Instant::now();
    let mut failures = Vec::new();
    for seed in &seeds {
        let ops = generate(*seed, steps);
        if let Err(error) = run_isolated(ops.clone()) {
            let (ops, error) = if std::env::var("MODEL_NO_SHRINK").is_ok() {
                (ops, error)
            } else {
                shrink(ops, error)
            };
            let report = format!(
                "seed {seed}: {error}\n  shrunk to {} steps: vec!{ops:?}",
                ops.len()
            );
            eprintln!("{report}");
            failures.push(report);
            if std::env::var("MODEL_KEEP_GOING").is_err() {
                break;
            }
        }
    }
    eprintln!(
        "model: {} sequences x {steps} steps in {:.1?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays a fixed sequence, for regression cases.
fn replay(ops: Vec<Op>) {
    crate::helpers::ensure_server_started();
    if let Err(e) = run_isolated(ops) {
        panic!("{e}");
    }
}

/// Regression cases: shrunk sequences the model found, replayed as they are.
mod regressions {
    use super::Body::*;
    use super::Op::*;
    use super::When::*;
    use super::replay;
    use tributary::sdk::Restart::*;

    /// A RUN_NOW_SYNC child schedule of a task whose body outlived its final write, with a new
    /// run already decided, waits for that new run (found by seed 24309 on the new runtime:
    /// the wait was answered by the old body's end).
    #[test]
    fn a_sync_wait_on_a_decided_run_is_not_answered_by_the_body_it_replaces() {
        replay(vec![
            Sched {
                task: 0,
                when: NowSync,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: FinalBlock,
            },
            RaceRestart { task: 0 },
            Sched {
                task: 2,
                when: NowSync,
                restart: StopAndRestart,
                fail_on_interrupt: false,
                body: AwaitChild,
            },
            Release {
                task: 0,
                then: Retry,
            },
        ]);
    }

    /// STOP_AND_RESTART of a task whose body outlived its final write stops that body, and the
    /// ended run's sync caller hears Ok (seeds 24354 and 24337 on the new runtime).
    #[test]
    fn stop_and_restart_of_a_body_that_outlived_its_final_write() {
        replay(vec![
            Sched {
                task: 0,
                when: NowSync,
                restart: IfNotActive,
                fail_on_interrupt: true,
                body: FinalBlock,
            },
            Sched {
                task: 0,
                when: Now,
                restart: StopAndRestart,
                fail_on_interrupt: false,
                body: Block,
            },
        ]);
        replay(vec![
            Sched {
                task: 3,
                when: AtPast,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: FinalBlock,
            },
            Sched {
                task: 3,
                when: NowSync,
                restart: StopAndRestart,
                fail_on_interrupt: false,
                body: AwaitChild,
            },
        ]);
    }

    /// Resuming a connector that is not paused must not touch a running task.
    #[test]
    fn resume_when_not_paused_leaves_a_running_fail_on_interrupt_task_alone() {
        replay(vec![
            Sched {
                task: 1,
                when: Now,
                restart: Never,
                fail_on_interrupt: true,
                body: Block,
            },
            Resume,
        ]);
    }

    /// A parent awaiting a child through RUN_NOW_SYNC hears the end of the child's new run
    /// after the child is STOP_AND_RESTARTed, instead of hanging ACTIVE with no body.
    #[test]
    fn a_parent_awaiting_a_stop_and_restarted_child_is_not_left_hung() {
        replay(vec![
            Sched {
                task: 0,
                when: AtLater,
                restart: Never,
                fail_on_interrupt: false,
                body: Block,
            },
            Sched {
                task: 1,
                when: Now,
                restart: Never,
                fail_on_interrupt: false,
                body: AwaitChild,
            },
            Sched {
                task: 0,
                when: Now,
                restart: StopAndRestart,
                fail_on_interrupt: false,
                body: Block,
            },
            Release {
                task: 0,
                then: Succeed,
            },
        ]);
    }

    /// A sync caller of a STOP_AND_RESTARTed task gets the new run's outcome, not Cancelled
    /// (the superseded run's exit must not answer the task's waiters).
    #[test]
    fn a_sync_caller_of_a_stop_and_restarted_task_gets_the_new_outcome() {
        replay(vec![
            Sched {
                task: 0,
                when: NowSync,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: Block,
            },
            Sched {
                task: 0,
                when: Now,
                restart: StopAndRestart,
                fail_on_interrupt: false,
                body: FailPlain,
            },
        ]);
    }

    /// restart_task and a RESTART_IF_NOT_ACTIVE schedule of the same ended task start one
    /// run between them, and pause stops it.
    #[test]
    fn restart_task_racing_a_schedule_starts_one_run_that_pause_stops() {
        replay(vec![
            Sched {
                task: 1,
                when: Now,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: FailPlain,
            },
            Sched {
                task: 1,
                when: Now,
                restart: Never,
                fail_on_interrupt: false,
                body: Block,
            },
            RaceRestart { task: 1 },
            Pause,
        ]);
    }

    /// A RESTART_IF_NOT_ACTIVE schedule after a run's final write committed runs the task
    /// again, even while the old body has not returned yet.
    #[test]
    fn a_schedule_after_the_final_write_runs_again() {
        replay(vec![
            Sched {
                task: 1,
                when: Now,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: FinalBlock,
            },
            Sched {
                task: 1,
                when: Now,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: Block,
            },
            Release {
                task: 1,
                then: Succeed,
            },
        ]);
    }

    /// Passes today: the model's own sanity case (schedules, a crash, a resume, retries).
    #[test]
    fn a_plain_sequence_with_a_crash_agrees_with_the_model() {
        replay(vec![
            Sched {
                task: 0,
                when: Every,
                restart: Always,
                fail_on_interrupt: false,
                body: Succeed,
            },
            Sched {
                task: 1,
                when: Now,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: Block,
            },
            Sched {
                task: 2,
                when: NowSync,
                restart: Always,
                fail_on_interrupt: false,
                body: Retry,
            },
            Advance { secs: 61 },
            Kill,
            Release {
                task: 1,
                then: Succeed,
            },
            Sched {
                task: 1,
                when: Now,
                restart: IfNotActive,
                fail_on_interrupt: false,
                body: Succeed,
            },
            Pause,
            Advance { secs: 3600 },
            Resume,
        ]);
    }
}
