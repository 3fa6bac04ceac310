//! The `generate-files` task: writes the demo files that `numberOfAccountsPreGenerated` and
//! `numberOfPaymentsPreGenerated` ask for, and records each name in the store, because the
//! connector only ever deletes files that it generated itself.

use async_trait::async_trait;
use serde_json::json;

use super::config::DummyPayConfig;
use crate::sdk::{Task, TaskContext, TaskError};

/// The store key prefix of generated files.
pub const GENERATED_PREFIX: &str = "generated:";

/// The task.
pub struct GenerateFiles {
    /// The connector's config.
    pub config: DummyPayConfig,
}

#[async_trait]
impl Task for GenerateFiles {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        let now = ctx.clock().now().to_rfc3339();
        let mut files = Vec::new();
        for i in 0..self.config.accounts_pre_generated {
            let body = json!({"kind": "account", "account": {
                "reference": format!("generated-account-{i}"),
                "createdAt": now,
                "defaultAsset": "EUR/2",
                "accountName": format!("Generated account {i}"),
                "type": "INTERNAL",
            }});
            files.push((format!("dummypay-generated-account-{i}.json"), body));
        }
        for i in 0..self.config.payments_pre_generated {
            let body = json!({"kind": "payment", "payment": {
                "reference": format!("generated-payment-{i}"),
                "createdAt": now,
                "amount": 100 + i,
                "asset": "EUR/2",
                "type": "PAY-IN",
                "status": "SUCCEEDED",
                "scheme": "visa",
            }});
            files.push((format!("dummypay-generated-payment-{i}.json"), body));
        }
        for (name, body) in files {
            let path = self.config.directory.join(&name);
            let text = format!("{body}\n");
            // A new file only (never through a symlink, never over a file of the user's):
            // the connector owns, and may later delete, only what it created.
            let created = tokio::task::spawn_blocking(move || {
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)?;
                file.write_all(text.as_bytes())
            })
            .await
            .map_err(|e| TaskError::retryable(e.to_string()))?;
            match created {
                Ok(()) => {
                    ctx.kv_put(&format!("{GENERATED_PREFIX}{name}"), &true)
                        .await?
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    tracing::info!(file = %name, "not generated: a file of that name exists");
                }
                Err(e) => return Err(TaskError::retryable(format!("writing {name}: {e}"))),
            }
        }
        Ok(())
    }
}
