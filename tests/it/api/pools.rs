//! `/pools`: create, list, get, delete, members, balances at a time and latest (exact sums),
//! the query of a DYNAMIC pool, the accounts' `pools` field, errors, and what uninstalling or
//! resetting a connector leaves of a pool.

use serde_json::{Value, json};
use tributary::ids::{AccountKey, ConnectorKey};

use super::Api;

struct Seed {
    connector: ConnectorKey,
    client: tokio_postgres::Client,
}

impl Seed {
    async fn new(api: &Api, name: &str) -> Seed {
        let id = api.install(name).await;
        Seed {
            connector: ConnectorKey::parse(&id).expect("connector id"),
            client: api.app.db.client().await,
        }
    }

    /// An account with balances `(asset, amount, created_at)`; returns its id.
    async fn account(&self, reference: &str, balances: &[(&str, &str, &str)]) -> String {
        let id = AccountKey {
            connector: self.connector.clone(),
            reference: reference.into(),
        }
        .id();
        self.client
            .execute(
                "INSERT INTO accounts (id, connector_id, reference, created_at, type)
                 VALUES ($1, $2, $3, '2026-01-01T00:00:00Z', 'INTERNAL')",
                &[&id, &self.connector.id(), &reference],
            )
            .await
            .expect("insert account");
        for (asset, amount, at) in balances {
            self.client
                .execute(
                    "INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
                     VALUES ($1, $2, $3::text::numeric, $4::text::timestamptz,
                             $4::text::timestamptz)",
                    &[&id, asset, amount, at],
                )
                .await
                .expect("insert balance");
        }
        id
    }
}

/// A response body as text: exact amounts are checked in the JSON as sent, not as parsed
/// (a parsed JSON number is an `f64`).
async fn text(api: &Api, path: &str) -> String {
    let mut response = awc::Client::default()
        .get(format!("{}{path}", api.app.base))
        .send()
        .await
        .expect("request");
    let body = response.body().await.expect("body");
    String::from_utf8(body.to_vec()).expect("utf-8")
}

async fn latest(api: &Api, pool: &str) -> Value {
    api.get(&format!("/pools/{pool}/balances/latest"))
        .await
        .body["data"]
        .clone()
}

fn balances(body: &Value) -> Value {
    body["data"]["balances"].clone()
}

