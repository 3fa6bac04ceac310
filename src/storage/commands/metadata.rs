//! Merging metadata set through the API into a stored row (Formance v1 merges: keys not given
//! stay). One command for every table whose rows carry client metadata. A bank account's
//! merge appends its `SAVED_BANK_ACCOUNT` in the same transaction; a payment's none (Formance
//! v1 publishes nothing for a payment's metadata either).

use serde_json::Value;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::storage::{StorageError, Tx, WriteCommand};

/// The row whose metadata is merged.
#[derive(Debug, Clone)]
pub enum MetadataOwner {
    /// A payment, by id.
    Payment(String),
    /// A bank account, by id.
    BankAccount(Uuid),
}

/// Merges string metadata into a row's.
#[derive(Debug, Clone)]
pub struct PatchMetadata {
    /// The row.
    pub owner: MetadataOwner,
    /// The keys to set (a JSON object of strings).
    pub metadata: Value,
}

const PATCH_PAYMENT: &str = "UPDATE payments
     SET metadata = COALESCE(metadata, '{}'::jsonb) || $2, updated_at = now()
     WHERE id = $1";

const PATCH_BANK_ACCOUNT: &str = "UPDATE bank_accounts
     SET metadata = COALESCE(metadata, '{}'::jsonb) || $2, updated_at = now()
     WHERE id = $1";

impl WriteCommand for PatchMetadata {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        // A bank account's merge also reads it back for its event: more than one statement.
        match self.owner {
            MetadataOwner::Payment(_) => Some(PATCH_PAYMENT),
            MetadataOwner::BankAccount(_) => None,
        }
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let (sql, id, missing): (_, &(dyn ToSql + Sync), _) = match &self.owner {
            MetadataOwner::Payment(id) => (PATCH_PAYMENT, id, format!("payment {id} not found")),
            MetadataOwner::BankAccount(id) => (
                PATCH_BANK_ACCOUNT,
                id,
                format!("bank account {id} not found"),
            ),
        };
        let context = "updating metadata";
        let stmt = tx
            .prepare_cached(sql)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(&stmt, &[id, &self.metadata])
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::NotFound(missing));
        }
        if let MetadataOwner::BankAccount(id) = &self.owner {
            super::bank_accounts::saved(tx, *id).await?;
        }
        Ok(())
    }
}
