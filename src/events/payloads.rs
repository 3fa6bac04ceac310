//! The payloads of Formance Payments v1's events (its `internal/messages` package), field for
//! field: names, casing (`connectorId` here, `accountID` there, as Formance spells them) and
//! `omitempty` kept, amounts as JSON numbers of any size, raw provider data embedded as is.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// A JSON value already serialized: an amount (a number of any size) or raw provider data.
pub type Raw = Box<RawValue>;

/// `text` as an embedded JSON value, `null` when absent or not JSON.
pub fn raw(text: Option<&str>) -> Raw {
    text.and_then(|t| RawValue::from_string(t.to_string()).ok())
        .unwrap_or_else(null)
}

/// An integer amount (decimal text) as a JSON number; `null` if it is not one.
pub fn number(text: &str) -> Raw {
    let is_integer = {
        let digits = text.strip_prefix('-').unwrap_or(text);
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
    };
    if is_integer { raw(Some(text)) } else { null() }
}

fn null() -> Raw {
    RawValue::from_string("null".into()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

/// go-libs' `api.Link`.
#[derive(Debug, Serialize)]
pub struct Link {
    /// `source_account` or `destination_account`.
    pub name: String,
    /// Where the linked resource is served, relative to the API's root.
    pub uri: String,
}

/// `SAVED_PAYMENT`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPayment {
    pub id: String,
    pub reference: String,
    pub created_at: DateTime<Utc>,
    pub connector_id: String,
    pub provider: String,
    #[serde(rename = "type")]
    pub payment_type: String,
    pub status: String,
    pub scheme: String,
    pub asset: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination_account_id: Option<String>,
    /// `null` without accounts, as Go's nil slice.
    pub links: Option<Vec<Link>>,
    pub raw_data: Raw,
    pub initial_amount: Raw,
    pub amount: Raw,
    pub metadata: BTreeMap<String, String>,
}

impl SavedPayment {
    /// The `links` Formance derives from the payment's accounts.
    pub fn links_for(source: Option<&str>, destination: Option<&str>) -> Option<Vec<Link>> {
        let link = |name: &str, id: &str| Link {
            name: name.into(),
            uri: format!("/api/payments/accounts/{id}"),
        };
        let links: Vec<Link> = source
            .map(|id| link("source_account", id))
            .into_iter()
            .chain(destination.map(|id| link("destination_account", id)))
            .collect();
        (!links.is_empty()).then_some(links)
    }
}

/// The fields of a `SAVED_PAYMENT` that a later change (or a metadata patch) could
/// overwrite, kept in the outbox row of a payment's event stored by reference; the rest is
/// read back from rows that never change ([`PaymentChange`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentState {
    pub scheme: String,
    pub asset: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_account_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// A payment change as its adjustment row and the payment's unchanging fields hold it.
#[derive(Debug, Clone)]
pub struct PaymentChange {
    pub payment_id: String,
    pub connector_id: String,
    pub reference: String,
    pub payment_type: String,
    pub created_at: DateTime<Utc>,
    /// Decimal text, as stored.
    pub initial_amount: String,
    /// The status the change set.
    pub status: String,
    /// The amount the change set, decimal text.
    pub amount: String,
    /// The provider's raw data of the change, JSON text.
    pub raw: Option<String>,
}

impl SavedPayment {
    /// The payload of `change`, with the fields `state` kept as they were at the change.
    pub fn of_change(change: PaymentChange, state: PaymentState) -> Self {
        // Every stored connector id decodes; the provider is part of it.
        let provider = crate::ids::ConnectorKey::parse(&change.connector_id)
            .map(|key| key.provider)
            .unwrap_or_default();
        let links = Self::links_for(
            state.source_account_id.as_deref(),
            state.destination_account_id.as_deref(),
        );
        Self {
            id: change.payment_id,
            reference: change.reference,
            created_at: change.created_at,
            connector_id: change.connector_id,
            provider,
            payment_type: change.payment_type,
            status: change.status,
            scheme: state.scheme,
            asset: state.asset,
            source_account_id: state.source_account_id,
            destination_account_id: state.destination_account_id,
            links,
            raw_data: raw(change.raw.as_deref()),
            initial_amount: number(&change.initial_amount),
            amount: number(&change.amount),
            metadata: state.metadata,
        }
    }
}

/// `SAVED_ACCOUNT`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedAccount {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub reference: String,
    pub connector_id: String,
    pub provider: String,
    /// `""` when the account has none, as Go's zero value.
    pub default_asset: String,
    pub account_name: String,
    #[serde(rename = "type")]
    pub account_type: String,
    pub raw_data: Raw,
}

