//! `/pools`: named groups of accounts and their summed balances, as Formance Payments v1 has
//! them (create, list, get, delete, add and remove an account, balances at a time and latest,
//! and the query of a DYNAMIC pool). Writes go through the storage actor; reads through
//! `storage::queries::pools`. The differences from Formance are in docs/api.md#pools.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonObject, Params, kind};
use super::openapi::big_integer;
use super::pagination::{CursorResponse, PageQuery, PageRequest};
use super::payments::number;
use super::{AppState, Data, RouteEntry};
use crate::ids::AccountKey;
use crate::storage::commands::pools::{
    AddPoolAccount, CreatePool, DeletePool, RemovePoolAccount, UpdatePoolQuery,
};
use crate::storage::queries::pools::{self, PoolBalanceRow, PoolRow};

/// The pool routes (literal segments before parameters).
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::POST, "/pools", web::to(create)),
        (Method::GET, "/pools", web::to(list)),
        (Method::GET, "/pools/{poolID}", web::to(get)),
        (Method::DELETE, "/pools/{poolID}", web::to(delete)),
        (
            Method::GET,
            "/pools/{poolID}/balances/latest",
            web::to(balances_latest),
        ),
        (
            Method::GET,
            "/pools/{poolID}/balances",
            web::to(balances_at),
        ),
        (
            Method::POST,
            "/pools/{poolID}/accounts",
            web::to(add_account),
        ),
        (
            Method::DELETE,
            "/pools/{poolID}/accounts/{accountID}",
            web::to(remove_account),
        ),
        (
            Method::PATCH,
            "/pools/{poolID}/query",
            web::to(update_query),
        ),
    ]
}

/// A pool as Formance shows it.
#[derive(Serialize, ToSchema)]
pub struct PoolJson {
    /// A random UUID.
    id: String,
    /// Its name.
    name: String,
    /// STATIC (an account list) or DYNAMIC (a query was set).
    #[serde(rename = "type")]
    #[schema(example = "STATIC")]
    pool_type: String,
    /// The query of a DYNAMIC pool; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    query: Option<Value>,
    /// Its member account ids.
    accounts: Vec<String>,
}

fn pool_json(p: PoolRow) -> PoolJson {
    PoolJson {
        id: p.id.to_string(),
        name: p.name,
        pool_type: p.pool_type,
        query: p.query,
        accounts: p.accounts,
    }
}

/// One asset of a pool's balances.
#[derive(Serialize, ToSchema)]
pub struct PoolBalanceJson {
    /// The exact sum over the pool's accounts, in minor units (may be negative).
    #[schema(schema_with = big_integer)]
    amount: Box<RawValue>,
    /// `CUR/precision`.
    #[schema(example = "EUR/2")]
    asset: String,
}

/// A pool's balances at a time, in Formance's `{"balances": [...]}` wrapper.
#[derive(Serialize, ToSchema)]
pub struct PoolBalancesJson {
    /// One per asset held by at least one member.
    balances: Vec<PoolBalanceJson>,
}

fn balance_json(b: PoolBalanceRow) -> PoolBalanceJson {
    PoolBalanceJson {
        amount: number(b.amount),
        asset: b.asset,
    }
}

/// The pool id of a path: a UUID, else 400 naming it.
fn pool_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::validation(format!("poolID must be a UUID, not {text:?}")))
}

/// An account id from a request, checked to decode as one (else 400 naming `field`).
fn account_id(field: &str, value: Option<&Value>) -> Result<String, ApiError> {
    match value {
        Some(Value::String(id)) if !id.is_empty() => {
            AccountKey::parse(id).map_err(|_| {
                ApiError::validation(format!("{field}: malformed account id {id:?}"))
            })?;
            Ok(id.clone())
        }
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(ApiError::validation(format!("{field} is required")))
        }
        Some(other) => Err(ApiError::validation(format!(
            "{field} must be a string, not {}",
            kind(other)
        ))),
    }
}

/// A pool query: a non-empty JSON object.
fn query_object(value: &Value) -> Result<Value, ApiError> {
    match value {
        Value::Object(map) if !map.is_empty() => Ok(value.clone()),
        Value::Object(_) => Err(ApiError::validation("query must not be empty")),
        other => Err(ApiError::validation(format!(
            "query must be an object, not {}",
            kind(other)
        ))),
    }
}

/// Creates a pool from a name and its account ids (every account must exist: an unknown one
/// is 404, as in Formance), or from a query (a DYNAMIC pool).
#[utoipa::path(post, path = "/api/payments/pools", tag = "pools", operation_id = "createPool",
    request_body(content = Object, example = json!({"name": "treasury", "accountIDs": ["eyJ…"]})),
    responses((status = 200, description = "The pool", body = Data<PoolJson>)))]
