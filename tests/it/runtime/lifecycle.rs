//! Connector lifecycle: install all-or-nothing, uninstall during a run, pause and resume
//! across restarts, reset with the same id.

use tributary::runtime::RuntimeError;
use tributary::sdk::{Restart, TaskStatus};

use super::support::{Harness, Script, block, run_now};

#[actix_rt::test]
async fn an_install_whose_hook_fails_leaves_nothing_behind() {
    let h = Harness::bare(10).await;
    *h.probe.install_tasks.lock().unwrap() = vec![(block("early"), run_now(Restart::Never))];
    h.probe
        .fail_install
        .store(true, std::sync::atomic::Ordering::SeqCst);
    match h.install().await {
        Err(RuntimeError::InstallFailed(e)) => assert!(e.to_string().contains("refused")),
        other => panic!("expected InstallFailed, got {other:?}"),
    }
    assert_eq!(h.count("connectors").await, 0);
    assert_eq!(h.count("tasks").await, 0);
    assert_eq!(
        h.probe.running(),
        0,
        "a task of the failed install still runs"
    );

    // The same name installs fine once the hook succeeds.
    h.probe
        .fail_install
        .store(false, std::sync::atomic::Ordering::SeqCst);
    h.install().await.expect("second install");
}

#[actix_rt::test]
async fn a_duplicate_connector_name_is_a_conflict() {
    let h = Harness::start(10, vec![]).await;
    match h.install().await {
        Err(RuntimeError::Conflict(m)) => assert!(m.contains("test"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(h.count("connectors").await, 1);
}

#[actix_rt::test]
async fn uninstall_during_a_run_cancels_it_and_deletes_every_row() {
    let h = Harness::start(10, vec![(block("busy"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("busy", 1).await;
    h.runtime
        .uninstall(&h.connector_id)
        .await
        .expect("uninstall");
    assert_eq!(h.probe.running(), 0);
    assert_eq!(
        h.probe.uninstalls.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    assert_eq!(h.count("connectors").await, 0);
    assert_eq!(h.count("tasks").await, 0);
    assert!(matches!(
        h.runtime.uninstall(&h.connector_id).await,
        Err(RuntimeError::ConnectorNotFound(_))
    ));
}

#[actix_rt::test]
async fn pause_stops_runs_and_survives_a_restart_until_resume() {
    let mut h = Harness::start(10, vec![(block("p"), run_now(Restart::Never))]).await;
    let id = h.task_id(&block("p"));
    h.probe.wait_runs("p", 1).await;
    h.runtime.pause(&h.connector_id).await.expect("pause");
    assert_eq!(h.probe.running(), 0);
    assert!(
        h.status(id).await.is_some_and(TaskStatus::is_live),
        "pause leaves statuses alone"
    );

    h.restart().await;
    assert_eq!(
        h.probe.runs("p"),
        1,
        "a paused connector started a task at boot"
    );

    h.runtime.resume(&h.connector_id).await.expect("resume");
    h.probe.wait_runs("p", 2).await;
    h.probe.release("p");
    h.wait_status(id, TaskStatus::Terminated).await;
}

#[actix_rt::test]
async fn reset_wipes_the_data_and_installs_again_with_the_same_id() {
    let h = Harness::start(10, vec![(block("r"), run_now(Restart::Never))]).await;
    h.probe.wait_runs("r", 1).await;
    h.db.client()
        .await
        .execute(
            "INSERT INTO connector_kv (connector_id, key, value) VALUES ($1, 'k', '1')",
            &[&h.connector_id],
        )
        .await
        .expect("kv");
    h.runtime.reset(&h.connector_id).await.expect("reset");
    assert_eq!(h.count("connector_kv").await, 0);
    let ids: Vec<String> =
        h.db.client()
            .await
            .query("SELECT id FROM connectors", &[])
            .await
            .expect("ids")
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(ids, vec![h.connector_id.clone()]);
    // install ran again: its task is scheduled anew (a fresh row, run 0).
    h.probe.wait_runs("r", 2).await;
    let row = h.row(h.task_id(&block("r"))).await.expect("row");
    assert_eq!(row.run_number, 0);
}

#[actix_rt::test]
async fn restart_task_reruns_a_failed_task_and_refuses_a_live_one() {
    let h = Harness::start(10, vec![]).await;
    let f = h
        .schedule(&super::support::fail("rf"), run_now(Restart::Never))
        .await
        .expect("f");
    h.wait_status(f, TaskStatus::Failed).await;
    h.runtime
        .restart_task(&h.connector_id, f)
        .await
        .expect("restart");
    h.probe.wait_runs("rf", 2).await;
    h.wait_status(f, TaskStatus::Failed).await;

    let live = h
        .schedule(&block("live"), run_now(Restart::Never))
        .await
        .expect("live");
    h.probe.wait_runs("live", 1).await;
    assert!(matches!(
        h.runtime.restart_task(&h.connector_id, live).await,
        Err(RuntimeError::TaskIsLive { .. })
    ));
    assert!(matches!(
        h.runtime
            .restart_task(&h.connector_id, uuid::Uuid::nil())
            .await,
        Err(RuntimeError::TaskNotFound(_))
    ));
}

#[actix_rt::test]
async fn a_body_that_ignores_cancellation_is_dropped_after_the_grace_period() {
    let h = Harness::start(10, vec![]).await;
    let stubborn = Script::Stubborn {
        name: "deaf".into(),
    };
    let id = h
        .schedule(&stubborn, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    h.probe.wait_runs("deaf", 1).await;
    h.wait_status(id, TaskStatus::Active).await;
    // The pause answers once the run is over: after the grace period, the body was dropped.
    let started = std::time::Instant::now();
    h.runtime.pause(&h.connector_id).await.expect("pause");
    assert!(
        started.elapsed() >= super::support::settings().task_grace_period,
        "the body was not given its grace period"
    );
    assert_eq!(h.probe.running(), 0, "the body outlived the grace period");
    // A pause writes nothing: the run is redone at resume.
    h.storage.drain().await;
    assert_eq!(h.status(id).await, Some(TaskStatus::Active));
    h.runtime.resume(&h.connector_id).await.expect("resume");
    h.probe.wait_runs("deaf", 2).await;
    h.probe.release("deaf");
    h.wait_status(id, TaskStatus::Terminated).await;
}

/// `Runtime::call_connector` reaches the installed connector value (what money out, bank
/// accounts and webhooks use); a panic in the call is an error, and the connector survives it.
#[actix_rt::test]
async fn a_call_into_a_connector_reaches_it_and_survives_a_panic() {
    let h = Harness::start(10, vec![]).await;
    let id = h
        .runtime
        .call_connector(&h.connector_id, |_connector, ctx| {
            Box::pin(async move { Ok(ctx.connector_id().to_string()) })
        })
        .await
        .expect("call");
    assert_eq!(id, h.connector_id);

    let panicked = h
        .runtime
        .call_connector(&h.connector_id, |_connector, _ctx| {
            Box::pin(async move {
                if id.is_empty() {
                    return Ok(());
                }
                panic!("connector bug")
            })
        })
        .await;
    assert!(
        matches!(panicked, Err(RuntimeError::ConnectorCallFailed(_))),
        "{panicked:?}"
    );
    let again: Result<u8, _> = h
        .runtime
        .call_connector(&h.connector_id, |_c, _ctx| Box::pin(async { Ok(7) }))
        .await;
    assert_eq!(again.expect("call after a panic"), 7);

    let missing: Result<(), _> = h
        .runtime
        .call_connector("no-such-connector", |_c, _ctx| Box::pin(async { Ok(()) }))
        .await;
    assert!(
        matches!(missing, Err(RuntimeError::ConnectorNotFound(_))),
        "{missing:?}"
    );
}
