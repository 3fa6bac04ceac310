//! `/bank-accounts`: register a bank account (optionally forwarding it to a connector at
//! once), list, read, forward to a connector, merge metadata — as Formance Payments v1 does
//! (docs/api.md, "Bank accounts", lists the differences).
//!
//! The account number and IBAN are sealed with the service's keyring before they reach the
//! storage actor, and opened only to mask them for a read (Formance's `Offuscate`) or to hand
//! them to a connector that registers the bank account with its provider
//! ([`crate::sdk::ExternalBankAccounts`], reached through `Runtime::call_connector`).

use std::collections::BTreeMap;

use actix_web::http::Method;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use super::extract::{JsonObject, Params, kind};
use super::pagination::{CursorResponse, PageQuery, PageRequest, SortColumn};
use super::query::{self, Expr, Field, Kind, MATCH, MATCH_EXISTS, ORDERED, QueryBody};
use super::{AppState, Data, RouteEntry};
use crate::bank_accounts::{
    check_account_number, check_iban, obfuscate_account_number, obfuscate_iban,
};
use crate::ids::ConnectorKey;
use crate::runtime::RuntimeError;
use crate::sdk::BankAccount;
use crate::secrets::Vault;
use crate::storage::commands::bank_accounts::{CreateBankAccount, SetBankAccountConnector};
use crate::storage::commands::metadata::{MetadataOwner, PatchMetadata};
use crate::storage::queries::bank_accounts::{self, BankAccountRow, RelatedAccountRow};

/// The bank account routes.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::POST, "/bank-accounts", web::to(create)),
        (Method::GET, "/bank-accounts", web::to(list)),
        (Method::GET, "/bank-accounts/{bankAccountId}", web::to(get)),
        (
            Method::POST,
            "/bank-accounts/{bankAccountId}/forward",
            web::to(forward),
        ),
        (
            Method::PATCH,
            "/bank-accounts/{bankAccountId}/metadata",
            web::to(patch_metadata),
        ),
    ]
}

/// An account a connector created for a bank account.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelatedAccountJson {
    /// The link's id.
    id: String,
    /// When the connector linked it.
    created_at: DateTime<Utc>,
    /// The account (as `GET /accounts/{accountID}` takes it).
    #[serde(rename = "accountID")]
    account_id: String,
    /// Its connector.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Its connector's provider.
    #[schema(example = "DUMMY-PAY")]
    provider: String,
}

/// A bank account as Formance v1 shows it.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BankAccountJson {
    /// Its id (a UUID).
    id: String,
    /// Its name.
    name: String,
    /// When it was registered.
    created_at: DateTime<Utc>,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR")]
    country: String,
    /// Masked as Formance does (first 4 and last 4 characters); absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "FR76*******************0189")]
    iban: Option<String>,
    /// Masked as Formance does (first 2 and last 3 characters); absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "12***678")]
    account_number: Option<String>,
    /// SWIFT/BIC, in clear; absent in lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    swift_bic_code: Option<String>,
    /// String metadata.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    metadata: Option<Value>,
    /// The accounts connectors created for it, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    related_accounts: Vec<RelatedAccountJson>,
    /// Deprecated (Formance): the first related account's connector, or the connector it was
    /// forwarded to; empty when none.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Deprecated (Formance): the first related account's provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    provider: Option<String>,
    /// Deprecated (Formance): the first related account.
    #[serde(rename = "accountID", skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
}

/// What a response shows of the account number and IBAN.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbers {
    /// Masked (one bank account).
    Masked,
    /// Left out (lists, as Formance v1's).
    Omitted,
}

fn related_json(r: RelatedAccountRow) -> RelatedAccountJson {
    RelatedAccountJson {
        id: r.id.to_string(),
        created_at: r.created_at,
        account_id: r.account_id,
        connector_id: r.connector_id,
        provider: r.provider,
    }
}

