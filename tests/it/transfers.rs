//! Transfer initiations end to end through HTTP, executed by DUMMY-PAY: the state machine with
//! its illegal transitions, parallel approve/retry/reverse requests (exactly one acts), a
//! retry after FAILED, partial then full reversal, `scheduledAt` in the future, an unsupported
//! asset, a connector without money out.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tributary::ids::{AccountKey, ConnectorKey};
use tributary::sdk::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, Loader, Task, TaskError,
};

use crate::helpers::{TestApp, eventually, spawn_app, spawn_app_with, test_settings};

/// A service with a DUMMY-PAY connector and two accounts of it.
pub struct Setup {
    pub app: TestApp,
    pub dir: tempfile::TempDir,
    pub connector_id: String,
    pub internal: String,
    pub external: String,
    pub http: awc::Client,
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(60))
        .finish()
}

/// Inserts an account of `connector_id` (as ingestion would) and returns its id.
pub async fn account(app: &TestApp, connector_id: &str, reference: &str, kind: &str) -> String {
    let id = AccountKey {
        connector: ConnectorKey::parse(connector_id).expect("connector id"),
        reference: reference.to_string(),
    }
    .id();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO accounts (id, connector_id, reference, created_at, type)
             VALUES ($1, $2, $3, now(), $4)",
            &[&id, &connector_id, &reference, &kind],
        )
        .await
        .expect("insert account");
    id
}

impl Setup {
    pub async fn start() -> Setup {
        Self::on(spawn_app().await).await
    }

    pub async fn on(app: TestApp) -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        let http = client();
        let (status, body) = call(
            &http,
            http.post(format!("{}/connectors/dummy-pay", app.base)),
            Some(
                json!({"name": "pay", "directory": dir.path().to_str().expect("utf8"),
                        "filePollingPeriod": "100ms"}),
            ),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let connector_id = body["data"]["connectorID"]
            .as_str()
            .expect("id")
            .to_string();
        let internal = account(&app, &connector_id, "main", "INTERNAL").await;
        let external = account(&app, &connector_id, "supplier", "EXTERNAL").await;
        Setup {
            app,
            dir,
            connector_id,
            internal,
            external,
            http,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app.base)
    }

    /// A create body.
    pub fn initiation(&self, reference: &str, kind: &str, amount: u64, validated: bool) -> Value {
        let destination = if kind == "TRANSFER" {
            &self.internal
        } else {
            &self.external
        };
        json!({
            "reference": reference, "type": kind, "amount": amount, "asset": "EUR/2",
            "validated": validated, "connectorID": self.connector_id,
            "sourceAccountID": self.internal, "destinationAccountID": destination,
            "description": "test", "scheduledAt": "2020-01-01T00:00:00Z",
            "metadata": {"order": "42"},
        })
    }

    pub async fn create(&self, body: Value) -> (u16, Value) {
        call(
            &self.http,
            self.http.post(self.url("/transfer-initiations")),
            Some(body),
        )
        .await
    }

    pub async fn get(&self, id: &str) -> (u16, Value) {
        call(
            &self.http,
            self.http
                .get(self.url(&format!("/transfer-initiations/{id}"))),
            None,
        )
        .await
    }

    pub async fn post(&self, id: &str, action: &str, body: Option<Value>) -> (u16, Value) {
        call(
            &self.http,
            self.http
                .post(self.url(&format!("/transfer-initiations/{id}/{action}"))),
            body,
        )
        .await
    }

    pub async fn status(&self, id: &str) -> String {
        let (code, body) = self.get(id).await;
        assert_eq!(code, 200, "{body}");
        body["data"]["status"].as_str().expect("status").to_string()
    }

    pub fn outbox(&self) -> Vec<String> {
        outbox(self.dir.path())
    }
}

