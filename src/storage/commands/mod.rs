//! Write commands: every write to PostgreSQL is one of these, applied by the storage actor
//! inside its group-commit transaction. One file per table family.

pub mod audit;
pub mod bank_accounts;
pub mod connectors;
pub mod events;
pub mod ingest;
pub mod kv;
pub mod manual;
pub mod metadata;
pub mod pools;
pub mod prune;
pub mod rounds;
pub mod snapshots;
pub mod tasks;
pub mod transfers;
pub mod webhooks;
