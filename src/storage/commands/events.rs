//! The outbox's writes: appending events inside the transaction of the change they describe,
//! and moving a publisher's cursor.
//!
//! [`append`] is not a command of its own: a command that changes something calls it with its
//! own transaction, so the change and its event commit or roll back together. One statement
//! appends a whole round of events and hands out each connector's next sequence numbers.
//! [`write_out_payment_changes`] turns a connector's payment events stored by reference into
//! envelopes before a reset or uninstall deletes what they refer to.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::events::{NewEvent, Stored, outbox_enabled};
use crate::storage::queries::events::{AT_POSITIONS, stored_event};
use crate::storage::{StorageError, Tx, WriteCommand};

// `counts` bumps each connector's counter once by its number of events and answers its new
// last sequence; each event's sequence is that less the number of its connector's events that
// follow it in the round (`after`, counted here), so a connector's events get consecutive
// numbers in input order. No window function, join or sort: the rows go from the arrays'
// scan straight into the insert, in input order, which is also the order their positions
// (`nextval`) are drawn in. Ids are drawn here, not by `gen_random_uuid()` (less work for the
// single writer's database session).
const APPEND: &str = "WITH counts AS (
        INSERT INTO event_sequences AS s (connector_id, last_sequence)
        SELECT * FROM unnest($1::text[], $2::bigint[])
        ON CONFLICT (connector_id) DO UPDATE SET last_sequence = s.last_sequence
            + EXCLUDED.last_sequence
        RETURNING connector_id, last_sequence
    )
    INSERT INTO events (id, connector_id, sequence, type, envelope, adjustment_id,
                        payment_state, created_at)
    SELECT i.id, i.connector_id,
           (SELECT c.last_sequence FROM counts c WHERE c.connector_id = i.connector_id) - i.after,
           i.type, i.envelope, i.adjustment_id, i.payment_state, i.created_at
    FROM unnest($3::uuid[], $4::text[], $5::bigint[], $6::text[], $7::text[], $8::bigint[],
                $9::text[], $10::timestamptz[])
        AS i(id, connector_id, after, type, envelope, adjustment_id, payment_state,
             created_at)";

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
    // Walking backwards, each event learns how many of its connector's follow it; the totals
    // are then each connector's count.
    let mut seen: HashMap<&str, i64> = HashMap::new();
    let mut after = vec![0i64; events.len()];
    for (i, event) in events.iter().enumerate().rev() {
        let n = seen.entry(event.connector_id.as_str()).or_insert(0);
        after[i] = *n;
        *n += 1;
    }
    let (counted, totals): (Vec<&str>, Vec<i64>) = seen.into_iter().unzip();
    let ids: Vec<Uuid> = events.iter().map(|_| Uuid::new_v4()).collect();
    let connectors: Vec<&str> = events.iter().map(|e| e.connector_id.as_str()).collect();
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    let dates: Vec<DateTime<Utc>> = events.iter().map(|e| e.date).collect();
    let (mut envelopes, mut adjustments, mut states) = (
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
        Vec::with_capacity(events.len()),
    );
    for event in events {
        let (envelope, adjustment, state) = match &event.stored {
            Stored::Envelope(envelope) => (Some(envelope.as_str()), None, None),
            Stored::PaymentChange {
                adjustment_id,
                state,
            } => (None, Some(*adjustment_id), Some(state.as_str())),
        };
        envelopes.push(envelope);
        adjustments.push(adjustment);
        states.push(state);
    }
    tx.execute(
        &stmt,
        &[
            &counted,
            &totals,
            &ids,
            &connectors,
            &after,
            &types,
            &envelopes,
            &adjustments,
            &states,
            &dates,
        ],
    )
    .await
    .map_err(|e| StorageError::db(context, e))?;
    Ok(())
}

const REFERRING: &str = "SELECT position FROM events
    WHERE connector_id = $1 AND adjustment_id IS NOT NULL";

const WRITE_OUT: &str = "UPDATE events SET envelope = u.envelope, adjustment_id = NULL,
        payment_state = NULL
    FROM unnest($1::bigint[], $2::text[]) AS u(position, envelope)
    WHERE events.position = u.position";

/// Writes out the envelope of every event of `connector_id` stored by reference to a payment
/// change, in `tx`: a reset or uninstall calls it before it deletes the payments and
/// adjustments those events refer to, so every event keeps its content until it is pruned.
/// Its cost: one scan of the outbox (only its primary key is indexed, see V11), then one
/// envelope built and one row rewritten per such event still in it.
pub async fn write_out_payment_changes(
    tx: &Tx<'_>,
    connector_id: &str,
) -> Result<(), StorageError> {
    let context = "writing out the envelopes of a connector's payment events";
    let db = |e| StorageError::db(context, e);
    let positions: Vec<i64> = tx
        .query(REFERRING, &[&connector_id])
        .await
        .map_err(db)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for chunk in positions.chunks(1_000) {
        let rows = tx.query(AT_POSITIONS, &[&chunk]).await.map_err(db)?;
        // A reference to rows already gone (only a hand-made deletion) stays as it is.
        let (positions, envelopes): (Vec<i64>, Vec<String>) = rows
            .iter()
            .filter_map(stored_event)
            .map(|e| (e.position, e.envelope))
            .unzip();
        tx.execute(WRITE_OUT, &[&positions, &envelopes])
            .await
            .map_err(db)?;
    }
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
