//! What a connector ingests: payments, accounts and balances, validated here so that nothing
//! malformed reaches the database. Amounts are exact integers kept as decimal text; they are
//! never floats.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The most digits a payment amount may have (0 ≤ amount < 10^100).
pub const MAX_AMOUNT_DIGITS: usize = 100;

/// An exact integer amount in minor units, as canonical decimal text (no leading zeros).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Amount(String);

/// Why a value cannot be ingested; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidData {
    /// The offending field.
    pub field: String,
    /// What is wrong.
    pub problem: String,
}

impl InvalidData {
    /// An error on `field`.
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl Amount {
    /// Parses a payment amount: a non-negative integer of at most 100 digits.
    pub fn payment(field: &str, text: &str) -> Result<Self, InvalidData> {
        let amount = Self::parse(field, text)?;
        if amount.0.starts_with('-') {
            return Err(InvalidData::new(
                field,
                format!("must not be negative, got {text}"),
            ));
        }
        if amount.0.len() > MAX_AMOUNT_DIGITS {
            return Err(InvalidData::new(
                field,
                format!(
                    "must be below 10^{MAX_AMOUNT_DIGITS}, got {} digits",
                    amount.0.len()
                ),
            ));
        }
        Ok(amount)
    }

    /// Parses a balance: an integer (negative allowed) of at most 100 digits.
    pub fn balance(field: &str, text: &str) -> Result<Self, InvalidData> {
        let amount = Self::parse(field, text)?;
        if amount.0.trim_start_matches('-').len() > MAX_AMOUNT_DIGITS {
            return Err(InvalidData::new(field, "has more than 100 digits"));
        }
        Ok(amount)
    }

    fn parse(field: &str, text: &str) -> Result<Self, InvalidData> {
        let text = text.trim();
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidData::new(
                field,
                format!("must be an integer in minor units, got {text}"),
            ));
        }
        let digits = digits.trim_start_matches('0');
        let digits = if digits.is_empty() { "0" } else { digits };
        let canonical = if negative && digits != "0" {
            format!("-{digits}")
        } else {
            digits.to_string()
        };
        Ok(Amount(canonical))
    }

    /// The decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an asset of the form `CUR/precision` (e.g. `EUR/2`), or a bare code (`JPY`).
