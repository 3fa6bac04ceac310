//! A scriptable test connector and a harness that runs the real runtime (manager,
//! supervisors, task actors, storage actor) in the test's actix System on a fresh database,
//! with a test clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tributary::runtime::{Registry, Runtime};
use tributary::sdk::ingest::Batch;
use tributary::sdk::{
    Clock, Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldSpec, Loader,
    Restart, Schedule, ScheduleOptions, Scheduler, Task, TaskContext, TaskError, TaskStatus,
    TestClock,
};
use tributary::settings::RuntimeSettings;
use tributary::storage::StorageHandle;
use uuid::Uuid;

use crate::helpers::{TestDb, eventually};

/// What a test task does, chosen by its descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Script {
    /// Succeeds at once.
    Ok { name: String },
    /// Runs until released by the test (or cancelled).
    Block { name: String },
    /// Blocks and ignores cancellation until released.
    Stubborn { name: String },
    /// Fails with a plain error.
    Fail { name: String },
    /// Fails retryably `times` times, then succeeds.
    Flaky { name: String, times: usize },
    /// Fails with a non-retryable error.
    Refuse { name: String },
    /// Panics.
    Panic { name: String },
    /// Schedules `child` (RUN_NOW, or RUN_NOW_SYNC when `sync`), then blocks.
    Parent {
        name: String,
        child: Box<Script>,
        sync: bool,
    },
    /// Schedules a RUN_NOW_SYNC chain `depth` deep, then succeeds.
    Chain { name: String, depth: u32 },
    /// Saves `{"n": runs}` as its state, then blocks.
    Stateful { name: String },
    /// Blocks until `gate` is released (many tasks can share one gate).
    Gated { name: String, gate: String },
    /// Ignores cancellation until released, then saves its state; records the outcome.
    LateWriter { name: String },
    /// Logs a line carrying `name`, then succeeds.
    Log { name: String },
    /// Writes its run number under key `name` in the connector's store and reads it back.
    Kv { name: String },
    /// Saves `{"n": runs}` with its final write (`ingest_final`), then returns an error when
    /// `then_fail`, else succeeds.
    Final { name: String, then_fail: bool },
    /// Ends the task with its final write, then keeps running (ignoring cancellation) until
    /// released: the window where the task is TERMINATED in the database and its body goes on.
    FinalThenWait { name: String },
    /// Fails for good on its first run; later runs block until released or cancelled.
    FailThenBlock { name: String },
    /// Does what the probe's [`Behaviour`] for `name` says when the run starts (model test).
    Model { name: String },
}

/// What the next run of a [`Script::Model`] task does: the model test sets it before the run
/// starts, so one descriptor can succeed, fail or block from run to run.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// Succeeds at once.
    Succeed,
    /// Fails with a plain error.
    Fail,
    /// Fails with a non-retryable error.
    Refuse,
    /// Panics.
    Panic,
    /// Fails with a retryable error.
    Retry,
    /// Blocks until [`Probe::release_model`] (ends as told) or cancelled.
    Block,
    /// Blocks ignoring cancellation until released (dropped after the grace period).
    Stubborn,
    /// Ignores cancellation until released, then saves its state and records the outcome.
    LateWrite,
    /// Commits its final write (TERMINATED) at once, then blocks until released or cancelled.
    FinalBlock,
    /// Schedules `Script::Model { name }` RUN_NOW_SYNC (RESTART_IF_NOT_ACTIVE) as a child and
    /// ends with its answer.
    AwaitChild(String),
}

impl Script {
    /// The name events are recorded under.
    pub fn name(&self) -> &str {
        match self {
            Script::Ok { name }
            | Script::Block { name }
            | Script::Stubborn { name }
            | Script::Fail { name }
            | Script::Flaky { name, .. }
            | Script::Refuse { name }
            | Script::Panic { name }
            | Script::Parent { name, .. }
            | Script::Chain { name, .. }
            | Script::Stateful { name }
            | Script::Gated { name, .. }
            | Script::LateWriter { name }
            | Script::Log { name }
            | Script::Kv { name }
            | Script::Final { name, .. }
            | Script::FinalThenWait { name }
            | Script::FailThenBlock { name }
            | Script::Model { name } => name,
        }
    }
}