/// A stored value opened, for an answer: unreadable is a server error, logged.
fn open_field(
    vault: &Vault,
    id: Uuid,
    field: &str,
    stored: &Option<Value>,
) -> Result<Option<String>, ApiError> {
    stored
        .as_ref()
        .map(|v| {
            vault
                .open_bank_field(&id.to_string(), field, v)
                .map(|(clear, _)| clear)
                .map_err(|e| {
                    tracing::error!(error = %e, "stored bank account number unreadable");
                    ApiError::new(ErrorCode::Internal, e.to_string())
                })
        })
        .transpose()
}

fn bank_account_json(
    row: BankAccountRow,
    vault: &Vault,
    numbers: Numbers,
) -> Result<BankAccountJson, ApiError> {
    let (iban, account_number, swift_bic_code) = match numbers {
        Numbers::Omitted => (None, None, None),
        Numbers::Masked => (
            open_field(vault, row.id, "iban", &row.iban)?.map(|v| obfuscate_iban(&v)),
            open_field(vault, row.id, "accountNumber", &row.account_number)?
                .map(|v| obfuscate_account_number(&v)),
            row.swift_bic_code,
        ),
    };
    let first = row.related.first();
    Ok(BankAccountJson {
        id: row.id.to_string(),
        name: row.name,
        created_at: row.created_at,
        country: row.country,
        iban,
        account_number,
        swift_bic_code,
        metadata: row.metadata,
        connector_id: first
            .map(|r| r.connector_id.clone())
            .or(row.connector_id)
            .unwrap_or_default(),
        provider: first.map(|r| r.provider.clone()),
        account_id: first.map(|r| r.account_id.clone()),
        related_accounts: row.related.into_iter().map(related_json).collect(),
    })
}

/// `POST /bank-accounts`'s body, for the OpenAPI document (parsing is [`parse_create`]).
#[derive(ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // never built: it only describes the body
pub struct BankAccountRequest {
    /// Its name.
    name: String,
    /// ISO 3166-1 alpha-2.
    #[schema(example = "FR")]
    country: String,
    /// The domestic account number (this or `iban` is required); 5 to 64 printable ASCII.
    account_number: Option<String>,
    /// The IBAN (this or `accountNumber` is required); 8 to 64 printable ASCII.
    iban: Option<String>,
    /// SWIFT/BIC.
    swift_bic_code: Option<String>,
    /// A connector to forward it to at once.
    #[serde(rename = "connectorID")]
    connector_id: Option<String>,
    /// String metadata.
    metadata: Option<BTreeMap<String, String>>,
}

/// `POST /bank-accounts/{id}/forward`'s body.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it only describes the body
pub struct ForwardBankAccountRequest {
    /// The connector to forward the bank account to.
    #[serde(rename = "connectorID")]
    connector_id: String,
}

/// `PATCH /bank-accounts/{id}/metadata`'s body.
#[derive(ToSchema)]
#[allow(dead_code)] // never built: it only describes the body
pub struct UpdateBankAccountMetadataRequest {
    /// The keys to set (merged into the bank account's).
    metadata: BTreeMap<String, String>,
}

/// A create request, checked.
#[derive(Debug, Clone, PartialEq)]
struct NewBankAccount {
    name: String,
    country: String,
    account_number: Option<String>,
    iban: Option<String>,
    swift_bic_code: Option<String>,
    connector_id: Option<String>,
    metadata: Option<Map<String, Value>>,
}

/// An optional string field: absent or null is `None`, anything but a string is an error.
fn opt_string(body: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::validation(format!(
            "{field} must be a string, not {}",
            kind(other)
        ))),
    }
}

/// A metadata object: absent or null is `None`; every value must be a string.
fn metadata(body: &Map<String, Value>) -> Result<Option<Map<String, Value>>, ApiError> {
    match body.get("metadata") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if let Some((key, value)) = map.iter().find(|(_, v)| !v.is_string()) {
                return Err(ApiError::validation(format!(
                    "metadata values must be strings: {key:?} is {}",
                    kind(value)
                )));
            }
            Ok(Some(map.clone()))
        }
        Some(other) => Err(ApiError::validation(format!(
            "metadata must be an object of strings, not {}",
            kind(other)
        ))),
    }
}

