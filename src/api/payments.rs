//! `/payments`: the list (filters, sort, cursor), one payment with its adjustments, and
//! merging metadata. Amounts are JSON integers of any size, written from PostgreSQL's exact
//! decimal text.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::{JsonObject, Params, kind};
use super::openapi::big_integer;
use super::pagination::{CursorResponse, PageQuery, PageRequest, SortColumn};
use super::query::{self, Expr, Field, Kind, MATCH, MATCH_EXISTS, ORDERED, QueryBody};
use super::{AppState, Data, RouteEntry};
use crate::ids::PaymentKey;
use crate::storage::commands::metadata::{MetadataOwner, PatchMetadata};
use crate::storage::queries::payments::{self, AdjustmentRow, PaymentFilter, PaymentRow};

/// The payment routes.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::GET, "/payments", web::to(list)),
        (Method::GET, "/payments/{paymentID}", web::to(get)),
        (
            Method::PATCH,
            "/payments/{paymentID}/metadata",
            web::to(patch_metadata),
        ),
    ]
}

/// An exact integer from PostgreSQL's text, as a JSON number.
pub fn number(text: String) -> Box<RawValue> {
    RawValue::from_string(text).unwrap_or_else(|_| null())
}

/// JSON text from PostgreSQL (`json` columns), passed through untouched so that big numbers
/// in a provider's raw object stay exact.
pub fn raw_json(text: Option<String>) -> Box<RawValue> {
    text.and_then(|t| RawValue::from_string(t).ok())
        .unwrap_or_else(null)
}

fn null() -> Box<RawValue> {
    // `null` is valid JSON; the fallback is never taken.
    RawValue::from_string("null".into()).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// One change of a payment (its history).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdjustmentJson {
    /// The payment's reference.
    reference: String,
    /// When the change was ingested.
    created_at: DateTime<Utc>,
    /// The status after the change.
    #[schema(example = "SUCCEEDED")]
    status: String,
    /// The amount after the change, in minor units.
    #[schema(schema_with = big_integer)]
    amount: Box<RawValue>,
    /// The provider's object that brought the change.
    #[schema(value_type = Value)]
    raw: Box<RawValue>,
}

/// A payment as Formance shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentJson {
    /// Derived from the connector id, reference and type.
    id: String,
    /// The provider's reference.
    reference: String,
    /// Its connector.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Its provider.
    #[schema(example = "DUMMY-PAY")]
    provider: String,
    /// PAY-IN, PAYOUT, TRANSFER or OTHER.
    #[serde(rename = "type")]
    #[schema(example = "PAY-IN")]
    payment_type: String,
    /// PENDING, SUCCEEDED, CANCELLED, FAILED, EXPIRED, REFUNDED, REFUNDED_FAILURE, DISPUTE,
    /// DISPUTE_WON, DISPUTE_LOST or OTHER.
    #[schema(example = "SUCCEEDED")]
    status: String,
    /// The payment scheme (`visa`, `sepa credit`, …).
    #[schema(example = "visa")]
    scheme: String,
    /// `CUR/precision`.
    #[schema(example = "EUR/2")]
    asset: String,
    /// The current amount, in minor units.
    #[schema(schema_with = big_integer)]
    amount: Box<RawValue>,
    /// The amount first ingested.
    #[schema(schema_with = big_integer)]
    initial_amount: Box<RawValue>,
    /// Empty when none.
    #[serde(rename = "sourceAccountID")]
    source_account_id: String,
    /// Empty when none.
    #[serde(rename = "destinationAccountID")]
    destination_account_id: String,
    /// When the provider created it.
    created_at: DateTime<Utc>,
    /// The provider's object as first ingested.
    #[schema(value_type = Value)]
    raw: Box<RawValue>,
    /// String metadata.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Value>,
    /// Its history, oldest first.
    adjustments: Vec<AdjustmentJson>,
}

