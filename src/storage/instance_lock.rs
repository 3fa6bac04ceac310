//! One process per database: `serve` holds a session advisory lock on a dedicated connection
//! for its whole life, so a second `serve` on the same database refuses to start instead of
//! running every task twice. PostgreSQL releases the lock when the session ends, including
//! when the process is killed.

use tokio_postgres::NoTls;

use super::StorageError;
use super::database::parse_url;

/// Advisory lock key of a serving instance ("tributary-serve").
const INSTANCE_LOCK: i64 = 0x7472_6962_7365_7276;

/// Held while the service runs; dropping it closes the session and frees the lock.
pub struct InstanceLock {
    _client: tokio_postgres::Client,
}

/// Takes the instance lock, or fails with [`StorageError::AlreadyRunning`].
pub async fn acquire(url: &str) -> Result<InstanceLock, StorageError> {
    let (client, connection) = parse_url(url)?
        .connect(NoTls)
        .await
        .map_err(|e| StorageError::db("connecting for the instance lock", e))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = ?e, "instance lock connection closed");
        }
    });
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&INSTANCE_LOCK])
        .await
        .map_err(|e| StorageError::db("taking the instance lock", e))?
        .get(0);
    if !locked {
        return Err(StorageError::AlreadyRunning);
    }
    Ok(InstanceLock { _client: client })
}
