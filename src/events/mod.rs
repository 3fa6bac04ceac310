//! Events out: what Tributary tells the world about every change it stores.
//!
//! A change and its event commit together: the storage commands that change payments,
//! accounts, balances, connectors, transfer initiations, bank accounts and pools append
//! [`NewEvent`]s to the outbox (the `events` table, migration V11) in their own transaction,
//! through [`crate::storage::commands::events::append`]. Publishers then read the outbox in
//! order and mark their progress durably, so an event survives a crash between the commit
//! and the publishing, which Formance's publish-after-commit does not.
//!
//! Most events are stored as their serialized envelope. A payment's (`SAVED_PAYMENT`, the
//! bulk of ingestion) is stored by reference to the adjustment row its change writes anyway
//! ([`Stored::PaymentChange`]) and built when read, so the single writer does not serialize
//! and write the payment twice.
//!
//! The wire format is Formance Payments v1's: the envelope of go-libs' `publish.EventMessage`
//! (`date`, `app`, `version`, `type`, `payload`) around the payloads of the v1 `messages`
//! package ([`payloads`]), so a consumer written for Formance reads ours unchanged.

pub mod nats;
pub mod payloads;
pub mod pruner;
pub mod publisher;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Serialize;

/// A URL as logged and stored in errors: credentials (`nats://user:pass@host`) and the query
/// (`?token=…`), where secrets travel, are replaced by `***`; the path is kept (it is what tells
/// endpoints apart).
pub fn redact_url(url: &str) -> String {
    // A server list (`nats://a:4222,nats://b:4222`) is redacted server by server.
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rfind('@')
        .map_or(authority, |at| &authority[at + 1..]);
    let userinfo = if host.len() < authority.len() {
        "***@"
    } else {
        ""
    };
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => tail.to_string(),
    };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{userinfo}{host}{tail}")
}

/// The `app` of every envelope.
pub const APP: &str = "payments";
/// The `version` of every envelope.
pub const VERSION: &str = "v1";

/// Formance Payments v1's event types (`pkg/events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// A payment was created or one of its tracked fields changed.
    SavedPayment,
    /// An account was created or changed.
    SavedAccount,
    /// A balance got a new amount.
    SavedBalance,
    /// A connector's data was wiped by a reset.
    ConnectorReset,
    /// A transfer initiation was created or changed status.
    SavedTransferInitiation,
    /// A transfer initiation was deleted.
    DeletedTransferInitiation,
    /// A bank account was created, forwarded or its metadata changed.
    SavedBankAccount,
    /// A pool was created or its members changed.
    SavedPool,
    /// A pool was deleted.
    DeletedPool,
}

impl EventType {
    /// Every type, for validation (webhook configs name them) and documentation.
    pub const ALL: [EventType; 9] = [
        Self::SavedPayment,
        Self::SavedAccount,
        Self::SavedBalance,
        Self::ConnectorReset,
        Self::SavedTransferInitiation,
        Self::DeletedTransferInitiation,
        Self::SavedBankAccount,
        Self::SavedPool,
        Self::DeletedPool,
    ];

    /// The type as it appears in the envelope.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SavedPayment => "SAVED_PAYMENT",
            Self::SavedAccount => "SAVED_ACCOUNT",
            Self::SavedBalance => "SAVED_BALANCE",
            Self::ConnectorReset => "CONNECTOR_RESET",
            Self::SavedTransferInitiation => "SAVED_TRANSFER_INITIATION",
            Self::DeletedTransferInitiation => "DELETED_TRANSFER_INITIATION",
            Self::SavedBankAccount => "SAVED_BANK_ACCOUNT",
            Self::SavedPool => "SAVED_POOL",
            Self::DeletedPool => "DELETED_POOL",
        }
    }

    /// Parses a type as written in the envelope.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// go-libs' `publish.EventMessage`: the envelope every event is sent in.
#[derive(Debug, Serialize)]
struct Envelope<'a, P: Serialize> {
    date: DateTime<Utc>,
    app: &'static str,
    version: &'static str,
    #[serde(rename = "type")]
    event_type: EventType,
    payload: &'a P,
}

/// `payload` in the v1 envelope dated `date`: the one serialization of every event, whether
/// built when the change is written or, for a payment's, when it is read back.
pub fn envelope(event_type: EventType, date: DateTime<Utc>, payload: &impl Serialize) -> String {
    let envelope = Envelope {
        date,
        app: APP,
        version: VERSION,
        event_type,
        payload,
    };
    // Payloads are plain structs of strings, numbers and maps: serializing cannot fail.
    serde_json::to_string(&envelope).unwrap_or_default()
}