/// `SAVED_BALANCE`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedBalance {
    #[serde(rename = "accountID")]
    pub account_id: String,
    pub connector_id: String,
    pub provider: String,
    pub created_at: DateTime<Utc>,
    pub asset: String,
    pub balance: Raw,
}

/// `CONNECTOR_RESET`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectorReset {
    pub created_at: DateTime<Utc>,
    pub connector_id: String,
}

/// One related payment of a `SAVED_TRANSFER_INITIATION`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferInitiationPayment {
    pub transfer_initiation_id: String,
    pub payment_id: String,
    pub created_at: DateTime<Utc>,
    pub status: String,
    pub error: String,
}

/// `SAVED_TRANSFER_INITIATION`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedTransferInitiation {
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// Go's zero time (`0001-01-01T00:00:00Z`) when not scheduled, as Formance sends it.
    pub scheduled_at: DateTime<Utc>,
    pub connector_id: String,
    pub provider: String,
    pub description: String,
    #[serde(rename = "type")]
    pub initiation_type: String,
    pub source_account_id: String,
    pub destination_account_id: String,
    pub amount: Raw,
    pub asset: String,
    /// How many status changes it went through (Formance: `len(RelatedAdjustments)`).
    pub attempts: i64,
    pub status: String,
    pub error: String,
    pub related_payments: Vec<TransferInitiationPayment>,
}

/// `DELETED_TRANSFER_INITIATION` and `DELETED_POOL`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Deleted {
    pub created_at: DateTime<Utc>,
    pub id: String,
}

/// One related account of a `SAVED_BANK_ACCOUNT`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BankAccountRelatedAccount {
    pub id: String,
    pub created_at: DateTime<Utc>,
    #[serde(rename = "accountID")]
    pub account_id: String,
    #[serde(rename = "connectorID")]
    pub connector_id: String,
    pub provider: String,
}

/// `SAVED_BANK_ACCOUNT`: numbers masked as the API shows them, never in clear.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedBankAccount {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub name: String,
    pub account_number: String,
    pub iban: String,
    pub swift_bic_code: String,
    pub country: String,
    /// Formance names the related accounts `adjustments` here; `null` when there are none.
    #[serde(rename = "adjustments")]
    pub related_accounts: Option<Vec<BankAccountRelatedAccount>>,
}

/// `SAVED_POOL`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPool {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    #[serde(rename = "accountIDs")]
    pub account_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_numbers_of_any_size_and_junk_is_null() {
        let big = "123456789012345678901234567890";
        assert_eq!(number(big).get(), big);
        assert_eq!(number("-5").get(), "-5");
        assert_eq!(number("1e3").get(), "null");
        assert_eq!(number("").get(), "null");
        assert_eq!(raw(Some("{\"a\":1}")).get(), "{\"a\":1}");
        assert_eq!(raw(Some("not json")).get(), "null");
        assert_eq!(raw(None).get(), "null");
    }

    #[test]
    fn payment_links_and_omitted_accounts_follow_formance() {
        let payment = SavedPayment {
            id: "p".into(),
            reference: "r".into(),
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            connector_id: "c".into(),
            provider: "DUMMY-PAY".into(),
            payment_type: "PAY-IN".into(),
            status: "SUCCEEDED".into(),
            scheme: "OTHER".into(),
            asset: "EUR/2".into(),
            source_account_id: None,
            destination_account_id: Some("d".into()),
            links: SavedPayment::links_for(None, Some("d")),
            raw_data: raw(None),
            initial_amount: number("10"),
            amount: number("10"),
            metadata: BTreeMap::new(),
        };
        let json = serde_json::to_value(&payment).unwrap_or_default();
        assert!(json.get("sourceAccountId").is_none(), "{json}");
        assert_eq!(json["destinationAccountId"], "d");
        assert_eq!(json["links"][0]["name"], "destination_account");
        assert_eq!(json["links"][0]["uri"], "/api/payments/accounts/d");
        assert_eq!(json["amount"], 10);
        assert!(json["rawData"].is_null());
        let none = SavedPayment::links_for(None, None);
        assert!(none.is_none());
    }
}
