//! A database outage in the middle of ingestion, through a TCP proxy the test controls
//! (stopping the shared server would break the other tests): the service stays up, health is
//! 503 meanwhile, tasks retry instead of failing, and afterwards every payment is there once.
//! Its length and size are parameters (`TRIBUTARY_OUTAGE_SECS`, `TRIBUTARY_OUTAGE_FILES`):
//! short for CI, 15 s and thousands of files in `scripts/outage-test.sh`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::net::{TcpListener, TcpStream, UnixStream};
use tokio_postgres::config::Host;
use tokio_util::sync::CancellationToken;
use tributary::app::Application;

use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestDb, eventually, test_settings};

/// Forwards TCP connections to the database server until cut.
pub struct Proxy {
    /// The port it listens on.
    pub port: u16,
    up: Arc<AtomicBool>,
    /// Cancelled to drop every open connection; replaced when the proxy comes back.
    cut: Arc<std::sync::Mutex<CancellationToken>>,
}

impl Proxy {
    /// Starts a proxy to the server of `db`; returns it and a URL of `db` through it.
    pub async fn to(db: &TestDb) -> (Proxy, String) {
        let config: tokio_postgres::Config = db.url.parse().expect("url");
        let host = config.get_hosts()[0].clone();
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let proxy = Proxy::start(host, port).await;
        let url = format!(
            "postgres://{}@127.0.0.1:{}/{}",
            config.get_user().unwrap_or("postgres"),
            proxy.port,
            config.get_dbname().expect("dbname")
        );
        (proxy, url)
    }

    async fn start(target: Host, target_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(std::sync::Mutex::new(CancellationToken::new()));
        let (up2, cut2) = (up.clone(), cut.clone());
        actix_rt::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(client); // refused while the database is "down"
                    continue;
                }
                let token = cut2.lock().unwrap().clone();
                let target = target.clone();
                actix_rt::spawn(async move {
                    let mut client = client;
                    let forward = async {
                        match &target {
                            Host::Tcp(host) => {
                                let mut server =
                                    TcpStream::connect((host.as_str(), target_port)).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                            Host::Unix(dir) => {
                                let path = dir.join(format!(".s.PGSQL.{target_port}"));
                                let mut server = UnixStream::connect(path).await?;
                                tokio::io::copy_bidirectional(&mut client, &mut server).await
                            }
                        }
                    };
                    tokio::select! {
                        _ = forward => {}
                        _ = token.cancelled() => {}
                    }
                });
            }
        });
        Proxy { port, up, cut }
    }

    /// Drops every connection and refuses new ones.
    pub fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        let mut cut = self.cut.lock().unwrap();
        cut.cancel();
        *cut = CancellationToken::new();
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A counter of the Prometheus text for one connector (0 when absent).
fn counter(metrics: &str, name: &str, connector_id: &str) -> u64 {
    let prefix = format!("{name}{{connector_id=\"{connector_id}\",");
    metrics
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .find_map(|l| l.rsplit(' ').next())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or(0, |v| v as u64)
}