/// Formance v1's checks (either number, name, country), plus what masking needs.
fn parse_create(body: &Map<String, Value>) -> Result<NewBankAccount, ApiError> {
    let account_number = opt_string(body, "accountNumber")?.filter(|s| !s.is_empty());
    let iban = opt_string(body, "iban")?.filter(|s| !s.is_empty());
    if account_number.is_none() && iban.is_none() {
        return Err(ApiError::validation(
            "either accountNumber or iban must be provided",
        ));
    }
    let name = opt_string(body, "name")?.unwrap_or_default();
    if name.trim().is_empty() {
        return Err(ApiError::validation("name must be provided"));
    }
    let country = opt_string(body, "country")?.unwrap_or_default();
    if country.trim().is_empty() {
        return Err(ApiError::validation("country must be provided"));
    }
    let invalid = |e: crate::bank_accounts::InvalidNumber| ApiError::validation(e.to_string());
    if let Some(n) = &account_number {
        check_account_number(n).map_err(invalid)?;
    }
    if let Some(iban) = &iban {
        check_iban(iban).map_err(invalid)?;
    }
    Ok(NewBankAccount {
        name,
        country,
        account_number,
        iban,
        swift_bic_code: opt_string(body, "swiftBicCode")?.filter(|s| !s.is_empty()),
        connector_id: opt_string(body, "connectorID")?.filter(|s| !s.is_empty()),
        metadata: metadata(body)?,
    })
}

/// A connector id from a body, checked for shape.
fn connector_key(id: &str) -> Result<ConnectorKey, ApiError> {
    ConnectorKey::parse(id).map_err(|e| ApiError::validation(format!("connectorID: {e}")))
}

/// A runtime error of a call to a connector, as Formance v1 answers it: a connector that is
/// not installed is a 400 VALIDATION, not a 404.
fn call_error(connector_id: &str, e: RuntimeError) -> ApiError {
    match e {
        RuntimeError::ConnectorNotFound(_) => ApiError::validation(format!(
            "connectorID: connector {connector_id} not installed"
        )),
        other => other.into(),
    }
}

/// Forwards `account` to the connector: the capability's answer, or 400
/// CONNECTOR_CAPABILITY_NOT_SUPPORTED when the connector has none. `probe` only asks whether
/// it has one.
async fn call_bank_accounts(
    state: &AppState,
    connector_id: &str,
    account: Option<BankAccount>,
) -> Result<(), ApiError> {
    let supported = state
        .runtime
        .call_connector(connector_id, move |connector, ctx| {
            Box::pin(async move {
                match (connector.bank_accounts(), account) {
                    (None, _) => Ok(false),
                    (Some(_), None) => Ok(true),
                    (Some(capability), Some(account)) => capability
                        .create_external_bank_account(&ctx, &account)
                        .await
                        .map(|()| true),
                }
            })
        })
        .await
        .map_err(|e| call_error(connector_id, e))?;
    if supported {
        Ok(())
    } else {
        Err(ApiError::capability_not_supported(
            connector_id,
            "bank accounts (create_external_bank_account)",
        ))
    }
}

/// Opens the stored numbers and forwards the bank account to the connector, then records it.
async fn forward_row(
    state: &AppState,
    row: &BankAccountRow,
    connector_id: &str,
) -> Result<(), ApiError> {
    let vault = state.runtime.vault();
    let metadata = row
        .metadata
        .as_ref()
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let account = BankAccount {
        id: row.id,
        created_at: row.created_at,
        name: row.name.clone(),
        account_number: open_field(vault, row.id, "accountNumber", &row.account_number)?,
        iban: open_field(vault, row.id, "iban", &row.iban)?,
        swift_bic_code: row.swift_bic_code.clone(),
        country: row.country.clone(),
        metadata,
    };
    call_bank_accounts(state, connector_id, Some(account)).await?;
    state
        .storage
        .write(SetBankAccountConnector {
            id: row.id,
            connector_id: connector_id.to_string(),
        })
        .await?;
    tracing::info!(bank_account_id = %row.id, connector_id, "bank account forwarded");
    Ok(())
}

async fn read(state: &AppState, id: Uuid) -> Result<BankAccountRow, ApiError> {
    bank_accounts::get(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("bank account {id} not found")))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidId,
            format!("bankAccountId {id:?} is not a UUID: {e}"),
        )
    })
}