/// The names in `<dir>/outbox`, sorted.
pub fn outbox(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("outbox"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub async fn call(
    _http: &awc::Client,
    request: awc::ClientRequest,
    body: Option<Value>,
) -> (u16, Value) {
    let mut reply = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .expect("request");
    let status = reply.status().as_u16();
    let bytes = reply.body().limit(1 << 20).await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (status, body)
}

fn statuses(initiation: &Value) -> Vec<String> {
    initiation["relatedAdjustments"]
        .as_array()
        .expect("adjustments")
        .iter()
        .map(|a| a["status"].as_str().expect("status").to_string())
        .collect()
}

#[actix_rt::test]
async fn a_validated_transfer_is_sent_by_dummypay_and_its_payment_linked() {
    let s = Setup::start().await;
    let (code, body) = s.create(s.initiation("t-1", "TRANSFER", 1234, true)).await;
    assert_eq!(code, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["status"], "PROCESSED", "{body}");
    assert_eq!(data["amount"], 1234);
    assert_eq!(data["initialAmount"], 1234);
    assert_eq!(data["provider"], "DUMMY-PAY");
    assert_eq!(
        statuses(data),
        [
            "PROCESSED",
            "PROCESSING",
            "VALIDATED",
            "WAITING_FOR_VALIDATION"
        ]
    );
    assert_eq!(s.outbox(), ["t-1.json"]);
    let instruction: Value = serde_json::from_slice(
        &std::fs::read(s.dir.path().join("outbox/t-1.json")).expect("instruction"),
    )
    .expect("json");
    assert_eq!(instruction["amount"], 1234);
    assert_eq!(instruction["destination"], "main");
    let related = data["relatedPayments"].as_array().expect("payments");
    assert_eq!(related.len(), 1, "{body}");
    assert_eq!(related[0]["status"], "SUCCEEDED");
    let payment_id = related[0]["paymentID"].as_str().expect("payment id");
    let (code, payment) = call(
        &s.http,
        s.http.get(s.url(&format!("/payments/{payment_id}"))),
        None,
    )
    .await;
    assert_eq!(code, 200, "{payment}");
    assert_eq!(payment["data"]["type"], "TRANSFER");
    assert_eq!(payment["data"]["status"], "SUCCEEDED");
    assert_eq!(payment["data"]["reference"], "t-1");
    // The instruction in the outbox is never ingested as a payment of its own: a file dropped
    // after it is ingested (so the directory was listed since), and nothing else is.
    crate::dummypay::drop_file(
        s.dir.path(),
        "later.json",
        &crate::dummypay::payment("later", "1", "SUCCEEDED"),
    );
    let count = || async {
        let n: i64 = s
            .app
            .db
            .client()
            .await
            .query_one("SELECT count(*) FROM payments", &[])
            .await
            .expect("count")
            .get(0);
        n
    };
    eventually(
        "the later file is ingested",
        Duration::from_secs(10),
        || async { count().await >= 2 },
    )
    .await;
    assert_eq!(count().await, 2);
    // Listed, with a page envelope.
    let (code, list) = call(&s.http, s.http.get(s.url("/transfer-initiations")), None).await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list["cursor"]["data"][0]["id"], data["id"]);
}

#[actix_rt::test]
async fn the_state_machine_refuses_illegal_transitions_naming_the_status() {
    let s = Setup::start().await;
    let (code, body) = s.create(s.initiation("w-1", "PAYOUT", 500, false)).await;
    assert_eq!(code, 200, "{body}");
    let id = body["data"]["id"].as_str().expect("id").to_string();
    assert_eq!(body["data"]["status"], "WAITING_FOR_VALIDATION");
    assert!(s.outbox().is_empty(), "nothing sent before validation");

    let refused = |(code, body): (u16, Value), status: &str| {
        assert_eq!(code, 400, "{body}");
        assert_eq!(body["errorCode"], "VALIDATION", "{body}");
        let message = body["errorMessage"].as_str().expect("message");
        assert!(message.contains(status), "{message} should name {status}");
    };
    refused(s.post(&id, "retry", None).await, "WAITING_FOR_VALIDATION");
    refused(
        s.post(
            &id,
            "reverse",
            Some(json!({"reference": "r", "amount": 1, "asset": "EUR/2",
            "description": "", "metadata": null})),
        )
        .await,
        "payouts",
    );
    let (code, body) = s
        .post(&id, "status", Some(json!({"status": "PROCESSED"})))
        .await;
    assert_eq!(code, 400, "{body}");
    let (code, _) = s
        .post(&id, "status", Some(json!({"status": "REJECTED"})))
        .await;
    assert_eq!(code, 204);
    assert_eq!(s.status(&id).await, "REJECTED");
    refused(
        s.post(&id, "status", Some(json!({"status": "VALIDATED"})))
            .await,
        "REJECTED",
    );
    refused(s.post(&id, "retry", None).await, "REJECTED");
    // Never sent: it can be deleted.
    let (code, _) = call(
        &s.http,
        s.http.delete(s.url(&format!("/transfer-initiations/{id}"))),
        None,
    )
    .await;
    assert_eq!(code, 204);
    assert_eq!(s.get(&id).await.0, 404);

    // Sent: it cannot be deleted, approved again or retried.
    let (_, body) = s.create(s.initiation("w-2", "PAYOUT", 500, false)).await;
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let (code, body) = s
        .post(&id, "status", Some(json!({"status": "VALIDATED"})))
        .await;
    assert_eq!(code, 204, "{body}");
    assert_eq!(s.status(&id).await, "PROCESSED");
    let deleted = call(
        &s.http,
        s.http.delete(s.url(&format!("/transfer-initiations/{id}"))),
        None,
    )
    .await;
    refused(deleted, "PROCESSED");
    refused(
        s.post(&id, "status", Some(json!({"status": "VALIDATED"})))
            .await,
        "PROCESSED",
    );
    refused(s.post(&id, "retry", None).await, "PROCESSED");
    // Bad input names the field.
    let mut bad = s.initiation("w-3", "TRANSFER", 1, true);
    bad["amount"] = json!(1.5);
    let (code, body) = s.create(bad).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("amount"),
        "{body}"
    );
    let (code, body) = s.create(s.initiation("w-4", "TRANSFER", 1, true)).await;
    assert_eq!(code, 200, "{body}");
    let mut payout_to_internal = s.initiation("w-5", "PAYOUT", 1, true);
    payout_to_internal["destinationAccountID"] = json!(s.internal);
    let (code, body) = s.create(payout_to_internal).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("destinationAccountID")
    );
    // The same reference twice on one connector is a conflict.
    let (code, body) = s.create(s.initiation("w-4", "TRANSFER", 1, true)).await;
    assert_eq!(
        (code, body["errorCode"].as_str()),
        (400, Some("CONFLICT")),
        "{body}"
    );
}

