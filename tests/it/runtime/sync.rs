//! RUN_NOW_SYNC: the caller awaits the outcome; nested sync children cannot deadlock; the
//! no-op rules; children stopped with their parent.

use std::time::Duration;

use tributary::sdk::{Restart, Schedule, ScheduleOptions, TaskError, TaskStatus};

use super::support::{Harness, Script, block, fail, ok, run_now};

fn sync() -> ScheduleOptions {
    ScheduleOptions::new(Schedule::RunNowSync, Restart::IfNotActive)
}

#[actix_rt::test]
async fn a_chain_of_twenty_nested_sync_children_completes_with_one_slot() {
    let h = Harness::start(1, vec![]).await;
    let chain = Script::Chain {
        name: "chain-20".into(),
        depth: 20,
    };
    // A deadlock would hang forever: bound the wait.
    let id = tokio::time::timeout(Duration::from_secs(30), h.schedule(&chain, sync()))
        .await
        .expect("the chain deadlocked")
        .expect("the chain completes");
    assert_eq!(h.status(id).await, Some(TaskStatus::Terminated));
    // Every link ran: each parent gave its only slot to its child while it waited.
    assert_eq!(h.count("tasks WHERE status = 'TERMINATED'").await, 21);
}

#[actix_rt::test]
async fn a_sync_caller_gets_the_failure_of_the_run() {
    let h = Harness::start(10, vec![]).await;
    match h.schedule(&fail("sf"), sync()).await {
        Err(TaskError::Failed(m)) => assert!(m.contains("sf failed"), "{m}"),
        other => panic!("expected the run's failure, got {other:?}"),
    }
    // A parent awaiting a failing sync child fails with the child's error.
    let parent = Script::Parent {
        name: "sp".into(),
        child: Box::new(fail("sc")),
        sync: true,
    };
    let id = h
        .schedule(&parent, run_now(Restart::Never))
        .await
        .expect("parent");
    h.wait_status(id, TaskStatus::Failed).await;
    let error = h.row(id).await.and_then(|r| r.error).unwrap_or_default();
    assert!(error.contains("sc failed"), "{error}");
}

#[actix_rt::test]
async fn sync_no_ops_report_the_existing_task() {
    let h = Harness::start(10, vec![]).await;
    // Ended: the last outcome.
    h.schedule(&ok("done"), run_now(Restart::Never))
        .await
        .expect("ok");
    h.wait_status(h.task_id(&ok("done")), TaskStatus::Terminated)
        .await;
    let again = ScheduleOptions::new(Schedule::RunNowSync, Restart::Never);
    assert!(h.schedule(&ok("done"), again.clone()).await.is_ok());
    h.schedule(&fail("bad"), run_now(Restart::Never))
        .await
        .expect("fail");
    h.wait_status(h.task_id(&fail("bad")), TaskStatus::Failed)
        .await;
    assert!(matches!(
        h.schedule(&fail("bad"), again.clone()).await,
        Err(TaskError::Failed(m)) if m.contains("bad failed")
    ));

    // Live periodic: AlreadyScheduled.
    let periodic = ScheduleOptions::new(
        Schedule::RunPeriodically(std::time::Duration::from_secs(60)),
        Restart::Never,
    );
    h.schedule(&block("tick"), periodic)
        .await
        .expect("periodic");
    h.probe.wait_runs("tick", 1).await;
    assert_eq!(
        h.schedule(&block("tick"), again.clone()).await,
        Err(TaskError::AlreadyScheduled)
    );

    // Live one-shot: awaited.
    h.schedule(&block("once"), run_now(Restart::Never))
        .await
        .expect("once");
    h.probe.wait_runs("once", 1).await;
    let scheduler = h.probe.scheduler();
    let waiting = actix_rt::spawn(async move { scheduler.schedule(&block("once"), again).await });
    // Let the wait reach the supervisor while the run is live.
    tokio::task::yield_now().await;
    h.settle().await;
    assert!(
        !waiting.is_finished(),
        "the wait on a live run was answered early"
    );
    h.probe.release("once");
    assert!(waiting.await.expect("join").is_ok());
    h.settle().await;
    assert_eq!(h.probe.runs("once"), 1);
}

#[actix_rt::test]
async fn children_are_stopped_with_their_parent_not_when_a_parent_run_ends() {
    let h = Harness::start(10, vec![]).await;
    // A parent that ends: its child lives on.
    let quick = Script::Parent {
        name: "quick".into(),
        child: Box::new(block("orphan")),
        sync: false,
    };
    let quick_id = h
        .schedule(&quick, run_now(Restart::Never))
        .await
        .expect("quick");
    h.probe.wait_runs("orphan", 1).await;
    h.probe.release("quick");
    h.wait_status(quick_id, TaskStatus::Terminated).await;
    // The child lives on (its ACTIVE write comes once it has run a moment).
    h.wait_status(h.task_id(&block("orphan")), TaskStatus::Active)
        .await;

    // A parent replaced by STOP_AND_RESTART: its live child is STOPPED.
    let parent = Script::Parent {
        name: "sr".into(),
        child: Box::new(block("kid")),
        sync: false,
    };
    h.schedule(&parent, run_now(Restart::StopAndRestart))
        .await
        .expect("parent");
    h.probe.wait_runs("kid", 1).await;
    let kid = h.task_id(&block("kid"));
    h.schedule(&parent, run_now(Restart::StopAndRestart))
        .await
        .expect("restart parent");
    // The new parent run schedules the kid again after it was stopped.
    h.probe.wait_runs("sr", 2).await;
    h.probe.wait_runs("kid", 2).await;
    h.wait_status(kid, TaskStatus::Active).await;
}
