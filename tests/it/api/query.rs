//! Formance's query language, sort, page-size clamping, the balances `limit` and the
//! updatedAt-ordered listing, through HTTP against real PostgreSQL.

use serde_json::{Value, json};
use tributary::ids::{AccountKey, ConnectorKey, PaymentKey};

use super::{Api, Reply};

/// Percent-encodes a query parameter value.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Seed {
    connector: ConnectorKey,
    client: tokio_postgres::Client,
}

impl Seed {
    async fn new(api: &Api) -> Seed {
        let id = api.install("query").await;
        Seed {
            connector: ConnectorKey::parse(&id).expect("connector id"),
            client: api.app.db.client().await,
        }
    }

    /// A payment `reference` with `amount`, created `minutes` after 2026-01-01, `status`,
    /// metadata and an optional source account.
    async fn payment(
        &self,
        reference: &str,
        amount: &str,
        minutes: i64,
        status: &str,
        metadata: Value,
        source: Option<&str>,
    ) -> String {
        let id = PaymentKey {
            connector: self.connector.clone(),
            reference: reference.into(),
            payment_type: "PAY-IN".into(),
        }
        .id();
        self.client
            .execute(
                "INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset,
                        amount, initial_amount, created_at, metadata, source_account_id)
                 VALUES ($1, $2, $3, 'PAY-IN', $4, 'visa', 'EUR/2', $5::text::numeric,
                         $5::text::numeric,
                         '2026-01-01T00:00:00Z'::timestamptz + $6 * interval '1 minute', $7, $8)",
                &[
                    &id,
                    &self.connector.id(),
                    &reference,
                    &status,
                    &amount,
                    &(minutes as f64),
                    // JSON null stands for "no metadata": stored as SQL NULL, as ingest does.
                    &(!metadata.is_null()).then_some(metadata),
                    &source,
                ],
            )
            .await
            .expect("insert payment");
        id
    }
}

fn references(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let mut refs: Vec<String> = reply.body["cursor"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["reference"].as_str().expect("reference").to_string())
        .collect();
    refs.sort();
    refs
}

async fn payments_matching(api: &Api, query: &Value) -> Vec<String> {
    references(
        &api.get(&format!(
            "/payments?pageSize=100&query={}",
            enc(&query.to_string())
        ))
        .await,
    )
}

const BIG: &str = "123456789012345678901234567890123456789";
const BIG_PLUS_ONE: &str = "123456789012345678901234567890123456790";

async fn seeded() -> (Api, Seed) {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    seed.payment(
        "a",
        "100",
        0,
        "SUCCEEDED",
        json!({"order": "1", "team": "ops"}),
        Some("acc"),
    )
    .await;
    seed.payment("b", "200", 1, "FAILED", json!({"order": "2"}), None)
        .await;
    seed.payment("c", BIG, 2, "SUCCEEDED", json!({}), None)
        .await;
    seed.payment("d", BIG_PLUS_ONE, 3, "PENDING", Value::Null, Some("acc"))
        .await;
    (api, seed)
}

#[actix_rt::test]
async fn every_operator_filters_payments() {
    let (api, _seed) = seeded().await;
    let cases = [
        (json!({"$match": {"status": "SUCCEEDED"}}), vec!["a", "c"]),
        (json!({"$match": {"reference": "b"}}), vec!["b"]),
        (json!({"$lt": {"amount": 200}}), vec!["a"]),
        (json!({"$lte": {"amount": 200}}), vec!["a", "b"]),
        (json!({"$gt": {"amount": 200}}), vec!["c", "d"]),
        (json!({"$gte": {"amount": 200}}), vec!["b", "c", "d"]),
        (json!({"$match": {"metadata[order]": "2"}}), vec!["b"]),
        (json!({"$exists": {"metadata": "team"}}), vec!["a"]),
        (
            json!({"$exists": {"source_account_id": true}}),
            vec!["a", "d"],
        ),
        (
            json!({"$exists": {"sourceAccountID": false}}),
            vec!["b", "c"],
        ),
        (
            json!({"$lt": {"createdAt": "2026-01-01T00:01:30Z"}}),
            vec!["a", "b"],
        ),
        (json!({}), vec!["a", "b", "c", "d"]),
    ];
    for (query, expected) in cases {
        assert_eq!(payments_matching(&api, &query).await, expected, "{query}");
    }
}

