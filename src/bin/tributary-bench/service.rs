//! The real service, started in the bench's own process on a fresh database, and a minimal
//! HTTP client to drive it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use tributary::app::Application;
use tributary::sdk::SystemClock;
use tributary::settings::Settings;
use tributary::storage::database::with_dbname;
use tributary::storage::{Pool, StorageHandle, database};

/// A minimal blocking HTTP/1.0 request with an optional JSON body (keeps the bench free of an
/// HTTP client dependency). Returns the status and the body.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> anyhow::Result<(u16, String)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// The real service, in this process, on a fresh database of its own.
pub struct Service {
    admin_url: String,
    db: String,
    /// Its data directory (only the key file lives there), removed with the database.
    key_dir: std::path::PathBuf,
    pub port: u16,
    pub pool: Pool,
    /// The service's storage actor, for its counters.
    pub storage: StorageHandle,
    stop: tokio_util::sync::CancellationToken,
    running: Option<actix_rt::task::JoinHandle<std::io::Result<()>>>,
}

impl Service {
    pub async fn start(admin_url: &str) -> anyhow::Result<Service> {
        Self::start_with(admin_url, |_| {}).await
    }

    /// [`Service::start`] with changed settings.
    pub async fn start_with(
        admin_url: &str,
        edit: impl FnOnce(&mut Settings),
    ) -> anyhow::Result<Service> {
        let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
        database::ensure_database(admin_url, &db).await?;
        let mut settings = base_settings(&db)?;
        edit(&mut settings);
        Self::build(admin_url, db, &settings).await
    }

    async fn build(admin_url: &str, db: String, settings: &Settings) -> anyhow::Result<Service> {
        let app = Application::build_with(
            settings,
            &with_dbname(admin_url, &db),
            tributary::connectors::registry(settings),
            Arc::new(SystemClock),
        )
        .await?;
        Ok(Service {
            admin_url: admin_url.to_string(),
            db,
            key_dir: settings.data_dir.clone(),
            port: app.port(),
            pool: app.storage().pool().clone(),
            storage: app.storage().clone(),
            stop: app.shutdown_token(),
            running: Some(actix_rt::spawn(app.run_until_stopped(None))),
        })
    }

    /// Stops this service and starts another on the same database with changed settings.
    pub async fn restart_with(self, edit: impl FnOnce(&mut Settings)) -> anyhow::Result<Service> {
        let mut old = self;
        old.stop().await;
        old.pool.close();
        let mut settings = base_settings(&old.db)?;
        edit(&mut settings);
        Self::build(&old.admin_url, std::mem::take(&mut old.db), &settings).await
    }

    /// Stops the service (the pool stays usable for ceiling measurements).
    pub async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
    }

    /// Drops the database.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.pool.close();
        let admin = database::connect(&self.admin_url, 2, Duration::from_secs(10))?;
        admin
            .get()
            .await?
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .await?;
        let _ = std::fs::remove_dir_all(&self.key_dir);
        Ok(())
    }
}

/// The settings every benchmark service starts from: port 0, and its files in temporary
/// directories — DUMMY-PAY's and the key file's (the data directory is named after the
/// database, so a restart on the same database finds the same key), so that a run leaves
/// nothing in the working directory.
fn base_settings(db: &str) -> anyhow::Result<Settings> {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse()?;
    settings.dummypay.allowed_roots = vec![std::env::temp_dir()];
    settings.data_dir = std::env::temp_dir().join(format!("tributary-{db}"));
    Ok(settings)
}

/// Stores `payments` payments (each with its first adjustment, as ingestion writes them) of a
/// connector `bench`, straight in the database: the read scenarios measure the API, not
/// ingestion. The connector row matters: the API lists only payments of existing connectors.
pub async fn seed_payments(pool: &Pool, payments: usize) -> anyhow::Result<()> {
    pool.get()
        .await?
        .batch_execute(&format!(
            "INSERT INTO connectors (id, reference, provider, name, config, lifecycle)
             VALUES ('bench', gen_random_uuid(), 'DUMMY-PAY', 'bench',
                     '{{\"name\": \"bench\", \"directory\": \"/nonexistent\"}}', 'installed');
             INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset,
                                   amount, initial_amount, created_at, raw)
             SELECT 'p' || g, 'bench', 'ref-' || g, 'PAY-IN', 'SUCCEEDED', 'visa', 'EUR/2',
                    g, g, '2026-01-01'::timestamptz + g * interval '1 second',
                    '{{\"reference\": \"x\"}}'
             FROM generate_series(1, {payments}) g;
             INSERT INTO payment_adjustments (payment_id, reference, created_at, status,
                                              amount, raw)
             SELECT id, reference, created_at, status, amount, raw FROM payments;"
        ))
        .await?;
    Ok(())
}

/// Vacuums, analyzes and checkpoints, so that a measurement does not pay for the work before
/// it (autovacuum of freshly inserted rows, a checkpoint forced by their WAL).
pub async fn settle(pool: &Pool) -> anyhow::Result<()> {
    let client = pool.get().await?;
    client.batch_execute("VACUUM ANALYZE").await?;
    // CHECKPOINT needs a superuser (or pg_checkpoint): without one, the measurement may pay
    // for the earlier work's checkpoint.
    if let Err(e) = client.batch_execute("CHECKPOINT").await {
        eprintln!("no CHECKPOINT before measuring: {e}");
    }
    Ok(())
}
