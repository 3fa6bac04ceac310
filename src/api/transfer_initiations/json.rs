//! The wire shapes of transfer initiations (formance-sdk-python's `TransferInitiation`,
//! `TransferInitiationRequest`, `ReverseTransferInitiationRequest`, `TransferRequest`…) and
//! the parsing of request bodies. Amounts are read from the body's text and written from
//! PostgreSQL's numeric text: never through a float.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::api::error::ApiError;
use crate::api::openapi::big_integer;
use crate::api::payments::number;
use crate::sdk::ingest::Amount;
use crate::storage::queries::transfers::InitiationRow;

/// Parses a JSON body of type `T` (its amounts kept as raw text).
pub fn body<T: for<'de> Deserialize<'de>>(bytes: &[u8], limit: usize) -> Result<T, ApiError> {
    if bytes.len() > limit {
        return Err(ApiError::new(
            crate::api::error::ErrorCode::BodyTooLarge,
            format!("the body is larger than {limit} bytes"),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_body("a JSON object body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_body(format!("the body: {e}")))
}

/// A positive exact integer amount from the body's JSON text.
pub fn amount(field: &str, raw: &RawValue) -> Result<Amount, ApiError> {
    let text = raw.get();
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::validation(format!(
            "{field}: must be a positive integer in minor units, got {text}"
        )));
    }
    let amount = Amount::payment(field, text).map_err(|e| ApiError::validation(e.to_string()))?;
    if amount.as_str() == "0" {
        return Err(ApiError::validation(format!("{field}: must be positive")));
    }
    Ok(amount)
}

/// String metadata from the body (null or absent: none).
pub fn metadata(value: Option<Value>) -> Result<Option<Value>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some((key, _)) = map.iter().find(|(_, v)| !v.is_string()) {
                return Err(ApiError::validation(format!(
                    "metadata: values must be strings, {key:?} is not"
                )));
            }
            Ok(Some(Value::Object(map)))
        }
        Some(_) => Err(ApiError::validation(
            "metadata: must be an object of strings",
        )),
    }
}

/// `POST /transfer-initiations`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    /// The client's reference (unique per connector).
    pub reference: String,
    /// When to send it (a future time schedules it).
    pub scheduled_at: Option<DateTime<Utc>>,
    /// A description.
    #[serde(default)]
    pub description: String,
    /// The source account id (optional).
    #[serde(rename = "sourceAccountID", default)]
    pub source_account_id: Option<String>,
    /// The destination account id.
    #[serde(rename = "destinationAccountID")]
    pub destination_account_id: String,
    /// The connector (or `provider` when it has exactly one).
    #[serde(rename = "connectorID", default)]
    pub connector_id: Option<String>,
    /// A provider with exactly one connector (Formance's fallback).
    #[serde(default)]
    pub provider: Option<String>,
    /// TRANSFER or PAYOUT.
    #[serde(rename = "type")]
    pub initiation_type: String,
    /// Minor units, an exact integer.
    #[schema(value_type = i64)]
    pub amount: Box<RawValue>,
    /// `CUR/precision`.
    pub asset: String,
    /// true: sent at once; false: waits for `POST /status`.
    #[serde(default)]
    pub validated: bool,
    /// String metadata.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `POST /transfer-initiations/{transferId}/status`.
#[derive(Deserialize, ToSchema)]
pub struct StatusRequest {
    /// VALIDATED or REJECTED.
    pub status: String,
}

/// `POST /transfer-initiations/{transferId}/reverse`.
#[derive(Deserialize, ToSchema)]
pub struct ReverseRequest {
    /// The reversal's reference (unique per connector).
    pub reference: String,
    /// A description.
    #[serde(default)]
    pub description: String,
    /// How much to reverse (at most what is left).
    #[schema(value_type = i64)]
    pub amount: Box<RawValue>,
    /// The initiation's asset.
    pub asset: String,
    /// String metadata.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    #[serde(default)]
    pub metadata: Option<Value>,
}

