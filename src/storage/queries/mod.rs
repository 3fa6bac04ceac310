//! Reads: they go straight to the pool, never through the storage actor.

pub mod accounts;
pub mod bank_accounts;
pub mod connectors;
pub mod events;
pub mod kv;
pub mod page;
pub mod payments;
pub mod pools;
pub mod tasks;
pub mod transfers;
pub mod webhooks;

use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::{Pool, StorageError};

/// Takes a pooled connection, naming what it was for if none can be had.
pub(crate) async fn client(
    pool: &Pool,
    context: &'static str,
) -> Result<deadpool_postgres::Client, StorageError> {
    pool.get().await.map_err(|e| StorageError::pool(context, e))
}

/// Runs a read with its statement prepared once per connection and cached: one round trip
/// per read instead of two (parse, then execute).
pub(crate) async fn query(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<Vec<Row>, StorageError> {
    let statement = client
        .prepare_cached(sql)
        .await
        .map_err(|e| StorageError::db(context, e))?;
    client
        .query(&statement, params)
        .await
        .map_err(|e| StorageError::db(context, e))
}

/// [`query`] for a read by key: its row, if any.
pub(crate) async fn query_opt(
    client: &deadpool_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &'static str,
) -> Result<Option<Row>, StorageError> {
    Ok(query(client, sql, params, context)
        .await?
        .into_iter()
        .next())
}