/// What the outbox row of an event holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// The serialized envelope, sent as is by every publisher.
    Envelope(String),
    /// A payment's change (`SAVED_PAYMENT`) by reference: the adjustment row the change wrote
    /// and the fields a later change could overwrite; the envelope is built when read
    /// (migration V16), so ingestion does not write the payment a second time.
    PaymentChange {
        /// The change's row in `payment_adjustments`.
        adjustment_id: i64,
        /// [`payloads::PaymentState`] as JSON.
        state: String,
    },
}

/// An event about to be appended to the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The connector it belongs to (its sequence); empty for events of no connector.
    pub connector_id: String,
    /// Its type.
    pub event_type: EventType,
    /// The envelope's `date`, in microseconds (as PostgreSQL keeps it): stored as the row's
    /// `created_at`, from which an envelope built when read takes its `date`.
    pub date: DateTime<Utc>,
    /// Its envelope, or what it is built from.
    pub stored: Stored,
}

impl NewEvent {
    /// Wraps `payload` in the v1 envelope dated `date`.
    pub fn new(
        connector_id: impl Into<String>,
        event_type: EventType,
        date: DateTime<Utc>,
        payload: &impl Serialize,
    ) -> Self {
        let date = date.trunc_subsecs(6);
        Self {
            connector_id: connector_id.into(),
            event_type,
            date,
            stored: Stored::Envelope(envelope(event_type, date, payload)),
        }
    }

    /// A payment's `SAVED_PAYMENT` dated `date`, by reference to the adjustment its change
    /// wrote.
    pub fn payment_change(
        connector_id: impl Into<String>,
        date: DateTime<Utc>,
        adjustment_id: i64,
        state: &payloads::PaymentState,
    ) -> Self {
        Self {
            connector_id: connector_id.into(),
            event_type: EventType::SavedPayment,
            date: date.trunc_subsecs(6),
            // A struct of strings and a string map: serializing cannot fail.
            stored: Stored::PaymentChange {
                adjustment_id,
                state: serde_json::to_string(state).unwrap_or_default(),
            },
        }
    }
}

tokio::task_local! {
    /// Whether the outbox is written (`events.enabled`), set by the storage actor around
    /// each batch it commits, so every command of that actor sees its own service's setting.
    static OUTBOX_ENABLED: bool;
}

/// Runs `work` (a storage batch) with the outbox on or off.
pub async fn with_outbox<F: std::future::Future>(enabled: bool, work: F) -> F::Output {
    OUTBOX_ENABLED.scope(enabled, work).await
}

/// Whether the command being applied should append its events: a command applied outside a
/// storage batch (a test applying it to its own transaction) does.
pub fn outbox_enabled() -> bool {
    OUTBOX_ENABLED.try_with(|on| *on).unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_queries_in_urls_are_never_shown() {
        assert_eq!(
            redact_url("nats://user:pa@ss@host:4222"),
            "nats://***@host:4222"
        );
        assert_eq!(
            redact_url("nats://token@host:4222/x@y"),
            "nats://***@host:4222/x@y"
        );
        assert_eq!(redact_url("nats://host:4222"), "nats://host:4222");
        assert_eq!(redact_url("host:4222"), "host:4222");
        assert_eq!(
            redact_url("https://hooks.example/in/7?token=s3cret&x=1#frag"),
            "https://hooks.example/in/7?***"
        );
        assert_eq!(
            redact_url("https://u:p@hooks.example?k=v"),
            "https://***@hooks.example?***"
        );
        assert_eq!(
            redact_url("nats://u:p@h1:4222,nats://v:q@h2:4222"),
            "nats://***@h1:4222,nats://***@h2:4222"
        );
    }

    #[test]
    fn types_round_trip_and_serialize_as_formance_names() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t).ok(),
                Some(serde_json::Value::String(t.as_str().into()))
            );
        }
        assert_eq!(EventType::parse("saved_payment"), None);
    }

    #[test]
    fn the_envelope_has_formance_fields_in_order() {
        let date = DateTime::parse_from_rfc3339("2026-11-30T01:02:03.5Z")
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or_default();
        let event = NewEvent::new(
            "c1",
            EventType::ConnectorReset,
            date,
            &payloads::ConnectorReset {
                created_at: date,
                connector_id: "c1".into(),
            },
        );
        assert_eq!(
            event.stored,
            Stored::Envelope(r#"{"date":"2026-11-30T01:02:03.500Z","app":"payments","version":"v1","type":"CONNECTOR_RESET","payload":{"createdAt":"2026-11-30T01:02:03.500Z","connectorId":"c1"}}"#.into())
        );
    }

    #[tokio::test]
    async fn the_outbox_switch_is_scoped_to_the_batch() {
        assert!(outbox_enabled());
        assert!(!with_outbox(false, async { outbox_enabled() }).await);
        assert!(with_outbox(true, async { outbox_enabled() }).await);
    }
}
