//! Durability: shutdown leaves statuses alone, boot resumes every live task with its
//! persisted options, due times and state; writes from a superseded run are rejected.

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tributary::sdk::{Restart, Schedule, ScheduleOptions, TaskError, TaskStatus};
use tributary::storage::commands::tasks::OUTCOME_UNKNOWN;

use super::support::{Harness, Script, block, ok, run_now, t0};

#[actix_rt::test]
async fn stop_a_parent_and_its_child_stay_live_across_a_restart_and_both_resume() {
    let mut h = Harness::start(10, vec![]).await;
    let parent = Script::Parent {
        name: "parent".into(),
        child: Box::new(block("child")),
        sync: false,
    };
    let parent_id = h
        .schedule(&parent, run_now(Restart::IfNotActive))
        .await
        .expect("parent");
    let child_id = h.task_id(&block("child"));
    h.probe.wait_runs("parent", 1).await;
    h.probe.wait_runs("child", 1).await;

    h.shutdown().await;
    assert_eq!(h.probe.running(), 0, "shutdown must stop every run");
    h.boot().await;
    // Shutdown left the statuses alone, and boot resumed both.
    h.probe.wait_runs("parent", 2).await;
    h.probe.wait_runs("child", 2).await;
    h.wait_status(parent_id, TaskStatus::Active).await;
    h.wait_status(child_id, TaskStatus::Active).await;
    assert_eq!(
        h.row(child_id).await.expect("child").parent_id,
        Some(parent_id)
    );
}

#[actix_rt::test]
async fn run_in_duration_restored_after_a_restart_waits_only_the_remaining_time() {
    let mut h = Harness::start(10, vec![]).await;
    let hour = ScheduleOptions::new(
        Schedule::RunInDuration(Duration::from_secs(3600)),
        Restart::Never,
    );
    let id = h.schedule(&ok("later"), hour).await.expect("schedule");
    let due = t0() + chrono::Duration::hours(1);
    assert_eq!(h.row(id).await.expect("row").due_at, Some(due));
    assert_eq!(h.status(id).await, Some(TaskStatus::Pending));

    h.clock.advance(chrono::Duration::minutes(10));
    h.restart().await;
    assert_eq!(
        h.next_deadline().await,
        due,
        "due 50 minutes after the restart"
    );
    h.clock.advance(chrono::Duration::minutes(49));
    assert_eq!(h.probe.runs("later"), 0);
    h.clock.advance(chrono::Duration::minutes(1));
    h.wait_status(id, TaskStatus::Terminated).await;
    assert_eq!(h.probe.runs("later"), 1);
}

#[actix_rt::test]
async fn run_scheduled_at_in_the_past_runs_now() {
    let h = Harness::start(10, vec![]).await;
    let past = ScheduleOptions::new(
        Schedule::RunScheduledAt(t0() - chrono::Duration::days(1)),
        Restart::Never,
    );
    let id = h.schedule(&ok("past"), past).await.expect("schedule");
    h.wait_status(id, TaskStatus::Terminated).await;
}

#[actix_rt::test]
async fn stop_and_restart_with_a_new_period_survives_a_restart_and_fences_the_old_run() {
    let mut h = Harness::start(10, vec![]).await;
    let writer = Script::LateWriter { name: "w".into() };
    let hourly = ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(3600)),
        Restart::StopAndRestart,
    );
    let id = h.schedule(&writer, hourly).await.expect("schedule");
    h.probe.wait_runs("w", 1).await;

    // Reschedule with a new period while the first run (which ignores cancellation) is live.
    let two_hourly = ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(7200)),
        Restart::StopAndRestart,
    );
    let reschedule = {
        let scheduler = h.probe.scheduler();
        let writer = writer.clone();
        actix_rt::spawn(async move { scheduler.schedule(&writer, two_hourly).await })
    };
    let h_ref = &h;
    crate::helpers::eventually(
        "the new run number",
        Duration::from_secs(10),
        || async move { h_ref.row(id).await.map(|r| r.run_number) == Some(1) },
    )
    .await;
    // The old run now tries to write: it must be rejected.
    h.probe.release("w");
    assert_eq!(reschedule.await.expect("join").expect("reschedule"), id);
    h.probe.wait_runs("w", 2).await;
    let probe = h.probe.clone();
    crate::helpers::eventually("both writes", Duration::from_secs(10), || {
        let probe = probe.clone();
        async move { probe.writes("w").len() == 2 }
    })
    .await;
    let writes = h.probe.writes("w");
    assert_eq!(
        writes[0],
        Err(TaskError::Cancelled),
        "the superseded run's write was accepted"
    );
    assert_eq!(writes[1], Ok(()));
    assert_eq!(h.row(id).await.expect("row").state, Some(json!({"run": 2})));

    // The new period is persisted and survives a restart.
    h.restart().await;
    let row = h.row(id).await.expect("row");
    assert_eq!(
        row.options.schedule,
        Schedule::RunPeriodically(Duration::from_secs(7200))
    );
    assert_eq!(row.status, TaskStatus::Active);
    // Run 2 succeeded at t0: the next tick is two hours later, not one.
    assert_eq!(h.next_deadline().await, t0() + chrono::Duration::hours(2));
    h.fire_next_timer().await;
    h.probe.wait_runs("w", 3).await;
}

#[actix_rt::test]
async fn task_state_is_kept_across_runs_and_restarts() {
    let mut h = Harness::start(10, vec![]).await;
    let task = Script::Stateful { name: "st".into() };
    let id = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    h.probe.wait_runs("st", 1).await;
    let h_ref = &h;
    crate::helpers::eventually("state saved", Duration::from_secs(10), || async move {
        h_ref.row(id).await.and_then(|r| r.state) == Some(json!({"n": 1}))
    })
    .await;
    h.restart().await;
    h.probe.wait_runs("st", 2).await;
    assert_eq!(h.probe.states_seen("st"), vec![None, Some(json!({"n": 1}))]);
}

