//! The `ingest` task of one file: a single JSON object, or JSON Lines streamed in batches.
//! Each batch commits with the checkpoint `{prefixHash, offset, line}` (the BLAKE3 hash of the
//! bytes before `offset`), so a crash mid-file resumes where it stopped with no loss and no
//! duplicate, and a rewritten file (different prefix) starts over. A last line without a
//! newline is not read yet. File reads run off the actor thread.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::config::DummyPayConfig;
use super::files::{self, FileRecord, RECORD_PREFIX, Signature};
use super::format::{self, Record};
use tributary_sdk::ingest::Batch;
use tributary_sdk::{Task, TaskContext, TaskError};

/// Records per committed batch.
pub const BATCH_SIZE: usize = 1000;
/// Files up to this size are first tried as one JSON object.
const SINGLE_OBJECT_MAX: u64 = 1024 * 1024;
/// The longest line accepted.
const MAX_LINE: usize = 1024 * 1024;

/// The task.
pub struct IngestFile {
    /// The connector's config.
    pub config: DummyPayConfig,
    /// The file's name in the directory (never a path).
    pub file_name: String,
    /// The version of the file this run opened: a failure is recorded against it, not
    /// against a version written (fixed) since.
    pub opened: std::sync::Mutex<Option<Signature>>,
    /// The connector's JSON Lines stream permits (see [`super::connector::STREAMS`]).
    pub streams: std::sync::Arc<tokio::sync::Semaphore>,
}

/// Where ingestion of a file stands (the task's state).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    /// BLAKE3 of the bytes before `offset`.
    pub prefix_hash: String,
    /// Bytes consumed.
    pub offset: u64,
    /// Lines consumed.
    pub line: u64,
    /// The version of the file this run finished with: a later run of the same version (a
    /// poll that listed the file just before its record committed) has nothing to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed: Option<Signature>,
}

/// An open file being read line by line, moved into blocking reads and back.
struct Reader {
    inner: BufReader<File>,
    hasher: blake3::Hasher,
    offset: u64,
    line: u64,
}

/// One batch read: the records, where the reader stands, and whether the file is done.
struct Chunk {
    batch: Batch,
    lines: u64,
    done: bool,
}

fn add(batch: &mut Batch, record: Record) {
    match record {
        Record::Payment(p) => batch.payments.push(p),
        Record::Account(a) => batch.accounts.push(a),
        Record::Balance(b) => batch.balances.push(b),
    }
}

impl Reader {
    /// Opens `file` and positions it after `checkpoint` if the bytes before it are unchanged.
    fn open(mut file: File, checkpoint: Option<&Checkpoint>, size: u64) -> std::io::Result<Self> {
        // The prefix is hashed from the start, wherever the caller left the file's position
        // (a resume after a whole read of the file once restarted from line 1).
        file.seek(SeekFrom::Start(0))?;
        let mut hasher = blake3::Hasher::new();
        let mut start = (0, 0);
        if let Some(cp) = checkpoint.filter(|cp| cp.offset > 0 && cp.offset <= size) {
            let mut prefix = (&mut file).take(cp.offset);
            std::io::copy(&mut prefix, &mut hasher)?;
            if hasher.finalize().to_hex().as_str() == cp.prefix_hash {
                start = (cp.offset, cp.line);
            } else {
                hasher = blake3::Hasher::new();
            }
        }
        file.seek(SeekFrom::Start(start.0))?;
        Ok(Self {
            inner: BufReader::with_capacity(256 * 1024, file),
            hasher,
            offset: start.0,
            line: start.1,
        })
    }

    fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            prefix_hash: self.hasher.finalize().to_hex().to_string(),
            offset: self.offset,
            line: self.line,
            completed: None,
        }
    }

    /// Reads up to [`BATCH_SIZE`] complete lines. A malformed line is an error naming it.
    fn next_chunk(&mut self, name: &str) -> Result<Chunk, TaskError> {
        let mut batch = Batch::default();
        let mut records = 0;
        let mut lines = 0;
        let mut buf = Vec::new();
        while records < BATCH_SIZE {
            buf.clear();
            let complete = read_line(&mut self.inner, &mut buf).map_err(|e| match e {
                LineError::TooLong => TaskError::non_retryable(format!(
                    "{name}: line {}: longer than {MAX_LINE} bytes",
                    self.line + 1
                )),
                LineError::Io(e) => TaskError::retryable(format!("{name}: reading: {e}")),
            })?;
            if !complete {
                return Ok(Chunk {
                    batch,
                    lines,
                    done: true,
                });
            }
            let number = self.line + 1;
            let text = std::str::from_utf8(&buf).map_err(|_| {
                TaskError::non_retryable(format!("{name}: line {number}: not UTF-8 text"))
            })?;
            if !text.trim().is_empty() {
                let record = format::parse(text).map_err(|problem| {
                    TaskError::non_retryable(format!("{name}: line {number}: {problem}"))
                })?;
                add(&mut batch, record);
                records += 1;
            }
            self.hasher.update(&buf);
            self.offset += buf.len() as u64;
            self.line = number;
            lines += 1;
        }
        Ok(Chunk {
            batch,
            lines,
            done: false,
        })
    }
}

