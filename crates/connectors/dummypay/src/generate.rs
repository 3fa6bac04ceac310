//! The `generate-files` task: writes the demo files that `numberOfAccountsPreGenerated` and
//! `numberOfPaymentsPreGenerated` ask for, named `<prefixFileToIngest>dummypay-generated-…`
//! so that they are ingested like any other file, and records each in the connector's store,
//! because the connector only ever deletes files that it generated itself.
//!
//! A crash of the process at any point must leave every file the connector created recorded,
//! and the connector must never claim a file of the user's. So each file goes through three
//! steps, each recorded in its store entry `generated:<name>` before the next begins:
//!
//! 1. the entry is recorded with `tmp`: a random hidden name, chosen before anything exists;
//! 2. `tmp` is created (never over an existing entry) and written, and its signature (inode,
//!    size, modification time) is added to the entry;
//! 3. `tmp` is hard-linked to `<name>` — `link` fails when `<name>` exists, so a user's file
//!    is never overwritten — and then removed.
//!
//! Wherever a crash interrupts this, the store names every file of ours: `tmp` (its random
//! name was recorded before it existed), and `<name>` while it carries the recorded signature
//! (a link keeps inode, size and modification time, and `<name>` is linked only once the
//! signature is recorded). Uninstall removes exactly those. A user's file under a generated
//! name is another inode and is kept; so is a generated file that the user has since changed.
//! A run after a crash resumes each file from its entry: an unsigned `tmp` is written again, a
//! signed one is linked. Hidden files are never ingested, so `tmp` is never read.

use std::collections::HashMap;
use std::io::{ErrorKind, Write};
use std::path::Path;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::config::DummyPayConfig;
use super::files::{Signature, is_plain_name};
use tributary_sdk::ingest::Batch;
use tributary_sdk::{Task, TaskContext, TaskError};

/// The store key prefix of generated files.
pub const GENERATED_PREFIX: &str = "generated:";

/// How many files go through each step together (one store transaction per step).
const CHUNK: usize = 1000;

/// What the store keeps about one generated file (key `generated:<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Generated {
    /// The hidden name the file is written under before it is linked to its own name.
    pub tmp: String,
    /// The written file's signature; `<name>` is the connector's only while it carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// The generated files' entries of a store listing. An entry that does not parse is skipped
/// (with a warning): a file that cannot be told apart from a user's is left alone.
pub fn entries(listing: Vec<(String, Value)>) -> HashMap<String, Generated> {
    listing
        .into_iter()
        .filter_map(|(key, value)| {
            let name = key.strip_prefix(GENERATED_PREFIX)?.to_string();
            match serde_json::from_value(value) {
                Ok(entry) => Some((name, entry)),
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "unreadable generated-file entry: the file is left alone");
                    None
                }
            }
        })
        .collect()
}

/// Whether `name` is the file the connector wrote with `signature` (not a symlink, not a
/// user's file put in its place, not a generated file changed since).
fn is_ours(directory: &Path, name: &str, signature: Signature) -> bool {
    std::fs::symlink_metadata(directory.join(name))
        .is_ok_and(|m| m.is_file() && Signature::of(&m) == signature)
}

