//! The test harness: one PostgreSQL server per test run, one migrated template database, and a
//! fresh database per test (`CREATE DATABASE … TEMPLATE`), so tests run in parallel without
//! interfering.
//!
//! The server is `DATABASE_URL`'s when set (as in CI), otherwise an embedded cluster of our
//! own in a temporary directory, which dies with the test process (see `storage::embedded`).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_postgres::NoTls;
use tributary::app::Application;
use tributary::settings::Settings;
use tributary::storage::database::with_dbname;
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};
use tributary::storage::{database, migrate};

/// Advisory lock serialising template creation across concurrent test runs on one server.
const TEMPLATE_LOCK: i64 = 0x7472_6962_7465_7374;

struct TestServer {
    /// An admin URL (any existing database) on the server.
    admin_url: String,
    /// The migrated template every test database is copied from.
    template: String,
    _embedded: Option<EmbeddedPostgres>,
    _dir: Option<tempfile::TempDir>,
}

static SERVER: OnceLock<TestServer> = OnceLock::new();

/// A name for the template that changes whenever the migrations do.
fn template_name() -> String {
    let mut files: Vec<_> = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
        .expect("migrations dir")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    // FNV-1a: stable across runs and toolchains.
    let mut hash: u64 = 0xcbf29ce484222325;
    for f in files {
        for b in std::fs::read(&f)
            .expect("migration")
            .iter()
            .chain(f.to_string_lossy().as_bytes())
        {
            hash ^= *b as u64;
            hash = hash.wrapping_mul(0x100000001b3);
        }
    }
    format!("tributary_tpl_{hash:016x}")
}

/// A URL of an existing database on the test server (for tools that create their own).
pub fn admin_url() -> String {
    server().admin_url.clone()
}

/// Starts (once) the server every test database lives on.
pub fn ensure_server_started() {
    server();
}

fn server() -> &'static TestServer {
    SERVER.get_or_init(|| {
        // Never block_on inside the test's runtime: prepare the server on a plain thread.
        std::thread::spawn(start_server)
            .join()
            .expect("test database server thread panicked")
    })
}

fn start_server() -> TestServer {
    let (admin_url, embedded, dir) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None, None),
        _ => {
            let dir = tempfile::Builder::new()
                .prefix("tributary-it-")
                .tempdir_in("/tmp")
                .expect("tempdir");
            let config = EmbeddedConfig::for_data_dir(dir.path(), std::path::Path::new(""), 5432);
            let pg = EmbeddedPostgres::start(&config).expect("start embedded PostgreSQL for tests");
            (pg.url("postgres"), Some(pg), Some(dir))
        }
    };
    let template = template_name();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(create_template(&admin_url, &template));
    TestServer {
        admin_url,
        template,
        _embedded: embedded,
        _dir: dir,
    }
}

async fn create_template(admin_url: &str, template: &str) {
    let (client, conn) = tokio_postgres::connect(admin_url, NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&TEMPLATE_LOCK])
        .await
        .expect("template lock");
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
        .await
        .expect("lookup template")
        .is_some();
    if !exists {
        let building = format!("{template}_building");
        for sql in [
            format!("DROP DATABASE IF EXISTS {building}"),
            format!("CREATE DATABASE {building}"),
        ] {
            client.batch_execute(&sql).await.expect("create template");
        }
        let pool = database::connect(
            &with_dbname(admin_url, &building),
            2,
            Duration::from_secs(10),
        )
        .expect("pool");
        migrate::run(&pool).await.expect("migrate template");
        pool.close();
        // Renamed only once complete, so a crashed run never leaves a half-built template.
        client
            .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {template}"))
            .await
            .expect("rename template");
    }
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&TEMPLATE_LOCK])
        .await
        .expect("template unlock");
}

/// A database of one test's own, dropped when the test ends.
pub struct TestDb {
    /// Its connection URL.
    pub url: String,
    name: String,
}