enum LineError {
    TooLong,
    Io(std::io::Error),
}

/// Reads one line with its `\n` into `buf`; false when only an incomplete line (or nothing)
/// is left, which is then not consumed from the caller's point of view.
fn read_line(reader: &mut BufReader<File>, buf: &mut Vec<u8>) -> Result<bool, LineError> {
    loop {
        let available = reader.fill_buf().map_err(LineError::Io)?;
        if available.is_empty() {
            return Ok(false);
        }
        match memchr(available) {
            Some(i) => {
                buf.extend_from_slice(&available[..=i]);
                reader.consume(i + 1);
                if buf.len() > MAX_LINE {
                    return Err(LineError::TooLong);
                }
                return Ok(true);
            }
            None => {
                let n = available.len();
                buf.extend_from_slice(available);
                reader.consume(n);
                if buf.len() > MAX_LINE {
                    return Err(LineError::TooLong);
                }
            }
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

/// How a small file reads.
enum Single {
    /// One object (its parse result).
    Object(Result<Record, String>),
    /// Not readable at all.
    Invalid(String),
    /// Several lines: JSON Lines.
    Lines,
}

/// A file of one line (or one pretty-printed object) is one object; several lines are JSON Lines.
fn single_object(bytes: &[u8]) -> Single {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Single::Invalid("not UTF-8 text (binary file?)".into());
    };
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Single::Invalid("the file is empty".into());
    }
    // A one-line file is parsed once, as the object it must be.
    let one_line = !trimmed.contains('\n');
    if one_line || serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok() {
        Single::Object(format::parse(trimmed))
    } else {
        Single::Lines
    }
}

/// Opens a file of the directory and reads its signature (blocking). Running out of file
/// descriptors is retryable; a name that cannot be read is not.
fn open_file(directory: &std::path::Path, name: &str) -> Result<(File, Signature), TaskError> {
    let file = files::open(directory, name).map_err(|e| match &e {
        files::PathError::Io { source, .. }
            if matches!(source.raw_os_error(), Some(libc::EMFILE | libc::ENFILE)) =>
        {
            TaskError::retryable(e.to_string())
        }
        _ => TaskError::non_retryable(e.to_string()),
    })?;
    let meta = file
        .metadata()
        .map_err(|e| TaskError::retryable(format!("{name}: {e}")))?;
    Ok((file, Signature::of(&meta)))
}

/// Runs blocking file work off the actor thread.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TaskError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| TaskError::retryable(format!("file reader: {e}")))
}

impl IngestFile {
    /// The store entry that records this version of the file as read.
    fn record(
        &self,
        signature: Signature,
        hash: String,
        outcome: &str,
    ) -> (String, serde_json::Value) {
        let record = FileRecord {
            signature,
            hash,
            outcome: outcome.into(),
        };
        (
            format!("{RECORD_PREFIX}{}", self.file_name),
            serde_json::to_value(record).unwrap_or_default(),
        )
    }

    async fn ingest(&self, ctx: &TaskContext) -> Result<(Signature, String), TaskError> {
        let name = self.file_name.clone();
        let directory = self.config.directory.clone();
        // Opened, and read whole when small, in one trip off the actor thread; closed at once,
        // so that a thousand runs waiting on their commit or a stream permit hold no file.
        type Opened = (Signature, Option<std::io::Result<Vec<u8>>>);
        let (signature, small) = blocking(move || -> Result<Opened, TaskError> {
            let (mut file, signature) = open_file(&directory, &name)?;
            let small = (signature.size <= SINGLE_OBJECT_MAX).then(|| {
                let mut bytes = Vec::with_capacity(signature.size as usize);
                file.read_to_end(&mut bytes).map(|_| bytes)
            });
            Ok((signature, small))
        })
        .await??;
        *self.opened.lock().unwrap_or_else(|e| e.into_inner()) = Some(signature);
        let last: Option<Checkpoint> = ctx.state()?;
        if let Some(done) = last.filter(|cp| cp.completed == Some(signature)) {
            tracing::debug!(file = %self.file_name, "unchanged since it was ingested; not read again");
            return Ok((signature, done.prefix_hash));
        }
        metrics::counter!("tributary_dummypay_files_read_total", "connector_id" => ctx.connector_id().to_string())
            .increment(1);
        let name = self.file_name.clone();

        // Small files may be one (possibly pretty-printed) JSON object.
        if let Some(small) = small {
            let bytes = small.map_err(|e| TaskError::retryable(format!("{name}: reading: {e}")))?;
            match single_object(&bytes) {
                Single::Object(record) => {
                    let record = record.map_err(|problem| {
                        TaskError::non_retryable(format!("{name}: {problem}"))
                    })?;
                    let hash = blake3::hash(&bytes).to_hex().to_string();
                    let mut batch = Batch::default();
                    add(&mut batch, record);
                    batch
                        .store
                        .push(self.record(signature, hash.clone(), "ingested"));
                    let checkpoint = Checkpoint {
                        prefix_hash: hash.clone(),
                        offset: bytes.len() as u64,
                        line: 1,
                        completed: Some(signature),
                    };
                    drop(bytes);
                    ctx.ingest_final(batch, Some(&checkpoint)).await?;
                    return Ok((signature, hash));
                }
                Single::Invalid(problem) => {
                    return Err(TaskError::non_retryable(format!("{name}: {problem}")));
                }
                Single::Lines => {}
            }
        }
        self.stream(ctx, signature).await
    }

