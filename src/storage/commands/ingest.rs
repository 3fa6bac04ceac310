//! Ingestion: one command writes a batch of accounts, payments and balances with one
//! multi-row (UNNEST) statement per kind, not a round trip per row. Wrapped in
//! [`super::tasks::Fenced`] it commits together with the task's checkpoint.
//!
//! - accounts: inserted, or updated only when a field changed;
//! - payments: inserted (with a first adjustment), or updated only when a tracked field
//!   (status, amount, asset, scheme, accounts) changed, each change kept as an adjustment;
//!   `initial_amount` and the first `raw` never change; re-ingesting is a no-op;
//! - balances: a history row only when the amount changed, else the latest row's
//!   `last_updated_at` moves;
//! - store entries: the connector's key-value store, in the same transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::ids::{AccountKey, ConnectorKey, PaymentKey};
use crate::sdk::ingest::{Batch, IngestReport};
use crate::storage::{StorageError, Tx, WriteCommand};

/// Writes one batch for a connector.
#[derive(Debug, Clone)]
pub struct IngestBatch {
    /// The connector the data belongs to.
    pub connector: ConnectorKey,
    /// The data.
    pub batch: Batch,
}

const UPSERT_ACCOUNTS: &str = "INSERT INTO accounts (id, connector_id, reference, created_at,
        default_asset, account_name, type, metadata, raw)
    SELECT i.id, $1, i.reference, i.created_at, i.default_asset, i.account_name, i.type,
           i.metadata::jsonb, i.raw::jsonb
    FROM unnest($2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::text[],
                $8::text[], $9::text[])
         AS i(id, reference, created_at, default_asset, account_name, type, metadata, raw)
    ON CONFLICT (id) DO UPDATE SET default_asset = EXCLUDED.default_asset,
        account_name = EXCLUDED.account_name, type = EXCLUDED.type,
        metadata = EXCLUDED.metadata, updated_at = now()
    WHERE (accounts.default_asset, accounts.account_name, accounts.type, accounts.metadata)
          IS DISTINCT FROM (EXCLUDED.default_asset, EXCLUDED.account_name, EXCLUDED.type,
                            EXCLUDED.metadata)";

const UPSERT_PAYMENTS: &str = "WITH input AS (
        SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                             $7::text[], $8::text[], $9::text[], $10::text[],
                             $11::timestamptz[], $12::text[], $13::text[])
            AS i(id, reference, type, status, scheme, asset, amount, source, destination,
                 created_at, raw, metadata)
    ),
    upserted AS (
        INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset, amount,
                              initial_amount, source_account_id, destination_account_id,
                              created_at, raw, metadata)
        SELECT id, $1, reference, type, status, scheme, asset, amount::numeric, amount::numeric,
               source, destination, created_at, raw::jsonb, metadata::jsonb
        FROM input
        ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status, amount = EXCLUDED.amount,
            asset = EXCLUDED.asset, scheme = EXCLUDED.scheme,
            source_account_id = EXCLUDED.source_account_id,
            destination_account_id = EXCLUDED.destination_account_id, updated_at = now()
        WHERE (payments.status, payments.amount, payments.asset, payments.scheme,
               payments.source_account_id, payments.destination_account_id)
              IS DISTINCT FROM (EXCLUDED.status, EXCLUDED.amount, EXCLUDED.asset,
                                EXCLUDED.scheme, EXCLUDED.source_account_id,
                                EXCLUDED.destination_account_id)
        RETURNING id, (xmax = 0) AS inserted
    ),
    adjusted AS (
        INSERT INTO payment_adjustments (payment_id, reference, created_at, status, amount, raw)
        SELECT i.id, i.reference, CASE WHEN u.inserted THEN i.created_at ELSE now() END,
               i.status, i.amount::numeric, i.raw::jsonb
        FROM upserted u JOIN input i ON i.id = u.id
    )
    SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM upserted";

