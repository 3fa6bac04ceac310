//! The `api` scenario: `GET /payments?pageSize=100` latency under an open loop at a fixed rate.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::service::Service;

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

/// Runs the scenario.
pub async fn run(
    admin_url: String,
    payments: usize,
    seconds: u64,
    rate: u64,
) -> anyhow::Result<()> {
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
                 -- Every ingested payment has its first adjustment; the page reads them too.
                 INSERT INTO payment_adjustments (payment_id, reference, created_at, status,
                                                  amount, raw)
                 SELECT id, reference, created_at, status, amount, raw FROM payments;"
            ))
            .await?;
    }
    crate::service::settle(&pool).await?;
    let target = format!("http://127.0.0.1:{port}/api/payments/payments?pageSize=100");
    println!("| rate (req/s) | p50 (ms) | p99 (ms) | failed |");
    println!("|---|---|---|---|");
    let mut best = 0;
    let mut first = None;
    let mut rate_now = rate;
    loop {
        // Warm-up at the same rate, not counted: the first requests open HTTP connections,
        // grow the read pool (a PostgreSQL backend each) and prepare its statements.
        open_loop(&target, rate_now, 2).await;
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
