//! Formance's list query language (`query` parameter or JSON body), shared by every list.
//!
//! Two pure steps, unit-tested without a database:
//! - [`parse::parse`]: Formance JSON → [`parse::Expr`] (`$match`, `$and`, `$or`, `$not`,
//!   `$lt`, `$lte`, `$gt`, `$gte`, `$exists`, `metadata[key]`; exact numbers);
//! - [`sql::compile`]: `Expr` + one list's field table → a parameterised
//!   [`Condition`](crate::storage::queries::page::Condition) (no value is ever interpolated).
//!
//! ## Plugging a list in (one table, three lines)
//!
//! ```ignore
//! use crate::api::query::{self, Expr, Field, Kind, QueryBody, MATCH, MATCH_EXISTS, ORDERED};
//!
//! /// The fields the pool list's `query` allows (Formance's, from its storage query context).
//! pub const POOL_FIELDS: &[Field] = &[
//!     Field::new(&["name"], "pl.name", Kind::Text, MATCH),
//!     Field::new(&["created_at", "createdAt"], "pl.created_at", Kind::Time, ORDERED),
//!     Field::new(&["metadata"], "pl.metadata", Kind::Metadata, MATCH_EXISTS),
//! ];
//!
//! // The cursor's filter keeps the parsed query, so later pages apply it too:
//! #[derive(Clone, Default, Serialize, Deserialize)]
//! struct PoolFilter { #[serde(default, skip_serializing_if = "Option::is_none")] query: Option<Expr> }
//!
//! async fn list(state: web::Data<AppState>, params: Params, body: QueryBody) -> … {
//!     // 1. the query: the JSON body when not empty (Formance reads it first), else `?query=`
//!     let request = PageRequest::from_params(&params, |p| {
//!         Ok(PoolFilter { query: query::from_request(p, &body)? })
//!     })?;
//!     // 2. compile against the table (also for a cursor: what it carries is re-checked);
//!     //    a misfit is a 400 naming the field or operator
//!     let condition = query::condition(request.filter.query.as_ref(), POOL_FIELDS)?;
//!     // 3. in the storage query, after `… WHERE TRUE` and before `sql.keyset(…)`:
//!     //    if let Some(c) = &condition { sql.condition(c) }
//! }
//! ```
//!
//! Kinds: `Text` (strings), `NullableText` (also `$exists: true|false`), `Amount` (exact
//! integers, bound as `numeric`), `Time` (RFC 3339), `Uuid` (checked, bound as `uuid`), `Metadata` (`metadata[key]` `$match`,
//! `{"$exists": {"metadata": "key"}}`). Operator sets: `MATCH`, `ORDERED`, `MATCH_EXISTS`, or
//! any `&[Op]`. Column text must be trusted SQL (a column of the list's statement); values
//! never reach the SQL text. Sorting on `updatedAt` too: `PageRequest::from_params_sorted`.
//!
//! An unknown field, an operator the field does not allow, or a value of the wrong type is a
//! 400 `VALIDATION` whose message names it. Each list's allowed fields follow Formance v1's
//! storage (`internal/storage/*.go` query contexts); docs/api.md lists them.

pub mod parse;
pub mod sql;

pub use parse::{Expr, Op};
pub use sql::{Field, Kind, MATCH, MATCH_EXISTS, ORDERED};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures::future::LocalBoxFuture;

use super::error::ApiError;
use super::extract::Params;
use crate::storage::queries::page::Condition;

/// The raw body of a list request (where Formance clients may put the query), as an
/// extractor of its own so the OpenAPI derive does not document lists as taking bytes. Read
/// under `server.max_body_bytes` like every other body, refused with the API's own error.
pub struct QueryBody(pub web::Bytes);

impl FromRequest for QueryBody {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = super::extract::RawBytes::from_request(req, payload);
        Box::pin(async move { body.await.map(|b| QueryBody(b.0)) })
    }
}

/// The query of a list request: a non-empty JSON body wins (Formance reads the body first),
/// else the `query` parameter; `None` when neither filters.
pub fn from_request(params: &Params, body: &QueryBody) -> Result<Option<Expr>, ApiError> {
    let body = &body.0;
    let text = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        std::str::from_utf8(body)
            .map_err(|_| ApiError::validation("query: the body is not UTF-8"))?
    } else {
        params.get("query").unwrap_or("")
    };
    parse::parse(text).map_err(|e| ApiError::validation(e.to_string()))
}

/// Compiles a list's query against its field table; a misfit is a 400 naming it.
pub fn condition(expr: Option<&Expr>, fields: &[Field]) -> Result<Option<Condition>, ApiError> {
    expr.map(|e| sql::compile(e, fields))
        .transpose()
        .map_err(|e| ApiError::validation(e.to_string()))
}