/// Shortcuts for scripts.
pub fn ok(name: &str) -> Script {
    Script::Ok { name: name.into() }
}
/// A task that blocks until released.
pub fn block(name: &str) -> Script {
    Script::Block { name: name.into() }
}
/// A task that fails plainly.
pub fn fail(name: &str) -> Script {
    Script::Fail { name: name.into() }
}

/// What the test connector records and lets tests control.
#[derive(Default)]
pub struct Probe {
    runs: Mutex<HashMap<String, usize>>,
    /// Every run's name, in the order the runs started.
    order: Mutex<Vec<String>>,
    releases: Mutex<HashMap<String, Arc<Notify>>>,
    released: Mutex<HashMap<String, bool>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    scheduler: Mutex<Option<Scheduler>>,
    states_seen: Mutex<HashMap<String, Vec<Option<Value>>>>,
    writes: Mutex<HashMap<String, Vec<Result<(), TaskError>>>>,
    /// Tasks the connector schedules at install.
    pub install_tasks: Mutex<Vec<(Script, ScheduleOptions)>>,
    /// Make install fail.
    pub fail_install: std::sync::atomic::AtomicBool,
    /// Times the uninstall hook ran.
    pub uninstalls: AtomicUsize,
    /// Times the install hook ran.
    pub installs: AtomicUsize,
    /// Install and uninstall hooks wait for `release("hooks")` (to crash the service in one).
    pub hold_hooks: std::sync::atomic::AtomicBool,
    /// What the next run of each `Script::Model` task does.
    behaviours: Mutex<HashMap<String, Behaviour>>,
    /// Per model task: releases so far and how the last release ends blocked runs.
    gates: Mutex<HashMap<String, (u64, Behaviour)>>,
    /// Model bodies running now, per task name (bodies of every script kind).
    running_by_name: Mutex<HashMap<String, usize>>,
    /// Bodies that started while another body of the same task ran.
    overlaps: Mutex<Vec<String>>,
}

impl Probe {
    /// The names of the runs started so far, in order.
    pub fn order(&self) -> Vec<String> {
        self.order.lock().unwrap().clone()
    }