const UPSERT_BALANCES: &str = "WITH input AS (
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])
            AS i(account_id, asset, balance, at)
    ),
    latest AS (
        SELECT DISTINCT ON (b.account_id, b.asset) b.account_id, b.asset, b.balance, b.created_at
        FROM balances b JOIN (SELECT DISTINCT account_id, asset FROM input) k
             ON k.account_id = b.account_id AND k.asset = b.asset
        ORDER BY b.account_id, b.asset, b.created_at DESC
    ),
    touched AS (
        UPDATE balances b SET last_updated_at = GREATEST(b.last_updated_at, i.at)
        FROM input i JOIN latest l ON l.account_id = i.account_id AND l.asset = i.asset
        WHERE b.account_id = l.account_id AND b.asset = l.asset AND b.created_at = l.created_at
          AND l.balance = i.balance::numeric
        RETURNING 1
    )
    INSERT INTO balances (account_id, asset, balance, created_at, last_updated_at)
    SELECT i.account_id, i.asset, i.balance::numeric, i.at, i.at
    FROM input i LEFT JOIN latest l ON l.account_id = i.account_id AND l.asset = i.asset
    WHERE l.balance IS DISTINCT FROM i.balance::numeric
    ON CONFLICT (account_id, asset, created_at) DO UPDATE SET balance = EXCLUDED.balance,
        last_updated_at = GREATEST(balances.last_updated_at, EXCLUDED.last_updated_at)";

fn metadata_json(m: &std::collections::BTreeMap<String, String>) -> Option<String> {
    (!m.is_empty()).then(|| serde_json::to_string(m).unwrap_or_default())
}

/// Keeps the last of several items with the same key (a row may appear only once per
/// statement), in first-seen order.
fn last_per_key<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut out: Vec<&T> = Vec::new();
    for item in items {
        match index.get(&key(item)) {
            Some(&i) => out[i] = item,
            None => {
                index.insert(key(item), out.len());
                out.push(item);
            }
        }
    }
    out
}

fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError::db(context, e)
}

impl WriteCommand for IngestBatch {
    type Output = IngestReport;

