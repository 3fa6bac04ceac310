//! `/accounts`: the list, one account, and an account's balance history.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};

use super::error::ApiError;
use super::extract::Params;
use super::openapi::big_integer;
use super::pagination::{CursorResponse, PageQuery, PageRequest, SortColumn};
use super::payments::{number, raw_json};
use super::pools;
use super::query::{self, Expr, Field, Kind, MATCH, MATCH_EXISTS, ORDERED, Op, QueryBody};
use super::{AppState, Data, RouteEntry};
use crate::ids::AccountKey;
use crate::storage::queries::accounts::{self, AccountRow, BalanceFilter, BalanceRow};

/// The account routes.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::GET, "/accounts", web::to(list)),
        (Method::GET, "/accounts/{accountID}", web::to(get)),
        (
            Method::GET,
            "/accounts/{accountID}/balances",
            web::to(balances),
        ),
    ]
}

/// An account as Formance shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountJson {
    /// Derived from the connector id and reference.
    id: String,
    /// The provider's reference.
    reference: String,
    /// Its connector.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Its provider.
    #[schema(example = "DUMMY-PAY")]
    provider: String,
    /// When the provider created it.
    created_at: DateTime<Utc>,
    /// `CUR/precision`, empty when unknown.
    #[schema(example = "EUR/2")]
    default_asset: String,
    /// The same as `defaultAsset` (deprecated).
    #[schema(example = "EUR/2")]
    default_currency: String,
    /// Empty when none.
    account_name: String,
    /// INTERNAL, EXTERNAL or UNKNOWN.
    #[serde(rename = "type")]
    #[schema(example = "INTERNAL")]
    account_type: String,
    /// String metadata.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Value>,
    /// The provider's object as ingested.
    #[schema(value_type = Value)]
    raw: Box<RawValue>,
    /// The ids of the pools it belongs to.
    pools: Vec<String>,
}

/// A stored account, with the ids of its pools, as the API shows it.
pub(crate) fn account_json(a: AccountRow, pools: Vec<String>) -> AccountJson {
    let asset = a.default_asset.unwrap_or_default();
    AccountJson {
        id: a.id,
        reference: a.reference,
        connector_id: a.connector_id,
        provider: a.provider,
        created_at: a.created_at,
        default_currency: asset.clone(),
        default_asset: asset,
        account_name: a.account_name.unwrap_or_default(),
        account_type: a.account_type,
        metadata: a.metadata,
        raw: raw_json(a.raw),
        pools,
    }
}

/// One balance of an account over a time span (history).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceJson {
    /// The account.
    account_id: String,
    /// `CUR/precision`.
    #[schema(example = "EUR/2")]
    asset: String,
    /// The same as `asset` (deprecated).
    #[schema(example = "EUR/2")]
    currency: String,
    /// In minor units; may be negative.
    #[schema(schema_with = big_integer)]
    balance: Box<RawValue>,
    /// Since when the account held it.
    created_at: DateTime<Utc>,
    /// When it was last seen unchanged.
    last_updated_at: DateTime<Utc>,
}

/// The account list's filter, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameter
pub struct AccountQuery {
    /// Only this connector's accounts.
    #[param(rename = "connectorID")]
    connector_id: Option<String>,
    /// Formance's query language as JSON (the request body, when not empty, takes precedence).
    #[param(example = r#"{"$match":{"metadata[team]":"ops"}}"#)]
    query: Option<String>,
}

/// The balance history's filters, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct BalanceQuery {
    /// Only balances in this asset.
    #[param(example = "EUR/2")]
    asset: Option<String>,
    /// Only balances held at or after this time.
    from: Option<DateTime<Utc>>,
    /// Only balances held before this time.
    to: Option<DateTime<Utc>>,
    /// At most this many rows per page (the smaller of it and `pageSize`); 0 adds no limit
    /// (`pageSize` still applies).
    limit: Option<i64>,
    /// Formance's query language as JSON (an extension here; see docs/api.md).
    query: Option<String>,
}

fn balance_json(b: BalanceRow) -> BalanceJson {
    BalanceJson {
        account_id: b.account_id,
        currency: b.asset.clone(),
        asset: b.asset,
        balance: number(b.balance),
        created_at: b.created_at,
        last_updated_at: b.last_updated_at,
    }
}

