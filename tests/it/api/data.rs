//! `/payments` and `/accounts`: shapes, exact amounts, filters, keyset pagination, metadata.

use std::collections::HashSet;

use serde_json::json;
use tributary::ids::{AccountKey, ConnectorKey, PaymentKey};

use super::Api;

struct Seed {
    connector: ConnectorKey,
    client: tokio_postgres::Client,
}

impl Seed {
    async fn new(api: &Api) -> Seed {
        let id = api.install("data").await;
        Seed {
            connector: ConnectorKey::parse(&id).expect("connector id"),
            client: api.app.db.client().await,
        }
    }

    async fn payment(&self, reference: &str, amount: &str, minutes: i64, status: &str) -> String {
        let id = PaymentKey {
            connector: self.connector.clone(),
            reference: reference.into(),
            payment_type: "PAY-IN".into(),
        }
        .id();
        self.client
            .execute(
                "INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset,
                                       amount, initial_amount, created_at, raw)
                 VALUES ($1, $2, $3, 'PAY-IN', $4, 'visa', 'EUR/2', $5::text::numeric,
                         $5::text::numeric, '2026-01-01T00:00:00Z'::timestamptz + $6 * interval '1 minute',
                         '{\"src\": \"file\"}')",
                &[&id, &self.connector.id(), &reference, &status, &amount, &(minutes as f64)],
            )
            .await
            .expect("insert payment");
        id
    }
}

#[actix_rt::test]
async fn payments_keep_formance_fields_and_exact_amounts() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    let big = "1234567890123456789012345678901234567890";
    let id = seed.payment("ref-big", big, 0, "SUCCEEDED").await;
    seed.client
        .execute(
            "INSERT INTO payment_adjustments (payment_id, reference, created_at, status, amount)
             VALUES ($1, 'ref-big', '2026-01-01T00:00:00Z', 'PENDING', 5)",
            &[&id],
        )
        .await
        .expect("adjustment");

    let one = api.get(&format!("/payments/{id}")).await;
    assert_eq!(one.status, 200);
    let p = &one.body["data"];
    for field in [
        "id",
        "reference",
        "connectorID",
        "provider",
        "type",
        "status",
        "scheme",
        "asset",
        "amount",
        "initialAmount",
        "sourceAccountID",
        "destinationAccountID",
        "createdAt",
        "raw",
        "metadata",
        "adjustments",
    ] {
        assert!(p.get(field).is_some(), "missing {field} in {p}");
    }
    assert_eq!(p["type"], "PAY-IN");
    assert_eq!(p["provider"], "TEST");
    assert_eq!(p["adjustments"][0]["status"], "PENDING");
    // The amount is a JSON integer with every digit.
    let raw = api
        .raw(awc::http::Method::GET, &format!("/payments/{id}"))
        .send()
        .await
        .expect("request")
        .body()
        .await
        .expect("body");
    let text = String::from_utf8(raw.to_vec()).expect("utf8");
    assert!(text.contains(&format!("\"amount\":{big}")), "{text}");
    assert!(text.contains(&format!("\"initialAmount\":{big}")), "{text}");

    api.get("/payments/not-an-id")
        .await
        .error(400, "INVALID_ID");
    let missing = PaymentKey {
        connector: seed.connector.clone(),
        reference: "nope".into(),
        payment_type: "PAY-IN".into(),
    }
    .id();
    api.get(&format!("/payments/{missing}"))
        .await
        .error(404, "NOT_FOUND");
}

#[actix_rt::test]
async fn walking_the_pages_while_rows_arrive_yields_each_existing_payment_once() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    let mut existing = HashSet::new();
    for i in 0..37 {
        existing.insert(seed.payment(&format!("p{i}"), "100", i, "SUCCEEDED").await);
    }
    let first = api.get("/payments").await;
    assert_eq!(first.body["cursor"]["pageSize"], 15);
    assert_eq!(
        first.body["cursor"]["data"].as_array().map(Vec::len),
        Some(15)
    );

    let mut seen = Vec::new();
    let mut path = "/payments?pageSize=10".to_string();
    let mut extra = 0;
    loop {
        let page = api.get(&path).await.body;
        for p in page["cursor"]["data"].as_array().expect("data") {
            seen.push(p["id"].as_str().expect("id").to_string());
        }
        // New payments arrive, newer and older than the ones already walked.
        extra += 1;
        seed.payment(&format!("new{extra}"), "1", 1000 + extra, "PENDING")
            .await;
        seed.payment(&format!("old{extra}"), "1", -1000 - extra, "PENDING")
            .await;
        match page["cursor"]["next"].as_str() {
            Some(c) => path = format!("/payments?cursor={c}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a payment was returned twice");
    assert!(
        existing.iter().all(|id| unique.contains(id)),
        "a payment was skipped"
    );

    // `previous` leads back to the page before.
    let page1 = api.get("/payments?pageSize=5").await.body;
    let next = page1["cursor"]["next"].as_str().expect("next").to_string();
    let page2 = api.get(&format!("/payments?cursor={next}")).await.body;
    let previous = page2["cursor"]["previous"]
        .as_str()
        .expect("previous")
        .to_string();
    let back = api.get(&format!("/payments?cursor={previous}")).await.body;
    assert_eq!(back["cursor"]["data"], page1["cursor"]["data"]);
}

#[actix_rt::test]
async fn payment_filters_sort_and_page_size_bounds() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    for i in 0..4 {
        seed.payment(
            &format!("s{i}"),
            "1",
            i,
            if i % 2 == 0 { "SUCCEEDED" } else { "FAILED" },
        )
        .await;
    }
    let failed = api.get("/payments?status=FAILED").await.body;
    assert_eq!(failed["cursor"]["data"].as_array().map(Vec::len), Some(2));
    let asc = api.get("/payments?sort=createdAt:asc").await.body;
    assert_eq!(asc["cursor"]["data"][0]["reference"], "s0");
    let desc = api.get("/payments").await.body;
    assert_eq!(desc["cursor"]["data"][0]["reference"], "s3");
    // go-libs' bunpaginate: 0 is the default, above the maximum is clamped (not a 400).
    for (size, served) in [("0", 15), ("101", 100), ("100000", 100)] {
        let reply = api.get(&format!("/payments?pageSize={size}")).await;
        assert_eq!(reply.status, 200, "{size}: {}", reply.body);
        assert_eq!(reply.body["cursor"]["pageSize"], served, "{size}");
    }
    for bad in ["-1", "ten", "1e3"] {
        let reply = api.get(&format!("/payments?pageSize={bad}")).await;
        assert!(reply.error(400, "VALIDATION").contains("pageSize"), "{bad}");
    }
    api.get("/payments?sort=amount:asc")
        .await
        .error(400, "VALIDATION");
    api.get("/payments?cursor=garbage")
        .await
        .error(400, "VALIDATION");
    let max = api.get("/payments?pageSize=100").await;
    assert_eq!(max.status, 200);
}

