//! Webhooks out, end to end: DUMMY-PAY ingests files, the service POSTs the events to HTTP
//! receivers started here, which verify every signature with their own HMAC code (as a
//! receiver written for Formance's webhooks service would), and the Formance Webhooks v1 API
//! manages the configs and shows deliveries and attempts.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::dummypay::{drop_file, payment};
use crate::helpers::{TestApp, TestDb, eventually, spawn_app_configured, test_settings};

/// What a receiver answers to its next request.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Answers 200 only after this long (past the sender's timeout).
    Stall(Duration),
}

/// One request a receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    body: String,
    test: String,
    idempotency_key: String,
    sequence: i64,
    at: Instant,
    /// The indices of the receiver's secrets the signature verifies with.
    verified_with: Vec<usize>,
}

#[derive(Default)]
struct ReceiverState {
    secrets: Vec<String>,
    plan: VecDeque<Answer>,
    received: Vec<Received>,
}

/// An HTTP endpoint answering as planned (then 200) and recording what it got.
struct Receiver {
    url: String,
    state: Arc<Mutex<ReceiverState>>,
}

/// Formance's verification, written independently of the service's code: HMAC-SHA256 keyed
/// with the secret's text over `{id}.{timestamp}.{body}`, base64, among the `v1,` signatures
/// of the space-separated header.
fn verifies(secret: &str, id: &str, timestamp: &str, body: &str, header: &str) -> bool {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

fn header(req: &HttpRequest, name: &str) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<ReceiverState>>>,
) -> HttpResponse {
    let body = String::from_utf8_lossy(&body).into_owned();
    let id = header(&req, "formance-webhook-id");
    let timestamp = header(&req, "formance-webhook-timestamp");
    let signature = header(&req, "formance-webhook-signature");
    let answer = {
        let mut state = state.lock().expect("receiver state");
        let verified_with = state
            .secrets
            .iter()
            .enumerate()
            .filter(|(_, s)| verifies(s, &id, &timestamp, &body, &signature))
            .map(|(i, _)| i)
            .collect();
        state.received.push(Received {
            id,
            body,
            test: header(&req, "formance-webhook-test"),
            idempotency_key: header(&req, "formance-webhook-idempotency-key"),
            sequence: header(&req, "tributary-sequence").parse().unwrap_or(-1),
            at: Instant::now(),
            verified_with,
        });
        state.plan.pop_front().unwrap_or(Answer::Status(200))
    };
    match answer {
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("status"))
                .body("answer")
        }
        Answer::Stall(d) => {
            tokio::time::sleep(d).await;
            HttpResponse::Ok().finish()
        }
    }
}

impl Receiver {
    async fn start(secrets: &[&str], plan: &[Answer]) -> Receiver {
        let state = Arc::new(Mutex::new(ReceiverState {
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            plan: plan.iter().copied().collect(),
            received: Vec::new(),
        }));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(1 << 20))
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .expect("bind receiver");
        let port = server.addrs()[0].port();
        actix_rt::spawn(server.run());
        Receiver {
            url: format!("http://127.0.0.1:{port}/hooks"),
            state,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.state.lock().expect("receiver state").received.clone()
    }

    /// Requests answered 2xx so far: those not consumed by the plan's failures.
    fn count(&self) -> usize {
        self.received().len()
    }
}

/// The service with fast retries, and an HTTP client for its two APIs.
struct Service {
    app: TestApp,
    hooks: String,
    http: awc::Client,
}

impl Service {
    async fn start(configure: impl FnOnce(&mut tributary::settings::Settings)) -> Service {
        let mut settings = test_settings();
        settings.events.webhooks.retry_initial = Duration::from_millis(100);
        settings.events.webhooks.retry_max = Duration::from_secs(1);
        settings.events.webhooks.retry_horizon = Duration::from_secs(60);
        settings.events.webhooks.timeout = Duration::from_millis(300);
        configure(&mut settings);
        let app = spawn_app_configured(
            TestDb::new().await,
            tributary::connectors::registry(&settings),
            &settings,
        )
        .await;
        let hooks = app.base.replace("/api/payments", "/api/webhooks");
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        Service { app, hooks, http }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.hooks);
        let request = self
            .http
            .request(method.parse().expect("method"), url)
            .insert_header(("Idempotency-Key", "k1"));
        let mut reply = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("call");
        let bytes = reply.body().limit(16 << 20).await.expect("body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (reply.status().as_u16(), value)
    }