    async fn apply(&self, tx: &Tx<'_>) -> Result<IngestReport, StorageError> {
        let connector_id = self.connector.id();
        let account_id = |reference: &str| {
            AccountKey {
                connector: self.connector.clone(),
                reference: reference.to_string(),
            }
            .id()
        };
        let mut report = IngestReport::default();

        let accounts = last_per_key(&self.batch.accounts, |a| a.reference.clone());
        if !accounts.is_empty() {
            let stmt = tx
                .prepare_cached(UPSERT_ACCOUNTS)
                .await
                .map_err(db("ingesting accounts"))?;
            let ids: Vec<String> = accounts.iter().map(|a| account_id(&a.reference)).collect();
            let refs: Vec<&str> = accounts.iter().map(|a| a.reference.as_str()).collect();
            let created: Vec<DateTime<Utc>> = accounts.iter().map(|a| a.created_at).collect();
            let assets: Vec<Option<&str>> = accounts
                .iter()
                .map(|a| a.default_asset.as_deref())
                .collect();
            let names: Vec<Option<&str>> =
                accounts.iter().map(|a| a.account_name.as_deref()).collect();
            let types: Vec<&str> = accounts.iter().map(|a| a.account_type.as_str()).collect();
            let metadata: Vec<Option<String>> = accounts
                .iter()
                .map(|a| metadata_json(&a.metadata))
                .collect();
            let raws: Vec<Option<&str>> = accounts.iter().map(|a| a.raw.as_deref()).collect();
            report.accounts_written = tx
                .execute(
                    &stmt,
                    &[
                        &connector_id,
                        &ids,
                        &refs,
                        &created,
                        &assets,
                        &names,
                        &types,
                        &metadata,
                        &raws,
                    ],
                )
                .await
                .map_err(db("ingesting accounts"))?;
        }

        let payments = last_per_key(&self.batch.payments, |p| {
            (p.reference.clone(), p.payment_type)
        });
        if !payments.is_empty() {
            let stmt = tx
                .prepare_cached(UPSERT_PAYMENTS)
                .await
                .map_err(db("ingesting payments"))?;
            let ids: Vec<String> = payments
                .iter()
                .map(|p| {
                    PaymentKey {
                        connector: self.connector.clone(),
                        reference: p.reference.clone(),
                        payment_type: p.payment_type.as_str().to_string(),
                    }
                    .id()
                })
                .collect();
            let refs: Vec<&str> = payments.iter().map(|p| p.reference.as_str()).collect();
            let types: Vec<&str> = payments.iter().map(|p| p.payment_type.as_str()).collect();
            let statuses: Vec<&str> = payments.iter().map(|p| p.status.as_str()).collect();
            let schemes: Vec<&str> = payments.iter().map(|p| p.scheme.as_str()).collect();
            let assets: Vec<&str> = payments.iter().map(|p| p.asset.as_str()).collect();
            let amounts: Vec<&str> = payments.iter().map(|p| p.amount.as_str()).collect();
            let sources: Vec<Option<String>> = payments
                .iter()
                .map(|p| p.source_account.as_deref().map(account_id))
                .collect();
            let destinations: Vec<Option<String>> = payments
                .iter()
                .map(|p| p.destination_account.as_deref().map(account_id))
                .collect();
            let created: Vec<DateTime<Utc>> = payments.iter().map(|p| p.created_at).collect();
            let raws: Vec<Option<&str>> = payments.iter().map(|p| p.raw.as_deref()).collect();
            let metadata: Vec<Option<String>> = payments
                .iter()
                .map(|p| metadata_json(&p.metadata))
                .collect();
            let row = tx
                .query_one(
                    &stmt,
                    &[
                        &connector_id,
                        &ids,
                        &refs,
                        &types,
                        &statuses,
                        &schemes,
                        &assets,
                        &amounts,
                        &sources,
                        &destinations,
                        &created,
                        &raws,
                        &metadata,
                    ],
                )
                .await
                .map_err(db("ingesting payments"))?;
            report.payments_inserted = row.get::<_, i64>(0) as u64;
            report.payments_updated = row.get::<_, i64>(1) as u64;
        }

        let balances = last_per_key(&self.batch.balances, |b| {
            (b.account_reference.clone(), b.asset.clone())
        });
        if !balances.is_empty() {
            let stmt = tx
                .prepare_cached(UPSERT_BALANCES)
                .await
                .map_err(db("ingesting balances"))?;
            let ids: Vec<String> = balances
                .iter()
                .map(|b| account_id(&b.account_reference))
                .collect();
            let assets: Vec<&str> = balances.iter().map(|b| b.asset.as_str()).collect();
            let amounts: Vec<&str> = balances.iter().map(|b| b.balance.as_str()).collect();
            let at: Vec<DateTime<Utc>> = balances.iter().map(|b| b.at).collect();
            report.balances_added = tx
                .execute(&stmt, &[&ids, &assets, &amounts, &at])
                .await
                .map_err(|e| {
                    if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                        // The account may come in another file or a later batch: retry.
                        StorageError::Unavailable {
                            context: "ingesting balances".into(),
                            message: "a balance refers to an account not ingested yet".into(),
                        }
                    } else {
                        StorageError::db("ingesting balances", e)
                    }
                })?;
        }
        if !self.batch.store.is_empty() {
            let stmt = tx
                .prepare_cached(PUT_STORE)
                .await
                .map_err(db("writing the connector store"))?;
            let entries = last_per_key(&self.batch.store, |(k, _)| k.clone());
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            let values: Vec<&serde_json::Value> = entries.iter().map(|(_, v)| v).collect();
            tx.execute(&stmt, &[&connector_id, &keys, &values])
                .await
                .map_err(db("writing the connector store"))?;
        }
        Ok(report)
    }
}

const PUT_STORE: &str = "INSERT INTO connector_kv (connector_id, key, value)
    SELECT $1, k, v FROM unnest($2::text[], $3::jsonb[]) AS i(k, v)
    ON CONFLICT (connector_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()";