/// The outage's length and the number of files are parameters, small by default for CI;
/// `scripts/outage-test.sh` runs it with `TRIBUTARY_OUTAGE_SECS=15` and a few thousand files
/// (`TRIBUTARY_OUTAGE_FILES`, half dropped before the cut, half during it) on the release
/// build, and reads the JSON line of figures it prints.
#[actix_rt::test]
async fn ingestion_survives_a_database_outage_with_every_payment_once() {
    let outage = Duration::from_secs(env_u64("TRIBUTARY_OUTAGE_SECS", 3));
    let files = env_u64("TRIBUTARY_OUTAGE_FILES", 600).max(2);
    let (before, during) = (files / 2, files - files / 2);
    let db = TestDb::new().await;
    let (proxy, url) = Proxy::to(&db).await;

    let mut settings = test_settings();
    settings.database.timeout = Duration::from_secs(1);
    // Small commits (a few files each), so that ingestion is well under way, not done, when
    // the cut comes: DUMMY-PAY runs up to 1,000 files at once, which the default batch of
    // 1,000 writes would commit in one or two transactions.
    settings.storage.batch_size = 10;
    let app = Application::build(&settings, &url).await.expect("build");
    let root = format!("http://127.0.0.1:{}", app.port());
    let base = format!("{root}/api/payments");
    let stop = app.shutdown_token();
    let running = actix_rt::spawn(app.run_until_stopped(None));
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let status = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            http.get(format!("{base}{path}"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    };

    let dir = tempfile::tempdir().expect("tempdir");
    let mut reply = http
        .post(format!("{base}/connectors/dummy-pay"))
        .send_json(&json!({"name": "outage", "directory": dir.path().to_str(), "filePollingPeriod": "200ms"}))
        .await
        .expect("install");
    assert_eq!(reply.status().as_u16(), 201);
    let installed: serde_json::Value = reply.json().await.expect("install body");
    let connector_id = installed["data"]["connectorID"]
        .as_str()
        .expect("connectorID")
        .to_string();
    let count = || async {
        db.client()
            .await
            .query_one("SELECT count(*) FROM payments", &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };

    for i in 0..before {
        drop_file(
            dir.path(),
            &format!("a{i:06}.json"),
            &payment(&format!("a{i}"), "1", "SUCCEEDED"),
        );
    }
    // The outage, in the middle of ingestion (a quarter of the first half in): more files
    // arrive meanwhile.
    let quarter = (before as i64 / 4).max(1);
    eventually(
        "a quarter of the first files",
        Duration::from_secs(60),
        || async { count().await >= quarter },
    )
    .await;
    proxy.down();
    let cut = std::time::Instant::now();
    let at_cut = count().await;
    assert!(
        at_cut < before as i64,
        "the first files were all in before the cut"
    );
    for i in 0..during {
        drop_file(
            dir.path(),
            &format!("b{i:06}.json"),
            &payment(&format!("b{i}"), "1", "SUCCEEDED"),
        );
    }
    eventually("health to report 503", Duration::from_secs(10), || async {
        status("/_health").await == 503
    })
    .await;
    // Sample the service for the rest of the outage: it stays up, health stays 503.
    let mut health_seen = std::collections::BTreeSet::new();
    let mut samples = 0;
    while cut.elapsed() < outage {
        assert_eq!(status("/_live").await, 200, "the service must stay up");
        health_seen.insert(status("/_health").await);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        health_seen.iter().copied().collect::<Vec<_>>(),
        vec![503],
        "health during the outage"
    );
    let down_for = cut.elapsed();

    proxy.restore();
    eventually("health back to 200", Duration::from_secs(30), || async {
        status("/_health").await == 200
    })
    .await;
    // Backoff may hold a task up to twice the outage after it: allow for that.
    let recovery = Duration::from_secs(60) + outage * 3;
    eventually("every payment", recovery, || async {
        count().await == files as i64
    })
    .await;
    let row = db
        .client()
        .await
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'FAILED'),
                    count(*) FILTER (WHERE error LIKE '%panicked%')
             FROM tasks",
            &[],
        )
        .await
        .expect("tasks");
    let (failed, panicked): (i64, i64) = (row.get(0), row.get(1));
    let distinct: i64 = db
        .client()
        .await
        .query_one("SELECT count(DISTINCT reference) FROM payments", &[])
        .await
        .expect("distinct")
        .get(0);
    let metrics = http
        .get(format!("{root}/metrics"))
        .send()
        .await
        .expect("metrics")
        .body()
        .await
        .expect("metrics body");
    let metrics = String::from_utf8_lossy(&metrics);
    let retries = counter(&metrics, "tributary_task_retries_total", &connector_id);
    assert_eq!(failed, 0, "tasks must retry through an outage, not fail");
    assert_eq!(panicked, 0, "a task panicked");
    assert_eq!(distinct, files as i64, "a payment is missing or twice");
    assert!(retries > 0, "no task retried during the outage");
    println!(
        "{}",
        json!({
            "test": "outage",
            "outage_ms": down_for.as_millis() as u64,
            "files": files,
            "payments_at_cut": at_cut,
            "payments_after": count().await,
            "distinct_payments": distinct,
            "tasks_failed": failed,
            "tasks_panicked": panicked,
            "task_retries": retries,
            "health_codes_during_outage": health_seen,
            "health_samples": samples,
            "health_after": status("/_health").await,
        })
    );
    stop.cancel();
    let _ = running.await;
}

#[actix_rt::test]
async fn terminated_database_sessions_are_replaced_without_losing_a_payment() {
    let db = TestDb::new().await;
    let mut settings = test_settings();
    settings.database.timeout = Duration::from_secs(1);
    let app = Application::build(&settings, &db.url).await.expect("build");
    let base = format!("http://127.0.0.1:{}/api/payments", app.port());
    let stop = app.shutdown_token();
    let running = actix_rt::spawn(app.run_until_stopped(None));
    let http = awc::Client::default();
    let dir = tempfile::tempdir().expect("tempdir");
    let reply = http
        .post(format!("{base}/connectors/dummy-pay"))
        .send_json(&json!({"name": "kill", "directory": dir.path().to_str(), "filePollingPeriod": "100ms"}))
        .await
        .expect("install");
    assert_eq!(reply.status().as_u16(), 201);
    let admin = db.client().await;
    let count = || async {
        admin
            .query_one("SELECT count(*) FROM payments", &[])
            .await
            .expect("count")
            .get::<_, i64>(0)
    };
    for i in 0..400 {
        drop_file(
            dir.path(),
            &format!("t{i:03}.json"),
            &payment(&format!("t{i}"), "1", "SUCCEEDED"),
        );
    }
    // Terminate every session of the service (pool and instance lock) a few times mid-run.
    for _ in 0..3 {
        eventually("progress", Duration::from_secs(30), || async {
            count().await > 0
        })
        .await;
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
                &[],
            )
            .await
            .expect("terminate");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    eventually("every payment", Duration::from_secs(60), || async {
        count().await == 400
    })
    .await;
    let failed: i64 = admin
        .query_one("SELECT count(*) FROM tasks WHERE status = 'FAILED'", &[])
        .await
        .expect("failed")
        .get(0);
    assert_eq!(
        failed, 0,
        "tasks must retry, not fail, when their sessions are killed"
    );
    let health = http
        .get(format!("{base}/_health"))
        .send()
        .await
        .expect("health");
    assert_eq!(health.status().as_u16(), 200);
    stop.cancel();
    let _ = running.await;
}