    /// How many runs of `name` started.
    pub fn runs(&self, name: &str) -> usize {
        self.runs.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// The most runs seen at once.
    pub fn max_running(&self) -> usize {
        self.max_running.load(Ordering::SeqCst)
    }

    /// Runs in progress now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// Lets every blocked run of `name` finish (and later ones finish at once).
    pub fn release(&self, name: &str) {
        self.released.lock().unwrap().insert(name.into(), true);
        self.notify(name).notify_waiters();
    }

    fn notify(&self, name: &str) -> Arc<Notify> {
        self.releases
            .lock()
            .unwrap()
            .entry(name.into())
            .or_default()
            .clone()
    }

    async fn wait_release(&self, name: &str) {
        let notify = self.notify(name);
        loop {
            let notified = notify.notified();
            if self
                .released
                .lock()
                .unwrap()
                .get(name)
                .copied()
                .unwrap_or(false)
            {
                return;
            }
            notified.await;
        }
    }

    /// The scheduler the connector was installed with.
    pub fn scheduler(&self) -> Scheduler {
        self.scheduler
            .lock()
            .unwrap()
            .clone()
            .expect("connector installed")
    }

    /// The states runs of `name` started with.
    pub fn states_seen(&self, name: &str) -> Vec<Option<Value>> {
        self.states_seen
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The outcomes of the state writes of LateWriter runs of `name`, in run order.
    pub fn writes(&self, name: &str) -> Vec<Result<(), TaskError>> {
        self.writes
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Sets what the next runs of the `Script::Model` task `name` do.
    pub fn set_behaviour(&self, name: &str, behaviour: Behaviour) {
        self.behaviours
            .lock()
            .unwrap()
            .insert(name.into(), behaviour);
    }

    /// Ends the model runs of `name` blocked now (not later ones) as `then` says.
    pub fn release_model(&self, name: &str, then: Behaviour) {
        let key = format!("model:{name}");
        {
            let mut gates = self.gates.lock().unwrap();
            let gate = gates.entry(name.into()).or_insert((0, Behaviour::Succeed));
            gate.0 += 1;
            gate.1 = then;
        }
        self.notify(&key).notify_waiters();
    }

    /// Bodies of `name` running now.
    pub fn running_of(&self, name: &str) -> usize {
        self.running_by_name
            .lock()
            .unwrap()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    /// Every body start that overlapped another body of the same task.
    pub fn overlaps(&self) -> Vec<String> {
        self.overlaps.lock().unwrap().clone()
    }

    fn gate(&self, name: &str) -> (u64, Behaviour) {
        self.gates
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or((0, Behaviour::Succeed))
    }

    /// Waits for a release of `name` after `epoch`; answers how the run ends.
    async fn wait_model_release(&self, name: &str, epoch: u64) -> Behaviour {
        let notify = self.notify(&format!("model:{name}"));
        loop {
            let notified = notify.notified();
            let (now, then) = self.gate(name);
            if now > epoch {
                return then;
            }
            notified.await;
        }
    }

    /// Waits until `name` has started `n` runs.
    pub async fn wait_runs(&self, name: &str, n: usize) {
        eventually(
            &format!("{n} runs of {name}"),
            Duration::from_secs(20),
            || async { self.runs(name) >= n },
        )
        .await;
    }
}

struct RunGuard<'a>(&'a Probe);

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Counts a body of one task as running until dropped (a body aborted after the grace period
/// is dropped too), and records a start that overlaps another body of the same task.
struct NameGuard<'a>(&'a Probe, String);

impl<'a> NameGuard<'a> {
    fn enter(probe: &'a Probe, name: &str) -> Self {
        let mut by_name = probe.running_by_name.lock().unwrap();
        let n = by_name.entry(name.into()).or_default();
        *n += 1;
        if *n > 1 {
            probe
                .overlaps
                .lock()
                .unwrap()
                .push(format!("{n} bodies of {name} at once"));
        }
        NameGuard(probe, name.into())
    }
}

impl Drop for NameGuard<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.0.running_by_name.lock().unwrap().get_mut(&self.1) {
            *n -= 1;
        }
    }
}

/// The result a released model body ends with.
fn model_outcome(name: &str, then: &Behaviour) -> Result<(), TaskError> {
    match then {
        Behaviour::Fail => Err(TaskError::failed(format!("{name} failed"))),
        Behaviour::Refuse => Err(TaskError::non_retryable(format!("{name} refused"))),
        Behaviour::Retry => Err(TaskError::retryable(format!("{name} flaked"))),
        Behaviour::Panic => panic!("{name} panicked on purpose"),
        _ => Ok(()),
    }
}

struct ScriptTask {
    script: Script,
    probe: Arc<Probe>,
}

#[async_trait]
impl Task for ScriptTask {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let name = self.script.name().to_string();
        let probe = &self.probe;
        let run = {
            let mut runs = probe.runs.lock().unwrap();
            let n = runs.entry(name.clone()).or_default();
            *n += 1;
            *n
        };
        probe.order.lock().unwrap().push(name.clone());
        probe
            .states_seen
            .lock()
            .unwrap()
            .entry(name.clone())
            .or_default()
            .push(ctx.state::<Value>()?);
        let now = probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        probe.max_running.fetch_max(now, Ordering::SeqCst);
        let _guard = RunGuard(probe);
        let _name_guard = NameGuard::enter(probe, &name);
        let blocked = async {
            tokio::select! {
                _ = probe.wait_release(&name) => Ok(()),
                _ = ctx.cancellation().cancelled() => Err(TaskError::Cancelled),
            }
        };
        match &self.script {
            Script::Ok { .. } => Ok(()),
            Script::Block { .. } => blocked.await,
            Script::Stubborn { .. } => {
                probe.wait_release(&name).await;
                Ok(())
            }
            Script::Fail { .. } => Err(TaskError::failed(format!("{name} failed on run {run}"))),
            Script::Flaky { times, .. } => {
                if run <= *times {
                    Err(TaskError::retryable(format!("{name} flaked on run {run}")))
                } else {
                    Ok(())
                }
            }
            Script::Refuse { .. } => Err(TaskError::non_retryable(format!("{name} refused"))),
            Script::Panic { .. } => panic!("{name} panicked on purpose"),
            Script::Parent { child, sync, .. } => {
                let schedule = if *sync {
                    Schedule::RunNowSync
                } else {
                    Schedule::RunNow
                };
                ctx.scheduler()
                    .schedule(
                        &**child,
                        ScheduleOptions::new(schedule, Restart::IfNotActive),
                    )
                    .await?;
                blocked.await
            }
            Script::Chain { depth, .. } => {
                if *depth > 0 {
                    let child = Script::Chain {
                        name: format!("chain-{}", depth - 1),
                        depth: depth - 1,
                    };
                    ctx.scheduler()
                        .schedule(
                            &child,
                            ScheduleOptions::new(Schedule::RunNowSync, Restart::Never),
                        )
                        .await?;
                }
                Ok(())
            }
            Script::Stateful { .. } => {
                ctx.save_state(&json!({ "n": run })).await?;
                blocked.await
            }
            Script::Gated { gate, .. } => {
                tokio::select! {
                    _ = probe.wait_release(gate) => Ok(()),
                    _ = ctx.cancellation().cancelled() => Err(TaskError::Cancelled),
                }
            }
            Script::Log { .. } => {
                tracing::info!(marker = %name, "task body working");
                Ok(())
            }
            Script::Kv { .. } => {
                ctx.kv_put(&name, &json!(run)).await?;
                let back: Option<Value> = ctx.kv_get(&name).await?;
                if back != Some(json!(run)) {
                    return Err(TaskError::failed(format!("store read back {back:?}")));
                }
                Ok(())
            }
            Script::Final { then_fail, .. } => {
                let state = json!({ "n": run });
                ctx.ingest_final(Batch::default(), Some(&state)).await?;
                if *then_fail {
                    return Err(TaskError::failed("failed after the final write"));
                }
                Ok(())
            }
            Script::FinalThenWait { .. } => {
                let state = json!({ "n": run });
                ctx.ingest_final(Batch::default(), Some(&state)).await?;
                probe.wait_release(&name).await;
                Ok(())
            }
            Script::FailThenBlock { .. } if run == 1 => {
                Err(TaskError::non_retryable(format!("{name} refused on run 1")))
            }
            Script::FailThenBlock { .. } => blocked.await,
            Script::Model { .. } => {
                let behaviour = probe
                    .behaviours
                    .lock()
                    .unwrap()
                    .get(&name)
                    .cloned()
                    .unwrap_or(Behaviour::Succeed);
                let epoch = probe.gate(&name).0;
                let released = probe.wait_model_release(&name, epoch);
                match behaviour {
                    Behaviour::Block => tokio::select! {
                        then = released => model_outcome(&name, &then),
                        _ = ctx.cancellation().cancelled() => Err(TaskError::Cancelled),
                    },
                    Behaviour::Stubborn => model_outcome(&name, &released.await),
                    Behaviour::LateWrite => {
                        let then = released.await;
                        let written = ctx.save_state(&json!({ "run": run })).await;
                        probe
                            .writes
                            .lock()
                            .unwrap()
                            .entry(name.clone())
                            .or_default()
                            .push(written.clone());
                        written?;
                        model_outcome(&name, &then)
                    }
                    Behaviour::FinalBlock => {
                        ctx.ingest_final(Batch::default(), Some(&json!({ "run": run })))
                            .await?;
                        tokio::select! {
                            then = released => model_outcome(&name, &then),
                            _ = ctx.cancellation().cancelled() => Err(TaskError::Cancelled),
                        }
                    }
                    Behaviour::AwaitChild(child) => ctx
                        .scheduler()
                        .schedule(
                            &Script::Model { name: child },
                            ScheduleOptions::new(Schedule::RunNowSync, Restart::IfNotActive),
                        )
                        .await
                        .map(|_| ()),
                    other => model_outcome(&name, &other),
                }
            }
            Script::LateWriter { .. } => {
                probe.wait_release(&name).await;
                let written = ctx.save_state(&json!({ "run": run })).await;
                probe
                    .writes
                    .lock()
                    .unwrap()
                    .entry(name.clone())
                    .or_default()
                    .push(written.clone());
                written
            }
        }
    }
}

