//! Writes to the per-connector key-value store.

use crate::storage::{StorageError, Tx, WriteCommand};

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

const PUT_KV: &str = "INSERT INTO connector_kv (connector_id, key, value)
     SELECT id, $2, $3 FROM connectors WHERE id = $1
     ON CONFLICT (connector_id, key)
     DO UPDATE SET value = EXCLUDED.value, updated_at = now()";

impl WriteCommand for PutKv {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(PUT_KV)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "writing the connector store";
        let stmt = tx
            .prepare_cached(PUT_KV)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(&stmt, &[&self.connector_id, &self.key, &self.value])
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "connector {} not found",
                self.connector_id
            )));
        }
        Ok(())
    }
}
