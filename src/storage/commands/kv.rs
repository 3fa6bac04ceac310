//! Writes to the per-connector key-value store.

use tokio_postgres::Transaction;

use crate::storage::{StorageError, WriteCommand};

/// Sets one key of a connector's store.
#[derive(Debug, Clone)]
pub struct PutKv {
    /// The connector owning the store.
    pub connector_id: String,
    /// The key.
    pub key: String,
    /// The value.
    pub value: serde_json::Value,
}

impl WriteCommand for PutKv {
    type Output = ();

    async fn apply(&self, tx: &Transaction<'_>) -> Result<(), StorageError> {
        let n = tx
            .execute(
                "INSERT INTO connector_kv (connector_id, key, value)
                 SELECT id, $2, $3 FROM connectors WHERE id = $1
                 ON CONFLICT (connector_id, key)
                 DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                &[&self.connector_id, &self.key, &self.value],
            )
            .await
            .map_err(|e| StorageError::db("writing the connector store", e))?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "connector {} not found",
                self.connector_id
            )));
        }
        Ok(())
    }
}
