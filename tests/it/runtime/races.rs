//! The races an audit of the runtime found (issue 12), one test each: interleavings of actor
//! messages that the one-rule-per-test suites never mixed. Each test failed on the runtime
//! before the state machines (the failure is quoted above it). Bug 1 (resume of a running
//! connector) is in `recovery.rs`, bug 7 in `declared.rs`, bug 4 in `ingest.rs`.

use std::time::Duration;

use tributary::sdk::{Restart, Schedule, ScheduleOptions, TaskError, TaskStatus};

use super::support::{Harness, Script, block, run_now};
use crate::helpers::eventually;

/// Before: `task … never became Terminated (last Some(Pending))` — the parent's wait was
/// answered `Cancelled` when the child's old run ended, the parent took that for "superseded"
/// and stopped without a status: ACTIVE in the database, with no actor, forever.
#[actix_rt::test]
async fn stop_and_restart_of_an_awaited_child_answers_its_parent_with_the_new_run() {
    let h = Harness::start(10, vec![]).await;
    let child = block("awaited");
    let parent = Script::Parent {
        name: "waiting-parent".into(),
        child: Box::new(child.clone()),
        sync: true,
    };
    let parent_id = h
        .schedule(&parent, run_now(Restart::IfNotActive))
        .await
        .expect("parent");
    h.probe.wait_runs("awaited", 1).await;
    h.schedule(&child, run_now(Restart::StopAndRestart))
        .await
        .expect("stop and restart the child");
    h.probe.wait_runs("awaited", 2).await;
    h.probe.release("awaited");
    h.wait_status(h.task_id(&child), TaskStatus::Terminated)
        .await;
    // The parent got the new run's outcome and went on to its own wait.
    h.probe.wait_runs("waiting-parent", 1).await;
    h.probe.release("waiting-parent");
    h.wait_status(parent_id, TaskStatus::Terminated).await;
    // And a later sync schedule of it is answered.
    let again = ScheduleOptions::new(Schedule::RunNowSync, Restart::IfNotActive);
    tokio::time::timeout(Duration::from_secs(20), h.schedule(&parent, again))
        .await
        .expect("a sync schedule of the parent hung")
        .expect("the parent's second run");
}

/// Before: `two bodies for one task (0)` — the restart read the FAILED row, then forced a new
/// run over the one the schedule had started (and, with the other order of arrival, the
/// schedule's answer removed the restart's entry, so pause did not reach its body).
#[actix_rt::test]
async fn a_restart_racing_a_schedule_gives_one_body_that_pause_stops() {
    let h = Harness::start(10, vec![]).await;
    // Both orders of arrival, and the write of one landing while the other is decided.
    for (i, delay_ms) in [0u64, 0, 1, 2, 5].into_iter().enumerate() {
        let task = Script::FailThenBlock {
            name: format!("raced-{i}"),
        };
        let id = h
            .schedule(&task, run_now(Restart::IfNotActive))
            .await
            .expect("schedule");
        h.wait_status(id, TaskStatus::Failed).await;
        let restart = {
            let runtime = h.runtime.clone();
            let connector_id = h.connector_id.clone();
            actix_rt::spawn(async move { runtime.restart_task(&connector_id, id).await })
        };
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        h.schedule(&task, run_now(Restart::IfNotActive))
            .await
            .expect("schedule again");
        let restarted = restart.await.expect("join");
        // Whichever came second found the task live: a restart then says so.
        assert!(
            matches!(
                restarted,
                Ok(()) | Err(tributary::runtime::RuntimeError::TaskIsLive { .. })
            ),
            "{restarted:?}"
        );
        h.probe.wait_runs(task.name(), 2).await;
        h.runtime.pause(&h.connector_id).await.expect("pause");
        assert_eq!(h.probe.running(), 0, "pause left a body running ({i})");
        assert_eq!(
            h.probe.runs(task.name()),
            2,
            "two bodies for one task ({i})"
        );
        h.runtime.resume(&h.connector_id).await.expect("resume");
        // The paused run resumes: one body again.
        h.probe.wait_runs(task.name(), 3).await;
        h.probe.release(task.name());
        h.wait_status(id, TaskStatus::Terminated).await;
        assert_eq!(h.probe.overlaps(), Vec::<String>::new(), "({i})");
    }
}

/// Before: `timed out waiting for: 2 runs of ended` — the schedule arrived after the final
/// write committed and before the supervisor heard of the end, and was taken for a no-op.
#[actix_rt::test]
async fn a_schedule_after_the_final_write_commits_runs_the_task_again() {
    let h = Harness::start(10, vec![]).await;
    let task = Script::FinalThenWait {
        name: "ended".into(),
    };
    let id = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    // TERMINATED in the database while the body still runs.
    h.wait_status(id, TaskStatus::Terminated).await;
    h.schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("schedule again");
    h.settle().await;
    assert_eq!(
        h.probe.runs("ended"),
        1,
        "the new run overlapped the old body"
    );
    h.probe.release("ended");
    h.probe.wait_runs("ended", 2).await;
    h.wait_status(id, TaskStatus::Terminated).await;
    assert_eq!(h.probe.overlaps(), Vec::<String>::new());
}

