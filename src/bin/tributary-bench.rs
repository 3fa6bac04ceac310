//! `tributary-bench`: end-to-end figures on this machine, against its own ceiling.
//!
//! `cargo run --release --bin tributary-bench -- ingest [--files N] [--lines N]` starts the
//! real service (in this process, on a fresh database: `DATABASE_URL`'s server or an embedded
//! one), installs DUMMY-PAY connectors through the HTTP API and times file on disk → payment
//! committed for (a) N single-payment files and (b) one JSON Lines file of N payments; then
//! measures, on the same database, the same rows written by a plain client with 1,000-row
//! multi-row upserts (the batched ceiling) and one row per transaction. Prints a table and one
//! JSON line. `… -- api` measures `GET /payments?pageSize=100` latency under an open loop.
//! Not a test: CI runs only a tiny smoke run of each scenario.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::json;
use tributary::app::Application;
use tributary::sdk::SystemClock;
use tributary::settings::Settings;
use tributary::storage::database::with_dbname;
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};
use tributary::storage::{Pool, database};

#[derive(Parser)]
#[command(name = "tributary-bench", about = "End-to-end benchmarks of Tributary")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Subcommand)]
enum Scenario {
    /// `GET /payments?pageSize=100` on 100,000 payments: an open loop at a fixed rate (p50,
    /// p99), then the highest fixed rate whose p99 stays within 10 ms.
    Api {
        /// Payments stored.
        #[arg(long, default_value_t = 100_000)]
        payments: usize,
        /// Seconds per rate.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// The first rate, requests per second.
        #[arg(long, default_value_t = 500)]
        rate: u64,
    },
    /// Files on disk → payments committed, against the database's own ceiling.
    Ingest {
        /// Single-payment files.
        #[arg(long, default_value_t = 30_000)]
        files: usize,
        /// Lines of the JSON Lines file.
        #[arg(long, default_value_t = 300_000)]
        lines: usize,
    },
}

fn payment_json(reference: &str, amount: usize) -> String {
    format!(
        r#"{{"reference":"{reference}","amount":{amount},"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"sepa credit","createdAt":"2026-01-01T00:00:00Z"}}"#
    )
}

fn age(path: &Path) -> anyhow::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    Ok(())
}

