//! The seed guide's demo connector, written against Tributary's SDK: a periodic `directory`
//! task lists a directory and schedules one `file` child task per JSON file, which ingests the
//! payment the file holds. It also takes the same payments pushed as webhooks (the guide's §6):
//! signed with HMAC-SHA256 under the `webhookSecret` of its config, each verified event
//! schedules a `webhook` task that ingests it. docs/building-a-connector.md walks through it
//! step by step.
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
    Schedule, ScheduleOptions, Task, TaskContext, TaskError, Unverified, WebhookRequest, Webhooks,
};

// ---- Step 1: the loader: provider name, config schema, validation --------------------------

/// Describes the EXAMPLE provider and builds its connectors.
pub struct ExampleLoader;

/// The parsed config.
#[derive(Clone)]
pub struct ExampleConfig {
    directory: std::path::PathBuf,
    polling_period: Duration,
    /// The key webhooks are signed with; without one, every webhook is refused.
    webhook_secret: Option<String>,
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
        let webhook_secret = config
            .get("webhookSecret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(Self {
            directory: directory.into(),
            polling_period,
            webhook_secret,
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
            (
                "webhookSecret",
                FieldSpec {
                    data_type: "string",
                    required: false,
                    default_value: None,
                    // Masked in every error and log line about the connector.
                    secret: true,
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
            // The event is in the descriptor: the task id derives from it, so the same event
            // delivered twice is one task.
            Some("webhook") => Ok(Box::new(WebhookTask {
                event: descriptor["event"].to_string(),
            })),
            _ => Err(TaskError::non_retryable(format!(
                "unknown descriptor {descriptor}"
            ))),
        }
    }

    fn webhooks(&self) -> Option<&dyn Webhooks> {
        Some(self)
    }
}

// ---- Step 6 (the guide's §6): webhooks: verify the signature, then schedule a task -------

/// The header carrying `sha256=<hex HMAC-SHA256 of the body under webhookSecret>`.
pub const SIGNATURE_HEADER: &str = "x-example-signature";

#[async_trait]
impl Webhooks for ExampleConnector {
    /// Only the provider knows the secret: a valid signature over the exact body bytes is the
    /// request's authentication (the route asks for no bearer token).
    async fn verify(&self, request: &WebhookRequest) -> Result<(), Unverified> {
        use hmac::{KeyInit, Mac};
        let secret = self.config.webhook_secret.as_deref().ok_or_else(|| {
            Unverified("no webhookSecret is configured: webhooks are refused".into())
        })?;
        let given = request
            .header(SIGNATURE_HEADER)
            .and_then(|v| v.strip_prefix("sha256="))
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .ok_or_else(|| Unverified(format!("missing or malformed {SIGNATURE_HEADER}")))?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
            .map_err(|_| Unverified("unusable webhookSecret".into()))?;
        mac.update(&request.body);
        // Constant-time comparison.
        mac.verify_slice(&given)
            .map_err(|_| Unverified("bad signature".into()))
    }

    /// Checks the event now (a malformed one is a 400 to the sender, not a failed task), then
    /// schedules its ingestion.
    async fn handle(
        &self,
        ctx: &ConnectorContext,
        request: WebhookRequest,
    ) -> Result<(), TaskError> {
        let event: Value = serde_json::from_slice(&request.body)
            .map_err(|e| TaskError::non_retryable(format!("the event is not JSON: {e}")))?;
        payment_of(&event.to_string())?;
        ctx.scheduler()
            .schedule(
                &json!({"key": "webhook", "event": event}),
                ScheduleOptions::new(Schedule::RunNow, Restart::IfNotActive),
            )
            .await?;
        Ok(())
    }
}

/// Ingests the payment a webhook reported.
struct WebhookTask {
    event: String,
}

#[async_trait]
impl Task for WebhookTask {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let batch = Batch {
            payments: vec![payment_of(&self.event)?],
            ..Batch::default()
        };
        ctx.ingest_final(batch, None::<&()>).await?;
        Ok(())
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

/// The payment of a file's (or a webhook's) JSON text, validated by the SDK's types.
fn payment_of(text: &str) -> Result<PaymentData, TaskError> {
    let file: PaymentFile = serde_json::from_str(text).map_err(TaskError::non_retryable)?;
    Ok(PaymentData {
        reference: file.reference,
        created_at: file.created_at,
        payment_type: PaymentType::parse(&file.payment_type).map_err(TaskError::non_retryable)?,
        status: PaymentStatus::parse(&file.status).map_err(TaskError::non_retryable)?,
        scheme: Scheme::parse(&file.scheme).map_err(TaskError::non_retryable)?,
        asset: file.asset,
        amount: Amount::payment("amount", &file.amount.to_string())
            .map_err(TaskError::non_retryable)?,
        source_account: None,
        destination_account: None,
        raw: Some(text.to_string()),
        metadata: Default::default(),
    })
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
        let payment = payment_of(&text)
            .map_err(|e| TaskError::non_retryable(format!("{}: {e}", self.path.display())))?;
        let batch = Batch {
            payments: vec![payment],
            ..Batch::default()
        };
        // Ids are deterministic: ingesting the same file again changes nothing.
        ctx.ingest_final(batch, None::<&()>).await?;
        Ok(())
    }
}
