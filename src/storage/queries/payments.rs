//! Reads of payments, their adjustments, accounts and balances.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;

use super::client;
use super::page::{Condition, Keyset, Sql};
use crate::storage::{Pool, StorageError};

/// A stored payment, amounts as exact decimal text.
#[derive(Debug, Clone)]
pub struct PaymentRow {
    /// Formance's payment id.
    pub id: String,
    /// The provider's reference.
    pub reference: String,
    /// The connector.
    pub connector_id: String,
    /// The connector's provider.
    pub provider: String,
    /// PAY-IN, PAYOUT, TRANSFER, OTHER.
    pub payment_type: String,
    /// The status.
    pub status: String,
    /// The scheme.
    pub scheme: String,
    /// `CUR/precision`.
    pub asset: String,
    /// Exact integer, as text.
    pub amount: String,
    /// Exact integer, as text.
    pub initial_amount: String,
    /// Source account id.
    pub source_account_id: Option<String>,
    /// Destination account id.
    pub destination_account_id: Option<String>,
    /// When the provider created it.
    pub created_at: DateTime<Utc>,
    /// When it was last changed here (ingest or metadata).
    pub updated_at: DateTime<Utc>,
    /// The provider's raw object, as JSON text (exact numbers).
    pub raw: Option<String>,
    /// String metadata.
    pub metadata: Option<Value>,
    /// Its history.
    pub adjustments: Vec<AdjustmentRow>,
}

/// One change of a payment.
#[derive(Debug, Clone)]
pub struct AdjustmentRow {
    /// The payment's reference.
    pub reference: String,
    /// When the change happened.
    pub created_at: DateTime<Utc>,
    /// The status after the change.
    pub status: String,
    /// The amount after the change, as text.
    pub amount: String,
    /// The raw object of the change, as JSON text.
    pub raw: Option<String>,
}

/// Filters of the payment list.
#[derive(Debug, Clone, Default)]
pub struct PaymentFilter {
    /// Only this connector's payments.
    pub connector_id: Option<String>,
    /// Only this status.
    pub status: Option<String>,
    /// Only this type.
    pub payment_type: Option<String>,
    /// Only this asset.
    pub asset: Option<String>,
    /// Only this reference.
    pub reference: Option<String>,
    /// The compiled `query`, if any.
    pub condition: Option<Condition>,
}

const PAYMENT_COLUMNS: &str = "p.id, p.reference, p.connector_id, c.provider, p.type, p.status, \
     p.scheme, p.asset, p.amount::text, p.initial_amount::text, p.source_account_id, \
     p.destination_account_id, p.created_at, p.raw::text, p.metadata, p.updated_at";

fn payment(row: &Row) -> PaymentRow {
    PaymentRow {
        id: row.get(0),
        reference: row.get(1),
        connector_id: row.get(2),
        provider: row.get(3),
        payment_type: row.get(4),
        status: row.get(5),
        scheme: row.get(6),
        asset: row.get(7),
        amount: row.get(8),
        initial_amount: row.get(9),
        source_account_id: row.get(10),
        destination_account_id: row.get(11),
        created_at: row.get(12),
        raw: row.get(13),
        metadata: row.get(14),
        updated_at: row.get(15),
        adjustments: Vec::new(),
    }
}

/// The statement of a page of payments (without adjustments): also what the bench EXPLAINs.
pub fn page_sql(filter: &PaymentFilter, keyset: &Keyset) -> Sql {
    let mut sql = Sql::new(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments p JOIN connectors c ON c.id = p.connector_id \
         WHERE TRUE"
    ));
    for (column, value) in [
        ("p.connector_id", &filter.connector_id),
        ("p.status", &filter.status),
        ("p.type", &filter.payment_type),
        ("p.asset", &filter.asset),
        ("p.reference", &filter.reference),
    ] {
        if let Some(value) = value {
            let p = sql.param(value.clone());
            sql.and(&format!("{column} = {p}"));
        }
    }
    if let Some(condition) = &filter.condition {
        sql.condition(condition);
    }
    sql.keyset(keyset, "p", "text");
    sql
}

/// A page of payments with their adjustments.
pub async fn page(
    pool: &Pool,
    filter: &PaymentFilter,
    keyset: &Keyset,
) -> Result<Vec<PaymentRow>, StorageError> {
    let sql = page_sql(filter, keyset);
    let client = client(pool, "listing payments").await?;
    let rows = super::query(&client, &sql.text, &sql.params(), "listing payments").await?;
    let mut payments: Vec<PaymentRow> = rows.iter().map(payment).collect();
    attach_adjustments(&client, &mut payments).await?;
    Ok(payments)
}

/// One payment with its adjustments.
pub async fn get(pool: &Pool, id: &str) -> Result<Option<PaymentRow>, StorageError> {
    let client = client(pool, "reading a payment").await?;
    let row = super::query_opt(
        &client,
        &format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p \
                 JOIN connectors c ON c.id = p.connector_id WHERE p.id = $1"
        ),
        &[&id],
        "reading a payment",
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut payments = vec![payment(&row)];
    attach_adjustments(&client, &mut payments).await?;
    Ok(payments.pop())
}

async fn attach_adjustments(
    client: &deadpool_postgres::Client,
    payments: &mut [PaymentRow],
) -> Result<(), StorageError> {
    if payments.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = payments.iter().map(|p| p.id.as_str()).collect();
    let rows = super::query(
        client,
        "SELECT payment_id, reference, created_at, status, amount::text, raw::text
             FROM payment_adjustments WHERE payment_id = ANY($1) ORDER BY id",
        &[&ids],
        "reading payment adjustments",
    )
    .await?;
    let mut by_payment: HashMap<String, Vec<AdjustmentRow>> = HashMap::new();
    for row in rows {
        by_payment
            .entry(row.get(0))
            .or_default()
            .push(AdjustmentRow {
                reference: row.get(1),
                created_at: row.get(2),
                status: row.get(3),
                amount: row.get(4),
                raw: row.get(5),
            });
    }
    for p in payments {
        p.adjustments = by_payment.remove(&p.id).unwrap_or_default();
    }
    Ok(())
}