/// Fires `n` copies of the same request at once; answers their status codes.
async fn parallel(s: &Setup, n: usize, id: &str, action: &str, body: Option<Value>) -> Vec<u16> {
    let requests = (0..n).map(|i| {
        let mut body = body.clone();
        if let Some(b) = body.as_mut()
            && b.get("reference").is_some()
        {
            b["reference"] = json!(format!("rev-{i}"));
        }
        async move { s.post(id, action, body).await.0 }
    });
    futures::future::join_all(requests).await
}

fn exactly_one(codes: &[u16]) {
    assert_eq!(codes.iter().filter(|c| **c == 204).count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| *c == 204 || *c == 400), "{codes:?}");
}

#[actix_rt::test]
async fn parallel_approve_retry_and_reverse_requests_act_once() {
    let s = Setup::start().await;
    // Approve.
    let (_, body) = s.create(s.initiation("p-1", "TRANSFER", 100, false)).await;
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let codes = parallel(&s, 8, &id, "status", Some(json!({"status": "VALIDATED"}))).await;
    exactly_one(&codes);
    let (_, body) = s.get(&id).await;
    assert_eq!(body["data"]["status"], "PROCESSED");
    assert_eq!(
        statuses(&body["data"])
            .iter()
            .filter(|s| *s == "VALIDATED")
            .count(),
        1
    );
    assert_eq!(s.outbox(), ["p-1.json"]);

    // Reverse (the whole amount: after the one that acts, nothing is left).
    let reverse = json!({"reference": "rev", "amount": 100, "asset": "EUR/2",
                         "description": "", "metadata": null});
    let codes = parallel(&s, 8, &id, "reverse", Some(reverse)).await;
    exactly_one(&codes);
    assert_eq!(s.status(&id).await, "REVERSED");
    let reversals = s
        .outbox()
        .iter()
        .filter(|n| n.ends_with(".reversal.json"))
        .count();
    assert_eq!(reversals, 1);

    // Retry: the outbox is blocked (a plain file in its place), so the send fails.
    let blocked = Setup::start().await;
    std::fs::write(blocked.dir.path().join("outbox"), "not a directory").expect("block");
    let (code, body) = blocked
        .create(blocked.initiation("p-2", "TRANSFER", 100, true))
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["status"], "FAILED", "{body}");
    std::fs::remove_file(blocked.dir.path().join("outbox")).expect("unblock");
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let codes = parallel(&blocked, 8, &id, "retry", None).await;
    exactly_one(&codes);
    assert_eq!(blocked.status(&id).await, "PROCESSED");
    assert_eq!(blocked.outbox(), ["p-2.json"]);
}