#[actix_rt::test]
async fn amounts_compare_exactly_beyond_floats() {
    let (api, _seed) = seeded().await;
    // As f64, BIG and BIG+1 are the same number: only an exact comparison tells them apart.
    let q = format!(r#"{{"$match": {{"amount": {BIG}}}}}"#);
    let reply = api.get(&format!("/payments?query={}", enc(&q))).await;
    assert_eq!(references(&reply), vec!["c"]);
    let q = format!(r#"{{"$gt": {{"amount": {BIG}}}}}"#);
    let reply = api.get(&format!("/payments?query={}", enc(&q))).await;
    assert_eq!(references(&reply), vec!["d"]);
}

#[actix_rt::test]
async fn nested_and_or_not() {
    let (api, _seed) = seeded().await;
    let q = json!({"$and": [
        {"$or": [{"$match": {"status": "SUCCEEDED"}}, {"$match": {"status": "PENDING"}}]},
        {"$not": {"$match": {"metadata[order]": "1"}}}
    ]});
    assert_eq!(payments_matching(&api, &q).await, vec!["c", "d"]);
    let q = json!({"$not": {"$or": [{"$lt": {"amount": 150}}, {"$gt": {"amount": 1000}}]}});
    assert_eq!(payments_matching(&api, &q).await, vec!["b"]);
}

#[actix_rt::test]
async fn the_query_may_come_in_the_body_and_the_cursor_keeps_it() {
    let (api, _seed) = seeded().await;
    let body = json!({"$gte": {"amount": 100}}).to_string().into_bytes();
    let reply = api
        .send_raw(
            api.raw(
                awc::http::Method::GET,
                "/payments?pageSize=2&sort=createdAt:asc",
            ),
            body,
        )
        .await;
    assert_eq!(references(&reply), vec!["a", "b"]);
    let next = reply.body["cursor"]["next"].as_str().expect("next");
    let page2 = api.get(&format!("/payments?cursor={next}")).await;
    assert_eq!(references(&page2), vec!["c", "d"]);
    assert_eq!(page2.body["cursor"]["hasMore"], false);
    // With the filter in the cursor, the second page of a filtered list stays filtered.
    let q = json!({"$match": {"status": "SUCCEEDED"}}).to_string();
    let first = api
        .get(&format!(
            "/payments?pageSize=1&sort=createdAt:asc&query={}",
            enc(&q)
        ))
        .await;
    assert_eq!(references(&first), vec!["a"]);
    let next = first.body["cursor"]["next"].as_str().expect("next");
    assert_eq!(
        references(&api.get(&format!("/payments?cursor={next}")).await),
        vec!["c"]
    );
}

#[actix_rt::test]
async fn unsupported_fields_operators_and_values_are_named() {
    let (api, _seed) = seeded().await;
    let cases = [
        (json!({"$match": {"colour": "red"}}), "\"colour\""),
        (json!({"$lt": {"status": "A"}}), "$lt"),
        (json!({"$like": {"status": "A"}}), "$like"),
        (json!({"$gt": {"metadata[order]": "1"}}), "$gt"),
        (json!({"$match": {"amount": 1.5}}), "\"amount\""),
        (json!({"$match": {"status": 1}}), "\"status\""),
        (json!({"$and": []}), "$and"),
    ];
    for (query, needle) in cases {
        let reply = api
            .get(&format!("/payments?query={}", enc(&query.to_string())))
            .await;
        let message = reply.error(400, "VALIDATION");
        assert!(message.contains(needle), "{query}: {message}");
    }
    let reply = api
        .get(&format!("/payments?query={}", enc("{not json")))
        .await;
    assert!(reply.error(400, "VALIDATION").contains("query"));
    let reply = api
        .get(&format!(
            "/accounts?query={}",
            enc(r#"{"$match": {"amount": 1}}"#)
        ))
        .await;
    assert!(reply.error(400, "VALIDATION").contains("\"amount\""));
}

#[actix_rt::test]
async fn sort_orders_with_a_stable_tiebreaker() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    // Five payments at one instant: the id orders them, both ways, across pages.
    // Inserted in an order unrelated to their ids.
    for r in ["p5", "p2", "p4", "p1", "p3"] {
        seed.payment(r, "1", 0, "SUCCEEDED", Value::Null, None)
            .await;
    }
    let mut ids = Vec::new();
    let mut path = "/payments?pageSize=2&sort=createdAt:asc&sort=id:asc".to_string();
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for p in page.body["cursor"]["data"].as_array().expect("data") {
            ids.push(p["id"].as_str().expect("id").to_string());
        }
        match page.body["cursor"]["next"].as_str() {
            Some(next) => path = format!("/payments?cursor={next}"),
            None => break,
        }
    }
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ascending by id within one instant");
    let desc = api.get("/payments?pageSize=100&sort=created_at:DESC").await;
    let desc_ids: Vec<String> = desc.body["cursor"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect();
    sorted.reverse();
    assert_eq!(desc_ids, sorted);
    for (bad, needle) in [
        ("amount:asc", "amount"),
        ("createdAt:sideways", "sideways"),
        ("createdAt:asc&sort=updatedAt:asc", "one field"),
    ] {
        let reply = api.get(&format!("/payments?sort={bad}")).await;
        assert!(reply.error(400, "VALIDATION").contains(needle), "{bad}");
    }
    // Balances sort on createdAt only.
    let reply = api
        .get(&format!(
            "/accounts/{}/balances?sort=updatedAt:asc",
            account_id(&seed)
        ))
        .await;
    assert!(reply.status == 400 || reply.status == 404, "{}", reply.body);
}

fn account_id(seed: &Seed) -> String {
    AccountKey {
        connector: seed.connector.clone(),
        reference: "acc".into(),
    }
    .id()
}

#[actix_rt::test]
async fn page_size_above_the_maximum_is_clamped_everywhere() {
    let (api, seed) = seeded().await;
    for path in [
        "/payments?pageSize=1000".to_string(),
        "/accounts?pageSize=1000".to_string(),
        format!(
            "/connectors/TEST/{}/tasks?pageSize=1000",
            seed.connector.id()
        ),
    ] {
        let reply = api.get(&path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body["cursor"]["pageSize"], 100, "{path}");
    }
}

#[actix_rt::test]
async fn accounts_filter_and_balances_limit() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    let account = account_id(&seed);
    seed.client
        .batch_execute(&format!(
            "INSERT INTO accounts (id, connector_id, reference, created_at, default_asset,
                                   account_name, type, metadata)
             VALUES ('{account}', '{c}', 'acc', '2026-01-01T00:00:00Z', 'EUR/2', 'Main',
                     'INTERNAL', '{{\"team\": \"ops\"}}'),
                    ('other', '{c}', 'other', '2026-01-02T00:00:00Z', 'USD/2', 'Side',
                     'EXTERNAL', NULL);
             INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
             SELECT '{account}', 'EUR/2', n, '2026-01-01T00:00:00Z'::timestamptz
                    + n * interval '1 hour', '2026-01-01T00:00:00Z'::timestamptz
                    + n * interval '1 hour'
             FROM generate_series(1, 30) n;",
            c = seed.connector.id()
        ))
        .await
        .expect("seed accounts");
    let list = |q: Value| {
        let api = &api;
        async move {
            let reply = api
                .get(&format!("/accounts?query={}", enc(&q.to_string())))
                .await;
            references(&reply)
        }
    };
    assert_eq!(
        list(json!({"$match": {"type": "EXTERNAL"}})).await,
        vec!["other"]
    );
    assert_eq!(
        list(json!({"$match": {"metadata[team]": "ops"}})).await,
        vec!["acc"]
    );
    assert_eq!(list(json!({"$gte": {"name": "N"}})).await, vec!["other"]);
    assert_eq!(
        list(json!({"$match": {"default_asset": "EUR/2"}})).await,
        vec!["acc"]
    );
    // The SDK sends the accounts query as a JSON body.
    let reply = api
        .send_raw(
            api.raw(awc::http::Method::GET, "/accounts"),
            json!({"$match": {"reference": "acc"}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(references(&reply), vec!["acc"]);

    let path = format!("/accounts/{account}/balances");
    let page = |q: String| {
        let api = &api;
        let path = path.clone();
        async move { api.get(&format!("{path}{q}")).await }
    };
    let limited = page("?limit=5".into()).await;
    assert_eq!(
        limited.body["cursor"]["data"].as_array().map(Vec::len),
        Some(5)
    );
    assert_eq!(limited.body["cursor"]["hasMore"], true);
    let both = page("?limit=50&pageSize=7".into()).await;
    assert_eq!(
        both.body["cursor"]["data"].as_array().map(Vec::len),
        Some(7)
    );
    let zero = page("?limit=0".into()).await;
    assert_eq!(
        zero.body["cursor"]["data"].as_array().map(Vec::len),
        Some(15)
    );
    assert!(
        page("?limit=-1".into())
            .await
            .error(400, "VALIDATION")
            .contains("limit")
    );
    let q = enc(&json!({"$gt": {"balance": 27}}).to_string());
    let filtered = page(format!("?query={q}")).await;
    assert_eq!(
        filtered.body["cursor"]["data"].as_array().map(Vec::len),
        Some(3)
    );
}

#[actix_rt::test]
async fn updated_at_listing_syncs_incrementally_under_concurrent_writes() {
    let (api, seed) = seeded().await;
    // A consumer walks the payments by updatedAt; meanwhile payments are changed (through the
    // storage actor, as the ingest path does) and new ones arrive. Every change committed
    // after a page was read shows up on a later page: nothing is skipped.
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut path = "/payments?pageSize=2&sort=updatedAt:asc".to_string();
    let mut round = 0;
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.body);
        for p in page.body["cursor"]["data"].as_array().expect("data") {
            seen.push((
                p["reference"].as_str().expect("reference").to_string(),
                p["metadata"].to_string(),
            ));
        }
        if round < 3 {
            // A change to an already-seen payment, and a new payment, between pages.
            let id = PaymentKey {
                connector: seed.connector.clone(),
                reference: "a".into(),
                payment_type: "PAY-IN".into(),
            }
            .id();
            let patched = api
                .patch(
                    &format!("/payments/{id}/metadata"),
                    &json!({"round": round.to_string()}),
                )
                .await;
            assert_eq!(patched.status, 204);
            seed.client
                .execute(
                    "INSERT INTO payments (id, connector_id, reference, type, status, scheme,
                            asset, amount, initial_amount, created_at)
                     VALUES ($1, $2, $1, 'PAY-IN', 'PENDING', 'visa', 'EUR/2', 1, 1,
                             '2020-01-01T00:00:00Z')",
                    &[&format!("new-{round}"), &seed.connector.id()],
                )
                .await
                .expect("new payment");
            round += 1;
        }
        match page.body["cursor"]["next"].as_str() {
            Some(next) => path = format!("/payments?cursor={next}"),
            None => break,
        }
    }
    let refs: Vec<&str> = seen.iter().map(|(r, _)| r.as_str()).collect();
    for r in ["a", "b", "c", "d", "new-0", "new-1", "new-2"] {
        assert!(refs.contains(&r), "{r} missing from {refs:?}");
    }
    // The last version of "a" the consumer saw is its latest change.
    let last_a = seen.iter().rev().find(|(r, _)| r == "a").expect("a");
    assert!(last_a.1.contains("\"round\":\"2\""), "{seen:?}");
}

