//! `/connectors/{provider}/{connectorID}/tasks`: a connector's tasks, newest first, with
//! Formance's fields plus the schedule, restart option, attempts, next run and last success;
//! one task; restarting an ended task.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::connectors::resolve;
use super::error::{ApiError, ErrorCode};
use super::extract::Params;
use super::pagination::{CursorResponse, PageQuery, PageRequest};
use super::{AppState, Data};
use crate::sdk::{Schedule, TaskStatus};
use crate::storage::queries::tasks::{self, TaskRow};

/// A task as the API shows it: Formance's fields, then the schedule and run bookkeeping.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskJson {
    /// Derived from the connector id and the descriptor.
    id: Uuid,
    /// Its connector.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// When it was first scheduled.
    created_at: DateTime<Utc>,
    /// When its row last changed.
    updated_at: DateTime<Utc>,
    /// The connector's JSON naming the task (DUMMY-PAY: `{name, key, fileName}`).
    descriptor: Value,
    /// Where it is in its life.
    status: TaskStatus,
    /// The state the task saved, if any.
    state: Option<Value>,
    /// The last error, if any.
    error: Option<String>,
    /// Beyond Formance: when it runs.
    #[schema(example = "RUN_PERIODICALLY")]
    scheduling_option: &'static str,
    /// Beyond Formance: what rescheduling and failure do.
    #[schema(example = "RESTART_IF_NOT_ACTIVE")]
    restart_option: &'static str,
    /// The period or delay of RUN_PERIODICALLY / RUN_IN_DURATION tasks.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "10s")]
    period: Option<String>,
    /// Consecutive retryable failures of the current run.
    attempts: u32,
    /// Consecutive failed runs (RESTART_ALWAYS).
    restarts: u32,
    /// Which run this is.
    run_number: i64,
    /// When a live task runs next.
    next_run_at: Option<DateTime<Utc>>,
    /// When a run last succeeded.
    last_success_at: Option<DateTime<Utc>>,
    /// The task that scheduled it.
    #[serde(rename = "parentID")]
    parent_id: Option<Uuid>,
}

/// The task list's filter, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameter
pub struct TaskQuery {
    /// Only tasks with this status (any case).
    status: Option<TaskStatus>,
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

/// A connector's tasks, newest first.
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/{connectorID}/tasks",
    tag = "tasks", operation_id = "listConnectorTasksV1",
    params(PageQuery, TaskQuery),
    responses((status = 200, description = "A page of tasks", body = CursorResponse<TaskJson>)))]
pub async fn list(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    list_of(&state, &provider, Some(&id), &params).await
}

/// The tasks of the provider's only connector (deprecated).
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/tasks", tag = "tasks",
    operation_id = "listConnectorTasks", params(PageQuery, TaskQuery),
    responses((status = 200, description = "A page of tasks", body = CursorResponse<TaskJson>)))]
#[deprecated = "use the form with {connectorID}"]
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

/// One task.
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/{connectorID}/tasks/{taskID}",
    tag = "tasks", operation_id = "getConnectorTaskV1", responses((status = 200, description = "The task", body = Data<TaskJson>)))]
pub async fn get(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id, task_id) = path.into_inner();
    get_of(&state, &provider, Some(&id), &task_id).await
}

/// One task of the provider's only connector (deprecated).
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/tasks/{taskID}", tag = "tasks",
    operation_id = "getConnectorTask", responses((status = 200, description = "The task", body = Data<TaskJson>)))]
#[deprecated = "use the form with {connectorID}"]
pub async fn get_only(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, task_id) = path.into_inner();
    get_of(&state, &provider, None, &task_id).await
}

/// Runs a FAILED, TERMINATED or STOPPED task again (beyond Formance; a live one is CONFLICT).
#[utoipa::path(post,
    path = "/api/payments/connectors/{provider}/{connectorID}/tasks/{taskID}/restart",
    tag = "tasks", operation_id = "restartConnectorTask", responses((status = 204, description = "Restarted")))]
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