/// A stored payment as the API shows it.
pub(crate) fn payment_json(p: PaymentRow) -> PaymentJson {
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

/// The fields the payment list's `query` allows: Formance v1's (`$match` on the text columns,
/// every comparison on the amounts, `metadata[key]`), plus `id`, the timestamps and
/// `$exists` on the nullable account columns.
pub const PAYMENT_FIELDS: &[Field] = &[
    Field::new(&["id"], "p.id", Kind::Text, MATCH),
    Field::new(&["reference"], "p.reference", Kind::Text, MATCH),
    Field::new(
        &["connector_id", "connectorID"],
        "p.connector_id",
        Kind::Text,
        MATCH,
    ),
    Field::new(&["type"], "p.type", Kind::Text, MATCH),
    Field::new(&["status"], "p.status", Kind::Text, MATCH),
    Field::new(&["scheme"], "p.scheme", Kind::Text, MATCH),
    Field::new(&["asset"], "p.asset", Kind::Text, MATCH),
    Field::new(
        &["source_account_id", "sourceAccountID"],
        "p.source_account_id",
        Kind::NullableText,
        MATCH_EXISTS,
    ),
    Field::new(
        &["destination_account_id", "destinationAccountID"],
        "p.destination_account_id",
        Kind::NullableText,
        MATCH_EXISTS,
    ),
    Field::new(&["amount"], "p.amount", Kind::Amount, ORDERED),
    Field::new(
        &["initial_amount", "initialAmount"],
        "p.initial_amount",
        Kind::Amount,
        ORDERED,
    ),
    Field::new(
        &["created_at", "createdAt"],
        "p.created_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["updated_at", "updatedAt"],
        "p.updated_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(&["metadata"], "p.metadata", Kind::Metadata, MATCH_EXISTS),
];

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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// The payment list's filters, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct PaymentQuery {
    /// Only this connector's payments.
    #[param(rename = "connectorID")]
    connector_id: Option<String>,
    /// Only payments with this status.
    #[param(example = "SUCCEEDED")]
    status: Option<String>,
    /// Only payments of this type.
    #[param(rename = "type", example = "PAY-IN")]
    payment_type: Option<String>,
    /// Only payments in this asset.
    #[param(example = "EUR/2")]
    asset: Option<String>,
    /// Only the payments with this reference.
    reference: Option<String>,
    /// Formance's query language as JSON (the request body, when not empty, takes precedence).
    #[param(example = r#"{"$and":[{"$match":{"status":"SUCCEEDED"}},{"$gte":{"amount":100}}]}"#)]
    query: Option<String>,
}

/// Lists payments, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/payments", tag = "payments",
    operation_id = "listPayments", params(PageQuery, PaymentQuery),
    responses((status = 200, description = "A page of payments",
        body = CursorResponse<PaymentJson>)))]
async fn list(
    state: web::Data<AppState>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let sortable = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
    let request = PageRequest::from_params_sorted(&params, &sortable, |p| {
        Ok(Filter {
            query: query::from_request(p, &body)?,
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
        condition: query::condition(f.query.as_ref(), PAYMENT_FIELDS)?,
    };
    let rows = payments::page(state.storage.pool(), &filter, &request.keyset()).await?;
    let sort = request.sort;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |p| (sort.pick(p.created_at, p.updated_at), p.id.clone()),
        payment_json,
    )))
}

/// One payment, with its adjustments.
#[utoipa::path(get, path = "/api/payments/payments/{paymentID}", tag = "payments",
    operation_id = "getPayment", responses((status = 200, description = "The payment", body = Data<PaymentJson>)))]
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

/// Merges string metadata into a payment's.
#[utoipa::path(patch, path = "/api/payments/payments/{paymentID}/metadata", tag = "payments",
    operation_id = "updateMetadata", request_body(content = BTreeMap<String, String>, example = json!({"order": "42"})),
    responses((status = 204, description = "Merged")))]
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
        .write(PatchMetadata {
            owner: MetadataOwner::Payment(id),
            metadata: Value::Object(body.0),
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
