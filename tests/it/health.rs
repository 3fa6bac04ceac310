//! The health endpoints: `_live`, `_info`, and `_health` following the database.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{eventually, spawn_app};

async fn get(url: &str) -> (u16, Value) {
    let client = awc::Client::default();
    let mut response = client.get(url).send().await.expect("request");
    let body = response.body().await.expect("body");
    (
        response.status().as_u16(),
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

#[actix_rt::test]
async fn live_and_info_answer_as_formance_does() {
    let app = spawn_app().await;
    let (status, body) = get(&format!("{}/_live", app.base)).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let (status, body) = get(&format!("{}/_info", app.base)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"version": env!("CARGO_PKG_VERSION")})
    );
    app.shutdown.cancel();
}

#[actix_rt::test]
async fn health_is_503_with_a_reason_when_the_database_is_gone() {
    let app = spawn_app().await;
    let url = format!("{}/_health", app.base);
    let (status, _) = get(&url).await;
    assert_eq!(status, 200);

    app.db.drop_now().await;
    let probe = url.clone();
    eventually("health to report 503", Duration::from_secs(15), || {
        let probe = probe.clone();
        async move { get(&probe).await.0 == 503 }
    })
    .await;
    let (status, body) = get(&url).await;
    assert_eq!(status, 503);
    assert_eq!(body["errorCode"], "UNAVAILABLE");
    let reason = body["errorMessage"].as_str().unwrap_or_default();
    assert!(reason.contains("does not exist"), "reason: {reason}");

    // The service itself stays up.
    assert_eq!(get(&format!("{}/_live", app.base)).await.0, 200);
    app.shutdown.cancel();
}
