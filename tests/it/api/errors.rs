//! Bad input always gets a 4xx with the Formance error body, never a 5xx.

use awc::http::Method;
use serde_json::json;

use super::Api;

#[actix_rt::test]
async fn malformed_bodies_are_missing_or_invalid_body() {
    let api = Api::start().await;
    let json_post = |path: &str| {
        api.raw(Method::POST, path)
            .insert_header(("Content-Type", "application/json"))
    };
    for (body, what) in [
        (b"{\"name\": ".to_vec(), "truncated"),
        (b"[1, 2]".to_vec(), "an array"),
        (b"\"text\"".to_vec(), "a string"),
        (b"".to_vec(), "empty"),
        (vec![0xff, 0xfe, 0x00, 0x7b], "not UTF-8"),
        (
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
            "deep nesting",
        ),
    ] {
        let reply = api.send_raw(json_post("/connectors/TEST"), body).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        assert_eq!(reply.body["errorCode"], "MISSING_OR_INVALID_BODY", "{what}");
    }
    // Wrong types for fields are validation errors naming the field.
    let reply = api.post("/connectors/TEST", &json!({"name": ["x"]})).await;
    assert!(reply.error(400, "VALIDATION").contains("name"));
}

#[actix_rt::test]
async fn huge_bodies_are_refused_without_being_read_whole() {
    let api = Api::start().await;
    let big = format!("{{\"name\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    let reply = api
        .send_raw(
            api.raw(Method::POST, "/connectors/TEST")
                .insert_header(("Content-Type", "application/json")),
            big.into_bytes(),
        )
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.body["errorCode"], "MISSING_OR_INVALID_BODY");
}

