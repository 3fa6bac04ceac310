//! The restart table (DESIGN §3), retries with backoff, panics.

use std::time::Duration;

use tributary::sdk::{Clock, Restart, Schedule, ScheduleOptions, TaskStatus};

use crate::helpers::eventually;

use super::support::{Harness, Script, block, fail, ok, run_now, t0};

fn periodic(restart: Restart, secs: u64) -> ScheduleOptions {
    ScheduleOptions::new(
        Schedule::RunPeriodically(Duration::from_secs(secs)),
        restart,
    )
}

#[actix_rt::test]
async fn restart_never_is_a_no_op_live_or_ended_and_a_failure_is_final() {
    let h = Harness::start(10, vec![]).await;
    let id = h
        .schedule(&block("n"), run_now(Restart::Never))
        .await
        .expect("schedule");
    h.probe.wait_runs("n", 1).await;
    h.schedule(&block("n"), run_now(Restart::Never))
        .await
        .expect("again, live");
    h.settle().await;
    assert_eq!(h.probe.runs("n"), 1);
    h.probe.release("n");
    h.wait_status(id, TaskStatus::Terminated).await;
    h.schedule(&block("n"), run_now(Restart::Never))
        .await
        .expect("again, ended");
    h.settle().await;
    assert_eq!(h.status(id).await, Some(TaskStatus::Terminated));
    assert_eq!(h.probe.runs("n"), 1);

    let f = h
        .schedule(&fail("nf"), run_now(Restart::Never))
        .await
        .expect("schedule");
    h.wait_status(f, TaskStatus::Failed).await;
    h.settle().await;
    assert!(
        h.clock.pending_deadlines().is_empty(),
        "a final failure armed a timer"
    );
    assert_eq!(h.probe.runs("nf"), 1);
}

#[actix_rt::test]
async fn restart_if_not_active_runs_again_only_after_the_task_ended() {
    let h = Harness::start(10, vec![]).await;
    let opts = run_now(Restart::IfNotActive);
    let id = h
        .schedule(&block("i"), opts.clone())
        .await
        .expect("schedule");
    h.probe.wait_runs("i", 1).await;
    h.schedule(&block("i"), opts.clone())
        .await
        .expect("again, live");
    h.settle().await;
    assert_eq!(h.probe.runs("i"), 1);
    h.probe.release("i");
    h.wait_status(id, TaskStatus::Terminated).await;
    // Ended in the database: one schedule runs it again (no window where it is a no-op).
    h.schedule(&block("i"), opts.clone())
        .await
        .expect("again, ended");
    h.probe.wait_runs("i", 2).await;
    h.wait_status(id, TaskStatus::Terminated).await;
    assert_eq!(h.row(id).await.expect("row").run_number, 1);

    let f = h.schedule(&fail("if"), opts).await.expect("schedule");
    h.wait_status(f, TaskStatus::Failed).await;
    h.settle().await;
    assert_eq!(h.probe.runs("if"), 1);
}

#[actix_rt::test]
async fn restart_always_restarts_failed_runs_with_backoff_then_gives_up() {
    let h = Harness::start(10, vec![]).await;
    let opts = run_now(Restart::Always).max_restarts(3);
    let id = h.schedule(&fail("a"), opts).await.expect("schedule");
    h.probe.wait_runs("a", 1).await;
    // Each failed run arms a restart timer with a growing delay; the task stays ACTIVE.
    let mut delays = Vec::new();
    for run in 2..=3 {
        let due = h.next_deadline().await;
        delays.push(due - h.clock.now());
        assert_eq!(h.status(id).await, Some(TaskStatus::Active));
        h.fire_next_timer().await;
        h.probe.wait_runs("a", run).await;
    }
    h.wait_status(id, TaskStatus::Failed).await;
    assert!(
        delays[1] > delays[0],
        "restart delays must grow: {delays:?}"
    );
    let row = h.row(id).await.expect("row");
    assert!(
        row.error
            .unwrap_or_default()
            .contains("gave up after 3 failed runs")
    );
    assert_eq!(h.probe.runs("a"), 3);
}

