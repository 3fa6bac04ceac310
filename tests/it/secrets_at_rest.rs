//! Secrets at rest: a connector whose secret `apiKey` carries a sentinel is installed,
//! updated, reset, restarted and rotated through the real service, and after each step every
//! column of every table of the test's database is scanned for the sentinel; the connector
//! itself checks its key (install and config hooks, and a periodic task that counts its runs),
//! so a masked update or a rotation that garbled the key would show. Also: the key sources
//! (created key file, bad material, wrong key at start) and DUMMY-PAY's allowed roots.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use serde_json::{Value, json};
use tributary::app::Application;
use tributary::redact::MASK;
use tributary::runtime::Registry;
use tributary::sdk::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldSpec, Loader, Restart,
    Schedule, ScheduleOptions, Task, TaskContext, TaskError,
};
use tributary::settings::Settings;

use crate::cli::free_port;
use crate::helpers::{TestApp, TestDb, eventually, spawn_app_configured, test_settings};

/// In every key below; alphanumeric, so no encoding hides it from a scan.
const TOKEN: &str = "c4f7e1a93d";

/// The only key connector `name` accepts at `version`.
fn key_for(name: &str, version: &str) -> String {
    format!("sk_{TOKEN}_{name}_v{version}")
}

// ---- a connector that checks its key ----

struct VaultedLoader;

impl Loader for VaultedLoader {
    fn provider(&self) -> &'static str {
        "VAULTED"
    }

    fn provider_title(&self) -> &'static str {
        "Vaulted"
    }

    fn schema(&self) -> ConfigSchema {
        let field = |required, default_value, secret| FieldSpec {
            data_type: "string",
            required,
            default_value,
            secret,
        };
        ConfigSchema::from([
            ("name", field(true, None, false)),
            ("apiKey", field(true, None, true)),
            ("version", field(false, Some(json!("1")), false)),
            ("note", field(false, None, false)),
        ])
    }

    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        let text = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or_default();
        Ok(Arc::new(Vaulted {
            key: text("apiKey").to_string(),
            expected: key_for(text("name"), text("version")),
        }))
    }
}

struct Vaulted {
    key: String,
    expected: String,
}

impl Vaulted {
    fn check(&self) -> Result<(), TaskError> {
        if self.key == self.expected {
            Ok(())
        } else {
            Err(TaskError::non_retryable("the PSP refused the key"))
        }
    }
}

#[async_trait]
impl Connector for Vaulted {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        self.check()?;
        let every = ScheduleOptions::new(
            Schedule::RunPeriodically(Duration::from_millis(100)),
            Restart::Never,
        );
        ctx.scheduler()
            .schedule(&json!({"key": "check"}), every)
            .await
            .map(|_| ())
    }

    async fn config_updated(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        self.check()
    }

    fn resolve(&self, _descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        Ok(Box::new(Check {
            ok: self.check().is_ok(),
        }))
    }
}

/// Fails for good with a wrong key; otherwise counts its runs in the connector's store.
struct Check {
    ok: bool,
}

#[async_trait]
impl Task for Check {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        if !self.ok {
            return Err(TaskError::non_retryable("the PSP refused the key"));
        }
        let runs: u64 = ctx.kv_get("runs").await?.unwrap_or(0);
        ctx.kv_put("runs", &(runs + 1)).await
    }
}

fn registry() -> Registry {
    Registry::new().with(Arc::new(VaultedLoader))
}

// ---- helpers ----

/// A key file of this test's own: `kid=<32 bytes of byte>`.
fn key_file(dir: &Path, kid: &str, byte: u8) -> PathBuf {
    let path = dir.join(format!("{kid}-{byte}.key"));
    let key = base64::engine::general_purpose::STANDARD.encode([byte; 32]);
    std::fs::write(&path, format!("{kid}={key}\n")).expect("key file");
    path
}

fn settings_with(key_file: &Path) -> Settings {
    let mut settings = test_settings();
    settings.encryption.key_file = key_file.to_path_buf();
    settings
}

async fn start(db: TestDb, settings: &Settings) -> TestApp {
    spawn_app_configured(db, registry(), settings).await
}

