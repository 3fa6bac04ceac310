//! Secret config fields never reach a log line or an API answer: a connector whose API key is
//! a sentinel is driven through the real HTTP API — validation failures that quote the key,
//! an install hook that refuses it, tasks that succeed, fail and retry with errors quoting it
//! (raw, URL-encoded, inside an echoed request body), a config update whose hook fails, an
//! uninstall hook that fails — while every log line (TRACE, every thread, `log` records
//! included) and every response body is captured; none may contain the sentinel, and each
//! failure must still be visible, masked.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{self, FilterExt};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tributary::redact::MASK;
use tributary::runtime::Registry;
use tributary::sdk::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldSpec, Loader, Restart,
    Schedule, ScheduleOptions, Task, TaskContext, TaskError,
};
use tributary::telemetry;

use crate::helpers::{TestApp, eventually, spawn_app_with};

/// Appears in every secret below and survives every encoding (alphanumeric): a line or body
/// containing it leaks a secret, whatever form the secret took.
const TOKEN: &str = "5f1c2e7a9b";
/// The key installed first; `/`, `+` and `=` change under URL and form encoding.
const KEY: &str = "sk_SENTINEL-5f1c2e7a9b/live+Key==";
/// A key the PSP refuses at install.
const REVOKED: &str = "sk_SENTINEL-5f1c2e7a9b_revoked";
/// A key that fails validation (wrong prefix); the validation message quotes it.
const MALFORMED: &str = "pk_SENTINEL-5f1c2e7a9b";
/// The key the config is updated to.
const ROTATED: &str = "sk_SENTINEL-5f1c2e7a9b-rotated";

// ---- log capture ----

/// Every formatted log line while capturing is on.
static LINES: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static CAPTURING: AtomicBool = AtomicBool::new(false);
static INSTALLED: OnceLock<()> = OnceLock::new();

#[derive(Clone, Copy)]
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs (once) a process-wide subscriber that writes to [`LINES`] while [`CAPTURING`] is
/// on, with the service's own filter at its most verbose (`trace`). Process-wide, because the
/// HTTP workers and the storage actor run on threads of their own; `try_init` also routes
/// `log` records (actix's, tokio-postgres's) into it, as the service's subscriber does. The
/// per-event flag keeps it cheap for the other tests once capturing is off.
fn capture_logs() {
    INSTALLED.get_or_init(|| {
        let capturing = filter::filter_fn(|_| CAPTURING.load(Ordering::SeqCst));
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .with_writer(|| Sink)
            .with_filter(telemetry::filter_for("trace").and(capturing));
        tracing_subscriber::registry()
            .with(layer)
            .try_init()
            .expect("no other global subscriber in the test binary");
    });
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    CAPTURING.store(true, Ordering::SeqCst);
    tracing::callsite::rebuild_interest_cache();
}

/// Stops capturing; returns the lines captured.
fn captured_lines() -> Vec<String> {
    CAPTURING.store(false, Ordering::SeqCst);
    let bytes = std::mem::take(&mut *LINES.lock().unwrap_or_else(|e| e.into_inner()));
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::to_string)
        .collect()
}

// ---- an imaginary PSP connector whose errors quote its key ----

/// A key as it appears in a URL's query string.
fn url_encoded(key: &str) -> String {
    key.replace('/', "%2F")
        .replace('+', "%2B")
        .replace('=', "%3D")
}

struct PspLoader;

impl Loader for PspLoader {
    fn provider(&self) -> &'static str {
        "PSP"
    }

    fn provider_title(&self) -> &'static str {
        "Psp"
    }

    fn schema(&self) -> ConfigSchema {
        let field = |required, default_value, secret| FieldSpec {
            data_type: "string",
            required,
            default_value,
            secret,
        };
        ConfigSchema::from([
            ("name", field(true, None, false)),
            ("apiKey", field(true, None, true)),
            (
                "endpoint",
                field(false, Some(json!("https://psp.example/v1")), false),
            ),
        ])
    }

    fn validate_fields(&self, config: &Config) -> Result<(), ConfigError> {
        match config.get("apiKey").and_then(Value::as_str) {
            Some(key) if !key.starts_with("sk_") => Err(ConfigError::field(
                "apiKey",
                format!("{key:?} is not a secret key (secret keys start with sk_)"),
            )),
            _ => Ok(()),
        }
    }

    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        let text = |field: &str| {
            config
                .get(field)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        Ok(Arc::new(Psp {
            key: text("apiKey"),
            endpoint: text("endpoint"),
        }))
    }
}

struct Psp {
    key: String,
    endpoint: String,
}

fn once() -> ScheduleOptions {
    ScheduleOptions::new(Schedule::RunNow, Restart::Never)
}

