//! `/connectors`: list, config schemas, install, uninstall, config, reset, pause/resume,
//! validate; and Formance's deprecated forms without `{connectorID}`, which work when exactly
//! one connector of the provider is installed.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::JsonObject;
use super::{AppState, Data, RouteEntry};
use crate::ids::ConnectorKey;
use crate::runtime::checked_config;
use crate::sdk::{Config, ConfigSchema, FieldError, FieldSpec, Loader};
use crate::storage::commands::connectors::Lifecycle;
use crate::storage::queries::{self, connectors::ConnectorRow};

/// The connector routes, tasks included (literal segments before parameters: actix tries
/// them in order). The deprecated forms are still served.
#[allow(deprecated)]
pub fn routes() -> Vec<RouteEntry> {
    use super::tasks;
    use Method as M;
    vec![
        (M::GET, "/connectors", web::to(list)),
        (M::GET, "/connectors/configs", web::to(configs)),
        (
            M::POST,
            "/connectors/configs/{provider}/validate",
            web::to(validate),
        ),
        // Deprecated forms (exactly one connector of the provider).
        (
            M::GET,
            "/connectors/{provider}/config",
            web::to(read_config_only),
        ),
        (
            M::POST,
            "/connectors/{provider}/config",
            web::to(update_config_only),
        ),
        (M::POST, "/connectors/{provider}/reset", web::to(reset_only)),
        (
            M::GET,
            "/connectors/{provider}/tasks",
            web::to(tasks::list_only),
        ),
        (
            M::GET,
            "/connectors/{provider}/tasks/{taskID}",
            web::to(tasks::get_only),
        ),
        (M::POST, "/connectors/{provider}", web::to(install)),
        (M::DELETE, "/connectors/{provider}", web::to(uninstall_only)),
        // One connector by id.
        (
            M::DELETE,
            "/connectors/{provider}/{connectorID}",
            web::to(uninstall),
        ),
        (
            M::GET,
            "/connectors/{provider}/{connectorID}/config",
            web::to(read_config),
        ),
        (
            M::POST,
            "/connectors/{provider}/{connectorID}/config",
            web::to(update_config),
        ),
        (
            M::POST,
            "/connectors/{provider}/{connectorID}/reset",
            web::to(reset),
        ),
        (
            M::POST,
            "/connectors/{provider}/{connectorID}/pause",
            web::to(pause),
        ),
        (
            M::POST,
            "/connectors/{provider}/{connectorID}/resume",
            web::to(resume),
        ),
        (
            M::GET,
            "/connectors/{provider}/{connectorID}/tasks",
            web::to(tasks::list),
        ),
        (
            M::GET,
            "/connectors/{provider}/{connectorID}/tasks/{taskID}",
            web::to(tasks::get),
        ),
        (
            M::POST,
            "/connectors/{provider}/{connectorID}/tasks/{taskID}/restart",
            web::to(tasks::restart),
        ),
    ]
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
/// Connectors still being installed are not shown.
fn visible(c: &ConnectorRow) -> bool {
    c.lifecycle != Lifecycle::Installing
}

/// An installed connector.
#[derive(Serialize, ToSchema)]
pub struct ConnectorJson {
    /// Its provider, upper case.
    #[schema(example = "DUMMY-PAY")]
    provider: String,
    /// Its id.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Its name, unique among connectors.
    name: String,
    /// False while paused.
    enabled: bool,
}

/// The id of a connector just installed.
#[derive(Serialize, ToSchema)]
pub struct Installed {
    /// Its id.
    #[serde(rename = "connectorID")]
    connector_id: String,
}

/// Whether a config would be accepted, and what is wrong with it.
#[derive(Serialize, ToSchema)]
pub struct Validation {
    /// True when `errors` is empty.
    valid: bool,
    /// Each offending field.
    errors: Vec<FieldError>,
}

/// A connector's config: DUMMY-PAY's fields here; `GET /connectors/configs` lists each
/// provider's.
// For the OpenAPI document only: handlers take any JSON object and the provider validates it.
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // never built: it only describes the body
pub struct ConnectorConfig {
    /// The connector's name, unique among connectors.
    #[schema(example = "local-files", min_length = 1, max_length = 256)]
    name: String,
    /// DUMMY-PAY: the directory to watch (created at install if missing).
    #[schema(example = "./data/dummypay")]
    directory: String,
    /// DUMMY-PAY: how often the directory is listed (a duration, at most 30 days).
    #[schema(example = "10s", default = "10s")]
    file_polling_period: Option<String>,
    /// DUMMY-PAY: only file names starting with this are ingested.
    prefix_file_to_ingest: Option<String>,
    /// DUMMY-PAY: demo account files written at install.
    #[schema(minimum = 0, maximum = 100_000, default = 0)]
    number_of_accounts_pre_generated: Option<u64>,
    /// DUMMY-PAY: demo payment files written at install.
    #[schema(minimum = 0, maximum = 100_000, default = 0)]
    number_of_payments_pre_generated: Option<u64>,
    /// Ignored (`GET …/config` adds it, so that clients can send it back).
    #[schema(example = "Dummypay")]
    provider: Option<String>,
}

/// Lists the installed connectors.
#[utoipa::path(get, path = "/api/payments/connectors", tag = "connectors",
    operation_id = "listAllConnectors",
    responses((status = 200, description = "The connectors", body = Data<Vec<ConnectorJson>>)))]
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
    Ok(HttpResponse::Ok().json(Data { data }))
}

