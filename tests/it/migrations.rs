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

#[actix_rt::test]
async fn deleting_a_connector_cascades_to_everything_it_owns() {
    let db = TestDb::new().await;
    let client = db.client().await;
    client
        .batch_execute(
            "INSERT INTO connectors (id, reference, provider, name, config)
               VALUES ('c1', gen_random_uuid(), 'DUMMY-PAY', 'one', '{}');
             INSERT INTO tasks (id, connector_id, descriptor, descriptor_key, status, schedule, restart)
               VALUES (gen_random_uuid(), 'c1', '{}', '{}', 'ACTIVE', 'RUN_NOW', 'RESTART_NEVER');
             INSERT INTO connector_kv (connector_id, key, value) VALUES ('c1', 'k', '1');
             INSERT INTO accounts (id, connector_id, reference, created_at, type)
               VALUES ('a1', 'c1', 'acc', now(), 'INTERNAL');
             INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
               VALUES ('a1', 'EUR/2', -5, now(), now());
             INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset,
                                   amount, initial_amount, created_at)
               VALUES ('p1', 'c1', 'pay', 'PAY-IN', 'SUCCEEDED', 'visa', 'EUR/2',
                       1234567890123456789012345678901234567890, 1, now());
             INSERT INTO payment_adjustments (payment_id, reference, created_at, status, amount)
               VALUES ('p1', 'pay', now(), 'SUCCEEDED', 1);
             DELETE FROM connectors WHERE id = 'c1';",
        )
        .await
        .expect("insert and delete");
    for table in [
        "tasks",
        "connector_kv",
        "accounts",
        "balances",
        "payments",
        "payment_adjustments",
    ] {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(n, 0, "{table} kept rows of a deleted connector");
    }
}
