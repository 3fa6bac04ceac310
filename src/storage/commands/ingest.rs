//! Ingestion: one command writes a batch of accounts, payments and balances with one
//! multi-row (UNNEST) statement per kind, not a round trip per row; the commands of many tasks
//! queued in one storage batch share those statements. Wrapped in [`super::tasks::Fenced`] a
//! batch commits together with the task's checkpoint.
//!
//! Every row counts as if ingested alone, one after the other, so where a file's batches
//! split changes nothing. A statement may touch a row only once, so a command's rows are split
//! into generations: the n-th occurrence of a payment (reference, type), an account
//! (reference), a balance (account, asset) or a store key is written by the n-th statement of
//! its kind, which sees what the earlier ones wrote. A batch without a repeated key is one
//! generation: one statement per kind. (Two commands writing one row go in separate rounds,
//! see [`super::rounds`].)
//!
//! - accounts: inserted, or updated only when a field changed (name, default asset, type,
//!   metadata); `created_at` and `raw` are the first occurrence's;
//! - payments: inserted (with a first adjustment), or updated only when a tracked field
//!   (status, amount, asset, scheme, accounts) changed, each change kept as an adjustment;
//!   `initial_amount`, `created_at`, `metadata` and the first `raw` never change; a repeat of
//!   an unchanged payment is a no-op;
//! - balances: a history row only when the amount differs from the latest row's, else the
//!   latest row's `last_updated_at` moves. The table keeps one amount per (account, asset,
//!   instant): such an amount at an instant already stored replaces that instant's (a
//!   correction, no new row), in the same batch as in a later one — 10 then 20 at one instant
//!   leave one row of 20;
//! - store entries: the connector's key-value store, in the same transaction (the last write
//!   of a key wins);
//! - bank account links (related accounts): after every account of the round, one
//!   statement; an existing link is kept (its id is derived from the bank account and the
//!   account), a link to a bank account that does not exist fails the command.
//!
//! Every row the statements report as written (inserted, or changed) gets its Formance event
//! (`SAVED_ACCOUNT`, `SAVED_PAYMENT`, `SAVED_BALANCE`; a bank account with a new link its
//! `SAVED_BANK_ACCOUNT`), appended to the outbox by one statement per round in the same
//! transaction; a no-op re-ingest writes no row, so no event. A payment's event refers to the
//! adjustment row its change writes (its envelope is built when read, see
//! [`crate::events::Stored`]).

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::events::append;
use super::rounds::rounds;
use super::snapshots::saved_bank_account;
use crate::events::payloads::{self, PaymentState, SavedAccount, SavedBalance};
use crate::events::{EventType, NewEvent, outbox_enabled};
use crate::ids::{AccountKey, ConnectorKey, PaymentKey};
use crate::sdk::ingest::{AccountData, BalanceData, Batch, IngestReport, PaymentData};
use crate::storage::actor::single;
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
    SELECT i.id, i.connector_id, i.reference, i.created_at, i.default_asset, i.account_name,
           i.type, i.metadata::jsonb, i.raw::json
    FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::text[])
         AS i(id, connector_id, reference, created_at, default_asset, account_name, type,
              metadata, raw)
    ON CONFLICT (id) DO UPDATE SET default_asset = EXCLUDED.default_asset,
        account_name = EXCLUDED.account_name, type = EXCLUDED.type,
        metadata = EXCLUDED.metadata, updated_at = now()
    WHERE (accounts.default_asset, accounts.account_name, accounts.type, accounts.metadata)
          IS DISTINCT FROM (EXCLUDED.default_asset, EXCLUDED.account_name, EXCLUDED.type,
                            EXCLUDED.metadata)
    RETURNING id, created_at";

