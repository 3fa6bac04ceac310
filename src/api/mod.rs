//! The HTTP API, wire-compatible with Formance Payments v1, under `/api/payments`.
//! One file per resource; [`error`] maps every error to `(status, errorCode)`;
//! [`pagination`] implements the cursor envelope; [`guard`] keeps web pages out.

pub mod accounts;
pub mod connectors;
pub mod error;
pub mod extract;
pub mod guard;
pub mod health;
pub mod metrics;
pub mod pagination;
pub mod payments;
pub mod tasks;

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::runtime::Runtime;
use crate::storage::StorageHandle;
use error::ApiError;

/// The base path every route lives under, as in Formance.
pub const BASE_PATH: &str = "/api/payments";

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
}

/// The `{"data": …}` envelope. Serialized directly (never through `serde_json::Value`, which
/// would turn exact amounts into floats).
#[derive(serde::Serialize)]
pub struct Data<T> {
    /// The object.
    pub data: T,
}

/// Registers every route: the API under [`BASE_PATH`], `/metrics` at the root, and a
/// Formance-shaped 404 for everything else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::PathConfig::default()
            .error_handler(|e, _| ApiError::validation(format!("malformed path: {e}")).into()),
    )
    .route("/metrics", web::get().to(metrics::metrics))
    .service(
        web::scope(BASE_PATH)
            .configure(health::routes)
            .configure(connectors::routes)
            .configure(payments::routes)
            .configure(accounts::routes),
    )
    .default_service(web::to(not_found));
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    ApiError::not_found(format!("no route for {} {}", req.method(), req.path())).error_response()
}
