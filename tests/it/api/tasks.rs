//! `/connectors/{provider}/{connectorID}/tasks`: newest first, cursor, status filter, one
//! task, restart.

use std::collections::HashSet;

use serde_json::Value;
use tributary::sdk::{Restart, Schedule, ScheduleOptions};

use super::Api;
use crate::runtime::support::{Script, fail, ok};

fn once() -> ScheduleOptions {
    ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive)
}

async fn settled(api: &Api, id: &str, n: usize) {
    let path = format!("/connectors/TEST/{id}/tasks?pageSize=100");
    crate::helpers::eventually(
        "tasks to settle",
        std::time::Duration::from_secs(20),
        || {
            let path = path.clone();
            async move {
                let body = api.get(&path).await.body;
                let data = body["cursor"]["data"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                data.len() == n
                    && data
                        .iter()
                        .all(|t| t["status"] != "PENDING" && t["status"] != "ACTIVE")
            }
        },
    )
    .await;
}

#[actix_rt::test]
async fn tasks_are_listed_newest_first_with_our_extra_fields_and_paginate() {
    let api = Api::start().await;
    let mut tasks: Vec<(Script, ScheduleOptions)> =
        (0..12).map(|i| (ok(&format!("t{i}")), once())).collect();
    tasks.push((fail("broken"), once()));
    *api.probe.install_tasks.lock().unwrap() = tasks;
    let id = api.install("tasks").await;
    settled(&api, &id, 13).await;

    let page = api
        .get(&format!("/connectors/TEST/{id}/tasks?pageSize=5"))
        .await;
    assert_eq!(page.status, 200);
    let cursor = &page.body["cursor"];
    assert_eq!(cursor["pageSize"], 5);
    assert_eq!(cursor["hasMore"], true);
    assert!(cursor.get("previous").is_none());
    let first = &cursor["data"][0];
    for field in [
        "id",
        "connectorID",
        "createdAt",
        "updatedAt",
        "descriptor",
        "status",
        "state",
        "error",
        "schedulingOption",
        "restartOption",
        "attempts",
        "nextRunAt",
        "lastSuccessAt",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }
    assert_eq!(first["connectorID"], id.as_str());

    // Walk every page: each task once, newest first.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let path = match &next {
            None => format!("/connectors/TEST/{id}/tasks?pageSize=5"),
            Some(c) => format!("/connectors/TEST/{id}/tasks?cursor={c}"),
        };
        let page = api.get(&path).await.body;
        for t in page["cursor"]["data"].as_array().expect("data") {
            seen.push((
                t["createdAt"].as_str().unwrap_or("").to_string(),
                t["id"].clone(),
            ));
        }
        match page["cursor"]["next"].as_str() {
            Some(c) => next = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 13);
    let unique: HashSet<String> = seen.iter().map(|(_, id)| id.to_string()).collect();
    assert_eq!(unique.len(), 13);
    assert!(
        seen.windows(2).all(|w| w[0].0 >= w[1].0),
        "not newest first"
    );

    // Status filter.
    let failed = api
        .get(&format!("/connectors/TEST/{id}/tasks?status=FAILED"))
        .await;
    let data = failed.body["cursor"]["data"]
        .as_array()
        .expect("data")
        .clone();
    assert_eq!(data.len(), 1);
    assert_eq!(data[0]["error"], "broken failed on run 1");
    api.get(&format!("/connectors/TEST/{id}/tasks?status=SLEEPING"))
        .await
        .error(400, "VALIDATION");

    // One task, and its restart.
    let task_id = data[0]["id"].as_str().expect("id");
    let one = api
        .get(&format!("/connectors/TEST/{id}/tasks/{task_id}"))
        .await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["data"]["status"], "FAILED");
    let restarted = api
        .post_empty(&format!("/connectors/TEST/{id}/tasks/{task_id}/restart"))
        .await;
    assert_eq!(restarted.status, 204, "{}", restarted.body);
    api.probe.wait_runs("broken", 2).await;

    api.get(&format!("/connectors/TEST/{id}/tasks/not-a-uuid"))
        .await
        .error(400, "INVALID_ID");
    api.get(&format!(
        "/connectors/TEST/{id}/tasks/{}",
        uuid::Uuid::nil()
    ))
    .await
    .error(404, "NOT_FOUND");
    // Deprecated form.
    let only = api.get(&format!("/connectors/TEST/tasks/{task_id}")).await;
    assert_eq!(only.status, 200);
    assert_eq!(only.body["data"]["id"], Value::String(task_id.to_string()));
}

#[actix_rt::test]
async fn metrics_expose_task_counters_and_gauges_by_status() {
    let api = Api::start().await;
    *api.probe.install_tasks.lock().unwrap() = vec![(ok("m1"), once()), (fail("m2"), once())];
    let id = api.install("metrics").await;
    settled(&api, &id, 2).await;
    let root = api.app.base.trim_end_matches("/api/payments").to_string();
    let scrape = || async {
        let mut response = awc::Client::default()
            .get(format!("{root}/metrics"))
            .send()
            .await
            .expect("metrics");
        assert_eq!(response.status().as_u16(), 200);
        String::from_utf8(response.body().await.expect("body").to_vec()).expect("utf8")
    };
    let line_of = |text: &str, name: &str, status: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(name)
                    && l.contains(&format!("connector_id=\"{id}\""))
                    && l.contains(status)
            })
            .map(str::to_string)
    };
    // The task gauges are counted in the background (every metrics.refresh_interval): wait
    // for a count that has seen both runs end.
    crate::helpers::eventually(
        "the task gauges",
        std::time::Duration::from_secs(10),
        || async {
            let text = scrape().await;
            ["TERMINATED", "FAILED"].iter().all(|s| {
                line_of(&text, "tributary_tasks{", &format!("status=\"{s}\""))
                    .is_some_and(|l| l.ends_with(" 1"))
            })
        },
    )
    .await;
    let text = scrape().await;
    let line = |name: &str, status: &str| line_of(&text, name, status);
    let terminated = line("tributary_tasks{", "status=\"TERMINATED\"").expect("gauge");
    assert!(terminated.ends_with(" 1"), "{terminated}");
    let failed = line("tributary_tasks{", "status=\"FAILED\"").expect("gauge");
    assert!(failed.ends_with(" 1"), "{failed}");
    let runs = line("tributary_task_runs_total", "").expect("runs counter");
    assert!(runs.ends_with(" 2"), "{runs}");
    assert!(
        line("tributary_task_failures_total", "").is_some(),
        "{text}"
    );
}
