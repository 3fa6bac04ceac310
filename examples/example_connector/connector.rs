//! The seed guide's demo connector, written against Tributary's SDK: a periodic `directory`
//! task lists a directory and schedules one `file` child task per JSON file, which ingests the
//! payment the file holds. docs/building-a-connector.md walks through it step by step.
//!
//! It only uses `tributary_sdk` (and general crates): a connector never touches the runtime's
//! internals. As a connector crate of its own it would depend on `tributary-sdk` alone.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use tributary_sdk::ingest::{Amount, Batch, PaymentData, PaymentStatus, PaymentType, Scheme};
use tributary_sdk::{
    Config, ConfigError, ConfigSchema, Connector, ConnectorContext, FieldSpec, Loader, Restart,
    Schedule, ScheduleOptions, Task, TaskContext, TaskError,
};

// ---- Step 1: the loader: provider name, config schema, validation --------------------------

/// Describes the EXAMPLE provider and builds its connectors.
pub struct ExampleLoader;

/// The parsed config.
#[derive(Clone)]
pub struct ExampleConfig {
    directory: std::path::PathBuf,
    polling_period: Duration,
}

impl ExampleConfig {
    fn parse(config: &Config) -> Result<Self, ConfigError> {
        let directory = config
            .get("directory")
            .and_then(Value::as_str)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| ConfigError::field("directory", "is required"))?;
        let period = config
            .get("pollingPeriod")
            .and_then(Value::as_str)
            .unwrap_or("10s");
        let polling_period = humantime::parse_duration(period)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                ConfigError::field("pollingPeriod", "must be a duration like \"10s\"")
            })?;
        Ok(Self {
            directory: directory.into(),
            polling_period,
        })
    }
}

impl Loader for ExampleLoader {
    fn provider(&self) -> &'static str {
        "EXAMPLE"
    }

    fn provider_title(&self) -> &'static str {
        "Example"
    }

    fn schema(&self) -> ConfigSchema {
        ConfigSchema::from([
            (
                "name",
                FieldSpec {
                    data_type: "string",
                    required: true,
                    default_value: None,
                    secret: false,
                },
            ),
            (
                "directory",
                FieldSpec {
                    data_type: "string",
                    required: true,
                    default_value: None,
                    secret: false,
                },
            ),
            (
                "pollingPeriod",
                FieldSpec {
                    data_type: "duration ns",
                    required: false,
                    default_value: Some(json!("10s")),
                    secret: false,
                },
            ),
        ])
    }

    fn validate_fields(&self, config: &Config) -> Result<(), ConfigError> {
        ExampleConfig::parse(config).map(|_| ())
    }

    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        Ok(Arc::new(ExampleConnector {
            config: ExampleConfig::parse(config)?,
        }))
    }
}

// ---- Step 2: the connector: install schedules the root task; resolve maps descriptors ------

/// An installed EXAMPLE connector.
pub struct ExampleConnector {
    config: ExampleConfig,
}

#[async_trait]
impl Connector for ExampleConnector {
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError> {
        let every = ScheduleOptions::new(
            Schedule::RunPeriodically(self.config.polling_period),
            Restart::StopAndRestart,
        );
        ctx.scheduler()
            .schedule(&json!({"key": "directory"}), every)
            .await?;
        Ok(())
    }

    fn resolve(&self, descriptor: &Value) -> Result<Box<dyn Task>, TaskError> {
        match descriptor["key"].as_str() {
            Some("directory") => Ok(Box::new(DirectoryTask {
                config: self.config.clone(),
            })),
            Some("file") => {
                let name = descriptor["file"]
                    .as_str()
                    .filter(|n| !n.contains('/') && *n != "..")
                    .ok_or_else(|| TaskError::non_retryable("bad file descriptor"))?;
                Ok(Box::new(FileTask {
                    path: self.config.directory.join(name),
                }))
            }
            _ => Err(TaskError::non_retryable(format!(
                "unknown descriptor {descriptor}"
            ))),
        }
    }
}

// ---- Step 3: the tasks ----------------------------------------------------------------------

/// Lists the directory and schedules one child per JSON file.
struct DirectoryTask {
    config: ExampleConfig,
}

#[async_trait]
impl Task for DirectoryTask {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let directory = self.config.directory.clone();
        // File system calls block: keep them off the actor threads.
        let names = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<String>> {
            let mut names = Vec::new();
            for entry in std::fs::read_dir(directory)? {
                let name = entry?.file_name().to_string_lossy().into_owned();
                if name.ends_with(".json") {
                    names.push(name);
                }
            }
            Ok(names)
        })
        .await
        .map_err(TaskError::retryable)?
        .map_err(TaskError::retryable)?;
        for name in names {
            // RESTART_IF_NOT_ACTIVE: a file already being read is not read twice at once.
            ctx.scheduler()
                .schedule(
                    &json!({"key": "file", "file": name}),
                    ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive),
                )
                .await?;
        }
        Ok(())
    }
}

/// The file format of the seed guide.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PaymentFile {
    reference: String,
    amount: u64,
    asset: String,
    #[serde(rename = "type")]
    payment_type: String,
    status: String,
    scheme: String,
    created_at: DateTime<Utc>,
}

/// Ingests the payment of one file.
struct FileTask {
    path: std::path::PathBuf,
}

#[async_trait]
impl Task for FileTask {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let path = self.path.clone();
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .map_err(TaskError::retryable)?
            .map_err(TaskError::retryable)?;
        // A malformed file will not fix itself: non-retryable, with the reason.
        let file: PaymentFile = serde_json::from_str(&text)
            .map_err(|e| TaskError::non_retryable(format!("{}: {e}", self.path.display())))?;
        let payment = PaymentData {
            reference: file.reference,
            created_at: file.created_at,
            payment_type: PaymentType::parse(&file.payment_type)
                .map_err(TaskError::non_retryable)?,
            status: PaymentStatus::parse(&file.status).map_err(TaskError::non_retryable)?,
            scheme: Scheme::parse(&file.scheme).map_err(TaskError::non_retryable)?,
            asset: file.asset,
            amount: Amount::payment("amount", &file.amount.to_string())
                .map_err(TaskError::non_retryable)?,
            source_account: None,
            destination_account: None,
            raw: Some(text),
            metadata: Default::default(),
        };
        let batch = Batch {
            payments: vec![payment],
            ..Batch::default()
        };
        // Ids are deterministic: ingesting the same file again changes nothing.
        ctx.ingest_final(batch, None::<&()>).await?;
        Ok(())
    }
}