#[actix_rt::test]
async fn a_pool_sums_its_accounts_balances_exactly_at_a_time_and_latest() {
    let api = Api::start().await;
    let seed = Seed::new(&api, "pools").await;
    let big = "1000000000000000000000000000000"; // 10^30: beyond any float's exactness
    let a1 = seed
        .account(
            "a1",
            &[
                ("EUR/2", big, "2026-01-01T00:00:00Z"),
                ("EUR/2", "5", "2026-01-03T00:00:00Z"),
            ],
        )
        .await;
    let a2 = seed
        .account("a2", &[("EUR/2", "7", "2026-01-02T00:00:00Z")])
        .await;
    let a3 = seed
        .account("a3", &[("USD/2", "-3", "2026-01-01T00:00:00Z")])
        .await;

    let created = api
        .post(
            "/pools",
            &json!({"name": "treasury", "accountIDs": [a1, a2]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let pool = &created.body["data"];
    let id = pool["id"].as_str().expect("id").to_string();
    assert_eq!(
        *pool,
        json!({"id": id, "name": "treasury", "type": "STATIC", "accounts": [a1, a2]})
    );
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"], *pool, "{}", got.body);
    let listed = api.get("/pools").await;
    assert_eq!(
        listed.body["cursor"]["data"],
        json!([pool]),
        "{}",
        listed.body
    );

    // At a time: each member's balance held then, summed per asset, exactly.
    let at = |t: &str| format!("/pools/{id}/balances?at={t}");
    let before = api.get(&at("2025-12-31T00:00:00Z")).await;
    assert_eq!(before.status, 200, "{}", before.body);
    assert_eq!(balances(&before.body), json!([]));
    let day2 = text(&api, &at("2026-01-02T12:00:00Z")).await;
    assert_eq!(
        day2,
        r#"{"data":{"balances":[{"amount":1000000000000000000000000000007,"asset":"EUR/2"}]}}"#
    );
    let day3 = api.get(&at("2026-01-03T00:00:00Z")).await;
    assert_eq!(
        balances(&day3.body),
        json!([{"amount": 12, "asset": "EUR/2"}])
    );
    let latest = api.get(&format!("/pools/{id}/balances/latest")).await;
    assert_eq!(latest.status, 200, "{}", latest.body);
    assert_eq!(
        latest.body["data"],
        json!([{"amount": 12, "asset": "EUR/2"}])
    );

    // Members: add (twice is once), the account's `pools` field, remove.
    for _ in 0..2 {
        let added = api
            .post(&format!("/pools/{id}/accounts"), &json!({"accountID": a3}))
            .await;
        assert_eq!(added.status, 204, "{}", added.body);
    }
    let latest = api.get(&format!("/pools/{id}/balances/latest")).await;
    assert_eq!(
        latest.body["data"],
        json!([{"amount": 12, "asset": "EUR/2"}, {"amount": -3, "asset": "USD/2"}])
    );
    let account = api.get(&format!("/accounts/{a3}")).await;
    assert_eq!(
        account.body["data"]["pools"],
        json!([id]),
        "{}",
        account.body
    );
    let accounts = api.get("/accounts?pageSize=100").await;
    for a in accounts.body["cursor"]["data"]
        .as_array()
        .expect("accounts")
    {
        assert_eq!(a["pools"], json!([id]), "{a}");
    }
    let removed = api.delete(&format!("/pools/{id}/accounts/{a3}")).await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"]["accounts"], json!([a1, a2]));
    let account = api.get(&format!("/accounts/{a3}")).await;
    assert_eq!(account.body["data"]["pools"], json!([]));

    // The query makes it DYNAMIC and is returned as given; its members are what it matches.
    let query = json!({"$match": {"id": a1}});
    let updated = api
        .patch(&format!("/pools/{id}/query"), &json!({"query": query}))
        .await;
    assert_eq!(updated.status, 204, "{}", updated.body);
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"]["type"], "DYNAMIC");
    assert_eq!(got.body["data"]["query"], query);
    assert_eq!(got.body["data"]["accounts"], json!([a1]));

    // Delete: the pool goes, its accounts stay.
    assert_eq!(api.delete(&format!("/pools/{id}")).await.status, 204);
    api.get(&format!("/pools/{id}"))
        .await
        .error(404, "NOT_FOUND");
    api.delete(&format!("/pools/{id}"))
        .await
        .error(404, "NOT_FOUND");
    assert_eq!(api.get(&format!("/accounts/{a1}")).await.status, 200);
    let members: i64 = seed
        .client
        .query_one("SELECT count(*) FROM pool_accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(members, 0);
}

#[actix_rt::test]
async fn pool_errors_name_the_field_and_unknown_accounts_are_404() {
    let api = Api::start().await;
    let seed = Seed::new(&api, "pool-errors").await;
    let a1 = seed.account("a1", &[]).await;
    let unknown = AccountKey {
        connector: seed.connector.clone(),
        reference: "nope".into(),
    }
    .id();

    // An unknown account is 404, as in Formance, and nothing is created.
    let msg = api
        .post("/pools", &json!({"name": "p", "accountIDs": [a1, unknown]}))
        .await
        .error(404, "NOT_FOUND");
    assert!(msg.contains(&unknown), "{msg}");
    let listed = api.get("/pools").await;
    assert_eq!(listed.body["cursor"]["data"], json!([]));

    for (body, field) in [
        (json!({"accountIDs": [a1]}), "name"),
        (json!({"name": 3, "accountIDs": [a1]}), "name"),
        (json!({"name": "p"}), "accountIDs"),
        (
            json!({"name": "p", "accountIDs": ["not-an-id"]}),
            "accountIDs[0]",
        ),
        (json!({"name": "p", "accountIDs": "x"}), "accountIDs"),
        (json!({"name": "p", "query": []}), "query"),
    ] {
        let msg = api.post("/pools", &body).await.error(400, "VALIDATION");
        assert!(msg.starts_with(field), "{body}: {msg}");
    }

    let id = api
        .post("/pools", &json!({"name": "p", "accountIDs": [a1]}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let msg = api
        .post(
            &format!("/pools/{id}/accounts"),
            &json!({"accountID": unknown}),
        )
        .await
        .error(404, "NOT_FOUND");
    assert!(msg.contains(&unknown), "{msg}");
    let msg = api
        .post(&format!("/pools/{id}/accounts"), &json!({}))
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("accountID"), "{msg}");
    let msg = api
        .get(&format!("/pools/{id}/balances"))
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("at"), "{msg}");
    let msg = api
        .get(&format!("/pools/{id}/balances?at=yesterday"))
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("at"), "{msg}");
    let msg = api
        .patch(&format!("/pools/{id}/query"), &json!({"query": "x"}))
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("query"), "{msg}");
    let msg = api
        .patch(
            &format!("/pools/{id}/query"),
            &json!({"query": {"$match": {"account_id": a1}}}),
        )
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("query"), "{msg}");
    let msg = api.get("/pools/not-a-uuid").await.error(400, "VALIDATION");
    assert!(msg.starts_with("poolID"), "{msg}");

    let other = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
    api.get(&format!("/pools/{other}"))
        .await
        .error(404, "NOT_FOUND");
    api.get(&format!("/pools/{other}/balances/latest"))
        .await
        .error(404, "NOT_FOUND");
    api.get(&format!("/pools/{other}/balances?at=2026-01-01T00:00:00Z"))
        .await
        .error(404, "NOT_FOUND");
    api.post(
        &format!("/pools/{other}/accounts"),
        &json!({"accountID": a1}),
    )
    .await
    .error(404, "NOT_FOUND");
    api.delete(&format!("/pools/{other}/accounts/{a1}"))
        .await
        .error(404, "NOT_FOUND");
    api.patch(
        &format!("/pools/{other}/query"),
        &json!({"query": {"$match": {"id": a1}}}),
    )
    .await
    .error(404, "NOT_FOUND");
}

#[actix_rt::test]
async fn resetting_or_uninstalling_a_connector_removes_its_accounts_from_pools() {
    let api = Api::start().await;
    let a = Seed::new(&api, "pool-a").await;
    let b = Seed::new(&api, "pool-b").await;
    let a1 = a
        .account("a1", &[("EUR/2", "100", "2026-01-01T00:00:00Z")])
        .await;
    let b1 = b
        .account("b1", &[("EUR/2", "20", "2026-01-01T00:00:00Z")])
        .await;
    let id = api
        .post("/pools", &json!({"name": "mixed", "accountIDs": [a1, b1]}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(
        latest(&api, &id).await,
        json!([{"amount": 120, "asset": "EUR/2"}])
    );

    // Reset A: its account leaves the pool, which stays readable.
    let reset = api
        .post_empty(&format!("/connectors/test/{}/reset", a.connector.id()))
        .await;
    assert_eq!(reset.status, 204, "{}", reset.body);
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.body);
    assert_eq!(got.body["data"]["accounts"], json!([b1]));
    assert_eq!(
        latest(&api, &id).await,
        json!([{"amount": 20, "asset": "EUR/2"}])
    );

    // Uninstall B: the pool is left empty, not broken.
    let gone = api
        .delete(&format!("/connectors/test/{}", b.connector.id()))
        .await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"]["accounts"], json!([]));
    assert_eq!(latest(&api, &id).await, json!([]));
    let at = api
        .get(&format!("/pools/{id}/balances?at=2026-02-01T00:00:00Z"))
        .await;
    assert_eq!(balances(&at.body), json!([]));
    let members: i64 = a
        .client
        .query_one("SELECT count(*) FROM pool_accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(members, 0);
}

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

fn pool_ids(body: &Value) -> Vec<String> {
    body["cursor"]["data"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| p["id"].as_str().expect("id").to_string())
        .collect()
}

#[actix_rt::test]
async fn a_dynamic_pool_is_the_accounts_its_query_matches_at_read_time() {
    let api = Api::start().await;
    let a = Seed::new(&api, "dyn-a").await;
    let b = Seed::new(&api, "dyn-b").await;
    // Beyond 64 bits: the sums must stay exact.
    let big = "18446744073709551616000";
    let a1 = a
        .account("a1", &[("EUR/2", big, "2026-01-01T00:00:00Z")])
        .await;
    let b1 = b
        .account("b1", &[("EUR/2", "7", "2026-01-01T00:00:00Z")])
        .await;
    let query = json!({"$match": {"connectorID": a.connector.id()}});
    let created = api
        .post(
            "/pools",
            &json!({"name": "dyn", "query": query, "accountIDs": [b1]}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let id = created.body["data"]["id"].as_str().expect("id").to_string();
    // With a query, the ids are ignored (as Formance v3 does): members are what it matches.
    assert_eq!(created.body["data"]["type"], "DYNAMIC");
    assert_eq!(created.body["data"]["accounts"], json!([a1]));
    let body = text(&api, &format!("/pools/{id}/balances/latest")).await;
    assert!(
        body.contains(r#"{"amount":18446744073709551616000,"asset":"EUR/2"}"#),
        "{body}"
    );

    // An account ingested under connector A after the query was set joins the pool.
    let ingested = api
        .post(
            "/accounts",
            &json!({"reference": "acc-2", "connectorID": a.connector.id(),
                "createdAt": "2026-01-02T00:00:00Z", "type": "INTERNAL"}),
        )
        .await;
    assert_eq!(ingested.status, 200, "{}", ingested.body);
    let a2 = ingested.body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert_eq!(ingested.body["data"]["pools"], json!([id]));
    a.client
        .execute(
            "INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
             VALUES ($1, 'EUR/2', 18446744073709551616000, '2026-01-03T00:00:00Z',
                     '2026-01-03T00:00:00Z')",
            &[&a2],
        )
        .await
        .expect("balance");
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"]["accounts"], json!([a1, a2]));
    let listed = api.get("/pools").await;
    assert_eq!(
        listed.body["cursor"]["data"][0]["accounts"],
        json!([a1, a2])
    );
    let body = text(&api, &format!("/pools/{id}/balances/latest")).await;
    assert!(
        body.contains(r#"{"amount":36893488147419103232000,"asset":"EUR/2"}"#),
        "{body}"
    );
    // At a time: a2's balance did not exist yet on Jan 2, and does on Jan 4.
    let body = text(
        &api,
        &format!("/pools/{id}/balances?at=2026-01-02T00:00:00Z"),
    )
    .await;
    assert!(
        body.contains(r#""amount":18446744073709551616000,"#),
        "{body}"
    );
    let body = text(
        &api,
        &format!("/pools/{id}/balances?at=2026-01-04T00:00:00Z"),
    )
    .await;
    assert!(
        body.contains(r#""amount":36893488147419103232000,"#),
        "{body}"
    );
    // The accounts' `pools` field follows the query too.
    assert_eq!(
        api.get(&format!("/accounts/{a2}")).await.body["data"]["pools"],
        json!([id])
    );
    assert_eq!(
        api.get(&format!("/accounts/{b1}")).await.body["data"]["pools"],
        json!([])
    );

    // A DYNAMIC pool's members are not edited one by one (Formance v3 refuses too).
    let msg = api
        .post(&format!("/pools/{id}/accounts"), &json!({"accountID": b1}))
        .await
        .error(400, "VALIDATION");
    assert!(msg.contains("DYNAMIC"), "{msg}");
    api.delete(&format!("/pools/{id}/accounts/{a1}"))
        .await
        .error(400, "VALIDATION");

    // An invalid query is a 400 naming the field or operator, and changes nothing.
    for (bad, named) in [
        (json!({"$match": {"colour": "red"}}), "\"colour\""),
        (json!({"$lt": {"metadata[team]": "x"}}), "$lt"),
        (json!({"$match": {"connectorID": 3}}), "connectorID"),
    ] {
        let msg = api
            .patch(&format!("/pools/{id}/query"), &json!({"query": bad}))
            .await
            .error(400, "VALIDATION");
        assert!(msg.contains(named), "{bad}: {msg}");
        let msg = api
            .post("/pools", &json!({"name": "bad", "query": bad}))
            .await
            .error(400, "VALIDATION");
        assert!(msg.contains(named), "{bad}: {msg}");
    }
    let got = api.get(&format!("/pools/{id}")).await;
    assert_eq!(got.body["data"]["query"], query);
    assert_eq!(got.body["data"]["accounts"], json!([a1, a2]));
    assert_eq!(pool_ids(&api.get("/pools").await.body), vec![id.clone()]);

    // A STATIC pool given a query becomes DYNAMIC: its explicit list is replaced.
    let fixed = api
        .post("/pools", &json!({"name": "fixed", "accountIDs": [a1]}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let updated = api
        .patch(
            &format!("/pools/{fixed}/query"),
            &json!({"query": {"$or": [{"$match": {"connectorID": b.connector.id()}},
                                       {"$match": {"reference": "acc-2"}}]}}),
        )
        .await;
    assert_eq!(updated.status, 204, "{}", updated.body);
    let got = api.get(&format!("/pools/{fixed}")).await;
    assert_eq!(got.body["data"]["type"], "DYNAMIC");
    assert_eq!(got.body["data"]["accounts"], json!([b1, a2]));
    let body = text(&api, &format!("/pools/{fixed}/balances/latest")).await;
    assert!(
        body.contains(r#""amount":18446744073709551616007,"#),
        "{body}"
    );
    let pools_of_b1 = api.get(&format!("/accounts/{b1}")).await.body["data"]["pools"].clone();
    assert_eq!(pools_of_b1, json!([fixed]));

    // The list's `query` (name, id) filters, and its cursor keeps the filter.
    let third = api
        .post("/pools", &json!({"name": "dyn", "accountIDs": [b1]}))
        .await
        .body["data"]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let q = enc(r#"{"$match":{"name":"dyn"}}"#);
    let first = api.get(&format!("/pools?pageSize=1&query={q}")).await;
    assert_eq!(pool_ids(&first.body), vec![third.clone()], "{}", first.body);
    let next = first.body["cursor"]["next"].as_str().expect("next");
    let second = api.get(&format!("/pools?cursor={next}")).await;
    assert_eq!(pool_ids(&second.body), vec![id.clone()], "{}", second.body);
    assert_eq!(second.body["cursor"]["hasMore"], false);
    let q = enc(&format!(r#"{{"$match":{{"id":"{fixed}"}}}}"#));
    assert_eq!(
        pool_ids(&api.get(&format!("/pools?query={q}")).await.body),
        vec![fixed]
    );
    let q = enc(r#"{"$match":{"colour":"red"}}"#);
    let msg = api
        .get(&format!("/pools?query={q}"))
        .await
        .error(400, "VALIDATION");
    assert!(msg.contains("\"colour\""), "{msg}");
    let q = enc(r#"{"$lt":{"name":"z"}}"#);
    let msg = api
        .get(&format!("/pools?query={q}"))
        .await
        .error(400, "VALIDATION");
    assert!(msg.contains("$lt"), "{msg}");
}
