//! Pruning the outbox: an event goes once every publisher has passed it AND it is older than
//! the retention, a bounded chunk per command; the pruner actor repeats full chunks.

use std::time::Duration;

use tributary::events::pruner::Pruner;
use tributary::events::pruner::machine::PruneLimits;
use tributary::storage::StorageHandle;
use tributary::storage::commands::prune::PruneEvents;

use crate::helpers::{TestDb, eventually};

const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

/// Appends `n` events aged `days` days (positions follow, from 1 on a fresh database).
async fn events(db: &TestDb, n: i64, days: i32) {
    db.client()
        .await
        .execute(
            "INSERT INTO events (connector_id, sequence, type, envelope, created_at)
             SELECT '', g, 'SAVED_POOL', '{}', now() - make_interval(days => $2)
             FROM generate_series(1, $1::bigint) g",
            &[&n, &days],
        )
        .await
        .expect("insert events");
}

async fn cursor(db: &TestDb, publisher: &str, position: i64) {
    db.client()
        .await
        .execute(
            "INSERT INTO event_cursors (publisher, position) VALUES ($1, $2)
             ON CONFLICT (publisher) DO UPDATE SET position = EXCLUDED.position",
            &[&publisher, &position],
        )
        .await
        .expect("cursor");
}

async fn positions(db: &TestDb) -> Vec<i64> {
    db.client()
        .await
        .query("SELECT position FROM events ORDER BY position", &[])
        .await
        .expect("positions")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn prune(chunk: i64) -> PruneEvents {
    PruneEvents {
        retention: WEEK,
        chunk,
    }
}

#[actix_rt::test]
async fn only_events_every_publisher_passed_and_older_than_retention_go() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 100, Duration::ZERO);
    events(&db, 4, 10).await; // 1..=4: old
    events(&db, 2, 0).await; // 5, 6: young
    cursor(&db, "nats", 3).await;
    cursor(&db, "webhook:a", 5).await;

    // Old and passed by all (1..=3) go; 4 is old but not passed by `nats`; 5 and 6 are young.
    assert_eq!(storage.write(prune(10_000)).await.expect("prune"), 3);
    assert_eq!(positions(&db).await, [4, 5, 6]);

    // `nats` passes everything: 4 goes; 5 is passed by all but young.
    cursor(&db, "nats", 6).await;
    assert_eq!(storage.write(prune(10_000)).await.expect("prune"), 1);
    assert_eq!(positions(&db).await, [5, 6]);

    // No publisher at all: nothing holds the events back but their age.
    db.client()
        .await
        .batch_execute(
            "DELETE FROM event_cursors;
             UPDATE events SET created_at = now() - interval '8 days' WHERE position = 5",
        )
        .await
        .expect("no cursors");
    assert_eq!(storage.write(prune(10_000)).await.expect("prune"), 1);
    assert_eq!(positions(&db).await, [6]);
}

#[actix_rt::test]
async fn one_command_deletes_one_chunk_and_the_pruner_repeats_until_done() {
    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 100, Duration::ZERO);
    events(&db, 25, 10).await;
    events(&db, 1, 0).await;
    assert_eq!(storage.write(prune(10)).await.expect("prune"), 10);
    assert_eq!(positions(&db).await.len(), 16);

    let _pruner = Pruner::start_with(
        storage.clone(),
        prune(10),
        PruneLimits {
            interval: Duration::from_millis(20),
            chunk: 10,
        },
        tokio_util::sync::CancellationToken::new(),
    );
    eventually("the old events pruned", Duration::from_secs(10), || async {
        positions(&db).await == [26]
    })
    .await;
}

/// A NATS publisher configured before and removed since would hold back pruning forever:
/// the service drops its cursor at start.
#[actix_rt::test]
async fn the_cursor_of_an_unconfigured_nats_publisher_is_dropped_at_start() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .execute(
            "INSERT INTO event_cursors (publisher, position) VALUES ('nats', 0)",
            &[],
        )
        .await
        .expect("an old cursor");
    let app = crate::helpers::spawn_app_on(
        db,
        tributary::connectors::registry(&crate::helpers::test_settings()),
    )
    .await;
    let pool = app.db.pool();
    eventually("the stale cursor dropped", Duration::from_secs(10), || {
        let pool = pool.clone();
        async move {
            tributary::storage::queries::events::cursor(&pool, "nats")
                .await
                .expect("read the cursor")
                .is_none()
        }
    })
    .await;
    app.shutdown.cancel();
}

/// Webhook cursors without an active config (an older version or a crash left them) are
/// dropped at start; an active config's is kept.
#[actix_rt::test]
async fn orphan_webhook_cursors_are_dropped_at_start() {
    let db = TestDb::new().await;
    let client = db.client().await;
    let active = uuid::Uuid::new_v4();
    let inactive = uuid::Uuid::new_v4();
    for (id, on) in [(active, true), (inactive, false)] {
        client
            .execute(
                "INSERT INTO webhook_configs (id, endpoint, secret, event_types, active)
                 VALUES ($1, 'http://127.0.0.1:9/', '{}'::json, '{}', $2)",
                &[&id, &on],
            )
            .await
            .expect("a config");
    }
    for name in [
        format!("webhook:{active}"),
        format!("webhook:{inactive}"),
        format!("webhook:{}", uuid::Uuid::new_v4()),
    ] {
        client
            .execute(
                "INSERT INTO event_cursors (publisher, position) VALUES ($1, 0)",
                &[&name],
            )
            .await
            .expect("a cursor");
    }
    let app = crate::helpers::spawn_app_on(
        db,
        tributary::connectors::registry(&crate::helpers::test_settings()),
    )
    .await;
    let left: Vec<String> = app
        .db
        .client()
        .await
        .query(
            "SELECT publisher FROM event_cursors WHERE publisher LIKE 'webhook:%'",
            &[],
        )
        .await
        .expect("cursors")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(left, [format!("webhook:{active}")]);
    app.shutdown.cancel();
}
