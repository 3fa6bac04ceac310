//! The audit log: every state-changing call (POST, PATCH, DELETE) is written as one structured
//! log line (target `tributary::audit`) and one `audit_log` row, with who made it (the
//! [`Principal`] the auth middleware left in the request's extensions), the route template,
//! the connector, task or payment ids of its path, its status and outcome, and the request id.
//!
//! Durability: the row goes through the storage actor (the single writer) and the response is
//! held until the write is committed or has failed, so a call answered while the database
//! works is in the table. If the write fails (the database is down: the storage actor gives
//! up on a connection after `database.timeout`, per batch queued ahead), the call's effect is
//! not undone and its answer is sent as it was: the row is then missing, and only the log line
//! (written before the row) and an ERROR line record the call.
//!
//! Calls refused for want of a valid token (401) have no principal: they are logged by the
//! auth middleware and not stored. Nothing from the request body, headers or settings is
//! recorded — ids and names only.

use actix_web::body::MessageBody;
use actix_web::dev::{Path, ResourceDef, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, web};
use chrono::Utc;

use super::AppState;
use super::auth::Principal;
use crate::storage::commands::audit::{AuditRecord, InsertAudit};

/// The log target of audit lines.
pub const TARGET: &str = "tributary::audit";

/// Whether a method changes state (and so is audited).
fn audited(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The outcome stored for a status.
fn outcome(status: u16) -> &'static str {
    match status {
        403 => "denied",
        400..=499 => "rejected",
        500.. => "failed",
        _ => "ok",
    }
}

/// The middleware function (`actix_web::middleware::from_fn(audit::record)`), wrapped outside
/// the auth middleware so that it sees the scope refusals (403) too.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    if !audited(req.method()) {
        return next.call(req).await;
    }
    let storage = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.storage.clone());
    let response = next.call(req).await?;
    let request = response.request();
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        // No principal: refused before authentication succeeded (401), already logged.
        return Ok(response);
    };
    let route = request.match_pattern();
    let mut params: Vec<(String, String)> = request
        .match_info()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    // A request refused before routing (403) has no path parameters yet: match its route
    // template against the path here.
    if params.is_empty()
        && let Some(route) = &route
    {
        let mut matched = Path::new(request.path().to_string());
        if ResourceDef::new(route.as_str()).capture_match_info(&mut matched) {
            params = matched
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        }
    }
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let status = response.status().as_u16();
    let record = AuditRecord {
        at: Utc::now(),
        principal: principal.name,
        principal_kind: principal.kind.name(),
        method: request.method().to_string(),
        route: route.unwrap_or_else(|| "(no route)".to_string()),
        provider: param("provider"),
        connector_id: param("connectorID"),
        task_id: param("taskID"),
        payment_id: param("paymentID"),
        status,
        outcome: outcome(status),
        request_id: request
            .extensions()
            .get::<tracing_actix_web::RequestId>()
            .map(|id| id.to_string()),
    };
    tracing::info!(
        target: TARGET,
        principal = %record.principal,
        principal_kind = record.principal_kind,
        method = %record.method,
        route = %record.route,
        provider = record.provider.as_deref(),
        connector_id = record.connector_id.as_deref(),
        task_id = record.task_id.as_deref(),
        payment_id = record.payment_id.as_deref(),
        status,
        outcome = record.outcome,
        request_id = record.request_id.as_deref(),
        "audit"
    );
    if let Some(storage) = storage
        && let Err(e) = storage.write(InsertAudit(record)).await
    {
        tracing::error!(target: TARGET, error = %e, "audit row not stored");
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_by_status() {
        assert_eq!(outcome(204), "ok");
        assert_eq!(outcome(201), "ok");
        assert_eq!(outcome(403), "denied");
        assert_eq!(outcome(404), "rejected");
        assert_eq!(outcome(503), "failed");
        assert!(audited(&Method::DELETE) && audited(&Method::PATCH) && audited(&Method::POST));
        assert!(!audited(&Method::GET));
    }
}