// `input` is read twice (payments, adjustments): it is materialized once, so the amounts and
// raw JSON are parsed once, there.
const UPSERT_PAYMENTS: &str = "WITH input AS (
        SELECT i.id, i.connector_id, i.reference, i.type, i.status, i.scheme, i.asset,
               i.amount::numeric AS amount, i.source, i.destination, i.created_at,
               i.raw::json AS raw, i.metadata::jsonb AS metadata
        FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::text[],
                    $11::timestamptz[], $12::text[], $13::text[])
            AS i(id, connector_id, reference, type, status, scheme, asset, amount, source,
                 destination, created_at, raw, metadata)
    ),
    upserted AS (
        INSERT INTO payments (id, connector_id, reference, type, status, scheme, asset, amount,
                              initial_amount, source_account_id, destination_account_id,
                              created_at, raw, metadata)
        SELECT id, connector_id, reference, type, status, scheme, asset, amount,
               amount, source, destination, created_at, raw, metadata
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
        RETURNING id, (xmax = 0) AS inserted, metadata
    ),
    adjusted AS (
        INSERT INTO payment_adjustments (payment_id, reference, created_at, status, amount, raw)
        SELECT i.id, i.reference, CASE WHEN u.inserted THEN i.created_at ELSE now() END,
               i.status, i.amount, i.raw
        FROM upserted u JOIN input i ON i.id = u.id
        RETURNING id, payment_id
    )
    SELECT u.id, u.inserted, a.id, CASE WHEN u.inserted THEN NULL ELSE u.metadata::text END
    FROM upserted u JOIN adjusted a ON a.payment_id = u.id";

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
        last_updated_at = GREATEST(balances.last_updated_at, EXCLUDED.last_updated_at)
    RETURNING account_id, asset";

const LINK_BANK_ACCOUNTS: &str = "INSERT INTO bank_account_related_accounts
        (id, bank_account_id, connector_id, account_id)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[])
    ON CONFLICT (bank_account_id, account_id) DO NOTHING
    RETURNING bank_account_id";

const PUT_STORE: &str = "INSERT INTO connector_kv (connector_id, key, value)
    SELECT c, k, v FROM unnest($1::text[], $2::text[], $3::jsonb[]) AS i(c, k, v)
    ON CONFLICT (connector_id, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()";

fn metadata_json(m: &BTreeMap<String, String>) -> Option<String> {
    (!m.is_empty()).then(|| serde_json::to_string(m).unwrap_or_default())
}

/// Splits `items` by occurrence of their key, each made into a row by `row`: the n-th item
/// with a given key goes into the n-th generation, in order. A generation holds a key at most
/// once (a row may appear only once per statement); without a repeated key there is one.
fn generations<'a, T, K: Hash + Eq, R>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
    row: impl Fn(&'a T) -> R,
) -> Vec<Vec<R>> {
    let mut seen: HashMap<K, usize> = HashMap::with_capacity(items.len());
    let mut out: Vec<Vec<R>> = Vec::new();
    for item in items {
        let n = seen.entry(key(item)).or_insert(0);
        if *n == out.len() {
            // The first generation is usually the only one.
            let capacity = if out.is_empty() { items.len() } else { 1 };
            out.push(Vec::with_capacity(capacity));
        }
        out[*n].push(row(item));
        *n += 1;
    }
    out
}

fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError::db(context, e)
}

/// A payment with the ids it is written under.
struct PaymentRow<'a> {
    id: String,
    source: Option<String>,
    destination: Option<String>,
    data: &'a PaymentData,
}

