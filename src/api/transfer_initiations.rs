//! `/transfer-initiations` and `POST /connectors/{connector}/transfers`: money out through
//! connectors (Formance Payments v1). Create (validated → sent at once), list, get with its
//! history and related payments, approve/reject, retry, reverse, delete. The state machine is
//! [`crate::money_out::machine`]; [`send`] schedules the connector's task; [`json`] holds the
//! wire shapes.

pub mod json;
pub mod send;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::Params;
use super::pagination::{CursorResponse, PageQuery, PageRequest, SortColumn};
use super::query::{self, Expr, Field, Kind, MATCH, MATCH_EXISTS, ORDERED, QueryBody};
use super::{AppState, Data, RouteEntry};
use crate::ids::{AccountKey, ConnectorKey, TransferKey};
use crate::money_out::machine::{Event, Status};
use crate::sdk::InitiationType;
use crate::sdk::ingest::check_asset;
use crate::storage::commands::transfers::{CreateInitiation, NewReversal, With};
use crate::storage::queries::transfers::{self as stored, InitiationFilter, InitiationRow};
use crate::storage::queries::{self, accounts::AccountRow};
use json::{
    CreateRequest, InitiationJson, ReverseRequest, StatusRequest, TransferRequest,
    TransferResponse, initiation_json,
};

/// The routes. `POST /connectors/{provider}/transfers` is listed before the connector
/// routes' `/connectors/{provider}/{connectorID}` so that it is matched first.
pub fn routes() -> Vec<RouteEntry> {
    use Method as M;
    vec![
        (
            M::POST,
            "/connectors/{provider}/transfers",
            web::to(connectors_transfer),
        ),
        (M::GET, "/transfer-initiations", web::to(list)),
        (M::POST, "/transfer-initiations", web::to(create)),
        (M::GET, "/transfer-initiations/{transferId}", web::to(get)),
        (
            M::DELETE,
            "/transfer-initiations/{transferId}",
            web::to(delete),
        ),
        (
            M::POST,
            "/transfer-initiations/{transferId}/status",
            web::to(update_status),
        ),
        (
            M::POST,
            "/transfer-initiations/{transferId}/retry",
            web::to(retry),
        ),
        (
            M::POST,
            "/transfer-initiations/{transferId}/reverse",
            web::to(reverse),
        ),
    ]
}

async fn read(state: &AppState, id: &str) -> Result<InitiationRow, ApiError> {
    TransferKey::parse(id)?;
    stored::get(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("transfer initiation {id} not found")))
}

/// The connector a create names: `connectorID`, or the only one of `provider`.
async fn connector_of(state: &AppState, req: &CreateRequest) -> Result<String, ApiError> {
    match (&req.connector_id, &req.provider) {
        (Some(id), _) if !id.is_empty() => {
            ConnectorKey::parse(id)?;
            let row = queries::connectors::get(state.storage.pool(), id)
                .await?
                .ok_or_else(|| {
                    ApiError::validation(format!("connectorID: connector {id} is not installed"))
                })?;
            Ok(row.id)
        }
        (_, Some(provider)) if !provider.is_empty() => {
            Ok(super::connectors::resolve(state, provider, None).await?.id)
        }
        _ => Err(ApiError::validation(
            "connectorID: is required (or provider, when it has one connector)",
        )),
    }
}

async fn account(
    state: &AppState,
    field: &str,
    id: &str,
    connector_id: &str,
) -> Result<AccountRow, ApiError> {
    AccountKey::parse(id).map_err(|e| ApiError::validation(format!("{field}: {e}")))?;
    let row = queries::accounts::get(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::validation(format!("{field}: account {id} not found")))?;
    if row.connector_id != connector_id {
        return Err(ApiError::validation(format!(
            "{field}: account {id} belongs to another connector"
        )));
    }
    Ok(row)
}

