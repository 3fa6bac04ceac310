//! Formance's deterministic ids: base64url (no padding) of canonical JSON with sorted keys.
//! Deterministic ids make ingestion idempotent without a read, and keep Formance clients, which
//! treat ids as opaque strings, working unchanged.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Why an id from a request could not be decoded.
#[derive(Debug, thiserror::Error)]
#[error("malformed {kind} id {id:?}")]
pub struct InvalidId {
    /// What kind of id was expected ("connector", "payment" …).
    pub kind: &'static str,
    /// The id as given.
    pub id: String,
}

/// A connector's identity: its provider and a random reference chosen at install.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectorKey {
    /// Formance's field order (and sorted order): Provider, Reference.
    #[serde(rename = "Provider")]
    pub provider: String,
    /// A UUID, fixed for the connector's life (reset keeps it).
    #[serde(rename = "Reference")]
    pub reference: Uuid,
}

impl ConnectorKey {
    /// The id Formance clients see as `connectorID`.
    pub fn id(&self) -> String {
        encode(self)
    }

    /// Decodes a `connectorID`.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        decode(id).ok_or_else(|| InvalidId {
            kind: "connector",
            id: id.to_string(),
        })
    }
}

/// A payment's identity: its connector, reference and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentKey {
    /// The connector that ingested it.
    #[serde(rename = "ConnectorID")]
    pub connector: ConnectorKey,
    /// The provider's reference.
    #[serde(rename = "Reference")]
    pub reference: String,
    /// PAY-IN, PAYOUT, TRANSFER or OTHER.
    #[serde(rename = "Type")]
    pub payment_type: String,
}

impl PaymentKey {
    /// The id Formance clients see.
    pub fn id(&self) -> String {
        encode(self)
    }

    /// Decodes a payment id.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        decode(id).ok_or_else(|| InvalidId {
            kind: "payment",
            id: id.to_string(),
        })
    }
}

/// An account's identity: its connector and reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountKey {
    /// The connector that ingested it.
    #[serde(rename = "ConnectorID")]
    pub connector: ConnectorKey,
    /// The provider's reference.
    #[serde(rename = "Reference")]
    pub reference: String,
}

impl AccountKey {
    /// The id Formance clients see.
    pub fn id(&self) -> String {
        encode(self)
    }

    /// Decodes an account id.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        decode(id).ok_or_else(|| InvalidId {
            kind: "account",
            id: id.to_string(),
        })
    }
}

/// A transfer initiation's (or a reversal's) identity: its connector and the client's
/// reference, as Formance's `TransferInitiationID` / `TransferReversalID`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferKey {
    /// The connector that sends it.
    #[serde(rename = "ConnectorID")]
    pub connector: ConnectorKey,
    /// The client's reference.
    #[serde(rename = "Reference")]
    pub reference: String,
}

impl TransferKey {
    /// The id Formance clients see.
    pub fn id(&self) -> String {
        encode(self)
    }

    /// Decodes a transfer initiation id.
    pub fn parse(id: &str) -> Result<Self, InvalidId> {
        decode(id).ok_or_else(|| InvalidId {
            kind: "transfer initiation",
            id: id.to_string(),
        })
    }
}

/// Encodes a value as Formance does: canonical JSON, then base64url without padding.
pub fn encode<T: Serialize>(value: &T) -> String {
    // serde_json::Value sorts object keys (no `preserve_order`), which makes the JSON canonical.
    let canonical = serde_json::to_value(value)
        .and_then(|v| serde_json::to_vec(&v))
        .unwrap_or_default();
    URL_SAFE_NO_PAD.encode(canonical)
}

fn decode<T: for<'de> Deserialize<'de>>(id: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(id.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Canonical JSON of any serde value (sorted keys), used to identify task descriptors.
pub fn canonical_json(value: &serde_json::Value) -> String {
    // Value's map is a BTreeMap here, so to_string is already sorted and compact.
    value.to_string()
}

/// The namespace of task ids (UUID v5).
const TASK_NAMESPACE: Uuid = Uuid::from_u128(0x6a1f_3c0e_8d2b_4f4e_9b7a_2c5d_1e0f_7a31);

/// A task's id: UUID v5 of its connector id and canonical descriptor, so scheduling the same
/// descriptor again finds the same task without a read.
pub fn task_id(connector_id: &str, descriptor_key: &str) -> Uuid {
    Uuid::new_v5(
        &TASK_NAMESPACE,
        format!("{connector_id}\n{descriptor_key}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connector_id_round_trips_and_matches_formance_form() {
        let key = ConnectorKey {
            provider: "DUMMY-PAY".into(),
            reference: Uuid::nil(),
        };
        let id = key.id();
        let json = URL_SAFE_NO_PAD.decode(&id).unwrap();
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"Provider":"DUMMY-PAY","Reference":"00000000-0000-0000-0000-000000000000"}"#
        );
        assert_eq!(ConnectorKey::parse(&id).unwrap(), key);
        assert!(ConnectorKey::parse("not-an-id").is_err());
    }
}
