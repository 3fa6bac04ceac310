//! `/accounts`: the list, one account, and an account's balance history.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::ApiError;
use super::extract::Params;
use super::pagination::PageRequest;
use super::payments::{number, raw_json};
use super::{AppState, Data};
use crate::ids::AccountKey;
use crate::storage::queries::accounts::{self, AccountRow, BalanceFilter, BalanceRow};

/// Registers the account routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/accounts", web::get().to(list))
        .route("/accounts/{account_id}", web::get().to(get))
        .route("/accounts/{account_id}/balances", web::get().to(balances));
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountJson {
    id: String,
    reference: String,
    #[serde(rename = "connectorID")]
    connector_id: String,
    provider: String,
    created_at: DateTime<Utc>,
    default_asset: String,
    default_currency: String,
    account_name: String,
    #[serde(rename = "type")]
    account_type: String,
    metadata: Option<Value>,
    raw: Box<RawValue>,
    pools: Vec<Value>,
}

fn account_json(a: AccountRow) -> AccountJson {
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
        pools: Vec::new(),
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BalanceJson {
    account_id: String,
    asset: String,
    currency: String,
    balance: Box<RawValue>,
    created_at: DateTime<Utc>,
    last_updated_at: DateTime<Utc>,
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct AccountFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector_id: Option<String>,
}

async fn list(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let request = PageRequest::from_params(&params, |p| {
        Ok(AccountFilter {
            connector_id: p.get("connectorID").map(str::to_string),
        })
    })?;
    let rows = accounts::page(
        state.storage.pool(),
        request.filter.connector_id.as_deref(),
        &request.keyset(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |a| (a.created_at, a.id.clone()),
        account_json,
    )))
}

async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    AccountKey::parse(&id)?;
    let account = accounts::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: account_json(account),
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
}

async fn balances(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    AccountKey::parse(&id)?;
    let request = PageRequest::from_params(&params, |p| {
        Ok(BalanceParams {
            asset: p.get("asset").map(str::to_string),
            from: p.time("from")?,
            to: p.time("to")?,
        })
    })?;
    accounts::get(state.storage.pool(), &id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("account {id} not found")))?;
    let f = &request.filter;
    let filter = BalanceFilter {
        asset: f.asset.clone(),
        from: f.from,
        to: f.to,
    };
    let rows = accounts::balances(state.storage.pool(), &id, &filter, &request.keyset()).await?;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |b| (b.created_at, b.asset.clone()),
        balance_json,
    )))
}