struct TestConnector {
    probe: Arc<Probe>,
}

#[async_trait]
impl Connector for TestConnector {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        self.probe.installs.fetch_add(1, Ordering::SeqCst);
        *self.probe.scheduler.lock().unwrap() = Some(ctx.scheduler());
        if self.probe.hold_hooks.load(Ordering::SeqCst) {
            self.probe.wait_release("hooks").await;
        }
        let tasks = self.probe.install_tasks.lock().unwrap().clone();
        for (script, options) in tasks {
            ctx.scheduler().schedule(&script, options).await?;
        }
        if self.probe.fail_install.load(Ordering::SeqCst) {
            return Err(TaskError::failed("install refused on purpose"));
        }
        Ok(())
    }

    async fn config_updated(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        // A runtime restored after a restart calls no install: a config update hands the
        // tests a scheduler of the new runtime.
        *self.probe.scheduler.lock().unwrap() = Some(ctx.scheduler());
        Ok(())
    }

    async fn uninstall(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        self.probe.uninstalls.fetch_add(1, Ordering::SeqCst);
        if self.probe.hold_hooks.load(Ordering::SeqCst) {
            self.probe.wait_release("hooks").await;
        }
        Ok(())
    }

    fn resolve(&self, descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        let script: Script = serde_json::from_value(descriptor.clone())
            .map_err(|e| TaskError::non_retryable(format!("unknown descriptor: {e}")))?;
        Ok(Box::new(ScriptTask {
            script,
            probe: self.probe.clone(),
        }))
    }
}

