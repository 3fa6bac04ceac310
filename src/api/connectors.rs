//! `/connectors`: list, config schemas, install, uninstall, config, reset, pause/resume,
//! validate; and Formance's deprecated forms without `{connectorID}`, which work when exactly
//! one connector of the provider is installed.

use std::sync::Arc;

use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::JsonObject;
use crate::ids::ConnectorKey;
use crate::runtime::checked_config;
use crate::sdk::{Config, Loader};
use crate::storage::commands::connectors::Lifecycle;
use crate::storage::queries::{self, connectors::ConnectorRow};

/// Registers the connector routes (literal segments before parameters: actix matches in order).
pub fn routes(cfg: &mut web::ServiceConfig) {
    use super::tasks;
    cfg.route("/connectors", web::get().to(list))
        .route("/connectors/configs", web::get().to(configs))
        .route(
            "/connectors/configs/{provider}/validate",
            web::post().to(validate),
        )
        // Deprecated forms (exactly one connector of the provider).
        .route(
            "/connectors/{provider}/config",
            web::get().to(read_config_only),
        )
        .route(
            "/connectors/{provider}/config",
            web::post().to(update_config_only),
        )
        .route("/connectors/{provider}/reset", web::post().to(reset_only))
        .route(
            "/connectors/{provider}/tasks",
            web::get().to(tasks::list_only),
        )
        .route(
            "/connectors/{provider}/tasks/{task_id}",
            web::get().to(tasks::get_only),
        )
        .route("/connectors/{provider}", web::post().to(install))
        .route("/connectors/{provider}", web::delete().to(uninstall_only))
        // One connector by id.
        .route(
            "/connectors/{provider}/{connector_id}",
            web::delete().to(uninstall),
        )
        .route(
            "/connectors/{provider}/{connector_id}/config",
            web::get().to(read_config),
        )
        .route(
            "/connectors/{provider}/{connector_id}/config",
            web::post().to(update_config),
        )
        .route(
            "/connectors/{provider}/{connector_id}/reset",
            web::post().to(reset),
        )
        .route(
            "/connectors/{provider}/{connector_id}/pause",
            web::post().to(pause),
        )
        .route(
            "/connectors/{provider}/{connector_id}/resume",
            web::post().to(resume),
        )
        .route(
            "/connectors/{provider}/{connector_id}/tasks",
            web::get().to(tasks::list),
        )
        .route(
            "/connectors/{provider}/{connector_id}/tasks/{task_id}",
            web::get().to(tasks::get),
        )
        .route(
            "/connectors/{provider}/{connector_id}/tasks/{task_id}/restart",
            web::post().to(tasks::restart),
        );
}

/// The loader of a provider path segment (any case), or 404.
pub fn loader(state: &AppState, provider: &str) -> Result<Arc<dyn Loader>, ApiError> {
    state
        .runtime
        .registry()
        .get(provider)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("unknown provider {provider:?}")))
}

/// The connector `{provider}/{connectorID}` names, or the only one of the provider when no id
/// is given (deprecated form).
pub async fn resolve(
    state: &AppState,
    provider: &str,
    connector_id: Option<&str>,
) -> Result<ConnectorRow, ApiError> {
    let loader = loader(state, provider)?;
    let row = match connector_id {
        Some(id) => {
            ConnectorKey::parse(id)?;
            queries::connectors::get(state.storage.pool(), id).await?
        }
        None => {
            let mut rows: Vec<ConnectorRow> = queries::connectors::all(state.storage.pool())
                .await?
                .into_iter()
                .filter(|c| c.provider == loader.provider() && visible(c))
                .collect();
            match rows.len() {
                0 => None,
                1 => rows.pop(),
                n => {
                    return Err(ApiError::validation(format!(
                        "{n} {} connectors are installed: use /connectors/{}/{{connectorID}}",
                        loader.provider(),
                        provider
                    )));
                }
            }
        }
    };
    row.filter(|c| c.provider == loader.provider() && visible(c))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "connector {} not found",
                connector_id.unwrap_or(provider)
            ))
        })
}

/// Connectors still being installed are not shown.
fn visible(c: &ConnectorRow) -> bool {
    c.lifecycle != Lifecycle::Installing
}

#[derive(Serialize)]
struct ConnectorJson {
    provider: String,
    #[serde(rename = "connectorID")]
    connector_id: String,
    name: String,
    enabled: bool,
}

async fn list(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let data: Vec<ConnectorJson> = queries::connectors::all(state.storage.pool())
        .await?
        .into_iter()
        .filter(visible)
        .map(|c| ConnectorJson {
            provider: c.provider,
            connector_id: c.id,
            name: c.name,
            enabled: c.enabled,
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

async fn configs(state: web::Data<AppState>) -> HttpResponse {
    let data: serde_json::Map<String, Value> = state
        .runtime
        .registry()
        .iter()
        .map(|l| (l.provider().to_string(), json!(l.schema())))
        .collect();
    HttpResponse::Ok().json(json!({ "data": data }))
}

async fn validate(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let loader = loader(&state, &path)?;
    let data = match checked_config(&loader, without_provider(body.0)) {
        Ok(_) => json!({"valid": true, "errors": []}),
        Err(e) => json!({"valid": false, "errors": e.0}),
    };
    Ok(HttpResponse::Ok().json(json!({ "data": data })))
}

/// Clients echo `GET …/config` back, `provider` included; it is not a config field.
fn without_provider(mut config: Config) -> Config {
    config.remove("provider");
    config
}

async fn install(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let loader = loader(&state, &path)?;
    let id = state
        .runtime
        .install(loader.provider(), without_provider(body.0), false)
        .await?;
    Ok(HttpResponse::Created().json(json!({ "data": { "connectorID": id } })))
}

async fn uninstall(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.uninstall(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn uninstall_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    state.runtime.uninstall(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

fn config_json(state: &AppState, row: ConnectorRow) -> Result<HttpResponse, ApiError> {
    let loader = loader(state, &row.provider)?;
    let mut config = match row.config {
        Value::Object(map) => map,
        _ => Config::new(),
    };
    config.insert("provider".into(), json!(loader.provider_title()));
    Ok(HttpResponse::Ok().json(json!({ "data": config })))
}

async fn read_config(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    config_json(&state, row)
}

async fn read_config_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    config_json(&state, row)
}

async fn update_config(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state
        .runtime
        .update_config(&row.id, without_provider(body.0))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn update_config_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    state
        .runtime
        .update_config(&row.id, without_provider(body.0))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn reset(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.reset(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn reset_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    state.runtime.reset(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn pause(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.pause(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn resume(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.resume(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
