//! Reads of the outbox: the next events after a publisher's cursor, the cursor itself, the
//! head (for backlog figures).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{client, query};
use crate::storage::{Pool, StorageError};

/// One event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Its place in the outbox order.
    pub position: i64,
    /// Its stable id (`Nats-Msg-Id`, the webhook id header).
    pub id: Uuid,
    /// The connector it belongs to; empty for events of no connector.
    pub connector_id: String,
    /// Its number in its connector's sequence (1, 2, 3 …).
    pub sequence: i64,
    /// Formance's type (`SAVED_PAYMENT` …).
    pub event_type: String,
    /// The serialized Formance envelope.
    pub envelope: String,
    /// When it was appended.
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` events after position `after`, in order.
pub async fn after(pool: &Pool, after: i64, limit: i64) -> Result<Vec<StoredEvent>, StorageError> {
    let context = "reading the outbox";
    let client = client(pool, context).await?;
    let rows = query(
        &client,
        "SELECT position, id, connector_id, sequence, type, envelope::text, created_at
         FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        &[&after, &limit],
        context,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| StoredEvent {
            position: r.get(0),
            id: r.get(1),
            connector_id: r.get(2),
            sequence: r.get(3),
            event_type: r.get(4),
            envelope: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

/// Where `publisher` got to, if it has a cursor.
pub async fn cursor(pool: &Pool, publisher: &str) -> Result<Option<i64>, StorageError> {
    let context = "reading an event cursor";
    let client = client(pool, context).await?;
    let rows = query(
        &client,
        "SELECT position FROM event_cursors WHERE publisher = $1",
        &[&publisher],
        context,
    )
    .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The last position appended so far (0 for an empty outbox): a new publisher that only
/// wants future events starts here.
pub async fn head(pool: &Pool) -> Result<i64, StorageError> {
    let context = "reading the outbox head";
    let client = client(pool, context).await?;
    let rows = query(
        &client,
        "SELECT COALESCE(max(position), 0)::bigint FROM events",
        &[],
        context,
    )
    .await?;
    Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
}
