//! Reads of bank accounts and their related accounts. The account number and IBAN come back
//! as stored (sealed); the API opens them with the vault.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::client;
use super::page::{Condition, Keyset, Sql};
use crate::storage::{Pool, StorageError};

/// A stored bank account.
#[derive(Debug, Clone)]
pub struct BankAccountRow {
    /// Its id.
    pub id: Uuid,
    /// When it was registered.
    pub created_at: DateTime<Utc>,
    /// Its name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// SWIFT/BIC.
    pub swift_bic_code: Option<String>,
    /// The sealed account number.
    pub account_number: Option<Value>,
    /// The sealed IBAN.
    pub iban: Option<Value>,
    /// String metadata.
    pub metadata: Option<Value>,
    /// The connector it was last forwarded to.
    pub connector_id: Option<String>,
    /// When it last changed (creation, forward, metadata): the `updatedAt` sort.
    pub updated_at: DateTime<Utc>,
    /// The accounts linked to it, oldest first.
    pub related: Vec<RelatedAccountRow>,
}

/// One account linked to a bank account.
#[derive(Debug, Clone)]
pub struct RelatedAccountRow {
    /// The link's id.
    pub id: Uuid,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
    /// The account.
    pub account_id: String,
    /// The account's connector.
    pub connector_id: String,
    /// The connector's provider.
    pub provider: String,
}

const COLUMNS: &str = "b.id, b.created_at, b.name, b.country, b.swift_bic_code, \
     b.account_number, b.iban, b.metadata, b.connector_id, b.updated_at";

fn bank_account(row: &Row) -> BankAccountRow {
    BankAccountRow {
        id: row.get(0),
        created_at: row.get(1),
        name: row.get(2),
        country: row.get(3),
        swift_bic_code: row.get(4),
        account_number: row.get(5),
        iban: row.get(6),
        metadata: row.get(7),
        connector_id: row.get(8),
        updated_at: row.get(9),
        related: Vec::new(),
    }
}

/// Fills each row's related accounts (one query for the page).
async fn with_related(
    client: &deadpool_postgres::Client,
    mut rows: Vec<BankAccountRow>,
) -> Result<Vec<BankAccountRow>, StorageError> {
    if rows.is_empty() {
        return Ok(rows);
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let linked = super::query(
        client,
        "SELECT r.bank_account_id, r.id, r.created_at, r.account_id, r.connector_id, c.provider
         FROM bank_account_related_accounts r JOIN connectors c ON c.id = r.connector_id
         WHERE r.bank_account_id = ANY($1)
         ORDER BY r.created_at, r.id",
        &[&ids],
        "reading related accounts",
    )
    .await?;
    let mut by_bank: HashMap<Uuid, Vec<RelatedAccountRow>> = HashMap::new();
    for r in &linked {
        by_bank
            .entry(r.get(0))
            .or_default()
            .push(RelatedAccountRow {
                id: r.get(1),
                created_at: r.get(2),
                account_id: r.get(3),
                connector_id: r.get(4),
                provider: r.get(5),
            });
    }
    for row in &mut rows {
        row.related = by_bank.remove(&row.id).unwrap_or_default();
    }
    Ok(rows)
}

/// A page of bank accounts, filtered by the compiled `query` when there is one.
pub async fn page(
    pool: &Pool,
    condition: Option<&Condition>,
    keyset: &Keyset,
) -> Result<Vec<BankAccountRow>, StorageError> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM bank_accounts b WHERE TRUE"));
    if let Some(condition) = condition {
        sql.condition(condition);
    }
    sql.keyset(keyset, "b", "uuid");
    let client = client(pool, "listing bank accounts").await?;
    let rows = super::query(&client, &sql.text, &sql.params(), "listing bank accounts").await?;
    with_related(&client, rows.iter().map(bank_account).collect()).await
}

/// One bank account.
pub async fn get(pool: &Pool, id: Uuid) -> Result<Option<BankAccountRow>, StorageError> {
    let client = client(pool, "reading a bank account").await?;
    let row = super::query_opt(
        &client,
        &format!("SELECT {COLUMNS} FROM bank_accounts b WHERE b.id = $1"),
        &[&id],
        "reading a bank account",
    )
    .await?;
    let rows = with_related(&client, row.iter().map(bank_account).collect()).await?;
    Ok(rows.into_iter().next())
}