/// The fields the account list's `query` allows: Formance v1's (every comparison on the text
/// columns, `metadata[key]`), plus the timestamps.
pub const ACCOUNT_FIELDS: &[Field] = &[
    Field::new(&["id"], "a.id", Kind::Text, ORDERED),
    Field::new(&["reference"], "a.reference", Kind::Text, ORDERED),
    Field::new(
        &["connector_id", "connectorID"],
        "a.connector_id",
        Kind::Text,
        ORDERED,
    ),
    Field::new(&["type"], "a.type", Kind::Text, ORDERED),
    Field::new(
        &["default_asset", "defaultAsset"],
        "a.default_asset",
        Kind::NullableText,
        &[Op::Match, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::Exists],
    ),
    Field::new(
        &["name", "account_name", "accountName"],
        "a.account_name",
        Kind::NullableText,
        &[Op::Match, Op::Lt, Op::Lte, Op::Gt, Op::Gte, Op::Exists],
    ),
    Field::new(
        &["created_at", "createdAt"],
        "a.created_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["updated_at", "updatedAt"],
        "a.updated_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(&["metadata"], "a.metadata", Kind::Metadata, MATCH_EXISTS),
];

/// The fields the balance list's `query` allows (an extension: Formance's balances take
/// `asset`, `from`, `to` and `limit` parameters only).
pub const BALANCE_FIELDS: &[Field] = &[
    Field::new(&["asset", "currency"], "b.asset", Kind::Text, MATCH),
    Field::new(&["balance"], "b.balance", Kind::Amount, ORDERED),
    Field::new(
        &["created_at", "createdAt"],
        "b.created_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["last_updated_at", "lastUpdatedAt"],
        "b.last_updated_at",
        Kind::Time,
        ORDERED,
    ),
];

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AccountFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// Lists accounts, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/accounts", tag = "accounts",
    operation_id = "listAccounts", params(PageQuery, AccountQuery),
    responses((status = 200, description = "A page of accounts",
        body = CursorResponse<AccountJson>)))]
async fn list(
    state: web::Data<AppState>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let sortable = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
    let request = PageRequest::from_params_sorted(&params, &sortable, |p| {
        Ok(AccountFilter {
            connector_id: p.get("connectorID").map(str::to_string),
            query: query::from_request(p, &body)?,
        })
    })?;
    let condition = query::condition(request.filter.query.as_ref(), ACCOUNT_FIELDS)?;
    let rows = accounts::page(
        state.storage.pool(),
        request.filter.connector_id.as_deref(),
        condition.as_ref(),
        &request.keyset(),
    )
    .await?;
    let ids: Vec<String> = rows.iter().map(|a| a.id.clone()).collect();
    let memberships = pools::of_accounts(state.storage.pool(), &ids).await?;
    let sort = request.sort;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |a| (sort.pick(a.created_at, a.updated_at), a.id.clone()),
        |a| {
            let pools = memberships.get(&a.id).cloned().unwrap_or_default();
            account_json(a, pools)
        },
    )))
}

/// One account.
#[utoipa::path(get, path = "/api/payments/accounts/{accountID}", tag = "accounts",
    operation_id = "getAccount", responses((status = 200, description = "The account", body = Data<AccountJson>)))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    AccountKey::parse(&id)?;
    let account = accounts::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let pools = pools::of_accounts(state.storage.pool(), std::slice::from_ref(&id))
        .await?
        .remove(&id)
        .unwrap_or_default();
    Ok(HttpResponse::Ok().json(Data {
        data: account_json(account, pools),
    }))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct BalanceParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    asset: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// An account's balance history, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/accounts/{accountID}/balances", tag = "accounts",
    operation_id = "getAccountBalances", params(PageQuery, BalanceQuery),
    responses((status = 200, description = "A page of balances",
        body = CursorResponse<BalanceJson>)))]
async fn balances(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    AccountKey::parse(&id)?;
    let mut request = PageRequest::from_params(&params, |p| {
        Ok(BalanceParams {
            asset: p.get("asset").map(str::to_string),
            from: p.time("from")?,
            to: p.time("to")?,
            query: query::from_request(p, &body)?,
        })
    })?;
    // Formance's `limit`: at most that many rows per page (the smaller of it and pageSize).
    if let Some(limit) = params.get("limit") {
        let limit = limit.parse::<u32>().map_err(|_| {
            ApiError::validation(format!(
                "limit must be a non-negative integer, not {limit:?}"
            ))
        })?;
        if limit > 0 {
            request.page_size = request.page_size.min(i64::from(limit));
        }
    }
    accounts::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let f = &request.filter;
    let filter = BalanceFilter {
        asset: f.asset.clone(),
        from: f.from,
        to: f.to,
        condition: query::condition(f.query.as_ref(), BALANCE_FIELDS)?,
    };
    let rows = accounts::balances(state.storage.pool(), &id, &filter, &request.keyset()).await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |b| (b.created_at, b.asset.clone()),
        balance_json,
    )))
}
