//! Writes to pools and their member accounts (`pools`, `pool_accounts`, migration V9).
//!
//! Every change appends its Formance v1 event in the same transaction, in the sequence of no
//! connector (`''`): `SAVED_POOL` (the pool as it is after the change) on creation, a member
//! added or removed and a query set; `DELETED_POOL` on deletion. Adding a member already there,
//! removing a non-member or setting the query a DYNAMIC pool already has changes nothing, so it
//! has no event.

use serde_json::Value;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use super::events::append;
use super::snapshots::{NO_CONNECTOR, deleted, saved_pool};
use crate::events::EventType;
use crate::storage::{StorageError, Tx, WriteCommand};

/// Appends the pool's `SAVED_POOL` as it is now.
async fn saved(tx: &Tx<'_>, id: Uuid) -> Result<(), StorageError> {
    let event = saved_pool(tx, id).await?;
    append(tx, event.as_slice()).await
}

fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError::db(context, e)
}

/// The accounts of `ids` that do not exist, in the order given.
async fn missing_accounts(tx: &Tx<'_>, ids: &[String]) -> Result<Vec<String>, StorageError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = tx
        .query(
            "SELECT i.id FROM unnest($1::text[]) WITH ORDINALITY AS i(id, n)
             WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = i.id) ORDER BY i.n",
            &[&ids],
        )
        .await
        .map_err(db("checking pool accounts"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// An unknown account is a 404, as in Formance (`account does not exist`).
fn unknown_account(id: &str) -> StorageError {
    StorageError::NotFound(format!("account {id} not found"))
}

/// A foreign-key violation on `pool_accounts` means an account (or the pool) went away between
/// the check and the insert.
fn member_error(pool: Uuid, accounts: &str, e: tokio_postgres::Error) -> StorageError {
    if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
        StorageError::NotFound(format!("pool {pool} or account {accounts} not found"))
    } else {
        StorageError::db("adding a pool account", e)
    }
}

/// Creates a pool with its accounts (every one must exist).
#[derive(Debug, Clone)]
pub struct CreatePool {
    /// A new random id.
    pub id: Uuid,
    /// The pool's name.
    pub name: String,
    /// Its member accounts (duplicates are stored once); empty for a DYNAMIC pool.
    pub accounts: Vec<String>,
    /// The query of a DYNAMIC pool (validated by the API; evaluated at read time, see
    /// docs/api.md#pools).
    pub query: Option<Value>,
}

impl WriteCommand for CreatePool {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        if let Some(id) = missing_accounts(tx, &self.accounts).await?.first() {
            return Err(unknown_account(id));
        }
        let kind = if self.query.is_some() {
            "DYNAMIC"
        } else {
            "STATIC"
        };
        tx.execute(
            "INSERT INTO pools (id, name, type, query) VALUES ($1, $2, $3, $4)",
            &[&self.id, &self.name, &kind, &self.query],
        )
        .await
        .map_err(db("creating a pool"))?;
        tx.execute(
            "INSERT INTO pool_accounts (pool_id, account_id)
             SELECT $1, a FROM unnest($2::text[]) AS a ON CONFLICT DO NOTHING",
            &[&self.id, &self.accounts],
        )
        .await
        .map_err(|e| member_error(self.id, &self.accounts.join(", "), e))?;
        saved(tx, self.id).await
    }
}

/// Deletes a pool and its memberships (never the accounts); `false` when there was none.
#[derive(Debug, Clone)]
pub struct DeletePool {
    /// The pool.
    pub id: Uuid,
}

impl WriteCommand for DeletePool {
    type Output = bool;

    async fn apply(&self, tx: &Tx<'_>) -> Result<bool, StorageError> {
        let n = tx
            .execute("DELETE FROM pools WHERE id = $1", &[&self.id])
            .await
            .map_err(db("deleting a pool"))?;
        if n > 0 {
            let id = self.id.to_string();
            let event = deleted(NO_CONNECTOR, EventType::DeletedPool, &id);
            append(tx, event.as_slice()).await?;
        }
        Ok(n > 0)
    }
}