/// One command's rows with their ids computed once, each kind in [`generations`]: generation
/// n of every command of a round is written by the n-th statement of its kind.
struct Rows<'a> {
    connector_id: String,
    provider: &'a str,
    accounts: Vec<Vec<(String, &'a AccountData)>>,
    payments: Vec<Vec<PaymentRow<'a>>>,
    balances: Vec<Vec<(String, &'a BalanceData)>>,
    store: Vec<Vec<&'a (String, Value)>>,
    /// `(bank account, account id)`.
    links: Vec<(uuid::Uuid, String)>,
}

/// A row a command writes: two commands writing one row go in separate rounds.
#[derive(PartialEq, Eq, Hash)]
enum RowKey<'a> {
    Account(&'a str),
    Payment(&'a str),
    Balance(&'a str, &'a str),
    Store(&'a str, &'a str),
}

impl<'a> Rows<'a> {
    fn of(command: &'a IngestBatch) -> Self {
        let account_id = |reference: &str| {
            AccountKey {
                connector: command.connector.clone(),
                reference: reference.to_string(),
            }
            .id()
        };
        let batch = &command.batch;
        Rows {
            connector_id: command.connector.id(),
            provider: &command.connector.provider,
            accounts: generations(
                &batch.accounts,
                |a| a.reference.as_str(),
                |a| (account_id(&a.reference), a),
            ),
            payments: generations(
                &batch.payments,
                |p| (p.reference.as_str(), p.payment_type),
                |p| PaymentRow {
                    id: PaymentKey {
                        connector: command.connector.clone(),
                        reference: p.reference.clone(),
                        payment_type: p.payment_type.as_str().to_string(),
                    }
                    .id(),
                    source: p.source_account.as_deref().map(account_id),
                    destination: p.destination_account.as_deref().map(account_id),
                    data: p,
                },
            ),
            balances: generations(
                &batch.balances,
                |b| (b.account_reference.as_str(), b.asset.as_str()),
                |b| (account_id(&b.account_reference), b),
            ),
            store: generations(&batch.store, |(k, _)| k.as_str(), |entry| entry),
            links: batch
                .bank_account_links
                .iter()
                .map(|l| (l.bank_account_id, account_id(&l.account_reference)))
                .collect(),
        }
    }

    fn keys(&self) -> Vec<RowKey<'_>> {
        /// The first generation holds every key of its kind.
        fn first<T>(kind: &[Vec<T>]) -> impl Iterator<Item = &T> {
            kind.first().into_iter().flatten()
        }
        let accounts = first(&self.accounts).map(|(id, _)| RowKey::Account(id));
        let payments = first(&self.payments).map(|p| RowKey::Payment(&p.id));
        let balances = first(&self.balances).map(|(id, b)| RowKey::Balance(id, &b.asset));
        let store = first(&self.store).map(|(k, _)| RowKey::Store(&self.connector_id, k));
        accounts
            .chain(payments)
            .chain(balances)
            .chain(store)
            .collect()
    }

    /// How many generations the most repeated row of this command makes.
    fn depth(&self) -> usize {
        [
            self.accounts.len(),
            self.payments.len(),
            self.balances.len(),
            self.store.len(),
        ]
        .into_iter()
        .max()
        .unwrap_or(0)
    }
}

/// Generation `g` of one kind of rows of every command of a round, each with the index of its
/// command in the round.
fn generation<'r, 'a, T>(
    round: &'r [Rows<'a>],
    g: usize,
    kind: impl Fn(&'r Rows<'a>) -> &'r [Vec<T>],
) -> Vec<(usize, &'r Rows<'a>, &'r T)> {
    round
        .iter()
        .enumerate()
        .flat_map(|(i, r)| kind(r).get(g).into_iter().flatten().map(move |t| (i, r, t)))
        .collect()
}

impl WriteCommand for IngestBatch {
    type Output = IngestReport;
    const MERGEABLE: bool = true;

    async fn apply(&self, tx: &Tx<'_>) -> Result<IngestReport, StorageError> {
        single(Self::apply_many(&[self], tx).await?)
    }

    /// The batches of many tasks (many files, many connectors) in one statement per kind (per
    /// generation, when a batch repeats a row).
    async fn apply_many(
        commands: &[&Self],
        tx: &Tx<'_>,
    ) -> Result<Vec<Result<IngestReport, StorageError>>, StorageError> {
        let rows: Vec<Rows<'_>> = commands.iter().map(|c| Rows::of(c)).collect();
        let mut out = Vec::with_capacity(commands.len());
        for round in rounds(&rows, Rows::keys) {
            let mut reports = vec![IngestReport::default(); round.len()];
            let mut events = Events::new();
            // Generation 0 writes every account before any balance refers to it.
            for g in 0..round.iter().map(Rows::depth).max().unwrap_or(0) {
                let accounts = generation(round, g, |r| &r.accounts);
                write_accounts(tx, &accounts, &mut reports, &mut events).await?;
                let payments = generation(round, g, |r| &r.payments);
                write_payments(tx, &payments, &mut reports, &mut events).await?;
                let balances = generation(round, g, |r| &r.balances);
                write_balances(tx, &balances, &mut reports, &mut events).await?;
                write_store(tx, &generation(round, g, |r| &r.store)).await?;
            }
            link_bank_accounts(tx, round, &mut events).await?;
            append(tx, &events.list).await?;
            out.extend(reports.into_iter().map(Ok));
        }
        Ok(out)
    }
}

