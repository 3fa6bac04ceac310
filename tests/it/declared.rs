//! Connectors declared in the settings file: installed at first boot, updated when the
//! declaration changes, untouched when equal; an invalid one stops the boot.

use std::time::Duration;

use serde_json::json;
use tributary::app::{Application, StartupError};
use tributary::settings::{DeclaredConnector, Settings};
use tributary::storage::StorageError;

use crate::helpers::{TestDb, test_settings};

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

/// Boots the service (waiting for a previous instance to release the database), lets it
/// reconcile, and shuts it down.
async fn boot(settings: &Settings, db: &TestDb) -> Result<(), StartupError> {
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
    let running = actix_rt::spawn(app.run_until_stopped(false));
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
