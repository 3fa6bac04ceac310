//! The storage actor: group commit, ordering, durability of acknowledged writes, failure
//! isolation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tributary::ids::ConnectorKey;
use tributary::sdk::host::RunRef;
use tributary::sdk::ingest::{Amount, Batch, PaymentData, PaymentStatus, PaymentType, Scheme};
use tributary::sdk::{Restart, Schedule, ScheduleOptions, TaskStatus};
use tributary::storage::commands::connectors::InsertConnector;
use tributary::storage::commands::ingest::IngestBatch;
use tributary::storage::commands::kv::PutKv;
use tributary::storage::commands::tasks::{
    Fenced, UpdateTaskRun, UpsertMode, UpsertOutcome, UpsertTask,
};
use tributary::storage::{StorageError, StorageHandle};
use uuid::Uuid;

use crate::helpers::TestDb;

fn connector(name: &str) -> InsertConnector {
    let reference = Uuid::new_v4();
    InsertConnector {
        id: format!("c-{reference}"),
        reference,
        provider: "DUMMY-PAY".into(),
        name: name.into(),
        config: json!({"directory": "/tmp"}),
        declared: false,
    }
}

fn put(connector_id: &str, key: &str, value: serde_json::Value) -> PutKv {
    PutKv {
        connector_id: connector_id.into(),
        key: key.into(),
        value,
    }
}

/// A storage actor of `batch_size` on a fresh database, with one connector (its id).
pub async fn setup(batch_size: usize) -> (TestDb, StorageHandle, String) {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), batch_size, Duration::ZERO);
    let c = connector("main");
    let id = c.id.clone();
    storage.write(c).await.expect("insert connector");
    (db, storage, id)
}

#[actix_rt::test]
async fn concurrent_writers_are_group_committed() {
    let (db, storage, id) = setup(50).await;
    let before = storage.stats().transactions.load(Ordering::Relaxed);
    let writers: usize = 500;
    let results =
        join_all((0..writers).map(|i| storage.write(put(&id, &format!("k{i}"), json!(i))))).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let transactions = storage.stats().transactions.load(Ordering::Relaxed) - before;
    let bound = writers.div_ceil(50) as u64 + 1;
    assert!(
        (1..=bound).contains(&transactions),
        "{writers} writers took {transactions} transactions (bound {bound})"
    );
    // One writer at a time gets one transaction per write: the counter counts commits.
    let before = storage.stats().transactions.load(Ordering::Relaxed);
    for i in 0..5 {
        storage
            .write(put(&id, &format!("seq{i}"), json!(i)))
            .await
            .expect("write");
    }
    assert_eq!(
        storage.stats().transactions.load(Ordering::Relaxed) - before,
        5
    );
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM connector_kv", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, writers as i64 + 5);
}

