//! Money out: the capability of a connector that can send money (a TRANSFER between its own
//! accounts, or a PAYOUT to an external one) and reverse what it sent. Mirrors Formance v1's
//! `InitiatePayment`, `ReversePayment` and `SupportedCurrenciesAndDecimals`, with one change:
//! the connector returns the payment it created instead of ingesting it itself, so that the
//! runtime records the payment, its link to the initiation and the new status in one
//! transaction.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ingest::{Amount, PaymentData};
use crate::{TaskContext, TaskError};

/// What a transfer initiation asks for (Formance's `TransferInitiationType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InitiationType {
    /// Between two accounts of the connector (the destination is INTERNAL).
    Transfer,
    /// To an external account (the destination is EXTERNAL).
    Payout,
}

impl InitiationType {
    /// Formance's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            InitiationType::Transfer => "TRANSFER",
            InitiationType::Payout => "PAYOUT",
        }
    }

    /// Parses Formance's spelling.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "TRANSFER" => Some(InitiationType::Transfer),
            "PAYOUT" => Some(InitiationType::Payout),
            _ => None,
        }
    }
}

/// One attempt at sending a transfer initiation, as the connector sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentInitiation {
    /// Formance's transfer initiation id.
    pub id: String,
    /// The client's reference: the connector uses it as the payment's reference.
    pub reference: String,
    /// TRANSFER or PAYOUT.
    pub initiation_type: InitiationType,
    /// The amount, in minor units.
    pub amount: Amount,
    /// `CUR/precision`.
    pub asset: String,
    /// The provider's reference of the source account, if one was given.
    pub source_account: Option<String>,
    /// The provider's reference of the destination account.
    pub destination_account: String,
    /// The client's description.
    pub description: String,
    /// The client's metadata.
    pub metadata: BTreeMap<String, String>,
    /// When the initiation was created.
    pub created_at: DateTime<Utc>,
    /// Which attempt this is (1 for the first send, +1 per retry).
    pub attempt: u32,
    /// Stable across retries and resumes of this attempt, different for the next attempt:
    /// hand it to the PSP (or check it yourself) so that one attempt is never sent twice.
    pub idempotency_key: String,
}

/// A reversal of (part of) a processed transfer initiation.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentReversal {
    /// Formance's reversal id.
    pub id: String,
    /// The client's reference of the reversal.
    pub reference: String,
    /// The initiation being reversed (its current amount is what is left to reverse).
    pub initiation: PaymentInitiation,
    /// The payment the initiation created, if the runtime knows it.
    pub payment_reference: Option<String>,
    /// How much to reverse, in minor units.
    pub amount: Amount,
    /// `CUR/precision` (the initiation's).
    pub asset: String,
    /// The client's description.
    pub description: String,
    /// The client's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Stable across retries and resumes of this reversal.
    pub idempotency_key: String,
}

/// What sending an initiation produced.
#[derive(Debug, Clone, PartialEq)]
pub struct InitiationOutcome {
    /// The payment the provider created: ingested and linked to the initiation.
    pub payment: PaymentData,
}

/// What reversing produced.
#[derive(Debug, Clone, PartialEq)]
pub struct ReversalOutcome {
    /// The payment as it stands after the reversal (e.g. with a REFUNDED status), ingested as
    /// an adjustment of the payment, if the connector reports one.
    pub payment: Option<PaymentData>,
}

/// A connector that can send money. Reached through [`crate::Connector::money_out`]. The
/// runtime calls `initiate_payment` and `reverse_payment` only from a task of the connector
/// (`on_interrupt = FAIL`); `supported_currencies` is also read when a send is asked for.
#[async_trait]
pub trait MoneyOut: Send + Sync {
    /// The currencies the connector can send, with their number of decimals (`"EUR" → 2`).
    /// An initiation whose asset is outside them fails before the connector is called.
    fn supported_currencies(&self) -> BTreeMap<String, u32>;

    /// Sends one attempt of an initiation. Return [`TaskError::Retryable`] for a transient
    /// failure (the same attempt runs again, with the same idempotency key); any other error
    /// fails the initiation with its message.
    async fn initiate_payment(
        &self,
        ctx: &TaskContext,
        initiation: &PaymentInitiation,
    ) -> Result<InitiationOutcome, TaskError>;

    /// Reverses (part of) a processed initiation. Errors as for
    /// [`MoneyOut::initiate_payment`].
    async fn reverse_payment(
        &self,
        ctx: &TaskContext,
        reversal: &PaymentReversal,
    ) -> Result<ReversalOutcome, TaskError>;
}

/// Why an asset cannot be sent by a connector (Formance's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnsupportedAsset {
    /// The currency is not among the connector's.
    #[error("currency {0} not supported")]
    Currency(String),
    /// The currency is, with other decimals.
    #[error("currency {currency} has precision {given}, but {required} is required")]
    Precision {
        /// The currency.
        currency: String,
        /// The asset's precision.
        given: u32,
        /// The connector's.
        required: u32,
    },
    /// The asset is not `CUR/precision` nor a bare code.
    #[error("malformed asset {0:?}")]
    Malformed(String),
}

/// Checks `asset` (`EUR/2`, or a bare `JPY` meaning 0 decimals) against a connector's
/// supported currencies, as Formance's `validateAssets` does.
pub fn check_supported(
    supported: &BTreeMap<String, u32>,
    asset: &str,
) -> Result<(), UnsupportedAsset> {
    let (currency, precision) = match asset.split_once('/') {
        Some((c, p)) => (
            c,
            p.parse::<u32>()
                .map_err(|_| UnsupportedAsset::Malformed(asset.to_string()))?,
        ),
        None => (asset, 0),
    };
    let required = supported
        .get(currency)
        .ok_or_else(|| UnsupportedAsset::Currency(currency.to_string()))?;
    if *required != precision {
        return Err(UnsupportedAsset::Precision {
            currency: currency.to_string(),
            given: precision,
            required: *required,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_are_checked_as_formance_does() {
        let supported = BTreeMap::from([("EUR".to_string(), 2), ("JPY".to_string(), 0)]);
        assert_eq!(check_supported(&supported, "EUR/2"), Ok(()));
        assert_eq!(check_supported(&supported, "JPY"), Ok(()));
        assert_eq!(
            check_supported(&supported, "USD/2").map_err(|e| e.to_string()),
            Err("currency USD not supported".to_string())
        );
        assert_eq!(
            check_supported(&supported, "EUR/3").map_err(|e| e.to_string()),
            Err("currency EUR has precision 3, but 2 is required".to_string())
        );
        assert!(matches!(
            check_supported(&supported, "EUR/x"),
            Err(UnsupportedAsset::Malformed(_))
        ));
    }
}
