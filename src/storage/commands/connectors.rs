//! Writes to the `connectors` table.

use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::events;
use crate::events::{EventType, NewEvent, payloads};
use crate::redact::ConfigKeys;
use crate::storage::{StorageError, Tx, WriteCommand};

/// Stores a newly installed connector, marked `installing` until its install hook succeeded.
#[derive(Clone)]
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

// The config may hold secrets and no schema is at hand to tell which: only its keys are shown.
impl std::fmt::Debug for InsertConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InsertConnector")
            .field("id", &self.id)
            .field("reference", &self.reference)
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("config", &ConfigKeys(&self.config))
            .field("declared", &self.declared)
            .finish()
    }
}

const INSERT_CONNECTOR: &str =
    "INSERT INTO connectors (id, reference, provider, name, config, declared, lifecycle)
     VALUES ($1, $2, $3, $4, $5, $6, 'installing')";

/// A unique violation on the name is a conflict the client can act on.
fn name_conflict(name: &str, e: tokio_postgres::Error, context: &str) -> StorageError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        StorageError::Conflict(format!("a connector named {name:?} is already installed"))
    } else {
        StorageError::db(context, e)
    }
}

impl WriteCommand for InsertConnector {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(INSERT_CONNECTOR)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "inserting a connector";
        let stmt = tx
            .prepare_cached(INSERT_CONNECTOR)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        tx.execute(
            &stmt,
            &[
                &self.id,
                &self.reference,
                &self.provider,
                &self.name,
                &self.config,
                &self.declared,
            ],
        )
        .await
        .map_err(|e| name_conflict(&self.name, e, context))?;
        Ok(())
    }
}

/// Deletes a connector and everything it owns: its tasks, store, payments, accounts and
/// balances.
#[derive(Debug, Clone)]
pub struct DeleteConnector {
    /// Formance's connector id.
    pub id: String,
}

impl WriteCommand for DeleteConnector {
    type Output = bool;

    async fn apply(&self, tx: &Tx<'_>) -> Result<bool, StorageError> {
        delete_owned(tx, &self.id).await?;
        let n = tx
            .execute("DELETE FROM connectors WHERE id = $1", &[&self.id])
            .await
            .map_err(|e| StorageError::db("deleting a connector", e))?;
        Ok(n > 0)
    }
}

/// Everything a connector owns, in one statement. The hot tables have no foreign keys (see
/// migration V3), so this list is what keeps uninstall and reset complete: a table that gains
/// a `connector_id` column belongs here. Balances go with their accounts (that key remains).
const DELETE_OWNED: &str = "WITH
    adjustments AS (DELETE FROM payment_adjustments a USING payments p
                    WHERE a.payment_id = p.id AND p.connector_id = $1),
    payments AS (DELETE FROM payments WHERE connector_id = $1),
    accounts AS (DELETE FROM accounts WHERE connector_id = $1),
    bank_links AS (DELETE FROM bank_account_related_accounts WHERE connector_id = $1),
    store AS (DELETE FROM connector_kv WHERE connector_id = $1),
    initiations AS (DELETE FROM transfer_initiations WHERE connector_id = $1)
    DELETE FROM tasks WHERE connector_id = $1";

async fn delete_owned(tx: &Tx<'_>, connector_id: &str) -> Result<(), StorageError> {
    // Its payment events still in the outbox refer to the rows about to go.
    events::write_out_payment_changes(tx, connector_id).await?;
    tx.execute(DELETE_OWNED, &[&connector_id])
        .await
        .map_err(|e| StorageError::db("deleting a connector's data", e))?;
    Ok(())
}

pub use crate::domain::Lifecycle;

/// Changes a connector's lifecycle mark, enabled flag, config or name (each optional).
#[derive(Clone, Default)]
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

// As for `InsertConnector`: the config's keys only.
impl std::fmt::Debug for UpdateConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateConnector")
            .field("id", &self.id)
            .field("lifecycle", &self.lifecycle)
            .field("enabled", &self.enabled)
            .field("config", &self.config.as_ref().map(ConfigKeys))
            .field("name", &self.name)
            .finish()
    }
}

const UPDATE_CONNECTOR: &str = "UPDATE connectors SET lifecycle = COALESCE($2, lifecycle),
        enabled = COALESCE($3, enabled), config = COALESCE($4, config),
        name = COALESCE($5, name), updated_at = now()
     WHERE id = $1";

impl WriteCommand for UpdateConnector {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(UPDATE_CONNECTOR)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "updating a connector";
        let stmt = tx
            .prepare_cached(UPDATE_CONNECTOR)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(
                &stmt,
                &[
                    &self.id,
                    &self.lifecycle.map(Lifecycle::as_str),
                    &self.enabled,
                    &self.config,
                    &self.name,
                ],
            )
            .await
            .map_err(|e| name_conflict(self.name.as_deref().unwrap_or_default(), e, context))?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "connector {} not found",
                self.id
            )));
        }
        Ok(())
    }
}

/// Deletes everything a connector owns but the connector row itself (reset), and says so
/// with a `CONNECTOR_RESET` event. Its events already in the outbox stay: they were sent.
#[derive(Debug, Clone)]
pub struct WipeConnectorData {
    /// Formance's connector id.
    pub id: String,
}

impl WriteCommand for WipeConnectorData {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        delete_owned(tx, &self.id).await?;
        let now = chrono::Utc::now();
        let reset = payloads::ConnectorReset {
            created_at: now,
            connector_id: self.id.clone(),
        };
        events::append(
            tx,
            &[NewEvent::new(
                &self.id,
                EventType::ConnectorReset,
                now,
                &reset,
            )],
        )
        .await
    }
}
