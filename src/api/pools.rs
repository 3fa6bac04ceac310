//! `/pools`: named groups of accounts and their summed balances, as Formance Payments v1 has
//! them (create, list, get, delete, add and remove an account, balances at a time and latest,
//! and the query of a DYNAMIC pool). Writes go through the storage actor; reads through
//! `storage::queries::pools`. A DYNAMIC pool's query is validated when set (parsed and
//! compiled against the account list's fields, [`ACCOUNT_FIELDS`]) and evaluated at every
//! read: its members are the accounts it matches then. The differences from Formance are in
//! docs/api.md#pools.

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use std::collections::HashMap;

use super::accounts::ACCOUNT_FIELDS;
use super::error::{ApiError, ErrorCode};
use super::extract::{JsonObject, Params, kind};
use super::openapi::big_integer;
use super::pagination::{CursorResponse, PageQuery, PageRequest};
use super::payments::number;
use super::query::{self, Expr, Field, Kind, MATCH, QueryBody};
use super::{AppState, Data, RouteEntry};
use crate::ids::AccountKey;
use crate::storage::Pool;
use crate::storage::commands::pools::{
    AddPoolAccount, CreatePool, DeletePool, RemovePoolAccount, UpdatePoolQuery,
};
use crate::storage::queries::page::Condition;
use crate::storage::queries::pools::{self, Membership, PoolBalanceRow, PoolRow};

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
    /// Its member account ids: the explicit list of a STATIC pool, or the accounts a DYNAMIC
    /// pool's query matches at the time of the request.
    accounts: Vec<String>,
}

/// The compiled query of a DYNAMIC pool (None for a STATIC one). A stored query that no longer
/// compiles (it was validated when set, so only a change of the field table can do that) is a
/// 500 naming the pool rather than a silently empty pool.
fn dynamic_condition(p: &PoolRow) -> Result<Option<Condition>, ApiError> {
    if p.pool_type != "DYNAMIC" {
        return Ok(None);
    }
    let Some(stored) = &p.query else {
        return Ok(None);
    };
    compile_stored(stored).map(Some).map_err(|e| {
        tracing::error!(pool = %p.id, error = %e, "a stored pool query does not compile");
        ApiError::new(
            ErrorCode::Internal,
            format!("pool {}: its stored query does not compile: {e}", p.id),
        )
    })
}

/// Parses and compiles a pool query (a JSON object) against the account list's fields.
fn compile_stored(query: &Value) -> Result<Condition, String> {
    let expr = query::parse::parse(&query.to_string())
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "query must not be empty".to_string())?;
    query::sql::compile(&expr, ACCOUNT_FIELDS).map_err(|e| e.to_string())
}

/// A pool as the API shows it, its members resolved (a DYNAMIC pool's query is evaluated).
async fn pool_json(db: &Pool, p: PoolRow) -> Result<PoolJson, ApiError> {
    let accounts = match dynamic_condition(&p)? {
        Some(condition) => pools::members(db, &condition).await?,
        None => p.accounts,
    };
    Ok(PoolJson {
        id: p.id.to_string(),
        name: p.name,
        pool_type: p.pool_type,
        query: p.query,
        accounts,
    })
}

/// The pools each of `accounts` belongs to (the accounts' `pools` field), by account id: the
/// STATIC pools listing it, then the DYNAMIC pools whose query matches it (one statement, one
/// primary-key-bounded branch per DYNAMIC pool; see docs/api.md#pools for the cost). A stored
/// query that no longer compiles is skipped with an error log, not a failed account read.
pub(crate) async fn of_accounts(
    db: &Pool,
    accounts: &[String],
) -> Result<HashMap<String, Vec<String>>, ApiError> {
    let mut out = pools::of_accounts(db, accounts).await?;
    if accounts.is_empty() {
        return Ok(out);
    }
    let mut dynamic = Vec::new();
    for (id, stored) in pools::dynamic(db).await? {
        match compile_stored(&stored) {
            Ok(condition) => dynamic.push((id, condition)),
            Err(e) => {
                tracing::error!(pool = %id, error = %e, "a stored pool query does not compile")
            }
        }
    }
    for (account, pool) in pools::dynamic_of_accounts(db, &dynamic, accounts).await? {
        out.entry(account).or_default().push(pool.to_string());
    }
    Ok(out)
}

