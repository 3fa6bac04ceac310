//! DUMMY-PAY's external bank accounts: forwarding a bank account writes it as
//! `<directory>/bank-accounts/<id>.json` (the "provider" receives it), then a RUN_NOW_SYNC
//! task ingests an EXTERNAL account (reference = the bank account's id) linked to the bank
//! account, in one transaction. The file is written to a temporary name and hard-linked into
//! place, which never replaces an existing file: the same bank account forwarded again (a retry)
//! finds its own file, identical, and goes on; a different file under that name is an error.
//!
//! `bank-accounts/` is a subdirectory: the directory listing (`read-files`) reads only regular
//! files of the directory itself, so nothing under it is ever read as payments.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::config::DummyPayConfig;
use super::connector::DummyPay;
use tributary_sdk::ingest::{AccountData, AccountType, BankAccountLink, Batch};
use tributary_sdk::{
    BankAccount, ConnectorContext, ExternalBankAccounts, Restart, Schedule, ScheduleOptions, Task,
    TaskContext, TaskError,
};

/// The subdirectory bank accounts are written to.
pub const BANK_ACCOUNTS_DIR: &str = "bank-accounts";

/// The descriptor `key` of the task that creates the EXTERNAL account.
pub const TASK_KEY: &str = "create-external-bank-account";

/// A bank account file's content: what the "provider" receives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BankAccountFile {
    /// The bank account's id.
    pub id: Uuid,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// The account number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_number: Option<String>,
    /// The IBAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iban: Option<String>,
    /// SWIFT/BIC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub swift_bic_code: Option<String>,
    /// String metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

impl From<&BankAccount> for BankAccountFile {
    fn from(a: &BankAccount) -> Self {
        Self {
            id: a.id,
            created_at: a.created_at,
            name: a.name.clone(),
            country: a.country.clone(),
            account_number: a.account_number.clone(),
            iban: a.iban.clone(),
            swift_bic_code: a.swift_bic_code.clone(),
            metadata: a.metadata.clone(),
        }
    }
}

/// Why a bank account file cannot be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BankFileError {
    /// An I/O error on the path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// `bank-accounts` leads outside the connector's directory (a symlink).
    #[error("{0} resolves outside the connector's directory")]
    Outside(String),
    /// Another file already holds this bank account's name.
    #[error("{0} exists with different content: not overwritten")]
    Different(String),
    /// The file is not a bank account file.
    #[error("{path}: not a bank account file: {problem}")]
    Malformed {
        /// The path.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BankFileError + '_ {
    move |source| BankFileError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `<directory>/bank-accounts`, created if missing, checked to stay inside `directory`.
fn bank_dir(directory: &Path) -> Result<PathBuf, BankFileError> {
    let dir = directory.join(BANK_ACCOUNTS_DIR);
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let root = directory.canonicalize().map_err(io(directory))?;
    let real = dir.canonicalize().map_err(io(&dir))?;
    if real.parent() != Some(root.as_path()) {
        return Err(BankFileError::Outside(dir.display().to_string()));
    }
    Ok(real)
}

/// The path of a bank account's file.
pub fn file_path(directory: &Path, id: Uuid) -> PathBuf {
    directory.join(BANK_ACCOUNTS_DIR).join(format!("{id}.json"))
}

/// Writes `content` as the bank account's file, atomically and never over another file: the
/// bytes go to a temporary file (mode 0600: it holds the numbers), which is hard-linked to the
/// final name (fails if that name exists) and removed. An existing file with the same content
/// is success (a retry); with other content, [`BankFileError::Different`].
pub fn write_file(directory: &Path, content: &BankAccountFile) -> Result<PathBuf, BankFileError> {
    let dir = bank_dir(directory)?;
    let path = dir.join(format!("{}.json", content.id));
    let bytes = serde_json::to_vec_pretty(content).map_err(|e| BankFileError::Malformed {
        path: path.display().to_string(),
        problem: e.to_string(),
    })?;
    let tmp = dir.join(format!(".{}.json.{}.tmp", content.id, Uuid::new_v4()));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            // The new name is durable once the directory is.
            if let Ok(d) = std::fs::File::open(&dir) {
                let _ = d.sync_all();
            }
            Ok(path)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            if read_file(&path)? == *content {
                Ok(path)
            } else {
                Err(BankFileError::Different(path.display().to_string()))
            }
        }
        Err(e) => Err(io(&tmp)(e)),
    }
}

/// Reads a bank account's file.
pub fn read_file(path: &Path) -> Result<BankAccountFile, BankFileError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    serde_json::from_slice(&bytes).map_err(|e| BankFileError::Malformed {
        path: path.display().to_string(),
        problem: e.to_string(),
    })
}

