//! Connectors declared in the settings file: installed at first boot, updated when the
//! declaration changes (before any of its tasks resumes), untouched when equal; an invalid one
//! stops the boot; a declaration that fixes a stored config that does not load starts it.

use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tributary::app::{Application, StartupError};
use tributary::settings::{DeclaredConnector, Settings};
use tributary::storage::StorageError;

use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestDb, eventually, test_settings};

fn declaring(dir: &std::path::Path, period: &str) -> Settings {
    let mut settings = test_settings();
    let config = json!({"directory": dir.to_str(), "filePollingPeriod": period});
    settings.connectors = vec![DeclaredConnector {
        provider: "dummy-pay".into(),
        name: "declared".into(),
        config: config.as_object().cloned().unwrap_or_default(),
    }];
    settings
}

/// Boots the service (waiting for a previous instance to release the database) and lets it
/// reconcile; answers the token that stops it and the server's end.
async fn start(
    settings: &Settings,
    db: &TestDb,
) -> Result<(CancellationToken, JoinHandle<std::io::Result<()>>), StartupError> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let app = loop {
        match Application::build(settings, &db.url).await {
            Err(StartupError::Storage(StorageError::AlreadyRunning))
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other?,
        }
    };
    let token = app.shutdown_token();
    Ok((token, actix_rt::spawn(app.run_until_stopped(None))))
}

/// Boots the service, lets it reconcile, and shuts it down.
async fn boot(settings: &Settings, db: &TestDb) -> Result<(), StartupError> {
    let (token, running) = start(settings, db).await?;
    token.cancel();
    running.await.expect("join").expect("clean stop");
    Ok(())
}

async fn declared_row(db: &TestDb) -> (String, serde_json::Value, String) {
    let row = db
        .client()
        .await
        .query_one(
            "SELECT id, config, updated_at::text FROM connectors WHERE name = 'declared' AND declared",
            &[],
        )
        .await
        .expect("declared connector");
    (row.get(0), row.get(1), row.get(2))
}

#[actix_rt::test]
async fn a_declared_connector_is_installed_updated_and_left_alone_when_equal() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");

    boot(&declaring(dir.path(), "10s"), &db)
        .await
        .expect("first boot");
    let (id, config, updated_at) = declared_row(&db).await;
    assert_eq!(config["filePollingPeriod"], "10s");
    assert_eq!(config["prefixFileToIngest"], "", "defaults are stored");

    // Equal once defaults are applied: untouched.
    boot(&declaring(dir.path(), "10s"), &db)
        .await
        .expect("second boot");
    assert_eq!(
        declared_row(&db).await,
        (id.clone(), config, updated_at.clone())
    );

    // Changed: updated in place, same connector.
    boot(&declaring(dir.path(), "5s"), &db)
        .await
        .expect("third boot");
    let (same_id, config, later) = declared_row(&db).await;
    assert_eq!(same_id, id);
    assert_eq!(config["filePollingPeriod"], "5s");
    assert_ne!(later, updated_at);
    let period: Option<i64> = db
        .client()
        .await
        .query_one(
            "SELECT period_ms FROM tasks WHERE descriptor->>'key' = 'read-files'",
            &[],
        )
        .await
        .expect("read-files task")
        .get(0);
    assert_eq!(
        period,
        Some(5000),
        "the new period reached the running task"
    );

    // Removed from the file: left installed.
    boot(&test_settings(), &db)
        .await
        .expect("boot without declarations");
    assert_eq!(declared_row(&db).await.0, id);
}

#[actix_rt::test]
async fn an_invalid_declaration_stops_the_boot_naming_the_connector_and_field() {
    let db = TestDb::new().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let error = boot(&declaring(dir.path(), "0s"), &db)
        .await
        .expect_err("boot must fail");
    let message = error.to_string();
    assert!(
        message.contains("declared") && message.contains("filePollingPeriod"),
        "{message}"
    );
    let n: i64 = db
        .client()
        .await
        .query_one("SELECT count(*) FROM connectors", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);

    let mut unknown = declaring(dir.path(), "1s");
    unknown.connectors[0].provider = "STRIPE".into();
    let message = boot(&unknown, &db)
        .await
        .expect_err("unknown provider")
        .to_string();
    assert!(
        message.contains("provider") && message.contains("STRIPE"),
        "{message}"
    );
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    db.client()
        .await
        .query_one(sql, &[])
        .await
        .expect("count")
        .get(0)
}

/// Waits until the payment `reference` is stored.
async fn wait_payment(db: &TestDb, reference: &str) {
    let sql = format!("SELECT count(*) FROM payments WHERE reference = '{reference}'");
    eventually(
        &format!("payment {reference}"),
        Duration::from_secs(20),
        || async { count(db, &sql).await == 1 },
    )
    .await;
}

#[actix_rt::test]
async fn a_changed_directory_is_stored_before_any_task_resumes_so_the_old_one_is_never_read() {
    let db = TestDb::new().await;
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    boot(&declaring(a.path(), "1h"), &db)
        .await
        .expect("first boot");
    // The service was down while the next poll came due: it is due at once at the next boot.
    db.client()
        .await
        .execute(
            "UPDATE tasks SET due_at = now() - interval '1 minute'
             WHERE descriptor->>'key' = 'read-files'",
            &[],
        )
        .await
        .expect("read-files due");
    for i in 0..20 {
        drop_file(
            a.path(),
            &format!("a-{i}.json"),
            &payment(&format!("a-{i}"), "100", "SUCCEEDED"),
        );
    }
    drop_file(b.path(), "b.json", &payment("b", "100", "SUCCEEDED"));

    let (token, running) = start(&declaring(b.path(), "1h"), &db)
        .await
        .expect("boot declaring b");
    wait_payment(&db, "b").await;
    token.cancel();
    running.await.expect("join").expect("clean stop");
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM payments WHERE reference LIKE 'a-%'"
        )
        .await,
        0,
        "a file of the old directory was ingested"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM tasks WHERE descriptor->>'fileName' LIKE 'a-%'"
        )
        .await,
        0,
        "the old directory was listed"
    );
}

#[actix_rt::test]
async fn a_declaration_that_fixes_a_stored_config_that_does_not_load_starts_the_connector() {
    let db = TestDb::new().await;
    let (a, b) = (
        tempfile::tempdir().expect("a"),
        tempfile::tempdir().expect("b"),
    );
    boot(&declaring(a.path(), "100ms"), &db)
        .await
        .expect("first boot");
    // A config the provider no longer accepts (as after an upgrade that tightened validation).
    db.client()
        .await
        .execute(
            "UPDATE connectors SET config = jsonb_set(config::jsonb, '{filePollingPeriod}', '\"0s\"')",
            &[],
        )
        .await
        .expect("break the stored config");
    drop_file(b.path(), "b.json", &payment("b", "100", "SUCCEEDED"));

    let (token, running) = start(&declaring(b.path(), "100ms"), &db)
        .await
        .expect("boot declaring b");
    wait_payment(&db, "b").await;
    token.cancel();
    running.await.expect("join").expect("clean stop");
}