impl TestDb {
    /// Copies the migrated template into a new database.
    pub async fn new() -> TestDb {
        Self::create(Some(&server().template)).await
    }

    /// A new database with no schema at all (for migration tests).
    pub async fn empty() -> TestDb {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> TestDb {
        let server = server();
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&server.admin_url, NoTls)
            .await
            .expect("connect to the test server");
        let conn = tokio::spawn(conn);
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        // Another test's CREATE … TEMPLATE may hold the template for a moment.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match client.batch_execute(&sql).await {
                Ok(()) => break,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("create test database: {e:?}"),
            }
        }
        drop(client);
        let _ = conn.await;
        TestDb {
            url: with_dbname(&server.admin_url, &name),
            name,
        }
    }

    /// A small pool on this database, for reads in assertions.
    pub fn pool(&self) -> tributary::storage::Pool {
        database::connect(&self.url, 4, Duration::from_secs(10)).expect("pool")
    }

    /// A plain client on this database.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to the test database");
        tokio::spawn(conn);
        client
    }

    /// Drops this database now, closing every connection to it.
    pub async fn drop_now(&self) {
        let (client, conn) = tokio_postgres::connect(&server().admin_url, NoTls)
            .await
            .expect("connect to the test server");
        tokio::spawn(conn);
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop test database");
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let admin = server().admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: do the async work on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                if let Ok((client, conn)) = tokio_postgres::connect(&admin, NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// The key file every test service of this process shares (created once, in a temporary
/// directory, so that no test writes one into the working directory).
pub fn test_key_file() -> std::path::PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("key file dir"));
    let path = dir.path().join("encryption.key");
    if !path.exists() {
        tributary::secrets::keyring::create_key_file(&path).expect("test key file");
    }
    path
}

/// Settings for a test service: port 0, fast timeouts, the process's key file, and DUMMY-PAY
/// allowed under the system's temporary directory (where every test makes its directories).
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse().expect("addr");
    settings.server.shutdown_timeout = Duration::from_secs(2);
    settings.database.timeout = Duration::from_secs(2);
    settings.database.max_connections = 4;
    settings.encryption.key_file = test_key_file();
    settings.dummypay.allowed_roots = vec![std::env::temp_dir()];
    settings.metrics.refresh_interval = Duration::from_millis(100);
    settings
}

/// A running service on a fresh database.
pub struct TestApp {
    /// `http://127.0.0.1:<port>/api/payments`.
    pub base: String,
    /// The database it runs on.
    pub db: TestDb,
    /// Cancel to shut the service down.
    pub shutdown: tokio_util::sync::CancellationToken,
}

/// Builds and starts the service on a fresh database, as `serve` would.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(tributary::connectors::registry(&test_settings())).await
}

/// The same, with the providers of `registry`.
pub async fn spawn_app_with(registry: tributary::runtime::Registry) -> TestApp {
    spawn_app_on(TestDb::new().await, registry).await
}

/// The same, on a database the test prepared.
pub async fn spawn_app_on(db: TestDb, registry: tributary::runtime::Registry) -> TestApp {
    spawn_app_configured(db, registry, &test_settings()).await
}

/// The same, with settings of the test's own (start from [`test_settings`]).
pub async fn spawn_app_configured(
    db: TestDb,
    registry: tributary::runtime::Registry,
    settings: &Settings,
) -> TestApp {
    let app = Application::build_with(
        settings,
        &db.url,
        registry,
        std::sync::Arc::new(tributary::sdk::SystemClock),
    )
    .await
    .expect("build app");
    let base = format!("http://127.0.0.1:{}/api/payments", app.port());
    let shutdown = app.shutdown_token();
    actix_rt::spawn(app.run_until_stopped(None));
    TestApp { base, db, shutdown }
}

/// Polls `check` until it returns true or `timeout` passes; panics with `what` on timeout.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
