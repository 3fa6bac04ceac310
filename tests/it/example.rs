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
