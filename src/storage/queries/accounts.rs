//! Reads of accounts and their balance history.

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;

use super::client;
use super::page::{Condition, Keyset, Sql};
use crate::storage::{Pool, StorageError};

/// A stored account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Formance's account id.
    pub id: String,
    /// The provider's reference.
    pub reference: String,
    /// The connector.
    pub connector_id: String,
    /// The connector's provider.
    pub provider: String,
    /// When the provider created it.
    pub created_at: DateTime<Utc>,
    /// When it was last changed here.
    pub updated_at: DateTime<Utc>,
    /// `CUR/precision`.
    pub default_asset: Option<String>,
    /// Its name.
    pub account_name: Option<String>,
    /// INTERNAL, EXTERNAL, UNKNOWN.
    pub account_type: String,
    /// String metadata.
    pub metadata: Option<Value>,
    /// The provider's raw object, as JSON text (exact numbers).
    pub raw: Option<String>,
}

/// One balance history row.
#[derive(Debug, Clone)]
pub struct BalanceRow {
    /// The account.
    pub account_id: String,
    /// `CUR/precision`.
    pub asset: String,
    /// Exact integer (may be negative), as text.
    pub balance: String,
    /// When this balance was first seen.
    pub created_at: DateTime<Utc>,
    /// When it was last confirmed.
    pub last_updated_at: DateTime<Utc>,
}

/// Filters of the balance list.
#[derive(Debug, Clone, Default)]
pub struct BalanceFilter {
    /// Only this asset.
    pub asset: Option<String>,
    /// Only balances seen at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Only balances seen before this time.
    pub to: Option<DateTime<Utc>>,
    /// The compiled `query`, if any.
    pub condition: Option<Condition>,
}

const ACCOUNT_COLUMNS: &str = "a.id, a.reference, a.connector_id, c.provider, a.created_at, \
     a.default_asset, a.account_name, a.type, a.metadata, a.raw::text, a.updated_at";

fn account(row: &Row) -> AccountRow {
    AccountRow {
        id: row.get(0),
        reference: row.get(1),
        connector_id: row.get(2),
        provider: row.get(3),
        created_at: row.get(4),
        default_asset: row.get(5),
        account_name: row.get(6),
        account_type: row.get(7),
        metadata: row.get(8),
        raw: row.get(9),
        updated_at: row.get(10),
    }
}

/// A page of accounts, optionally of one connector and matching a compiled `query`.
pub async fn page(
    pool: &Pool,
    connector_id: Option<&str>,
    condition: Option<&Condition>,
    keyset: &Keyset,
) -> Result<Vec<AccountRow>, StorageError> {
    let mut sql = Sql::new(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts a JOIN connectors c ON c.id = a.connector_id \
         WHERE TRUE"
    ));
    if let Some(connector_id) = connector_id {
        let p = sql.param(connector_id.to_string());
        sql.and(&format!("a.connector_id = {p}"));
    }
    if let Some(condition) = condition {
        sql.condition(condition);
    }
    sql.keyset(keyset, "a", "text");
    let client = client(pool, "listing accounts").await?;
    let rows = super::query(&client, &sql.text, &sql.params(), "listing accounts").await?;
    Ok(rows.iter().map(account).collect())
}

/// One account.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<AccountRow>, StorageError> {
    let client = client(pool, "reading an account").await?;
    let row = super::query_opt(
        &client,
        &format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts a \
                 JOIN connectors c ON c.id = a.connector_id WHERE a.id = $1"
        ),
        &[&id],
        "reading an account",
    )
    .await?;
    Ok(row.as_ref().map(account))
}

/// A page of an account's balance history (keyset on `created_at`, asset as the tiebreak).
pub async fn balances(
    pool: &Pool,
    account_id: &str,
    filter: &BalanceFilter,
    keyset: &Keyset,
) -> Result<Vec<BalanceRow>, StorageError> {
    // The balance table's key is (account_id, asset, created_at): `asset` serves as the id.
    let mut sql = Sql::new(
        "SELECT b.account_id, b.asset AS id, b.balance::text, b.created_at, b.last_updated_at
         FROM balances b WHERE b.account_id = $1",
    );
    sql.params.push(Box::new(account_id.to_string()));
    if let Some(asset) = &filter.asset {
        let p = sql.param(asset.clone());
        sql.and(&format!("b.asset = {p}"));
    }
    if let Some(from) = filter.from {
        let p = sql.param(from);
        sql.and(&format!("b.last_updated_at >= {p}"));
    }
    if let Some(to) = filter.to {
        let p = sql.param(to);
        sql.and(&format!("b.created_at < {p}"));
    }
    if let Some(condition) = &filter.condition {
        sql.condition(condition);
    }
    // Keyset on (created_at, asset).
    if let Some((created_at, asset)) = &keyset.bound {
        let t = sql.param(*created_at);
        let a = sql.param(asset.clone());
        let cmp = if keyset.ascending { ">" } else { "<" };
        sql.and(&format!("(b.created_at, b.asset) {cmp} ({t}, {a})"));
    }
    let dir = if keyset.ascending { "ASC" } else { "DESC" };
    let limit = sql.param(keyset.limit);
    sql.text.push_str(&format!(
        " ORDER BY b.created_at {dir}, b.asset {dir} LIMIT {limit}"
    ));
    let client = client(pool, "listing balances").await?;
    let rows = super::query(&client, &sql.text, &sql.params(), "listing balances").await?;
    Ok(rows
        .iter()
        .map(|r| BalanceRow {
            account_id: r.get(0),
            asset: r.get(1),
            balance: r.get(2),
            created_at: r.get(3),
            last_updated_at: r.get(4),
        })
        .collect())
}