#[actix_rt::test]
async fn random_queries_compile_to_sql_postgresql_accepts() {
    use rand::{Rng, SeedableRng};
    let (api, _seed) = seeded().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1414);
    let leaves = [
        json!({"$match": {"status": "SUCCEEDED"}}),
        json!({"$match": {"connector_id": "x"}}),
        json!({"$lt": {"amount": 150}}),
        json!({"$gte": {"initial_amount": "99999999999999999999999"}}),
        json!({"$match": {"metadata[order]": "1"}}),
        json!({"$exists": {"metadata": "team"}}),
        json!({"$exists": {"destination_account_id": false}}),
        json!({"$gt": {"updatedAt": "2000-01-01T00:00:00Z"}}),
        json!({"$match": {"type": "PAY-IN"}}),
    ];
    fn tree(rng: &mut impl Rng, leaves: &[Value], depth: usize) -> Value {
        match if depth > 3 { 3 } else { rng.random_range(0..5) } {
            0 => {
                json!({"$and": (0..rng.random_range(1..4)).map(|_| tree(rng, leaves, depth + 1)).collect::<Vec<_>>()})
            }
            1 => {
                json!({"$or": (0..rng.random_range(1..4)).map(|_| tree(rng, leaves, depth + 1)).collect::<Vec<_>>()})
            }
            2 => json!({"$not": tree(rng, leaves, depth + 1)}),
            _ => leaves[rng.random_range(0..leaves.len())].clone(),
        }
    }
    for _ in 0..60 {
        let q = tree(&mut rng, &leaves, 0);
        let reply = api
            .get(&format!("/payments?query={}", enc(&q.to_string())))
            .await;
        assert_eq!(reply.status, 200, "{q}: {}", reply.body);
    }
}