/// Each provider's config fields: type, whether required, default.
#[utoipa::path(get, path = "/api/payments/connectors/configs", tag = "connectors",
    operation_id = "listConfigsAvailableConnectors",
    responses((status = 200, description = "Fields by provider",
        body = Data<BTreeMap<String, BTreeMap<String, FieldSpec>>>)))]
async fn configs(state: web::Data<AppState>) -> HttpResponse {
    let data: BTreeMap<&str, ConfigSchema> = state
        .runtime
        .registry()
        .iter()
        .map(|l| (l.provider(), l.schema()))
        .collect();
    HttpResponse::Ok().json(Data { data })
}

/// Validates a config without installing anything (beyond Formance).
#[utoipa::path(post, path = "/api/payments/connectors/configs/{provider}/validate",
    tag = "connectors", operation_id = "validateConnectorConfig", request_body = ConnectorConfig,
    responses((status = 200, description = "The verdict", body = Data<Validation>)))]
async fn validate(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let loader = loader(&state, &path)?;
    let data = match checked_config(&loader, without_provider(body.0)) {
        Ok(_) => Validation {
            valid: true,
            errors: Vec::new(),
        },
        Err(e) => Validation {
            valid: false,
            errors: e.0,
        },
    };
    Ok(HttpResponse::Ok().json(Data { data }))
}

/// Clients echo `GET …/config` back, `provider` included; it is not a config field.
fn without_provider(mut config: Config) -> Config {
    config.remove("provider");
    config
}

/// Installs a connector, all or nothing.
#[utoipa::path(post, path = "/api/payments/connectors/{provider}", tag = "connectors",
    operation_id = "installConnector", request_body = ConnectorConfig,
    responses((status = 201, description = "Installed", body = Data<Installed>)))]
async fn install(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let loader = loader(&state, &path)?;
    let connector_id = state
        .runtime
        .install(loader.provider(), without_provider(body.0), false)
        .await?;
    Ok(HttpResponse::Created().json(Data {
        data: Installed { connector_id },
    }))
}

/// Uninstalls a connector, deleting its tasks, payments, accounts and balances.
#[utoipa::path(delete, path = "/api/payments/connectors/{provider}/{connectorID}",
    tag = "connectors", operation_id = "uninstallConnectorV1", responses((status = 204, description = "Uninstalled")))]
async fn uninstall(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.uninstall(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Uninstalls the provider's only connector (deprecated: use the form with the id).
#[utoipa::path(delete, path = "/api/payments/connectors/{provider}", tag = "connectors",
    operation_id = "uninstallConnector", responses((status = 204, description = "Uninstalled")))]
#[deprecated = "use the form with {connectorID}"]
async fn uninstall_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    state.runtime.uninstall(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The stored config with every secret field shown as `"********"` (decrypting nothing):
/// unlike Formance v1, which answers secrets in clear (docs/api.md#secrets).
fn config_json(state: &AppState, row: ConnectorRow) -> Result<HttpResponse, ApiError> {
    let loader = loader(state, &row.provider)?;
    let mut config = crate::secrets::vault::mask(&loader.schema(), &row.config);
    config.insert("provider".into(), json!(loader.provider_title()));
    Ok(HttpResponse::Ok().json(Data { data: config }))
}

/// A connector's config, defaults applied, with `provider` (title case) added; secret fields
/// read `"********"` (send that back to keep the stored value).
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/{connectorID}/config",
    tag = "connectors", operation_id = "readConnectorConfigV1", responses((status = 200, description = "The config", body = Data<ConnectorConfig>)))]
async fn read_config(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    config_json(&state, row)
}

/// The config of the provider's only connector (deprecated).
#[utoipa::path(get, path = "/api/payments/connectors/{provider}/config", tag = "connectors",
    operation_id = "readConnectorConfig", responses((status = 200, description = "The config", body = Data<ConnectorConfig>)))]
#[deprecated = "use the form with {connectorID}"]
async fn read_config_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    config_json(&state, row)
}

/// Replaces a connector's config; running tasks see it from their next run.
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/{connectorID}/config",
    tag = "connectors", operation_id = "updateConnectorConfigV1", request_body = ConnectorConfig, responses((status = 204, description = "Updated")))]
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

/// Replaces the config of the provider's only connector (deprecated).
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/config", tag = "connectors",
    operation_id = "updateConnectorConfig", request_body = ConnectorConfig, responses((status = 204, description = "Updated")))]
#[deprecated = "use the form with {connectorID}"]
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

/// Resets a connector: its data is deleted and it is installed again, with the same id.
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/{connectorID}/reset",
    tag = "connectors", operation_id = "resetConnectorV1", responses((status = 204, description = "Reset")))]
async fn reset(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.reset(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resets the provider's only connector (deprecated).
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/reset", tag = "connectors",
    operation_id = "resetConnector", responses((status = 204, description = "Reset")))]
#[deprecated = "use the form with {connectorID}"]
async fn reset_only(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = resolve(&state, &path, None).await?;
    state.runtime.reset(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pauses a connector: runs stop, nothing starts until resume; persisted (beyond Formance).
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/{connectorID}/pause",
    tag = "connectors", operation_id = "pauseConnector", responses((status = 204, description = "Paused")))]
async fn pause(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.pause(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Resumes a paused connector (beyond Formance).
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/{connectorID}/resume",
    tag = "connectors", operation_id = "resumeConnector", responses((status = 204, description = "Resumed")))]
async fn resume(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (provider, id) = path.into_inner();
    let row = resolve(&state, &provider, Some(&id)).await?;
    state.runtime.resume(&row.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