#[actix_rt::test]
async fn a_failed_transfer_is_retried_as_a_new_attempt_with_a_new_key() {
    let s = Setup::start().await;
    std::fs::write(s.dir.path().join("outbox"), "blocked").expect("block");
    let (code, body) = s.create(s.initiation("f-1", "PAYOUT", 700, true)).await;
    assert_eq!(code, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["status"], "FAILED");
    let error = data["error"].as_str().expect("error");
    assert!(error.contains("outbox"), "{error}");
    assert_eq!(data["relatedAdjustments"][0]["error"], error);
    let id = data["id"].as_str().expect("id").to_string();
    std::fs::remove_file(s.dir.path().join("outbox")).expect("unblock");

    let (code, body) = s.post(&id, "retry", None).await;
    assert_eq!(code, 204, "{body}");
    let (_, body) = s.get(&id).await;
    assert_eq!(body["data"]["status"], "PROCESSED", "{body}");
    assert_eq!(body["data"]["error"], "");
    assert_eq!(
        statuses(&body["data"]),
        [
            "PROCESSED",
            "PROCESSING",
            "ASK_RETRIED",
            "FAILED",
            "PROCESSING",
            "VALIDATED",
            "WAITING_FOR_VALIDATION"
        ]
    );
    // The second attempt's key is the second attempt's task, not the first's.
    let instruction: Value = serde_json::from_slice(
        &std::fs::read(s.dir.path().join("outbox/f-1.json")).expect("instruction"),
    )
    .expect("json");
    let tasks: Vec<String> = s
        .app
        .db
        .client()
        .await
        .query(
            "SELECT id::text FROM tasks WHERE descriptor->>'tributary' = 'initiate'
             ORDER BY (descriptor->>'attempt')::int",
            &[],
        )
        .await
        .expect("tasks")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tasks.len(), 2);
    assert_eq!(instruction["idempotencyKey"], tasks[1]);
}