pub fn check_asset(field: &str, asset: &str) -> Result<(), InvalidData> {
    let (code, precision) = match asset.split_once('/') {
        Some((c, p)) => (c, Some(p)),
        None => (asset, None),
    };
    let code_ok = !code.is_empty()
        && code.len() <= 16
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    let precision_ok = precision.is_none_or(|p| p.parse::<u8>().is_ok_and(|p| p <= 38));
    if code_ok && precision_ok {
        Ok(())
    } else {
        Err(InvalidData::new(
            field,
            format!("must be an asset such as \"EUR/2\", got {asset:?}"),
        ))
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident, $field:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(
                #[doc = $text]
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// The name stored and shown by the API.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses the name (exact spelling), naming the field and the accepted values.
            pub fn parse(text: &str) -> Result<Self, InvalidData> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(InvalidData::new(
                        $field,
                        format!(
                            "unknown value {other:?} (expected one of {})",
                            [$($text),+].join(", ")
                        ),
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// A payment's type.
    PaymentType, "type", {
        PayIn => "PAY-IN",
        Payout => "PAYOUT",
        Transfer => "TRANSFER",
        Other => "OTHER",
    }
);

string_enum!(
    /// A payment's status.
    PaymentStatus, "status", {
        Pending => "PENDING",
        Succeeded => "SUCCEEDED",
        Cancelled => "CANCELLED",
        Failed => "FAILED",
        Expired => "EXPIRED",
        Refunded => "REFUNDED",
        RefundedFailure => "REFUNDED_FAILURE",
        Dispute => "DISPUTE",
        DisputeWon => "DISPUTE_WON",
        DisputeLost => "DISPUTE_LOST",
        Other => "OTHER",
    }
);

string_enum!(
    /// A payment's scheme.
    Scheme, "scheme", {
        Visa => "visa",
        Mastercard => "mastercard",
        Amex => "amex",
        Diners => "diners",
        Discover => "discover",
        Jcb => "jcb",
        Unionpay => "unionpay",
        Alipay => "alipay",
        Cup => "cup",
        Maestro => "maestro",
        Doku => "doku",
        Dragonpay => "dragonpay",
        Molpay => "molpay",
        SepaDebit => "sepa debit",
        SepaCredit => "sepa credit",
        Sepa => "sepa",
        ApplePay => "apple pay",
        GooglePay => "google pay",
        A2a => "a2a",
        AchDebit => "ach debit",
        Ach => "ach",
        Rtp => "rtp",
        Unknown => "unknown",
        Other => "other",
    }
);

string_enum!(
    /// An account's type.
    AccountType, "type", {
        Internal => "INTERNAL",
        External => "EXTERNAL",
        Unknown => "UNKNOWN",
    }
);

/// A payment as a connector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct PaymentData {
    /// The provider's reference (with the type, it identifies the payment).
    pub reference: String,
    /// When the provider created it.
    pub created_at: DateTime<Utc>,
    /// The type.
    pub payment_type: PaymentType,
    /// The status.
    pub status: PaymentStatus,
    /// The scheme.
    pub scheme: Scheme,
    /// `CUR/precision`.
    pub asset: String,
    /// The amount.
    pub amount: Amount,
    /// The reference of the source account, if any.
    pub source_account: Option<String>,
    /// The reference of the destination account, if any.
    pub destination_account: Option<String>,
    /// The provider's object, as JSON text (stored as given, so big numbers stay exact).
    pub raw: Option<String>,
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
}

/// An account as a connector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountData {
    /// The provider's reference.
    pub reference: String,
    /// When the provider created it.
    pub created_at: DateTime<Utc>,
    /// `CUR/precision`.
    pub default_asset: Option<String>,
    /// Its name.
    pub account_name: Option<String>,
    /// The type.
    pub account_type: AccountType,
    /// The provider's object, as JSON text.
    pub raw: Option<String>,
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
}

/// A balance as a connector reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct BalanceData {
    /// The account's reference.
    pub account_reference: String,
    /// `CUR/precision`.
    pub asset: String,
    /// The balance (may be negative).
    pub balance: Amount,
    /// When it was observed.
    pub at: DateTime<Utc>,
}

/// What one ingest call writes, in one transaction with the task's new state. Rows count in
/// order, as if ingested one by one: a payment listed twice keeps the history of both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Accounts (each inserted before any balance, so balances can refer to them).
    pub accounts: Vec<AccountData>,
    /// Payments.
    pub payments: Vec<PaymentData>,
    /// Balances.
    pub balances: Vec<BalanceData>,
    /// Entries of the connector's key-value store written in the same transaction (e.g. the
    /// record that a file was ingested).
    pub store: Vec<(String, serde_json::Value)>,
    /// Links from bank accounts to accounts (Formance's related accounts), written after
    /// every account of the batch; a link that exists already is left as it is.
    pub bank_account_links: Vec<BankAccountLink>,
}

/// Links an account of the connector (by reference) to a bank account it was created for
/// ([`crate::ExternalBankAccounts`]). A link to a bank account that does not exist fails the
/// ingest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankAccountLink {
    /// The bank account's id ([`crate::BankAccount::id`]).
    pub bank_account_id: uuid::Uuid,
    /// The reference of the account (in this batch or ingested before).
    pub account_reference: String,
}

/// What an ingest changed, counted as if its rows were ingested one after the other (a
/// payment inserted then changed twice in one batch is one insert and two updates).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestReport {
    /// Payments inserted.
    pub payments_inserted: u64,
    /// Changes of a payment's tracked fields (one per adjustment after the first).
    pub payments_updated: u64,
    /// Account inserts and changes.
    pub accounts_written: u64,
    /// Balance history rows added, or replaced by another amount at the same instant.
    pub balances_added: u64,
}