/// The test provider; `allow_tasks` is set per test.
pub struct TestLoader {
    /// The probe every connector of this loader shares.
    pub probe: Arc<Probe>,
    /// The concurrency limit.
    pub allow: usize,
}

impl Loader for TestLoader {
    fn provider(&self) -> &'static str {
        "TEST"
    }

    fn provider_title(&self) -> &'static str {
        "Test"
    }

    fn allow_tasks(&self) -> usize {
        self.allow
    }

    fn schema(&self) -> ConfigSchema {
        let mut schema = ConfigSchema::new();
        schema.insert(
            "name",
            FieldSpec {
                data_type: "string",
                required: true,
                default_value: None,
                secret: false,
            },
        );
        schema.insert(
            "period",
            FieldSpec {
                data_type: "duration ns",
                required: false,
                default_value: Some(json!("10s")),
                secret: false,
            },
        );
        schema
    }

    fn validate_fields(&self, config: &Config) -> Result<(), ConfigError> {
        match config.get("period") {
            Some(Value::String(p)) if humantime::parse_duration(p).is_ok() => Ok(()),
            None => Ok(()),
            Some(other) => Err(ConfigError::field(
                "period",
                format!("must be a duration such as \"10s\", not {other}"),
            )),
        }
    }

    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        // A stored config can be made one that no longer loads by adding this key.
        if config.contains_key("unloadable") {
            return Err(ConfigError::field("unloadable", "refused on purpose"));
        }
        Ok(Arc::new(TestConnector {
            probe: self.probe.clone(),
        }))
    }
}

/// A runtime on a fresh database, with one TEST connector installed.
pub struct Harness {
    /// The database.
    pub db: TestDb,
    /// The storage actor.
    pub storage: StorageHandle,
    /// The runtime under test.
    pub runtime: Runtime,
    /// The test clock.
    pub clock: TestClock,
    /// The connector's probe.
    pub probe: Arc<Probe>,
    /// The installed connector's id.
    pub connector_id: String,
    allow: usize,
}

/// The clock's starting time in every runtime test.
pub fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).expect("time")
}

/// Fast settings: a short grace period.
pub fn settings() -> RuntimeSettings {
    RuntimeSettings {
        task_grace_period: Duration::from_millis(300),
        ..RuntimeSettings::default()
    }
}

impl Harness {
    /// Installs a TEST connector with `allow` slots; `install_tasks` are scheduled by install.
    pub async fn start(allow: usize, install_tasks: Vec<(Script, ScheduleOptions)>) -> Harness {
        let mut harness = Self::bare(allow).await;
        *harness.probe.install_tasks.lock().unwrap() = install_tasks;
        harness.connector_id = harness.install().await.expect("install");
        harness
    }

    /// A runtime with no connector installed yet.
    pub async fn bare(allow: usize) -> Harness {
        let db = TestDb::new().await;
        let storage = StorageHandle::start(db.pool(), 1000, Duration::ZERO);
        let clock = TestClock::new(t0());
        let probe = Arc::new(Probe::default());
        let runtime = Self::runtime(&storage, &clock, &probe, allow);
        runtime.restore().await.expect("restore");
        Harness {
            db,
            storage,
            runtime,
            clock,
            probe,
            connector_id: String::new(),
            allow,
        }
    }

