//! Reads: they go straight to the pool, never through the storage actor.

pub mod accounts;
pub mod connectors;
pub mod kv;
pub mod page;
pub mod payments;
pub mod tasks;

use super::{Pool, StorageError};

/// Takes a pooled connection, naming what it was for if none can be had.
pub(crate) async fn client(
    pool: &Pool,
    context: &'static str,
) -> Result<deadpool_postgres::Client, StorageError> {
    pool.get().await.map_err(|e| StorageError::pool(context, e))
}