#[actix_rt::test]
async fn a_transfer_is_reversed_partially_then_fully() {
    let s = Setup::start().await;
    let (_, body) = s.create(s.initiation("r-1", "TRANSFER", 100, true)).await;
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let reverse = |reference: &str, amount: u64| {
        json!({"reference": reference, "amount": amount, "asset": "EUR/2",
               "description": "refund", "metadata": {"why": "test"}})
    };
    let (code, body) = s.post(&id, "reverse", Some(reverse("r-1-a", 40))).await;
    assert_eq!(code, 204, "{body}");
    let (_, body) = s.get(&id).await;
    let data = &body["data"];
    assert_eq!(data["status"], "PARTIALLY_REVERSED");
    assert_eq!(
        (data["amount"].as_u64(), data["initialAmount"].as_u64()),
        (Some(60), Some(100))
    );
    let payment_id = data["relatedPayments"][0]["paymentID"]
        .as_str()
        .expect("pid");
    assert_eq!(data["relatedPayments"][0]["status"], "REFUNDED");
    let (_, payment) = call(
        &s.http,
        s.http.get(s.url(&format!("/payments/{payment_id}"))),
        None,
    )
    .await;
    let adjustments = payment["data"]["adjustments"]
        .as_array()
        .expect("adjustments");
    assert_eq!(
        adjustments.last().expect("last")["status"],
        "REFUNDED",
        "{payment}"
    );

    let (code, body) = s.post(&id, "reverse", Some(reverse("r-1-b", 70))).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("amount"),
        "{body}"
    );
    let (code, body) = s.post(&id, "reverse", Some(reverse("r-1-c", 60))).await;
    assert_eq!(code, 204, "{body}");
    let (_, body) = s.get(&id).await;
    assert_eq!(body["data"]["status"], "REVERSED");
    assert_eq!(body["data"]["amount"], 0);
    let (code, body) = s.post(&id, "reverse", Some(reverse("r-1-d", 1))).await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("REVERSED"),
        "{body}"
    );
    assert_eq!(
        s.outbox(),
        ["r-1-a.reversal.json", "r-1-c.reversal.json", "r-1.json"]
    );
}

#[actix_rt::test]
async fn a_transfer_scheduled_in_the_future_waits_for_its_time() {
    let s = Setup::start().await;
    let mut body = s.initiation("s-1", "TRANSFER", 5, true);
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    body["scheduledAt"] = json!(at.to_rfc3339());
    let (code, body) = s.create(body).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["status"], "VALIDATED", "{body}");
    assert!(s.outbox().is_empty());
    let id = body["data"]["id"].as_str().expect("id").to_string();
    let schedule: String = s
        .app
        .db
        .client()
        .await
        .query_one(
            "SELECT schedule FROM tasks WHERE descriptor->>'tributary' = 'initiate'",
            &[],
        )
        .await
        .expect("task")
        .get(0);
    assert_eq!(schedule, "RUN_SCHEDULED_AT");
    eventually(
        "the scheduled transfer is sent",
        Duration::from_secs(20),
        || async { s.status(&id).await == "PROCESSED" },
    )
    .await;
    assert!(chrono::Utc::now() >= at);
    assert_eq!(s.outbox(), ["s-1.json"]);
}

#[actix_rt::test]
async fn an_asset_outside_the_supported_currencies_fails_the_initiation() {
    let s = Setup::start().await;
    let mut body = s.initiation("u-1", "TRANSFER", 5, true);
    body["asset"] = json!("XAU/4");
    let (code, reply) = s.create(body).await;
    assert_eq!(code, 400, "{reply}");
    assert_eq!(reply["errorCode"], "VALIDATION");
    assert_eq!(reply["errorMessage"], "currency XAU not supported");
    let (_, list) = call(&s.http, s.http.get(s.url("/transfer-initiations")), None).await;
    let stored = &list["cursor"]["data"][0];
    assert_eq!(stored["status"], "FAILED", "{list}");
    assert_eq!(stored["error"], "currency XAU not supported");
    assert!(s.outbox().is_empty());
}

// ---- a connector without money out ----

struct PlainLoader;
struct Plain;

#[async_trait]
impl Connector for Plain {
    async fn install(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        Ok(())
    }

    fn resolve(&self, _descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        Err(TaskError::non_retryable("no tasks"))
    }
}

impl Loader for PlainLoader {
    fn provider(&self) -> &'static str {
        "PLAIN"
    }

    fn provider_title(&self) -> &'static str {
        "Plain"
    }

    fn schema(&self) -> ConfigSchema {
        ConfigSchema::from([(
            "name",
            tributary::sdk::FieldSpec {
                data_type: "string",
                required: true,
                default_value: None,
                secret: false,
            },
        )])
    }

    fn load(&self, _config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(Plain))
    }
}