#[async_trait]
impl Connector for Psp {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        if self.key.ends_with("_revoked") {
            return Err(TaskError::non_retryable(format!(
                "GET {}/auth?key={} answered 401: key {} is revoked",
                self.endpoint,
                url_encoded(&self.key),
                self.key
            )));
        }
        for key in ["ok", "fail", "flaky"] {
            ctx.scheduler()
                .schedule(&json!({ "key": key }), once())
                .await?;
        }
        Ok(())
    }

    async fn uninstall(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        Err(TaskError::failed(format!(
            "DELETE {}/webhooks?key={} timed out",
            self.endpoint,
            url_encoded(&self.key)
        )))
    }

    async fn config_updated(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        ctx.scheduler()
            .schedule(&json!({ "key": "after-update" }), once())
            .await?;
        Err(TaskError::non_retryable(format!(
            "the PSP has not activated key {} yet",
            self.key
        )))
    }

    fn resolve(&self, descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        let kind = descriptor["key"].as_str().unwrap_or_default().to_string();
        Ok(Box::new(PspCall {
            kind,
            key: self.key.clone(),
            endpoint: self.endpoint.clone(),
        }))
    }
}

struct PspCall {
    kind: String,
    key: String,
    endpoint: String,
}

#[async_trait]
impl Task for PspCall {
    async fn run(&self, _ctx: TaskContext) -> Result<(), TaskError> {
        let body = json!({ "api_key": self.key }).to_string();
        match self.kind.as_str() {
            "ok" => {
                tracing::info!(endpoint = %self.endpoint, "PSP call succeeded");
                Ok(())
            }
            // A client error echoing the request: the key URL-encoded and in the body.
            "fail" => Err(TaskError::non_retryable(format!(
                "POST {}/payouts?key={} answered 403, request body {body:?}",
                self.endpoint,
                url_encoded(&self.key)
            ))),
            "flaky" => Err(TaskError::retryable(format!(
                "connection reset talking to {} with key {}",
                self.endpoint, self.key
            ))),
            _ => Err(TaskError::failed(format!(
                "key {} rejected after the update",
                self.key
            ))),
        }
    }
}

// ---- the HTTP side, recording every body ----

struct Client {
    app: TestApp,
    http: awc::Client,
    /// Every response body received (raw text), except the ones deliberately set aside.
    bodies: Mutex<Vec<String>>,
}

