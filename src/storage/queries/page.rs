//! Keyset pagination shared by every list: rows are ordered by `(created_at, id)` and a page
//! starts strictly after a bound, so walking the pages while rows are inserted returns every
//! row that existed at the start exactly once (no OFFSET drift).

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// A page of rows in `(created_at, id)` order after an optional bound.
#[derive(Debug, Clone)]
pub struct Keyset {
    /// Ascending (oldest first) or descending.
    pub ascending: bool,
    /// The last row of the previous page in this order, if any.
    pub bound: Option<(DateTime<Utc>, String)>,
    /// How many rows to fetch (the API asks for one more than it shows).
    pub limit: i64,
}

/// A statement being built with numbered parameters.
#[derive(Default)]
pub struct Sql {
    /// The text so far.
    pub text: String,
    /// The parameters, `$1` first.
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Sql {
    /// Starts a statement.
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            params: Vec::new(),
        }
    }

    /// Adds a parameter and returns its placeholder (`$n`).
    pub fn param<T: ToSql + Sync + Send + 'static>(&mut self, value: T) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    /// Appends ` AND <condition>`.
    pub fn and(&mut self, condition: &str) {
        self.text.push_str(" AND ");
        self.text.push_str(condition);
    }

    /// Appends the keyset condition, order and limit for columns `created_at` and `id` of
    /// `alias` (`id_type` is the id column's SQL type, e.g. `text` or `uuid`).
    pub fn keyset(&mut self, page: &Keyset, alias: &str, id_type: &str) {
        if let Some((created_at, id)) = &page.bound {
            let t = self.param(*created_at);
            let i = self.param(id.clone());
            let cmp = if page.ascending { ">" } else { "<" };
            self.and(&format!(
                "({alias}.created_at, {alias}.id) {cmp} ({t}, {i}::text::{id_type})"
            ));
        }
        let dir = if page.ascending { "ASC" } else { "DESC" };
        let limit = self.param(page.limit);
        self.text.push_str(&format!(
            " ORDER BY {alias}.created_at {dir}, {alias}.id {dir} LIMIT {limit}"
        ));
    }

    /// The parameters as the driver takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}