#[actix_rt::test]
async fn a_list_query_body_is_held_to_the_same_limit_and_error() {
    let api = Api::start().await;
    let big = format!(
        "{{\"$match\": {{\"reference\": \"{}\"}}}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let reply = api
        .send_raw(
            api.raw(Method::GET, "/payments")
                .insert_header(("Content-Type", "application/json")),
            big.into_bytes(),
        )
        .await;
    assert_eq!(reply.status, 413);
    assert_eq!(reply.body["errorCode"], "MISSING_OR_INVALID_BODY");
}

#[actix_rt::test]
async fn a_body_must_be_declared_as_json_and_browsers_from_other_origins_are_refused() {
    let api = Api::start().await;
    let form = api
        .send_raw(
            api.raw(Method::POST, "/connectors/TEST")
                .insert_header(("Content-Type", "application/x-www-form-urlencoded")),
            b"name=x".to_vec(),
        )
        .await;
    assert!(
        form.error(400, "MISSING_OR_INVALID_BODY")
            .contains("Content-Type")
    );

    let id = api.install("victim").await;
    let csrf = api
        .send_raw(
            api.raw(Method::POST, &format!("/connectors/TEST/{id}/reset"))
                .insert_header(("Origin", "https://evil.example")),
            Vec::new(),
        )
        .await;
    assert_eq!(csrf.status, 403);
    assert_eq!(csrf.body["errorCode"], "FORBIDDEN");
    // Reads stay open, and the connector is untouched.
    assert_eq!(
        api.get("/connectors").await.body["data"][0]["connectorID"],
        id.as_str()
    );
}

/// Swagger UI, served by the service itself, calls the API from the service's own origin: a
/// browser sends `Origin` on a POST even then. Same-origin on a loopback host is allowed; a
/// DNS-rebound name (the attacker's host name resolving to 127.0.0.1, so Host and Origin
/// agree) is not, while authentication is off.
#[actix_rt::test]
async fn swagger_ui_on_the_service_own_loopback_origin_may_call_mutating_routes() {
    let api = Api::start().await;
    let id = api.install("swagger").await;
    let port: u16 = api
        .app
        .base
        .trim_start_matches("http://127.0.0.1:")
        .split('/')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("the service's port");
    for host in [format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let reply = api
            .send_raw(
                api.raw(Method::POST, &format!("/connectors/TEST/{id}/reset"))
                    .insert_header(("Host", host.as_str()))
                    .insert_header(("Origin", format!("http://{host}"))),
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, 204, "same origin {host}: {}", reply.body);
    }
    let rebound = format!("rebind.example:{port}");
    let reply = api
        .send_raw(
            api.raw(Method::POST, &format!("/connectors/TEST/{id}/reset"))
                .insert_header(("Host", rebound.as_str()))
                .insert_header(("Origin", format!("http://{rebound}"))),
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    // Another loopback port is another origin.
    let reply = api
        .send_raw(
            api.raw(Method::POST, &format!("/connectors/TEST/{id}/reset"))
                .insert_header(("Host", format!("127.0.0.1:{port}")))
                .insert_header((
                    "Origin",
                    format!("http://127.0.0.1:{}", port.wrapping_add(1)),
                )),
            Vec::new(),
        )
        .await;
    assert_eq!(reply.status, 403, "{}", reply.body);
}

#[actix_rt::test]
async fn unknown_routes_and_bad_parameters_are_4xx_with_formance_bodies() {
    let api = Api::start().await;
    api.get("/nowhere").await.error(404, "NOT_FOUND");
    api.get("/connectors/TEST/x/y/z/w")
        .await
        .error(404, "NOT_FOUND");
    api.get("/payments?pageSize=%FF")
        .await
        .error(400, "VALIDATION");
    api.get("/connectors/%FF%FE/config").await;
    // A crafted cursor whose bound is not a task id, and NUL bytes: 400, never 500.
    let id = api.install("probe").await;
    let crafted =
        base64_url(r#"{"s":5,"a":false,"f":{},"b":["2026-01-01T00:00:00Z","not-a-uuid"]}"#);
    let reply = api
        .get(&format!("/connectors/TEST/{id}/tasks?cursor={crafted}"))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(api.get("/payments?reference=%00").await.status, 400);
    for path in [
        "/payments?cursor=",
        "/payments?cursor=eyJzIjo1MDB9", // {"s":500}: a page size out of range
        "/accounts?pageSize=100000000000000000000",
        "/connectors/TEST/tasks?status=%00",
    ] {
        let reply = api.get(path).await;
        assert!(
            (400..500).contains(&reply.status),
            "{path}: {}",
            reply.status
        );
        assert!(
            reply.body["errorCode"].is_string(),
            "{path}: {}",
            reply.body
        );
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

/// Found by scripts/fuzz-api.sh: `POST …/reset` and `…/resume` answered 503 "database
/// unavailable during ingesting balances" because their writes shared a storage batch with an
/// ingest whose balance named an account not ingested yet. That retryable error is the ingest's
/// alone: the other writes of the batch commit.
#[actix_rt::test]
async fn a_retryable_ingest_error_is_not_answered_to_the_other_writes_of_its_batch() {
    use std::time::Duration;
    use tributary::ids::ConnectorKey;
    use tributary::sdk::ingest::{Amount, BalanceData, Batch};
    use tributary::storage::StorageHandle;
    use tributary::storage::commands::connectors::InsertConnector;
    use tributary::storage::commands::ingest::IngestBatch;

    let db = crate::helpers::TestDb::new().await;
    // A linger long enough for both writes below to share one batch.
    let storage = StorageHandle::start(db.pool(), 1000, Duration::from_millis(200));
    let insert = |name: &str| {
        let key = ConnectorKey {
            provider: "DUMMY-PAY".into(),
            reference: uuid::Uuid::new_v4(),
        };
        let row = InsertConnector {
            id: key.id(),
            reference: key.reference,
            provider: key.provider.clone(),
            name: name.into(),
            config: json!({"directory": "/tmp"}),
            declared: false,
        };
        (key, row)
    };
    let (key, row) = insert("ingesting");
    storage.write(row).await.expect("connector");
    let orphan_balance = IngestBatch {
        connector: key,
        batch: Batch {
            balances: vec![BalanceData {
                account_reference: "not-ingested-yet".into(),
                asset: "EUR/2".into(),
                balance: Amount::balance("balance", "-5").expect("amount"),
                at: chrono::Utc::now(),
            }],
            ..Batch::default()
        },
    };
    let (_, other) = insert("api-write");
    let (ingest, api_write) = futures::join!(storage.write(orphan_balance), storage.write(other));
    assert!(
        ingest.as_ref().is_err_and(|e| e.is_transient()),
        "{ingest:?}"
    );
    api_write.expect("the other write of the batch commits");
}

/// Found while fuzzing: a long, incompressible connector name (10,000 characters) was a 500
/// (its unique index entry exceeded PostgreSQL's limit). Now a 400 naming the field, on
/// install, config update and validate, and nothing is stored.
#[actix_rt::test]
async fn an_overlong_connector_name_is_a_validation_error() {
    let api = Api::start().await;
    // Incompressible, as the index limit applies after compression.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let long: String = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let install = api.post("/connectors/TEST", &json!({ "name": long })).await;
    assert!(install.error(400, "VALIDATION").contains("name"));
    assert_eq!(api.get("/connectors").await.body["data"], json!([]));

    let id = api.install("short").await;
    let update = api
        .post(
            &format!("/connectors/TEST/{id}/config"),
            &json!({ "name": long }),
        )
        .await;
    assert!(update.error(400, "VALIDATION").contains("name"));
    let validate = api
        .post(
            "/connectors/configs/TEST/validate",
            &json!({ "name": long }),
        )
        .await;
    assert_eq!(validate.body["data"]["valid"], false, "{}", validate.body);
    assert_eq!(
        api.get(&format!("/connectors/TEST/{id}/config")).await.body["data"]["name"],
        "short"
    );
    let max = "é".repeat(tributary::runtime::manager::MAX_NAME_CHARS);
    let reply = api.post("/connectors/TEST", &json!({ "name": max })).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}