/// Adds an existing account to an existing STATIC pool (already a member: nothing changes); a
/// DYNAMIC pool is refused (its members are what its query matches), as in Formance v3.
#[derive(Debug, Clone)]
pub struct AddPoolAccount {
    /// The pool.
    pub pool: Uuid,
    /// The account.
    pub account: String,
}

impl WriteCommand for AddPoolAccount {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        explicit_pool(tx, self.pool).await?;
        if !missing_accounts(tx, std::slice::from_ref(&self.account))
            .await?
            .is_empty()
        {
            return Err(unknown_account(&self.account));
        }
        let n = tx
            .execute(
                "INSERT INTO pool_accounts (pool_id, account_id) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&self.pool, &self.account],
            )
            .await
            .map_err(|e| member_error(self.pool, &self.account, e))?;
        if n > 0 {
            saved(tx, self.pool).await?;
        }
        Ok(())
    }
}

/// Removes an account from a STATIC pool; an unknown pool is 404, a non-member a no-op (as
/// Formance, whose delete matches no row without an error); a DYNAMIC pool is refused.
#[derive(Debug, Clone)]
pub struct RemovePoolAccount {
    /// The pool.
    pub pool: Uuid,
    /// The account.
    pub account: String,
}

impl WriteCommand for RemovePoolAccount {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        explicit_pool(tx, self.pool).await?;
        let n = tx
            .execute(
                "DELETE FROM pool_accounts WHERE pool_id = $1 AND account_id = $2",
                &[&self.pool, &self.account],
            )
            .await
            .map_err(db("removing a pool account"))?;
        if n > 0 {
            saved(tx, self.pool).await?;
        }
        Ok(())
    }
}

/// Sets a pool's (validated) query, which makes it DYNAMIC: its explicit member rows are
/// dropped, since its members are now the accounts the query matches.
#[derive(Debug, Clone)]
pub struct UpdatePoolQuery {
    /// The pool.
    pub pool: Uuid,
    /// The query (a JSON object).
    pub query: Value,
}

impl WriteCommand for UpdatePoolQuery {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        // Locked, so the comparison and the update see the same row.
        let row = tx
            .query_opt(
                "SELECT type = 'DYNAMIC' AND query = $2 FROM pools WHERE id = $1 FOR UPDATE",
                &[&self.pool, &self.query],
            )
            .await
            .map_err(db("reading a pool"))?;
        match row.map(|r| r.get::<_, Option<bool>>(0)) {
            None => {
                return Err(StorageError::NotFound(format!(
                    "pool {} not found",
                    self.pool
                )));
            }
            // Already DYNAMIC with this very query: nothing changes, no event.
            Some(Some(true)) => return Ok(()),
            Some(_) => {}
        }
        tx.execute(
            "UPDATE pools SET query = $2, type = 'DYNAMIC' WHERE id = $1",
            &[&self.pool, &self.query],
        )
        .await
        .map_err(db("updating a pool's query"))?;
        tx.execute(
            "DELETE FROM pool_accounts WHERE pool_id = $1",
            &[&self.pool],
        )
        .await
        .map_err(db("dropping a dynamic pool's explicit members"))?;
        saved(tx, self.pool).await
    }
}

/// Locks the pool row for the rest of the transaction (a concurrent delete or query update
/// waits); 404 when there is none, 400 when it is DYNAMIC (no explicit members).
async fn explicit_pool(tx: &Tx<'_>, id: Uuid) -> Result<(), StorageError> {
    let row = tx
        .query_opt("SELECT type FROM pools WHERE id = $1 FOR UPDATE", &[&id])
        .await
        .map_err(db("reading a pool"))?;
    match row.map(|r| r.get::<_, String>(0)) {
        Some(kind) if kind == "DYNAMIC" => Err(StorageError::InvalidInput(format!(
            "poolID: pool {id} is DYNAMIC: its members are the accounts its query matches \
             (change them with PATCH /pools/{id}/query)"
        ))),
        Some(_) => Ok(()),
        None => Err(StorageError::NotFound(format!("pool {id} not found"))),
    }
}
