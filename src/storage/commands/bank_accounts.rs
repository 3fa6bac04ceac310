//! Writes to bank accounts made through the API: create, record a forward
//! (metadata merges are `metadata::PatchMetadata`). Their links to accounts are written by ingestion (`ingest::IngestBatch`).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::storage::{StorageError, Tx, WriteCommand};

/// Inserts a bank account; `account_number` and `iban` come already sealed (the vault's
/// `{"$encrypted": …}` objects), never in clear.
#[derive(Debug, Clone)]
pub struct CreateBankAccount {
    /// Its id.
    pub id: Uuid,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// SWIFT/BIC, in clear.
    pub swift_bic_code: Option<String>,
    /// The sealed account number.
    pub account_number: Option<Value>,
    /// The sealed IBAN.
    pub iban: Option<Value>,
    /// String metadata (a JSON object), if any.
    pub metadata: Option<Value>,
}

const INSERT: &str = "INSERT INTO bank_accounts (id, created_at, name, country, swift_bic_code,
        account_number, iban, metadata)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

impl WriteCommand for CreateBankAccount {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(INSERT)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "creating a bank account";
        let stmt = tx
            .prepare_cached(INSERT)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        tx.execute(
            &stmt,
            &[
                &self.id,
                &self.created_at,
                &self.name,
                &self.country,
                &self.swift_bic_code,
                &self.account_number,
                &self.iban,
                &self.metadata,
            ],
        )
        .await
        .map_err(|e| StorageError::db(context, e))?;
        Ok(())
    }
}

/// Records that a bank account was forwarded to a connector (after the connector accepted it).
#[derive(Debug, Clone)]
pub struct SetBankAccountConnector {
    /// The bank account.
    pub id: Uuid,
    /// The connector it was forwarded to.
    pub connector_id: String,
}

const SET_CONNECTOR: &str =
    "UPDATE bank_accounts SET connector_id = $2, updated_at = now() WHERE id = $1";

impl WriteCommand for SetBankAccountConnector {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(SET_CONNECTOR)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "recording a bank account's forward";
        let stmt = tx
            .prepare_cached(SET_CONNECTOR)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let n = tx
            .execute(&stmt, &[&self.id, &self.connector_id])
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::NotFound(format!(
                "bank account {} not found",
                self.id
            )));
        }
        Ok(())
    }
}
