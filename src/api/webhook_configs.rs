//! `/api/webhooks/configs`: webhook endpoints, managed through the Formance Webhooks v1 API
//! as `formance-sdk-python`'s `webhooks_v1` speaks it (insert, list, update, delete, activate,
//! deactivate, change secret, test). Writes go through the storage actor; starting and
//! stopping each config's publisher through [`Webhooks`]. Differences from Formance are in
//! docs/api.md#webhooks.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonObject, Params, kind};
use super::{AppState, Data, RouteEntry};
use crate::storage::commands::webhooks::{
    CreateWebhookConfig, DeleteWebhookConfig, DeliveryKey, SetWebhookConfigActive,
    UpdateWebhookConfig,
};
use crate::storage::queries::webhooks::{self as queries, ConfigRow};
use crate::webhooks::{Webhooks, normalize_event_type, signing, sink};

/// Where the Formance Webhooks v1 API is served.
pub const BASE_PATH: &str = "/api/webhooks";

/// The config routes (literal segments before parameters).
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::POST, "/configs", web::to(insert)),
        (Method::GET, "/configs", web::to(list)),
        (Method::PUT, "/configs/{id}", web::to(update)),
        (Method::DELETE, "/configs/{id}", web::to(delete)),
        (Method::GET, "/configs/{id}/test", web::to(test)),
        (Method::PUT, "/configs/{id}/activate", web::to(activate)),
        (Method::PUT, "/configs/{id}/deactivate", web::to(deactivate)),
        (
            Method::PUT,
            "/configs/{id}/secret/change",
            web::to(change_secret),
        ),
    ]
}

/// Formance's `WebhooksConfig`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigJson {
    id: Uuid,
    #[schema(example = "https://example.com/hooks")]
    endpoint: String,
    /// The signing secret, in clear (as Formance answers it).
    #[schema(example = "V0bivxRWveaoz08afqjU6Ko/jwO0Cb+3")]
    secret: String,
    /// Formance's form: `payments.saved_payment` …
    #[schema(example = json!(["payments.saved_payment"]))]
    event_types: Vec<String>,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

/// Formance's `ConfigsResponse`: one page holding every config.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigsJson {
    cursor: ConfigsCursor,
}

/// The page of [`ConfigsJson`].
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConfigsCursor {
    has_more: bool,
    data: Vec<ConfigJson>,
}

/// A config id from the path (400 naming it otherwise).
pub fn config_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::validation(format!("id must be a UUID, not {text:?}")))
}

fn webhooks(req_data: &web::Data<Webhooks>) -> &Webhooks {
    req_data.get_ref()
}

