//! Reads of the `connectors` table.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::client;
use crate::redact::ConfigKeys;
use crate::storage::commands::connectors::Lifecycle;
use crate::storage::{Pool, StorageError};

/// A stored connector.
#[derive(Clone)]
pub struct ConnectorRow {
    /// Formance's connector id.
    pub id: String,
    /// The UUID reference inside the id.
    pub reference: Uuid,
    /// The provider, upper case.
    pub provider: String,
    /// The unique name.
    pub name: String,
    /// The config, defaults applied.
    pub config: Value,
    /// False while paused.
    pub enabled: bool,
    /// The lifecycle mark.
    pub lifecycle: Lifecycle,
    /// Declared in the settings file.
    pub declared: bool,
    /// When it was installed.
    pub created_at: DateTime<Utc>,
}

// The config may hold secrets and no schema is at hand to tell which: only its keys are shown.
impl std::fmt::Debug for ConnectorRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectorRow")
            .field("id", &self.id)
            .field("reference", &self.reference)
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("config", &ConfigKeys(&self.config))
            .field("enabled", &self.enabled)
            .field("lifecycle", &self.lifecycle)
            .field("declared", &self.declared)
            .field("created_at", &self.created_at)
            .finish()
    }
}

const COLUMNS: &str =
    "id, reference, provider, name, config, enabled, lifecycle, declared, created_at";

fn from_row(row: &Row) -> ConnectorRow {
    let lifecycle: String = row.get(6);
    ConnectorRow {
        id: row.get(0),
        reference: row.get(1),
        provider: row.get(2),
        name: row.get(3),
        config: row.get(4),
        enabled: row.get(5),
        lifecycle: Lifecycle::parse(&lifecycle).unwrap_or(Lifecycle::Installed),
        declared: row.get(7),
        created_at: row.get(8),
    }
}

/// Every stored connector, oldest first.
pub async fn all(pool: &Pool) -> Result<Vec<ConnectorRow>, StorageError> {
    let client = client(pool, "listing connectors").await?;
    let rows = super::query(
        &client,
        &format!("SELECT {COLUMNS} FROM connectors ORDER BY created_at, id"),
        &[],
        "listing connectors",
    )
    .await?;
    Ok(rows.iter().map(from_row).collect())
}

/// One connector by id.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<ConnectorRow>, StorageError> {
    let client = client(pool, "reading a connector").await?;
    let row = super::query_opt(
        &client,
        &format!("SELECT {COLUMNS} FROM connectors WHERE id = $1"),
        &[&id],
        "reading a connector",
    )
    .await?;
    Ok(row.as_ref().map(from_row))
}