/// The fields the pool list's `query` allows: Formance's (`name`, `id`, with `$match`).
pub const POOL_FIELDS: &[Field] = &[
    Field::new(&["name"], "p.name", Kind::Text, MATCH),
    Field::new(&["id"], "p.id::text", Kind::Text, MATCH),
];

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

/// A pool query: a non-empty JSON object in the query language that compiles against the
/// account list's fields (else a 400 naming the field or operator, and nothing is stored).
fn query_object(value: &Value) -> Result<Value, ApiError> {
    match value {
        Value::Object(map) if !map.is_empty() => {
            compile_stored(value).map_err(ApiError::validation)?;
            Ok(value.clone())
        }
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
        // With a query the pool is DYNAMIC and Formance ignores the ids (v3 `PoolsCreate`).
        _ if query.is_some() => Vec::new(),
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
    let db = state.storage.pool();
    let pool = pools::get(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: pool_json(db, pool).await?,
    }))
}

/// The pool list's filter, kept by the cursor so later pages apply it too.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct PoolFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// The pool list's filter, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameter
pub struct PoolQuery {
    /// Formance's query language as JSON on `name` and `id` (`$match`); the request body, when
    /// not empty, takes precedence.
    #[param(example = r#"{"$match":{"name":"treasury"}}"#)]
    query: Option<String>,
}

/// Lists pools, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/pools", tag = "pools", operation_id = "listPools",
    params(PageQuery, PoolQuery),
    responses((status = 200, description = "A page of pools", body = CursorResponse<PoolJson>)))]
async fn list(
    state: web::Data<AppState>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let request = PageRequest::from_params(&params, |p| {
        Ok(PoolFilter {
            query: query::from_request(p, &body)?,
        })
    })?;
    let condition = query::condition(request.filter.query.as_ref(), POOL_FIELDS)?;
    let db = state.storage.pool();
    let rows = pools::page(db, condition.as_ref(), &request.keyset()).await?;
    // The members of the page's DYNAMIC pools, evaluated now (one statement per such pool).
    let mut members: HashMap<Uuid, Vec<String>> = HashMap::new();
    for p in &rows {
        if let Some(condition) = dynamic_condition(p)? {
            members.insert(p.id, pools::members(db, &condition).await?);
        }
    }
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |p| (p.created_at, p.id.to_string()),
        |p| PoolJson {
            id: p.id.to_string(),
            accounts: members.get(&p.id).cloned().unwrap_or(p.accounts),
            name: p.name,
            pool_type: p.pool_type,
            query: p.query,
        },
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
    let db = state.storage.pool();
    let pool = pools::get(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("pool {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: pool_json(db, pool).await?,
    }))
}

/// A pool's balances at `at` (None: latest) over its members (a DYNAMIC pool's query is
/// evaluated), or 404.
async fn pool_balances(
    db: &Pool,
    id: Uuid,
    at: Option<DateTime<Utc>>,
) -> Result<Vec<PoolBalanceRow>, ApiError> {
    let not_found = || ApiError::not_found(format!("pool {id} not found"));
    let pool = pools::get(db, id).await?.ok_or_else(not_found)?;
    let condition = dynamic_condition(&pool)?;
    let members = match &condition {
        Some(condition) => Membership::Matching(condition),
        None => Membership::Explicit,
    };
    pools::balances(db, id, at, members)
        .await?
        .ok_or_else(not_found)
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
    let rows = pool_balances(state.storage.pool(), id, Some(at)).await?;
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
    let rows = pool_balances(state.storage.pool(), id, None).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: rows.into_iter().map(balance_json).collect::<Vec<_>>(),
    }))
}

/// Adds an existing account to a STATIC pool (an unknown account is 404, as in Formance; a
/// DYNAMIC pool is a 400, as in Formance v3).
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

/// Removes an account from a STATIC pool (a non-member: nothing to do; a DYNAMIC pool: 400).
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

/// Sets a pool's query (validated against the account fields), which makes it DYNAMIC: its
/// members become the accounts the query matches (see docs/api.md#pools).
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
