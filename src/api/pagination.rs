//! Cursor pagination as Formance does it: `pageSize` (default 15, 1..=100), an opaque `cursor`
//! that carries everything (page size, order, filters, position) so that when it is given the
//! other parameters are ignored, and the `{"cursor": {pageSize, hasMore, previous, next, data}}`
//! envelope. Underneath, keyset pagination (see `storage::queries::page`).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::Params;
use crate::storage::queries::page::Keyset;

/// The default page size.
pub const DEFAULT_PAGE_SIZE: i64 = 15;
/// The largest page size.
pub const MAX_PAGE_SIZE: i64 = 100;

/// Everything a page request carries; encoded as the opaque cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageRequest<F> {
    /// Rows per page.
    #[serde(rename = "s")]
    pub page_size: i64,
    /// Oldest first.
    #[serde(rename = "a")]
    pub ascending: bool,
    /// The resource's filters.
    #[serde(rename = "f")]
    pub filter: F,
    /// The row this page starts after (in the direction of travel).
    #[serde(rename = "b", default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<(DateTime<Utc>, String)>,
    /// Travelling backwards (a `previous` cursor).
    #[serde(rename = "r", default)]
    pub backward: bool,
}

/// The paging query parameters of every list, for the OpenAPI document only: parsing is
/// [`PageRequest::from_params`], which answers bad values with Formance error bodies.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct PageQuery {
    /// Rows per page.
    #[param(minimum = 1, maximum = 100, default = 15)]
    page_size: Option<i64>,
    /// The opaque `next` or `previous` of an earlier page; when given, every other parameter
    /// is ignored (the cursor carries them).
    cursor: Option<String>,
    /// The order: `createdAt:asc` or `createdAt:desc` (the default, newest first).
    #[param(pattern = "^createdAt(:(asc|desc))?$", example = "createdAt:desc")]
    sort: Option<String>,
}

/// The cursor envelope's body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Cursor<T> {
    /// Rows per page.
    pub page_size: i64,
    /// Whether a next page exists.
    pub has_more: bool,
    /// The cursor of the previous page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The cursor of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// The rows.
    pub data: Vec<T>,
}

/// `{"cursor": …}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CursorResponse<T> {
    /// The page.
    pub cursor: Cursor<T>,
}

impl<F: Serialize + DeserializeOwned + Clone> PageRequest<F> {
    /// Reads `cursor`, or `pageSize`, `sort` and the filters (`filter` parses them).
    pub fn from_params(
        params: &Params,
        filter: impl FnOnce(&Params) -> Result<F, ApiError>,
    ) -> Result<Self, ApiError> {
        if let Some(token) = params.get("cursor") {
            return Self::decode(token);
        }
        let page_size = match params.get("pageSize") {
            None => DEFAULT_PAGE_SIZE,
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    ApiError::validation(format!(
                        "pageSize must be an integer from 1 to {MAX_PAGE_SIZE}, not {v:?}"
                    ))
                })?,
        };
        let ascending = match params.get("sort") {
            None => false,
            Some(sort) => {
                let (field, order) = sort.split_once(':').unwrap_or((sort, "asc"));
                if field != "createdAt" && field != "created_at" {
                    return Err(ApiError::validation(format!(
                        "sort: only createdAt can be sorted on, not {field:?}"
                    )));
                }
                match order.to_ascii_lowercase().as_str() {
                    "asc" => true,
                    "desc" => false,
                    _ => {
                        return Err(ApiError::validation(format!(
                            "sort: the order must be asc or desc, not {order:?}"
                        )));
                    }
                }
            }
        };
        Ok(Self {
            page_size,
            ascending,
            filter: filter(params)?,
            bound: None,
            backward: false,
        })
    }

    fn decode(token: &str) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation("cursor is malformed");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let request: Self = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if !(1..=MAX_PAGE_SIZE).contains(&request.page_size) {
            return Err(invalid());
        }
        Ok(request)
    }

    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    /// The keyset to query: one row more than the page, to know whether there is more.
    pub fn keyset(&self) -> Keyset {
        Keyset {
            ascending: self.ascending != self.backward,
            bound: self.bound.clone(),
            limit: self.page_size + 1,
        }
    }

    /// Builds the envelope from the rows the keyset query returned; `key` gives a row's
    /// `(created_at, id)`.
    pub fn respond<R, T>(
        &self,
        mut rows: Vec<R>,
        key: impl Fn(&R) -> (DateTime<Utc>, String),
        to_json: impl Fn(R) -> T,
    ) -> CursorResponse<T> {
        let more = rows.len() as i64 > self.page_size;
        rows.truncate(self.page_size as usize);
        if self.backward {
            rows.reverse();
        }
        let at = |row: Option<&R>, backward: bool| {
            row.map(|r| {
                Self {
                    bound: Some(key(r)),
                    backward,
                    ..self.clone()
                }
                .encode()
            })
        };
        let (has_more, previous, next) = if self.backward {
            (
                true,
                more.then(|| at(rows.first(), true)).flatten(),
                at(rows.last(), false),
            )
        } else {
            (
                more,
                self.bound.as_ref().and_then(|_| at(rows.first(), true)),
                more.then(|| at(rows.last(), false)).flatten(),
            )
        };
        CursorResponse {
            cursor: Cursor {
                page_size: self.page_size,
                has_more,
                previous,
                next,
                data: rows.into_iter().map(to_json).collect(),
            },
        }
    }
}