/// A minimal HTTP/1.0 POST (keeps the bench free of an HTTP client dependency).
fn post(port: u16, path: &str, body: &serde_json::Value) -> anyhow::Result<(u16, String)> {
    let body = body.to_string();
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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

async fn count(pool: &Pool, connector_id: &str) -> anyhow::Result<i64> {
    let client = pool.get().await?;
    Ok(client
        .query_one(
            "SELECT count(*) FROM payments WHERE connector_id = $1",
            &[&connector_id],
        )
        .await?
        .get(0))
}

/// Installs a DUMMY-PAY connector on `dir` and times until `n` payments are committed.
async fn time_ingest(
    port: u16,
    pool: &Pool,
    name: &str,
    dir: &Path,
    n: usize,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let install = json!({"name": name, "directory": dir, "filePollingPeriod": "200ms"});
    // The runtime shares this thread: the blocking request must not.
    let (status, body) = tokio::task::spawn_blocking(move || {
        post(port, "/api/payments/connectors/dummy-pay", &install)
    })
    .await??;
    if status != 201 {
        bail!("install failed: {status} {body}");
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)?["data"]["connectorID"]
        .as_str()
        .context("connectorID")?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(1800);
    while count(pool, &id).await? < n as i64 {
        if Instant::now() > deadline {
            bail!("{name}: not done after 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The database's own ceiling: the same rows by a plain client, batched and one per transaction.
async fn ceilings(pool: &Pool, rows: usize) -> anyhow::Result<(f64, f64)> {
    let mut client = pool.get().await?;
    client
        .batch_execute(
            "INSERT INTO connectors (id, reference, provider, name, config, lifecycle)
             VALUES ('ceiling', gen_random_uuid(), 'DUMMY-PAY', 'ceiling', '{}', 'installed')
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let upsert = |n: usize, offset: usize| {
        let values: Vec<String> = (0..n)
            .map(|i| {
                let r = offset + i;
                format!(
                    "('ceiling-{r}', 'ceiling', 'ref-{r}', 'PAY-IN', 'SUCCEEDED', 'sepa credit', 'EUR/2', {r}, {r}, '2026-01-01T00:00:00Z', '{{}}')"
                )
            })
            .collect();
        format!(
            "INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset, amount,
                                   initial_amount, created_at, raw) VALUES {}
             ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status
             WHERE payments.status IS DISTINCT FROM EXCLUDED.status",
            values.join(",")
        )
    };
    let started = Instant::now();
    let mut done = 0;
    while done < rows {
        let n = (rows - done).min(1000);
        let tx = client.transaction().await?;
        tx.batch_execute(&upsert(n, done)).await?;
        tx.commit().await?;
        done += n;
    }
    let batched = rows as f64 / started.elapsed().as_secs_f64();
    let single_rows = (rows / 10).clamp(100, 5_000);
    let started = Instant::now();
    for i in 0..single_rows {
        let tx = client.transaction().await?;
        tx.batch_execute(&upsert(1, rows + i)).await?;
        tx.commit().await?;
    }
    let single = single_rows as f64 / started.elapsed().as_secs_f64();
    Ok((batched, single))
}

async fn ingest(admin_url: String, files: usize, lines: usize) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let (files_dir, lines_dir) = (work.path().join("files"), work.path().join("lines"));
    std::fs::create_dir_all(&files_dir)?;
    std::fs::create_dir_all(&lines_dir)?;
    eprintln!("writing {files} files and a {lines}-line file…");
    for i in 0..files {
        let path = files_dir.join(format!("p{i:07}.json"));
        std::fs::write(&path, payment_json(&format!("file-{i}"), i))?;
        age(&path)?;
    }
    let big = lines_dir.join("payments.jsonl");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&big)?);
        for i in 0..lines {
            writeln!(out, "{}", payment_json(&format!("line-{i}"), i))?;
        }
    }
    age(&big)?;

    let mut service = Service::start(&admin_url).await?;
    let (port, pool) = (service.port, service.pool.clone());
    let files_rate = time_ingest(port, &pool, "bench-files", &files_dir, files).await?;
    let lines_rate = time_ingest(port, &pool, "bench-lines", &lines_dir, lines).await?;
    service.stop().await;
    let (batched, single) = ceilings(&pool, lines.max(files)).await?;

    println!(
        "| case | payments/s | batched ceiling | ours / ceiling | single-row rate | ours / single-row |"
    );
    println!("|---|---|---|---|---|---|");
    for (case, rate) in [
        (format!("{files} single-payment files"), files_rate),
        (format!("JSON Lines, {lines} payments"), lines_rate),
    ] {
        println!(
            "| {case} | {rate:.0} | {batched:.0} | {:.2} | {single:.0} | {:.1}x |",
            rate / batched,
            rate / single
        );
    }
    println!(
        "{}",
        json!({
            "bench": "ingest",
            "files": files, "files_payments_per_s": files_rate.round(),
            "lines": lines, "lines_payments_per_s": lines_rate.round(),
            "batched_ceiling_rows_per_s": batched.round(),
            "single_row_rows_per_s": single.round(),
            "files_vs_ceiling": files_rate / batched, "lines_vs_ceiling": lines_rate / batched,
            "files_vs_single_row": files_rate / single, "lines_vs_single_row": lines_rate / single,
        })
    );
    service.remove().await
}

/// The real service, in this process, on a fresh database of its own.
struct Service {
    admin_url: String,
    db: String,
    port: u16,
    pool: Pool,
    stop: tokio_util::sync::CancellationToken,
    running: Option<actix_rt::task::JoinHandle<std::io::Result<()>>>,
}

impl Service {
    async fn start(admin_url: &str) -> anyhow::Result<Service> {
        let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
        database::ensure_database(admin_url, &db).await?;
        let mut settings = Settings::default();
        settings.server.bind = "127.0.0.1:0".parse()?;
        let app = Application::build_with(
            &settings,
            &with_dbname(admin_url, &db),
            tributary::connectors::registry(),
            Arc::new(SystemClock),
        )
        .await?;
        Ok(Service {
            admin_url: admin_url.to_string(),
            db,
            port: app.port(),
            pool: app.storage().pool().clone(),
            stop: app.shutdown_token(),
            running: Some(actix_rt::spawn(app.run_until_stopped(false))),
        })
    }

    /// Stops the service (the pool stays usable for ceiling measurements).
    async fn stop(&mut self) {
        self.stop.cancel();
        if let Some(running) = self.running.take() {
            let _ = running.await;
        }
    }

    /// Drops the database.
    async fn remove(mut self) -> anyhow::Result<()> {
        self.stop().await;
        self.pool.close();
        let admin = database::connect(&self.admin_url, 2, Duration::from_secs(10))?;
        admin
            .get()
            .await?
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.db))
            .await?;
        Ok(())
    }
}