// ---- Transfer initiations and bank accounts -------------------------------------------------

impl Seed {
    /// A transfer initiation `reference` (`kind`, `status`, `amount` left of `initial`),
    /// created `minutes` after 2026-01-01.
    #[allow(clippy::too_many_arguments)]
    async fn initiation(
        &self,
        reference: &str,
        kind: &str,
        status: &str,
        amount: &str,
        initial: &str,
        asset: &str,
        source: Option<&str>,
        destination: &str,
        minutes: i64,
        metadata: Value,
    ) {
        let id = tributary::ids::TransferKey {
            connector: self.connector.clone(),
            reference: reference.into(),
        }
        .id();
        self.client
            .execute(
                "INSERT INTO transfer_initiations (id, connector_id, reference, type, status,
                        amount, initial_amount, asset, source_account_id,
                        destination_account_id, description, metadata, scheduled_at,
                        created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6::text::numeric, $7::text::numeric, $8, $9,
                         $10, '', $11,
                         '2026-01-01T00:00:00Z'::timestamptz + $12 * interval '1 minute',
                         '2026-01-01T00:00:00Z'::timestamptz + $12 * interval '1 minute',
                         '2026-01-02T00:00:00Z'::timestamptz - $12 * interval '1 minute')",
                &[
                    &id,
                    &self.connector.id(),
                    &reference,
                    &kind,
                    &status,
                    &amount,
                    &initial,
                    &asset,
                    &source,
                    &destination,
                    &(!metadata.is_null()).then_some(metadata),
                    &(minutes as f64),
                ],
            )
            .await
            .expect("insert transfer initiation");
    }
}

