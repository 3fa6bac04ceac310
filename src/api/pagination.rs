//! Cursor pagination as Formance does it: `pageSize` (default 15; 0 means the default and
//! above 100 is clamped to 100, as go-libs' `bunpaginate.GetPageSize`), an opaque `cursor`
//! that carries everything (page size, order, filters, position) so that when it is given the
//! other parameters are ignored, and the `{"cursor": {pageSize, hasMore, previous, next, data}}`
//! envelope. `sort` is `field[:asc|desc]` (repeatable, Formance's form) on the fields a list
//! allows ([`SortColumn`]), the row id as a stable tiebreaker. Underneath, keyset pagination
//! (see `storage::queries::page`).

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

/// A timestamp column a list can be sorted on; the id breaks ties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortColumn {
    /// `createdAt` (`created_at`): the default.
    #[default]
    #[serde(rename = "c")]
    CreatedAt,
    /// `updatedAt` (`updated_at`): last change, for incremental sync.
    #[serde(rename = "u")]
    UpdatedAt,
}

impl SortColumn {
    /// The SQL column.
    pub fn column(self) -> &'static str {
        match self {
            SortColumn::CreatedAt => "created_at",
            SortColumn::UpdatedAt => "updated_at",
        }
    }

    fn from_name(name: &str) -> Option<SortColumn> {
        match name {
            "createdAt" | "created_at" => Some(SortColumn::CreatedAt),
            "updatedAt" | "updated_at" => Some(SortColumn::UpdatedAt),
            _ => None,
        }
    }

    fn wire(self) -> &'static str {
        match self {
            SortColumn::CreatedAt => "createdAt",
            SortColumn::UpdatedAt => "updatedAt",
        }
    }

    /// Picks this column's value of a row.
    pub fn pick(self, created_at: DateTime<Utc>, updated_at: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            SortColumn::CreatedAt => created_at,
            SortColumn::UpdatedAt => updated_at,
        }
    }
}

/// Everything a page request carries; encoded as the opaque cursor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageRequest<F> {
    /// Rows per page.
    #[serde(rename = "s")]
    pub page_size: i64,
    /// The column ordered on.
    #[serde(rename = "o", default)]
    pub sort: SortColumn,
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
    /// Rows per page; 0 means the default, above 100 is clamped to 100.
    #[param(minimum = 0, default = 15)]
    page_size: Option<i64>,
    /// The opaque `next` or `previous` of an earlier page; when given, every other parameter
    /// is ignored (the cursor carries them).
    cursor: Option<String>,
    /// The order: `<field>:asc` or `<field>:desc` (default `createdAt:desc`, newest first);
    /// the fields are `createdAt` and, on payments, accounts, transfer initiations and bank
    /// accounts, `updatedAt`.
    #[param(example = "createdAt:desc")]
    sort: Option<Vec<String>>,
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
    /// Reads `cursor`, or `pageSize`, `sort` (`createdAt` only) and the filters (`filter`
    /// parses them).
    pub fn from_params(
        params: &Params,
        filter: impl FnOnce(&Params) -> Result<F, ApiError>,
    ) -> Result<Self, ApiError> {
        Self::from_params_sorted(params, &[SortColumn::CreatedAt], filter)
    }

    /// [`Self::from_params`] for a list that can also be sorted on other columns
    /// (`sortable`; its rows must then give [`Self::respond`] that column's value).
    pub fn from_params_sorted(
        params: &Params,
        sortable: &[SortColumn],
        filter: impl FnOnce(&Params) -> Result<F, ApiError>,
    ) -> Result<Self, ApiError> {
        if let Some(token) = params.get("cursor") {
            return Self::decode(token, sortable);
        }
        let page_size = page_size(params.get("pageSize"))?;
        let (sort, ascending) = sort(&params.all("sort"), sortable)?;
        Ok(Self {
            page_size,
            sort,
            ascending,
            filter: filter(params)?,
            bound: None,
            backward: false,
        })
    }

    /// A cursor is client input: its page size and sort column are checked as the parameters
    /// they stand for (a column the list cannot sort on would reach SQL otherwise).
    fn decode(token: &str, sortable: &[SortColumn]) -> Result<Self, ApiError> {
        let invalid = || ApiError::validation("cursor is malformed");
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        let request: Self = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        if !(1..=MAX_PAGE_SIZE).contains(&request.page_size) || !sortable.contains(&request.sort) {
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
            column: self.sort.column(),
            ascending: self.ascending != self.backward,
            bound: self.bound.clone(),
            limit: self.page_size + 1,
        }
    }

    /// Builds the envelope from the rows the keyset query returned; `key` gives a row's
    /// `(value of the sort column, id)`.
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

