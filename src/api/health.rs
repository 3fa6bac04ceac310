//! `/_live`, `/_health` and `/_info`: liveness, readiness (the database answers) and version.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::storage::database;

/// Registers the health routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/_live", web::get().to(live))
        .route("/_health", web::get().to(health))
        .route("/_info", web::get().to(info));
}

/// The process is up and serving HTTP.
async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers within the configured timeout, 503 with the reason if not.
async fn health(state: web::Data<AppState>) -> HttpResponse {
    let probe = tokio::time::timeout(state.db_timeout, database::ping(state.storage.pool())).await;
    let reason = match probe {
        Ok(Ok(())) => return HttpResponse::Ok().json(json!({"status": "ok"})),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("the database did not answer within {:?}", state.db_timeout),
    };
    HttpResponse::ServiceUnavailable().json(json!({
        "status": "unavailable",
        "errorCode": "UNAVAILABLE",
        "errorMessage": reason,
    }))
}

/// The bare `{"version"}` object Formance returns.
async fn info() -> HttpResponse {
    HttpResponse::Ok().json(json!({"version": env!("CARGO_PKG_VERSION")}))
}