async fn initiations_matching(api: &Api, query: &Value) -> Vec<String> {
    references(
        &api.get(&format!(
            "/transfer-initiations?pageSize=100&query={}",
            enc(&query.to_string())
        ))
        .await,
    )
}

async fn seeded_initiations() -> (Api, Seed) {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    seed.initiation(
        "t1",
        "TRANSFER",
        "PROCESSED",
        "100",
        "100",
        "EUR/2",
        Some("src"),
        "dst1",
        0,
        json!({"order": "1", "team": "ops"}),
    )
    .await;
    seed.initiation(
        "t2",
        "PAYOUT",
        "FAILED",
        "200",
        "300",
        "USD/2",
        None,
        "dst2",
        1,
        json!({"order": "2"}),
    )
    .await;
    seed.initiation(
        "t3",
        "TRANSFER",
        "PROCESSED",
        BIG,
        BIG,
        "EUR/2",
        None,
        "dst1",
        2,
        Value::Null,
    )
    .await;
    seed.initiation(
        "t4",
        "PAYOUT",
        "WAITING_FOR_VALIDATION",
        BIG_PLUS_ONE,
        BIG_PLUS_ONE,
        "EUR/2",
        Some("src"),
        "dst2",
        3,
        json!({}),
    )
    .await;
    (api, seed)
}

