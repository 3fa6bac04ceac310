//! The `ingest` scenario: files on disk → payments committed, against the database's own
//! ceiling (the same rows by a plain client, batched and one per transaction), with the
//! outbox off and on (`events.enabled`) in the same run: what writing every change's event
//! costs ingestion.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use serde_json::json;
use tributary::runtime::host::INGESTED_METRIC;
use tributary::storage::Pool;

use crate::service::{Service, request};

pub(crate) fn payment_json(reference: &str, amount: usize) -> String {
    format!(
        r#"{{"reference":"{reference}","amount":{amount},"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"sepa credit","createdAt":"2026-01-01T00:00:00Z"}}"#
    )
}

pub(crate) fn age(path: &Path) -> anyhow::Result<()> {
    std::fs::File::options()
        .write(true)
        .open(path)?
        .set_modified(SystemTime::now() - Duration::from_secs(60))?;
    Ok(())
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

async fn count_events(pool: &Pool, connector_id: &str) -> anyhow::Result<i64> {
    let client = pool.get().await?;
    Ok(client
        .query_one(
            "SELECT count(*) FROM events WHERE connector_id = $1",
            &[&connector_id],
        )
        .await?
        .get(0))
}

/// Payments the service reports committed for `connector_id` (its Prometheus counter).
pub(crate) fn ingested(connector_id: &str) -> u64 {
    let mut text = String::new();
    tributary::monitoring::connectors::render(&mut text);
    let labels = format!("connector_id=\"{connector_id}\"");
    text.lines()
        .filter(|l| l.starts_with(INGESTED_METRIC) && l.contains(&labels))
        .filter(|l| l.contains("kind=\"payment_inserted\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Installs a DUMMY-PAY connector on `dir`, times until `n` payments are committed, then
/// uninstalls it and lets the database settle, so that the next case starts as this one did:
/// nothing else polling, no checkpoint or vacuum owed by earlier work.
/// `events` says whether the outbox is on: the run fails if the outbox did not get one event
/// per payment (on) or got any (off), so the two figures measure what they claim to.
async fn time_ingest(
    service: &Service,
    name: &str,
    dir: &Path,
    n: usize,
    events: bool,
) -> anyhow::Result<f64> {
    let (port, pool) = (service.port, &service.pool);
    let stats = service.storage.stats();
    let counters = || {
        [
            &stats.transactions,
            &stats.writes,
            &stats.merged_writes,
            &stats.busy_micros,
            &stats.failed_writes,
            &stats.isolated_batches,
        ]
        .map(|c| c.load(Ordering::Relaxed))
    };
    let before = counters();
    let started = Instant::now();
    // The connector's default polling period: the first poll runs at install and sees every
    // file (they are aged), so the period only decides how often listing competes with
    // ingestion — as it would in production.
    let install = json!({"name": name, "directory": dir});
    // The runtime shares this thread: the blocking request must not.
    let (status, body) = tokio::task::spawn_blocking(move || {
        request(
            port,
            "POST",
            "/api/payments/connectors/dummy-pay",
            Some(&install),
        )
    })
    .await??;
    if status != 201 {
        bail!("install failed: {status} {body}");
    }
    let id = serde_json::from_str::<serde_json::Value>(&body)?["data"]["connectorID"]
        .as_str()
        .context("connectorID")?
        .to_string();
    // Watched through the service's own counter: a `count(*)` every few milliseconds would
    // scan the growing table and take the database's time from the service being measured.
    let deadline = Instant::now() + Duration::from_secs(1800);
    while ingested(&id) < n as u64 {
        if Instant::now() > deadline {
            bail!("{name}: not done after 30 minutes");
        }
        // Rendering computes every histogram's quantiles: often enough, not more.
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let elapsed = started.elapsed();
    let stored = count(pool, &id).await?;
    if stored != n as i64 {
        bail!("{name}: the counter says {n} payments were committed, the table has {stored}");
    }
    let appended = count_events(pool, &id).await?;
    if (events && appended < n as i64) || (!events && appended != 0) {
        bail!("{name}: {appended} events for {n} payments with the outbox {events}");
    }
    let [transactions, writes, merged, busy, failed, isolated] = counters();
    let busy = (busy - before[3]) as f64 / 1e6 / elapsed.as_secs_f64();
    eprintln!(
        "{name}: {} transactions, {} writes ({} merged, {} failed, {} batches isolated), storage actor busy {:.0} % of {:.2} s",
        transactions - before[0],
        writes - before[1],
        merged - before[2],
        failed - before[4],
        isolated - before[5],
        busy * 100.0,
        elapsed.as_secs_f64()
    );
    let (status, body) = tokio::task::spawn_blocking(move || {
        request(
            port,
            "DELETE",
            &format!("/api/payments/connectors/dummy-pay/{id}"),
            None,
        )
    })
    .await??;
    if status >= 300 {
        bail!("uninstall failed: {status} {body}");
    }
    crate::service::settle(pool).await?;
    Ok(n as f64 / elapsed.as_secs_f64())
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

/// One round's rates, payments/s: both cases with the outbox off and on.
struct Round {
    files_off: f64,
    lines_off: f64,
    files_on: f64,
    lines_on: f64,
}

/// The round whose `ratio` is the median (the lower one of an even count).
fn median_round(rounds: &[Round], ratio: impl Fn(&Round) -> f64) -> &Round {
    let mut order: Vec<&Round> = rounds.iter().collect();
    order.sort_by(|a, b| ratio(a).total_cmp(&ratio(b)));
    order[(order.len() - 1) / 2]
}

/// Runs the scenario: `rounds` rounds of both cases with the outbox off and on.
pub async fn run(
    admin_url: String,
    files: usize,
    lines: usize,
    rounds: usize,
) -> anyhow::Result<()> {
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

    // The two modes alternate — off, on | on, off | off, on … — so that neither always runs
    // first on a colder machine or always pays for what the earlier cases left behind (table
    // growth, autovacuum debt); each round gives one on/off ratio per case, and the table
    // shows the median round.
    let mut enabled = false;
    let mut service = Service::start_with(&admin_url, |s| s.events.enabled = enabled).await?;
    let mut results: Vec<Round> = Vec::new();
    for round in 0..rounds.max(1) {
        let mut figures = [(0.0, 0.0); 2]; // [off, on] × (files, lines)
        for leg in 0..2 {
            if leg == 1 {
                enabled = !enabled;
                service = service.restart_with(|s| s.events.enabled = enabled).await?;
            }
            let mode = if enabled { "on" } else { "off" };
            let files_rate = time_ingest(
                &service,
                &format!("bench-files-{mode}-{round}"),
                &files_dir,
                files,
                enabled,
            )
            .await?;
            let lines_rate = time_ingest(
                &service,
                &format!("bench-lines-{mode}-{round}"),
                &lines_dir,
                lines,
                enabled,
            )
            .await?;
            figures[usize::from(enabled)] = (files_rate, lines_rate);
        }
        let round = Round {
            files_off: figures[0].0,
            lines_off: figures[0].1,
            files_on: figures[1].0,
            lines_on: figures[1].1,
        };
        eprintln!(
            "round {}: files on/off {:.3}, lines on/off {:.3}",
            results.len() + 1,
            round.files_on / round.files_off,
            round.lines_on / round.lines_off
        );
        results.push(round);
    }
    service.stop().await;
    let pool = service.pool.clone();
    let (batched, single) = ceilings(&pool, lines.max(files)).await?;

    let files_round = median_round(&results, |r| r.files_on / r.files_off);
    let lines_round = median_round(&results, |r| r.lines_on / r.lines_off);
    let (files_rate, files_off) = (files_round.files_on, files_round.files_off);
    let (lines_rate, lines_off) = (lines_round.lines_on, lines_round.lines_off);
    println!(
        "| case | payments/s | batched ceiling | ours / ceiling | single-row rate | ours / single-row | events off, payments/s | on / off (median of {}) |",
        results.len()
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (case, rate, off) in [
        (
            format!("{files} single-payment files"),
            files_rate,
            files_off,
        ),
        (
            format!("JSON Lines, {lines} payments"),
            lines_rate,
            lines_off,
        ),
    ] {
        println!(
            "| {case} | {rate:.0} | {batched:.0} | {:.2} | {single:.0} | {:.1}x | {off:.0} | {:.3} |",
            rate / batched,
            rate / single,
            rate / off
        );
    }
    let ratios = |f: fn(&Round) -> f64| -> Vec<f64> {
        results
            .iter()
            .map(|r| (f(r) * 1000.0).round() / 1000.0)
            .collect()
    };
    println!(
        "{}",
        json!({
            "bench": "ingest",
            "files": files, "files_payments_per_s": files_rate.round(),
            "lines": lines, "lines_payments_per_s": lines_rate.round(),
            "rounds": results.len(),
            "files_events_off_payments_per_s": files_off.round(),
            "lines_events_off_payments_per_s": lines_off.round(),
            "files_events_on_vs_off": files_rate / files_off,
            "lines_events_on_vs_off": lines_rate / lines_off,
            "files_events_on_vs_off_each_round": ratios(|r| r.files_on / r.files_off),
            "lines_events_on_vs_off_each_round": ratios(|r| r.lines_on / r.lines_off),
            "batched_ceiling_rows_per_s": batched.round(),
            "single_row_rows_per_s": single.round(),
            "files_vs_ceiling": files_rate / batched, "lines_vs_ceiling": lines_rate / batched,
            "files_vs_single_row": files_rate / single, "lines_vs_single_row": lines_rate / single,
        })
    );
    service.remove().await
}