/// Registers a bank account; with `connectorID`, forwards it to that connector at once.
#[utoipa::path(post, path = "/api/payments/bank-accounts", tag = "bank accounts",
    operation_id = "createBankAccount", request_body = BankAccountRequest,
    responses((status = 200, description = "The bank account, numbers masked",
        body = Data<BankAccountJson>)))]
async fn create(state: web::Data<AppState>, body: JsonObject) -> Result<HttpResponse, ApiError> {
    let new = parse_create(&body.0)?;
    if let Some(connector_id) = &new.connector_id {
        // Checked before anything is stored, as Formance does: an unknown connector or one
        // without the capability leaves no bank account behind.
        connector_key(connector_id)?;
        call_bank_accounts(&state, connector_id, None).await?;
    }
    let id = Uuid::new_v4();
    let key = id.to_string();
    let vault = state.runtime.vault();
    state
        .storage
        .write(CreateBankAccount {
            id,
            created_at: Utc::now(),
            name: new.name,
            country: new.country,
            swift_bic_code: new.swift_bic_code,
            account_number_masked: new.account_number.as_deref().map(obfuscate_account_number),
            iban_masked: new.iban.as_deref().map(obfuscate_iban),
            account_number: new
                .account_number
                .map(|n| vault.seal_bank_field(&key, "accountNumber", &n)),
            iban: new.iban.map(|n| vault.seal_bank_field(&key, "iban", &n)),
            metadata: new.metadata.map(Value::Object),
        })
        .await?;
    tracing::info!(bank_account_id = %id, "bank account created");
    if let Some(connector_id) = &new.connector_id {
        let row = read(&state, id).await?;
        forward_row(&state, &row, connector_id).await?;
    }
    let row = read(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: bank_account_json(row, vault, Numbers::Masked)?,
    }))
}

/// The fields the bank-account list's `query` allows: Formance's (`$match` on `id`, `name`,
/// `country`, `metadata[key]`), plus the timestamps. Never the account number or IBAN: they
/// are sealed with a random nonce (no equality on the stored value), and a filter on them
/// would let any `payments:read` caller test guesses of a number it cannot read.
pub const BANK_ACCOUNT_FIELDS: &[Field] = &[
    Field::new(&["id"], "b.id", Kind::Uuid, MATCH),
    Field::new(&["name"], "b.name", Kind::Text, MATCH),
    Field::new(&["country"], "b.country", Kind::Text, MATCH),
    Field::new(
        &["created_at", "createdAt"],
        "b.created_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(
        &["updated_at", "updatedAt"],
        "b.updated_at",
        Kind::Time,
        ORDERED,
    ),
    Field::new(&["metadata"], "b.metadata", Kind::Metadata, MATCH_EXISTS),
];

/// The bank-account list's filter, carried in the cursor.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    query: Option<Expr>,
}

/// The bank-account list's filter, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct BankAccountQuery {
    /// Formance's query language as JSON (the request body, when not empty, takes precedence).
    #[param(
        example = r#"{"$and":[{"$match":{"country":"FR"}},{"$match":{"metadata[team]":"ops"}}]}"#
    )]
    query: Option<String>,
}

/// Lists bank accounts, newest first unless sorted otherwise (numbers left out, as Formance's).
#[utoipa::path(get, path = "/api/payments/bank-accounts", tag = "bank accounts",
    operation_id = "listBankAccounts", params(PageQuery, BankAccountQuery),
    responses((status = 200, description = "A page of bank accounts",
        body = CursorResponse<BankAccountJson>)))]
