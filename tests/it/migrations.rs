//! Migrations: applied once, idempotent, safe when two processes migrate at once.

use tributary::storage::migrate;

use crate::helpers::TestDb;

#[actix_rt::test]
async fn migrations_apply_once_and_are_idempotent() {
    let db = TestDb::empty().await;
    let pool = db.pool();
    assert_eq!(
        migrate::run(&pool).await.expect("first run"),
        migrate::shipped()
    );
    assert_eq!(migrate::run(&pool).await.expect("second run"), 0);

    let tables: Vec<String> = db
        .client()
        .await
        .query(
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "accounts",
        "balances",
        "connector_kv",
        "connectors",
        "payment_adjustments",
        "payments",
        "tasks",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "missing {table}: {tables:?}"
        );
    }
}

#[actix_rt::test]
async fn two_concurrent_migrations_apply_each_migration_once() {
    let db = TestDb::empty().await;
    let (a, b) = (db.pool(), db.pool());
    let (ra, rb) = futures::join!(migrate::run(&a), migrate::run(&b));
    let applied = ra.expect("first migrator") + rb.expect("second migrator");
    assert_eq!(applied, migrate::shipped());
}

/// Rows of every table a connector owns, for connector `c`.
fn owned_rows(c: &str) -> String {
    format!(
        "INSERT INTO connectors (id, reference, provider, name, config, lifecycle)
           VALUES ('{c}', gen_random_uuid(), 'DUMMY-PAY', '{c}', '{{}}', 'installed');
         INSERT INTO tasks (id, connector_id, descriptor, status, schedule, restart)
           VALUES (gen_random_uuid(), '{c}', '{{}}', 'ACTIVE', 'RUN_NOW', 'RESTART_NEVER');
         INSERT INTO connector_kv (connector_id, key, value) VALUES ('{c}', 'k', '1');
         INSERT INTO accounts (id, connector_id, reference, created_at, type)
           VALUES ('{c}-a', '{c}', 'acc', now(), 'INTERNAL');
         INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
           VALUES ('{c}-a', 'EUR/2', -5, now(), now());
         INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset,
                               amount, initial_amount, created_at)
           VALUES ('{c}-p', '{c}', 'pay', 'PAY-IN', 'SUCCEEDED', 'visa', 'EUR/2',
                   1234567890123456789012345678901234567890, 1, now());
         INSERT INTO payment_adjustments (payment_id, reference, created_at, status, amount)
           VALUES ('{c}-p', 'pay', now(), 'SUCCEEDED', 1);"
    )
}

/// Rows per owned table that belong to connector `c`.
async fn count_owned(client: &tokio_postgres::Client, c: &str) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (table, filter) in [
        ("tasks", "connector_id = $1"),
        ("connector_kv", "connector_id = $1"),
        ("accounts", "connector_id = $1"),
        ("balances", "account_id = $1 || '-a'"),
        ("payments", "connector_id = $1"),
        ("payment_adjustments", "payment_id = $1 || '-p'"),
    ] {
        let n: i64 = client
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {filter}"),
                &[&c],
            )
            .await
            .expect("count")
            .get(0);
        counts.push((table, n));
    }
    counts
}

#[actix_rt::test]
async fn uninstall_and_reset_delete_everything_a_connector_owns_and_nothing_else() {
    use tributary::storage::StorageHandle;
    use tributary::storage::commands::connectors::{DeleteConnector, WipeConnectorData};

    let db = TestDb::new().await;
    let client = db.client().await;
    for c in ["gone", "wiped", "kept"] {
        client.batch_execute(&owned_rows(c)).await.expect("insert");
    }
    let storage = StorageHandle::start(db.pool(), 10, std::time::Duration::ZERO);
    assert!(
        storage
            .write(DeleteConnector { id: "gone".into() })
            .await
            .expect("delete")
    );
    storage
        .write(WipeConnectorData { id: "wiped".into() })
        .await
        .expect("wipe");

    let every = |n| count_owned(&client, n);
    assert!(
        every("gone").await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        every("gone").await
    );
    assert!(
        every("wiped").await.iter().all(|(_, n)| *n == 0),
        "{:?}",
        every("wiped").await
    );
    assert!(
        every("kept").await.iter().all(|(_, n)| *n == 1),
        "{:?}",
        every("kept").await
    );
    let connectors: Vec<String> = client
        .query("SELECT id FROM connectors ORDER BY id", &[])
        .await
        .expect("connectors")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(connectors, ["kept", "wiped"]);
}
