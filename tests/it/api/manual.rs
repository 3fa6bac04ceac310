//! `POST /payments` and `POST /accounts`: created through the ingest path under an installed
//! connector (same ids, idempotent repeats, adjustments on change), exact amounts, errors.

use serde_json::{Value, json};
use tributary::ids::{AccountKey, ConnectorKey, PaymentKey};
use uuid::Uuid;

use super::Api;

/// Sends a body given as text (exact amounts) and returns (status, body text).
async fn post_text(api: &Api, path: &str, body: &str) -> (u16, String) {
    let mut response = api
        .raw(awc::http::Method::POST, path)
        .insert_header(("content-type", "application/json"))
        .send_body(body.to_string())
        .await
        .expect("request");
    let bytes = response.body().await.expect("body");
    (
        response.status().as_u16(),
        String::from_utf8(bytes.to_vec()).expect("utf-8"),
    )
}

fn payment_body(connector: &str, status: &str, amount: &str, source: &str) -> String {
    format!(
        r#"{{"reference":"manual-1","connectorID":"{connector}","createdAt":"2026-01-01T00:00:00Z","type":"PAY-IN","amount":{amount},"asset":"EUR/2","scheme":"visa","status":"{status}","sourceAccountID":"{source}","metadata":{{"order":"42"}}}}"#
    )
}

