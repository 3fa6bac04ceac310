//! The guide's example connector (examples/example_connector) installs and ingests.

#[path = "../../examples/example_connector/connector.rs"]
#[allow(dead_code)]
mod connector;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{eventually, spawn_app_with};

#[actix_rt::test]
async fn the_guide_connector_installs_and_ingests_a_file() {
    let registry = tributary::runtime::Registry::new().with(Arc::new(connector::ExampleLoader));
    let app = spawn_app_with(registry).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = awc::Client::default();
    let reply = http
        .post(format!("{}/connectors/example", app.base))
        .send_json(
            &json!({"name": "demo", "directory": dir.path().to_str(), "pollingPeriod": "100ms"}),
        )
        .await
        .expect("install");
    assert_eq!(reply.status().as_u16(), 201);
    std::fs::write(
        dir.path().join("p1.json"),
        r#"{"reference":"p1","amount":4200,"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}"#,
    )
    .expect("write");
    let base = app.base.clone();
    eventually("the payment", Duration::from_secs(20), || {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let Ok(mut reply) = http.get(format!("{base}/payments")).send().await else {
                return false;
            };
            let body: Value = reply.json().await.unwrap_or_default();
            body["cursor"]["data"][0]["reference"] == "p1"
                && body["cursor"]["data"][0]["amount"] == 4200
        }
    })
    .await;
}

/// `sha256=<hex>` of the body under `secret`, as the example's provider signs.
fn sign(secret: &str, body: &[u8]) -> String {
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhooks route: no bearer token (authentication is on here), the connector verifies
/// the signature; a verified event schedules a task that ingests it; a bad signature is 401
/// and schedules nothing; an unknown connector is 404; DUMMY-PAY, without the hook, is 400
/// CONNECTOR_CAPABILITY_NOT_SUPPORTED.
#[actix_rt::test]
async fn a_signed_webhook_schedules_the_ingestion_of_its_event() {
    use crate::helpers::{TestDb, spawn_app_configured, test_settings};
    use sha2::Digest;

    let mut settings = test_settings();
    let token = "webhook-test-writer";
    settings.auth.tokens = vec![tributary::settings::StaticTokenSettings {
        name: "writer".into(),
        sha256: sha2::Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        scopes: vec!["payments:write".into()],
    }];
    let registry =
        tributary::connectors::registry(&settings).with(Arc::new(connector::ExampleLoader));
    let app = spawn_app_configured(TestDb::new().await, registry, &settings).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let http = awc::Client::default();
    let bearer = ("Authorization", format!("Bearer {token}"));
    let mut reply = http
        .post(format!("{}/connectors/example", app.base))
        .insert_header(bearer.clone())
        .send_json(&json!({"name": "hooks", "directory": dir.path().to_str(),
                           "pollingPeriod": "1h", "webhookSecret": "s3cret"}))
        .await
        .expect("install");
    assert_eq!(reply.status().as_u16(), 201);
    let installed: Value = reply.json().await.expect("json");
    let id = installed["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    let event = br#"{"reference":"wh-1","amount":1500,"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}"#;
    let post = |path: String, signature: Option<String>, body: &'static [u8]| {
        let http = http.clone();
        async move {
            let mut request = http.post(path);
            if let Some(signature) = signature {
                request = request.insert_header((connector::SIGNATURE_HEADER, signature));
            }
            let mut response = request.send_body(body).await.expect("post");
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (response.status().as_u16(), body)
        }
    };
    let route = format!("{}/connectors/webhooks/example/{id}/payments", app.base);
    let client = app.db.client().await;
    let webhook_tasks = || async {
        client
            .query_one(
                "SELECT count(*) FROM tasks WHERE connector_id = $1 \
                 AND descriptor->>'key' = 'webhook'",
                &[&id],
            )
            .await
            .expect("tasks")
            .get::<_, i64>(0)
    };

    // Bad or missing signatures: 401, nothing scheduled.
    let (status, body) = post(route.clone(), Some(sign("wrong", event)), event).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["errorCode"], "UNAUTHORIZED");
    let (status, _) = post(route.clone(), None, event).await;
    assert_eq!(status, 401);
    assert_eq!(webhook_tasks().await, 0);

    // Verified but not a payment: 400 naming why, nothing scheduled.
    let junk: &'static [u8] = br#"{"reference":"x"}"#;
    let (status, body) = post(route.clone(), Some(sign("s3cret", junk)), junk).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(webhook_tasks().await, 0);

    // Verified: 200 (no token was sent), one task, the payment ingested.
    let (status, body) = post(route.clone(), Some(sign("s3cret", event)), event).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(webhook_tasks().await, 1);
    let base = app.base.clone();
    eventually("the webhook's payment", Duration::from_secs(20), || {
        let (http, base, bearer) = (http.clone(), base.clone(), bearer.clone());
        async move {
            let Ok(mut reply) = http
                .get(format!("{base}/payments"))
                .insert_header(bearer)
                .send()
                .await
            else {
                return false;
            };
            let body: Value = reply.json().await.unwrap_or_default();
            body["cursor"]["data"][0]["reference"] == "wh-1"
                && body["cursor"]["data"][0]["amount"] == 1500
        }
    })
    .await;
    // The same event again (a provider's retry): the same task, not a second one.
    let (status, _) = post(route.clone(), Some(sign("s3cret", event)), event).await;
    assert_eq!(status, 200);
    assert_eq!(webhook_tasks().await, 1);

    // Unknown connector, wrong provider: 404. DUMMY-PAY has no hook: 400.
    let absent = tributary::ids::ConnectorKey {
        provider: "EXAMPLE".into(),
        reference: uuid::Uuid::new_v4(),
    }
    .id();
    let (status, body) = post(
        format!("{}/connectors/webhooks/example/{absent}", app.base),
        Some(sign("s3cret", event)),
        event,
    )
    .await;
    assert_eq!(
        (status, body["errorCode"].clone()),
        (404, json!("NOT_FOUND"))
    );
    let (status, _) = post(
        format!("{}/connectors/webhooks/stripe/{id}", app.base),
        Some(sign("s3cret", event)),
        event,
    )
    .await;
    assert_eq!(status, 404);
    let files = tempfile::tempdir().expect("dummypay dir");
    let mut reply = http
        .post(format!("{}/connectors/dummy-pay", app.base))
        .insert_header(bearer.clone())
        .send_json(&json!({"name": "dp", "directory": files.path().to_str()}))
        .await
        .expect("install dummypay");
    assert_eq!(reply.status().as_u16(), 201);
    let dummypay: Value = reply.json().await.expect("json");
    let dp = dummypay["data"]["connectorID"].as_str().expect("id");
    let (status, body) = post(
        format!("{}/connectors/webhooks/dummy-pay/{dp}", app.base),
        None,
        event,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["errorCode"], "CONNECTOR_CAPABILITY_NOT_SUPPORTED");
    // Audited under the principal `webhook` (no token was sent).
    let audited: i64 = client
        .query_one(
            "SELECT count(*) FROM audit_log WHERE principal = 'webhook' \
             AND route LIKE '/api/payments/connectors/webhooks/{provider}/{connectorID}/%' \
             AND connector_id = $1",
            &[&id],
        )
        .await
        .expect("audit")
        .get(0);
    assert!(audited >= 5, "{audited} audited webhook calls");
    // Every other route still needs the token.
    let (status, _) = post(format!("{}/payments", app.base), None, event).await;
    assert_eq!(status, 401);
    app.shutdown.cancel();
}