/// Validates a create and stores it (WAITING_FOR_VALIDATION); answers the new row.
async fn store(
    state: &AppState,
    req: CreateRequest,
    connector_id: String,
    check_accounts: bool,
) -> Result<InitiationRow, ApiError> {
    if req.reference.trim().is_empty() {
        return Err(ApiError::validation("reference: is required"));
    }
    let kind = InitiationType::parse(&req.initiation_type).ok_or_else(|| {
        ApiError::validation(format!(
            "type: must be TRANSFER or PAYOUT, got {:?}",
            req.initiation_type
        ))
    })?;
    let amount = json::amount("amount", &req.amount)?;
    check_asset("asset", &req.asset).map_err(|e| ApiError::validation(e.to_string()))?;
    let metadata = json::metadata(req.metadata)?;
    let source = req.source_account_id.filter(|s| !s.is_empty());
    if check_accounts {
        if let Some(source) = &source {
            account(state, "sourceAccountID", source, &connector_id).await?;
        }
        let destination = account(
            state,
            "destinationAccountID",
            &req.destination_account_id,
            &connector_id,
        )
        .await?;
        match (kind, destination.account_type.as_str()) {
            (InitiationType::Transfer, "INTERNAL") | (InitiationType::Payout, "EXTERNAL") => {}
            (InitiationType::Transfer, _) => {
                return Err(ApiError::validation(
                    "destinationAccountID: destination account must be internal when doing a transfer",
                ));
            }
            (InitiationType::Payout, _) => {
                return Err(ApiError::validation(
                    "destinationAccountID: destination account must be external when doing a payout",
                ));
            }
        }
    }
    send::capable(state, &connector_id).await?;
    let connector = ConnectorKey::parse(&connector_id)?;
    let id = TransferKey {
        connector,
        reference: req.reference.clone(),
    }
    .id();
    let now = Utc::now();
    state
        .storage
        .write(CreateInitiation {
            id: id.clone(),
            connector_id,
            reference: req.reference,
            initiation_type: kind.as_str().to_string(),
            amount: amount.as_str().to_string(),
            asset: req.asset,
            source_account_id: source,
            destination_account_id: req.destination_account_id,
            description: req.description,
            metadata,
            scheduled_at: req.scheduled_at.unwrap_or(now),
            created_at: now,
        })
        .await?;
    read(state, &id).await
}

/// Creates a transfer initiation; with `validated: true` it is sent at once (the answer
/// waits for the outcome unless `scheduledAt` is in the future).
#[utoipa::path(post, path = "/api/payments/transfer-initiations", tag = "transfer-initiations",
    operation_id = "createTransferInitiation", request_body = CreateRequest,
    responses((status = 200, description = "Created", body = Data<InitiationJson>)))]
async fn create(state: web::Data<AppState>, body: web::Bytes) -> Result<HttpResponse, ApiError> {
    let req: CreateRequest = json::body(&body, state.max_body_bytes)?;
    let validated = req.validated;
    let connector_id = connector_of(&state, &req).await?;
    let row = store(&state, req, connector_id, true).await?;
    if validated {
        send::send(
            &state,
            &row.id,
            &row.connector_id,
            &row.asset,
            row.attempt,
            Event::Approve,
            Some(row.scheduled_at),
        )
        .await?;
    }
    let row = read(&state, &row.id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: initiation_json(row),
    }))
}

/// The fields the transfer-initiation list's `query` allows: Formance's (`$match` on `id`,
/// `reference`, `connector_id`, `type`, `status`, `asset` and the account ids, every
/// comparison on `amount`, `metadata[key]`), plus `initial_amount`, the timestamps and
/// `$exists` on the optional source account.
pub const INITIATION_FIELDS: &[Field] = &[
    Field::new(&["id"], "t.id", Kind::Text, MATCH),
    Field::new(&["reference"], "t.reference", Kind::Text, MATCH),
    Field::new(
        &["connector_id", "connectorID"],
        "t.connector_id",
        Kind::Text,
        MATCH,
    ),
    Field::new(&["type"], "t.type", Kind::Text, MATCH),
    Field::new(&["status"], "t.status", Kind::Text, MATCH),
    Field::new(&["asset"], "t.asset", Kind::Text, MATCH),
    Field::new(
        &["source_account_id", "sourceAccountID"],
        "t.source_account_id",
        Kind::NullableText,
        MATCH_EXISTS,
    ),
    Field::new(
        &["destination_account_id", "destinationAccountID"],
        "t.destination_account_id",
        Kind::Text,
        MATCH,
    ),
    Field::new(&["amount"], "t.amount", Kind::Amount, ORDERED),
    Field::new(
        &["initial_amount", "initialAmount"],
        "t.initial_amount",
        Kind::Amount,
        ORDERED,
    ),
    Field::new(
        &["created_at", "createdAt"],
        "t.created_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["updated_at", "updatedAt"],
        "t.updated_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["scheduled_at", "scheduledAt"],
        "t.scheduled_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(&["metadata"], "t.metadata", Kind::Metadata, MATCH_EXISTS),
];

/// The list's filters, carried in the cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    connector_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initiation_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reference: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// The list's filters, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct InitiationQuery {
    /// Only this connector's.
    #[param(rename = "connectorID")]
    connector_id: Option<String>,
    /// Only this status.
    #[param(example = "PROCESSED")]
    status: Option<String>,
    /// Only this type.
    #[param(rename = "type", example = "PAYOUT")]
    initiation_type: Option<String>,
    /// Only this reference.
    reference: Option<String>,
    /// Formance's query language as JSON (the request body, when not empty, takes precedence).
    #[param(example = r#"{"$and":[{"$match":{"status":"PROCESSED"}},{"$gte":{"amount":100}}]}"#)]
    query: Option<String>,
}

