//! The `latency` scenario: the distribution of single requests' latencies for the routes an
//! operator's dashboard watches — `GET /payments?pageSize=100`, `GET /connectors` and a
//! DUMMY-PAY install (`POST /connectors/dummy-pay`) — one request at a time (a closed loop,
//! so that each figure is a request's own time, not a queue's). The figures chose the buckets
//! of `tributary_http_request_duration_seconds` (docs/performance.md).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::service::Service;

/// Milliseconds at the quantiles the table shows.
fn quantiles(mut samples: Vec<Duration>) -> [f64; 5] {
    samples.sort();
    let at = |p: f64| {
        let i = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i].as_secs_f64() * 1000.0
    };
    [at(0.01), at(0.50), at(0.90), at(0.99), at(1.0)]
}

/// Times `n` sequential sends of the request `make(i)` builds; each must succeed.
async fn time<F>(n: usize, mut make: F) -> anyhow::Result<Vec<Duration>>
where
    F: FnMut(usize) -> awc::SendClientRequest,
{
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let sent = Instant::now();
        let mut reply = make(i).await.map_err(|e| anyhow::anyhow!("request: {e}"))?;
        let _ = reply.body().limit(64 << 20).await;
        samples.push(sent.elapsed());
        anyhow::ensure!(
            reply.status().is_success(),
            "request {i} answered {}",
            reply.status()
        );
    }
    Ok(samples)
}

/// Runs the scenario.
pub async fn run(admin_url: String, payments: usize, requests: usize) -> anyhow::Result<()> {
    let service = Service::start(&admin_url).await?;
    crate::service::seed_payments(&service.pool, payments).await?;
    crate::service::settle(&service.pool).await?;
    let base = format!("http://127.0.0.1:{}/api/payments", service.port);
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    let dirs = tempfile::tempdir()?;
    // Warm-up, not counted: connections opened, statements prepared.
    time(50, |_| {
        http.get(format!("{base}/payments?pageSize=100")).send()
    })
    .await?;
    time(50, |_| http.get(format!("{base}/connectors")).send()).await?;

    let payments_page = time(requests, |_| {
        http.get(format!("{base}/payments?pageSize=100")).send()
    })
    .await?;
    // Installs first, so that the connector list is the size a real one might be.
    let installs = (requests / 10).max(10);
    let install = time(installs, |i| {
        let dir = dirs.path().join(format!("c{i}"));
        let _ = std::fs::create_dir_all(&dir);
        http.post(format!("{base}/connectors/dummy-pay")).send_json(
            &json!({"name": format!("latency-{i}"), "directory": dir, "filePollingPeriod": "1h"}),
        )
    })
    .await?;
    let connectors = time(requests, |_| http.get(format!("{base}/connectors")).send()).await?;

    println!("| route | requests | p1 (ms) | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |");
    println!("|---|---|---|---|---|---|---|");
    let mut figures = serde_json::Map::new();
    for (route, samples) in [
        ("GET /payments?pageSize=100", payments_page),
        ("GET /connectors", connectors),
        ("POST /connectors/dummy-pay", install),
    ] {
        let n = samples.len();
        let [p1, p50, p90, p99, max] = quantiles(samples);
        println!("| {route} | {n} | {p1:.2} | {p50:.2} | {p90:.2} | {p99:.2} | {max:.2} |");
        figures.insert(
            route.to_string(),
            json!({"p1_ms": p1, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max}),
        );
    }
    // The service's own view, from its histogram: time to the response head, without the
    // client, the body's transfer or the loop's scheduling.
    let mut scrape = http
        .get(format!("http://127.0.0.1:{}/metrics", service.port))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("scrape: {e}"))?;
    let text = String::from_utf8(scrape.body().limit(64 << 20).await?.to_vec())?;
    let server_side = |suffix: &str, route: &str| -> f64 {
        text.lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "tributary_http_request_duration_seconds_{suffix}{{"
                )) && l.contains(&format!("route=\"{route}\""))
                    && l.contains("status=\"2")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    println!();
    println!("| route template | server-side mean (ms) |");
    println!("|---|---|");
    for route in [
        "/api/payments/payments",
        "/api/payments/connectors",
        "/api/payments/connectors/{provider}",
    ] {
        let mean = server_side("sum", route) / server_side("count", route) * 1000.0;
        println!("| {route} | {mean:.2} |");
        figures.insert(format!("server mean {route}"), json!(mean));
    }
    println!(
        "{}",
        json!({"bench": "latency", "payments": payments, "requests": requests, "routes": figures})
    );
    service.remove().await
}