#[actix_rt::test]
async fn restart_always_is_a_no_op_while_live_and_reruns_after_the_end() {
    let h = Harness::start(10, vec![]).await;
    let opts = run_now(Restart::Always);
    let id = h
        .schedule(&block("al"), opts.clone())
        .await
        .expect("schedule");
    h.probe.wait_runs("al", 1).await;
    h.schedule(&block("al"), opts.clone())
        .await
        .expect("again, live");
    h.settle().await;
    assert_eq!(h.probe.runs("al"), 1, "never two runs of one task");
    h.probe.release("al");
    h.wait_status(id, TaskStatus::Terminated).await;
    h.schedule(&block("al"), opts).await.expect("again, ended");
    h.probe.wait_runs("al", 2).await;
}

#[actix_rt::test]
async fn non_retryable_is_final_even_under_restart_always() {
    let h = Harness::start(10, vec![]).await;
    let task = Script::Refuse { name: "r".into() };
    let id = h
        .schedule(&task, run_now(Restart::Always))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Failed).await;
    assert!(h.clock.pending_deadlines().is_empty());
    h.clock.advance(chrono::Duration::hours(1));
    h.settle().await;
    assert_eq!(h.probe.runs("r"), 1);
    assert_eq!(
        h.row(id).await.and_then(|r| r.error).as_deref(),
        Some("r refused")
    );
}

#[actix_rt::test]
async fn a_panic_fails_the_task_with_its_message_and_harms_nothing_else() {
    let h = Harness::start(10, vec![]).await;
    let other = h
        .schedule(&block("bystander"), run_now(Restart::Never))
        .await
        .expect("b");
    h.probe.wait_runs("bystander", 1).await;
    let task = Script::Panic { name: "p".into() };
    let id = h
        .schedule(&task, run_now(Restart::Never))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Failed).await;
    let error = h.row(id).await.and_then(|r| r.error).unwrap_or_default();
    assert!(error.contains("p panicked on purpose"), "{error}");
    // The connector and its other tasks live on.
    h.probe.release("bystander");
    h.wait_status(other, TaskStatus::Terminated).await;
    let after = h
        .schedule(&ok("after"), run_now(Restart::Never))
        .await
        .expect("after");
    h.wait_status(after, TaskStatus::Terminated).await;
}

#[actix_rt::test]
async fn a_panic_under_restart_always_is_restarted_up_to_the_limit() {
    let h = Harness::start(10, vec![]).await;
    let task = Script::Panic { name: "pa".into() };
    let id = h
        .schedule(&task, run_now(Restart::Always).max_restarts(2))
        .await
        .expect("schedule");
    h.probe.wait_runs("pa", 1).await;
    h.fire_next_timer().await;
    h.probe.wait_runs("pa", 2).await;
    h.wait_status(id, TaskStatus::Failed).await;
    assert_eq!(h.probe.runs("pa"), 2);
}

#[actix_rt::test]
async fn stop_and_restart_replaces_a_live_run_and_reruns_an_ended_one() {
    let h = Harness::start(10, vec![]).await;
    let opts = run_now(Restart::StopAndRestart);
    let id = h
        .schedule(&block("s"), opts.clone())
        .await
        .expect("schedule");
    h.probe.wait_runs("s", 1).await;
    let again = h
        .schedule(&block("s"), opts.clone())
        .await
        .expect("again, live");
    assert_eq!(again, id, "the task keeps its id");
    h.probe.wait_runs("s", 2).await;
    assert_eq!(h.row(id).await.expect("row").run_number, 1);
    assert_eq!(
        h.probe.overlaps(),
        Vec::<String>::new(),
        "the old and new runs overlapped"
    );
    h.probe.release("s");
    h.wait_status(id, TaskStatus::Terminated).await;

    h.schedule(&block("s"), opts.clone())
        .await
        .expect("again, ended");
    h.probe.wait_runs("s", 3).await;
    h.wait_status(id, TaskStatus::Terminated).await;

    let f = h.schedule(&fail("sf"), opts).await.expect("schedule");
    h.wait_status(f, TaskStatus::Failed).await;
    assert_eq!(h.probe.runs("sf"), 1);
}