    async fn create(&self, endpoint: &str, types: Value, secret: Option<&str>) -> Value {
        let mut body = json!({"endpoint": endpoint, "eventTypes": types});
        if let Some(secret) = secret {
            body["secret"] = json!(secret);
        }
        let (status, reply) = self.call("POST", "/configs", Some(body)).await;
        assert_eq!(status, 200, "{reply}");
        reply["data"].clone()
    }

    /// Installs DUMMY-PAY on a fresh directory polled every 100 ms.
    async fn install(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let reply = self
            .http
            .post(format!("{}/connectors/dummy-pay", self.app.base))
            .send_json(&json!({
                "name": "files",
                "directory": dir.path().to_str().expect("utf8 path"),
                "filePollingPeriod": "100ms",
            }))
            .await
            .expect("install");
        assert_eq!(reply.status().as_u16(), 201);
        dir
    }

    async fn deliveries(&self, config_id: &str) -> Vec<Value> {
        let (status, reply) = self
            .call("GET", &format!("/deliveries?configId={config_id}"), None)
            .await;
        assert_eq!(status, 200, "{reply}");
        reply["cursor"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn attempts(&self, delivery_id: &str) -> Vec<Value> {
        let (status, reply) = self
            .call("GET", &format!("/deliveries/{delivery_id}/attempts"), None)
            .await;
        assert_eq!(status, 200, "{reply}");
        reply["cursor"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    async fn count(&self, sql: &str) -> i64 {
        self.app
            .db
            .client()
            .await
            .query_one(sql, &[])
            .await
            .expect("count")
            .get(0)
    }
}

fn secret_of(config: &Value) -> String {
    config["secret"].as_str().expect("secret").to_string()
}

#[actix_rt::test]
async fn failing_and_slow_endpoints_are_retried_with_growing_delays_then_succeed() {
    let service = Service::start(|_| {}).await;
    // The secrets are generated by the service; the receivers learn them from its answer.
    let flaky = Receiver::start(
        &[],
        &[
            Answer::Status(500),
            Answer::Status(500),
            Answer::Status(500),
        ],
    )
    .await;
    let slow = Receiver::start(&[], &[Answer::Stall(Duration::from_secs(2))]).await;
    let a = service
        .create(&flaky.url, json!(["SAVED_PAYMENT"]), None)
        .await;
    let b = service
        .create(&slow.url, json!(["payments.saved_payment"]), None)
        .await;
    assert_eq!(a["eventTypes"], json!(["payments.saved_payment"]), "{a}");
    assert_eq!(a["active"], true);
    flaky.state.lock().expect("state").secrets = vec![secret_of(&a)];
    slow.state.lock().expect("state").secrets = vec![secret_of(&b)];

    let dir = service.install().await;
    drop_file(dir.path(), "p1.json", &payment("p1", "100", "SUCCEEDED"));

    // Done once both deliveries are recorded as succeeded (the receivers see the last
    // request a moment before the service records its answer).
    let (a_id, b_id) = (
        a["id"].as_str().expect("id").to_string(),
        b["id"].as_str().expect("id").to_string(),
    );
    eventually(
        "both deliveries to succeed",
        Duration::from_secs(60),
        || async {
            let done = |d: Vec<Value>| d.len() == 1 && d[0]["status"] == "succeeded";
            done(service.deliveries(&a_id).await) && done(service.deliveries(&b_id).await)
        },
    )
    .await;
    assert_eq!((flaky.count(), slow.count()), (4, 2));
    let got = flaky.received();
    for r in got.iter().chain(slow.received().iter()) {
        assert_eq!(r.verified_with, [0], "every attempt verifies: {r:?}");
        assert_eq!(r.test, "false");
        let body: Value = serde_json::from_str(&r.body).expect("json body");
        assert_eq!(body["type"], "payments.saved_payment", "{body}");
        assert_eq!(body["app"], "payments");
        assert_eq!(body["payload"]["reference"], "p1", "{body}");
        assert!(r.sequence >= 1, "{r:?}");
    }
    // One delivery: the same id, body and idempotency key at every attempt.
    assert!(
        got.iter()
            .all(|r| r.id == got[0].id && r.body == got[0].body)
    );
    assert!(
        got.iter()
            .all(|r| r.idempotency_key == got[0].idempotency_key)
    );
    // Growing delays: 100 ms, 200 ms, 400 ms (less up to 20 % of jitter).
    let gaps: Vec<Duration> = got.windows(2).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps[0] >= Duration::from_millis(80), "{gaps:?}");
    assert!(gaps[1] > gaps[0] && gaps[2] > gaps[1], "{gaps:?}");

    // The attempts, through the API.
    let deliveries = service.deliveries(a["id"].as_str().expect("id")).await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    let delivery = &deliveries[0];
    assert_eq!(delivery["status"], "succeeded", "{delivery}");
    assert_eq!(delivery["attemptCount"], 4);
    assert_eq!(delivery["id"], got[0].id.as_str());
    assert_eq!(delivery["eventType"], "payments.saved_payment");
    let delivery_id = delivery["id"].as_str().expect("id").to_string();
    let attempts = service.attempts(&delivery_id).await;
    let outcomes: Vec<(&str, i64)> = attempts
        .iter()
        .map(|a| {
            (
                a["outcome"].as_str().unwrap_or_default(),
                a["statusCode"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("retryable_failure", 500),
            ("retryable_failure", 500),
            ("retryable_failure", 500),
            ("succeeded", 200)
        ]
    );
    let numbers: Vec<i64> = attempts
        .iter()
        .map(|a| a["attemptNumber"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4]);

    // The slow one: a timeout (no status), then success.
    let slow_delivery = &service.deliveries(b["id"].as_str().expect("id")).await[0];
    let slow_attempts = service
        .attempts(slow_delivery["id"].as_str().expect("id"))
        .await;
    assert_eq!(slow_attempts.len(), 2, "{slow_attempts:?}");
    assert_eq!(slow_attempts[0]["statusCode"], 0);
    assert!(
        slow_attempts[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("timed out"),
        "{}",
        slow_attempts[0]
    );
    assert_eq!(slow_attempts[1]["outcome"], "succeeded");

    // A replay sends it again, signed, recorded as a fifth attempt of a new generation.
    let (status, replayed) = service
        .call("POST", &format!("/deliveries/{delivery_id}/replay"), None)
        .await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["data"]["status"], "succeeded");
    assert_eq!(replayed["data"]["replayGeneration"], 1);
    assert!(replayed["data"]["payload"].is_string());
    let again = flaky.received();
    assert_eq!(again.len(), 5);
    assert_eq!(again[4].id, delivery_id);
    assert_eq!(again[4].body, got[0].body);
    assert_eq!(again[4].verified_with, [0]);
    let attempts = service.attempts(&delivery_id).await;
    assert_eq!(attempts.len(), 5);
    assert_eq!(attempts[4]["replayGeneration"], 1);
    service.app.shutdown.cancel();
}

/// A port nobody listens on: a dead endpoint.
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[actix_rt::test]
async fn a_dead_endpoint_fails_at_the_horizon_and_holds_up_no_other() {
    let service = Service::start(|s| {
        // Long enough that the first event's first attempt falls inside it on a loaded
        // machine; the second event, tried only once the first has failed, may get one.
        s.events.webhooks.retry_horizon = Duration::from_secs(3);
    })
    .await;
    let dead_port = unused_port();
    let dead = service
        .create(
            &format!("http://127.0.0.1:{dead_port}/hooks?token=s3cret"),
            json!(["SAVED_PAYMENT"]),
            None,
        )
        .await;
    let alive = Receiver::start(&[], &[]).await;
    let good = service
        .create(&alive.url, json!(["SAVED_PAYMENT"]), None)
        .await;
    alive.state.lock().expect("state").secrets = vec![secret_of(&good)];

    let dir = service.install().await;
    drop_file(dir.path(), "p1.json", &payment("p1", "100", "SUCCEEDED"));
    drop_file(dir.path(), "p2.json", &payment("p2", "200", "SUCCEEDED"));
    eventually(
        "the live endpoint to get both",
        Duration::from_secs(20),
        || async { alive.count() == 2 },
    )
    .await;
    let dead_id = dead["id"].as_str().expect("id").to_string();
    eventually(
        "the dead endpoint's deliveries to fail",
        Duration::from_secs(30),
        || async {
            let d = service.deliveries(&dead_id).await;
            d.len() == 2 && d.iter().all(|d| d["status"] == "failed")
        },
    )
    .await;
    let mut most = 0;
    for delivery in service.deliveries(&dead_id).await {
        let attempts = service.attempts(delivery["id"].as_str().expect("id")).await;
        // Delays of at least 80, 160, 320, 640, 800, 800 ms (100 ms doubling, capped at 1 s,
        // jitter shortening by up to 20 %): at most 7 attempts fit in 3 s; slower attempts
        // (a loaded machine) fit fewer.
        assert!(
            (1..=7).contains(&attempts.len()),
            "{}: {attempts:?}",
            attempts.len()
        );
        most = most.max(attempts.len());
        let last = attempts.last().expect("an attempt");
        assert_eq!(last["outcome"], "permanent_failure", "{last}");
        assert!(
            attempts
                .iter()
                .all(|a| a["statusCode"] == 0 && a["error"].is_string())
        );
        // The error says why, never the URL (its token).
        let error = attempts[0]["error"].as_str().unwrap_or_default();
        assert!(error.contains("refused"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
    assert!(most >= 2, "the first event is retried before its horizon");
    service.app.shutdown.cancel();
}

#[actix_rt::test]
async fn failed_deliveries_are_replayed_in_bulk_to_an_updated_endpoint() {
    let service = Service::start(|s| {
        s.events.webhooks.retry_horizon = Duration::from_millis(300);
    })
    .await;
    let dead_port = unused_port();
    let config = service
        .create(
            &format!("http://127.0.0.1:{dead_port}/hooks"),
            json!(["SAVED_PAYMENT"]),
            None,
        )
        .await;
    let id = config["id"].as_str().expect("id").to_string();
    let since = chrono::Utc::now() - chrono::TimeDelta::minutes(1);
    let dir = service.install().await;
    for (i, reference) in ["p1", "p2", "p3"].iter().enumerate() {
        let amount = (100 * (i + 1)).to_string();
        drop_file(
            dir.path(),
            &format!("{reference}.json"),
            &payment(reference, &amount, "SUCCEEDED"),
        );
    }
    eventually(
        "three failed deliveries",
        Duration::from_secs(30),
        || async {
            let d = service.deliveries(&id).await;
            d.len() == 3 && d.iter().all(|d| d["status"] == "failed")
        },
    )
    .await;

    // Bad input names the field; nothing is sent.
    for (body, field) in [
        (json!({}), "createdAtFrom"),
        (
            json!({"createdAtFrom": since, "statuses": ["succeeded"]}),
            "statuses",
        ),
        (json!({"createdAtFrom": since, "pageSize": 0}), "pageSize"),
        (
            json!({"createdAtFrom": since, "configIds": ["x"]}),
            "configIds",
        ),
        (
            json!({"createdAtFrom": since, "cursor": "bm9wZQ"}),
            "cursor",
        ),
        (json!({"createdAtFrom": "2020-01-01T00:00:00Z"}), "90 days"),
    ] {
        let (status, reply) = service.call("POST", "/deliveries/replay", Some(body)).await;
        assert_eq!(status, 400, "{reply}");
        let message = reply["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field}: {message}");
    }

    // The endpoint is moved to a live receiver (the secret stays), then the failed deliveries
    // are replayed in pages of two.
    let alive = Receiver::start(&[], &[]).await;
    alive.state.lock().expect("state").secrets = vec![secret_of(&config)];
    let (status, reply) = service
        .call(
            "PUT",
            &format!("/configs/{id}"),
            Some(json!({"endpoint": alive.url, "eventTypes": ["SAVED_PAYMENT"]})),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = service
        .call(
            "PUT",
            &format!("/configs/{}", uuid::Uuid::new_v4()),
            Some(json!({"endpoint": alive.url, "eventTypes": ["SAVED_PAYMENT"]})),
        )
        .await;
    assert_eq!(status, 404, "{reply}");
    let (status, first) = service
        .call(
            "POST",
            "/deliveries/replay",
            Some(json!({"createdAtFrom": since, "configIds": [id], "pageSize": 2})),
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["data"]["replayed"], 2, "{first}");
    assert_eq!(first["data"]["hasMore"], true, "{first}");
    let cursor = first["data"]["nextCursor"].as_str().expect("nextCursor");
    let (status, second) = service
        .call(
            "POST",
            "/deliveries/replay",
            Some(
                json!({"createdAtFrom": since, "configIds": [id], "pageSize": 2,
                "cursor": cursor}),
            ),
        )
        .await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["data"]["replayed"], 1, "{second}");
    assert_eq!(second["data"]["hasMore"], false, "{second}");
    assert_eq!(second["data"]["createdAtTo"], first["data"]["createdAtTo"]);

    eventually(
        "the three at the new endpoint",
        Duration::from_secs(30),
        || async { alive.count() == 3 },
    )
    .await;
    eventually(
        "three succeeded deliveries",
        Duration::from_secs(30),
        || async {
            let d = service.deliveries(&id).await;
            d.len() == 3 && d.iter().all(|d| d["status"] == "succeeded")
        },
    )
    .await;
    let got = alive.received();
    let references: HashSet<String> = got
        .iter()
        .map(|r| {
            let body: Value = serde_json::from_str(&r.body).expect("json");
            body["payload"]["reference"]
                .as_str()
                .expect("ref")
                .to_string()
        })
        .collect();
    assert_eq!(references.len(), 3, "each payment once");
    assert!(got.iter().all(|r| r.verified_with == [0]));
    for delivery in service.deliveries(&id).await {
        assert_eq!(delivery["replayGeneration"], 1, "{delivery}");
    }

    // Nothing left to replay: the same window answers an empty page.
    let (status, again) = service
        .call(
            "POST",
            "/deliveries/replay",
            Some(json!({"createdAtFrom": since, "configIds": [id]})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["data"]["replayed"], 0, "{again}");
    service.app.shutdown.cancel();
}

#[actix_rt::test]
async fn after_a_secret_change_deliveries_verify_with_the_new_secret_only() {
    let service = Service::start(|_| {}).await;
    let old = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX"; // base64 of bytes 0..24
    let receiver = Receiver::start(&[old], &[]).await;
    let config = service
        .create(&receiver.url, json!(["SAVED_PAYMENT"]), Some(old))
        .await;
    assert_eq!(config["secret"], old);
    let id = config["id"].as_str().expect("id").to_string();

    let dir = service.install().await;
    drop_file(dir.path(), "p1.json", &payment("p1", "100", "SUCCEEDED"));
    eventually("the first event", Duration::from_secs(20), || async {
        receiver.count() == 1
    })
    .await;

    // A bad secret is refused, naming the field; then the secret is changed (generated).
    let (status, reply) = service
        .call(
            "PUT",
            &format!("/configs/{id}/secret/change"),
            Some(json!({"secret": "c2hvcnQ="})),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("secret")
    );
    let (status, changed) = service
        .call(
            "PUT",
            &format!("/configs/{id}/secret/change"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{changed}");
    let new = secret_of(&changed["data"]);
    assert_ne!(new, old);
    receiver.state.lock().expect("state").secrets = vec![old.to_string(), new];

    drop_file(dir.path(), "p2.json", &payment("p2", "200", "SUCCEEDED"));
    eventually("the second event", Duration::from_secs(20), || async {
        receiver.count() == 2
    })
    .await;
    let got = receiver.received();
    assert_eq!(got[0].verified_with, [0], "before: the old secret");
    assert_eq!(got[1].verified_with, [1], "after: the new secret only");

    // The test endpoint signs with it too.
    let (status, test) = service
        .call("GET", &format!("/configs/{id}/test"), None)
        .await;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["data"]["status"], "success", "{test}");
    assert_eq!(test["data"]["statusCode"], 200);
    let got = receiver.received();
    assert_eq!(got[2].test, "true");
    assert_eq!(
        got[2].sequence, -1,
        "a test request carries no event headers"
    );
    assert_eq!(got[2].body, r#"{"data":"test"}"#);
    assert_eq!(got[2].verified_with, [1]);
    service.app.shutdown.cancel();
}

#[actix_rt::test]
async fn bad_configs_are_refused_naming_the_field() {
    let service = Service::start(|_| {}).await;
    for (body, field) in [
        (json!({"eventTypes": ["SAVED_PAYMENT"]}), "endpoint"),
        (
            json!({"endpoint": "ftp://x.example", "eventTypes": ["SAVED_PAYMENT"]}),
            "endpoint",
        ),
        (
            json!({"endpoint": "not a url", "eventTypes": ["SAVED_PAYMENT"]}),
            "endpoint",
        ),
        (json!({"endpoint": "https://x.example"}), "eventTypes"),
        (
            json!({"endpoint": "https://x.example", "eventTypes": []}),
            "eventTypes",
        ),
        (
            json!({"endpoint": "https://x.example", "eventTypes": ["ledger.committed_transactions"]}),
            "eventTypes[0]",
        ),
        (
            json!({"endpoint": "https://x.example", "eventTypes": ["SAVED_PAYMENT"], "secret": "nope!"}),
            "secret",
        ),
        (
            json!({"endpoint": "https://x.example", "eventTypes": ["SAVED_PAYMENT"], "extra": 1}),
            "extra",
        ),
    ] {
        let (status, reply) = service.call("POST", "/configs", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["errorCode"], "VALIDATION", "{reply}");
        assert!(
            reply["errorMessage"].as_str().unwrap_or("").contains(field),
            "{body}: {reply}"
        );
    }
    let missing = "4997257d-dfb6-445b-929c-cbe2ab182818";
    for (method, path) in [
        ("PUT", format!("/configs/{missing}/activate")),
        ("DELETE", format!("/configs/{missing}")),
        ("GET", format!("/deliveries/{missing}")),
        ("POST", format!("/deliveries/{missing}/replay")),
    ] {
        let (status, reply) = service.call(method, &path, None).await;
        assert_eq!(status, 404, "{method} {path}: {reply}");
        assert_eq!(reply["errorCode"], "NOT_FOUND");
    }
    service.app.shutdown.cancel();
}

#[actix_rt::test]
async fn a_thousand_files_reach_every_active_endpoint_once_in_connector_order() {
    // A loaded machine may answer slower than the other tests' 300 ms timeout, and a timed-out
    // delivery is sent again (same id: at least once); this test is about order and count.
    let service = Service::start(|s| s.events.webhooks.timeout = Duration::from_secs(10)).await;
    let first = Receiver::start(&[], &[]).await;
    let second = Receiver::start(&[], &[]).await;
    let inactive = Receiver::start(&[], &[]).await;
    for receiver in [&first, &second, &inactive] {
        let config = service
            .create(&receiver.url, json!(["SAVED_PAYMENT"]), None)
            .await;
        receiver.state.lock().expect("state").secrets = vec![secret_of(&config)];
        if std::ptr::eq(receiver, &inactive) {
            let id = config["id"].as_str().expect("id");
            let (status, reply) = service
                .call("PUT", &format!("/configs/{id}/deactivate"), None)
                .await;
            assert_eq!(status, 200, "{reply}");
            assert_eq!(reply["data"]["active"], false);
        }
    }
    let dir = service.install().await;
    let files = 1000;
    for i in 0..files {
        drop_file(
            dir.path(),
            &format!("p{i:04}.json"),
            &payment(&format!("p{i:04}"), "100", "SUCCEEDED"),
        );
    }
    eventually(
        "1,000 events at both endpoints",
        Duration::from_secs(600),
        || async { first.count() >= files && second.count() >= files },
    )
    .await;
    for receiver in [&first, &second] {
        let got = receiver.received();
        assert_eq!(got.len(), files, "no duplicate");
        let ids: HashSet<&str> = got.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids.len(), files, "distinct deliveries");
        let references: HashSet<String> = got
            .iter()
            .map(|r| {
                let body: Value = serde_json::from_str(&r.body).expect("json");
                assert_eq!(body["type"], "payments.saved_payment");
                body["payload"]["reference"]
                    .as_str()
                    .expect("ref")
                    .to_string()
            })
            .collect();
        assert_eq!(references.len(), files, "one per payment");
        assert!(got.iter().all(|r| r.verified_with == [0]));
        assert!(
            got.windows(2).all(|w| w[0].sequence < w[1].sequence),
            "in the connector's order"
        );
    }

    // Re-ingesting the same files (rewritten: a new signature, the same payments) emits
    // nothing: once every file is recorded again and both publishers passed the outbox head,
    // no endpoint got more.
    let client = service.app.db.client().await;
    let before: chrono::DateTime<chrono::Utc> = client
        .query_one("SELECT now()", &[])
        .await
        .expect("now")
        .get(0);
    for i in 0..files {
        let path = dir.path().join(format!("p{i:04}.json"));
        std::fs::write(&path, payment(&format!("p{i:04}"), "100", "SUCCEEDED")).expect("write");
        let file = std::fs::File::options()
            .write(true)
            .open(&path)
            .expect("open");
        file.set_modified(std::time::SystemTime::now() - Duration::from_secs(30))
            .expect("mtime");
    }
    eventually("every file re-read", Duration::from_secs(600), || async {
        let n: i64 = client
            .query_one(
                "SELECT count(*) FROM connector_kv WHERE key LIKE 'file:%' AND updated_at > $1",
                &[&before],
            )
            .await
            .expect("count")
            .get(0);
        n == files as i64
    })
    .await;
    eventually(
        "both publishers at the head",
        Duration::from_secs(30),
        || async {
            service
                .count(
                    "SELECT count(*) FROM event_cursors WHERE publisher LIKE 'webhook:%'
                 AND position >= (SELECT max(position) FROM events)",
                )
                .await
                == 2
        },
    )
    .await;
    let saved: Vec<Value> =
        tributary::storage::queries::events::after(&service.app.db.pool(), 0, 1_000_000)
            .await
            .expect("the outbox")
            .events
            .iter()
            .filter(|e| e.event_type == "SAVED_PAYMENT")
            .map(|e| serde_json::from_str(&e.envelope).expect("JSON"))
            .collect();
    let mut per_reference: std::collections::HashMap<String, Vec<&Value>> = Default::default();
    for envelope in &saved {
        let reference = envelope["payload"]["reference"]
            .as_str()
            .unwrap_or_default();
        per_reference
            .entry(reference.to_string())
            .or_default()
            .push(envelope);
    }
    let repeated: Vec<_> = per_reference.values().filter(|v| v.len() > 1).collect();
    assert_eq!(
        saved.len(),
        files,
        "payments with more than one SAVED_PAYMENT: {repeated:#?}"
    );
    assert_eq!(first.count(), files);
    assert_eq!(second.count(), files);
    assert_eq!(inactive.count(), 0, "an inactive config gets nothing");
    service.app.shutdown.cancel();
}

#[actix_rt::test]
async fn secrets_are_sealed_at_rest_and_follow_a_key_rotation() {
    let keys = tempfile::tempdir().expect("keys dir");
    let key_file = keys.path().join("encryption.key");
    tributary::secrets::keyring::create_key_file(&key_file).expect("key file");
    let service = Service::start(|s| s.encryption.key_file = key_file.clone()).await;
    let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
    let receiver = Receiver::start(&[secret], &[]).await;
    let config = service
        .create(&receiver.url, json!(["SAVED_PAYMENT"]), Some(secret))
        .await;
    let id = config["id"].as_str().expect("id").to_string();
    let stored = |sql: &'static str| {
        let service = &service;
        async move {
            service
                .app
                .db
                .client()
                .await
                .query_one(sql, &[])
                .await
                .expect("row")
                .get::<_, String>(0)
        }
    };
    let at_rest = stored("SELECT secret::text FROM webhook_configs").await;
    assert!(
        at_rest.contains("$encrypted") && !at_rest.contains(secret),
        "{at_rest}"
    );

    // rotate-key's pass seals it again under the new key, and nothing else uses the old one.
    let new_kid = tributary::secrets::keyring::add_key(&key_file).expect("add key");
    let vault = tributary::secrets::Vault::from_settings(&key_file, keys.path()).expect("vault");
    let settings = test_settings();
    let done = tributary::secrets::rotate::reencrypt(
        &service.app.db.pool(),
        &vault,
        &tributary::connectors::registry(&settings),
    )
    .await
    .expect("rotate");
    assert_eq!(
        (done.webhook_configs, done.webhook_configs_resealed),
        (1, 1)
    );
    assert_eq!(done.kids_in_use.keys().collect::<Vec<_>>(), [&new_kid]);
    let after = stored("SELECT secret::text FROM webhook_configs").await;
    assert!(after.contains(&new_kid), "{after}");

    // The running service still signs with it.
    let dir = service.install().await;
    drop_file(dir.path(), "p1.json", &payment("p1", "100", "SUCCEEDED"));
    eventually("the event", Duration::from_secs(20), || async {
        receiver.count() == 1
    })
    .await;
    assert_eq!(receiver.received()[0].verified_with, [0]);
    let (status, listed) = service
        .call("GET", &format!("/configs?id={id}"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(listed["cursor"]["data"][0]["secret"], secret);
    service.app.shutdown.cancel();
}

/// A replay decides the delivery's state against the stored row, not the one it read before
/// sending (the sink may have moved it on meanwhile): a failed replay changes nothing but the
/// attempt count; a success is final.
#[actix_rt::test]
async fn a_failed_replay_never_overrides_what_the_sink_stored_meanwhile() {
    use tributary::storage::StorageHandle;
    use tributary::storage::commands::webhooks::{DeliveryKey, RecordAttempt};

    let db = TestDb::new().await;
    let storage = StorageHandle::start(db.pool(), 100, Duration::ZERO);
    let key = DeliveryKey {
        id: uuid::Uuid::new_v4(),
        config_id: uuid::Uuid::new_v4(),
        event_id: uuid::Uuid::new_v4(),
        event_type: "payments.saved_payment".into(),
        connector_id: "c".into(),
        sequence: 1,
        payload: "{}".into(),
    };
    let started = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let record =
        |status: &'static str, replay: bool, next: Option<chrono::DateTime<chrono::Utc>>| {
            RecordAttempt {
                delivery: key.clone(),
                replay,
                attempt_id: uuid::Uuid::new_v4(),
                endpoint: "http://127.0.0.1:9/hooks".into(),
                outcome: if status == "succeeded" {
                    "succeeded"
                } else {
                    "retryable_failure"
                },
                status_code: if status == "succeeded" { 200 } else { 500 },
                error: None,
                duration_millis: 1,
                response_excerpt: None,
                status,
                next_attempt_at: next,
                cycle_started_at: if replay { chrono::Utc::now() } else { started },
            }
        };
    let state = || async {
        let row = db
            .client()
            .await
            .query_one(
                "SELECT status, next_attempt_at IS NULL, attempt_count, replay_generation,
                        cycle_started_at = $1
                 FROM webhook_deliveries",
                &[&started],
            )
            .await
            .expect("delivery");
        (
            row.get::<_, String>(0),
            row.get::<_, bool>(1),
            row.get::<_, i32>(2),
            row.get::<_, i32>(3),
            row.get::<_, bool>(4),
        )
    };
    let soon = Some(chrono::Utc::now() + chrono::TimeDelta::minutes(5));
    // The sink gave up; a replay that read it while still pending then fails.
    storage
        .write(record("failed", false, None))
        .await
        .expect("sink");
    storage
        .write(record("pending", true, soon))
        .await
        .expect("replay");
    assert_eq!(state().await, ("failed".into(), true, 2, 1, true));
    // The sink retries it (pending, a next attempt due); a replay that read it failed fails.
    storage
        .write(record("pending", false, soon))
        .await
        .expect("sink");
    storage
        .write(record("failed", true, None))
        .await
        .expect("replay");
    assert_eq!(state().await, ("pending".into(), false, 4, 2, true));
    // A successful replay is final: nothing after it downgrades it or schedules it again.
    storage
        .write(record("succeeded", true, None))
        .await
        .expect("replay");
    storage
        .write(record("pending", false, soon))
        .await
        .expect("sink");
    assert_eq!(state().await.0, "succeeded");
    assert!(state().await.1, "no next attempt after a success");
}

/// Activations and deactivations of one config sent at once, in random order, over and over:
/// whatever order they land in, the config ends with a cursor exactly when it is active, and
/// events reach its endpoint exactly when it is (the manager reconciles from the database,
/// one config at a time).
#[actix_rt::test]
async fn interleaved_activations_and_deactivations_end_in_the_state_last_written() {
    use rand::{Rng, SeedableRng};

    let service = Service::start(|_| {}).await;
    let receiver = Receiver::start(&[], &[]).await;
    let config = service
        .create(&receiver.url, json!(["SAVED_PAYMENT"]), None)
        .await;
    receiver.state.lock().expect("state").secrets = vec![secret_of(&config)];
    let id = config["id"].as_str().expect("id").to_string();
    let dir = service.install().await;
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut delivered = 0;
    for round in 0..6 {
        let calls: Vec<bool> = (0..8).map(|_| rng.random_bool(0.5)).collect();
        let paths: Vec<String> = calls
            .iter()
            .map(|&on| {
                format!(
                    "/configs/{id}/{}",
                    if on { "activate" } else { "deactivate" }
                )
            })
            .collect();
        let requests = paths.iter().map(|path| service.call("PUT", path, None));
        for (status, reply) in futures::future::join_all(requests).await {
            assert_eq!(status, 200, "seed {seed}: {reply}");
        }
        let (_, listed) = service
            .call("GET", &format!("/configs?id={id}"), None)
            .await;
        let active = listed["cursor"]["data"][0]["active"] == true;
        let cursors = service
            .count(&format!(
                "SELECT count(*) FROM event_cursors WHERE publisher = 'webhook:{id}'"
            ))
            .await;
        assert_eq!(
            cursors,
            i64::from(active),
            "seed {seed}, round {round}: {calls:?}"
        );
        // A payment now: delivered exactly when the config ended active.
        let reference = format!("r{round}");
        drop_file(
            dir.path(),
            &format!("{reference}.json"),
            &payment(&reference, "100", "SUCCEEDED"),
        );
        eventually("the payment stored", Duration::from_secs(20), || async {
            service
                .count(&format!(
                    "SELECT count(*) FROM events e
                     JOIN payment_adjustments a ON a.id = e.adjustment_id
                     JOIN payments p ON p.id = a.payment_id WHERE p.reference = '{reference}'"
                ))
                .await
                == 1
        })
        .await;
        if active {
            delivered += 1;
            eventually("the event delivered", Duration::from_secs(20), || async {
                receiver.count() == delivered
            })
            .await;
        }
        // An inactive round's event is never sent: a later activation starts at the outbox
        // head, past it (checked by the count below).
    }
    // Active again, one more payment: once it has arrived, any publisher still running would
    // have sent the inactive rounds' events too. Nothing beyond the active rounds' arrived.
    let (status, reply) = service
        .call("PUT", &format!("/configs/{id}/activate"), None)
        .await;
    assert_eq!(status, 200, "{reply}");
    drop_file(
        dir.path(),
        "last.json",
        &payment("last", "100", "SUCCEEDED"),
    );
    eventually(
        "the last event delivered",
        Duration::from_secs(20),
        || async {
            receiver
                .received()
                .iter()
                .any(|r| r.body.contains("\"last\""))
        },
    )
    .await;
    assert_eq!(receiver.count(), delivered + 1, "seed {seed}");
    service.app.shutdown.cancel();
}