#[actix_rt::test]
async fn on_interrupt_fail_turns_an_interrupted_run_into_failed_outcome_unknown() {
    let mut h = Harness::start(10, vec![]).await;
    let task = block("payout");
    let id = h
        .schedule(&task, run_now(Restart::Never).fail_on_interrupt())
        .await
        .expect("schedule");
    h.probe.wait_runs("payout", 1).await;
    h.restart().await;
    h.wait_status(id, TaskStatus::Failed).await;
    assert_eq!(
        h.row(id).await.and_then(|r| r.error).as_deref(),
        Some(OUTCOME_UNKNOWN)
    );
    assert_eq!(
        h.probe.runs("payout"),
        1,
        "an interrupted run must not run twice"
    );
}

#[actix_rt::test]
async fn boot_does_not_wait_for_a_restored_run_now_sync_task() {
    let mut h = Harness::start(10, vec![]).await;
    let task = block("sync-at-boot");
    let scheduler = h.probe.scheduler();
    let pending = {
        let task = task.clone();
        actix_rt::spawn(async move {
            scheduler
                .schedule(
                    &task,
                    ScheduleOptions::new(Schedule::RunNowSync, Restart::Never),
                )
                .await
        })
    };
    h.probe.wait_runs("sync-at-boot", 1).await;
    h.restart().await; // returns although the restored task blocks
    assert!(matches!(
        pending.await.expect("join"),
        Err(TaskError::Cancelled)
    ));
    h.probe.wait_runs("sync-at-boot", 2).await;
    h.probe.release("sync-at-boot");
    h.wait_status(h.task_id(&task), TaskStatus::Terminated)
        .await;
}

#[actix_rt::test]
async fn shutdown_with_a_thousand_running_tasks_is_quick_and_resumes_them_all() {
    let mut h = Harness::start(1000, vec![]).await;
    let tasks: Vec<Script> = (0..1000)
        .map(|i| Script::Gated {
            name: format!("load{i}"),
            gate: "never".into(),
        })
        .collect();
    let scheduled =
        futures::future::join_all(tasks.iter().map(|t| h.schedule(t, run_now(Restart::Never))))
            .await;
    assert!(scheduled.iter().all(Result::is_ok));
    let probe = h.probe.clone();
    crate::helpers::eventually("1,000 runs at once", Duration::from_secs(30), || {
        let probe = probe.clone();
        async move { probe.running() == 1000 }
    })
    .await;
    let h_ref = &h;
    crate::helpers::eventually("1,000 ACTIVE", Duration::from_secs(30), || async move {
        statuses(h_ref).await == vec![("ACTIVE".to_string(), 1000)]
    })
    .await;
    let before: Vec<(String, i64)> = statuses(&h).await;

    let started = std::time::Instant::now();
    h.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "shutdown took {:?}",
        started.elapsed()
    );
    assert_eq!(h.probe.running(), 0);
    assert_eq!(statuses(&h).await, before, "shutdown changed task statuses");

    h.boot().await;
    let probe = h.probe.clone();
    crate::helpers::eventually("all 1,000 resumed", Duration::from_secs(30), || {
        let probe = probe.clone();
        async move { probe.running() == 1000 }
    })
    .await;
}

async fn statuses(h: &Harness) -> Vec<(String, i64)> {
    h.db.client()
        .await
        .query(
            "SELECT status, count(*) FROM tasks GROUP BY status ORDER BY status",
            &[],
        )
        .await
        .expect("statuses")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn final_write(name: &str, then_fail: bool) -> Script {
    Script::Final {
        name: name.into(),
        then_fail,
    }
}

#[actix_rt::test]
async fn a_final_write_ends_a_one_shot_run_with_no_status_write_of_its_own() {
    let h = Harness::start(10, vec![]).await;
    let script = final_write("last", false);
    let writes = |h: &Harness| h.storage.stats().writes.load(Ordering::Relaxed);
    let before = writes(&h);
    let id = h
        .schedule(&script, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Terminated).await;
    let row = h.row(id).await.expect("row");
    assert_eq!(
        row.state,
        Some(json!({"n": 1})),
        "the state commits with it"
    );
    assert!(row.last_success_at.is_some());
    // Without the fold, TERMINATED would only show after a third write (the actor's own).
    // The drain settles the counter and counts itself.
    h.storage.drain().await;
    assert_eq!(
        writes(&h) - before,
        3,
        "schedule + final write (+ the drain) only"
    );

    // An error after the final write changes nothing: the run stays TERMINATED.
    let failing = final_write("last-then-fail", true);
    let id = h
        .schedule(&failing, run_now(Restart::Always))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Terminated).await;
    h.probe.wait_runs("last-then-fail", 1).await;
    assert_eq!(h.row(id).await.expect("row").error, None);
}

#[actix_rt::test]
async fn a_final_write_does_not_end_a_periodic_task() {
    let h = Harness::start(10, vec![]).await;
    let script = final_write("tick", false);
    let id = h
        .schedule(
            &script,
            ScheduleOptions::new(
                Schedule::RunPeriodically(Duration::from_secs(60)),
                Restart::IfNotActive,
            ),
        )
        .await
        .expect("schedule");
    h.probe.wait_runs("tick", 1).await;
    let due = h.next_deadline().await;
    assert_eq!(due, t0() + chrono::Duration::seconds(60));
    let row = h.row(id).await.expect("row");
    assert_eq!(row.status, TaskStatus::Active);
    assert_eq!(row.state, Some(json!({"n": 1})));
    h.fire_next_timer().await;
    h.probe.wait_runs("tick", 2).await;
}