/// Lists transfer initiations, newest first unless sorted otherwise.
#[utoipa::path(get, path = "/api/payments/transfer-initiations", tag = "transfer-initiations",
    operation_id = "listTransferInitiations", params(PageQuery, InitiationQuery),
    responses((status = 200, description = "A page of transfer initiations",
        body = CursorResponse<InitiationJson>)))]
async fn list(
    state: web::Data<AppState>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let sortable = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
    let request = PageRequest::from_params_sorted(&params, &sortable, |p| {
        if let Some(status) = p.get("status")
            && Status::parse(status).is_none()
        {
            return Err(ApiError::validation(format!(
                "status: unknown transfer initiation status {status:?}"
            )));
        }
        Ok(Filter {
            query: query::from_request(p, &body)?,
            connector_id: p.get("connectorID").map(str::to_string),
            status: p.get("status").map(str::to_string),
            initiation_type: p.get("type").map(str::to_string),
            reference: p.get("reference").map(str::to_string),
        })
    })?;
    let f = &request.filter;
    let filter = InitiationFilter {
        connector_id: f.connector_id.clone(),
        status: f.status.clone(),
        initiation_type: f.initiation_type.clone(),
        reference: f.reference.clone(),
        condition: query::condition(f.query.as_ref(), INITIATION_FIELDS)?,
    };
    let rows = stored::page(state.storage.pool(), &filter, &request.keyset()).await?;
    let sort = request.sort;
    Ok(HttpResponse::Ok().json(request.respond(
        rows,
        |r| (sort.pick(r.created_at, r.updated_at), r.id.clone()),
        initiation_json,
    )))
}

/// One transfer initiation, with its status history and related payments.
#[utoipa::path(get, path = "/api/payments/transfer-initiations/{transferId}",
    tag = "transfer-initiations", operation_id = "getTransferInitiation",
    responses((status = 200, description = "The transfer initiation", body = Data<InitiationJson>)))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = read(&state, &path).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: initiation_json(row),
    }))
}

/// Deletes a transfer initiation that was never sent.
#[utoipa::path(delete, path = "/api/payments/transfer-initiations/{transferId}",
    tag = "transfer-initiations", operation_id = "deleteTransferInitiation",
    responses((status = 204, description = "Deleted")))]
async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    TransferKey::parse(&path)?;
    send::transition(&state, &path, Event::Delete, None, None, With::Nothing).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Approves (VALIDATED: sent at once) or rejects (REJECTED) a waiting transfer initiation.
#[utoipa::path(post, path = "/api/payments/transfer-initiations/{transferId}/status",
    tag = "transfer-initiations", operation_id = "updateTransferInitiationStatus",
    request_body = StatusRequest, responses((status = 204, description = "Done")))]
