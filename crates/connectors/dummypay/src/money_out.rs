//! DUMMY-PAY's money out: a transfer or payout is an instruction file
//! `<directory>/outbox/<sanitized reference>.json`, a reversal
//! `<directory>/outbox/<sanitized reversal reference>.reversal.json`. Each is written to a
//! hidden temporary file, then hard-linked to its name (a link never replaces an existing
//! file), so an instruction is never overwritten: a run of the same attempt (same idempotency
//! key) finds its own file and goes on; a file of another attempt is an error. The outbox is
//! a subdirectory, which the directory listing never reads as payments.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tributary_sdk::ingest::{Amount, PaymentData, PaymentStatus, PaymentType, Scheme};
use tributary_sdk::{
    InitiationOutcome, InitiationType, MoneyOut, PaymentInitiation, PaymentReversal,
    ReversalOutcome, TaskContext, TaskError,
};

use super::connector::DummyPay;

/// The outbox, under the connector's directory.
pub const OUTBOX: &str = "outbox";

/// The currencies DUMMY-PAY sends, with their decimals.
pub fn supported_currencies() -> BTreeMap<String, u32> {
    [("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("JPY", 0)]
        .into_iter()
        .map(|(c, d)| (c.to_string(), d))
        .collect()
}

/// A reference as a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`; no
/// leading dot (hidden files are the writer's temporaries); at most 200 bytes.
pub fn sanitize(reference: &str) -> String {
    let mut name: String = reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    name
}

/// An instruction file's content.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Instruction<'a> {
    kind: &'a str,
    reference: &'a str,
    idempotency_key: &'a str,
    initiation_id: &'a str,
    amount: Box<RawValue>,
    asset: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<&'a str>,
    description: &'a str,
    metadata: &'a BTreeMap<String, String>,
}

/// What is read back from an existing instruction.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Written {
    idempotency_key: String,
}

fn exact(amount: &Amount) -> Result<Box<RawValue>, TaskError> {
    RawValue::from_string(amount.as_str().to_string())
        .map_err(|e| TaskError::non_retryable(format!("amount: {e}")))
}

/// Whether `path` is the instruction of the attempt with `key` (`Err`: another's).
fn own(path: &Path, key: &str) -> Result<(), TaskError> {
    let text = std::fs::read(path)
        .map_err(|e| TaskError::retryable(format!("reading {}: {e}", path.display())))?;
    let written: Written = serde_json::from_slice(&text).map_err(|e| {
        TaskError::non_retryable(format!("{} is not an instruction: {e}", path.display()))
    })?;
    if written.idempotency_key == key {
        Ok(())
    } else {
        Err(TaskError::non_retryable(format!(
            "an instruction {} already exists (another attempt, key {}): not sent again",
            path.display(),
            written.idempotency_key
        )))
    }
}

/// Writes `text` as `<outbox>/<name>` unless it exists (blocking). Returns whether this call
/// wrote it (false: the same attempt's file was already there).
pub fn write_instruction(
    outbox: &Path,
    name: &str,
    key: &str,
    text: &str,
) -> Result<bool, TaskError> {
    let io = |what: &str, e: std::io::Error| {
        TaskError::non_retryable(format!("{what} in {}: {e}", outbox.display()))
    };
    std::fs::create_dir_all(outbox).map_err(|e| io("creating the outbox", e))?;
    let path = outbox.join(name);
    if path.exists() {
        return own(&path, key).map(|()| false);
    }
    // Not derived from the name: a 200-byte name plus a suffix would pass the 255-byte limit.
    let tmp: PathBuf = outbox.join(format!(".{}.tmp", sanitize(key)));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| io("creating a temporary instruction", e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| io("writing an instruction", e))?;
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            if let Ok(dir) = std::fs::File::open(outbox) {
                let _ = dir.sync_all();
            }
            Ok(true)
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists => own(&path, key).map(|()| false),
        Err(e) => Err(io("publishing an instruction", e)),
    }
}

/// `a - b` for exact non-negative integers (decimal text), floored at 0.
fn minus(a: &str, b: &str) -> String {
    let (a, b): (Vec<u8>, Vec<u8>) = (a.bytes().rev().collect(), b.bytes().rev().collect());
    if (a.len(), a.iter().rev().collect::<Vec<_>>()) < (b.len(), b.iter().rev().collect()) {
        return "0".into();
    }
    let mut out = Vec::with_capacity(a.len());
    let mut borrow = 0i16;
    for (i, digit) in a.iter().enumerate() {
        let mut d = (*digit - b'0') as i16 - borrow - b.get(i).map_or(0, |x| (*x - b'0') as i16);
        borrow = 0;
        if d < 0 {
            d += 10;
            borrow = 1;
        }
        out.push(b'0' + d as u8);
    }
    while out.len() > 1 && out.last() == Some(&b'0') {
        out.pop();
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_else(|_| "0".into())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, TaskError> + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaskError::retryable(format!("writing the instruction: {e}")))?
}

fn payment_type(kind: InitiationType) -> PaymentType {
    match kind {
        InitiationType::Transfer => PaymentType::Transfer,
        InitiationType::Payout => PaymentType::Payout,
    }
}

#[async_trait]
impl MoneyOut for DummyPay {
    fn supported_currencies(&self) -> BTreeMap<String, u32> {
        supported_currencies()
    }