/// Latencies of an open loop: one request every 1/rate s, whatever the answers do.
async fn open_loop(url: &str, rate: u64, seconds: u64) -> (Vec<Duration>, usize) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let request = client.get(url);
        handles.push(actix_rt::spawn(async move {
            let sent = Instant::now();
            match request.send().await {
                Ok(mut r) if r.status().is_success() => {
                    let _ = r.body().limit(64 << 20).await;
                    Some(sent.elapsed())
                }
                _ => None,
            }
        }));
    }
    let mut latencies = Vec::with_capacity(handles.len());
    let mut failed = 0;
    for h in handles {
        match h.await {
            Ok(Some(d)) => latencies.push(d),
            _ => failed += 1,
        }
    }
    latencies.sort();
    (latencies, failed)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

async fn api(admin_url: String, payments: usize, seconds: u64, rate: u64) -> anyhow::Result<()> {
    let mut service = Service::start(&admin_url).await?;
    let (port, pool) = (service.port, service.pool.clone());
    {
        let client = pool.get().await?;
        client
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
                 ANALYZE payments;"
            ))
            .await?;
    }
    let target = format!("http://127.0.0.1:{port}/api/payments/payments?pageSize=100");
    println!("| rate (req/s) | p50 (ms) | p99 (ms) | failed |");
    println!("|---|---|---|---|");
    let mut best = 0;
    let mut first = None;
    let mut rate_now = rate;
    loop {
        let (latencies, failed) = open_loop(&target, rate_now, seconds).await;
        let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
        println!("| {rate_now} | {p50:.2} | {p99:.2} | {failed} |");
        first.get_or_insert((p50, p99));
        if p99 > 10.0 || failed > 0 || rate_now >= 20_000 {
            break;
        }
        best = rate_now;
        rate_now *= 2;
    }
    let (p50, p99) = first.unwrap_or((f64::NAN, f64::NAN));
    println!(
        "{}",
        json!({
            "bench": "api", "payments": payments, "rate": rate, "p50_ms": p50, "p99_ms": p99,
            "highest_rate_with_p99_within_10ms": best,
        })
    );
    service.stop().await;
    service.remove().await
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (admin_url, _embedded, _dir) = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => (url, None, None),
        _ => {
            let dir = tempfile::tempdir_in("/tmp")?;
            let pg = EmbeddedPostgres::start(&EmbeddedConfig::for_data_dir(
                dir.path(),
                Path::new(""),
                5432,
            ))?;
            (pg.url("postgres"), Some(pg), Some(dir))
        }
    };
    actix_rt::System::new().block_on(async move {
        match cli.scenario {
            Scenario::Ingest { files, lines } => ingest(admin_url, files, lines).await,
            Scenario::Api {
                payments,
                seconds,
                rate,
            } => api(admin_url, payments, seconds, rate).await,
        }
    })
}
