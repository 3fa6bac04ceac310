//! `POST /payments` and `POST /accounts`: payments and accounts created by hand under an
//! installed connector, as Formance Payments v1 has them. They are written by the ingestion
//! command (`storage::commands::manual::ManualIngest` wraps `IngestBatch`), from the SDK's
//! validated ingest types: the same deterministic ids, and a second create of one payment is
//! what a second ingest is (no-op if unchanged, else an update and an adjustment). Amounts are
//! read from the body's JSON text, never through a float.

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

use super::error::ApiError;
use super::extract::RawObject;
use super::pools;
use super::{AppState, Data, RouteEntry};
use crate::ids::{AccountKey, ConnectorKey, PaymentKey};
use crate::sdk::ingest::{
    AccountData, AccountType, Amount, Batch, InvalidData, PaymentData, PaymentStatus, PaymentType,
    Scheme, check_asset,
};
use crate::storage::commands::ingest::IngestBatch;
use crate::storage::commands::manual::ManualIngest;
use crate::storage::queries::{accounts, payments};

/// The manual creation routes.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::POST, "/payments", web::to(create_payment)),
        (Method::POST, "/accounts", web::to(create_account)),
    ]
}

/// Invalid ingest data is a 400 naming its field.
fn invalid(e: InvalidData) -> ApiError {
    ApiError::validation(e.to_string())
}

/// The fields of a body, read one by one so that each error names its field.
struct Fields(BTreeMap<String, Box<RawValue>>);

impl Fields {
    /// A field of type `T`, if present and not null.
    fn optional<T: DeserializeOwned>(&self, name: &str, what: &str) -> Result<Option<T>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(raw) if raw.get() == "null" => Ok(None),
            Some(raw) => serde_json::from_str(raw.get()).map(Some).map_err(|_| {
                ApiError::validation(format!("{name} must be {what}, got {}", raw.get()))
            }),
        }
    }

    /// A required field of type `T`.
    fn required<T: DeserializeOwned>(&self, name: &str, what: &str) -> Result<T, ApiError> {
        self.optional(name, what)?
            .ok_or_else(|| ApiError::validation(format!("{name} is required")))
    }

    /// A required string.
    fn string(&self, name: &str) -> Result<String, ApiError> {
        self.required(name, "a string")
    }

    /// Formance's `reference`: 3 to 1000 characters.
    fn reference(&self) -> Result<String, ApiError> {
        let reference = self.string("reference")?;
        let n = reference.chars().count();
        if !(3..=1000).contains(&n) {
            return Err(ApiError::validation(format!(
                "reference must be 3 to 1000 characters long, got {n}"
            )));
        }
        Ok(reference)
    }

    /// The connector: a well-formed id (whether it is installed is checked with the write).
    fn connector(&self) -> Result<ConnectorKey, ApiError> {
        let id = self.string("connectorID")?;
        ConnectorKey::parse(&id).map_err(|_| {
            ApiError::validation(format!("connectorID: malformed connector id {id:?}"))
        })
    }

    /// Formance's `createdAt`: RFC 3339, not in the future.
    fn created_at(&self) -> Result<DateTime<Utc>, ApiError> {
        let at: DateTime<Utc> = self.required("createdAt", "an RFC 3339 time")?;
        if at > Utc::now() {
            return Err(ApiError::validation(format!(
                "createdAt must not be in the future, got {at}"
            )));
        }
        Ok(at)
    }

    /// String metadata.
    fn metadata(&self) -> Result<BTreeMap<String, String>, ApiError> {
        Ok(self
            .optional("metadata", "an object of strings")?
            .unwrap_or_default())
    }
}

/// The reference of an account id given for a payment: it must be an account of the payment's
/// connector (the ingest path links accounts within one connector).
fn account_reference(
    fields: &Fields,
    name: &str,
    connector: &ConnectorKey,
) -> Result<Option<String>, ApiError> {
    let Some(id) = fields.optional::<String>(name, "a string")? else {
        return Ok(None);
    };
    if id.is_empty() {
        return Ok(None);
    }
    let key = AccountKey::parse(&id)
        .map_err(|_| ApiError::validation(format!("{name}: malformed account id {id:?}")))?;
    if &key.connector != connector {
        return Err(ApiError::validation(format!(
            "{name}: the account belongs to another connector than connectorID"
        )));
    }
    Ok(Some(key.reference))
}