/// Removes `path`; one that is already gone is fine.
fn remove_if_present(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Step 2: creates `tmp` holding `text` and returns its signature (blocking). A `tmp` left by
/// an interrupted run is ours (its name was recorded before it existed) and is replaced.
fn write_tmp(directory: &Path, tmp: &str, text: &str) -> std::io::Result<Signature> {
    let path = directory.join(tmp);
    remove_if_present(&path)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    file.write_all(text.as_bytes())?;
    Ok(Signature::of(&file.metadata()?))
}

/// Step 3: links `tmp` to `name` unless `name` exists, then removes `tmp` (blocking).
/// Returns whether `name` is the connector's file.
fn publish(directory: &Path, name: &str, entry: &Generated) -> std::io::Result<bool> {
    let Some(signature) = entry.signature else {
        return Ok(false);
    };
    let tmp = directory.join(&entry.tmp);
    if std::fs::symlink_metadata(&tmp).is_err() {
        // Published (or removed) by an earlier run.
        return Ok(is_ours(directory, name, signature));
    }
    match std::fs::hard_link(&tmp, directory.join(name)) {
        Ok(()) => {}
        // Linked by a run that crashed before removing `tmp`, or a file of the user's.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let ours = is_ours(directory, name, signature);
    remove_if_present(&tmp)?;
    Ok(ours)
}

/// Removes what a generated file's entry names as the connector's: its `tmp`, and the file
/// itself if it still carries the recorded signature (blocking; used at uninstall).
pub fn remove(directory: &Path, name: &str, entry: &Generated) -> std::io::Result<()> {
    if is_plain_name(&entry.tmp) {
        remove_if_present(&directory.join(&entry.tmp))?;
    }
    if let Some(signature) = entry.signature
        && is_plain_name(name)
        && is_ours(directory, name, signature)
    {
        remove_if_present(&directory.join(name))?;
    }
    Ok(())
}

/// The task.
pub struct GenerateFiles {
    /// The connector's config.
    pub config: DummyPayConfig,
}

impl GenerateFiles {
    /// Every file to generate: its name and its contents.
    fn files(&self, now: &str) -> Vec<(String, String)> {
        let prefix = &self.config.prefix_file_to_ingest;
        let accounts = (0..self.config.accounts_pre_generated).map(|i| {
            let body = json!({"kind": "account", "account": {
                "reference": format!("generated-account-{i}"),
                "createdAt": now,
                "defaultAsset": "EUR/2",
                "accountName": format!("Generated account {i}"),
                "type": "INTERNAL",
            }});
            (format!("{prefix}dummypay-generated-account-{i}.json"), body)
        });
        let payments = (0..self.config.payments_pre_generated).map(|i| {
            let body = json!({"kind": "payment", "payment": {
                "reference": format!("generated-payment-{i}"),
                "createdAt": now,
                "amount": 100 + i,
                "asset": "EUR/2",
                "type": "PAY-IN",
                "status": "SUCCEEDED",
                "scheme": "visa",
            }});
            (format!("{prefix}dummypay-generated-payment-{i}.json"), body)
        });
        accounts
            .chain(payments)
            .map(|(name, body)| (name, format!("{body}\n")))
            .collect()
    }
}

/// Records `entries` in the store in one transaction.
async fn record(ctx: &TaskContext, entries: Vec<(&String, &Generated)>) -> Result<(), TaskError> {
    if entries.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::default();
    for (name, entry) in entries {
        let value = serde_json::to_value(entry)
            .map_err(|e| TaskError::non_retryable(format!("generated-file entry: {e}")))?;
        batch
            .store
            .push((format!("{GENERATED_PREFIX}{name}"), value));
    }
    ctx.ingest::<()>(batch, None).await.map(|_| ())
}

/// Runs blocking file work off the actor thread; an I/O error is retryable.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaskError::retryable(format!("generating files: {e}")))?
        .map_err(TaskError::retryable)
}

#[async_trait]
impl Task for GenerateFiles {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let now = ctx.clock().now().to_rfc3339();
        let mut entries = entries(ctx.kv_list(GENERATED_PREFIX).await?);
        for chunk in self.files(&now).chunks(CHUNK) {
            // Step 1: a random hidden name for each file not begun yet.
            let mut begun = Vec::new();
            for (name, _) in chunk {
                if !entries.contains_key(name) {
                    let tmp = format!(".dummypay-generating-{}", uuid::Uuid::new_v4().simple());
                    entries.insert(
                        name.clone(),
                        Generated {
                            tmp,
                            signature: None,
                        },
                    );
                    begun.push(name);
                }
            }
            record(&ctx, begun.iter().map(|n| (*n, &entries[*n])).collect()).await?;

            // Step 2: write the files not written yet, then record their signatures.
            let unwritten: Vec<(String, String, String)> = chunk
                .iter()
                .filter(|(name, _)| entries[name].signature.is_none())
                .map(|(name, text)| (name.clone(), entries[name].tmp.clone(), text.clone()))
                .collect();
            let directory = self.config.directory.clone();
            let written = blocking(move || {
                unwritten
                    .into_iter()
                    .map(
                        |(name, tmp, text)| match write_tmp(&directory, &tmp, &text) {
                            Ok(signature) => Ok((name, signature)),
                            Err(e) => Err(format!("writing {name}: {e}")),
                        },
                    )
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            for (name, signature) in &written {
                if let Some(entry) = entries.get_mut(name) {
                    entry.signature = Some(*signature);
                }
            }
            record(
                &ctx,
                written.iter().map(|(n, _)| (n, &entries[n])).collect(),
            )
            .await?;

            // Step 3: link each file to its own name, never over an existing one.
            let signed: Vec<(String, Generated)> = chunk
                .iter()
                .map(|(name, _)| (name.clone(), entries[name].clone()))
                .collect();
            let directory = self.config.directory.clone();
            blocking(move || {
                for (name, entry) in signed {
                    match publish(&directory, &name, &entry) {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::info!(file = %name, "not generated: a file of that name exists")
                        }
                        Err(e) => return Err(format!("publishing {name}: {e}")),
                    }
                }
                Ok(())
            })
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tmp: &str, signature: Option<Signature>) -> Generated {
        Generated {
            tmp: tmp.into(),
            signature,
        }
    }

    /// Every state a crash can leave between the steps: uninstall removes every file the
    /// connector created and never a user's.
    #[test]
    fn every_crash_point_leaves_only_files_that_uninstall_removes_or_the_users() {
        let (name, tmp, text) = ("g.json", ".dummypay-generating-x", "generated\n");
        for user_file in [false, true] {
            for crash_after in 0..=5 {
                let dir = tempfile::tempdir().unwrap();
                let d = dir.path();
                if user_file {
                    std::fs::write(d.join(name), "the user's\n").unwrap();
                }
                // 0: entry recorded; 1: tmp written; 2: signature recorded; 3: linked;
                // 4: tmp removed; 5: uninstall of a completed run.
                let mut e = entry(tmp, None);
                let mut signature = None;
                if crash_after >= 1 {
                    signature = Some(write_tmp(d, tmp, text).unwrap());
                }
                if crash_after >= 2 {
                    e.signature = signature;
                }
                if crash_after >= 3 && !user_file {
                    std::fs::hard_link(d.join(tmp), d.join(name)).unwrap();
                }
                if crash_after >= 4 {
                    remove_if_present(&d.join(tmp)).unwrap();
                }
                remove(d, name, &e).unwrap();
                let left: Vec<_> = std::fs::read_dir(d).unwrap().map(|e| e.unwrap()).collect();
                if user_file {
                    assert_eq!(left.len(), 1, "step {crash_after}");
                    assert_eq!(
                        std::fs::read_to_string(d.join(name)).unwrap(),
                        "the user's\n"
                    );
                } else {
                    assert!(left.is_empty(), "step {crash_after}: {left:?}");
                }
            }
        }
    }

    #[test]
    fn publishing_again_after_a_crash_finishes_the_job_and_never_takes_a_users_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let signature = write_tmp(d, ".t1", "generated\n").unwrap();
        let e = entry(".t1", Some(signature));
        // Linked, then a crash before tmp was removed.
        std::fs::hard_link(d.join(".t1"), d.join("g.json")).unwrap();
        assert!(publish(d, "g.json", &e).unwrap());
        assert!(!d.join(".t1").exists());
        assert!(publish(d, "g.json", &e).unwrap(), "published twice");

        std::fs::write(d.join("u.json"), "the user's\n").unwrap();
        let signature = write_tmp(d, ".t2", "generated\n").unwrap();
        let e = entry(".t2", Some(signature));
        assert!(!publish(d, "u.json", &e).unwrap());
        assert!(!d.join(".t2").exists());
        assert_eq!(
            std::fs::read_to_string(d.join("u.json")).unwrap(),
            "the user's\n"
        );
        remove(d, "u.json", &e).unwrap();
        assert!(d.join("u.json").exists());
    }
}
