//! The HTTP API, wire-compatible with Formance Payments v1, under `/api/payments`.
//! One file per resource; [`error`] maps every error to `(status, errorCode)`.

pub mod error;
pub mod health;

use actix_web::web;

use crate::runtime::Runtime;
use crate::storage::StorageHandle;

/// The base path every route lives under, as in Formance.
pub const BASE_PATH: &str = "/api/payments";

/// What every handler can reach: the storage handle (reads go to its pool).
#[derive(Clone)]
pub struct AppState {
    /// Writes go through the storage actor; reads use its pool.
    pub storage: StorageHandle,
    /// Connector operations go to the runtime's actors.
    pub runtime: Runtime,
    /// How long a read may wait for the database.
    pub db_timeout: std::time::Duration,
}

/// Registers every route under [`BASE_PATH`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope(BASE_PATH).configure(health::routes));
}
