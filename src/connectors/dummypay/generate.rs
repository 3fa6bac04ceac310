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
            // Recorded before it exists, so an interrupted run never leaves an unowned file.
            ctx.kv_put(&format!("{GENERATED_PREFIX}{name}"), &true)
                .await?;
            let path = self.config.directory.join(&name);
            let text = format!("{body}\n");
            tokio::task::spawn_blocking(move || std::fs::write(path, text))
                .await
                .map_err(|e| TaskError::retryable(e.to_string()))?
                .map_err(|e| TaskError::retryable(format!("writing {name}: {e}")))?;
        }
        Ok(())
    }
}
