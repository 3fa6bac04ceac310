//! `tributary-bench`: end-to-end figures on this machine, against its own ceiling.
//!
//! `cargo run --release --bin tributary-bench -- ingest [--files N] [--lines N]` starts the
//! real service (in this process, on a fresh database: `DATABASE_URL`'s server or an embedded
//! one), installs DUMMY-PAY connectors through the HTTP API and times file on disk → payment
//! committed for (a) N single-payment files and (b) one JSON Lines file of N payments; then
//! measures, on the same database, the same rows written by a plain client with 1,000-row
//! multi-row upserts (the batched ceiling) and one row per transaction. Prints a table and one
//! JSON line. Not a test: CI runs only a tiny smoke run of it.

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
    let db = format!("bench_{}", uuid::Uuid::new_v4().simple());
    database::ensure_database(&admin_url, &db).await?;
    let url = with_dbname(&admin_url, &db);
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

    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".parse()?;
    let app = Application::build_with(
        &settings,
        &url,
        tributary::connectors::registry(),
        Arc::new(SystemClock),
    )
    .await?;
    let port = app.port();
    let pool = app.storage().pool().clone();
    let stop = app.shutdown_token();
    let running = actix_rt::spawn(app.run_until_stopped(false));

    let files_rate = time_ingest(port, &pool, "bench-files", &files_dir, files).await?;
    let lines_rate = time_ingest(port, &pool, "bench-lines", &lines_dir, lines).await?;
    stop.cancel();
    let _ = running.await;
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
    pool.close();
    let admin = database::connect(&admin_url, 2, Duration::from_secs(10))?;
    admin
        .get()
        .await?
        .batch_execute(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
        .await?;
    Ok(())
}

fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let base = base[start..].find('/').map_or(base, |i| &base[..start + i]);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
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
        }
    })
}
