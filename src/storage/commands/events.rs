//! The outbox's writes: appending events inside the transaction of the change they describe,
//! and moving a publisher's cursor.
//!
//! [`append`] is not a command of its own: a command that changes something calls it with its
//! own transaction, so the change and its event commit or roll back together. One statement
//! appends a whole round of events and hands out each connector's next sequence numbers.

use crate::events::{NewEvent, outbox_enabled};
use crate::storage::{StorageError, Tx, WriteCommand};

// `counts` bumps each connector's counter once by its number of events; each event then takes
// its place in that range, in input order. `ORDER BY` makes the positions follow that order.
const APPEND: &str = "WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
            AS i(connector_id, type, envelope, ord)
    ),
    counts AS (
        INSERT INTO event_sequences AS s (connector_id, last_sequence)
        SELECT connector_id, count(*) FROM input GROUP BY connector_id
        ON CONFLICT (connector_id) DO UPDATE SET last_sequence = s.last_sequence
            + EXCLUDED.last_sequence
        RETURNING connector_id, last_sequence
    ),
    numbered AS (
        SELECT i.connector_id, i.type, i.envelope, i.ord,
               c.last_sequence - count(*) OVER (PARTITION BY i.connector_id)
                   + row_number() OVER (PARTITION BY i.connector_id ORDER BY i.ord) AS sequence
        FROM input i JOIN counts c ON c.connector_id = i.connector_id
    )
    INSERT INTO events (connector_id, sequence, type, envelope)
    SELECT connector_id, sequence, type, envelope::json FROM numbered ORDER BY ord";

/// Appends `events` to the outbox in `tx`, in order; nothing when the outbox is switched off
/// (`events.enabled = false`) or there is nothing to append.
pub async fn append(tx: &Tx<'_>, events: &[NewEvent]) -> Result<(), StorageError> {
    if events.is_empty() || !outbox_enabled() {
        return Ok(());
    }
    let context = "appending events to the outbox";
    let stmt = tx
        .prepare_cached(APPEND)
        .await
        .map_err(|e| StorageError::db(context, e))?;
    let connectors: Vec<&str> = events.iter().map(|e| e.connector_id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let envelopes: Vec<&str> = events.iter().map(|e| e.envelope.as_str()).collect();
    tx.execute(&stmt, &[&connectors, &types, &envelopes])
        .await
        .map_err(|e| StorageError::db(context, e))?;
    Ok(())
}

/// Records that `publisher` is done with every event up to `position` (never moves back).
/// It only moves an existing cursor: a save still in flight from a publisher being stopped
/// cannot bring back a cursor dropped meanwhile ([`StartCursor`] creates them).
#[derive(Debug, Clone)]
pub struct AdvanceCursor {
    /// `nats`, `webhook:<config id>` …
    pub publisher: String,
    /// The last event position it is done with.
    pub position: i64,
}

const ADVANCE: &str = "UPDATE event_cursors SET position = GREATEST(position, $2),
    updated_at = now() WHERE publisher = $1";

impl WriteCommand for AdvanceCursor {
    type Output = ();

    fn statement(&self) -> Option<&'static str> {
        Some(ADVANCE)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let stmt = tx
            .prepare_cached(ADVANCE)
            .await
            .map_err(|e| StorageError::db("advancing an event cursor", e))?;
        tx.execute(&stmt, &[&self.publisher, &self.position])
            .await
            .map_err(|e| StorageError::db("advancing an event cursor", e))?;
        Ok(())
    }
}

/// Creates `publisher`'s cursor at `position` unless it has one (which is kept).
#[derive(Debug, Clone)]
pub struct StartCursor {
    /// The publisher's name.
    pub publisher: String,
    /// Where it starts.
    pub position: i64,
}

impl WriteCommand for StartCursor {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        tx.execute(
            "INSERT INTO event_cursors (publisher, position) VALUES ($1, $2)
             ON CONFLICT (publisher) DO NOTHING",
            &[&self.publisher, &self.position],
        )
        .await
        .map_err(|e| StorageError::db("starting an event cursor", e))?;
        Ok(())
    }
}

/// Forgets a publisher's cursor (a webhook config deleted or deactivated), so it no longer
/// holds back pruning.
#[derive(Debug, Clone)]
pub struct DropCursor {
    /// The publisher's name.
    pub publisher: String,
}

impl WriteCommand for DropCursor {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        tx.execute(
            "DELETE FROM event_cursors WHERE publisher = $1",
            &[&self.publisher],
        )
        .await
        .map_err(|e| StorageError::db("dropping an event cursor", e))?;
        Ok(())
    }
}