#[actix_rt::test]
async fn manual_accounts_and_payments_go_through_ingestion_with_its_ids_and_adjustments() {
    let api = Api::start().await;
    let connector = api.install("manual").await;
    let key = ConnectorKey::parse(&connector).expect("connector id");
    let client = api.app.db.client().await;

    // An account: the ingest id, the body as raw, readable at once.
    let account = json!({"reference": "acc-1", "connectorID": connector,
        "createdAt": "2026-01-01T00:00:00Z", "type": "INTERNAL", "accountName": "Main",
        "defaultAsset": "EUR/2", "metadata": {"team": "ops"}});
    let created = api.post("/accounts", &account).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let account_id = AccountKey {
        connector: key.clone(),
        reference: "acc-1".into(),
    }
    .id();
    let a = &created.body["data"];
    assert_eq!(a["id"], account_id);
    assert_eq!(a["connectorID"], connector);
    assert_eq!(a["provider"], "TEST");
    assert_eq!(a["accountName"], "Main");
    assert_eq!(a["defaultAsset"], "EUR/2");
    assert_eq!(a["type"], "INTERNAL");
    assert_eq!(a["metadata"], json!({"team": "ops"}));
    assert_eq!(a["raw"], account);
    assert_eq!(a["pools"], json!([]));
    let got = api.get(&format!("/accounts/{account_id}")).await;
    assert_eq!(got.body["data"], *a);
    // Again, renamed: the same row, updated as an ingest would.
    let mut renamed = account.clone();
    renamed["accountName"] = json!("Main 2");
    let again = api.post("/accounts", &renamed).await;
    assert_eq!(
        again.body["data"]["accountName"], "Main 2",
        "{}",
        again.body
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM accounts", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);

    // A payment with an amount beyond u64 and f64: exact in the database and the answer.
    let big = "12345678901234567890123456789012345678901";
    let (status, text) = post_text(
        &api,
        "/payments",
        &payment_body(&connector, "PENDING", big, &account_id),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&format!(r#""amount":{big}"#)), "{text}");
    assert!(
        text.contains(&format!(r#""initialAmount":{big}"#)),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).expect("json");
    let p = &body["data"];
    let payment_id = PaymentKey {
        connector: key.clone(),
        reference: "manual-1".into(),
        payment_type: "PAY-IN".into(),
    }
    .id();
    assert_eq!(p["id"], payment_id);
    assert_eq!(p["status"], "PENDING");
    assert_eq!(p["sourceAccountID"], account_id);
    assert_eq!(p["destinationAccountID"], "");
    assert_eq!(p["metadata"], json!({"order": "42"}));
    assert_eq!(p["adjustments"].as_array().map(Vec::len), Some(1), "{p}");
    let stored: String = client
        .query_one(
            "SELECT amount::text FROM payments WHERE id = $1",
            &[&payment_id],
        )
        .await
        .expect("payment")
        .get(0);
    assert_eq!(stored, big);

    // The same payment again: a no-op, as a repeated ingest.
    let (status, _) = post_text(
        &api,
        "/payments",
        &payment_body(&connector, "PENDING", big, &account_id),
    )
    .await;
    assert_eq!(status, 200);
    // A changed status: an update and one more adjustment; the initial amount stays.
    let (status, text) = post_text(
        &api,
        "/payments",
        &payment_body(&connector, "SUCCEEDED", "5", &account_id),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["data"]["status"], "SUCCEEDED");
    assert_eq!(body["data"]["amount"], 5);
    assert!(
        text.contains(&format!(r#""initialAmount":{big}"#)),
        "{text}"
    );
    let adjustments: Vec<(String, String)> = client
        .query(
            "SELECT status, amount::text FROM payment_adjustments WHERE payment_id = $1 ORDER BY id",
            &[&payment_id],
        )
        .await
        .expect("adjustments")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        adjustments,
        vec![
            ("PENDING".to_string(), big.to_string()),
            ("SUCCEEDED".to_string(), "5".to_string())
        ]
    );
    let n: i64 = client
        .query_one("SELECT count(*) FROM payments", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 1);
}

#[actix_rt::test]
async fn manual_creation_needs_an_installed_connector_and_names_bad_fields() {
    let api = Api::start().await;
    let connector = api.install("manual-errors").await;
    let key = ConnectorKey::parse(&connector).expect("connector id");
    let absent = ConnectorKey {
        provider: "TEST".into(),
        reference: Uuid::new_v4(),
    }
    .id();
    let other_account = AccountKey {
        connector: ConnectorKey::parse(&absent).expect("id"),
        reference: "x".into(),
    }
    .id();
    let ok = AccountKey {
        connector: key,
        reference: "acc".into(),
    }
    .id();

    // A connector that is not installed: 404, nothing written.
    let (status, text) = post_text(
        &api,
        "/payments",
        &payment_body(&absent, "PENDING", "1", &other_account),
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(
        text.contains("NOT_FOUND") && text.contains(&absent),
        "{text}"
    );
    api.post(
        "/accounts",
        &json!({"reference": "acc", "connectorID": absent, "createdAt": "2026-01-01T00:00:00Z",
                "type": "INTERNAL"}),
    )
    .await
    .error(404, "NOT_FOUND");

    let base = payment_body(&connector, "PENDING", "1", &ok);
    let cases: Vec<(String, &str)> = vec![
        (base.replace(r#""amount":1"#, r#""amount":4.2"#), "amount"),
        (base.replace(r#""amount":1"#, r#""amount":"1""#), "amount"),
        (base.replace(r#""amount":1"#, r#""amount":-1"#), "amount"),
        (
            base.replace(r#""reference":"manual-1""#, r#""reference":"m""#),
            "reference",
        ),
        (base.replace(r#""reference":"manual-1","#, ""), "reference"),
        (base.replace("2026-01-01", "2999-01-01"), "createdAt"),
        (base.replace("PAY-IN", "PAYIN"), "type"),
        (base.replace("visa", "cash"), "scheme"),
        (base.replace("EUR/2", "euro"), "asset"),
        (base.replace(&connector, "nope"), "connectorID"),
        (base.replace(&ok, &other_account), "sourceAccountID"),
        (
            base.replace(r#"{"order":"42"}"#, r#"{"order":42}"#),
            "metadata",
        ),
    ];
    for (body, field) in cases {
        let (status, text) = post_text(&api, "/payments", &body).await;
        assert_eq!(status, 400, "{body}: {text}");
        let error: Value = serde_json::from_str(&text).expect("json");
        assert_eq!(error["errorCode"], "VALIDATION", "{text}");
        let message = error["errorMessage"].as_str().expect("message");
        assert!(message.starts_with(field), "{field}: {message}");
    }
    let msg = api
        .post(
            "/accounts",
            &json!({"reference": "acc", "connectorID": connector,
                    "createdAt": "2026-01-01T00:00:00Z", "type": "BANK"}),
        )
        .await
        .error(400, "VALIDATION");
    assert!(msg.starts_with("type"), "{msg}");
    let client = api.app.db.client().await;
    let n: i64 = client
        .query_one(
            "SELECT (SELECT count(*) FROM payments) + (SELECT count(*) FROM accounts)",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(n, 0);

    // After uninstall, the connector is gone: 404.
    let gone = api.delete(&format!("/connectors/test/{connector}")).await;
    assert_eq!(gone.status, 204, "{}", gone.body);
    let (status, text) = post_text(&api, "/payments", &base).await;
    assert_eq!(status, 404, "{text}");
}