/// Creates (or, for an existing id, updates as ingestion would) a payment under an installed
/// connector; answers the stored payment with its adjustments.
#[utoipa::path(post, path = "/api/payments/payments", tag = "payments",
    operation_id = "createPayment",
    request_body(content = Object, example = json!({"reference": "manual-1",
        "connectorID": "eyJ…", "createdAt": "2026-01-01T00:00:00Z", "type": "PAY-IN",
        "amount": 4200, "asset": "EUR/2", "scheme": "visa", "status": "SUCCEEDED"})),
    responses((status = 200, description = "The payment", body = Data<super::payments::PaymentJson>)))]
async fn create_payment(
    state: web::Data<AppState>,
    body: RawObject,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields(body.fields);
    let connector = fields.connector()?;
    let amount = match fields.0.get("amount") {
        None => return Err(ApiError::validation("amount is required")),
        // The JSON number's own text: exact at any size.
        Some(raw) => Amount::payment("amount", raw.get()).map_err(invalid)?,
    };
    let asset = fields.string("asset")?;
    check_asset("asset", &asset).map_err(invalid)?;
    let payment = PaymentData {
        reference: fields.reference()?,
        created_at: fields.created_at()?,
        payment_type: PaymentType::parse(&fields.string("type")?).map_err(invalid)?,
        status: PaymentStatus::parse(&fields.string("status")?).map_err(invalid)?,
        scheme: Scheme::parse(&fields.string("scheme")?).map_err(invalid)?,
        asset,
        amount,
        source_account: account_reference(&fields, "sourceAccountID", &connector)?,
        destination_account: account_reference(&fields, "destinationAccountID", &connector)?,
        raw: Some(String::from_utf8_lossy(&body.body).into_owned()),
        metadata: fields.metadata()?,
    };
    let id = PaymentKey {
        connector: connector.clone(),
        reference: payment.reference.clone(),
        payment_type: payment.payment_type.as_str().to_string(),
    }
    .id();
    let report = state
        .storage
        .write(ManualIngest(IngestBatch {
            connector,
            batch: Batch {
                payments: vec![payment],
                ..Batch::default()
            },
        }))
        .await?;
    tracing::info!(
        payment = %id,
        inserted = report.payments_inserted,
        updated = report.payments_updated,
        "payment created through the API"
    );
    let stored = payments::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("payment {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: super::payments::payment_json(stored),
    }))
}

/// Creates (or updates as ingestion would) an account under an installed connector.
#[utoipa::path(post, path = "/api/payments/accounts", tag = "accounts",
    operation_id = "createAccount",
    request_body(content = Object, example = json!({"reference": "acc-1", "connectorID": "eyJ…",
        "createdAt": "2026-01-01T00:00:00Z", "type": "INTERNAL", "accountName": "Main",
        "defaultAsset": "EUR/2"})),
    responses((status = 200, description = "The account", body = Data<super::accounts::AccountJson>)))]
async fn create_account(
    state: web::Data<AppState>,
    body: RawObject,
) -> Result<HttpResponse, ApiError> {
    let fields = Fields(body.fields);
    let connector = fields.connector()?;
    let default_asset = fields.optional::<String>("defaultAsset", "a string")?;
    if let Some(asset) = &default_asset {
        check_asset("defaultAsset", asset).map_err(invalid)?;
    }
    let account_name = fields.optional::<String>("accountName", "a string")?;
    if account_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 1000)
    {
        return Err(ApiError::validation(
            "accountName must be at most 1000 characters long",
        ));
    }
    let account = AccountData {
        reference: fields.reference()?,
        created_at: fields.created_at()?,
        default_asset,
        account_name,
        account_type: AccountType::parse(&fields.string("type")?).map_err(invalid)?,
        raw: Some(String::from_utf8_lossy(&body.body).into_owned()),
        metadata: fields.metadata()?,
    };
    let id = AccountKey {
        connector: connector.clone(),
        reference: account.reference.clone(),
    }
    .id();
    state
        .storage
        .write(ManualIngest(IngestBatch {
            connector,
            batch: Batch {
                accounts: vec![account],
                ..Batch::default()
            },
        }))
        .await?;
    tracing::info!(account = %id, "account created through the API");
    let stored = accounts::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let pools = pools::of_accounts(state.storage.pool(), std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(Data {
        data: super::accounts::account_json(stored, pools),
    }))
}
