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