/// Stops a test service and hands back its database (the service is gone once its pool
/// connections are: the next one takes the instance lock).
async fn stop(app: TestApp) -> TestDb {
    app.shutdown.cancel();
    let db = app.db;
    let client = db.client().await;
    eventually("the service to release the database", Duration::from_secs(20), || {
        let client = &client;
        async move {
            client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .map(|r| r.get::<_, i64>(0) == 0)
                .unwrap_or(false)
        }
    })
    .await;
    db
}

/// Every row of every table of the database, as text: none may contain the sentinel.
async fn assert_no_clear_secret(db: &TestDb, when: &str) {
    let client = db.client().await;
    let tables: Vec<String> = client
        .query(
            "SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
             FROM information_schema.tables
             WHERE table_type = 'BASE TABLE'
               AND table_schema NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        tables.iter().any(|t| t.ends_with("connectors")),
        "{tables:?}"
    );
    let mut rows = 0;
    for table in &tables {
        for row in client
            .query(&format!("SELECT t::text FROM {table} t"), &[])
            .await
            .expect("scan")
        {
            let text: String = row.get(0);
            rows += 1;
            assert!(
                !text.contains(TOKEN),
                "{when}: a secret in clear in {table}: {text}"
            );
        }
    }
    assert!(rows > 0, "{when}: nothing scanned");
}

/// The key ids of the stored `apiKey` values, one per connector.
async fn stored_kids(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT config->'apiKey'->'$encrypted'->>'kid' FROM connectors ORDER BY id",
            &[],
        )
        .await
        .expect("kids")
        .iter()
        .map(|r| {
            r.get::<_, Option<String>>(0)
                .unwrap_or_else(|| "clear".into())
        })
        .collect()
}

async fn runs(db: &TestDb, id: &str) -> u64 {
    db.client()
        .await
        .query_opt(
            "SELECT value FROM connector_kv WHERE connector_id = $1 AND key = 'runs'",
            &[&id],
        )
        .await
        .expect("runs")
        .and_then(|r| r.get::<_, Value>(0).as_u64())
        .unwrap_or(0)
}

/// Waits until the connector's check task has run `more` times after now, and is not FAILED.
async fn runs_on(db: &TestDb, id: &str, more: u64) {
    let from = runs(db, id).await;
    eventually(
        &format!("{id} to run {more} more times"),
        Duration::from_secs(20),
        || async move { runs(db, id).await >= from + more },
    )
    .await;
    let failed: i64 = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM tasks WHERE connector_id = $1 AND status = 'FAILED'",
            &[&id],
        )
        .await
        .expect("failed")
        .get(0);
    assert_eq!(failed, 0, "{id}: a task failed (wrong key?)");
}

