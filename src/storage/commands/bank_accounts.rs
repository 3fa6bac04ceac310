//! Writes to bank accounts made through the API: create, record a forward
//! (metadata merges are `metadata::PatchMetadata`). Their links to accounts are written by
//! ingestion (`ingest::IngestBatch`).
//!
//! A creation appends the bank account's `SAVED_BANK_ACCOUNT` (numbers masked) in the same
//! transaction, in the sequence of no connector (`snapshots::NO_CONNECTOR`); so do a metadata
//! merge and a related account linked by an ingest (the forward's event).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::events::append;
use super::snapshots::saved_bank_account;
use crate::storage::{StorageError, Tx, WriteCommand};

/// Appends the bank account's `SAVED_BANK_ACCOUNT` as it is now.
pub(crate) async fn saved(tx: &Tx<'_>, id: Uuid) -> Result<(), StorageError> {
    let event = saved_bank_account(tx, id).await?;
    append(tx, event.as_slice()).await
}

/// Inserts a bank account; `account_number` and `iban` come already sealed (the vault's
/// `{"$encrypted": …}` objects), never in clear, with their masks (as the API shows them) for
/// its events.
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
    /// The account number masked (`bank_accounts::obfuscate_account_number`).
    pub account_number_masked: Option<String>,
    /// The IBAN masked (`bank_accounts::obfuscate_iban`).
    pub iban_masked: Option<String>,
    /// String metadata (a JSON object), if any.
    pub metadata: Option<Value>,
}

const INSERT: &str = "INSERT INTO bank_accounts (id, created_at, name, country, swift_bic_code,
        account_number, iban, metadata, account_number_masked, iban_masked)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

impl WriteCommand for CreateBankAccount {
    type Output = ();

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
                &self.account_number_masked,
                &self.iban_masked,
            ],
        )
        .await
        .map_err(|e| StorageError::db(context, e))?;
        saved(tx, self.id).await
    }
}

/// Records that a bank account was forwarded to a connector (after the connector accepted it).
/// No event: the forward's event is the one of the related account the connector links (its
/// ingest), as in Formance; the connector recorded here is not part of the payload.
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