async fn update_status(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: StatusRequest = json::body(&body, state.max_body_bytes)?;
    let row = read(&state, &path).await?;
    match req.status.as_str() {
        "VALIDATED" => {
            send::send(
                &state,
                &row.id,
                &row.connector_id,
                &row.asset,
                row.attempt,
                Event::Approve,
                Some(row.scheduled_at),
            )
            .await?
        }
        "REJECTED" => {
            send::transition(&state, &row.id, Event::Reject, None, None, With::Nothing).await?;
        }
        other => {
            return Err(ApiError::validation(format!(
                "status: either VALIDATED or REJECTED can be set, not {other:?}"
            )));
        }
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Sends a FAILED transfer initiation again, as a new attempt (a new idempotency key).
#[utoipa::path(post, path = "/api/payments/transfer-initiations/{transferId}/retry",
    tag = "transfer-initiations", operation_id = "retryTransferInitiation",
    responses((status = 204, description = "Retried")))]
async fn retry(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let row = read(&state, &path).await?;
    send::send(
        &state,
        &row.id,
        &row.connector_id,
        &row.asset,
        row.attempt,
        Event::Retry,
        None,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Reverses (part of) a processed transfer.
#[utoipa::path(post, path = "/api/payments/transfer-initiations/{transferId}/reverse",
    tag = "transfer-initiations", operation_id = "reverseTransferInitiation",
    request_body = ReverseRequest, responses((status = 204, description = "Reversed")))]
async fn reverse(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: ReverseRequest = json::body(&body, state.max_body_bytes)?;
    let row = read(&state, &path).await?;
    if req.reference.trim().is_empty() {
        return Err(ApiError::validation("reference: is required"));
    }
    let amount = json::amount("amount", &req.amount)?;
    if req.asset != row.asset {
        return Err(ApiError::validation(format!(
            "asset: must be the transfer's asset {}, got {:?}",
            row.asset, req.asset
        )));
    }
    if row.initiation_type == InitiationType::Payout.as_str() {
        return Err(ApiError::validation("payouts cannot be reversed"));
    }
    // What is left to reverse is checked in the transition's transaction, after the status.
    let connector = ConnectorKey::parse(&row.connector_id)?;
    let reversal = NewReversal {
        id: TransferKey {
            connector,
            reference: req.reference.clone(),
        }
        .id(),
        reference: req.reference,
        connector_id: row.connector_id.clone(),
        description: req.description,
        amount: amount.as_str().to_string(),
        asset: req.asset,
        metadata: json::metadata(req.metadata)?,
        task_id: Default::default(),
    };
    let reversal = NewReversal {
        task_id: crate::money_out::descriptor::MoneyOutTask::Reverse {
            reversal: reversal.id.clone(),
        }
        .task_id(&row.connector_id),
        ..reversal
    };
    send::reverse(&state, &row.id, &row.asset, reversal).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Transfers between the provider's accounts (the older route): a validated TRANSFER
/// initiation on the provider's only connector, sent at once; answers its id.
#[utoipa::path(post, path = "/api/payments/connectors/{provider}/transfers",
    tag = "transfer-initiations", operation_id = "connectorsTransfer",
    request_body = TransferRequest,
    responses((status = 200, description = "Sent", body = TransferResponse)))]
async fn connectors_transfer(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let req: TransferRequest = json::body(&body, state.max_body_bytes)?;
    let connector = super::connectors::resolve(&state, &path, None).await?;
    let key = ConnectorKey::parse(&connector.id)?;
    let account = |reference: String| {
        AccountKey {
            connector: key.clone(),
            reference,
        }
        .id()
    };
    if req.destination.trim().is_empty() {
        return Err(ApiError::validation("destination: is required"));
    }
    let create = CreateRequest {
        reference: uuid::Uuid::new_v4().to_string(),
        scheduled_at: None,
        description: String::new(),
        source_account_id: req.source.filter(|s| !s.is_empty()).map(account),
        destination_account_id: account(req.destination),
        connector_id: Some(connector.id.clone()),
        provider: None,
        initiation_type: InitiationType::Transfer.as_str().to_string(),
        amount: req.amount,
        asset: req.asset,
        validated: true,
        metadata: None,
    };
    let row = store(&state, create, connector.id, false).await?;
    send::send(
        &state,
        &row.id,
        &row.connector_id,
        &row.asset,
        row.attempt,
        Event::Approve,
        None,
    )
    .await?;
    Ok(HttpResponse::Ok().json(TransferResponse { id: row.id }))
}
