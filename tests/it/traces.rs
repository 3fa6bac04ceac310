//! OpenTelemetry traces over OTLP/HTTP, against a small OTLP receiver the test runs itself
//! (POST /v1/traces, protobuf bodies decoded with `opentelemetry-proto`).
//!
//! The tracing subscriber is process-wide and this test binary has one already, so the service
//! runs as a child process (`tributary serve`), as a deployment would. Its batch exporter is
//! told to wait a minute between exports (`OTEL_BSP_SCHEDULE_DELAY`), so every span the
//! receiver gets was sent by the flush at shutdown: that proves the flush too.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use nix::sys::signal::Signal;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::cli::{free_port, signal, stderr, wait_exit, wait_healthy};
use crate::helpers::{TestDb, eventually};

/// What the receiver got: every span with its resource's `service.name`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

fn string_attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
        .map(|v| match v {
            AnyValue::StringValue(s) => s.clone(),
            AnyValue::IntValue(i) => i.to_string(),
            other => format!("{other:?}"),
        })
}

async fn receive(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    let mut received = received.lock().unwrap_or_else(|e| e.into_inner());
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .as_ref()
            .and_then(|r| string_attribute(&r.attributes, "service.name"))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                received.push((service.clone(), span));
            }
        }
    }
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

/// Starts the receiver on port 0; its port and what it gets.
fn start_receiver() -> (u16, Received, actix_web::dev::ServerHandle) {
    let received: Received = Arc::default();
    let data = web::Data::new(received.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .app_data(web::PayloadConfig::new(64 << 20))
            .route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind the receiver");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (port, received, handle)
}

#[actix_rt::test]
async fn requests_and_task_runs_are_exported_as_spans_over_otlp_and_flushed_at_shutdown() {
    let db = TestDb::new().await;
    let (receiver_port, received, receiver) = start_receiver();
    let port = free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path())
        .current_dir(dir.path())
        .env("DATABASE_URL", &db.url)
        // The log level must not switch traces off.
        .env("RUST_LOG", "warn")
        .env(
            "TRIBUTARY_TELEMETRY__OTLP_ENDPOINT",
            format!("http://127.0.0.1:{receiver_port}"),
        )
        .env("TRIBUTARY_TELEMETRY__SERVICE_NAME", "tributary-under-test")
        .env("OTEL_BSP_SCHEDULE_DELAY", "60000")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tributary serve");
    let mut child = actix_rt::task::spawn_blocking(move || {
        wait_healthy(&mut child, port);
        child
    })
    .await
    .expect("healthy");

    // A request from a caller's trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_id = "00f067aa0ba902b7";
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let base = format!("http://127.0.0.1:{port}/api/payments");
    let reply = http
        .get(format!("{base}/connectors"))
        .insert_header(("traceparent", format!("00-{trace_id}-{parent_id}-01")))
        .send()
        .await
        .expect("list connectors");
    assert_eq!(reply.status().as_u16(), 200);

    // A task run: DUMMY-PAY's install schedules read-files, which runs at once. Its directory
    // is under the data directory's `dummypay`, the default allowed root.
    let files = dir.path().join("dummypay").join("traced");
    std::fs::create_dir_all(&files).expect("files directory");
    let mut reply = http
        .post(format!("{base}/connectors/dummy-pay"))
        .send_json(&json!({"name": "traced", "directory": files, "filePollingPeriod": "1h"}))
        .await
        .expect("install");
    let body: Value = reply.json().await.expect("json");
    assert_eq!(reply.status().as_u16(), 201, "{body}");
    let connector_id = body["data"]["connectorID"]
        .as_str()
        .expect("id")
        .to_string();
    let client = db.client().await;
    eventually(
        "a finished run of read-files",
        Duration::from_secs(30),
        || async {
            client
                .query_opt(
                    "SELECT 1 FROM tasks WHERE connector_id = $1 AND last_success_at IS NOT NULL",
                    &[&connector_id],
                )
                .await
                .expect("tasks")
                .is_some()
        },
    )
    .await;
    let task_id: uuid::Uuid = client
        .query_one(
            "SELECT id FROM tasks WHERE connector_id = $1 AND last_success_at IS NOT NULL",
            &[&connector_id],
        )
        .await
        .expect("task")
        .get(0);
    assert!(
        received.lock().expect("lock").is_empty(),
        "spans arrived before the shutdown: the test would not prove the flush"
    );

    signal(&child, Signal::SIGTERM);
    let (status, log) = actix_rt::task::spawn_blocking(move || {
        let status = wait_exit(&mut child, Duration::from_secs(20));
        (status, stderr(&mut child))
    })
    .await
    .expect("exit");
    assert!(status.is_some_and(|s| s.success()), "{status:?}: {log}");

    let spans = received.lock().expect("lock").clone();
    receiver.stop(true).await;
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let request = spans
        .iter()
        .find(|(_, s)| hex(&s.trace_id) == trace_id)
        .unwrap_or_else(|| panic!("no span of the caller's trace among {spans:#?}"));
    assert_eq!(hex(&request.1.parent_span_id), parent_id, "{request:#?}");
    assert_eq!(request.0, "tributary-under-test");
    assert_eq!(
        string_attribute(&request.1.attributes, "http.route").as_deref(),
        Some("/api/payments/connectors"),
        "{request:#?}"
    );

    let run = spans
        .iter()
        .find(|(_, s)| {
            s.name == "task_run"
                && string_attribute(&s.attributes, "connector_id").as_deref()
                    == Some(connector_id.as_str())
                && string_attribute(&s.attributes, "task_id") == Some(task_id.to_string())
        })
        .unwrap_or_else(|| panic!("no task_run span of {connector_id}/{task_id} among {spans:#?}"));
    assert_eq!(run.0, "tributary-under-test");
}
