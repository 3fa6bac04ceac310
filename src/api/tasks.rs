//! `/connectors/{provider}/{connectorID}/tasks`: a connector's tasks, newest first, with
//! Formance's fields plus the schedule, restart option, attempts, next run and last success;
//! one task; restarting an ended task.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::connectors::resolve;
use super::error::{ApiError, ErrorCode};
use super::extract::Params;
use super::pagination::PageRequest;
use super::{AppState, Data};
use crate::sdk::{Schedule, TaskStatus};
use crate::storage::queries::tasks::{self, TaskRow};

/// A task as the API shows it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TaskJson {
    id: Uuid,
    #[serde(rename = "connectorID")]
    connector_id: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    descriptor: Value,
    status: TaskStatus,
    state: Option<Value>,
    error: Option<String>,
    // Beyond Formance.
    scheduling_option: &'static str,
    restart_option: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    period: Option<String>,
    attempts: u32,
    restarts: u32,
    run_number: i64,
    next_run_at: Option<DateTime<Utc>>,
    last_success_at: Option<DateTime<Utc>>,
    #[serde(rename = "parentID")]
    parent_id: Option<Uuid>,
}

fn task_json(row: TaskRow) -> TaskJson {
    let period = match row.options.schedule {
        Schedule::RunPeriodically(d) | Schedule::RunInDuration(d) => {
            Some(humantime::format_duration(d).to_string())
        }
        _ => None,
    };
    TaskJson {
        id: row.id,
        connector_id: row.connector_id,
        created_at: row.created_at,
        updated_at: row.updated_at,
        descriptor: row.descriptor,
        status: row.status,
        state: row.state,
        error: row.error,
        scheduling_option: row.options.schedule.name(),
        restart_option: row.options.restart.name(),
        period,
        attempts: row.attempts,
        restarts: row.restarts,
        run_number: row.run_number,
        next_run_at: row.due_at.filter(|_| row.status.is_live()),
        last_success_at: row.last_success_at,
        parent_id: row.parent_id,
    }
}

/// The task list's filter, carried in the cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TaskFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<TaskStatus>,
}

async fn list_of(
    state: &AppState,
    provider: &str,
    connector_id: Option<&str>,
    params: &Params,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(state, provider, connector_id).await?;
    let request = PageRequest::from_params(params, |p| {
        let status = p
            .get("status")
            .map(|s| {
                TaskStatus::parse(&s.to_ascii_uppercase()).ok_or_else(|| {
                    ApiError::validation(format!(
                        "status must be PENDING, ACTIVE, TERMINATED, FAILED or STOPPED, not {s:?}"
                    ))
                })
            })
            .transpose()?;
        Ok(TaskFilter { status })
    })?;
    let rows = tasks::page(
        state.storage.pool(),
        &row.id,
        request.filter.status,
        &request.keyset(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |t| (t.created_at, t.id.to_string()),
        task_json,
    )))
}

/// GET …/{connectorID}/tasks
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    list_of(&state, &provider, Some(&id), &params).await
}

/// GET /connectors/{provider}/tasks (deprecated)
pub async fn list_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    list_of(&state, &path, None, &params).await
}

fn parse_task_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id)
        .map_err(|_| ApiError::new(ErrorCode::InvalidId, format!("malformed task id {id:?}")))
}

async fn get_of(
    state: &AppState,
    provider: &str,
    connector_id: Option<&str>,
    task_id: &str,
) -> Result<HttpResponse, ApiError> {
    let task_id = parse_task_id(task_id)?;
    let row = resolve(state, provider, connector_id).await?;
    let task = tasks::get(state.storage.pool(), &row.id, task_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {task_id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: task_json(task),
    }))
}

/// GET …/{connectorID}/tasks/{taskID}
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id, task_id) = path.into_inner();
    get_of(&state, &provider, Some(&id), &task_id).await
}

/// GET /connectors/{provider}/tasks/{taskID} (deprecated)
pub async fn get_only(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, task_id) = path.into_inner();
    get_of(&state, &provider, None, &task_id).await
}

/// POST …/{connectorID}/tasks/{taskID}/restart: runs a FAILED, TERMINATED or STOPPED task again.
pub async fn restart(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id, task_id) = path.into_inner();
    let task_id = parse_task_id(&task_id)?;
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.restart_task(&row.id, task_id).await?;
    Ok(HttpResponse::NoContent().finish())
}
