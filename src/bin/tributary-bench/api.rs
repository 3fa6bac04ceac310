//! The `api` scenario: `GET /payments?pageSize=100` latency under an open loop at a fixed rate,
//! then the cost of authentication: the same request at the first rate without a token (auth
//! off), with a static token and with a JWT (ES256), in the same run on the same data.

use std::time::{Duration, Instant};

use serde_json::json;

use tributary::settings::{AuthSettings, JwtSettings, StaticTokenSettings};

use crate::service::Service;

/// Latencies of an open loop: one request every 1/rate s, whatever the answers do.
async fn open_loop(
    url: &str,
    token: Option<&str>,
    rate: u64,
    seconds: u64,
) -> (Vec<Duration>, usize) {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let total = rate * seconds;
    let start = tokio::time::Instant::now();
    let mut handles = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let request = match token {
            Some(token) => client
                .get(url)
                .insert_header(("Authorization", format!("Bearer {token}"))),
            None => client.get(url),
        };
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
    let service = Service::start(&admin_url).await?;
    let (port, pool) = (service.port, service.pool.clone());
    crate::service::seed_payments(&pool, payments).await?;
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
        open_loop(&target, None, rate_now, 2).await;
        let (latencies, failed) = open_loop(&target, None, rate_now, seconds).await;
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

    // The cost of authentication, at the first rate: auth off, then (the same database, a
    // service restarted with [[auth.tokens]] and [auth.jwt]) a static token and a JWT.
    let measure = |target: String, token: Option<String>| async move {
        open_loop(&target, token.as_deref(), rate, 2).await;
        let (latencies, failed) = open_loop(&target, token.as_deref(), rate, seconds).await;
        (
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
            failed,
        )
    };
    let none = measure(target.clone(), None).await;
    let dir = tempfile::tempdir()?;
    let (settings, static_token, jwt) = auth_settings(dir.path())?;
    let (static_us, jwt_us) = check_cost(&settings, &static_token, &jwt).await?;
    let service = service.restart_with(|s| s.auth = settings).await?;
    let target = format!(
        "http://127.0.0.1:{}/api/payments/payments?pageSize=100",
        service.port
    );
    let with_static = measure(target.clone(), Some(static_token)).await;
    let with_jwt = measure(target.clone(), Some(jwt)).await;
    println!();
    println!(
        "CPU per check, in this process: static token {static_us:.2} µs, JWT (ES256) {jwt_us:.1} µs"
    );
    println!("| auth at {rate} req/s | p50 (ms) | p99 (ms) | failed |");
    println!("|---|---|---|---|");
    for (name, (p50, p99, failed)) in [
        ("none (auth off)", none),
        ("static token", with_static),
        ("JWT (ES256)", with_jwt),
    ] {
        println!("| {name} | {p50:.2} | {p99:.2} | {failed} |");
    }
    println!(
        "{}",
        json!({
            "bench": "api", "payments": payments, "rate": rate, "p50_ms": p50, "p99_ms": p99,
            "highest_rate_with_p99_within_10ms": best,
            "auth": {
                "none": {"p50_ms": none.0, "p99_ms": none.1, "failed": none.2},
                "static_token": {"p50_ms": with_static.0, "p99_ms": with_static.1, "failed": with_static.2},
                "jwt_es256": {"p50_ms": with_jwt.0, "p99_ms": with_jwt.1, "failed": with_jwt.2},
                "check_us": {"static_token": static_us, "jwt_es256": jwt_us},
            },
        })
    );
    service.remove().await
}

/// The CPU time of one check, averaged over many, outside HTTP: a static token's hash and
/// lookup, and a JWT's verification (header, key, ES256 signature, claims).
async fn check_cost(settings: &AuthSettings, token: &str, jwt: &str) -> anyhow::Result<(f64, f64)> {
    use tributary::api::auth::jwt::JwtVerifier;
    use tributary::api::auth::tokens::StaticTokens;
    let tokens = StaticTokens::new(&settings.tokens);
    let n = 100_000;
    let started = Instant::now();
    for _ in 0..n {
        anyhow::ensure!(
            tokens.find(std::hint::black_box(token)).is_some(),
            "static token"
        );
    }
    let static_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    let jwt_settings = settings
        .jwt
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("no [auth.jwt]"))?;
    let verifier = JwtVerifier::new(jwt_settings).await?;
    let n = 2_000;
    let started = Instant::now();
    for _ in 0..n {
        verifier
            .verify(std::hint::black_box(jwt))
            .await
            .map_err(|e| anyhow::anyhow!("jwt: {e}"))?;
    }
    let jwt_us = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    Ok((static_us, jwt_us))
}

/// Auth settings with one static token and a JWKS file of one EC P-256 key (the committed
/// test key tests/fixtures/auth/ec1.pem), and a token of each kind.
fn auth_settings(dir: &std::path::Path) -> anyhow::Result<(AuthSettings, String, String)> {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, jwk::Jwk};
    use sha2::{Digest, Sha256};
    let static_token = "bench-static-token".to_string();
    let key = EncodingKey::from_ec_pem(include_bytes!("../../../tests/fixtures/auth/ec1.pem"))?;
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::ES256)?;
    jwk.common.key_id = Some("bench".into());
    let jwks = dir.join("jwks.json");
    std::fs::write(&jwks, json!({ "keys": [jwk] }).to_string())?;
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some("bench".into());
    let now = jsonwebtoken::get_current_timestamp();
    let jwt = jsonwebtoken::encode(
        &header,
        &json!({
            "sub": "bench", "iss": "bench-issuer", "aud": "tributary",
            "exp": now + 3600, "scope": "payments:read",
        }),
        &key,
    )?;
    let settings = AuthSettings {
        tokens: vec![StaticTokenSettings {
            name: "bench".into(),
            sha256: hex::encode(Sha256::digest(static_token.as_bytes())),
            scopes: vec!["payments:read".into()],
        }],
        jwt: Some(JwtSettings {
            jwks_file: Some(jwks),
            jwks_url: None,
            issuer: "bench-issuer".into(),
            audience: "tributary".into(),
            refresh_interval: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
        }),
    };
    Ok((settings, static_token, jwt))
}