impl Client {
    async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value, String) {
        let url = format!("{}{}", self.app.base, path);
        let request = match method {
            "GET" => self.http.get(url),
            "POST" => self.http.post(url),
            "DELETE" => self.http.delete(url),
            other => panic!("method {other}"),
        };
        let mut response = match body {
            Some(b) => request.send_json(b).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        (response.status().as_u16(), json, text)
    }

    /// A request whose answer is scanned for the sentinel.
    async fn send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let (status, json, text) = self.call(method, path, body).await;
        self.bodies.lock().unwrap().push(text);
        (status, json)
    }

    /// The connector's tasks by descriptor key.
    async fn tasks(&self, id: &str) -> Vec<Value> {
        let (status, body) = self
            .send(
                "GET",
                &format!("/connectors/psp/{id}/tasks?pageSize=100"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["cursor"]["data"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits until the task with descriptor key `key` has `status` and an error; returns it.
    async fn task(&self, id: &str, key: &str, status: &str, with_error: bool) -> Value {
        let found = Mutex::new(Value::Null);
        let slot = &found;
        eventually(
            &format!("task {key} to be {status}"),
            Duration::from_secs(20),
            || async move {
                let tasks = self.tasks(id).await;
                let task = tasks.into_iter().find(|t| t["descriptor"]["key"] == key);
                match task {
                    Some(t) if t["status"] == status && (!with_error || t["error"].is_string()) => {
                        *slot.lock().unwrap() = t;
                        true
                    }
                    _ => false,
                }
            },
        )
        .await;
        found.into_inner().unwrap()
    }
}

/// Asserts an error answer is masked (carries [`MASK`]) and returns its message.
fn masked_error(status: u16, body: &Value, expected: u16) -> String {
    assert_eq!(status, expected, "{body}");
    let message = body["errorMessage"]
        .as_str()
        .expect("errorMessage")
        .to_string();
    assert!(message.contains(MASK), "not masked: {message}");
    message
}

#[actix_rt::test]
async fn secret_config_values_never_reach_logs_or_api_answers() {
    capture_logs();
    let app = spawn_app_with(Registry::new().with(Arc::new(PspLoader))).await;
    let client = Client {
        app,
        http: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        bodies: Mutex::new(Vec::new()),
    };
    let config = |key: &str| json!({"name": "psp", "apiKey": key});

    // The schema keeps Formance's shape: no `secret` key.
    let (_, configs) = client.send("GET", "/connectors/configs", None).await;
    assert_eq!(
        configs["data"]["PSP"]["apiKey"],
        json!({"dataType": "string", "required": true})
    );

    // Validation messages that quote the key: the validate route, install and update.
    let (status, body) = client
        .send(
            "POST",
            "/connectors/configs/psp/validate",
            Some(&config(MALFORMED)),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["valid"], false, "{body}");
    let message = body["data"]["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains(MASK), "{body}");
    let (status, body) = client
        .send("POST", "/connectors/psp", Some(&config(MALFORMED)))
        .await;
    masked_error(status, &body, 400);

    // An install hook that refuses the key: nothing installed, the refusal masked.
    let (status, body) = client
        .send("POST", "/connectors/psp", Some(&config(REVOKED)))
        .await;
    let refused = masked_error(status, &body, 400);
    assert!(refused.contains("revoked"), "{refused}");

    // A working install: a task that succeeds, one that fails, one that retries.
    let (status, body) = client
        .send("POST", "/connectors/psp", Some(&config(KEY)))
        .await;
    assert_eq!(status, 201, "{body}");
    let id = body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    client.task(&id, "ok", "TERMINATED", false).await;
    let failed = client.task(&id, "fail", "FAILED", true).await;
    let error = failed["error"].as_str().expect("error");
    assert!(
        error.contains("answered 403") && error.contains(&format!("key={MASK}")),
        "{error}"
    );
    let flaky = client.task(&id, "flaky", "ACTIVE", true).await;
    assert!(
        flaky["error"].as_str().expect("error").contains(MASK),
        "{flaky}"
    );
    let task_id = failed["id"].as_str().expect("task id");
    let (status, one) = client
        .send(
            "GET",
            &format!("/connectors/psp/{id}/tasks/{task_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(one["data"]["error"], failed["error"]);

    // Config updates: one that fails validation, one whose hook fails quoting the new key;
    // the task that hook scheduled fails quoting it too.
    let (status, body) = client
        .send(
            "POST",
            &format!("/connectors/psp/{id}/config"),
            Some(&config(MALFORMED)),
        )
        .await;
    masked_error(status, &body, 400);
    let (status, body) = client
        .send(
            "POST",
            &format!("/connectors/psp/{id}/config"),
            Some(&config(ROTATED)),
        )
        .await;
    let hook = masked_error(status, &body, 400);
    assert!(hook.contains("has not activated key"), "{hook}");
    let after = client.task(&id, "after-update", "FAILED", true).await;
    assert!(
        after["error"].as_str().expect("error").contains(MASK),
        "{after}"
    );

    // The tasks table itself holds masked errors only.
    let rows = client
        .app
        .db
        .client()
        .await
        .query("SELECT coalesce(error, '') FROM tasks", &[])
        .await
        .expect("tasks");
    let errors: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert!(
        errors.iter().filter(|e| e.contains(MASK)).count() >= 3,
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| !e.contains(TOKEN)), "{errors:?}");

    // Reading the config masks the secret (unlike Formance v1: see docs/api.md#secrets), on
    // both routes; these answers are scanned like the others.
    for path in [
        format!("/connectors/psp/{id}/config"),
        "/connectors/psp/config".into(),
    ] {
        let (status, stored) = client.send("GET", &path, None).await;
        assert_eq!(status, 200, "{stored}");
        assert_eq!(stored["data"]["apiKey"], MASK, "{stored}");
        assert_eq!(stored["data"]["endpoint"], "https://psp.example/v1");
    }

    // An uninstall hook that fails quoting the key: logged (masked), uninstall goes on.
    let (status, _) = client
        .send("DELETE", &format!("/connectors/psp/{id}"), None)
        .await;
    assert_eq!(status, 204);

    let lines = captured_lines();
    let bodies = client.bodies.lock().unwrap().clone();
    let leaks: Vec<&String> = lines.iter().filter(|l| l.contains(TOKEN)).collect();
    assert!(leaks.is_empty(), "secret in log lines:\n{leaks:#?}");
    let leaks: Vec<&String> = bodies.iter().filter(|b| b.contains(TOKEN)).collect();
    assert!(leaks.is_empty(), "secret in API answers:\n{leaks:#?}");
    // The failures were logged, masked.
    for what in [
        "install failed; rolling back",
        "run failed",
        "connector uninstall hook failed",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(what) && l.contains(MASK)),
            "no masked {what:?} line among {} lines",
            lines.len()
        );
    }
    eprintln!(
        "secrets: {} log lines and {} API answers scanned, no secret found",
        lines.len(),
        bodies.len()
    );
}
