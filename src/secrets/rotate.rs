//! `tributary rotate-key`'s database pass: every stored connector config whose secrets are in
//! clear or under a key other than the current one is sealed again under the current key.
//!
//! Connectors are read in batches by id; each is re-encrypted in a transaction of its own
//! (`SELECT … FOR UPDATE`, then `UPDATE`), so a crash midway leaves every row readable with
//! the keyring (old key or new), and a running service's concurrent config write waits for
//! that row only. Safe beside a running service.
//!
//! Bank accounts' account numbers and IBANs get the same pass, row by row: a value under a
//! key other than the current one is sealed again. The key ids counted after the pass include
//! them, so `--drop-old-keys` never drops a key a bank account still needs. Webhook configs'
//! signing secrets get the same pass and are counted too.

use std::collections::BTreeMap;

use super::SecretsError;
use super::vault::{Vault, kid_of_value, kids_of, secret_fields};
use crate::runtime::Registry;
use crate::storage::{Pool, StorageError};

/// How many connector ids are read at a time.
pub const BATCH: i64 = 100;

/// Why a rotation pass stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A stored value could not be decrypted (the rows before it are done).
    #[error(transparent)]
    Secrets(#[from] SecretsError),
}

/// What a pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rotation {
    /// Connectors read.
    pub connectors: usize,
    /// Connectors whose config was written again.
    pub resealed: usize,
    /// Bank accounts read.
    pub bank_accounts: usize,
    /// Bank accounts whose account number or IBAN was written again.
    pub bank_accounts_resealed: usize,
    /// Webhook configs read.
    pub webhook_configs: usize,
    /// Webhook configs whose signing secret was written again.
    pub webhook_configs_resealed: usize,
    /// After the pass: how many stored values use each key id.
    pub kids_in_use: BTreeMap<String, usize>,
}

