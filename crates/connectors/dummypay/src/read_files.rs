//! The periodic `read-files` task: lists the directory and schedules an `ingest` task for each
//! file whose signature differs from the one the store recorded. An unchanged file is never
//! read again; a file modified within the last second is still being written and waits for the
//! next poll; a missing directory is a retryable error that heals when it appears.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use futures::future::try_join_all;
use serde_json::Value;

use super::config::DummyPayConfig;
use super::connector::ingest_descriptor;
use super::files::{FileRecord, RECORD_PREFIX, Signature, is_plain_name};
use tributary_sdk::{Restart, Schedule, ScheduleOptions, Task, TaskContext, TaskError};

/// A file modified more recently than this is taken to be still being written.
const QUIET: Duration = Duration::from_secs(1);
/// How many ingest tasks are scheduled at once.
const SCHEDULE_CHUNK: usize = 1000;

/// The task.
pub struct ReadFiles {
    /// The connector's config (from its latest version).
    pub config: DummyPayConfig,
}

/// A candidate file from the listing.
struct Listed {
    name: String,
    signature: Signature,
    quiet: bool,
}

/// Lists the directory (blocking: run off the actor thread).
fn list(directory: &Path, prefix: &str) -> Result<Vec<Listed>, TaskError> {
    let entries = std::fs::read_dir(directory).map_err(|e| {
        TaskError::retryable(format!(
            "cannot list directory {}: {e}",
            directory.display()
        ))
    })?;
    let root: PathBuf = directory
        .canonicalize()
        .map_err(|e| TaskError::retryable(format!("{}: {e}", directory.display())))?;
    let now = SystemTime::now();
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            tracing::warn!(file = ?entry.file_name(), "skipping a file whose name is not UTF-8");
            continue;
        };
        if name.starts_with('.') || !name.starts_with(prefix) || !is_plain_name(&name) {
            continue;
        }
        // Follows symlinks, but only to files inside the directory. A plain file costs one
        // stat: polls list every file each time, so resolving each path would dominate.
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        let meta = if file_type.is_symlink() {
            let Ok(real) = entry.path().canonicalize() else {
                continue;
            };
            if !real.starts_with(&root) {
                tracing::warn!(file = %name, "skipping a symlink that leaves the directory");
                continue;
            }
            // Money-out instructions are written, never read as payments.
            if real.starts_with(root.join(crate::money_out::OUTBOX)) {
                tracing::warn!(file = %name, "skipping a symlink into the outbox");
                continue;
            }
            std::fs::metadata(&real)
        } else {
            entry.metadata()
        };
        let Ok(meta) = meta else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        // A modification time in the future (a copy from a host whose clock is ahead) cannot
        // tell whether the file is still changing: take it as settled.
        let quiet = match meta.modified().map(|m| now.duration_since(m)) {
            Ok(Ok(age)) => age >= QUIET,
            Ok(Err(_)) | Err(_) => true,
        };
        files.push(Listed {
            name,
            signature: Signature::of(&meta),
            quiet,
        });
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(files)
}

#[async_trait]
impl Task for ReadFiles {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let directory = self.config.directory.clone();
        let prefix = self.config.prefix_file_to_ingest.clone();
        let listed = tokio::task::spawn_blocking(move || list(&directory, &prefix))
            .await
            .map_err(|e| TaskError::retryable(format!("listing the directory: {e}")))??;
        let records: HashMap<String, FileRecord> = ctx
            .kv_list(RECORD_PREFIX)
            .await?
            .into_iter()
            .filter_map(|(key, value): (String, Value)| {
                let name = key.strip_prefix(RECORD_PREFIX)?.to_string();
                Some((name, serde_json::from_value(value).ok()?))
            })
            .collect();
        let changed: Vec<&Listed> = listed
            .iter()
            .filter(|f| records.get(&f.name).map(|r| r.signature) != Some(f.signature))
            .collect();
        let waiting = changed.iter().filter(|f| !f.quiet).count();
        let due: Vec<&&Listed> = changed.iter().filter(|f| f.quiet).collect();
        if !due.is_empty() || waiting > 0 {
            tracing::info!(
                files = listed.len(),
                to_ingest = due.len(),
                still_changing = waiting,
                "directory polled"
            );
        }
        let options = ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive);
        let scheduler = ctx.scheduler();
        for chunk in due.chunks(SCHEDULE_CHUNK) {
            try_join_all(
                chunk
                    .iter()
                    .map(|f| scheduler.schedule(&ingest_descriptor(&f.name), options.clone())),
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bank account files live in a subdirectory, which the listing never enters: they are
    /// never read as payments.
    #[test]
    fn the_listing_never_offers_bank_account_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("payments.json"), "{}").unwrap();
        let content = crate::bank_accounts::BankAccountFile {
            id: uuid::Uuid::from_u128(1),
            created_at: chrono::Utc::now(),
            name: "n".into(),
            country: "FR".into(),
            account_number: Some("12345678".into()),
            iban: None,
            swift_bic_code: None,
            metadata: Default::default(),
        };
        crate::bank_accounts::write_file(dir.path(), &content).unwrap();
        let names: Vec<String> = list(dir.path(), "")
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        assert_eq!(names, ["payments.json"]);
    }

    /// The outbox is a subdirectory: neither its files nor a symlink into it are listed.
    #[test]
    fn files_under_the_outbox_are_never_listed_for_ingestion() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = dir.path().join(crate::money_out::OUTBOX);
        std::fs::create_dir_all(&outbox).expect("outbox");
        std::fs::write(outbox.join("t1.json"), "{}").expect("instruction");
        std::fs::write(dir.path().join("p.json"), "{}").expect("payment file");
        std::os::unix::fs::symlink(outbox.join("t1.json"), dir.path().join("link.json"))
            .expect("symlink");
        let names: Vec<String> = list(dir.path(), "")
            .expect("list")
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, vec!["p.json".to_string()]);
    }
}
