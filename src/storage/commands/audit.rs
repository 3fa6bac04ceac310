//! Writes to the audit log (migration V6): one row per state-changing API call.

use chrono::{DateTime, Utc};

use crate::storage::{StorageError, Tx, WriteCommand};

/// One audited call. It holds names and ids only: never a token, a body or a config value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// When the call was answered.
    pub at: DateTime<Utc>,
    /// The static token's name, the JWT's `sub`, or `anonymous`.
    pub principal: String,
    /// `token`, `jwt` or `anonymous`.
    pub principal_kind: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The route template (not the concrete path).
    pub route: String,
    /// The `{provider}` path parameter, when the route has one.
    pub provider: Option<String>,
    /// The `{connectorID}` path parameter, when the route has one.
    pub connector_id: Option<String>,
    /// The `{taskID}` path parameter, when the route has one.
    pub task_id: Option<String>,
    /// The `{paymentID}` path parameter, when the route has one.
    pub payment_id: Option<String>,
    /// The answer's status code.
    pub status: u16,
    /// `ok`, `denied`, `rejected` or `failed`.
    pub outcome: &'static str,
    /// The request id the tracing middleware gave the request.
    pub request_id: Option<String>,
}

/// Stores one [`AuditRecord`].
#[derive(Debug, Clone)]
pub struct InsertAudit(pub AuditRecord);

const INSERT_AUDIT: &str = "INSERT INTO audit_log
     (at, principal, principal_kind, method, route, provider, connector_id, task_id, payment_id,
      status, outcome, request_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";

impl WriteCommand for InsertAudit {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(INSERT_AUDIT)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "writing the audit log";
        let stmt = tx
            .prepare_cached(INSERT_AUDIT)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let r = &self.0;
        let status = i16::try_from(r.status).unwrap_or(i16::MAX);
        tx.execute(
            &stmt,
            &[
                &r.at,
                &r.principal,
                &r.principal_kind,
                &r.method,
                &r.route,
                &r.provider,
                &r.connector_id,
                &r.task_id,
                &r.payment_id,
                &status,
                &r.outcome,
                &r.request_id,
            ],
        )
        .await
        .map_err(|e| StorageError::db(context, e))?;
        Ok(())
    }
}