/// `POST /connectors/{connector}/transfers` (the older transfer route).
#[derive(Deserialize, ToSchema)]
pub struct TransferRequest {
    /// Minor units.
    #[schema(value_type = i64)]
    pub amount: Box<RawValue>,
    /// `CUR/precision`.
    pub asset: String,
    /// The provider's reference of the destination account.
    pub destination: String,
    /// The provider's reference of the source account.
    #[serde(default)]
    pub source: Option<String>,
}

/// The answer of `POST /connectors/{connector}/transfers`.
#[derive(Serialize, ToSchema)]
pub struct TransferResponse {
    /// The transfer initiation created for it.
    pub id: String,
}

/// One status change of an initiation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjustmentJson {
    /// Its id.
    #[serde(rename = "adjustmentID")]
    adjustment_id: String,
    /// When.
    created_at: DateTime<Utc>,
    /// The status it took.
    #[schema(example = "PROCESSED")]
    status: String,
    /// The error that came with it ("" when none).
    error: String,
    /// Metadata.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Value>,
}

/// A payment the connector reported for an initiation.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedPaymentJson {
    /// The payment's id.
    #[serde(rename = "paymentID")]
    payment_id: String,
    /// When it was linked.
    created_at: DateTime<Utc>,
    /// The payment's current status.
    #[schema(example = "SUCCEEDED")]
    status: String,
    /// An error ("" when none).
    error: String,
}

/// A transfer initiation as Formance shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InitiationJson {
    id: String,
    reference: String,
    created_at: DateTime<Utc>,
    scheduled_at: DateTime<Utc>,
    description: String,
    /// "" when none.
    #[serde(rename = "sourceAccountID")]
    source_account_id: String,
    #[serde(rename = "destinationAccountID")]
    destination_account_id: String,
    #[serde(rename = "connectorID")]
    connector_id: String,
    #[schema(example = "DUMMY-PAY")]
    provider: String,
    /// TRANSFER or PAYOUT.
    #[serde(rename = "type")]
    initiation_type: String,
    /// What is left after reversals.
    #[schema(schema_with = big_integer)]
    amount: Box<RawValue>,
    /// What was asked.
    #[schema(schema_with = big_integer)]
    initial_amount: Box<RawValue>,
    asset: String,
    #[schema(example = "PROCESSED")]
    status: String,
    /// The last failure ("" when none).
    error: String,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Value>,
    /// The status history, newest first.
    related_adjustments: Vec<AdjustmentJson>,
    /// The payments the connector reported.
    related_payments: Vec<RelatedPaymentJson>,
}

/// The JSON of a stored initiation.
pub fn initiation_json(row: InitiationRow) -> InitiationJson {
    InitiationJson {
        id: row.id,
        reference: row.reference,
        created_at: row.created_at,
        scheduled_at: row.scheduled_at,
        description: row.description,
        source_account_id: row.source_account_id.unwrap_or_default(),
        destination_account_id: row.destination_account_id,
        connector_id: row.connector_id,
        provider: row.provider,
        initiation_type: row.initiation_type,
        amount: number(row.amount),
        initial_amount: number(row.initial_amount),
        asset: row.asset,
        status: row.status,
        error: row.error.unwrap_or_default(),
        metadata: row.metadata,
        related_adjustments: row
            .adjustments
            .into_iter()
            .map(|a| AdjustmentJson {
                adjustment_id: a.id.to_string(),
                created_at: a.created_at,
                status: a.status,
                error: a.error.unwrap_or_default(),
                metadata: a.metadata,
            })
            .collect(),
        related_payments: row
            .payments
            .into_iter()
            .map(|p| RelatedPaymentJson {
                payment_id: p.payment_id,
                created_at: p.created_at,
                status: p.status,
                error: p.error.unwrap_or_default(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_positive_integers() {
        let raw = |t: &str| RawValue::from_string(t.to_string()).expect("raw");
        let big = "123456789012345678901234567890";
        assert_eq!(amount("amount", &raw(big)).expect("ok").as_str(), big);
        for bad in ["1.5", "-3", "0", "1e3", "\"12\""] {
            let e = amount("amount", &raw(bad)).expect_err(bad);
            assert!(e.message.starts_with("amount"), "{}", e.message);
        }
    }
}
