//! Storage: the PostgreSQL side of Tributary.
//!
//! - [`actor`]: the `Storage` actor, the single writer that group-commits typed write commands;
//! - [`commands`]: the write commands themselves, one file per table family;
//! - [`queries`]: reads, straight from the pool;
//! - [`database`]: the connection pool, database creation and the health probe;
//! - [`migrate`]: the SQL migrations under `migrations/`, applied under an advisory lock;
//! - [`instance_lock`]: the session lock that keeps a second `serve` off the same database;
//! - [`embedded`]: the private PostgreSQL cluster used when no database URL is given;
//! - [`tls`]: `sslmode` & co. from the URL and the settings; every connection is made through it.
//!
//! Reads go straight to the pool; every write goes through the actor.

pub mod actor;
pub mod commands;
pub mod database;
pub mod embedded;
pub mod instance_lock;
pub mod migrate;
pub mod queries;
pub mod tls;

mod error;

pub use actor::{Noop, StorageHandle, StorageStats, Tx, WriteCommand};
pub use database::Pool;
pub use error::StorageError;
