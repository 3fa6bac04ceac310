//! The descriptors of the runtime's money-out tasks. They are objects with a `"tributary"`
//! key, which the SDK reserves (a connector's own descriptors must not use it): the task actor
//! resolves them itself instead of handing them to `Connector::resolve`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The reserved key.
pub const KEY: &str = "tributary";

/// One of the runtime's money-out tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tributary", rename_all = "kebab-case")]
pub enum MoneyOutTask {
    /// One attempt at sending an initiation: each attempt is its own task, so its idempotency
    /// key (the task id) is stable across its retries and differs from the next attempt's.
    Initiate {
        /// The initiation.
        initiation: String,
        /// Its attempt.
        attempt: i32,
    },
    /// One reversal.
    Reverse {
        /// The reversal.
        reversal: String,
    },
}

impl MoneyOutTask {
    /// The descriptor as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// The task's id within `connector_id` (as the runtime derives it from the descriptor).
    pub fn task_id(&self, connector_id: &str) -> Uuid {
        crate::ids::task_id(connector_id, &crate::ids::canonical_json(&self.to_value()))
    }

    /// The runtime's task a descriptor names, if it is one of them (`Err`: it has the reserved
    /// key but is malformed).
    pub fn recognize(descriptor: &Value) -> Option<Result<Self, String>> {
        descriptor.get(KEY)?;
        Some(serde_json::from_value(descriptor.clone()).map_err(|e| e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_round_trip_and_attempts_get_their_own_task() {
        let first = MoneyOutTask::Initiate {
            initiation: "abc".into(),
            attempt: 1,
        };
        let v = first.to_value();
        assert_eq!(v[KEY], "initiate");
        assert_eq!(MoneyOutTask::recognize(&v), Some(Ok(first.clone())));
        let second = MoneyOutTask::Initiate {
            initiation: "abc".into(),
            attempt: 2,
        };
        assert_ne!(first.task_id("c"), second.task_id("c"));
        assert_eq!(first.task_id("c"), first.clone().task_id("c"));
        assert_eq!(
            MoneyOutTask::recognize(&serde_json::json!({"key": "x"})),
            None
        );
        assert!(matches!(
            MoneyOutTask::recognize(&serde_json::json!({"tributary": "nope"})),
            Some(Err(_))
        ));
    }
}
