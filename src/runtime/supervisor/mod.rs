//! `ConnectorSupervisor`: one per installed connector. It owns the connector instance, starts
//! a `TaskActor` per live task, decides what a new schedule does (DESIGN §3's restart table),
//! hands out the `allow_tasks` concurrency slots FIFO, answers RUN_NOW_SYNC waiters and stops
//! task trees. [`machine`] decides all of it; [`actor`] carries it out.
//!
//! Decisions against the stored status of tasks that are not live in memory (new, or ended)
//! are made by the database in one statement (`UpsertTask`), so ended tasks need no memory.

pub mod actor;
pub mod machine;

pub use actor::{ConnectorSupervisor, SupervisorConfig};