    /// Installs a TEST connector named "test".
    pub async fn install(&self) -> Result<String, tributary::runtime::RuntimeError> {
        let mut config = Config::new();
        config.insert("name".into(), json!("test"));
        self.runtime.install("test", config, false).await
    }

    /// Counts the rows of a table in the test database.
    pub async fn count(&self, table: &str) -> i64 {
        self.db
            .client()
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    }

    fn runtime(
        storage: &StorageHandle,
        clock: &TestClock,
        probe: &Arc<Probe>,
        allow: usize,
    ) -> Runtime {
        let registry = Registry::new().with(Arc::new(TestLoader {
            probe: probe.clone(),
            allow,
        }));
        Runtime::start(
            registry,
            storage.clone(),
            Arc::new(clock.clone()),
            settings(),
            Arc::new(tributary::secrets::Vault::ephemeral()),
        )
    }

    /// Shuts the runtime down as the service does at SIGTERM and starts a new one on the same
    /// database, which restores everything.
    pub async fn restart(&mut self) {
        self.shutdown().await;
        self.boot().await;
    }

    /// Stops every run, as at SIGTERM, and waits for pending writes.
    pub async fn shutdown(&self) {
        self.runtime.shutdown().await;
        self.storage.drain().await;
    }

    /// Starts a new runtime on the same database; it restores every connector and task.
    pub async fn boot(&mut self) {
        self.runtime = Self::runtime(&self.storage, &self.clock, &self.probe, self.allow);
        self.runtime.restore().await.expect("restore after restart");
    }

    /// Schedules a script as a root task.
    pub async fn schedule(
        &self,
        script: &Script,
        options: ScheduleOptions,
    ) -> Result<Uuid, TaskError> {
        self.probe.scheduler().schedule(script, options).await
    }

    /// The id a script's task gets.
    pub fn task_id(&self, script: &Script) -> Uuid {
        let value = serde_json::to_value(script).expect("json");
        tributary::ids::task_id(&self.connector_id, &tributary::ids::canonical_json(&value))
    }

    /// A task's stored row: (status, error, attempts, restarts, due_at, state).
    pub async fn row(&self, id: Uuid) -> Option<tributary::storage::queries::tasks::TaskRow> {
        tributary::storage::queries::tasks::get(self.storage.pool(), &self.connector_id, id)
            .await
            .expect("read task")
    }

    /// A task's stored status.
    pub async fn status(&self, id: Uuid) -> Option<TaskStatus> {
        self.row(id).await.map(|r| r.status)
    }

    /// Waits until a task's stored status is `status`.
    pub async fn wait_status(&self, id: Uuid, status: TaskStatus) {
        let mut last = None;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let now = self.status(id).await;
            if now == Some(status) {
                return;
            }
            last = now.or(last);
            assert!(
                std::time::Instant::now() < deadline,
                "task {id} never became {status:?} (last {last:?})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until what was already asked of the runtime has happened, so that an absence
    /// ("no second run started") can be asserted: a fresh task scheduled now runs to its
    /// end after every run started before it (slots are granted in order; needs a free one),
    /// and the storage actor is drained.
    pub async fn settle(&self) {
        static SENTINELS: AtomicUsize = AtomicUsize::new(0);
        let name = format!("sentinel-{}", SENTINELS.fetch_add(1, Ordering::SeqCst));
        let id = self
            .schedule(&ok(&name), run_now(Restart::Never))
            .await
            .expect("sentinel");
        self.wait_status(id, TaskStatus::Terminated).await;
        self.storage.drain().await;
    }

    /// Waits until some timer is armed on the test clock, then returns the earliest deadline.
    pub async fn next_deadline(&self) -> DateTime<Utc> {
        let clock = self.clock.clone();
        eventually("a timer to be armed", Duration::from_secs(20), || {
            let clock = clock.clone();
            async move { !clock.pending_deadlines().is_empty() }
        })
        .await;
        self.clock.pending_deadlines()[0]
    }

    /// Advances the test clock to the earliest armed timer.
    pub async fn fire_next_timer(&self) {
        let deadline = self.next_deadline().await;
        let by = deadline - self.clock.now();
        self.clock.advance(by.max(chrono::Duration::zero()));
    }
}

/// RUN_NOW options with a restart option.
pub fn run_now(restart: Restart) -> ScheduleOptions {
    ScheduleOptions::new(Schedule::RunNow, restart)
}
