//! The DUMMY-PAY connector: install schedules `read-files` (and `generate-files` when asked),
//! a config change reschedules `read-files` with the new period, uninstall deletes only the
//! files the connector generated; it registers external bank accounts (`bank_accounts`).

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use super::config::DummyPayConfig;
use super::generate::{self, GENERATED_PREFIX, GenerateFiles};
use super::ingest::IngestFile;
use super::read_files::ReadFiles;
use tributary_sdk::{
    Connector, ConnectorContext, Restart, Schedule, ScheduleOptions, Task, TaskError,
};

/// How many JSON Lines files one connector streams at once. Each holds up to two batches of
/// 1,000 parsed records in memory (the one committing, the one read ahead), so this, not
/// `allow_tasks`, bounds the memory of a directory of large files; a run waiting for a permit
/// holds no file and no data, and single-object files take no permit.
pub const STREAMS: usize = 50;

/// An installed DUMMY-PAY connector.
pub struct DummyPay {
    config: DummyPayConfig,
    /// Permits to stream a JSON Lines file, shared by this connector's ingest tasks.
    streams: Arc<Semaphore>,
}

impl DummyPay {
    /// A connector with a parsed config.
    pub fn new(config: DummyPayConfig) -> Self {
        Self {
            config,
            streams: Arc::new(Semaphore::new(STREAMS)),
        }
    }

    /// The connector's config.
    pub fn config(&self) -> &DummyPayConfig {
        &self.config
    }

    /// The directory it reads (and whose `outbox/` it writes money out to).
    pub fn directory(&self) -> &std::path::Path {
        &self.config.directory
    }

    fn read_files_options(&self) -> ScheduleOptions {
        ScheduleOptions::new(
            Schedule::RunPeriodically(self.config.file_polling_period),
            Restart::StopAndRestart,
        )
    }
}

/// The descriptor of the periodic directory listing.
pub fn read_files_descriptor() -> Value {
    json!({"name": "Main task to periodically read files", "key": "read-files"})
}

/// The descriptor of one file's ingestion (Formance's form).
pub fn ingest_descriptor(file_name: &str) -> Value {
    json!({"name": format!("Ingest file {file_name}"), "key": "ingest", "fileName": file_name})
}

fn generate_descriptor() -> Value {
    json!({"name": "Generate files", "key": "generate-files"})
}

#[async_trait]
impl Connector for DummyPay {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        // A convenience for the quick start; a failure here is reported by read-files.
        let directory = self.config.directory.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::create_dir_all(directory)).await;
        let scheduler = ctx.scheduler();
        if self.config.accounts_pre_generated + self.config.payments_pre_generated > 0 {
            scheduler
                .schedule(
                    &generate_descriptor(),
                    ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive),
                )
                .await?;
        }
        scheduler
            .schedule(&read_files_descriptor(), self.read_files_options())
            .await?;
        Ok(())
    }

    async fn uninstall(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        let directory = self.config.directory.clone();
        let generated = generate::entries(ctx.kv_list(GENERATED_PREFIX).await?);
        tokio::task::spawn_blocking(move || {
            for (name, entry) in generated {
                if let Err(e) = generate::remove(&directory, &name, &entry) {
                    tracing::warn!(file = %name, error = %e, "could not remove a generated file");
                }
            }
        })
        .await
        .map_err(|e| TaskError::retryable(e.to_string()))
    }

    async fn config_updated(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        // STOP_AND_RESTART persists the new period; the next listing uses the new config.
        ctx.scheduler()
            .schedule(&read_files_descriptor(), self.read_files_options())
            .await
            .map(|_| ())
    }

    fn money_out(&self) -> Option<&dyn tributary_sdk::MoneyOut> {
        Some(self)
    }

    fn resolve(&self, descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        let config = self.config.clone();
        match descriptor.get("key").and_then(Value::as_str) {
            Some("read-files") => Ok(Box::new(ReadFiles { config })),
            Some("generate-files") => Ok(Box::new(GenerateFiles { config })),
            Some("ingest") => {
                let file_name = descriptor
                    .get("fileName")
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        TaskError::non_retryable("ingest descriptor without fileName")
                    })?;
                if !super::files::is_plain_name(file_name) {
                    return Err(TaskError::non_retryable(format!(
                        "refusing file name {file_name:?}: only plain names are read"
                    )));
                }
                Ok(Box::new(IngestFile {
                    config,
                    file_name: file_name.to_string(),
                    opened: Default::default(),
                    streams: self.streams.clone(),
                }))
            }
            Some(super::bank_accounts::TASK_KEY) => {
                let id = descriptor
                    .get("bankAccountId")
                    .and_then(Value::as_str)
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        TaskError::non_retryable(
                            "bank account descriptor without a bankAccountId UUID",
                        )
                    })?;
                Ok(Box::new(super::bank_accounts::CreateExternalAccount {
                    config,
                    bank_account_id: id,
                }))
            }
            _ => Err(TaskError::non_retryable(format!(
                "unknown DUMMY-PAY descriptor {descriptor}"
            ))),
        }
    }

    fn bank_accounts(&self) -> Option<&dyn tributary_sdk::ExternalBankAccounts> {
        Some(self)
    }
}