/// A stored config as answered, its secret opened.
fn config_json(hooks: &Webhooks, row: ConfigRow) -> Result<ConfigJson, ApiError> {
    let secret = hooks
        .vault
        .open_webhook_secret(&row.id.to_string(), &row.secret)
        .map(|(secret, _)| secret)
        .map_err(|e| {
            tracing::error!(config_id = %row.id, error = %e, "webhook secret unreadable");
            ApiError::new(super::error::ErrorCode::Internal, e.to_string())
        })?;
    Ok(ConfigJson {
        id: row.id,
        endpoint: row.endpoint,
        secret,
        event_types: row.event_types,
        active: row.active,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

async fn load(state: &AppState, id: Uuid) -> Result<ConfigRow, ApiError> {
    queries::config(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook config {id} not found")))
}

/// An http(s) URL with a host (400 naming `endpoint` otherwise).
fn endpoint(value: Option<&Value>) -> Result<String, ApiError> {
    let text = match value {
        Some(Value::String(text)) if !text.trim().is_empty() => text.trim(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            return Err(ApiError::validation("endpoint is required"));
        }
        Some(other) => {
            return Err(ApiError::validation(format!(
                "endpoint must be a string, not {}",
                kind(other)
            )));
        }
    };
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(url.to_string())
        }
        _ => Err(ApiError::validation(format!(
            "endpoint must be an http(s) URL, not {text:?}"
        ))),
    }
}

/// The event types, in Formance's form (400 naming `eventTypes` otherwise).
fn event_types(value: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let known = || {
        crate::events::EventType::ALL
            .iter()
            .map(|t| crate::webhooks::formance_type(t.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let items = match value {
        Some(Value::Array(items)) if !items.is_empty() => items,
        None | Some(Value::Null) | Some(Value::Array(_)) => {
            return Err(ApiError::validation(format!(
                "eventTypes is required: a non-empty array of {}",
                known()
            )));
        }
        Some(other) => {
            return Err(ApiError::validation(format!(
                "eventTypes must be an array, not {}",
                kind(other)
            )));
        }
    };
    let mut types = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let given = item.as_str().unwrap_or_default();
        let normalized = normalize_event_type(given).ok_or_else(|| {
            ApiError::validation(format!(
                "eventTypes[{i}]: unknown event type {item}; known: {}",
                known()
            ))
        })?;
        if !types.contains(&normalized) {
            types.push(normalized);
        }
    }
    Ok(types)
}

/// The secret given, or a new one when absent or empty (400 naming `secret` if malformed).
fn secret(value: Option<&Value>) -> Result<String, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(signing::new_secret()),
        Some(Value::String(s)) if s.is_empty() => Ok(signing::new_secret()),
        Some(Value::String(s)) => signing::check_secret(s)
            .map(|()| s.clone())
            .map_err(ApiError::validation),
        Some(other) => Err(ApiError::validation(format!(
            "secret must be a string, not {}",
            kind(other)
        ))),
    }
}

/// A 400 naming the first field of `body` not in `known` (Formance's JSON decoding refuses
/// unknown fields).
pub(super) fn refuse_unknown(body: &Map<String, Value>, known: &[&str]) -> Result<(), ApiError> {
    match body.keys().find(|k| !known.contains(&k.as_str())) {
        Some(field) => Err(ApiError::validation(format!(
            "unknown field {field:?} (known: {})",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// Creates a config, active at once: every matching event stored after this call is sent to
/// its endpoint. The secret, if not given, is generated (base64 of 24 random bytes).
#[utoipa::path(post, path = "/api/webhooks/configs", tag = "webhooks",
    operation_id = "insertConfig",
    request_body(content = Object, example = json!({"endpoint": "https://example.com/hooks",
        "eventTypes": ["payments.saved_payment"]})),
    responses((status = 200, description = "The config", body = Data<ConfigJson>)))]
async fn insert(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    refuse_unknown(&body, &["endpoint", "secret", "eventTypes"])?;
    let endpoint = endpoint(body.get("endpoint"))?;
    let event_types = event_types(body.get("eventTypes"))?;
    let secret = secret(body.get("secret"))?;
    let hooks = webhooks(&hooks);
    let id = Uuid::new_v4();
    let sealed = hooks.vault.seal_webhook_secret(&id.to_string(), &secret);
    state
        .storage
        .write(CreateWebhookConfig {
            id,
            endpoint: endpoint.clone(),
            secret: sealed,
            event_types,
        })
        .await?;
    hooks.reconcile(id).await;
    tracing::info!(config_id = %id, endpoint = %crate::events::redact_url(&endpoint), "webhook config created");
    let row = load(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: config_json(hooks, row)?,
    }))
}

/// Filters of the config list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct ConfigQuery {
    /// Only the config with this id.
    id: Option<Uuid>,
    /// Only the configs with this endpoint.
    endpoint: Option<String>,
}

/// The configs, most recently updated first.
#[utoipa::path(get, path = "/api/webhooks/configs", tag = "webhooks",
    operation_id = "getManyConfigs", params(ConfigQuery),
    responses((status = 200, description = "Every config", body = ConfigsJson)))]
async fn list(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let id = params.get("id").map(config_id).transpose()?;
    let rows = queries::configs(state.storage.pool(), id, params.get("endpoint"), false).await?;
    let data = rows
        .into_iter()
        .map(|row| config_json(webhooks(&hooks), row))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(HttpResponse::Ok().json(ConfigsJson {
        cursor: ConfigsCursor {
            has_more: false,
            data,
        },
    }))
}

/// Changes a config's endpoint and event types, and its secret when one is given (Formance
/// sets whatever the body holds; here a missing secret keeps the current one rather than
/// leaving the config unsigned). Answers 200 with no body, as Formance does. The publisher
/// reads the config before each attempt, so the next one follows the change (a delivery being
/// retried goes on at the new endpoint); its place in the outbox and its active state stay.
#[utoipa::path(put, path = "/api/webhooks/configs/{id}", tag = "webhooks",
    operation_id = "updateConfig",
    request_body(content = Object, example = json!({"endpoint": "https://example.com/hooks",
        "eventTypes": ["payments.saved_payment"]})),
    responses((status = 200, description = "Updated")))]
async fn update(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let id = config_id(&path.into_inner())?;
    let body = body.0;
    refuse_unknown(&body, &["endpoint", "secret", "eventTypes"])?;
    let endpoint = endpoint(body.get("endpoint"))?;
    let event_types = event_types(body.get("eventTypes"))?;
    let secret = match body.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        given => Some(secret(given)?),
    };
    let hooks = webhooks(&hooks);
    let update = UpdateWebhookConfig {
        id,
        endpoint: Some(endpoint.clone()),
        event_types: Some(event_types),
        secret: secret.map(|s| hooks.vault.seal_webhook_secret(&id.to_string(), &s)),
    };
    if !state.storage.write(update).await? {
        return Err(ApiError::not_found(format!(
            "webhook config {id} not found"
        )));
    }
    tracing::info!(config_id = %id, endpoint = %crate::events::redact_url(&endpoint), "webhook config updated");
    Ok(HttpResponse::Ok().finish())
}

/// Deletes a config: its publisher stops; its deliveries stay listed.
#[utoipa::path(delete, path = "/api/webhooks/configs/{id}", tag = "webhooks",
    operation_id = "deleteConfig",
    responses((status = 200, description = "Deleted")))]