    async fn initiate_payment(
        &self,
        _ctx: &TaskContext,
        initiation: &PaymentInitiation,
    ) -> Result<InitiationOutcome, TaskError> {
        let kind = match initiation.initiation_type {
            InitiationType::Transfer => "transfer",
            InitiationType::Payout => "payout",
        };
        let text = serde_json::to_string(&Instruction {
            kind,
            reference: &initiation.reference,
            idempotency_key: &initiation.idempotency_key,
            initiation_id: &initiation.id,
            amount: exact(&initiation.amount)?,
            asset: &initiation.asset,
            source: initiation.source_account.as_deref(),
            destination: Some(&initiation.destination_account),
            description: &initiation.description,
            metadata: &initiation.metadata,
        })
        .map_err(|e| TaskError::non_retryable(format!("instruction: {e}")))?;
        let outbox = self.directory().join(OUTBOX);
        let name = format!("{}.json", sanitize(&initiation.reference));
        let key = initiation.idempotency_key.clone();
        let raw = text.clone();
        let wrote = blocking(move || write_instruction(&outbox, &name, &key, &text)).await?;
        tracing::info!(reference = %initiation.reference, wrote, "instruction in the outbox");
        Ok(InitiationOutcome {
            payment: PaymentData {
                reference: initiation.reference.clone(),
                created_at: initiation.created_at,
                payment_type: payment_type(initiation.initiation_type),
                status: PaymentStatus::Succeeded,
                scheme: Scheme::Other,
                asset: initiation.asset.clone(),
                amount: initiation.amount.clone(),
                source_account: initiation.source_account.clone(),
                destination_account: Some(initiation.destination_account.clone()),
                raw: Some(raw),
                metadata: initiation.metadata.clone(),
            },
        })
    }

    async fn reverse_payment(
        &self,
        _ctx: &TaskContext,
        reversal: &PaymentReversal,
    ) -> Result<ReversalOutcome, TaskError> {
        let initiation = &reversal.initiation;
        let text = serde_json::to_string(&Instruction {
            kind: "reversal",
            reference: &reversal.reference,
            idempotency_key: &reversal.idempotency_key,
            initiation_id: &initiation.id,
            amount: exact(&reversal.amount)?,
            asset: &reversal.asset,
            source: None,
            destination: None,
            description: &reversal.description,
            metadata: &reversal.metadata,
        })
        .map_err(|e| TaskError::non_retryable(format!("instruction: {e}")))?;
        let outbox = self.directory().join(OUTBOX);
        let name = format!("{}.reversal.json", sanitize(&reversal.reference));
        let key = reversal.idempotency_key.clone();
        let raw = text.clone();
        blocking(move || write_instruction(&outbox, &name, &key, &text)).await?;
        let left = minus(initiation.amount.as_str(), reversal.amount.as_str());
        Ok(ReversalOutcome {
            payment: Some(PaymentData {
                reference: reversal
                    .payment_reference
                    .clone()
                    .unwrap_or_else(|| initiation.reference.clone()),
                created_at: initiation.created_at,
                payment_type: payment_type(initiation.initiation_type),
                status: PaymentStatus::Refunded,
                scheme: Scheme::Other,
                asset: initiation.asset.clone(),
                amount: Amount::payment("amount", &left)
                    .map_err(|e| TaskError::non_retryable(e.to_string()))?,
                source_account: initiation.source_account.clone(),
                destination_account: Some(initiation.destination_account.clone()),
                raw: Some(raw),
                metadata: initiation.metadata.clone(),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_plain_file_names() {
        assert_eq!(sanitize("pay-1_A.b"), "pay-1_A.b");
        assert_eq!(sanitize("../etc/passwd"), "_.._etc_passwd");
        assert_eq!(sanitize(".hidden"), "_.hidden");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("a b/c"), "a_b_c");
    }

    #[test]
    fn an_attempt_writes_once_and_never_overwrites_another() {
        let dir = tempfile::tempdir().expect("tempdir");
        let outbox = dir.path().join(OUTBOX);
        let text = |key: &str| format!(r#"{{"idempotencyKey":"{key}","n":1}}"#);
        assert_eq!(
            write_instruction(&outbox, "t.json", "k1", &text("k1")),
            Ok(true)
        );
        // The same attempt again: its own file, not written twice.
        assert_eq!(
            write_instruction(&outbox, "t.json", "k1", &text("k1")),
            Ok(false)
        );
        // Another attempt: refused, the file unchanged.
        let e = write_instruction(&outbox, "t.json", "k2", &text("k2")).expect_err("refused");
        assert!(e.to_string().contains("already exists"), "{e}");
        let on_disk = std::fs::read_to_string(outbox.join("t.json")).expect("read");
        assert_eq!(on_disk, text("k1"));
        let names: Vec<_> = std::fs::read_dir(&outbox).expect("ls").collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    #[test]
    fn subtraction_is_exact() {
        assert_eq!(minus("100", "40"), "60");
        assert_eq!(minus("100", "100"), "0");
        assert_eq!(
            minus("1000000000000000000000000", "1"),
            "999999999999999999999999"
        );
        assert_eq!(minus("5", "6"), "0");
    }
}
