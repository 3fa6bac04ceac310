//! The `publish` scenario: events published to a local NATS JetStream (a `nats-server -js`
//! this bench starts) against the rate they are produced. (a) a backlog: N payments ingested
//! with no publisher, then the service restarted with `[events.nats]` and timed until the
//! stream holds every event; (b) live: N more payments ingested with the publisher running,
//! timed until they are committed and until they are all on the stream.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_nats::jetstream;
use serde_json::json;
use tributary::settings::NatsSettings;
use tributary::storage::Pool;

use crate::ingest::{age, ingested, payment_json};
use crate::service::{Service, request};

const STREAM: &str = "bench";
const SUBJECT: &str = "bench.events";

/// A `nats-server -js` on a free port with a store of its own, killed when dropped.
struct NatsServer {
    port: u16,
    child: Child,
    _store: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> anyhow::Result<NatsServer> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let store = tempfile::tempdir()?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(store.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run nats-server (Debian: apt-get install nats-server)")?;
        let server = NatsServer {
            port,
            child,
            _store: store,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nats-server did not listen within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_lines(dir: &Path, prefix: &str, n: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("payments.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        for i in 0..n {
            writeln!(out, "{}", payment_json(&format!("{prefix}-{i}"), i))?;
        }
    }
    age(&path)
}

/// Installs a DUMMY-PAY connector on `dir`; returns its id.
async fn install(service: &Service, name: &str, dir: &Path) -> anyhow::Result<String> {
    let port = service.port;
    let body = json!({"name": name, "directory": dir});
    let (status, body) = tokio::task::spawn_blocking(move || {
        request(
            port,
            "POST",
            "/api/payments/connectors/dummy-pay",
            Some(&body),
        )
    })
    .await??;
    if status != 201 {
        bail!("install failed: {status} {body}");
    }
    Ok(
        serde_json::from_str::<serde_json::Value>(&body)?["data"]["connectorID"]
            .as_str()
            .context("connectorID")?
            .to_string(),
    )
}

async fn wait_ingested(id: &str, n: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    while ingested(id) < n as u64 {
        if Instant::now() > deadline {
            bail!("{n} payments not ingested after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Ok(())
}

async fn outbox_events(pool: &Pool) -> anyhow::Result<u64> {
    let n: i64 = pool
        .get()
        .await?
        .query_one("SELECT count(*) FROM events", &[])
        .await?
        .get(0);
    Ok(n as u64)
}

/// Waits until the stream holds `n` messages.
async fn wait_stream(url: &str, n: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    let context = jetstream::new(async_nats::connect(url).await?);
    loop {
        let messages = match context.get_stream(STREAM).await {
            Ok(mut stream) => stream.info().await.map(|i| i.state.messages).unwrap_or(0),
            Err(_) => 0,
        };
        if messages >= n {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the stream holds {messages} of {n} events after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs the scenario.
pub async fn run(admin_url: String, lines: usize) -> anyhow::Result<()> {
    let nats = NatsServer::start()?;
    let work = tempfile::tempdir()?;
    let (backlog_dir, live_dir) = (work.path().join("backlog"), work.path().join("live"));
    write_lines(&backlog_dir, "backlog", lines)?;
    write_lines(&live_dir, "live", lines)?;

    // (a) A backlog: ingested with no publisher, then drained.
    let service = Service::start(&admin_url).await?;
    let started = Instant::now();
    let id = install(&service, "bench-backlog", &backlog_dir).await?;
    wait_ingested(&id, lines).await?;
    let ingest_alone = lines as f64 / started.elapsed().as_secs_f64();
    let backlog = outbox_events(&service.pool).await?;
    let settings = NatsSettings {
        url: nats.url(),
        stream: STREAM.into(),
        subject: SUBJECT.into(),
    };
    let started = Instant::now();
    let service = service
        .restart_with(|s| s.events.nats = Some(settings))
        .await?;
    wait_stream(&nats.url(), backlog).await?;
    let drain = backlog as f64 / started.elapsed().as_secs_f64();

    // (b) Live: ingestion with the publisher running.
    let started = Instant::now();
    let id = install(&service, "bench-live", &live_dir).await?;
    wait_ingested(&id, lines).await?;
    let ingested_in = started.elapsed();
    let total = outbox_events(&service.pool).await?;
    wait_stream(&nats.url(), total).await?;
    let published_in = started.elapsed();
    let live_events = total - backlog;
    let live_ingest = lines as f64 / ingested_in.as_secs_f64();
    let live_publish = live_events as f64 / published_in.as_secs_f64();
    let lag_ms = (published_in - ingested_in).as_secs_f64() * 1000.0;

    println!(
        "| case | events | ingestion, payments/s | published, events/s | last event on the stream after ingestion ended |"
    );
    println!("|---|---|---|---|---|");
    println!(
        "| backlog drained (publisher started after ingestion) | {backlog} | {ingest_alone:.0} | {drain:.0} | - |"
    );
    println!(
        "| live (publisher running during ingestion) | {live_events} | {live_ingest:.0} | {live_publish:.0} | {lag_ms:.0} ms |"
    );
    println!(
        "{}",
        json!({
            "bench": "publish",
            "lines": lines,
            "backlog_events": backlog,
            "ingest_alone_payments_per_s": ingest_alone.round(),
            "drain_events_per_s": drain.round(),
            "live_events": live_events,
            "live_ingest_payments_per_s": live_ingest.round(),
            "live_publish_events_per_s": live_publish.round(),
            "live_lag_ms": lag_ms.round(),
        })
    );
    service.remove().await
}