async fn list(
    state: web::Data<AppState>,
    params: Params,
    body: QueryBody,
) -> Result<HttpResponse, ApiError> {
    let sortable = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
    let request = PageRequest::from_params_sorted(&params, &sortable, |p| {
        Ok(Filter {
            query: query::from_request(p, &body)?,
        })
    })?;
    let condition = query::condition(request.filter.query.as_ref(), BANK_ACCOUNT_FIELDS)?;
    let rows =
        bank_accounts::page(state.storage.pool(), condition.as_ref(), &request.keyset()).await?;
    let vault = state.runtime.vault();
    let mut out = Vec::with_capacity(rows.len());
    let sort = request.sort;
    let page = request.respond(
        rows,
        |b| (sort.pick(b.created_at, b.updated_at), b.id.to_string()),
        |row| row,
    );
    for row in page.cursor.data {
        out.push(bank_account_json(row, vault, Numbers::Omitted)?);
    }
    Ok(HttpResponse::Ok().json(CursorResponse {
        cursor: super::pagination::Cursor {
            page_size: page.cursor.page_size,
            has_more: page.cursor.has_more,
            previous: page.cursor.previous,
            next: page.cursor.next,
            data: out,
        },
    }))
}

/// One bank account, its numbers masked as Formance does.
#[utoipa::path(get, path = "/api/payments/bank-accounts/{bankAccountId}", tag = "bank accounts",
    operation_id = "getBankAccount",
    responses((status = 200, description = "The bank account", body = Data<BankAccountJson>)))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let row = read(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: bank_account_json(row, state.runtime.vault(), Numbers::Masked)?,
    }))
}

/// Forwards a bank account to a connector, which registers it with its provider and links
/// the accounts it creates.
#[utoipa::path(post, path = "/api/payments/bank-accounts/{bankAccountId}/forward",
    tag = "bank accounts", operation_id = "forwardBankAccount",
    request_body = ForwardBankAccountRequest,
    responses((status = 200, description = "The bank account with its related accounts",
        body = Data<BankAccountJson>)))]
async fn forward(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let connector_id = opt_string(&body.0, "connectorID")?
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::validation("connectorID must be provided"))?;
    connector_key(&connector_id)?;
    let row = read(&state, id).await?;
    let forwarded = row.connector_id.as_deref() == Some(connector_id.as_str())
        || row.related.iter().any(|r| r.connector_id == connector_id);
    if forwarded {
        return Err(ApiError::validation(format!(
            "bank account already forwarded to connector {connector_id}"
        )));
    }
    forward_row(&state, &row, &connector_id).await?;
    let row = read(&state, id).await?;
    Ok(HttpResponse::Ok().json(Data {
        data: bank_account_json(row, state.runtime.vault(), Numbers::Masked)?,
    }))
}

/// Merges string metadata into a bank account's.
#[utoipa::path(patch, path = "/api/payments/bank-accounts/{bankAccountId}/metadata",
    tag = "bank accounts", operation_id = "updateBankAccountMetadata",
    request_body = UpdateBankAccountMetadataRequest,
    responses((status = 204, description = "Merged")))]
async fn patch_metadata(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    let id = parse_id(&path.into_inner())?;
    let metadata = metadata(&body.0)?
        .filter(|m| !m.is_empty())
        .ok_or_else(|| ApiError::validation("metadata must be provided"))?;
    state
        .storage
        .write(PatchMetadata {
            owner: MetadataOwner::BankAccount(id),
            metadata: Value::Object(metadata),
        })
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn create_requests_are_checked_as_formance_does() {
        let ok = parse_create(&body(json!({
            "name": "n", "country": "FR", "iban": "FR7630006000011234567890189",
            "metadata": {"a": "b"}, "connectorID": ""
        })))
        .unwrap();
        assert_eq!(ok.connector_id, None);
        for (b, field) in [
            (
                json!({"name": "n", "country": "FR"}),
                "accountNumber or iban",
            ),
            (
                json!({"country": "FR", "iban": "FR7630006000011234"}),
                "name",
            ),
            (
                json!({"name": "n", "iban": "FR7630006000011234"}),
                "country",
            ),
            (
                json!({"name": "n", "country": "FR", "iban": "FR76"}),
                "iban",
            ),
            (
                json!({"name": "n", "country": "FR", "accountNumber": 12345678}),
                "accountNumber",
            ),
            (
                json!({"name": "n", "country": "FR", "iban": "FR7630006000011234", "metadata": {"a": 1}}),
                "metadata",
            ),
        ] {
            let e = parse_create(&body(b)).unwrap_err();
            assert_eq!(e.code, ErrorCode::Validation);
            assert!(e.message.contains(field), "{field}: {}", e.message);
        }
    }
}
