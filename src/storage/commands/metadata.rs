//! Merging metadata set through the API into a stored row (Formance v1 merges: keys not given
//! stay). One command for every table whose rows carry client metadata. A bank account's
//! merge appends its `SAVED_BANK_ACCOUNT` in the same transaction when it changes something; a
//! payment's none (Formance v1 publishes nothing for a payment's metadata either).

use serde_json::Value;
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

/// Changes the row only when the merge changes its metadata (a patch with the values already
/// there is no change, so it has no event); the second column tells a missing row from that.
const PATCH_BANK_ACCOUNT: &str = "WITH found AS (
         SELECT id, COALESCE(metadata, '{}'::jsonb) AS before FROM bank_accounts WHERE id = $1
         FOR UPDATE
     ), changed AS (
         UPDATE bank_accounts b SET metadata = found.before || $2, updated_at = now()
         FROM found WHERE b.id = found.id AND found.before || $2 <> found.before
         RETURNING b.id
     )
     SELECT (SELECT count(*) FROM found), (SELECT count(*) FROM changed)";

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
        let context = "updating metadata";
        match &self.owner {
            MetadataOwner::Payment(id) => {
                let stmt = tx
                    .prepare_cached(PATCH_PAYMENT)
                    .await
                    .map_err(|e| StorageError::db(context, e))?;
                let n = tx
                    .execute(&stmt, &[id, &self.metadata])
                    .await
                    .map_err(|e| StorageError::db(context, e))?;
                if n == 0 {
                    return Err(StorageError::NotFound(format!("payment {id} not found")));
                }
            }
            MetadataOwner::BankAccount(id) => {
                let row = tx
                    .query_one(PATCH_BANK_ACCOUNT, &[id, &self.metadata])
                    .await
                    .map_err(|e| StorageError::db(context, e))?;
                let (found, changed): (i64, i64) = (row.get(0), row.get(1));
                if found == 0 {
                    return Err(StorageError::NotFound(format!(
                        "bank account {id} not found"
                    )));
                }
                if changed > 0 {
                    super::bank_accounts::saved(tx, *id).await?;
                }
            }
        }
        Ok(())
    }
}
