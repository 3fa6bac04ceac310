//! `/payments`: the list (filters, sort, cursor), one payment with its adjustments, and
//! merging metadata. Amounts are JSON integers of any size, written from PostgreSQL's exact
//! decimal text.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::ApiError;
use super::extract::{JsonObject, Params, kind};
use super::pagination::PageRequest;
use super::{AppState, Data};
use crate::ids::PaymentKey;
use crate::storage::commands::payments::PatchPaymentMetadata;
use crate::storage::queries::payments::{self, AdjustmentRow, PaymentFilter, PaymentRow};

/// Registers the payment routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/payments", web::get().to(list))
        .route("/payments/{payment_id}", web::get().to(get))
        .route(
            "/payments/{payment_id}/metadata",
            web::patch().to(patch_metadata),
        );
}

/// An exact integer from PostgreSQL's text, as a JSON number.
pub fn number(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| null())
}

/// JSON text from PostgreSQL (`jsonb::text`), passed through untouched so that big numbers
/// in a provider's raw object stay exact.
pub fn raw_json(text: Option<String>) -> Box<RawValue> {
    text.and_then(|t| RawValue::from_string(t).ok())
        .unwrap_or_else(null)
}

fn null() -> Box<RawValue> {
    // `null` is valid JSON; the fallback is never taken.
    RawValue::from_string("null".into()).unwrap_or_else(|_| Box::<RawValue>::default())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AdjustmentJson {
    reference: String,
    created_at: DateTime<Utc>,
    status: String,
    amount: Box<RawValue>,
    raw: Box<RawValue>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PaymentJson {
    id: String,
    reference: String,
    #[serde(rename = "connectorID")]
    connector_id: String,
    provider: String,
    #[serde(rename = "type")]
    payment_type: String,
    status: String,
    scheme: String,
    asset: String,
    amount: Box<RawValue>,
    initial_amount: Box<RawValue>,
    #[serde(rename = "sourceAccountID")]
    source_account_id: String,
    #[serde(rename = "destinationAccountID")]
    destination_account_id: String,
    created_at: DateTime<Utc>,
    raw: Box<RawValue>,
    metadata: Option<Value>,
    adjustments: Vec<AdjustmentJson>,
}

fn payment_json(p: PaymentRow) -> PaymentJson {
    PaymentJson {
        id: p.id,
        reference: p.reference,
        connector_id: p.connector_id,
        provider: p.provider,
        payment_type: p.payment_type,
        status: p.status,
        scheme: p.scheme,
        asset: p.asset,
        amount: number(p.amount),
        initial_amount: number(p.initial_amount),
        source_account_id: p.source_account_id.unwrap_or_default(),
        destination_account_id: p.destination_account_id.unwrap_or_default(),
        created_at: p.created_at,
        raw: raw_json(p.raw),
        metadata: p.metadata,
        adjustments: p
            .adjustments
            .into_iter()
            .map(|a: AdjustmentRow| AdjustmentJson {
                reference: a.reference,
                created_at: a.created_at,
                status: a.status,
                amount: number(a.amount),
                raw: raw_json(a.raw),
            })
            .collect(),
    }
}

/// The payment list's filters, carried in the cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payment_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
}

async fn list(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let request = PageRequest::from_params(&params, |p| {
        Ok(Filter {
            connector_id: p.get("connectorID").map(str::to_string),
            status: p.get("status").map(str::to_string),
            payment_type: p.get("type").map(str::to_string),
            asset: p.get("asset").map(str::to_string),
            reference: p.get("reference").map(str::to_string),
        })
    })?;
    let f = &request.filter;
    let filter = PaymentFilter {
        connector_id: f.connector_id.clone(),
        status: f.status.clone(),
        payment_type: f.payment_type.clone(),
        asset: f.asset.clone(),
        reference: f.reference.clone(),
    };
    let rows = payments::page(state.storage.pool(), &filter, &request.keyset()).await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |p| (p.created_at, p.id.clone()),
        payment_json,
    )))
}

async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    PaymentKey::parse(&id)?;
    let payment = payments::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("payment {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: payment_json(payment),
    }))
}

async fn patch_metadata(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    PaymentKey::parse(&id)?;
    if let Some((key, value)) = body.0.iter().find(|(_, v)| !v.is_string()) {
        return Err(ApiError::validation(format!(
            "metadata values must be strings: {key:?} is {}",
            kind(value)
        )));
    }
    state
        .storage
        .write(PatchPaymentMetadata {
            id,
            metadata: Value::Object(body.0),
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
