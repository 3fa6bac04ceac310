//! The storage actor: group commit, ordering, durability of acknowledged writes, failure
//! isolation.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;
use tributary::storage::commands::connectors::InsertConnector;
use tributary::storage::commands::kv::PutKv;
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

async fn setup(batch_size: usize) -> (TestDb, StorageHandle, String) {
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