/// `pageSize` as go-libs reads it: absent or 0 → the default, above the maximum → the
/// maximum (clamped, not refused), not an unsigned 32-bit integer → 400.
pub fn page_size(value: Option<&str>) -> Result<i64, ApiError> {
    let Some(v) = value else {
        return Ok(DEFAULT_PAGE_SIZE);
    };
    let n = v.parse::<u32>().map_err(|_| {
        ApiError::validation(format!(
            "pageSize must be a non-negative integer, not {v:?}"
        ))
    })?;
    Ok(match i64::from(n) {
        0 => DEFAULT_PAGE_SIZE,
        n => n.min(MAX_PAGE_SIZE),
    })
}

/// `sort` values as Formance takes them: `field`, `field:asc`, `field:desc` (also `ASC`,
/// `DESC`, `dsc`); the first names the column, a later one may only repeat it or name `id`
/// (the tiebreaker, always applied in the same direction).
fn sort(values: &[&str], sortable: &[SortColumn]) -> Result<(SortColumn, bool), ApiError> {
    let mut chosen: Option<(SortColumn, bool)> = None;
    for value in values {
        let (field, order) = value.split_once(':').unwrap_or((value, "asc"));
        let ascending = match order.to_ascii_lowercase().as_str() {
            "asc" => true,
            "desc" | "dsc" => false,
            _ => {
                return Err(ApiError::validation(format!(
                    "sort: the order must be asc or desc, not {order:?}"
                )));
            }
        };
        if field == "id" && chosen.is_some() {
            continue;
        }
        let column = SortColumn::from_name(field)
            .filter(|c| sortable.contains(c))
            .ok_or_else(|| {
                let names: Vec<&str> = sortable.iter().map(|c| c.wire()).collect();
                ApiError::validation(format!(
                    "sort: field {field:?} cannot be sorted on (sortable: {})",
                    names.join(", ")
                ))
            })?;
        match chosen {
            None => chosen = Some((column, ascending)),
            Some((c, a)) if c == column && a == ascending => {}
            Some(_) => {
                return Err(ApiError::validation(format!(
                    "sort: only one field can be sorted on, not also {value:?}"
                )));
            }
        }
    }
    Ok(chosen.unwrap_or((SortColumn::CreatedAt, false)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_is_clamped_like_go_libs() {
        assert_eq!(page_size(None).ok(), Some(15));
        assert_eq!(page_size(Some("0")).ok(), Some(15));
        assert_eq!(page_size(Some("7")).ok(), Some(7));
        assert_eq!(page_size(Some("100")).ok(), Some(100));
        assert_eq!(page_size(Some("101")).ok(), Some(100));
        assert_eq!(page_size(Some("4294967295")).ok(), Some(100));
        for bad in ["-1", "ten", "1e3", "4294967296", ""] {
            assert!(page_size(Some(bad)).is_err(), "{bad}");
        }
    }

    /// A cursor crafted with a sort column the list does not have is refused, not run.
    #[test]
    fn a_cursor_sorted_on_a_column_the_list_lacks_is_malformed() {
        let both = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
        let pair = ("sort".to_string(), "updatedAt:asc".to_string());
        let params = Params([pair.clone()].into_iter().collect(), vec![pair]);
        let request = PageRequest::from_params_sorted(&params, &both, |_| Ok(())).expect("page");
        let token = request.encode();
        assert!(PageRequest::<()>::decode(&token, &both).is_ok());
        let refused = PageRequest::<()>::decode(&token, &[SortColumn::CreatedAt]);
        assert!(refused.is_err(), "{:?}", refused.map(|r| r.sort));
    }

    #[test]
    fn sort_takes_formance_forms() {
        let both = [SortColumn::CreatedAt, SortColumn::UpdatedAt];
        let s = |v: &[&str]| sort(v, &both).ok();
        assert_eq!(s(&[]), Some((SortColumn::CreatedAt, false)));
        assert_eq!(s(&["createdAt"]), Some((SortColumn::CreatedAt, true)));
        assert_eq!(
            s(&["created_at:DESC"]),
            Some((SortColumn::CreatedAt, false))
        );
        assert_eq!(
            s(&["updatedAt:asc", "id:asc"]),
            Some((SortColumn::UpdatedAt, true))
        );
        assert_eq!(s(&["amount:asc"]), None);
        assert_eq!(s(&["createdAt:up"]), None);
        assert_eq!(s(&["createdAt:asc", "updatedAt:asc"]), None);
        assert_eq!(sort(&["updatedAt"], &[SortColumn::CreatedAt]).ok(), None);
    }
}
