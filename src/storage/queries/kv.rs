//! Reads of the per-connector key-value store.

use serde_json::Value;

use super::client;
use crate::storage::{Pool, StorageError};

/// One key of a connector's store.
pub async fn get(
    pool: &Pool,
    connector_id: &str,
    key: &str,
) -> Result<Option<Value>, StorageError> {
    let client = client(pool, "reading the connector store").await?;
    let row = super::query_opt(
        &client,
        "SELECT value FROM connector_kv WHERE connector_id = $1 AND key = $2",
        &[&connector_id, &key],
        "reading the connector store",
    )
    .await?;
    Ok(row.map(|r| r.get(0)))
}

/// Every key of a connector's store starting with `prefix`, in key order.
pub async fn list(
    pool: &Pool,
    connector_id: &str,
    prefix: &str,
) -> Result<Vec<(String, Value)>, StorageError> {
    let client = client(pool, "listing the connector store").await?;
    let rows = super::query(
        &client,
        "SELECT key, value FROM connector_kv
             WHERE connector_id = $1 AND starts_with(key, $2) ORDER BY key",
        &[&connector_id, &prefix],
        "listing the connector store",
    )
    .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