#[actix_rt::test]
async fn a_connector_without_money_out_answers_capability_not_supported() {
    let registry = tributary::connectors::registry(&test_settings()).with(Arc::new(PlainLoader));
    let app = spawn_app_with(registry).await;
    let http = client();
    let (code, body) = call(
        &http,
        http.post(format!("{}/connectors/plain", app.base)),
        Some(json!({"name": "plain"})),
    )
    .await;
    assert_eq!(code, 201, "{body}");
    let connector_id = body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    let destination = account(&app, &connector_id, "x", "INTERNAL").await;
    let (code, body) = call(
        &http,
        http.post(format!("{}/transfer-initiations", app.base)),
        Some(
            json!({"reference": "c-1", "type": "TRANSFER", "amount": 1, "asset": "EUR/2",
                    "validated": true, "connectorID": connector_id,
                    "destinationAccountID": destination, "description": "",
                    "scheduledAt": "2020-01-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errorCode"], "CONNECTOR_CAPABILITY_NOT_SUPPORTED",
        "{body}"
    );
    let (code, body) = call(
        &http,
        http.post(format!("{}/connectors/plain/transfers", app.base)),
        Some(json!({"amount": 1, "asset": "EUR/2", "destination": "x"})),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(
        body["errorCode"], "CONNECTOR_CAPABILITY_NOT_SUPPORTED",
        "{body}"
    );
}

#[actix_rt::test]
async fn the_older_connectors_transfer_route_sends_a_transfer() {
    let s = Setup::start().await;
    let (code, body) = call(
        &s.http,
        s.http.post(s.url("/connectors/DUMMY-PAY/transfers")),
        Some(json!({"amount": 250, "asset": "EUR/2", "destination": "main", "source": "supplier"})),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let id = body["id"].as_str().expect("id");
    assert_eq!(s.status(id).await, "PROCESSED");
    assert_eq!(s.outbox().len(), 1);
}

#[actix_rt::test]
async fn an_approved_initiation_whose_task_was_never_recorded_fails_when_tasks_resume() {
    let s = Setup::start().await;
    let (_, body) = s.create(s.initiation("n-1", "PAYOUT", 5, false)).await;
    let id = body["data"]["id"].as_str().expect("id").to_string();
    // As if the process stopped between the approval's write and the task's.
    s.app
        .db
        .client()
        .await
        .execute(
            "UPDATE transfer_initiations SET status = 'VALIDATED', attempt = 1,
                 task_id = gen_random_uuid() WHERE id = $1",
            &[&id],
        )
        .await
        .expect("update");
    for action in ["pause", "resume"] {
        let (code, body) = call(
            &s.http,
            s.http.post(s.url(&format!(
                "/connectors/dummy-pay/{}/{action}",
                s.connector_id
            ))),
            None,
        )
        .await;
        assert_eq!(code, 204, "{action}: {body}");
    }
    let (_, body) = s.get(&id).await;
    assert_eq!(body["data"]["status"], "FAILED", "{body}");
    assert!(
        body["data"]["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("never sent"),
        "{body}"
    );
    assert!(s.outbox().is_empty());
    let (code, body) = s.post(&id, "retry", None).await;
    assert_eq!(code, 204, "{body}");
    assert_eq!(s.status(&id).await, "PROCESSED");
}

#[actix_rt::test]
async fn an_approval_on_a_paused_connector_answers_at_once_and_sends_on_resume() {
    let s = Setup::start().await;
    let s = &s;
    let connector = |action: &'static str| async move {
        let url = s.url(&format!(
            "/connectors/dummy-pay/{}/{action}",
            s.connector_id
        ));
        call(&s.http, s.http.post(url), None).await.0
    };
    assert_eq!(connector("pause").await, 204);
    let (code, body) = s.create(s.initiation("z-1", "PAYOUT", 5, true)).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["data"]["status"], "VALIDATED", "{body}");
    assert!(s.outbox().is_empty());
    let id = body["data"]["id"].as_str().expect("id").to_string();
    assert_eq!(connector("resume").await, 204);
    eventually("sent after the resume", Duration::from_secs(20), || async {
        s.status(&id).await == "PROCESSED"
    })
    .await;
    assert_eq!(s.outbox(), ["z-1.json"]);
}
