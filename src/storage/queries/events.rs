//! Reads of the outbox: the next events after a publisher's cursor (a payment's event built
//! here from the rows it refers to, see [`crate::events::Stored`]), the cursor itself, the
//! head (for backlog figures).

use chrono::{DateTime, Utc};
use tokio_postgres::Row;
use uuid::Uuid;

use super::{client, query};
use crate::events::payloads::{PaymentChange, PaymentState, SavedPayment};
use crate::events::{EventType, envelope};
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
    /// The serialized Formance envelope (built here for a payment's event stored by
    /// reference: the same bytes at every read).
    pub envelope: String,
    /// Its date (the envelope's `date`), set by the service when it is appended.
    pub created_at: DateTime<Utc>,
}

/// The outbox's columns, a payment change's parts joined from its adjustment and payment
/// (all `NULL` for an event stored as its envelope): what [`stored_event`] reads. `$tail`
/// is the rest of the statement.
macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT e.position, e.id, e.connector_id, e.sequence, e.type, e.envelope,
                    e.created_at, e.payment_state, a.payment_id, a.status, a.amount::text,
                    a.raw::text, p.reference, p.type, p.created_at, p.initial_amount::text
             FROM events e
             LEFT JOIN payment_adjustments a ON a.id = e.adjustment_id
             LEFT JOIN payments p ON p.id = a.payment_id ",
            $tail
        )
    };
}

const AFTER: &str = select_events!("WHERE e.position > $1 ORDER BY e.position LIMIT $2");

/// The events at positions `$1` (any order): what a reset or uninstall writes out, after
/// finding the positions of its connector's events stored by reference in one scan.
pub(crate) const AT_POSITIONS: &str = select_events!("WHERE e.position = ANY($1)");

/// An event as [`select_events`] reads it, its envelope built when it is stored by
/// reference; `None` for a reference to rows that are gone, which only a hand-made deletion
/// can cause (a reset or uninstall writes the envelopes out first): it is logged and skipped,
/// and [`Page::last`] still moves a publisher past it.
pub(crate) fn stored_event(r: &Row) -> Option<StoredEvent> {
    let position = r.get(0);
    let connector_id: String = r.get(2);
    let created_at: DateTime<Utc> = r.get(6);
    let envelope = match r.get::<_, Option<String>>(5) {
        Some(envelope) => envelope,
        None => {
            let built = payment_change_envelope(r, &connector_id, created_at);
            if built.is_none() {
                tracing::warn!(
                    position,
                    connector_id,
                    "an outbox event refers to a payment change that is gone: skipped"
                );
            }
            built?
        }
    };
    Some(StoredEvent {
        position,
        id: r.get(1),
        connector_id,
        sequence: r.get(3),
        event_type: r.get(4),
        envelope,
        created_at,
    })
}

/// A `SAVED_PAYMENT` stored by reference, built from its row's state and the joined parts.
fn payment_change_envelope(r: &Row, connector_id: &str, date: DateTime<Utc>) -> Option<String> {
    let state: PaymentState = serde_json::from_str(r.get::<_, Option<&str>>(7)?).ok()?;
    let change = PaymentChange {
        payment_id: r.get::<_, Option<String>>(8)?,
        status: r.get::<_, Option<String>>(9)?,
        amount: r.get::<_, Option<String>>(10)?,
        raw: r.get(11),
        reference: r.get::<_, Option<String>>(12)?,
        payment_type: r.get::<_, Option<String>>(13)?,
        created_at: r.get::<_, Option<DateTime<Utc>>>(14)?,
        initial_amount: r.get::<_, Option<String>>(15)?,
        connector_id: connector_id.to_string(),
    };
    let payload = SavedPayment::of_change(change, state);
    Some(envelope(EventType::SavedPayment, date, &payload))
}

/// What one read of the outbox found.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// The events, in order.
    pub events: Vec<StoredEvent>,
    /// The last position read, even when its event was skipped ([`stored_event`]): a
    /// publisher's cursor moves past it.
    pub last: Option<i64>,
    /// The read hit its limit: more may be waiting.
    pub full: bool,
}

/// Up to `limit` events after position `after`, in order.
pub async fn after(pool: &Pool, after: i64, limit: i64) -> Result<Page, StorageError> {
    let context = "reading the outbox";
    let client = client(pool, context).await?;
    let rows = query(&client, AFTER, &[&after, &limit], context).await?;
    Ok(Page {
        events: rows.iter().filter_map(stored_event).collect(),
        last: rows.last().map(|r| r.get(0)),
        full: rows.len() as i64 == limit,
    })
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
