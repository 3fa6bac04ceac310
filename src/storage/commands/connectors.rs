//! Writes to the `connectors` table.

use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::storage::{StorageError, WriteCommand};

/// Stores a newly installed connector.
#[derive(Debug, Clone)]
pub struct InsertConnector {
    /// Formance's connector id (base64url of provider + reference).
    pub id: String,
    /// The connector's UUID reference.
    pub reference: Uuid,
    /// The provider, upper case (e.g. `DUMMY-PAY`).
    pub provider: String,
    /// The unique name.
    pub name: String,
    /// The config with defaults applied.
    pub config: serde_json::Value,
    /// Declared in the settings file rather than installed through the API.
    pub declared: bool,
}

impl WriteCommand for InsertConnector {
    type Output = ();

    async fn apply(&self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let result = tx
            .execute(
                "INSERT INTO connectors (id, reference, provider, name, config, declared, lifecycle)
                 VALUES ($1, $2, $3, $4, $5, $6, 'installing')",
                &[
                    &self.id,
                    &self.reference,
                    &self.provider,
                    &self.name,
                    &self.config,
                    &self.declared,
                ],
            )
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                Err(StorageError::Conflict(format!(
                    "a connector named {:?} is already installed",
                    self.name
                )))
            }
            Err(e) => Err(StorageError::db("inserting a connector", e)),
        }
    }
}

/// Deletes a connector and, by cascade, its tasks, store, payments, accounts and balances.
#[derive(Debug, Clone)]
pub struct DeleteConnector {
    /// Formance's connector id.
    pub id: String,
}

impl WriteCommand for DeleteConnector {
    type Output = bool;

    async fn apply(&self, tx: &Transaction<'_>) -> Result<bool, StorageError> {
        let n = tx
            .execute("DELETE FROM connectors WHERE id = $1", &[&self.id])
            .await
            .map_err(|e| StorageError::db("deleting a connector", e))?;
        Ok(n > 0)
    }
}

/// The lifecycle marks of a connector row, written durably before each operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// Being installed: rolled back at boot if the process died meanwhile.
    Installing,
    /// Installed and serving.
    Installed,
    /// Being uninstalled: finished at boot.
    Uninstalling,
    /// Being reset: finished at boot.
    Resetting,
}

impl Lifecycle {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Installing => "installing",
            Lifecycle::Installed => "installed",
            Lifecycle::Uninstalling => "uninstalling",
            Lifecycle::Resetting => "resetting",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "installing" => Lifecycle::Installing,
            "installed" => Lifecycle::Installed,
            "uninstalling" => Lifecycle::Uninstalling,
            "resetting" => Lifecycle::Resetting,
            _ => return None,
        })
    }
}

/// Changes a connector's lifecycle mark, enabled flag or config (each optional).
#[derive(Debug, Clone, Default)]
pub struct UpdateConnector {
    /// Formance's connector id.
    pub id: String,
    /// The new lifecycle mark.
    pub lifecycle: Option<Lifecycle>,
    /// Paused (false) or running (true).
    pub enabled: Option<bool>,
    /// The new config (defaults applied).
    pub config: Option<serde_json::Value>,
    /// The new name (unique).
    pub name: Option<String>,
}

impl WriteCommand for UpdateConnector {
    type Output = ();

    async fn apply(&self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let n = tx
            .execute(
                "UPDATE connectors SET lifecycle = COALESCE($2, lifecycle),
                        enabled = COALESCE($3, enabled), config = COALESCE($4, config),
                        name = COALESCE($5, name), updated_at = now()
                 WHERE id = $1",
                &[
                    &self.id,
                    &self.lifecycle.map(Lifecycle::as_str),
                    &self.enabled,
                    &self.config,
                    &self.name,
                ],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == tokio_postgres::error::SqlState::UNIQUE_VIOLATION => {
                    StorageError::Conflict(format!(
                        "a connector named {:?} is already installed",
                        self.name.as_deref().unwrap_or_default()
                    ))
                }
                _ => StorageError::db("updating a connector", e),
            })?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "connector {} not found",
                self.id
            )));
        }
        Ok(())
    }
}

/// Deletes everything a connector owns but the connector row itself (reset).
#[derive(Debug, Clone)]
pub struct WipeConnectorData {
    /// Formance's connector id.
    pub id: String,
}

impl WriteCommand for WipeConnectorData {
    type Output = ();

    async fn apply(&self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        for table in ["tasks", "connector_kv", "payments", "accounts"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE connector_id = $1"),
                &[&self.id],
            )
            .await
            .map_err(|e| StorageError::db(format!("wiping {table}"), e))?;
        }
        Ok(())
    }
}
