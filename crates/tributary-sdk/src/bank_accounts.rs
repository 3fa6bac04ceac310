//! The external-bank-account capability: a connector that can register a bank account with
//! its provider (Formance's `CreateExternalBankAccount`) implements [`ExternalBankAccounts`]
//! and returns it from [`crate::Connector::bank_accounts`]. The accounts it creates for a bank
//! account are linked to it by a task, through [`crate::ingest::Batch::bank_account_links`],
//! in the same transaction as the accounts themselves.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{ConnectorContext, TaskError};

/// A bank account as the runtime hands it to a connector: account number and IBAN in clear
/// (the connector must send them to its provider), so its `Debug` masks them and a connector
/// must not log, store in task descriptors, or ingest them.
#[derive(Clone, PartialEq, Eq)]
pub struct BankAccount {
    /// The bank account's id in the runtime (what a link names).
    pub id: Uuid,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its name.
    pub name: String,
    /// The domestic account number, if given.
    pub account_number: Option<String>,
    /// The IBAN, if given.
    pub iban: Option<String>,
    /// The SWIFT/BIC code, if given.
    pub swift_bic_code: Option<String>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "***");
        f.debug_struct("BankAccount")
            .field("id", &self.id)
            .field("created_at", &self.created_at)
            .field("name", &self.name)
            .field("account_number", &hidden(&self.account_number))
            .field("iban", &hidden(&self.iban))
            .field("swift_bic_code", &self.swift_bic_code)
            .field("country", &self.country)
            .field("metadata", &self.metadata)
            .finish()
    }
}

/// Registering bank accounts with the provider. Called by the runtime when a bank account is
/// created with a `connectorID` or forwarded to the connector; an error fails that call.
#[async_trait]
pub trait ExternalBankAccounts: Send + Sync {
    /// Registers `account` with the provider. To create and link the provider-side account,
    /// schedule a task (e.g. RUN_NOW_SYNC, so the link exists when this returns) whose ingest
    /// [`crate::ingest::Batch`] carries the account and a
    /// [`crate::ingest::BankAccountLink`] to it; give the task the bank account's id only,
    /// never its numbers (descriptors are stored in clear).
    async fn create_external_bank_account(
        &self,
        ctx: &ConnectorContext,
        account: &BankAccount,
    ) -> Result<(), TaskError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_numbers() {
        let account = BankAccount {
            id: Uuid::nil(),
            created_at: Utc::now(),
            name: "n".into(),
            account_number: Some("12345678".into()),
            iban: Some("FR7630006000011234567890189".into()),
            swift_bic_code: None,
            country: "FR".into(),
            metadata: BTreeMap::new(),
        };
        let text = format!("{account:?}");
        assert!(
            !text.contains("12345678") && !text.contains("FR76"),
            "{text}"
        );
    }
}
