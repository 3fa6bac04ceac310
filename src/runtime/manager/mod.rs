//! `ConnectorManager`: the registry of installed connectors. It runs install, uninstall,
//! reset, config updates, pause/resume and the restore at boot, one operation per connector at
//! a time. Each operation is marked durably before it starts, so a crash mid-way is finished
//! (or, for install, rolled back) at the next boot.
//!
//! - [`machine`]: what may happen to a connector, as a pure state machine (unit-tested);
//! - [`actor`]: the mailbox, which feeds the machine and performs its effects (the async
//!   workflows that talk to the supervisor and the storage actor).

pub mod actor;
pub mod machine;

pub use actor::{ConnectorManager, MAX_NAME_CHARS, checked_config};