#[actix_rt::test]
async fn payment_metadata_is_merged() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    let id = seed.payment("m", "1", 0, "SUCCEEDED").await;
    let path = format!("/payments/{id}/metadata");
    assert_eq!(api.patch(&path, &json!({"a": "1"})).await.status, 204);
    assert_eq!(api.patch(&path, &json!({"b": "2"})).await.status, 204);
    let p = api.get(&format!("/payments/{id}")).await.body;
    assert_eq!(p["data"]["metadata"], json!({"a": "1", "b": "2"}));
    let bad = api.patch(&path, &json!({"n": 1})).await;
    assert!(bad.error(400, "VALIDATION").contains("\"n\""));
    api.patch("/payments/xyz/metadata", &json!({"a": "1"}))
        .await
        .error(400, "INVALID_ID");
}

#[actix_rt::test]
async fn accounts_and_balances_with_negative_and_huge_amounts() {
    let api = Api::start().await;
    let seed = Seed::new(&api).await;
    let account = AccountKey {
        connector: seed.connector.clone(),
        reference: "acc-1".into(),
    }
    .id();
    seed.client
        .batch_execute(&format!(
            "INSERT INTO accounts (id, connector_id, reference, created_at, default_asset,
                                   account_name, type)
             VALUES ('{account}', '{}', 'acc-1', '2026-01-01T00:00:00Z', 'EUR/2', 'Main', 'INTERNAL');
             INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at) VALUES
               ('{account}', 'EUR/2', -500, '2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z'),
               ('{account}', 'EUR/2', 99999999999999999999999999999999, '2026-01-03T00:00:00Z', '2026-01-03T00:00:00Z'),
               ('{account}', 'USD/2', 7, '2026-01-02T00:00:00Z', '2026-01-02T00:00:00Z');",
            seed.connector.id()
        ))
        .await
        .expect("seed accounts");

    let list = api.get("/accounts").await;
    assert_eq!(list.status, 200);
    let a = &list.body["cursor"]["data"][0];
    assert_eq!(a["id"], account.as_str());
    assert_eq!(a["defaultAsset"], "EUR/2");
    assert_eq!(a["defaultCurrency"], "EUR/2");
    assert_eq!(a["accountName"], "Main");
    assert_eq!(a["type"], "INTERNAL");
    assert_eq!(a["pools"], json!([]));
    assert_eq!(
        api.get(&format!("/accounts/{account}")).await.body["data"]["reference"],
        "acc-1"
    );

    let balances = api.get(&format!("/accounts/{account}/balances")).await.body;
    let data = balances["cursor"]["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 3);
    let raw = api
        .raw(
            awc::http::Method::GET,
            &format!("/accounts/{account}/balances"),
        )
        .send()
        .await
        .expect("request")
        .body()
        .await
        .expect("body");
    let text = String::from_utf8(raw.to_vec()).expect("utf8");
    assert!(
        text.contains("\"balance\":99999999999999999999999999999999"),
        "{text}"
    );
    let eur = api
        .get(&format!(
            "/accounts/{account}/balances?asset=EUR/2&to=2026-01-02T12:00:00Z"
        ))
        .await
        .body;
    let eur = eur["cursor"]["data"].as_array().expect("data").clone();
    assert_eq!(eur.len(), 1);
    assert_eq!(eur[0]["balance"], -500);
    assert_eq!(eur[0]["accountId"], account.as_str());
    api.get(&format!("/accounts/{account}/balances?from=yesterday"))
        .await
        .error(400, "VALIDATION");
    api.get("/accounts/bad-id").await.error(400, "INVALID_ID");
}