#[actix_rt::test]
async fn writes_from_one_sender_apply_in_order() {
    let (db, storage, id) = setup(1000).await;
    // Forty writes to one key, sent in order without waiting for each acknowledgement.
    let results = join_all((0..40).map(|i| storage.write(put(&id, "k", json!(i))))).await;
    assert!(results.iter().all(Result::is_ok));
    let v: serde_json::Value = db
        .client()
        .await
        .query_one("SELECT value FROM connector_kv WHERE key = 'k'", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(v, json!(39));
}

#[actix_rt::test]
async fn a_write_is_acknowledged_only_once_it_is_durable() {
    let (db, storage, id) = setup(1000).await;
    let reader = db.client().await;
    let reader = &reader;
    let storage = &storage;
    let id = &id;
    // Every acknowledgement is checked at once from another connection.
    let checks = join_all((0..200).map(|i| async move {
        storage
            .write(put(id, &format!("d{i}"), json!(i)))
            .await
            .expect("write");
        reader
            .query_opt(
                "SELECT 1 FROM connector_kv WHERE key = $1",
                &[&format!("d{i}")],
            )
            .await
            .expect("read")
            .is_some()
    }))
    .await;
    assert!(
        checks.iter().all(|visible| *visible),
        "an acknowledged write was not visible"
    );
}

#[actix_rt::test]
async fn one_failing_write_does_not_sink_the_others_in_its_batch() {
    let (db, storage, _) = setup(1000).await;
    storage
        .write(connector("taken"))
        .await
        .expect("first 'taken'");

    // Twenty valid installs and one duplicate name, queued together into one batch.
    let mut commands: Vec<InsertConnector> = (0..20).map(|i| connector(&format!("n{i}"))).collect();
    commands.insert(10, connector("taken"));
    let results = join_all(commands.into_iter().map(|c| storage.write(c))).await;

    for (i, result) in results.iter().enumerate() {
        if i == 10 {
            assert!(
                matches!(result, Err(StorageError::Conflict(m)) if m.contains("taken")),
                "{result:?}"
            );
        } else {
            assert!(result.is_ok(), "write {i} failed: {result:?}");
        }
    }
    assert!(storage.stats().isolated_batches.load(Ordering::Relaxed) >= 1);
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM connectors WHERE name LIKE 'n%'", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 20);
}

#[actix_rt::test]
async fn a_failed_commit_fails_every_write_of_its_batch_and_applies_none() {
    let (db, storage, id) = setup(1000).await;
    // A deferred constraint fails at COMMIT, after every statement succeeded.
    db.client()
        .await
        .batch_execute(
            r#"CREATE FUNCTION reject_boom() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN
                 IF NEW.value = '"boom"'::jsonb THEN RAISE EXCEPTION 'boom rejected at commit'; END IF;
                 RETURN NULL;
               END $$;
               CREATE CONSTRAINT TRIGGER boom AFTER INSERT OR UPDATE ON connector_kv
                 DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION reject_boom();"#,
        )
        .await
        .expect("create trigger");

    // The first write commits alone; the next three are queued behind it into one batch.
    let results = join_all([
        storage.write(put(&id, "a", json!(1))),
        storage.write(put(&id, "b", json!(2))),
        storage.write(put(&id, "c", json!("boom"))),
        storage.write(put(&id, "d", json!(4))),
    ])
    .await;
    assert!(results[0].is_ok());
    for r in &results[1..] {
        assert!(
            matches!(r, Err(e) if e.to_string().contains("boom rejected")),
            "expected the batch's commit error, got {r:?}"
        );
    }
    let keys: Vec<String> = db
        .client()
        .await
        .query("SELECT key FROM connector_kv ORDER BY key", &[])
        .await
        .expect("keys")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(keys, vec!["a"]);

    // The actor keeps serving.
    storage
        .write(put(&id, "e", json!(5)))
        .await
        .expect("write after a failed batch");
}

#[actix_rt::test]
async fn a_write_to_a_missing_row_reports_not_found() {
    let (_db, storage, _) = setup(10).await;
    let result = storage.write(put("no-such-connector", "k", json!(1))).await;
    assert!(
        matches!(result, Err(StorageError::NotFound(_))),
        "{result:?}"
    );
}

/// A connector row whose id is a real connector key, as ingestion needs.
pub async fn keyed_connector(storage: &StorageHandle) -> ConnectorKey {
    let key = ConnectorKey {
        provider: "DUMMY-PAY".into(),
        reference: Uuid::new_v4(),
    };
    storage
        .write(InsertConnector {
            id: key.id(),
            reference: key.reference,
            provider: key.provider.clone(),
            name: format!("k-{}", key.reference),
            config: json!({"directory": "/tmp"}),
            declared: false,
        })
        .await
        .expect("insert connector");
    key
}

fn payment(reference: &str, amount: &str) -> PaymentData {
    PaymentData {
        reference: reference.into(),
        created_at: chrono::Utc::now(),
        payment_type: PaymentType::PayIn,
        status: PaymentStatus::Succeeded,
        scheme: Scheme::Other,
        asset: "EUR/2".into(),
        amount: Amount::payment("amount", amount).expect("amount"),
        source_account: None,
        destination_account: None,
        raw: None,
        metadata: Default::default(),
    }
}

#[actix_rt::test]
async fn same_kind_writes_of_many_tasks_are_merged_and_keep_their_own_outcome() {
    let (db, storage, _) = setup(1000).await;
    let connector = keyed_connector(&storage).await;
    let connector_id = connector.id();
    let tasks: Vec<UpsertTask> = (0..40).map(|i| schedule(&connector_id, i)).collect();
    // Scheduled together, twice: the second time every task is live, so nothing changes.
    for expected_new in [true, false] {
        let outcomes = join_all(tasks.iter().map(|t| storage.write(t.clone()))).await;
        for outcome in outcomes {
            let outcome = outcome.expect("schedule");
            assert_eq!(
                matches!(outcome, UpsertOutcome::Started { run: 0, .. }),
                expected_new,
                "{outcome:?}"
            );
        }
    }
    let merged_before = storage.stats().merged_writes.load(Ordering::Relaxed);
    let isolated_before = storage.stats().isolated_batches.load(Ordering::Relaxed);

    // One ingest per task, queued together: task 0 writes p1 again (a second round), and
    // task 39 writes from a run that never existed (superseded: nothing of it is written).
    let ingests = tasks.iter().enumerate().map(|(i, task)| {
        let (reference, amount) = match i {
            0 => ("p1".to_string(), "200"),
            _ => (format!("p{i}"), "100"),
        };
        storage.write(Fenced {
            run: RunRef {
                task_id: task.id,
                run: if i == 39 { 7 } else { 0 },
            },
            state: Some(json!({"done": i})),
            finish: None,
            inner: IngestBatch {
                connector: connector.clone(),
                batch: Batch {
                    payments: vec![payment(&reference, amount)],
                    store: vec![(format!("file/{i}"), json!(i))],
                    ..Batch::default()
                },
            },
        })
    });
    let reports = join_all(ingests).await;
    for (i, report) in reports.iter().enumerate() {
        match i {
            39 => assert!(
                matches!(report, Err(StorageError::Superseded { run: 7, .. })),
                "{report:?}"
            ),
            // p1 comes from task 0, then again from task 1: one insert, one update.
            0 | 1 => {
                let r = report.as_ref().expect("ingest");
                assert_eq!(r.payments_inserted + r.payments_updated, 1, "{i}: {r:?}");
            }
            _ => assert_eq!(report.as_ref().expect("ingest").payments_inserted, 1),
        }
    }
    let merged = storage.stats().merged_writes.load(Ordering::Relaxed) - merged_before;
    assert!(merged >= 20, "only {merged} writes were merged");
    assert_eq!(
        storage.stats().isolated_batches.load(Ordering::Relaxed),
        isolated_before,
        "a superseded write must not force the batch into isolation"
    );

    let client = db.client().await;
    let count = |sql: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(sql, &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("SELECT count(*) FROM payments").await, 38);
    assert_eq!(count("SELECT count(*) FROM payment_adjustments").await, 39);
    assert_eq!(
        count("SELECT count(*) FROM connector_kv WHERE key LIKE 'file/%'").await,
        39
    );
    assert_eq!(
        count("SELECT count(*) FROM tasks WHERE state IS NOT NULL").await,
        39
    );
    let p1: String = client
        .query_one(
            "SELECT amount::text FROM payments WHERE reference = 'p1'",
            &[],
        )
        .await
        .expect("p1")
        .get(0);
    assert_eq!(p1, "100", "task 1's write of p1 was queued after task 0's");

    // The statuses of all runs at once, one of them stale.
    let updates = tasks.iter().enumerate().map(|(i, task)| {
        storage.write(UpdateTaskRun {
            run: RunRef {
                task_id: task.id,
                run: if i == 5 { 2 } else { 0 },
            },
            status: TaskStatus::Terminated,
            error: None,
            attempts: 0,
            restarts: 0,
            failing_since: None,
            due_at: None,
            running: false,
            succeeded_at: Some(chrono::Utc::now()),
            now: chrono::Utc::now(),
        })
    });
    let results = join_all(updates).await;
    for (i, result) in results.iter().enumerate() {
        assert_eq!(i == 5, result.is_err(), "{i}: {result:?}");
    }
    assert_eq!(
        count("SELECT count(*) FROM tasks WHERE status = 'TERMINATED'").await,
        39
    );
}

fn schedule(connector_id: &str, file: usize) -> UpsertTask {
    let descriptor = json!({"file": file});
    UpsertTask {
        id: tributary::ids::task_id(connector_id, &tributary::ids::canonical_json(&descriptor)),
        connector_id: connector_id.into(),
        parent_id: None,
        descriptor,
        options: ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive),
        due_at: None,
        now: chrono::Utc::now(),
        mode: UpsertMode::IfAllowed,
    }
}