/// The descriptor of the task creating the EXTERNAL account: the bank account's id only (a
/// descriptor is stored in clear).
pub fn task_descriptor(bank_account_id: Uuid) -> Value {
    json!({
        "name": format!("Create external account for bank account {bank_account_id}"),
        "key": TASK_KEY,
        "bankAccountId": bank_account_id.to_string(),
    })
}

#[async_trait]
impl ExternalBankAccounts for DummyPay {
    async fn create_external_bank_account(
        &self,
        ctx: &ConnectorContext,
        account: &BankAccount,
    ) -> Result<(), TaskError> {
        let directory = self.config().directory.clone();
        let content = BankAccountFile::from(account);
        let path = tokio::task::spawn_blocking(move || write_file(&directory, &content))
            .await
            .map_err(|e| TaskError::retryable(format!("writing the bank account file: {e}")))?
            .map_err(|e| match e {
                BankFileError::Io { .. } => TaskError::retryable(e.to_string()),
                other => TaskError::non_retryable(other.to_string()),
            })?;
        tracing::info!(bank_account_id = %account.id, file = %path.display(),
            "bank account written");
        ctx.scheduler()
            .schedule(
                &task_descriptor(account.id),
                ScheduleOptions::new(Schedule::RunNowSync, Restart::IfNotActive),
            )
            .await?;
        Ok(())
    }
}

/// The task: ingests the EXTERNAL account of a bank account written before, with its link.
pub struct CreateExternalAccount {
    /// The connector's config.
    pub config: DummyPayConfig,
    /// The bank account.
    pub bank_account_id: Uuid,
}

/// The EXTERNAL account and link for a bank account file.
pub fn external_account(file: &BankAccountFile) -> Batch {
    let reference = file.id.to_string();
    Batch {
        accounts: vec![AccountData {
            reference: reference.clone(),
            created_at: file.created_at,
            default_asset: None,
            account_name: Some(file.name.clone()),
            account_type: AccountType::External,
            // Never the numbers: the raw object is shown by GET /accounts.
            raw: Some(json!({"bankAccountId": reference, "country": file.country}).to_string()),
            metadata: BTreeMap::new(),
        }],
        bank_account_links: vec![BankAccountLink {
            bank_account_id: file.id,
            account_reference: reference,
        }],
        ..Batch::default()
    }
}

#[async_trait]
impl Task for CreateExternalAccount {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let path = file_path(&self.config.directory, self.bank_account_id);
        let file = tokio::task::spawn_blocking(move || read_file(&path))
            .await
            .map_err(|e| TaskError::retryable(format!("reading the bank account file: {e}")))?
            .map_err(|e| TaskError::non_retryable(e.to_string()))?;
        if file.id != self.bank_account_id {
            return Err(TaskError::non_retryable(format!(
                "bank account file of {} holds bank account {}",
                self.bank_account_id, file.id
            )));
        }
        ctx.ingest_final(external_account(&file), None::<&()>)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(name: &str) -> BankAccountFile {
        BankAccountFile {
            id: Uuid::from_u128(7),
            created_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            name: name.into(),
            country: "FR".into(),
            account_number: None,
            iban: Some("FR7630006000011234567890189".into()),
            swift_bic_code: None,
            metadata: BTreeMap::new(),
        }
    }

    #[test]
    fn a_file_is_written_once_and_never_replaced_by_another() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = write_file(dir.path(), &content("a")).unwrap();
        assert_eq!(read_file(&path).unwrap(), content("a"));
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // A retry with the same content succeeds; another content is refused, the file kept.
        assert_eq!(write_file(dir.path(), &content("a")).unwrap(), path);
        assert!(matches!(
            write_file(dir.path(), &content("b")),
            Err(BankFileError::Different(_))
        ));
        assert_eq!(read_file(&path).unwrap(), content("a"));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join(BANK_ACCOUNTS_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn a_bank_accounts_symlink_leaving_the_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join(BANK_ACCOUNTS_DIR)).unwrap();
        assert!(matches!(
            write_file(dir.path(), &content("a")),
            Err(BankFileError::Outside(_))
        ));
    }

    #[test]
    fn the_external_account_carries_no_number() {
        let batch = external_account(&content("a"));
        assert_eq!(batch.accounts[0].account_type, AccountType::External);
        assert_eq!(
            batch.bank_account_links[0].bank_account_id,
            Uuid::from_u128(7)
        );
        let raw = batch.accounts[0].raw.clone().unwrap();
        assert!(!raw.contains("FR76"), "{raw}");
    }
}
