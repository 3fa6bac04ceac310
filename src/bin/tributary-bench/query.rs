//! The `query` scenario: filtered pages of `GET /payments` (Formance's query language, sort)
//! on N payments, one request at a time (closed loop: each figure is a request's own time),
//! with the plan PostgreSQL chooses for each page's statement (the same statement the API
//! runs, built by `storage::queries::payments::page_sql`) and its execution time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use tributary::api::pagination::SortColumn;
use tributary::api::payments::PAYMENT_FIELDS;
use tributary::api::query::{parse::parse, sql::compile};
use tributary::storage::queries::page::Keyset;
use tributary::storage::queries::payments::{PaymentFilter, page_sql};

use crate::service::Service;

/// One case: a name, the `query` (JSON) and the sort.
struct Case {
    name: &'static str,
    query: Value,
    sort: SortColumn,
    ascending: bool,
}

fn cases() -> Vec<Case> {
    let desc = |name, query| Case {
        name,
        query,
        sort: SortColumn::CreatedAt,
        ascending: false,
    };
    vec![
        desc("no filter (baseline)", json!({})),
        desc(
            "status = FAILED (1 in 4)",
            json!({"$match": {"status": "FAILED"}}),
        ),
        desc(
            "metadata[order] = 42 (1 in 1,000)",
            json!({"$match": {"metadata[order]": "42"}}),
        ),
        desc(
            "status AND metadata",
            json!({"$and": [{"$match": {"status": "PENDING"}},
                            {"$match": {"metadata[order]": "42"}}]}),
        ),
        desc(
            "50,000 <= amount < 50,100 (not indexed)",
            json!({"$and": [{"$gte": {"amount": 50000}}, {"$lt": {"amount": 50100}}]}),
        ),
        desc(
            "reference = ref-77777",
            json!({"$match": {"reference": "ref-77777"}}),
        ),
        Case {
            name: "updatedAt > T-10min, sort updatedAt:asc (sync)",
            query: json!({"$gt": {"updated_at": "2026-01-02T03:36:40Z"}}),
            sort: SortColumn::UpdatedAt,
            ascending: true,
        },
    ]
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn quantile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs the scenario.
pub async fn run(admin_url: String, payments: usize, requests: usize) -> anyhow::Result<()> {
    let service = Service::start(&admin_url).await?;
    crate::service::seed_payments(&service.pool, payments).await?;
    // Spread the rows over four statuses and 1,000 metadata values; updated_at = created_at.
    service
        .pool
        .get()
        .await?
        .batch_execute(
            "UPDATE payments SET
                 status = (ARRAY['SUCCEEDED', 'FAILED', 'PENDING', 'CANCELLED'])
                          [1 + substr(id, 2)::int % 4],
                 metadata = jsonb_build_object('order', (substr(id, 2)::int % 1000)::text),
                 updated_at = created_at",
        )
        .await?;
    crate::service::settle(&service.pool).await?;
    let base = format!("http://127.0.0.1:{}/api/payments/payments", service.port);
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish();
    println!("| filter (pageSize=100) | p50 (ms) | p99 (ms) | rows | plan | SQL exec (ms) |");
    println!("|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for case in cases() {
        let order = if case.ascending { "asc" } else { "desc" };
        let sort = match case.sort {
            SortColumn::CreatedAt => "createdAt",
            SortColumn::UpdatedAt => "updatedAt",
        };
        let url = format!(
            "{base}?pageSize=100&sort={sort}:{order}&query={}",
            encode(&case.query.to_string())
        );
        let mut rows = 0;
        let mut samples = Vec::with_capacity(requests);
        for i in 0..(requests + 20) {
            let sent = Instant::now();
            let mut reply = http
                .get(&url)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("request: {e}"))?;
            let body: Value = reply.json().limit(64 << 20).await?;
            anyhow::ensure!(reply.status().is_success(), "{}: {body}", case.name);
            // The first 20 warm up (connections, prepared statements), not counted.
            if i >= 20 {
                samples.push(sent.elapsed());
            }
            rows = body["cursor"]["data"].as_array().map_or(0, Vec::len);
        }
        samples.sort();
        let (p50, p99) = (quantile(&samples, 0.5), quantile(&samples, 0.99));
        let (plan, exec_ms) = explain(&service, &case).await?;
        println!(
            "| {} | {p50:.2} | {p99:.2} | {rows} | {plan} | {exec_ms:.2} |",
            case.name
        );
        results.push(
            json!({"case": case.name, "p50_ms": p50, "p99_ms": p99, "rows": rows,
                            "plan": plan, "sql_exec_ms": exec_ms}),
        );
    }
    println!(
        "{}",
        json!({"bench": "query", "payments": payments, "requests": requests, "cases": results})
    );
    service.remove().await
}

/// The plan of the page's statement: its scan nodes (index names) and execution time.
async fn explain(service: &Service, case: &Case) -> anyhow::Result<(String, f64)> {
    let condition = parse(&case.query.to_string())?
        .map(|e| compile(&e, PAYMENT_FIELDS))
        .transpose()?;
    let filter = PaymentFilter {
        condition,
        ..PaymentFilter::default()
    };
    let keyset = Keyset {
        column: case.sort.column(),
        ascending: case.ascending,
        bound: None,
        limit: 101,
    };
    let sql = page_sql(&filter, &keyset);
    let client = service.pool.get().await?;
    let rows = client
        .query(
            &format!("EXPLAIN (ANALYZE, FORMAT JSON) {}", sql.text),
            &sql.params(),
        )
        .await?;
    let plan: Value = rows
        .first()
        .map(|r| r.get::<_, Value>(0))
        .unwrap_or(Value::Null);
    let top = &plan[0];
    let mut scans = Vec::new();
    collect_scans(&top["Plan"], &mut scans);
    let exec = top["Execution Time"].as_f64().unwrap_or(f64::NAN);
    Ok((scans.join(" + "), exec))
}

fn collect_scans(node: &Value, out: &mut Vec<String>) {
    let kind = node["Node Type"].as_str().unwrap_or("");
    let on_payments = node["Relation Name"] == "payments"
        || node["Index Name"]
            .as_str()
            .is_some_and(|i| i.starts_with("payments"));
    if kind.contains("Scan") && on_payments {
        match node["Index Name"].as_str() {
            Some(index) => out.push(format!("{kind} on {index}")),
            None => out.push(kind.to_string()),
        }
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        collect_scans(child, out);
    }
}
