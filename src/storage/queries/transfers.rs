//! Reads of transfer initiations with their history, related payments and reversals.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::client;
use super::page::{Condition, Keyset, Sql};
use crate::storage::{Pool, StorageError};

/// A stored transfer initiation, amounts as exact decimal text.
#[derive(Debug, Clone)]
pub struct InitiationRow {
    /// Formance's id.
    pub id: String,
    /// The connector.
    pub connector_id: String,
    /// The connector's provider.
    pub provider: String,
    /// The client's reference.
    pub reference: String,
    /// TRANSFER or PAYOUT.
    pub initiation_type: String,
    /// The status.
    pub status: String,
    /// What is left after reversals.
    pub amount: String,
    /// What was asked.
    pub initial_amount: String,
    /// `CUR/precision`.
    pub asset: String,
    /// Source account id.
    pub source_account_id: Option<String>,
    /// Destination account id.
    pub destination_account_id: String,
    /// The client's description.
    pub description: String,
    /// String metadata.
    pub metadata: Option<Value>,
    /// When to send it.
    pub scheduled_at: DateTime<Utc>,
    /// The last failure.
    pub error: Option<String>,
    /// The current attempt (0: never sent).
    pub attempt: i32,
    /// The current attempt's task.
    pub task_id: Option<Uuid>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed (creation, each status change, a reversal): the `updatedAt` sort.
    pub updated_at: DateTime<Utc>,
    /// Its status history, newest first.
    pub adjustments: Vec<HistoryRow>,
    /// The payments the connector reported for it.
    pub payments: Vec<RelatedPaymentRow>,
}

/// One status change.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// Its id.
    pub id: Uuid,
    /// When.
    pub created_at: DateTime<Utc>,
    /// The status it took.
    pub status: String,
    /// The error that came with it.
    pub error: Option<String>,
    /// Metadata.
    pub metadata: Option<Value>,
}

/// A payment linked to an initiation.
#[derive(Debug, Clone)]
pub struct RelatedPaymentRow {
    /// The payment.
    pub payment_id: String,
    /// When it was linked.
    pub created_at: DateTime<Utc>,
    /// Its current status (from the payment).
    pub status: String,
    /// An error, if any.
    pub error: Option<String>,
}

/// A reversal.
#[derive(Debug, Clone)]
pub struct ReversalRow {
    /// Formance's id.
    pub id: String,
    /// The initiation reversed.
    pub transfer_initiation_id: String,
    /// The client's reference.
    pub reference: String,
    /// The client's description.
    pub description: String,
    /// Exact decimal text.
    pub amount: String,
    /// `CUR/precision`.
    pub asset: String,
    /// PROCESSING, PROCESSED or FAILED.
    pub status: String,
    /// String metadata.
    pub metadata: Option<Value>,
}

/// Filters of the list.
#[derive(Debug, Clone, Default)]
pub struct InitiationFilter {
    /// Only this connector's.
    pub connector_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this type.
    pub initiation_type: Option<String>,
    /// Only this reference.
    pub reference: Option<String>,
    /// The compiled `query`, if any.
    pub condition: Option<Condition>,
}

const COLUMNS: &str = "t.id, t.connector_id, c.provider, t.reference, t.type, t.status, \
     t.amount::text, t.initial_amount::text, t.asset, t.source_account_id, \
     t.destination_account_id, t.description, t.metadata, t.scheduled_at, t.error, t.attempt, \
     t.task_id, t.created_at, t.updated_at";

fn initiation(row: &Row) -> InitiationRow {
    InitiationRow {
        id: row.get(0),
        connector_id: row.get(1),
        provider: row.get(2),
        reference: row.get(3),
        initiation_type: row.get(4),
        status: row.get(5),
        amount: row.get(6),
        initial_amount: row.get(7),
        asset: row.get(8),
        source_account_id: row.get(9),
        destination_account_id: row.get(10),
        description: row.get(11),
        metadata: row.get(12),
        scheduled_at: row.get(13),
        error: row.get(14),
        attempt: row.get(15),
        task_id: row.get(16),
        created_at: row.get(17),
        updated_at: row.get(18),
        adjustments: Vec::new(),
        payments: Vec::new(),
    }
}

