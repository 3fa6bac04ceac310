//! Keyset pagination shared by every list: rows are ordered by `(created_at, id)` and a page
//! starts strictly after a bound, so walking the pages while rows are inserted returns every
//! row that existed at the start exactly once (no OFFSET drift).

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// A page of rows in `(column, id)` order after an optional bound.
#[derive(Debug, Clone)]
pub struct Keyset {
    /// The timestamp column ordered on (`created_at` or `updated_at`); `id` breaks ties.
    pub column: &'static str,
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

    /// Appends ` AND (<condition>)`, numbering the condition's parameters after the others.
    pub fn condition(&mut self, condition: &Condition) {
        self.text.push_str(" AND (");
        for piece in &condition.pieces {
            match piece {
                Piece::Sql(text) => self.text.push_str(text),
                Piece::Param(value) => {
                    let (p, cast) = match value.clone() {
                        SqlValue::Text(v) => (self.param(v), "text"),
                        SqlValue::Numeric(v) => (self.param(v), "text::numeric"),
                        SqlValue::Time(v) => (self.param(v), "timestamptz"),
                        SqlValue::Json(v) => (self.param(v), "jsonb"),
                    };
                    self.text.push_str(&format!("{p}::{cast}"));
                }
            }
        }
        self.text.push(')');
    }

    /// Appends the keyset condition, order and limit for columns `page.column` and `id` of
    /// `alias` (`id_type` is the id column's SQL type, e.g. `text` or `uuid`).
    pub fn keyset(&mut self, page: &Keyset, alias: &str, id_type: &str) {
        let column = page.column;
        if let Some((at, id)) = &page.bound {
            let t = self.param(*at);
            let i = self.param(id.clone());
            let cmp = if page.ascending { ">" } else { "<" };
            self.and(&format!(
                "({alias}.{column}, {alias}.id) {cmp} ({t}, {i}::text::{id_type})"
            ));
        }
        let dir = if page.ascending { "ASC" } else { "DESC" };
        let limit = self.param(page.limit);
        self.text.push_str(&format!(
            " ORDER BY {alias}.{column} {dir}, {alias}.id {dir} LIMIT {limit}"
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

/// A parameter value of a compiled filter, typed so that it is bound (never interpolated)
/// with an explicit cast.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// Bound as `text`.
    Text(String),
    /// Exact decimal text, bound as `text` and cast to `numeric` (never a float).
    Numeric(String),
    /// Bound as `timestamptz`.
    Time(DateTime<Utc>),
    /// Bound as `jsonb`.
    Json(serde_json::Value),
}

/// One piece of a compiled filter: SQL text written by the compiler (column names and
/// operators from a fixed table), or a bound parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Trusted SQL text.
    Sql(String),
    /// A parameter.
    Param(SqlValue),
}

/// A filter condition whose parameters are numbered only when appended to a statement
/// ([`Sql::condition`]), so it can be built without knowing the statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Condition {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
}

impl Condition {
    /// Renders the condition alone with parameters `$1…`: for tests and EXPLAIN.
    pub fn render(&self) -> (String, Vec<SqlValue>) {
        let mut sql = Sql::new("");
        sql.condition(self);
        let values = self
            .pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Param(v) => Some(v.clone()),
                Piece::Sql(_) => None,
            })
            .collect();
        let text = sql.text.trim_start_matches(" AND ").to_string();
        (text, values)
    }
}