    /// JSON Lines: batches committed with their checkpoint.
    async fn stream(
        &self,
        ctx: &TaskContext,
        signature: Signature,
    ) -> Result<(Signature, String), TaskError> {
        let name = self.file_name.clone();
        let _permit = tokio::select! {
            permit = self.streams.acquire() => {
                permit.map_err(|e| TaskError::retryable(format!("stream permits: {e}")))?
            }
            () = ctx.cancellation().cancelled() => return Err(TaskError::Cancelled),
        };
        let (directory, file_name) = (self.config.directory.clone(), name.clone());
        let (file, now) = blocking(move || open_file(&directory, &file_name)).await??;
        if now != signature {
            return Err(TaskError::retryable(format!(
                "{name}: changed while waiting to be read; reading it again"
            )));
        }
        let checkpoint: Option<Checkpoint> = ctx.state()?;
        let reader = blocking(move || Reader::open(file, checkpoint.as_ref(), signature.size))
            .await?
            .map_err(|e| TaskError::retryable(format!("{name}: {e}")))?;
        if reader.offset > 0 {
            tracing::info!(file = %name, line = reader.line, offset = reader.offset, "resuming file");
        }
        // The next batch is read while the previous one commits.
        let read_next = |mut reader: Reader| {
            let file_name = name.clone();
            tokio::task::spawn_blocking(move || {
                let chunk = reader.next_chunk(&file_name);
                let checkpoint = reader.checkpoint();
                (reader, chunk, checkpoint)
            })
        };
        let mut next = read_next(reader);
        loop {
            let (reader, chunk, mut checkpoint) = next
                .await
                .map_err(|e| TaskError::retryable(format!("file reader: {e}")))?;
            let mut chunk = chunk?;
            if chunk.lines > 0 {
                tracing::info!(file = %name, lines = chunk.lines, through_line = checkpoint.line, "batch read");
            }
            if chunk.done {
                // Data, checkpoint, the file's record and the task's end: one transaction.
                let record = self.record(signature, checkpoint.prefix_hash.clone(), "ingested");
                chunk.batch.store.push(record);
                checkpoint.completed = Some(signature);
                ctx.ingest_final(chunk.batch, Some(&checkpoint)).await?;
                return Ok((signature, checkpoint.prefix_hash));
            }
            next = read_next(reader);
            ctx.ingest(chunk.batch, Some(&checkpoint)).await?;
            if ctx.cancellation().is_cancelled() {
                return Err(TaskError::Cancelled);
            }
        }
    }
}

#[async_trait]
impl Task for IngestFile {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        match self.ingest(&ctx).await {
            Ok(_) => Ok(()),
            Err(TaskError::NonRetryable(problem)) => {
                // This version of the file is not read again; fixing the file changes it.
                let opened = *self.opened.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(signature) = opened {
                    let (key, value) = self.record(signature, String::new(), "failed");
                    ctx.kv_put(&key, &value).await?;
                }
                Err(TaskError::NonRetryable(problem))
            }
            Err(other) => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn line(reference: &str) -> String {
        format!(
            r#"{{"reference":"{reference}","amount":1,"asset":"EUR/2","type":"PAY-IN","status":"SUCCEEDED","scheme":"visa","createdAt":"2026-01-01T00:00:00Z"}}"#
        ) + "\n"
    }

    /// A small JSON Lines file is first read whole (as a possible single object): resuming it
    /// must still hash the prefix from the start, not from where that read stopped.
    #[test]
    fn a_file_already_read_whole_resumes_after_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let (first, rest) = (line("a"), line("b") + &line("c"));
        std::fs::File::create(&path)
            .unwrap()
            .write_all((first.clone() + &rest).as_bytes())
            .unwrap();
        let checkpoint = Checkpoint {
            prefix_hash: blake3::hash(first.as_bytes()).to_hex().to_string(),
            offset: first.len() as u64,
            line: 1,
            completed: None,
        };
        let mut file = File::open(&path).unwrap();
        let size = file.metadata().unwrap().len();
        file.read_to_end(&mut Vec::new()).unwrap();

        let mut reader = Reader::open(file, Some(&checkpoint), size).unwrap();
        assert_eq!((reader.offset, reader.line), (first.len() as u64, 1));
        let chunk = reader.next_chunk("p.jsonl").unwrap();
        let references: Vec<&str> = chunk
            .batch
            .payments
            .iter()
            .map(|p| p.reference.as_str())
            .collect();
        assert_eq!(references, ["b", "c"]);
    }
}