#[actix_rt::test]
async fn every_allowed_field_filters_transfer_initiations() {
    let (api, seed) = seeded_initiations().await;
    let t2 = tributary::ids::TransferKey {
        connector: seed.connector.clone(),
        reference: "t2".into(),
    }
    .id();
    let cases = [
        (json!({"$match": {"id": t2}}), vec!["t2"]),
        (json!({"$match": {"reference": "t3"}}), vec!["t3"]),
        (
            json!({"$match": {"connector_id": seed.connector.id()}}),
            vec!["t1", "t2", "t3", "t4"],
        ),
        (json!({"$match": {"connectorID": "nope"}}), vec![]),
        (json!({"$match": {"type": "PAYOUT"}}), vec!["t2", "t4"]),
        (json!({"$match": {"status": "PROCESSED"}}), vec!["t1", "t3"]),
        (json!({"$match": {"asset": "USD/2"}}), vec!["t2"]),
        (
            json!({"$match": {"source_account_id": "src"}}),
            vec!["t1", "t4"],
        ),
        (
            json!({"$exists": {"sourceAccountID": false}}),
            vec!["t2", "t3"],
        ),
        (
            json!({"$match": {"destination_account_id": "dst2"}}),
            vec!["t2", "t4"],
        ),
        (
            json!({"$match": {"destinationAccountID": "dst1"}}),
            vec!["t1", "t3"],
        ),
        (json!({"$lt": {"amount": 200}}), vec!["t1"]),
        (json!({"$lte": {"amount": 200}}), vec!["t1", "t2"]),
        (json!({"$gt": {"amount": 200}}), vec!["t3", "t4"]),
        (json!({"$gte": {"amount": 200}}), vec!["t2", "t3", "t4"]),
        (json!({"$match": {"initial_amount": 300}}), vec!["t2"]),
        (
            json!({"$lt": {"createdAt": "2026-01-01T00:01:30Z"}}),
            vec!["t1", "t2"],
        ),
        (
            json!({"$gte": {"scheduled_at": "2026-01-01T00:02:00Z"}}),
            vec!["t3", "t4"],
        ),
        (
            json!({"$gt": {"updatedAt": "2026-01-01T23:58:30Z"}}),
            vec!["t1", "t2"],
        ),
        (json!({"$match": {"metadata[order]": "2"}}), vec!["t2"]),
        (json!({"$exists": {"metadata": "team"}}), vec!["t1"]),
        (json!({}), vec!["t1", "t2", "t3", "t4"]),
    ];
    for (query, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            initiations_matching(&api, &query).await,
            expected,
            "{query}"
        );
    }
}

