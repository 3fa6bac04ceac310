//! Observability and the SDK's store: task log lines carry connector and task ids; the
//! key-value store persists.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tributary::sdk::{Restart, TaskStatus};

use super::support::{Harness, Script, run_now};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[actix_rt::test]
async fn every_line_a_task_emits_carries_the_connector_and_task_ids() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_writer(move || writer.clone())
        .finish();
    // Task bodies run on this thread (the System's arbiter), under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);

    let h = Harness::start(10, vec![]).await;
    // Other tests' threads may have registered these callsites while no subscriber was
    // interested; recompute their interest now that this thread has one.
    tracing::callsite::rebuild_interest_cache();
    let task = Script::Log {
        name: "logger".into(),
    };
    let id = h
        .schedule(&task, run_now(Restart::Never))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Terminated).await;
    let failing = super::support::fail("noisy");
    let failing_id = h
        .schedule(&failing, run_now(Restart::Never))
        .await
        .expect("schedule");
    h.wait_status(failing_id, TaskStatus::Failed).await;

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).expect("utf8");
    let body_line = text
        .lines()
        .find(|l| l.contains("task body working"))
        .unwrap_or_else(|| panic!("no task log line in:\n{text}"));
    assert!(
        body_line.contains(&format!("connector_id={}", h.connector_id)),
        "{body_line}"
    );
    assert!(body_line.contains(&format!("task_id={id}")), "{body_line}");
    let failure_line = text
        .lines()
        .find(|l| l.contains("run failed"))
        .unwrap_or_else(|| panic!("no failure line in:\n{text}"));
    assert!(
        failure_line.contains(&format!("task_id={failing_id}")),
        "{failure_line}"
    );
}

#[actix_rt::test]
async fn the_connector_store_keeps_values_durably() {
    let h = Harness::start(10, vec![]).await;
    let task = Script::Kv {
        name: "files".into(),
    };
    let id = h
        .schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("schedule");
    h.wait_status(id, TaskStatus::Terminated).await;
    h.schedule(&task, run_now(Restart::IfNotActive))
        .await
        .expect("again");
    h.probe.wait_runs("files", 2).await;
    h.wait_status(id, TaskStatus::Terminated).await;
    let value: serde_json::Value =
        h.db.client()
            .await
            .query_one(
                "SELECT value FROM connector_kv WHERE connector_id = $1 AND key = 'files'",
                &[&h.connector_id],
            )
            .await
            .expect("kv row")
            .get(0);
    assert_eq!(value, json!(2));
}