/// A page of initiations with their history and payments.
pub async fn page(
    pool: &Pool,
    filter: &InitiationFilter,
    keyset: &Keyset,
) -> Result<Vec<InitiationRow>, StorageError> {
    let mut sql = Sql::new(&format!(
        "SELECT {COLUMNS} FROM transfer_initiations t \
         JOIN connectors c ON c.id = t.connector_id WHERE TRUE"
    ));
    for (column, value) in [
        ("t.connector_id", &filter.connector_id),
        ("t.status", &filter.status),
        ("t.type", &filter.initiation_type),
        ("t.reference", &filter.reference),
    ] {
        if let Some(value) = value {
            let p = sql.param(value.clone());
            sql.and(&format!("{column} = {p}"));
        }
    }
    if let Some(condition) = &filter.condition {
        sql.condition(condition);
    }
    sql.keyset(keyset, "t", "text");
    let client = client(pool, "listing transfer initiations").await?;
    let rows = super::query(
        &client,
        &sql.text,
        &sql.params(),
        "listing transfer initiations",
    )
    .await?;
    let mut list: Vec<InitiationRow> = rows.iter().map(initiation).collect();
    attach(&client, &mut list).await?;
    Ok(list)
}

/// One initiation with its history and payments.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<InitiationRow>, StorageError> {
    let client = client(pool, "reading a transfer initiation").await?;
    let row = super::query_opt(
        &client,
        &format!(
            "SELECT {COLUMNS} FROM transfer_initiations t \
             JOIN connectors c ON c.id = t.connector_id WHERE t.id = $1"
        ),
        &[&id],
        "reading a transfer initiation",
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut list = vec![initiation(&row)];
    attach(&client, &mut list).await?;
    Ok(list.pop())
}

async fn attach(
    client: &deadpool_postgres::Client,
    list: &mut [InitiationRow],
) -> Result<(), StorageError> {
    let ids: Vec<String> = list.iter().map(|i| i.id.clone()).collect();
    let index: HashMap<String, usize> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| (id.clone(), n))
        .collect();
    let context = "reading transfer initiation history";
    let history = super::query(
        client,
        "SELECT transfer_initiation_id, id, created_at, status, error, metadata
         FROM transfer_initiation_adjustments WHERE transfer_initiation_id = ANY($1)
         ORDER BY seq DESC",
        &[&ids],
        context,
    )
    .await?;
    for row in history {
        let owner: String = row.get(0);
        if let Some(&n) = index.get(&owner) {
            list[n].adjustments.push(HistoryRow {
                id: row.get(1),
                created_at: row.get(2),
                status: row.get(3),
                error: row.get(4),
                metadata: row.get(5),
            });
        }
    }
    let payments = super::query(
        client,
        "SELECT l.transfer_initiation_id, l.payment_id, l.created_at,
                COALESCE(p.status, 'OTHER'), l.error
         FROM transfer_initiation_payments l LEFT JOIN payments p ON p.id = l.payment_id
         WHERE l.transfer_initiation_id = ANY($1) ORDER BY l.created_at, l.payment_id",
        &[&ids],
        "reading transfer initiation payments",
    )
    .await?;
    for row in payments {
        let owner: String = row.get(0);
        if let Some(&n) = index.get(&owner) {
            list[n].payments.push(RelatedPaymentRow {
                payment_id: row.get(1),
                created_at: row.get(2),
                status: row.get(3),
                error: row.get(4),
            });
        }
    }
    Ok(())
}

/// One reversal.
pub async fn reversal(pool: &Pool, id: &str) -> Result<Option<ReversalRow>, StorageError> {
    let client = client(pool, "reading a transfer reversal").await?;
    let row = super::query_opt(
        &client,
        "SELECT id, transfer_initiation_id, reference, description, amount::text, asset, status,
                metadata
         FROM transfer_reversals WHERE id = $1",
        &[&id],
        "reading a transfer reversal",
    )
    .await?;
    Ok(row.map(|row| ReversalRow {
        id: row.get(0),
        transfer_initiation_id: row.get(1),
        reference: row.get(2),
        description: row.get(3),
        amount: row.get(4),
        asset: row.get(5),
        status: row.get(6),
        metadata: row.get(7),
    }))
}