#[actix_rt::test]
async fn transfer_initiation_amounts_compare_exactly_beyond_64_bits() {
    let (api, _seed) = seeded_initiations().await;
    // BIG and BIG+1 are one f64 and beyond i64/u64: only an exact comparison separates them.
    for (q, expected) in [
        (format!(r#"{{"$match": {{"amount": {BIG}}}}}"#), vec!["t3"]),
        (format!(r#"{{"$gt": {{"amount": {BIG}}}}}"#), vec!["t4"]),
        (
            format!(r#"{{"$lte": {{"initialAmount": "{BIG}"}}}}"#),
            vec!["t1", "t2", "t3"],
        ),
    ] {
        let reply = api
            .get(&format!("/transfer-initiations?query={}", enc(&q)))
            .await;
        assert_eq!(references(&reply), expected, "{q}");
    }
}

#[actix_rt::test]
async fn transfer_initiations_nested_queries_cursor_sort_and_errors() {
    let (api, _seed) = seeded_initiations().await;
    let q = json!({"$and": [
        {"$or": [{"$match": {"status": "PROCESSED"}}, {"$match": {"type": "PAYOUT"}}]},
        {"$not": {"$match": {"metadata[order]": "1"}}}
    ]});
    assert_eq!(initiations_matching(&api, &q).await, vec!["t2", "t3", "t4"]);
    let q = json!({"$not": {"$or": [{"$lt": {"amount": 150}}, {"$gt": {"amount": 1000}}]}});
    assert_eq!(initiations_matching(&api, &q).await, vec!["t2"]);

    // The cursor keeps the query: page 2 of a filtered list is still filtered.
    let q = json!({"$match": {"destination_account_id": "dst2"}}).to_string();
    let first = api
        .get(&format!(
            "/transfer-initiations?pageSize=1&sort=createdAt:asc&query={}",
            enc(&q)
        ))
        .await;
    assert_eq!(references(&first), vec!["t2"]);
    let next = first.body["cursor"]["next"].as_str().expect("next");
    let second = api
        .get(&format!("/transfer-initiations?cursor={next}"))
        .await;
    assert_eq!(references(&second), vec!["t4"]);
    assert_eq!(second.body["cursor"]["hasMore"], false);

    // The query in the body (Formance reads it first).
    let body = json!({"$match": {"asset": "USD/2"}})
        .to_string()
        .into_bytes();
    let reply = api
        .send_raw(
            api.raw(awc::http::Method::GET, "/transfer-initiations"),
            body,
        )
        .await;
    assert_eq!(references(&reply), vec!["t2"]);

    // updatedAt runs the other way round from createdAt here: the sort follows the column.
    let order = |reply: &Reply| -> Vec<String> {
        reply.body["cursor"]["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|t| t["reference"].as_str().expect("reference").to_string())
            .collect()
    };
    let by_updated = api.get("/transfer-initiations?sort=updatedAt:asc").await;
    assert_eq!(order(&by_updated), vec!["t4", "t3", "t2", "t1"]);
    let by_created = api.get("/transfer-initiations?sort=createdAt:asc").await;
    assert_eq!(order(&by_created), vec!["t1", "t2", "t3", "t4"]);

    for (query, needle) in [
        (json!({"$match": {"colour": "red"}}), "\"colour\""),
        (json!({"$match": {"description": "x"}}), "\"description\""),
        (json!({"$lt": {"status": "A"}}), "$lt"),
        (json!({"$gt": {"metadata[order]": "1"}}), "$gt"),
        (json!({"$match": {"amount": 1.5}}), "\"amount\""),
    ] {
        let reply = api
            .get(&format!(
                "/transfer-initiations?query={}",
                enc(&query.to_string())
            ))
            .await;
        let message = reply.error(400, "VALIDATION");
        assert!(message.contains(needle), "{query}: {message}");
    }
    let reply = api.get("/transfer-initiations?sort=amount:asc").await;
    assert!(reply.error(400, "VALIDATION").contains("\"amount\""));
}

/// Registers a bank account through the API, then pins its `created_at` to `minutes` after
/// 2026-01-01 (and `updated_at` the other way round) so that orders are known.
async fn bank_account(
    api: &Api,
    client: &tokio_postgres::Client,
    name: &str,
    country: &str,
    minutes: i64,
    metadata: Value,
) -> String {
    let mut body = json!({"name": name, "country": country, "iban": "FR7630006000011234567890189"});
    if !metadata.is_null() {
        body["metadata"] = metadata;
    }
    let reply = api.post("/bank-accounts", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let id = reply.body["data"]["id"].as_str().expect("id").to_string();
    client
        .execute(
            "UPDATE bank_accounts SET
                 created_at = '2026-01-01T00:00:00Z'::timestamptz + $2 * interval '1 minute',
                 updated_at = '2026-01-02T00:00:00Z'::timestamptz - $2 * interval '1 minute'
             WHERE id = $1::text::uuid",
            &[&id, &(minutes as f64)],
        )
        .await
        .expect("pin bank account times");
    id
}

fn names(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["cursor"]["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect()
}

async fn bank_accounts_matching(api: &Api, query: &Value) -> Vec<String> {
    let mut found = names(
        &api.get(&format!(
            "/bank-accounts?pageSize=100&query={}",
            enc(&query.to_string())
        ))
        .await,
    );
    found.sort();
    found
}

#[actix_rt::test]
async fn bank_account_list_query_fields_cursor_sort_and_errors() {
    let api = Api::start().await;
    let client = api.app.db.client().await;
    let b1 = bank_account(&api, &client, "b1", "FR", 0, json!({"team": "ops"})).await;
    bank_account(&api, &client, "b2", "DE", 1, json!({"team": "risk"})).await;
    bank_account(&api, &client, "b3", "FR", 2, Value::Null).await;
    let cases = [
        (json!({"$match": {"id": b1}}), vec!["b1"]),
        (json!({"$match": {"name": "b2"}}), vec!["b2"]),
        (json!({"$match": {"country": "FR"}}), vec!["b1", "b3"]),
        (json!({"$match": {"metadata[team]": "ops"}}), vec!["b1"]),
        (json!({"$exists": {"metadata": "team"}}), vec!["b1", "b2"]),
        (
            json!({"$not": {"$match": {"metadata[team]": "ops"}}}),
            vec!["b2", "b3"],
        ),
        (
            json!({"$or": [{"$match": {"country": "DE"}}, {"$and": [
                {"$match": {"country": "FR"}}, {"$not": {"$exists": {"metadata": "team"}}}
            ]}]}),
            vec!["b2", "b3"],
        ),
        (
            json!({"$gte": {"createdAt": "2026-01-01T00:01:00Z"}}),
            vec!["b2", "b3"],
        ),
        (
            json!({"$lt": {"updated_at": "2026-01-01T23:58:30Z"}}),
            vec!["b3"],
        ),
        (json!({}), vec!["b1", "b2", "b3"]),
    ];
    for (query, expected) in cases {
        let expected: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            bank_accounts_matching(&api, &query).await,
            expected,
            "{query}"
        );
    }

    // The cursor keeps the query.
    let q = json!({"$match": {"country": "FR"}}).to_string();
    let first = api
        .get(&format!(
            "/bank-accounts?pageSize=1&sort=createdAt:asc&query={}",
            enc(&q)
        ))
        .await;
    assert_eq!(names(&first), vec!["b1"]);
    let next = first.body["cursor"]["next"].as_str().expect("next");
    let second = api.get(&format!("/bank-accounts?cursor={next}")).await;
    assert_eq!(names(&second), vec!["b3"]);
    assert_eq!(second.body["cursor"]["hasMore"], false);

    // Sorts: createdAt and updatedAt (pinned in opposite orders).
    assert_eq!(
        names(&api.get("/bank-accounts?sort=updatedAt:asc").await),
        vec!["b3", "b2", "b1"]
    );
    assert_eq!(
        names(&api.get("/bank-accounts?sort=createdAt:asc").await),
        vec!["b1", "b2", "b3"]
    );

    // The sealed numbers are never filterable; nor is anything else outside the table.
    for (query, needle) in [
        (
            json!({"$match": {"iban": "FR7630006000011234567890189"}}),
            "\"iban\"",
        ),
        (
            json!({"$match": {"accountNumber": "1"}}),
            "\"accountNumber\"",
        ),
        (
            json!({"$match": {"account_number": "1"}}),
            "\"account_number\"",
        ),
        (json!({"$lt": {"name": "b"}}), "$lt"),
        (json!({"$match": {"country": 1}}), "\"country\""),
        (json!({"$match": {"id": "not-a-uuid"}}), "\"id\""),
    ] {
        let reply = api
            .get(&format!("/bank-accounts?query={}", enc(&query.to_string())))
            .await;
        let message = reply.error(400, "VALIDATION");
        assert!(message.contains(needle), "{query}: {message}");
    }
}
