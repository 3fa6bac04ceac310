//! The `tasks` scenario: the runtime alone, with a connector whose tasks do nothing.
//!
//! - one-shot tasks per second: RUN_NOW tasks, schedule → run → TERMINATED durable;
//! - resident memory per idle periodic task;
//! - boot restore time for the live tasks (the idle periodic ones).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use futures::future::join_all;
use serde_json::{Value, json};
use tributary::runtime::{Registry, Runtime};
use tributary::sdk::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldSpec, Loader, Restart,
    Schedule, ScheduleOptions, Scheduler, SystemClock, Task, TaskContext, TaskError,
};
use tributary::settings::RuntimeSettings;
use tributary::storage::database::with_dbname;
use tributary::storage::{StorageHandle, database, migrate};

#[derive(Default)]
struct Shared {
    scheduler: Mutex<Option<Scheduler>>,
    runs: AtomicUsize,
}

struct Noop(Arc<Shared>);

#[async_trait]
impl Task for Noop {
    async fn run(&self, _ctx: TaskContext) -> Result<(), TaskError> {
        self.0.runs.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct BenchConnector(Arc<Shared>);

#[async_trait]
impl Connector for BenchConnector {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        *self.0.scheduler.lock().expect("lock") = Some(ctx.scheduler());
        Ok(())
    }

    fn resolve(&self, _descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        Ok(Box::new(Noop(self.0.clone())))
    }
}

struct BenchLoader(Arc<Shared>);

impl Loader for BenchLoader {
    fn provider(&self) -> &'static str {
        "BENCH"
    }
    fn provider_title(&self) -> &'static str {
        "Bench"
    }
    fn allow_tasks(&self) -> usize {
        50
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
        schema
    }
    fn load(&self, _config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(BenchConnector(self.0.clone())))
    }
}

/// Resident memory of this process, in bytes, after returning freed memory to the system.
fn rss_bytes() -> u64 {
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

async fn count(pool: &tributary::storage::Pool, sql: &str) -> anyhow::Result<i64> {
    Ok(pool.get().await?.query_one(sql, &[]).await?.get(0))
}

fn start_runtime(storage: &StorageHandle, shared: &Arc<Shared>) -> Runtime {
    let registry = Registry::new().with(Arc::new(BenchLoader(shared.clone())));
    Runtime::start(
        registry,
        storage.clone(),
        Arc::new(SystemClock),
        RuntimeSettings::default(),
        Arc::new(tributary::secrets::Vault::ephemeral()),
    )
}

/// Runs the scenario.
pub async fn run(admin_url: String, one_shot: usize, idle: usize) -> anyhow::Result<()> {
    let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
    database::ensure_database(&admin_url, &db).await?;
    let url = with_dbname(&admin_url, &db);
    let pool = database::connect(&url, 16, Duration::from_secs(10))?;
    migrate::run(&pool).await?;
    let storage = StorageHandle::start(pool.clone(), 1000, Duration::ZERO);
    let shared = Arc::new(Shared::default());
    let runtime = start_runtime(&storage, &shared);
    runtime.restore().await?;
    let mut config = Config::new();
    config.insert("name".into(), json!("bench"));
    let connector_id = runtime.install("BENCH", config, false).await?;
    let scheduler = shared
        .scheduler
        .lock()
        .map_err(|_| anyhow::anyhow!("scheduler lock poisoned"))?
        .clone()
        .context("the bench connector's install hook did not run")?;

    // 1. One-shot tasks: schedule → run → TERMINATED durable.
    let started = Instant::now();
    let once = ScheduleOptions::new(Schedule::RunNow, Restart::Never);
    let runs_before = shared.runs.load(Ordering::Relaxed);
    join_all((0..one_shot).map(|i| scheduler.schedule(&json!({"once": i}), once.clone()))).await;
    // Counted in memory while they run (a `count(*)` every few milliseconds would take the
    // database's time from the runtime being measured), then proven durable.
    while shared.runs.load(Ordering::Relaxed) < runs_before + one_shot {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    loop {
        storage.drain().await;
        let sql = "SELECT count(*) FROM tasks WHERE status = 'TERMINATED'";
        if count(&pool, sql).await? >= one_shot as i64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    let tasks_per_s = one_shot as f64 / elapsed.as_secs_f64();
    let stats = storage.stats();
    println!(
        "one-shot: {one_shot} tasks TERMINATED in {:.2} s = {tasks_per_s:.0} tasks/s ({} transactions, {} writes)",
        elapsed.as_secs_f64(),
        stats.transactions.load(Ordering::Relaxed),
        stats.writes.load(Ordering::Relaxed),
    );

    // 2. Idle periodic tasks: each runs once, then waits an hour.
    let before = rss_bytes();
    let hourly = ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(3600)),
        Restart::Never,
    );
    let runs_before = shared.runs.load(Ordering::Relaxed);
    let started = Instant::now();
    for chunk in (0..idle).collect::<Vec<_>>().chunks(5_000) {
        join_all(
            chunk
                .iter()
                .map(|i| scheduler.schedule(&json!({"idle": i}), hourly.clone())),
        )
        .await;
    }
    while shared.runs.load(Ordering::Relaxed) < runs_before + idle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    storage.drain().await;
    let scheduled_in = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss_bytes();
    let per_task = (after.saturating_sub(before)) as f64 / idle as f64;
    println!(
        "idle periodic: {idle} tasks scheduled and run once in {:.2} s; RSS {:.1} MiB -> {:.1} MiB = {per_task:.0} bytes per idle task",
        scheduled_in.as_secs_f64(),
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
    );

    // 3. Boot restore: a new runtime resumes every live task.
    runtime.shutdown().await;
    storage.drain().await;
    let live = count(
        &pool,
        "SELECT count(*) FROM tasks WHERE status IN ('PENDING', 'ACTIVE')",
    )
    .await?;
    let runtime = start_runtime(&storage, &shared);
    let started = Instant::now();
    runtime.restore().await?;
    let restored_in = started.elapsed();
    println!(
        "boot restore: {live} live tasks resumed in {:.3} s",
        restored_in.as_secs_f64()
    );
    println!(
        "{}",
        json!({
            "bench": "tasks",
            "one_shot_tasks": one_shot,
            "one_shot_tasks_per_s": tasks_per_s.round(),
            "idle_periodic_tasks": idle,
            "bytes_per_idle_task": per_task.round(),
            "restore_live_tasks": live,
            "restore_seconds": restored_in.as_secs_f64(),
        })
    );
    runtime.shutdown().await;
    let _ = connector_id;
    pool.close();
    let admin = database::connect(&admin_url, 2, Duration::from_secs(10))?;
    admin
        .get()
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    Ok(())
}
