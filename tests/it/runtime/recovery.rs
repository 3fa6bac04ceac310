//! Recovery of connector operations a crash interrupted, and resume/config updates that must
//! (or must not) start a connector's tasks. A crash is simulated at runtime level: the
//! operation's lifecycle mark is written as the operation writes it first, the runtime stops
//! without finishing anything, and a new runtime boots on the same database.

use std::sync::atomic::Ordering;

use serde_json::json;
use tributary::sdk::{Config, Restart, TaskStatus};

use super::support::{Harness, block, run_now};

/// Writes a lifecycle mark on the harness's connector, as an operation does before it starts.
async fn mark(h: &Harness, lifecycle: &str) {
    h.db.client()
        .await
        .execute(
            "UPDATE connectors SET lifecycle = $2 WHERE id = $1",
            &[&h.connector_id, &lifecycle],
        )
        .await
        .expect("mark");
}

/// Stores a connector value in its store, as a task would.
async fn kv(h: &Harness) {
    h.db.client()
        .await
        .execute(
            "INSERT INTO connector_kv (connector_id, key, value) VALUES ($1, 'k', '1')",
            &[&h.connector_id],
        )
        .await
        .expect("kv");
}

#[actix_rt::test]
async fn an_install_interrupted_by_a_crash_is_rolled_back_at_boot() {
    let mut h = Harness::start(10, vec![(block("i"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("i", 1).await;
    kv(&h).await;
    h.shutdown().await;
    mark(&h, "installing").await;
    h.boot().await;
    assert_eq!(h.count("connectors").await, 0);
    assert_eq!(h.count("tasks").await, 0);
    assert_eq!(h.count("connector_kv").await, 0);
    assert_eq!(
        h.probe.runs("i"),
        1,
        "a task of the rolled back install ran"
    );
    // Its name is free again.
    h.install().await.expect("install after the rollback");
}

#[actix_rt::test]
async fn an_uninstall_interrupted_by_a_crash_is_finished_at_boot() {
    let mut h = Harness::start(10, vec![(block("u"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("u", 1).await;
    kv(&h).await;
    h.shutdown().await;
    mark(&h, "uninstalling").await;
    h.boot().await;
    assert_eq!(
        h.probe.uninstalls.load(Ordering::SeqCst),
        1,
        "uninstall hook"
    );
    assert_eq!(h.count("connectors").await, 0);
    assert_eq!(h.count("tasks").await, 0);
    assert_eq!(h.count("connector_kv").await, 0);
    assert_eq!(
        h.probe.runs("u"),
        1,
        "a task of the uninstalled connector ran"
    );
    assert!(matches!(
        h.runtime.pause(&h.connector_id).await,
        Err(tributary::runtime::RuntimeError::ConnectorNotFound(_))
    ));
}

#[actix_rt::test]
async fn a_reset_interrupted_by_a_crash_is_finished_at_boot_with_the_same_id() {
    let mut h = Harness::start(10, vec![(block("r"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("r", 1).await;
    kv(&h).await;
    h.shutdown().await;
    mark(&h, "resetting").await;
    h.boot().await;
    assert_eq!(
        h.probe.uninstalls.load(Ordering::SeqCst),
        1,
        "uninstall hook"
    );
    assert_eq!(h.count("connector_kv").await, 0, "data wiped");
    let ids: Vec<(String, String)> =
        h.db.client()
            .await
            .query("SELECT id, lifecycle FROM connectors", &[])
            .await
            .expect("ids")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    assert_eq!(ids, vec![(h.connector_id.clone(), "installed".to_string())]);
    // Install ran again: its task was scheduled anew (a fresh row, run 0) and runs.
    h.probe.wait_runs("r", 2).await;
    let row = h.row(h.task_id(&block("r"))).await.expect("row");
    assert_eq!(row.run_number, 0);
    // And the connector takes operations again.
    h.runtime.pause(&h.connector_id).await.expect("pause");
    assert_eq!(h.probe.running(), 0);
}

#[actix_rt::test]
async fn resume_of_a_connector_that_is_not_paused_leaves_a_fail_on_interrupt_run_alone() {
    let h = Harness::start(10, vec![]).await;
    let script = block("once");
    let id = h
        .schedule(&script, run_now(Restart::Never).fail_on_interrupt())
        .await
        .expect("schedule");
    h.probe.wait_runs("once", 1).await;
    h.wait_status(id, TaskStatus::Active).await;
    h.runtime.resume(&h.connector_id).await.expect("resume");
    h.probe.release("once");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        let status = h.status(id).await;
        if status.is_some_and(|s| !s.is_live()) {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the run never ended ({status:?})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(status, Some(TaskStatus::Terminated));
    assert_eq!(h.probe.runs("once"), 1);
}

#[actix_rt::test]
async fn a_config_update_starts_a_connector_whose_stored_config_did_not_load() {
    let mut h = Harness::start(10, vec![(block("idle"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("idle", 1).await;
    h.shutdown().await;
    h.db.client()
        .await
        .execute(
            "UPDATE connectors SET config = config || '{\"unloadable\": true}'",
            &[],
        )
        .await
        .expect("break the stored config");
    h.boot().await;

    let mut config = Config::new();
    config.insert("name".into(), json!("test"));
    h.runtime
        .update_config(&h.connector_id, config)
        .await
        .expect("update");
    h.probe.wait_runs("idle", 2).await;
}

#[actix_rt::test]
async fn an_uninstall_whose_delete_failed_can_be_tried_again() {
    let h = Harness::start(10, vec![]).await;
    let client = h.db.client().await;
    client
        .batch_execute(
            "CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'disk full' USING ERRCODE = 'disk_full'; END $$;
             CREATE TRIGGER refuse_delete BEFORE DELETE ON connectors
                 FOR EACH ROW EXECUTE FUNCTION refuse_delete();",
        )
        .await
        .expect("trigger");
    assert!(h.runtime.uninstall(&h.connector_id).await.is_err());
    assert_eq!(h.count("connectors").await, 1);
    client
        .batch_execute("DROP TRIGGER refuse_delete ON connectors")
        .await
        .expect("drop trigger");
    h.runtime
        .uninstall(&h.connector_id)
        .await
        .expect("the second uninstall");
    assert_eq!(h.count("connectors").await, 0);
    // The retry found the connector's supervisor alive: its cleanup hook ran again.
    assert_eq!(h.probe.uninstalls.load(Ordering::SeqCst), 2);
}

/// A service killed (not shut down) while a connector operation is in its hook: the runtime
/// and its storage actor run on an arbiter of their own, which is stopped mid-hook, as a
/// SIGKILL would; a new runtime then boots on the same database.
mod killed_in_a_hook {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use actix::Arbiter;
    use serde_json::json;
    use tributary::runtime::{Registry, Runtime};
    use tributary::sdk::{Config, Restart, TestClock};
    use tributary::storage::StorageHandle;

    use super::super::support::{Probe, TestLoader, block, run_now, settings, t0};
    use crate::helpers::{TestDb, eventually};

    /// Starts a runtime (and its storage actor) on a new arbiter; restores.
    async fn node(db: &TestDb, probe: &Arc<Probe>) -> (Arbiter, Runtime) {
        let arbiter = Arbiter::new();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (url, probe) = (db.url.clone(), probe.clone());
        arbiter.spawn(async move {
            let pool = tributary::storage::database::connect(&url, 4, Duration::from_secs(10))
                .expect("pool");
            let storage = StorageHandle::start(pool, 1000, Duration::ZERO);
            let registry = Registry::new().with(Arc::new(TestLoader { probe, allow: 10 }));
            let clock = Arc::new(TestClock::new(t0()));
            let _ = tx.send(Runtime::start(
                registry,
                storage,
                clock,
                settings(),
                Arc::new(tributary::secrets::Vault::ephemeral()),
            ));
        });
        let runtime = rx.await.expect("node");
        runtime.restore().await.expect("restore");
        (arbiter, runtime)
    }

    /// Kills the node: every actor and body is dropped, nothing is written on the way out.
    fn kill(arbiter: Arbiter) {
        arbiter.stop();
        let _ = arbiter.join();
    }

    async fn lifecycle(db: &TestDb) -> Vec<String> {
        db.client()
            .await
            .query("SELECT lifecycle FROM connectors", &[])
            .await
            .expect("connectors")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn count(db: &TestDb, table: &str) -> i64 {
        db.client()
            .await
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0)
    }

    /// Runs `f` on a thread of its own with its own actix System (the arbiter is joined).
    fn isolated<F: std::future::Future<Output = ()> + 'static>(
        f: impl FnOnce() -> F + Send + 'static,
    ) {
        crate::helpers::ensure_server_started();
        std::thread::spawn(move || actix::System::new().block_on(f()))
            .join()
            .expect("the test thread panicked");
    }

    fn config() -> Config {
        let mut config = Config::new();
        config.insert("name".into(), json!("killed"));
        config
    }

    #[test]
    fn an_install_killed_in_its_hook_is_rolled_back() {
        isolated(|| async {
            let db = TestDb::new().await;
            let probe = Arc::new(Probe::default());
            probe.hold_hooks.store(true, Ordering::SeqCst);
            let (arbiter, runtime) = node(&db, &probe).await;
            actix_rt::spawn(async move {
                let _ = runtime.install("test", config(), false).await;
            });
            eventually("the install hook", Duration::from_secs(20), || async {
                probe.installs.load(Ordering::SeqCst) == 1
            })
            .await;
            assert_eq!(lifecycle(&db).await, ["installing"]);
            kill(arbiter);
            let (arbiter, _runtime) = node(&db, &probe).await;
            assert_eq!(count(&db, "connectors").await, 0);
            kill(arbiter);
        });
    }

    /// An installed connector whose install scheduled `task`, killed while `operation`
    /// (uninstall or reset) waits in the uninstall hook, its mark `mark` durable; then a new
    /// runtime boots on the same database. Returns the database, probe, connector id and the
    /// new node.
    async fn killed_during<F, Fut>(
        task: &str,
        mark: &str,
        operation: F,
    ) -> (TestDb, Arc<Probe>, String, Arbiter)
    where
        F: FnOnce(Runtime, String) -> Fut,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let db = TestDb::new().await;
        let probe = Arc::new(Probe::default());
        *probe.install_tasks.lock().unwrap() = vec![(block(task), run_now(Restart::Never))];
        let (arbiter, runtime) = node(&db, &probe).await;
        let id = runtime
            .install("test", config(), false)
            .await
            .expect("install");
        probe.wait_runs(task, 1).await;
        probe.hold_hooks.store(true, Ordering::SeqCst);
        actix_rt::spawn(operation(runtime, id.clone()));
        eventually("the uninstall hook", Duration::from_secs(20), || async {
            probe.uninstalls.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(lifecycle(&db).await, [mark]);
        kill(arbiter);
        probe.hold_hooks.store(false, Ordering::SeqCst);
        let (arbiter, _runtime) = node(&db, &probe).await;
        (db, probe, id, arbiter)
    }

    #[test]
    fn an_uninstall_killed_in_its_hook_is_finished_at_boot() {
        isolated(|| async {
            let (db, probe, _, arbiter) =
                killed_during("kept", "uninstalling", |runtime, id| async move {
                    let _ = runtime.uninstall(&id).await;
                })
                .await;
            assert_eq!(count(&db, "connectors").await, 0);
            assert_eq!(count(&db, "tasks").await, 0);
            assert_eq!(
                probe.uninstalls.load(Ordering::SeqCst),
                2,
                "the hook ran again"
            );
            assert_eq!(
                probe.runs("kept"),
                1,
                "a task ran during the finished uninstall"
            );
            kill(arbiter);
        });
    }

    #[test]
    fn a_reset_killed_in_its_hook_is_finished_at_boot_with_the_same_id() {
        isolated(|| async {
            let (db, probe, id, arbiter) =
                killed_during("again", "resetting", |runtime, id| async move {
                    let _ = runtime.reset(&id).await;
                })
                .await;
            assert_eq!(lifecycle(&db).await, ["installed"]);
            let ids: Vec<String> = db
                .client()
                .await
                .query("SELECT id FROM connectors", &[])
                .await
                .expect("ids")
                .iter()
                .map(|r| r.get(0))
                .collect();
            assert_eq!(ids, [id]);
            // The install hook ran again and its task runs again.
            probe.wait_runs("again", 2).await;
            assert_eq!(probe.installs.load(Ordering::SeqCst), 2);
            kill(arbiter);
        });
    }
}