async fn delete(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = config_id(&path.into_inner())?;
    if !state.storage.write(DeleteWebhookConfig { id }).await? {
        return Err(ApiError::not_found(format!(
            "webhook config {id} not found"
        )));
    }
    webhooks(&hooks).reconcile(id).await;
    tracing::info!(config_id = %id, "webhook config deleted");
    Ok(HttpResponse::Ok().finish())
}

async fn set_active(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
    active: bool,
) -> Result<HttpResponse, ApiError> {
    let id = config_id(&path.into_inner())?;
    if !state
        .storage
        .write(SetWebhookConfigActive { id, active })
        .await?
    {
        return Err(ApiError::not_found(format!(
            "webhook config {id} not found"
        )));
    }
    let hooks = webhooks(&hooks);
    hooks.reconcile(id).await;
    tracing::info!(config_id = %id, active, "webhook config switched");
    let row = load(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: config_json(hooks, row)?,
    }))
}

/// Activates a config: events stored from now on are sent to it.
#[utoipa::path(put, path = "/api/webhooks/configs/{id}/activate", tag = "webhooks",
    operation_id = "activateConfig",
    responses((status = 200, description = "The config", body = Data<ConfigJson>)))]
async fn activate(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_active(state, hooks, path, true).await
}

/// Deactivates a config: nothing more is sent to it (what was stored meanwhile is not sent
/// after a new activation).
#[utoipa::path(put, path = "/api/webhooks/configs/{id}/deactivate", tag = "webhooks",
    operation_id = "deactivateConfig",
    responses((status = 200, description = "The config", body = Data<ConfigJson>)))]
async fn deactivate(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    set_active(state, hooks, path, false).await
}

/// Replaces a config's signing secret (a new one is generated when none or an empty one is
/// given): every attempt from now on is signed with it.
#[utoipa::path(put, path = "/api/webhooks/configs/{id}/secret/change", tag = "webhooks",
    operation_id = "changeConfigSecret",
    request_body(content = Object, example = json!({"secret": "V0bivxRWveaoz08afqjU6Ko/jwO0Cb+3"})),
    responses((status = 200, description = "The config", body = Data<ConfigJson>)))]
async fn change_secret(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
    body: Option<JsonObject>,
) -> Result<HttpResponse, ApiError> {
    let id = config_id(&path.into_inner())?;
    let body = body.map(|b| b.0).unwrap_or_default();
    refuse_unknown(&body, &["secret"])?;
    let secret = secret(body.get("secret"))?;
    let hooks = webhooks(&hooks);
    let sealed = hooks.vault.seal_webhook_secret(&id.to_string(), &secret);
    if !state
        .storage
        .write(UpdateWebhookConfig {
            id,
            secret: Some(sealed),
            ..Default::default()
        })
        .await?
    {
        return Err(ApiError::not_found(format!(
            "webhook config {id} not found"
        )));
    }
    tracing::info!(config_id = %id, "webhook secret changed");
    let row = load(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: config_json(hooks, row)?,
    }))
}

/// Formance's `Attempt`: what the test endpoint answers.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestAttemptJson {
    id: Uuid,
    #[serde(rename = "webhookID")]
    webhook_id: Uuid,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    config: ConfigJson,
    #[schema(example = "{\"data\":\"test\"}")]
    payload: String,
    /// The endpoint's answer, 0 when none came.
    status_code: u16,
    retry_attempt: u32,
    /// `success` or `failed`.
    status: &'static str,
}

/// Sends a test request (`{"data":"test"}`, `formance-webhook-test: true`) to the config's
/// endpoint now, and answers how it went. It is not recorded as a delivery.
#[utoipa::path(get, path = "/api/webhooks/configs/{id}/test", tag = "webhooks",
    operation_id = "testConfig",
    responses((status = 200, description = "The attempt", body = Data<TestAttemptJson>)))]
async fn test(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = config_id(&path.into_inner())?;
    let row = load(&state, id).await?;
    let hooks = webhooks(&hooks);
    let key = DeliveryKey {
        id: Uuid::new_v4(),
        config_id: id,
        event_id: Uuid::new_v4(),
        event_type: "test".into(),
        connector_id: String::new(),
        sequence: 0,
        payload: r#"{"data":"test"}"#.into(),
    };
    let created_at = Utc::now();
    let outcome = sink::attempt(&hooks.client, &hooks.vault, &row, &key, true)
        .await
        .map_err(|e| ApiError::new(super::error::ErrorCode::Internal, e.0))?;
    tracing::info!(config_id = %id, status_code = outcome.status_code, "webhook test sent");
    Ok(HttpResponse::Ok().json(Data {
        data: TestAttemptJson {
            id: Uuid::new_v4(),
            webhook_id: key.id,
            created_at,
            updated_at: Utc::now(),
            config: config_json(hooks, row)?,
            payload: key.payload,
            status_code: outcome.status_code,
            retry_attempt: 0,
            status: if outcome.success { "success" } else { "failed" },
        },
    }))
}
