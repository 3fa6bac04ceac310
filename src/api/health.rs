//! `/_live`, `/_health` and `/_info`: liveness, readiness (the database answers) and version.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{AppState, RouteEntry};
use crate::storage::database;

/// The health routes.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::GET, "/_live", web::to(live)),
        (Method::GET, "/_health", web::to(health)),
        (Method::GET, "/_info", web::to(info)),
    ]
}

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
}

/// The 503 answer of `/_health`: why the database is not ready.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Unavailable {
    /// Always `unavailable`.
    #[schema(example = "unavailable")]
    status: &'static str,
    /// Always `UNAVAILABLE`.
    #[schema(example = "UNAVAILABLE")]
    error_code: &'static str,
    /// What the probe saw.
    error_message: String,
}

/// The bare `{"version"}` object Formance returns.
#[derive(Serialize, ToSchema)]
pub struct Info {
    /// The service's version.
    #[schema(example = "0.1.0")]
    version: &'static str,
}

const OK: Status = Status { status: "ok" };

/// Liveness: the process is up and serving HTTP.
#[utoipa::path(get, path = "/api/payments/_live", tag = "health", operation_id = "live",
    responses((status = 200, description = "Serving", body = Status)))]
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(OK)
}

/// Readiness: the database answers within `database.timeout`.
#[utoipa::path(get, path = "/api/payments/_health", tag = "health", operation_id = "health",
    responses(
        (status = 200, description = "The database answers", body = Status),
        (status = 503, description = "The database does not answer", body = Unavailable),
    ))]
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let probe = tokio::time::timeout(state.db_timeout, database::ping(state.storage.pool())).await;
    let reason = match probe {
        Ok(Ok(())) => return HttpResponse::Ok().json(OK),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("the database did not answer within {:?}", state.db_timeout),
    };
    HttpResponse::ServiceUnavailable().json(Unavailable {
        status: "unavailable",
        error_code: "UNAVAILABLE",
        error_message: reason,
    })
}

/// The service's version.
#[utoipa::path(get, path = "/api/payments/_info", tag = "health", operation_id = "getServerInfo",
    responses((status = 200, description = "The version", body = Info)))]
async fn info() -> HttpResponse {
    HttpResponse::Ok().json(Info {
        version: env!("CARGO_PKG_VERSION"),
    })
}