/// Re-encrypts every stale stored config under the vault's current key.
pub async fn reencrypt(
    pool: &Pool,
    vault: &Vault,
    registry: &Registry,
) -> Result<Rotation, RotateError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StorageError::pool("rotating keys", e))?;
    let mut done = Rotation::default();
    let mut after = String::new();
    loop {
        let ids: Vec<String> = client
            .query(
                "SELECT id FROM connectors WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &BATCH],
            )
            .await
            .map_err(|e| StorageError::db("listing connectors to re-encrypt", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let Some(last) = ids.last() else { break };
        after = last.clone();
        for id in ids {
            let tx = client
                .transaction()
                .await
                .map_err(|e| StorageError::db("re-encrypting a connector", e))?;
            let row = tx
                .query_opt(
                    "SELECT provider, config FROM connectors WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(|e| StorageError::db("re-encrypting a connector", e))?;
            let Some(row) = row else { continue };
            done.connectors += 1;
            let provider: String = row.get(0);
            let stored: serde_json::Value = row.get(1);
            let schema = registry
                .get(&provider)
                .map(|l| l.schema())
                .unwrap_or_default();
            let opened = vault.open(&id, &schema, &stored)?;
            if opened.stale {
                // The schema's secret fields, and any field stored encrypted (a provider this
                // build does not know keeps its encrypted fields encrypted).
                let mut fields = secret_fields(&schema);
                fields.extend(opened.encrypted.iter().cloned());
                fields.sort();
                fields.dedup();
                let sealed = vault.seal_fields(&id, &fields, &opened.config);
                tx.execute(
                    "UPDATE connectors SET config = $2 WHERE id = $1",
                    &[&id, &sealed],
                )
                .await
                .map_err(|e| StorageError::db("re-encrypting a connector", e))?;
                done.resealed += 1;
            }
            tx.commit()
                .await
                .map_err(|e| StorageError::db("re-encrypting a connector", e))?;
        }
    }
    reencrypt_bank_accounts(&mut client, vault, &mut done).await?;
    reencrypt_webhook_secrets(&mut client, vault, &mut done).await?;
    done.kids_in_use = kids_in_use(pool).await?;
    Ok(done)
}

/// The bank account fields stored encrypted, as their columns are named.
const BANK_FIELDS: [(&str, &str); 2] = [("account_number", "accountNumber"), ("iban", "iban")];

/// Seals again every bank account value under a key other than the current one.
async fn reencrypt_bank_accounts(
    client: &mut deadpool_postgres::Client,
    vault: &Vault,
    done: &mut Rotation,
) -> Result<(), RotateError> {
    let context = "re-encrypting a bank account";
    let mut after = uuid::Uuid::nil();
    loop {
        let ids: Vec<uuid::Uuid> = client
            .query(
                "SELECT id FROM bank_accounts WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &BATCH],
            )
            .await
            .map_err(|e| StorageError::db("listing bank accounts to re-encrypt", e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let Some(last) = ids.last() else { break };
        after = *last;
        for id in ids {
            let tx = client
                .transaction()
                .await
                .map_err(|e| StorageError::db(context, e))?;
            let row = tx
                .query_opt(
                    "SELECT account_number, iban FROM bank_accounts WHERE id = $1 FOR UPDATE",
                    &[&id],
                )
                .await
                .map_err(|e| StorageError::db(context, e))?;
            let Some(row) = row else { continue };
            done.bank_accounts += 1;
            let key = id.to_string();
            let mut resealed = false;
            for (i, (column, field)) in BANK_FIELDS.iter().enumerate() {
                let Some(stored) = row.get::<_, Option<serde_json::Value>>(i) else {
                    continue;
                };
                let (clear, stale) = vault.open_bank_field(&key, field, &stored)?;
                if stale {
                    let sealed = vault.seal_bank_field(&key, field, &clear);
                    tx.execute(
                        &format!("UPDATE bank_accounts SET {column} = $2 WHERE id = $1"),
                        &[&id, &sealed],
                    )
                    .await
                    .map_err(|e| StorageError::db(context, e))?;
                    resealed = true;
                }
            }
            tx.commit()
                .await
                .map_err(|e| StorageError::db(context, e))?;
            done.bank_accounts_resealed += usize::from(resealed);
        }
    }
    Ok(())
}

/// Seals again every webhook signing secret under a key other than the current one.
async fn reencrypt_webhook_secrets(
    client: &mut deadpool_postgres::Client,
    vault: &Vault,
    done: &mut Rotation,
) -> Result<(), RotateError> {
    let context = "re-encrypting a webhook secret";
    let ids: Vec<uuid::Uuid> = client
        .query("SELECT id FROM webhook_configs ORDER BY id", &[])
        .await
        .map_err(|e| StorageError::db("listing webhook configs to re-encrypt", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in ids {
        let tx = client
            .transaction()
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let row = tx
            .query_opt(
                "SELECT secret FROM webhook_configs WHERE id = $1 FOR UPDATE",
                &[&id],
            )
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let Some(row) = row else { continue };
        done.webhook_configs += 1;
        let key = id.to_string();
        let (clear, stale) = vault.open_webhook_secret(&key, &row.get(0))?;
        if stale {
            let sealed = vault.seal_webhook_secret(&key, &clear);
            tx.execute(
                "UPDATE webhook_configs SET secret = $2 WHERE id = $1",
                &[&id, &sealed],
            )
            .await
            .map_err(|e| StorageError::db(context, e))?;
            done.webhook_configs_resealed += 1;
        }
        tx.commit()
            .await
            .map_err(|e| StorageError::db(context, e))?;
    }
    Ok(())
}

/// How many stored values (connector secrets, bank account numbers and IBANs, webhook
/// secrets) use each key id.
pub async fn kids_in_use(pool: &Pool) -> Result<BTreeMap<String, usize>, StorageError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StorageError::pool("counting key ids", e))?;
    let rows = client
        .query("SELECT config FROM connectors", &[])
        .await
        .map_err(|e| StorageError::db("counting key ids", e))?;
    let mut kids = BTreeMap::new();
    for row in rows {
        for kid in kids_of(&row.get(0)) {
            *kids.entry(kid).or_insert(0) += 1;
        }
    }
    let rows = client
        .query("SELECT account_number, iban FROM bank_accounts", &[])
        .await
        .map_err(|e| StorageError::db("counting key ids", e))?;
    for row in rows {
        for i in 0..BANK_FIELDS.len() {
            if let Some(kid) = row
                .get::<_, Option<serde_json::Value>>(i)
                .as_ref()
                .and_then(kid_of_value)
            {
                *kids.entry(kid).or_insert(0) += 1;
            }
        }
    }
    let rows = client
        .query("SELECT secret FROM webhook_configs", &[])
        .await
        .map_err(|e| StorageError::db("counting key ids", e))?;
    for row in rows {
        if let Some(kid) = kid_of_value(&row.get(0)) {
            *kids.entry(kid).or_insert(0) += 1;
        }
    }
    Ok(kids)
}
