//! Money out: transfer initiations sent through connectors. [`machine`] is the state machine
//! (pure); [`task`] is the runtime's own task that calls a connector's
//! [`crate::sdk::MoneyOut`] and records the outcome; [`descriptor`] names those tasks so the
//! runtime tells them from the connector's.

pub mod descriptor;
pub mod machine;
pub mod task;
