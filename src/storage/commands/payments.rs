//! Writes to payments made through the API (ingestion has its own commands).

use crate::storage::{StorageError, Tx, WriteCommand};

/// Merges string metadata into a payment's.
#[derive(Debug, Clone)]
pub struct PatchPaymentMetadata {
    /// The payment.
    pub id: String,
    /// The keys to set (a JSON object of strings).
    pub metadata: serde_json::Value,
}

const PATCH_METADATA: &str = "UPDATE payments
     SET metadata = COALESCE(metadata, '{}'::jsonb) || $2, updated_at = now()
     WHERE id = $1";

impl WriteCommand for PatchPaymentMetadata {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(PATCH_METADATA)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "updating payment metadata";
        let stmt = tx
            .prepare_cached(PATCH_METADATA)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(&stmt, &[&self.id, &self.metadata])
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "payment {} not found",
                self.id
            )));
        }
        Ok(())
    }
}