/// The events of one round, in the order its rows were written; none are built when the
/// outbox is off.
struct Events {
    on: bool,
    date: DateTime<Utc>,
    list: Vec<NewEvent>,
}

impl Events {
    fn new() -> Self {
        Self {
            on: outbox_enabled(),
            date: Utc::now(),
            list: Vec::new(),
        }
    }

    fn push(&mut self, connector_id: &str, event_type: EventType, payload: &impl serde::Serialize) {
        self.list
            .push(NewEvent::new(connector_id, event_type, self.date, payload));
    }
}

async fn write_accounts(
    tx: &Tx<'_>,
    all: &[(usize, &Rows<'_>, &(String, &AccountData))],
    reports: &mut [IngestReport],
    events: &mut Events,
) -> Result<(), StorageError> {
    if all.is_empty() {
        return Ok(());
    }
    let context = "ingesting accounts";
    let stmt = tx
        .prepare_cached(UPSERT_ACCOUNTS)
        .await
        .map_err(db(context))?;
    let ids: Vec<&str> = all.iter().map(|(_, _, (id, _))| id.as_str()).collect();
    let connectors: Vec<&str> = all
        .iter()
        .map(|(_, r, _)| r.connector_id.as_str())
        .collect();
    let refs: Vec<&str> = all
        .iter()
        .map(|(_, _, (_, a))| a.reference.as_str())
        .collect();
    let created: Vec<DateTime<Utc>> = all.iter().map(|(_, _, (_, a))| a.created_at).collect();
    let assets: Vec<Option<&str>> = all
        .iter()
        .map(|(_, _, (_, a))| a.default_asset.as_deref())
        .collect();
    let names: Vec<Option<&str>> = all
        .iter()
        .map(|(_, _, (_, a))| a.account_name.as_deref())
        .collect();
    let types: Vec<&str> = all
        .iter()
        .map(|(_, _, (_, a))| a.account_type.as_str())
        .collect();
    let metadata: Vec<Option<String>> = all
        .iter()
        .map(|(_, _, (_, a))| metadata_json(&a.metadata))
        .collect();
    let raws: Vec<Option<&str>> = all.iter().map(|(_, _, (_, a))| a.raw.as_deref()).collect();
    let written = tx
        .query(
            &stmt,
            &[
                &ids,
                &connectors,
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
        .map_err(db(context))?;
    let owner: HashMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(n, (_, _, (id, _)))| (id.as_str(), n))
        .collect();
    for row in &written {
        let Some(&n) = owner.get(row.get::<_, &str>(0)) else {
            continue;
        };
        let (i, rows, (id, account)) = all[n];
        reports[i].accounts_written += 1;
        if events.on {
            let payload = SavedAccount {
                id: id.clone(),
                created_at: row.get(1),
                reference: account.reference.clone(),
                connector_id: rows.connector_id.clone(),
                provider: rows.provider.to_string(),
                default_asset: account.default_asset.clone().unwrap_or_default(),
                account_name: account.account_name.clone().unwrap_or_default(),
                account_type: account.account_type.as_str().to_string(),
                raw_data: payloads::raw(account.raw.as_deref()),
            };
            events.push(&rows.connector_id, EventType::SavedAccount, &payload);
        }
    }
    Ok(())
}

async fn write_payments(
    tx: &Tx<'_>,
    all: &[(usize, &Rows<'_>, &PaymentRow<'_>)],
    reports: &mut [IngestReport],
    events: &mut Events,
) -> Result<(), StorageError> {
    if all.is_empty() {
        return Ok(());
    }
    let context = "ingesting payments";
    let stmt = tx
        .prepare_cached(UPSERT_PAYMENTS)
        .await
        .map_err(db(context))?;
    let ids: Vec<&str> = all.iter().map(|(_, _, p)| p.id.as_str()).collect();
    let connectors: Vec<&str> = all
        .iter()
        .map(|(_, r, _)| r.connector_id.as_str())
        .collect();
    let refs: Vec<&str> = all
        .iter()
        .map(|(_, _, p)| p.data.reference.as_str())
        .collect();
    let types: Vec<&str> = all
        .iter()
        .map(|(_, _, p)| p.data.payment_type.as_str())
        .collect();
    let statuses: Vec<&str> = all.iter().map(|(_, _, p)| p.data.status.as_str()).collect();
    let schemes: Vec<&str> = all.iter().map(|(_, _, p)| p.data.scheme.as_str()).collect();
    let assets: Vec<&str> = all.iter().map(|(_, _, p)| p.data.asset.as_str()).collect();
    let amounts: Vec<&str> = all.iter().map(|(_, _, p)| p.data.amount.as_str()).collect();
    let sources: Vec<Option<&str>> = all.iter().map(|(_, _, p)| p.source.as_deref()).collect();
    let destinations: Vec<Option<&str>> = all
        .iter()
        .map(|(_, _, p)| p.destination.as_deref())
        .collect();
    let created: Vec<DateTime<Utc>> = all.iter().map(|(_, _, p)| p.data.created_at).collect();
    let raws: Vec<Option<&str>> = all.iter().map(|(_, _, p)| p.data.raw.as_deref()).collect();
    let metadata: Vec<Option<String>> = all
        .iter()
        .map(|(_, _, p)| metadata_json(&p.data.metadata))
        .collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 13] = [
        &ids,
        &connectors,
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
    ];
    let written = tx.query(&stmt, &params).await.map_err(db(context))?;
    // The events of the written rows in input order (the order the statement returns them in
    // is the plan's), so a connector's payments keep their order in its sequence.
    let mut changes: Vec<(usize, NewEvent)> = Vec::new();
    let owner: HashMap<&str, usize> = all
        .iter()
        .enumerate()
        .map(|(n, (_, _, p))| (p.id.as_str(), n))
        .collect();
    for row in &written {
        let Some(&n) = owner.get(row.get::<_, &str>(0)) else {
            continue;
        };
        let (i, rows, p) = all[n];
        let inserted: bool = row.get(1);
        if inserted {
            reports[i].payments_inserted += 1;
        } else {
            reports[i].payments_updated += 1;
        }
        if !events.on {
            continue;
        }
        // The event refers to the change's adjustment row; the fields a later change could
        // overwrite are kept with it. An update keeps the stored metadata (the API may have
        // patched it since; none stored is none), an insert stores the input's.
        let metadata = if inserted {
            p.data.metadata.clone()
        } else {
            row.get::<_, Option<&str>>(3)
                .and_then(|stored| serde_json::from_str(stored).ok())
                .unwrap_or_default()
        };
        let state = PaymentState {
            scheme: p.data.scheme.as_str().to_string(),
            asset: p.data.asset.clone(),
            source_account_id: p.source.clone(),
            destination_account_id: p.destination.clone(),
            metadata,
        };
        let event = NewEvent::payment_change(&rows.connector_id, events.date, row.get(2), &state);
        changes.push((n, event));
    }
    changes.sort_unstable_by_key(|(n, _)| *n);
    events
        .list
        .extend(changes.into_iter().map(|(_, event)| event));
    Ok(())
}

async fn write_balances(
    tx: &Tx<'_>,
    all: &[(usize, &Rows<'_>, &(String, &BalanceData))],
    reports: &mut [IngestReport],
    events: &mut Events,
) -> Result<(), StorageError> {
    if all.is_empty() {
        return Ok(());
    }
    let context = "ingesting balances";
    let stmt = tx
        .prepare_cached(UPSERT_BALANCES)
        .await
        .map_err(db(context))?;
    let ids: Vec<&str> = all.iter().map(|(_, _, (id, _))| id.as_str()).collect();
    let assets: Vec<&str> = all.iter().map(|(_, _, (_, b))| b.asset.as_str()).collect();
    let amounts: Vec<&str> = all
        .iter()
        .map(|(_, _, (_, b))| b.balance.as_str())
        .collect();
    let at: Vec<DateTime<Utc>> = all.iter().map(|(_, _, (_, b))| b.at).collect();
    let written = tx
        .query(&stmt, &[&ids, &assets, &amounts, &at])
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                // The account may come in another file or a later batch: retry.
                StorageError::MissingReference(
                    "ingesting balances: a balance refers to an account not ingested yet".into(),
                )
            } else {
                StorageError::db(context, e)
            }
        })?;
    let owner: HashMap<(&str, &str), usize> = all
        .iter()
        .enumerate()
        .map(|(n, (_, _, (id, b)))| ((id.as_str(), b.asset.as_str()), n))
        .collect();
    for row in &written {
        let key = (row.get::<_, &str>(0), row.get::<_, &str>(1));
        let Some(&n) = owner.get(&key) else {
            continue;
        };
        let (i, rows, (account_id, balance)) = all[n];
        reports[i].balances_added += 1;
        if events.on {
            let payload = SavedBalance {
                account_id: account_id.clone(),
                connector_id: rows.connector_id.clone(),
                provider: rows.provider.to_string(),
                created_at: balance.at,
                asset: balance.asset.clone(),
                balance: payloads::number(balance.balance.as_str()),
            };
            events.push(&rows.connector_id, EventType::SavedBalance, &payload);
        }
    }
    Ok(())
}

/// Writes the round's bank account links (after its accounts); each bank account that got a
/// new one gets its event, once, with every link of the round.
async fn link_bank_accounts(
    tx: &Tx<'_>,
    round: &[Rows<'_>],
    events: &mut Events,
) -> Result<(), StorageError> {
    let links: Vec<(&str, &(uuid::Uuid, String))> = round
        .iter()
        .flat_map(|r| r.links.iter().map(move |l| (r.connector_id.as_str(), l)))
        .collect();
    if links.is_empty() {
        return Ok(());
    }
    let context = "linking accounts to bank accounts";
    let stmt = tx
        .prepare_cached(LINK_BANK_ACCOUNTS)
        .await
        .map_err(db(context))?;
    let ids: Vec<uuid::Uuid> = links
        .iter()
        .map(|(_, (bank, account))| related_account_id(*bank, account))
        .collect();
    let banks: Vec<uuid::Uuid> = links.iter().map(|(_, (bank, _))| *bank).collect();
    let connectors: Vec<&str> = links.iter().map(|(c, _)| *c).collect();
    let accounts: Vec<&str> = links.iter().map(|(_, (_, a))| a.as_str()).collect();
    let linked = tx
        .query(&stmt, &[&ids, &banks, &connectors, &accounts])
        .await
        .map_err(|e| {
            if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                StorageError::InvalidInput(format!(
                    "{context}: a link names a bank account that does not exist ({banks:?})"
                ))
            } else {
                StorageError::db(context, e)
            }
        })?;
    if events.on {
        let mut changed: Vec<uuid::Uuid> = linked.iter().map(|r| r.get(0)).collect();
        changed.sort();
        changed.dedup();
        for id in changed {
            events.list.extend(saved_bank_account(tx, id).await?);
        }
    }
    Ok(())
}

/// A related account's id: the UUID v5 of the bank account id and the account id, so a link
/// ingested twice is one link.
pub fn related_account_id(bank_account_id: uuid::Uuid, account_id: &str) -> uuid::Uuid {
    uuid::Uuid::new_v5(&bank_account_id, account_id.as_bytes())
}

async fn write_store(
    tx: &Tx<'_>,
    all: &[(usize, &Rows<'_>, &&(String, Value))],
) -> Result<(), StorageError> {
    if all.is_empty() {
        return Ok(());
    }
    let context = "writing the connector store";
    let stmt = tx.prepare_cached(PUT_STORE).await.map_err(db(context))?;
    let connectors: Vec<&str> = all
        .iter()
        .map(|(_, r, _)| r.connector_id.as_str())
        .collect();
    let keys: Vec<&str> = all.iter().map(|(_, _, (k, _))| k.as_str()).collect();
    let values: Vec<&Value> = all.iter().map(|(_, _, (_, v))| v).collect();
    tx.execute(&stmt, &[&connectors, &keys, &values])
        .await
        .map_err(db(context))?;
    Ok(())
}