async fn call(app: &TestApp, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let url = format!("{}{path}", app.base);
    let request = match method {
        "GET" => http.get(url),
        "POST" => http.post(url),
        other => panic!("{other}"),
    };
    let mut response = match body {
        Some(b) => request.send_json(&b).await,
        None => request.send().await,
    }
    .expect("request");
    let bytes = response.body().await.expect("body");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(!text.contains(TOKEN), "a secret in an answer: {text}");
    (
        response.status().as_u16(),
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

async fn install(app: &TestApp, name: &str) -> String {
    let (status, body) = call(
        app,
        "POST",
        "/connectors/vaulted",
        Some(json!({"name": name, "apiKey": key_for(name, "1")})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string()
}

// ---- the tests ----

#[actix_rt::test]
async fn secrets_are_never_stored_in_clear_read_masked_and_kept_by_a_masked_update() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_with(&key_file(dir.path(), "k1", 1));
    let app = start(TestDb::new().await, &settings).await;
    let id = install(&app, "alpha").await;
    runs_on(&app.db, &id, 2).await;
    assert_no_clear_secret(&app.db, "after install").await;
    assert_eq!(stored_kids(&app.db).await, ["k1"]);

    // Both GET routes mask it.
    for path in [
        format!("/connectors/vaulted/{id}/config"),
        "/connectors/vaulted/config".to_string(),
    ] {
        let (status, body) = call(&app, "GET", &path, None).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["apiKey"], MASK, "{body}");
        assert_eq!(body["data"]["name"], "alpha");
    }

    // Posting back what GET showed keeps the key: the config hook checks it (a wrong key
    // would be a 400) and the task keeps running with it.
    let (_, shown) = call(
        &app,
        "GET",
        &format!("/connectors/vaulted/{id}/config"),
        None,
    )
    .await;
    let mut echoed = shown["data"].clone();
    echoed["note"] = json!("edited");
    let (status, body) = call(
        &app,
        "POST",
        &format!("/connectors/vaulted/{id}/config"),
        Some(echoed),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, after) = call(
        &app,
        "GET",
        &format!("/connectors/vaulted/{id}/config"),
        None,
    )
    .await;
    assert_eq!(after["data"]["note"], "edited");
    runs_on(&app.db, &id, 2).await;
    assert_no_clear_secret(&app.db, "after a masked update").await;

    // A new key through the deprecated route, then a reset: still sealed.
    let (status, body) = call(
        &app,
        "POST",
        "/connectors/vaulted/config",
        Some(json!({"name": "alpha", "apiKey": key_for("alpha", "2"), "version": "2"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    assert_no_clear_secret(&app.db, "after a config update").await;
    let (status, body) = call(
        &app,
        "POST",
        &format!("/connectors/vaulted/{id}/reset"),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    runs_on(&app.db, &id, 2).await;
    assert_no_clear_secret(&app.db, "after a reset").await;

    // A restart loads it with the right key.
    let db = stop(app).await;
    let app = start(db, &settings).await;
    runs_on(&app.db, &id, 2).await;
    assert_no_clear_secret(&app.db, "after a restart").await;
    app.shutdown.cancel();
}

#[actix_rt::test]
async fn a_mask_with_no_stored_secret_is_a_validation_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start(
        TestDb::new().await,
        &settings_with(&key_file(dir.path(), "k1", 1)),
    )
    .await;
    let (status, body) = call(
        &app,
        "POST",
        "/connectors/vaulted",
        Some(json!({"name": "beta", "apiKey": MASK})),
    )
    .await;
    // An install has nothing stored: the mask is a plain (wrong) key, refused by the hook.
    assert_eq!(status, 400, "{body}");
    app.shutdown.cancel();
}

#[actix_rt::test]
async fn clear_secrets_stored_before_the_upgrade_are_encrypted_at_first_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings_with(&key_file(dir.path(), "k1", 1));
    let db = TestDb::new().await;
    let key = tributary::ids::ConnectorKey {
        provider: "VAULTED".into(),
        reference: uuid::Uuid::new_v4(),
    };
    let id = key.id();
    db.client()
        .await
        .execute(
            "INSERT INTO connectors (id, reference, provider, name, config, lifecycle)
             VALUES ($1, $2, 'VAULTED', 'legacy', $3, 'installed')",
            &[
                &id,
                &key.reference,
                &json!({"name": "legacy", "apiKey": key_for("legacy", "1"), "version": "1"}),
            ],
        )
        .await
        .expect("a pre-upgrade row");
    let app = start(db, &settings).await;
    assert_no_clear_secret(&app.db, "after the first start").await;
    assert_eq!(stored_kids(&app.db).await, ["k1"]);
    // The value sealed is the right one: a masked update passes the config hook's check.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/connectors/vaulted/{id}/config"),
        Some(json!({"name": "legacy", "apiKey": MASK, "note": "x"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    app.shutdown.cancel();
}

fn rotate_key(config: &Path, db: &TestDb, args: &[&str]) -> (bool, String) {
    rotate_key_on(config, &db.url, args)
}

fn rotate_key_on(config: &Path, url: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("rotate-key")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("TRIBUTARY_ENCRYPTION_KEY")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run rotate-key");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[actix_rt::test]
async fn rotate_key_connects_with_the_database_tls_settings() {
    // rotate-key reads and rewrites every stored secret: it must honour [database]'s sslmode
    // & co. as serve and migrate do. A verify-full whose CA file does not exist cannot work,
    // so a rotate-key that used the settings stops naming the key; one that ignored them
    // would connect with the default (prefer, unverified) and succeed.
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = key_file(dir.path(), "k1", 1);
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[encryption]\nkey_file = {:?}\n[database]\nsslmode = \"verify-full\"\n\
             sslrootcert = {:?}\n",
            keys.display().to_string(),
            dir.path().join("no-such-ca.pem").display().to_string()
        ),
    )
    .expect("config");
    let db = TestDb::new().await;
    // TLS applies over TCP only, and the embedded harness's cluster is a Unix socket: there,
    // a TCP URL to a closed port. The CA file is read before any connection is tried, so a
    // rotate-key that used the settings still names sslrootcert; one that ignored them fails
    // on the refused connection, which names nothing of the sort.
    let url = if db.url.contains("@127.0.0.1:") {
        db.url.clone()
    } else {
        format!("postgres://postgres@127.0.0.1:{}/tributary", free_port())
    };
    let (ok, text) = rotate_key_on(&config, &url, &["--no-new-key"]);
    assert!(!ok, "rotate-key ignored the TLS settings: {text}");
    assert!(text.contains("sslrootcert"), "{text}");
}

#[actix_rt::test]
async fn rotate_key_with_the_service_running_keeps_every_connector_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = key_file(dir.path(), "k1", 1);
    let config = dir.path().join("tributary.toml");
    std::fs::write(
        &config,
        format!(
            "[encryption]\nkey_file = {:?}\n",
            keys.display().to_string()
        ),
    )
    .expect("config");
    let settings = settings_with(&keys);
    let app = start(TestDb::new().await, &settings).await;
    let names = ["one", "two", "three"];
    let mut ids = Vec::new();
    for name in names {
        ids.push(install(&app, name).await);
    }
    assert_eq!(stored_kids(&app.db).await, ["k1", "k1", "k1"]);

    let (ok, out) = rotate_key(&config, &app.db, &[]);
    assert!(ok, "{out}");
    let kids = stored_kids(&app.db).await;
    let new_kid = kids[0].clone();
    assert_ne!(new_kid, "k1", "{out}");
    assert_eq!(
        kids,
        vec![new_kid.clone(); 3],
        "no value under the old key: {out}"
    );
    assert_no_clear_secret(&app.db, "after rotation").await;

    // The running service: its tasks go on, and it reads values under the new key id (a
    // masked update decrypts the stored key) and writes under it.
    for (name, id) in names.iter().zip(&ids) {
        runs_on(&app.db, id, 2).await;
        let (status, body) = call(
            &app,
            "POST",
            &format!("/connectors/vaulted/{id}/config"),
            Some(json!({"name": name, "apiKey": MASK, "note": "after rotation"})),
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    assert_eq!(stored_kids(&app.db).await, vec![new_kid.clone(); 3]);

    // A restart loads every connector with its right key.
    let db = stop(app).await;
    let app = start(db, &settings).await;
    for id in &ids {
        runs_on(&app.db, id, 2).await;
    }

    // Dropping the old key once nothing uses it; the service still starts and runs.
    let (ok, out) = rotate_key(&config, &app.db, &["--no-new-key", "--drop-old-keys"]);
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&keys).expect("key file");
    assert!(!text.contains("k1="), "old key kept: {text}");
    assert!(text.contains(&format!("{new_kid}=")), "{text}");
    let db = stop(app).await;
    let app = start(db, &settings).await;
    for id in &ids {
        runs_on(&app.db, id, 1).await;
    }
    app.shutdown.cancel();
}

/// The startup error of a service on `db` with `settings`.
async fn start_error(db: &TestDb, settings: &Settings) -> String {
    match Application::build_with(
        settings,
        &db.url,
        registry(),
        Arc::new(tributary::sdk::SystemClock),
    )
    .await
    {
        Ok(_) => panic!("the service started"),
        Err(e) => e.to_string(),
    }
}

#[actix_rt::test]
async fn a_wrong_or_missing_key_at_start_is_an_error_naming_the_connector_and_key_id() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = start(
        TestDb::new().await,
        &settings_with(&key_file(dir.path(), "k1", 1)),
    )
    .await;
    let id = install(&app, "gamma").await;
    let db = stop(app).await;

    // Same key id, other key material.
    let e = start_error(&db, &settings_with(&key_file(dir.path(), "k1", 2))).await;
    assert!(
        e.contains(&id) && e.contains("\"k1\"") && e.contains("does not decrypt"),
        "{e}"
    );
    // A keyring without that key id.
    let e = start_error(&db, &settings_with(&key_file(dir.path(), "k7", 1))).await;
    assert!(
        e.contains(&id) && e.contains("\"k1\"") && e.contains("does not hold"),
        "{e}"
    );
    assert!(!e.contains(TOKEN), "{e}");
    // Nothing was changed by the failed starts: the right key still works.
    let app = start(db, &settings_with(&key_file(dir.path(), "k1", 1))).await;
    runs_on(&app.db, &id, 1).await;
    app.shutdown.cancel();
}

#[actix_rt::test]
async fn bad_key_material_is_an_error_naming_its_source() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = TestDb::new().await;
    let short = dir.path().join("short.key");
    std::fs::write(&short, "k1=c2hvcnQ=\n").expect("write");
    let e = start_error(&db, &settings_with(&short)).await;
    assert!(
        e.contains(&short.display().to_string()) && e.contains("32"),
        "{e}"
    );
    let missing = dir.path().join("missing.key");
    let e = start_error(&db, &settings_with(&missing)).await;
    assert!(e.contains(&missing.display().to_string()), "{e}");

    // The environment variable, through the binary: a message and a non-zero exit.
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env("DATABASE_URL", &db.url)
        .env("TRIBUTARY_ENCRYPTION_KEY", "not-a-key")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("TRIBUTARY_ENCRYPTION_KEY: entry 1"),
        "{stderr}"
    );
    assert!(!dir.path().join("encryption.key").exists());
}

#[actix_rt::test]
async fn without_a_key_source_a_key_file_is_created_0600_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = test_settings();
    settings.encryption.key_file = PathBuf::new();
    settings.data_dir = dir.path().join("data");
    let app = start(TestDb::new().await, &settings).await;
    let path = settings.data_dir.join("encryption.key");
    let meta = std::fs::metadata(&path).expect("key file created");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let created = std::fs::read_to_string(&path).expect("read");
    let id = install(&app, "delta").await;
    let db = stop(app).await;
    let app = start(db, &settings).await;
    assert_eq!(std::fs::read_to_string(&path).expect("read"), created);
    runs_on(&app.db, &id, 1).await;
    app.shutdown.cancel();
}

// ---- DUMMY-PAY's allowed roots ----

#[actix_rt::test]
async fn dummypay_reads_only_under_its_allowed_roots() {
    let root = tempfile::tempdir().expect("root");
    let outside = tempfile::tempdir().expect("outside");
    let mut settings = test_settings();
    settings.dummypay.allowed_roots = vec![root.path().to_path_buf()];
    let app = spawn_app_configured(
        TestDb::new().await,
        tributary::connectors::registry(&settings),
        &settings,
    )
    .await;
    let install = |name: &str, dir: &Path| json!({"name": name, "directory": dir.to_str().expect("utf-8"), "filePollingPeriod": "1s"});
    let refused = |status: u16, body: &Value| {
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["errorCode"], "VALIDATION", "{body}");
        let message = body["errorMessage"].as_str().unwrap_or_default();
        assert!(
            message.contains("directory") && message.contains("allowed_roots"),
            "{body}"
        );
    };

    let (status, body) = call(
        &app,
        "POST",
        "/connectors/dummy-pay",
        Some(install("out", outside.path())),
    )
    .await;
    refused(status, &body);
    std::os::unix::fs::symlink(outside.path(), root.path().join("escape")).expect("symlink");
    let (status, body) = call(
        &app,
        "POST",
        "/connectors/dummy-pay",
        Some(install("link", &root.path().join("escape/sub"))),
    )
    .await;
    refused(status, &body);
    let (status, body) = call(
        &app,
        "POST",
        "/connectors/dummy-pay",
        Some(install("dots", &root.path().join("new/../../x"))),
    )
    .await;
    refused(status, &body);

    let inside = root.path().join("inbox");
    let (status, body) = call(
        &app,
        "POST",
        "/connectors/dummy-pay",
        Some(install("in", &inside)),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();

    // A config update to elsewhere is refused and changes nothing.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/connectors/dummy-pay/{id}/config"),
        Some(install("in", outside.path())),
    )
    .await;
    refused(status, &body);
    let (_, stored) = call(
        &app,
        "GET",
        &format!("/connectors/dummy-pay/{id}/config"),
        None,
    )
    .await;
    assert_eq!(
        stored["data"]["directory"],
        inside.to_str().expect("utf-8"),
        "{stored}"
    );
    app.shutdown.cancel();
}
