//! The runtime's own tasks, run as tasks of a connector: a descriptor the runtime recognizes
//! (an object with the reserved `"tributary"` key) is resolved here, every other one by the
//! connector's `resolve`. Today: money out (`crate::money_out`).

use std::sync::Arc;

use serde_json::Value;

use super::host::ConnectorHost;
use crate::money_out::descriptor::MoneyOutTask;
use crate::money_out::task::MoneyOutRun;
use crate::sdk::{Connector, Task, TaskError};

/// Resolves `descriptor` into the task to run for `connector`.
pub fn resolve(
    connector: &Arc<dyn Connector>,
    descriptor: &Value,
    host: &ConnectorHost,
) -> Result<Box<dyn Task>, TaskError> {
    match MoneyOutTask::recognize(descriptor) {
        Some(Ok(task)) => Ok(Box::new(MoneyOutRun {
            connector: connector.clone(),
            storage: host.storage.clone(),
            task,
        })),
        Some(Err(e)) => Err(TaskError::non_retryable(format!(
            "malformed runtime descriptor {descriptor}: {e}"
        ))),
        None => connector.resolve(descriptor),
    }
}
