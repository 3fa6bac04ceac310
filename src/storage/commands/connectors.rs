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
                "INSERT INTO connectors (id, reference, provider, name, config, declared)
                 VALUES ($1, $2, $3, $4, $5, $6)",
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
