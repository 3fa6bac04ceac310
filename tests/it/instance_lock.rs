//! One process per database: a second instance refuses to start.

use std::time::Duration;

use tributary::app::{Application, StartupError};
use tributary::storage::{StorageError, instance_lock};

use crate::helpers::{TestDb, eventually, test_settings};

#[actix_rt::test]
async fn a_second_instance_on_the_same_database_is_refused() {
    let db = TestDb::new().await;
    let first = instance_lock::acquire(&db.url).await.expect("first lock");
    match instance_lock::acquire(&db.url).await {
        Err(StorageError::AlreadyRunning) => {}
        Err(other) => panic!("expected AlreadyRunning, got {other}"),
        Ok(_) => panic!("a second instance took the lock"),
    }
    match Application::build(&test_settings(), &db.url).await {
        Err(StartupError::Storage(StorageError::AlreadyRunning)) => {}
        Err(other) => panic!("expected AlreadyRunning, got {other}"),
        Ok(_) => panic!("a second application started on a locked database"),
    }

    // Once the first instance is gone, the lock is free again.
    drop(first);
    let url = db.url.clone();
    eventually("the lock to be released", Duration::from_secs(10), || {
        let url = url.clone();
        async move { instance_lock::acquire(&url).await.is_ok() }
    })
    .await;
}

#[actix_rt::test]
async fn instances_on_different_databases_do_not_block_each_other() {
    let (a, b) = (TestDb::new().await, TestDb::new().await);
    let _la = instance_lock::acquire(&a.url).await.expect("lock a");
    let _lb = instance_lock::acquire(&b.url).await.expect("lock b");
}

#[actix_rt::test]
async fn the_lock_is_taken_again_after_its_session_is_cut() {
    let db = TestDb::new().await;
    let lock = instance_lock::acquire(&db.url).await.expect("lock");
    let admin = db.client().await;
    // Held by a session other than `gone`'s: pg_terminate_backend only signals, so the cut
    // session can still hold the lock for a moment after it returned.
    let admin = &admin;
    let held_by_other_than = |gone: Vec<i32>| async move {
        admin
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND l.granted AND a.application_name = $1
                   AND a.datname = current_database() AND a.pid <> ALL($2)",
                &[&instance_lock::APPLICATION_NAME, &gone],
            )
            .await
            .expect("pg_locks")
            .get::<_, i64>(0)
            == 1
    };
    assert!(held_by_other_than(Vec::new()).await);
    // An outage, as PostgreSQL sees it: the lock's session is terminated.
    let cut: Vec<i32> = admin
        .query(
            "SELECT pid FROM pg_stat_activity
             WHERE application_name = $1 AND datname = current_database()",
            &[&instance_lock::APPLICATION_NAME],
        )
        .await
        .expect("lock sessions")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!cut.is_empty(), "no lock session to cut");
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM unnest($1::int4[]) AS pid",
            &[&cut],
        )
        .await
        .expect("terminate");
    eventually(
        "the lock to be taken again",
        Duration::from_secs(15),
        || held_by_other_than(cut.clone()),
    )
    .await;
    assert!(matches!(
        instance_lock::acquire(&db.url).await,
        Err(StorageError::AlreadyRunning)
    ));
    assert!(!lock.lost().is_cancelled());
}

/// A graceful stop gives the lock back before it returns: the next instance on the same
/// database starts at once (before, the lock went with the session, a moment after the
/// connection closed, and an immediate restart could be refused).
#[actix_rt::test]
async fn a_stopped_application_frees_the_database_at_once() {
    let db = TestDb::new().await;
    let admin = db.client().await;
    let held = || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                 WHERE l.locktype = 'advisory' AND a.application_name = $1
                   AND a.datname = current_database()",
                &[&instance_lock::APPLICATION_NAME],
            )
            .await
            .expect("pg_locks")
            .get::<_, i64>(0)
    };
    for _ in 0..3 {
        let app = Application::build(&test_settings(), &db.url)
            .await
            .expect("an instance starts right after the previous one stopped");
        assert_eq!(held().await, 1);
        app.shutdown_token().cancel();
        app.run_until_stopped(None).await.expect("stopped");
        assert_eq!(held().await, 0, "the lock is free when the stop returns");
    }
    let lock = instance_lock::acquire(&db.url).await.expect("the lock");
    lock.release().await;
    assert_eq!(held().await, 0, "a released lock is free at once");
}
