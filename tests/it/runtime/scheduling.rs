//! Scheduling basics, ported from the Formance scheduler suite: nominal, duplicate, error,
//! pending; plus the concurrency bound at scale.

use std::time::Duration;

use futures::future::join_all;
use tributary::sdk::{Restart, TaskStatus};

use super::support::{Harness, Script, block, fail, run_now};
use crate::helpers::eventually;

#[actix_rt::test]
async fn nominal_a_running_task_is_active_then_terminated() {
    let h = Harness::start(10, vec![]).await;
    let task = block("nominal");
    let id = h
        .schedule(&task, run_now(Restart::Never))
        .await
        .expect("schedule");
    assert_eq!(id, h.task_id(&task));
    h.probe.wait_runs("nominal", 1).await;
    h.wait_status(id, TaskStatus::Active).await;
    h.probe.release("nominal");
    h.wait_status(id, TaskStatus::Terminated).await;
    let row = h.row(id).await.expect("row");
    assert!(row.last_success_at.is_some());
    assert!(row.error.is_none());
}

#[actix_rt::test]
async fn duplicate_scheduling_a_live_descriptor_again_is_a_no_op() {
    let h = Harness::start(10, vec![]).await;
    let task = block("dup");
    let first = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("first");
    h.probe.wait_runs("dup", 1).await;
    let second = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("second");
    assert_eq!(first, second);
    h.settle().await;
    assert_eq!(h.probe.runs("dup"), 1, "a second run of a live task");
    h.probe.release("dup");
    h.wait_status(first, TaskStatus::Terminated).await;
    h.settle().await;
    assert_eq!(h.probe.runs("dup"), 1);
    assert_eq!(h.count("tasks WHERE descriptor->>'name' = 'dup'").await, 1);
}

#[actix_rt::test]
async fn error_a_plain_failure_is_failed_with_its_message() {
    let h = Harness::start(10, vec![]).await;
    let id = h
        .schedule(&fail("err"), run_now(Restart::Never))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Failed).await;
    let row = h.row(id).await.expect("row");
    assert_eq!(row.error.as_deref(), Some("err failed on run 1"));
}

#[actix_rt::test]
async fn pending_tasks_wait_for_a_free_slot_in_order() {
    let h = Harness::start(1, vec![]).await;
    let a = h
        .schedule(&block("a"), run_now(Restart::Never))
        .await
        .expect("a");
    h.probe.wait_runs("a", 1).await;
    // Four waiters, each durable (and its actor asking for the slot) before the next.
    let mut waiting = Vec::new();
    for name in ["b", "c", "d", "e"] {
        let id = h
            .schedule(&block(name), run_now(Restart::Never))
            .await
            .expect(name);
        waiting.push((name, id));
    }
    h.wait_status(a, TaskStatus::Active).await;
    for (name, id) in &waiting {
        assert_eq!(h.status(*id).await, Some(TaskStatus::Pending), "{name}");
    }
    assert_eq!(h.probe.order(), ["a"]);

    // Each release hands the one slot to the oldest waiter.
    let mut previous = "a";
    for (name, id) in &waiting {
        h.probe.release(previous);
        h.probe.wait_runs(name, 1).await;
        h.wait_status(*id, TaskStatus::Active).await;
        previous = name;
    }
    h.probe.release(previous);
    for (_, id) in &waiting {
        h.wait_status(*id, TaskStatus::Terminated).await;
    }
    assert_eq!(h.probe.order(), ["a", "b", "c", "d", "e"]);
    assert_eq!(
        h.probe.max_running(),
        1,
        "two runs at once with allow_tasks = 1"
    );
}

#[actix_rt::test]
async fn a_thousand_tasks_with_ten_slots_run_exactly_ten_at_a_time() {
    let h = Harness::start(10, vec![]).await;
    let tasks: Vec<Script> = (0..1000)
        .map(|i| Script::Gated {
            name: format!("g{i}"),
            gate: "gate".into(),
        })
        .collect();
    let ids = join_all(tasks.iter().map(|t| h.schedule(t, run_now(Restart::Never)))).await;
    assert!(ids.iter().all(Result::is_ok));
    let probe = h.probe.clone();
    eventually("ten runs at once", Duration::from_secs(20), || {
        let probe = probe.clone();
        async move { probe.running() == 10 }
    })
    .await;
    let h = &h;
    // The ten running tasks become ACTIVE (that write is queued without waiting).
    eventually(
        "990 pending tasks",
        Duration::from_secs(10),
        || async move { h.count("tasks WHERE status = 'PENDING'").await == 990 },
    )
    .await;

    h.probe.release("gate");
    eventually(
        "all tasks terminated",
        Duration::from_secs(60),
        || async move { h.count("tasks WHERE status = 'TERMINATED'").await == 1000 },
    )
    .await;
    assert_eq!(h.probe.max_running(), 10);
}

#[actix_rt::test]
async fn an_unknown_descriptor_fails_its_task_with_a_clear_error() {
    let h = Harness::start(10, vec![]).await;
    let id = h
        .probe
        .scheduler()
        .schedule(
            &serde_json::json!({"kind": "teleport"}),
            run_now(Restart::Never),
        )
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Failed).await;
    let error = h.row(id).await.and_then(|r| r.error).unwrap_or_default();
    assert!(error.contains("unknown descriptor"), "{error}");
}