#[actix_rt::test]
async fn retryable_errors_retry_with_growing_delays_and_stay_active() {
    let h = Harness::start(10, vec![]).await;
    let task = Script::Flaky {
        name: "fl".into(),
        times: 3,
    };
    let id = h
        .schedule(&task, run_now(Restart::Never))
        .await
        .expect("schedule");
    let mut delays = Vec::new();
    for attempt in 1..=3u32 {
        h.probe.wait_runs("fl", attempt as usize).await;
        let due = h.next_deadline().await;
        delays.push((due - h.clock.now()).num_milliseconds());
        let row = h.row(id).await.expect("row");
        assert_eq!(row.status, TaskStatus::Active);
        assert_eq!(row.attempts, attempt, "attempts are persisted");
        assert_eq!(
            row.due_at.map(|d| d.timestamp_micros()),
            Some(due.timestamp_micros()),
            "the next attempt time is persisted"
        );
        assert!(row.error.unwrap_or_default().contains("flaked"));
        h.fire_next_timer().await;
    }
    h.wait_status(id, TaskStatus::Terminated).await;
    assert!(delays[0] >= 400 && delays[0] <= 500, "{delays:?}");
    assert!(delays[1] > delays[0] && delays[2] > delays[1], "{delays:?}");
    assert_eq!(h.row(id).await.expect("row").attempts, 0);
}

#[actix_rt::test]
async fn periodic_tasks_stay_active_retry_transient_errors_and_fail_on_refusal() {
    let h = Harness::start(10, vec![]).await;
    let id = h
        .schedule(&ok("tick"), periodic(Restart::Never, 60))
        .await
        .expect("schedule");
    h.probe.wait_runs("tick", 1).await;
    assert_eq!(
        h.next_deadline().await,
        t0() + chrono::Duration::seconds(60)
    );
    h.wait_status(id, TaskStatus::Active).await;
    h.fire_next_timer().await;
    h.probe.wait_runs("tick", 2).await;
    assert_eq!(
        h.next_deadline().await,
        t0() + chrono::Duration::seconds(120)
    );
    assert!(h.row(id).await.expect("row").last_success_at.is_some());

    let flaky = Script::Flaky {
        name: "pflaky".into(),
        times: 1,
    };
    let f = h
        .schedule(&flaky, periodic(Restart::Never, 3600))
        .await
        .expect("schedule");
    let h_ref = &h;
    crate::helpers::eventually(
        "a persisted retry",
        Duration::from_secs(10),
        || async move {
            h_ref
                .row(f)
                .await
                .is_some_and(|r| r.status == TaskStatus::Active && r.attempts == 1)
        },
    )
    .await;

    let refuse = Script::Refuse {
        name: "prefuse".into(),
    };
    let r = h
        .schedule(&refuse, periodic(Restart::Never, 60))
        .await
        .expect("schedule");
    h.wait_status(r, TaskStatus::Failed).await;
}

#[actix_rt::test]
async fn concurrent_stop_and_restarts_leave_exactly_one_run_that_can_finish() {
    let h = Harness::start(10, vec![]).await;
    let opts = run_now(Restart::StopAndRestart);
    let id = h
        .schedule(&block("race"), opts.clone())
        .await
        .expect("first");
    h.probe.wait_runs("race", 1).await;
    let task = block("race");
    let (a, b) = futures::join!(
        h.schedule(&task, opts.clone()),
        h.schedule(&task, opts.clone())
    );
    assert_eq!((a.expect("a"), b.expect("b")), (id, id));
    // Exactly one run goes on: the last one decided; the others were stopped (or never
    // started), and no two ever ran at once.
    let last = h.row(id).await.expect("row").run_number;
    eventually("the last run to start", Duration::from_secs(20), || async {
        h.probe.running() == 1
    })
    .await;
    h.storage.drain().await;
    assert_eq!(h.row(id).await.expect("row").run_number, last);
    assert_eq!(h.probe.running(), 1);
    assert_eq!(
        h.probe.overlaps(),
        Vec::<String>::new(),
        "two runs of one task at once"
    );
    h.probe.release("race");
    h.wait_status(id, TaskStatus::Terminated).await;
    assert_eq!(h.probe.running(), 0);
    // A later schedule is not mistaken for a no-op on a stale run.
    let runs = h.probe.runs("race");
    h.schedule(&block("race"), opts).await.expect("again");
    h.probe.wait_runs("race", runs + 1).await;
    h.wait_status(id, TaskStatus::Terminated).await;
}