/// The hot tables have no foreign keys: a write for a connector that is gone must still leave
/// nothing behind, whether it is a schedule (checked in its statement) or a run's write
/// (fenced on the task row, deleted with the connector).
#[actix_rt::test]
async fn writes_for_a_deleted_connector_leave_nothing_behind() {
    use tributary::storage::commands::connectors::DeleteConnector;

    let db = TestDb::new().await;
    // A linger, so that the two schedules below share a batch (and a statement).
    let storage = StorageHandle::start(db.pool(), 1000, Duration::from_millis(100));
    let (live, gone) = (
        keyed_connector(&storage).await,
        keyed_connector(&storage).await,
    );
    let task = schedule(&gone.id(), 0);
    let Ok(UpsertOutcome::Started { run, .. }) = storage.write(task.clone()).await else {
        panic!("scheduling on an installed connector");
    };
    assert!(
        storage
            .write(DeleteConnector { id: gone.id() })
            .await
            .expect("delete")
    );

    // Merged into one statement with a schedule of a live connector.
    let merged_before = storage.stats().merged_writes.load(Ordering::Relaxed);
    let (orphan, kept) = futures::join!(
        storage.write(schedule(&gone.id(), 1)),
        storage.write(schedule(&live.id(), 1))
    );
    assert_eq!(
        storage.stats().merged_writes.load(Ordering::Relaxed) - merged_before,
        2,
        "the two schedules were not merged"
    );
    assert!(
        matches!(&orphan, Err(StorageError::NotFound(m)) if m.contains(&gone.id())),
        "{orphan:?}"
    );
    assert!(
        matches!(kept, Ok(UpsertOutcome::Started { .. })),
        "{kept:?}"
    );

    let late = storage
        .write(Fenced {
            run: RunRef {
                task_id: task.id,
                run,
            },
            state: None,
            finish: None,
            inner: IngestBatch {
                connector: gone.clone(),
                batch: Batch {
                    payments: vec![payment("late", "1")],
                    store: vec![("file/late".into(), json!(1))],
                    ..Batch::default()
                },
            },
        })
        .await;
    assert!(
        matches!(late, Err(StorageError::Superseded { .. })),
        "{late:?}"
    );

    let client = db.client().await;
    for table in ["tasks", "payments", "connector_kv"] {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE connector_id = $1"),
                &[&gone.id()],
            )
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "{table} holds rows of a deleted connector");
    }
}