/// Before: the row kept RUN_IN_DURATION — the second schedule saw the first one's placeholder,
/// answered at once (before the row was durable) and its STOP_AND_RESTART options were lost.
#[actix_rt::test]
async fn a_stop_and_restart_behind_a_schedule_in_flight_keeps_its_options() {
    let h = Harness::start(10, vec![]).await;
    let task = block("queued");
    let first = ScheduleOptions::new(
        Schedule::RunInDuration(Duration::from_secs(3600)),
        Restart::IfNotActive,
    );
    let second = ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(10)),
        Restart::StopAndRestart,
    );
    let (a, b) = futures::join!(h.schedule(&task, first), h.schedule(&task, second));
    let id = a.expect("first");
    assert_eq!(b.expect("second"), id);
    let row = h.row(id).await.expect("row");
    assert_eq!(
        row.options.schedule,
        Schedule::RunPeriodically(Duration::from_secs(10))
    );
    // The periodic run starts now, not in an hour.
    h.probe.wait_runs("queued", 1).await;
}

/// Before: `timed out waiting for: a retry to be armed` — a database error the task did not
/// cause (here disk full) reached it as NonRetryable: FAILED for good, not restored at boot.
#[actix_rt::test]
async fn a_database_error_is_retried_not_final() {
    let h = Harness::start(10, vec![]).await;
    let client = h.db.client().await;
    client
        .batch_execute(
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN RAISE EXCEPTION 'could not extend file: No space left on device'
                   USING ERRCODE = 'disk_full'; END $$;
             CREATE TRIGGER disk_full BEFORE INSERT OR UPDATE ON connector_kv
                 FOR EACH ROW EXECUTE FUNCTION disk_full();",
        )
        .await
        .expect("trigger");
    let task = Script::Kv {
        name: "kv-full".into(),
    };
    let periodic = ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(60)),
        Restart::Never,
    );
    let id = h.schedule(&task, periodic).await.expect("schedule");
    eventually("a retry to be armed", Duration::from_secs(20), || async {
        h.row(id)
            .await
            .is_some_and(|r| r.attempts >= 1 && r.status == TaskStatus::Active)
    })
    .await;
    let row = h.row(id).await.expect("row");
    assert!(
        row.error
            .as_deref()
            .unwrap_or_default()
            .contains("No space"),
        "{:?}",
        row.error
    );
    client
        .batch_execute("DROP TRIGGER disk_full ON connector_kv")
        .await
        .expect("drop trigger");
    // The retry succeeds once the disk has room again.
    let runs = h.probe.runs("kv-full");
    h.fire_next_timer().await;
    h.probe.wait_runs("kv-full", runs + 1).await;
    eventually("the retry to succeed", Duration::from_secs(20), || async {
        h.row(id)
            .await
            .is_some_and(|r| r.attempts == 0 && r.error.is_none())
    })
    .await;
}

/// A retry streak's start survives a restart, so `max_retry_age` counts from the first failure
/// rather than from each boot.
#[actix_rt::test]
async fn a_retry_streak_keeps_its_start_across_a_restart() {
    let mut h = Harness::start(10, vec![]).await;
    let task = Script::Flaky {
        name: "streak".into(),
        times: 3,
    };
    let id = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    eventually(
        "the first retry to be armed",
        Duration::from_secs(20),
        || async { h.row(id).await.is_some_and(|r| r.attempts == 1) },
    )
    .await;
    let since = h.row(id).await.and_then(|r| r.failing_since);
    assert_eq!(since, Some(super::support::t0()));
    h.restart().await;
    h.clock.advance(chrono::Duration::seconds(30));
    h.probe.wait_runs("streak", 2).await;
    eventually(
        "the second retry to be armed",
        Duration::from_secs(20),
        || async { h.row(id).await.is_some_and(|r| r.attempts == 2) },
    )
    .await;
    assert_eq!(h.row(id).await.and_then(|r| r.failing_since), since);
}

/// A sync caller waiting on a task that a STOP_AND_RESTART of its parent stops gets `Stopped`,
/// and the parent's new run schedules the child again only once it is gone. (Passed before
/// too; kept as the cell the restructured supervisor must still honour.)
#[actix_rt::test]
async fn a_sync_wait_on_a_child_stopped_with_its_parent_is_answered_stopped() {
    let h = Harness::start(10, vec![]).await;
    let parent = Script::Parent {
        name: "tree".into(),
        child: Box::new(block("leaf")),
        sync: false,
    };
    h.schedule(&parent, run_now(Restart::StopAndRestart))
        .await
        .expect("parent");
    h.probe.wait_runs("leaf", 1).await;
    let waiting = {
        let scheduler = h.probe.scheduler();
        actix_rt::spawn(async move {
            scheduler
                .schedule(
                    &block("leaf"),
                    ScheduleOptions::new(Schedule::RunNowSync, Restart::IfNotActive),
                )
                .await
        })
    };
    // Let the spawned wait send its request first: the supervisor's mailbox keeps the order.
    tokio::task::yield_now().await;
    h.schedule(&parent, run_now(Restart::StopAndRestart))
        .await
        .expect("restart parent");
    let answer = tokio::time::timeout(Duration::from_secs(20), waiting)
        .await
        .expect("the sync wait hung")
        .expect("join");
    assert_eq!(answer, Err(TaskError::Stopped));
    // The new parent run schedules the leaf again, after the stopped one is gone.
    h.probe.wait_runs("leaf", 2).await;
    h.wait_status(h.task_id(&block("leaf")), TaskStatus::Active)
        .await;
    assert_eq!(
        h.probe.overlaps(),
        Vec::<String>::new(),
        "two leaves at once"
    );
}
