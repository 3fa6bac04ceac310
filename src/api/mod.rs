//! The HTTP API, wire-compatible with Formance Payments v1, under `/api/payments`.
//! One file per resource, each with its route table and the OpenAPI doc of its handlers;
//! [`error`] maps every error to `(status, errorCode)`; [`pagination`] implements the cursor
//! envelope; [`guard`] keeps web pages out; [`auth`] checks bearer tokens and scopes;
//! [`audit`] records every state-changing call; [`openapi`] assembles the document.

pub mod accounts;
pub mod audit;
pub mod auth;
pub mod bank_accounts;
pub mod connectors;
pub mod error;
pub mod extract;
pub mod guard;
pub mod health;
pub mod manual;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod payments;
pub mod pools;
pub mod query;
pub mod tasks;
pub mod transfer_initiations;
pub mod webhook_configs;
pub mod webhook_deliveries;
pub mod webhooks;

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, ResponseError, Route, web};

use crate::runtime::Runtime;
use crate::storage::StorageHandle;
use error::ApiError;

/// The base path every route lives under, as in Formance.
pub const BASE_PATH: &str = "/api/payments";

/// One route: its method, its path (under [`BASE_PATH`] unless said otherwise) and handler.
pub type RouteEntry = (Method, &'static str, Route);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Writes go through the storage actor; reads use its pool.
    pub storage: StorageHandle,
    /// Connector operations go to the runtime's actors.
    pub runtime: Runtime,
    /// How long a read may wait for the database.
    pub db_timeout: std::time::Duration,
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Origins allowed to call mutating routes from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// The task gauges' last refresh, rendered by `/metrics`.
    pub task_gauges: crate::monitoring::tasks::TaskGauges,
}

/// The `{"data": …}` envelope.
// Serialized directly, never through `serde_json::Value`, which would turn exact amounts into
// floats.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Data<T> {
    /// The object.
    pub data: T,
}

/// Every route under [`BASE_PATH`], in matching order (actix tries them in turn, so literal
/// segments come before parameters). Route tables are built on demand: a `Route` is not Clone.
fn api_routes() -> Vec<RouteEntry> {
    [
        health::routes(),
        // Before the connector routes: `/connectors/{provider}/transfers` must win over
        // `/connectors/{provider}/{connectorID}`.
        transfer_initiations::routes(),
        webhooks::routes(),
        connectors::routes(),
        payments::routes(),
        accounts::routes(),
        bank_accounts::routes(),
        pools::routes(),
        manual::routes(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The Formance Webhooks v1 routes, under [`webhook_configs::BASE_PATH`].
fn webhook_routes() -> Vec<RouteEntry> {
    [webhook_configs::routes(), webhook_deliveries::routes()]
        .into_iter()
        .flatten()
        .collect()
}

/// Every `(method, full path)` the router serves, from the same tables it is built from: the
/// OpenAPI test checks that the document lists exactly these.
pub fn served() -> Vec<(Method, String)> {
    let api = api_routes()
        .into_iter()
        .map(|(method, path, _)| (method, format!("{BASE_PATH}{}", template(path))));
    let hooks = webhook_routes().into_iter().map(|(method, path, _)| {
        (
            method,
            format!("{}{}", webhook_configs::BASE_PATH, template(path)),
        )
    });
    let root = [(Method::GET, metrics::PATH.to_string())];
    api.chain(hooks).chain(root).collect()
}

/// A route's path as the OpenAPI document writes it: `{name:regex}` becomes `{name}`.
fn template(path: &str) -> String {
    path.split('/')
        .map(
            |segment| match (segment.strip_prefix('{'), segment.split_once(':')) {
                (Some(_), Some((name, _))) if segment.ends_with('}') => format!("{name}}}"),
                _ => segment.to_string(),
            },
        )
        .collect::<Vec<_>>()
        .join("/")
}

/// Registers every route: the API under [`BASE_PATH`], the Formance Webhooks v1 API under
/// [`webhook_configs::BASE_PATH`], `/metrics`, the OpenAPI document and
/// Swagger UI at the root, and a Formance-shaped 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    let api = api_routes()
        .into_iter()
        .fold(web::scope(BASE_PATH), |scope, (method, path, route)| {
            scope.route(path, route.method(method))
        });
    let hooks = webhook_routes().into_iter().fold(
        web::scope(webhook_configs::BASE_PATH),
        |scope, (method, path, route)| scope.route(path, route.method(method)),
    );
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::validation(format!("malformed path: {e}")).into()),
    )
    .route(metrics::PATH, web::get().to(metrics::metrics))
    .service(openapi::swagger_ui())
    .service(api)
    .service(hooks)
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}

#[cfg(test)]
mod tests {
    use super::template;

    /// The OpenAPI document and the served list write a regex parameter by its name only.
    #[test]
    fn templates_drop_parameter_patterns() {
        assert_eq!(
            template("/connectors/webhooks/{provider}/{connectorID}/{path:.*}"),
            "/connectors/webhooks/{provider}/{connectorID}/{path}"
        );
        assert_eq!(template("/pools/{poolID}"), "/pools/{poolID}");
        assert_eq!(template("/payments"), "/payments");
    }
}