async fn create(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    let name = match body.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ApiError::validation("name is required"));
        }
        Some(other) => {
            return Err(ApiError::validation(format!(
                "name must be a string, not {}",
                kind(other)
            )));
        }
    };
    let query = match body.get("query") {
        None | Some(Value::Null) => None,
        Some(q) => Some(query_object(q)?),
    };
    let accounts = match body.get("accountIDs") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => {
            let mut accounts = Vec::with_capacity(ids.len());
            for (i, id) in ids.iter().enumerate() {
                let id = account_id(&format!("accountIDs[{i}]"), Some(id))?;
                if !accounts.contains(&id) {
                    accounts.push(id);
                }
            }
            accounts
        }
        Some(other) => {
            return Err(ApiError::validation(format!(
                "accountIDs must be an array, not {}",
                kind(other)
            )));
        }
    };
    if query.is_none() && accounts.is_empty() {
        // Formance: `required_without=Query` on accountIDs.
        return Err(ApiError::validation(
            "accountIDs is required (or a query, for a DYNAMIC pool)",
        ));
    }
    let id = Uuid::new_v4();
    state
        .storage
        .write(CreatePool {
            id,
            name,
            accounts,
            query,
        })
        .await?;
    tracing::info!(pool = %id, "pool created");
    let pool = pools::get(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: pool_json(pool),
    }))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NoFilter {}

/// Lists pools, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/pools", tag = "pools", operation_id = "listPools",
    params(PageQuery),
    responses((status = 200, description = "A page of pools", body = CursorResponse<PoolJson>)))]
async fn list(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let request = PageRequest::from_params(&params, |_| Ok(NoFilter {}))?;
    let rows = pools::page(state.storage.pool(), &request.keyset()).await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |p| (p.created_at, p.id.to_string()),
        pool_json,
    )))
}

/// One pool with its accounts.
#[utoipa::path(get, path = "/api/payments/pools/{poolID}", tag = "pools", operation_id = "getPool",
    responses((status = 200, description = "The pool", body = Data<PoolJson>)))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = pool_id(&path.into_inner())?;
    let pool = pools::get(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: pool_json(pool),
    }))
}

/// Deletes a pool (never its accounts).
#[utoipa::path(delete, path = "/api/payments/pools/{poolID}", tag = "pools",
    operation_id = "deletePool", responses((status = 204, description = "Deleted")))]
async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = pool_id(&path.into_inner())?;
    if !state.storage.write(DeletePool { id }).await? {
        return Err(ApiError::not_found(format!("pool {id} not found")));
    }
    tracing::info!(pool = %id, "pool deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// The time of the balances: required, RFC 3339.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameter
pub struct AtQuery {
    /// The instant the balances are read at (RFC 3339).
    at: DateTime<Utc>,
}

/// A pool's balances at a time: per asset, the exact sum of what each member held then.
#[utoipa::path(get, path = "/api/payments/pools/{poolID}/balances", tag = "pools",
    operation_id = "getPoolBalances", params(AtQuery),
    responses((status = 200, description = "The balances", body = Data<PoolBalancesJson>)))]
async fn balances_at(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let id = pool_id(&path.into_inner())?;
    let at = params
        .time("at")?
        .ok_or_else(|| ApiError::validation("at is required (an RFC 3339 time)"))?;
    let rows = pools::balances(state.storage.pool(), id, Some(at))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: PoolBalancesJson {
            balances: rows.into_iter().map(balance_json).collect(),
        },
    }))
}

/// A pool's latest balances: per asset, the exact sum of each member's latest balance.
#[utoipa::path(get, path = "/api/payments/pools/{poolID}/balances/latest", tag = "pools",
    operation_id = "getPoolBalancesLatest",
    responses((status = 200, description = "The balances", body = Data<Vec<PoolBalanceJson>>)))]
async fn balances_latest(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = pool_id(&path.into_inner())?;
    let rows = pools::balances(state.storage.pool(), id, None)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: rows.into_iter().map(balance_json).collect::<Vec<_>>(),
    }))
}

/// Adds an existing account to a pool (an unknown account is 404, as in Formance).
#[utoipa::path(post, path = "/api/payments/pools/{poolID}/accounts", tag = "pools",
    operation_id = "addAccountToPool",
    request_body(content = Object, example = json!({"accountID": "eyJ…"})),
    responses((status = 204, description = "Added")))]
async fn add_account(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let pool = pool_id(&path.into_inner())?;
    let account = account_id("accountID", body.0.get("accountID"))?;
    state
        .storage
        .write(AddPoolAccount { pool, account })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Removes an account from a pool (a non-member: nothing to do).
#[utoipa::path(delete, path = "/api/payments/pools/{poolID}/accounts/{accountID}", tag = "pools",
    operation_id = "removeAccountFromPool", responses((status = 204, description = "Removed")))]
async fn remove_account(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (pool, account) = path.into_inner();
    let pool = pool_id(&pool)?;
    AccountKey::parse(&account)?;
    state
        .storage
        .write(RemovePoolAccount { pool, account })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sets a pool's query, which makes it DYNAMIC (see docs/api.md#pools for what it does here).
#[utoipa::path(patch, path = "/api/payments/pools/{poolID}/query", tag = "pools",
    operation_id = "updatePoolQuery",
    request_body(content = Object, example = json!({"query": {"$match": {"connectorID": "eyJ…"}}})),
    responses((status = 204, description = "Updated")))]
async fn update_query(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let pool = pool_id(&path.into_inner())?;
    let query = match body.0.get("query") {
        None | Some(Value::Null) => return Err(ApiError::validation("query is required")),
        Some(q) => query_object(q)?,
    };
    state.storage.write(UpdatePoolQuery { pool, query }).await?;
    Ok(HttpResponse::NoContent().finish())
}
