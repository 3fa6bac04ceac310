//! The events of the API's writes (transfer initiations, bank accounts, pools), built from
//! the changed row read back inside the command's own transaction, after the change: the
//! payload is what the transaction commits, as Formance builds it from its stored model.
//!
//! Each builder returns `None` when the outbox is off (`events.enabled = false`), without
//! reading anything, or when the row is gone.

use chrono::Utc;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::events::payloads::{
    self, BankAccountRelatedAccount, SavedBankAccount, SavedPool, SavedTransferInitiation,
    TransferInitiationPayment,
};
use crate::events::{EventType, NewEvent, outbox_enabled};
use crate::storage::{StorageError, Tx};

/// The connector of the events of bank accounts and pools: none. A bank account is the
/// client's (it outlives a reset or uninstall of the connectors it was forwarded to, and may be
/// forwarded to several), a pool spans connectors: one sequence keeps each one's events in
/// order.
pub const NO_CONNECTOR: &str = "";

fn db(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StorageError {
    move |e| StorageError::db(context, e)
}

// The latest history row gives `status` and `error`, their count `attempts` (Formance:
// `RelatedAdjustments[0]`, `len(RelatedAdjustments)`).
const INITIATION: &str = "SELECT t.connector_id, c.provider, t.created_at, t.scheduled_at,
        t.description, t.type, COALESCE(t.source_account_id, ''), t.destination_account_id,
        t.amount::text, t.asset,
        (SELECT count(*) FROM transfer_initiation_adjustments a
         WHERE a.transfer_initiation_id = t.id),
        COALESCE(l.status, ''), COALESCE(l.error, '')
    FROM transfer_initiations t JOIN connectors c ON c.id = t.connector_id
    LEFT JOIN LATERAL (SELECT status, error FROM transfer_initiation_adjustments a
                       WHERE a.transfer_initiation_id = t.id ORDER BY seq DESC LIMIT 1) l
           ON TRUE
    WHERE t.id = $1";

// As the API shows them (`queries::transfers`): the payment's current status.
const INITIATION_PAYMENTS: &str = "SELECT l.payment_id, l.created_at,
        COALESCE(p.status, 'OTHER'), COALESCE(l.error, '')
    FROM transfer_initiation_payments l LEFT JOIN payments p ON p.id = l.payment_id
    WHERE l.transfer_initiation_id = $1 ORDER BY l.created_at, l.payment_id";

/// `SAVED_TRANSFER_INITIATION` of initiation `id` as it is now in `tx`, in its connector's
/// sequence.
pub async fn saved_initiation(tx: &Tx<'_>, id: &str) -> Result<Option<NewEvent>, StorageError> {
    if !outbox_enabled() {
        return Ok(None);
    }
    let context = "reading a transfer initiation for its event";
    let stmt = tx.prepare_cached(INITIATION).await.map_err(db(context))?;
    let Some(row) = tx.query_opt(&stmt, &[&id]).await.map_err(db(context))? else {
        return Ok(None);
    };
    let stmt = tx
        .prepare_cached(INITIATION_PAYMENTS)
        .await
        .map_err(db(context))?;
    let payments = tx.query(&stmt, &[&id]).await.map_err(db(context))?;
    let connector_id: String = row.get(0);
    let amount: String = row.get(8);
    let attempts: i64 = row.get(10);
    let payload = SavedTransferInitiation {
        id: id.to_string(),
        created_at: row.get(2),
        scheduled_at: row.get(3),
        connector_id: connector_id.clone(),
        provider: row.get(1),
        description: row.get(4),
        initiation_type: row.get(5),
        source_account_id: row.get(6),
        destination_account_id: row.get(7),
        amount: payloads::number(&amount),
        asset: row.get(9),
        attempts,
        status: row.get(11),
        error: row.get(12),
        related_payments: payments
            .iter()
            .map(|p| TransferInitiationPayment {
                transfer_initiation_id: id.to_string(),
                payment_id: p.get(0),
                created_at: p.get(1),
                status: p.get(2),
                error: p.get(3),
            })
            .collect(),
    };
    Ok(Some(NewEvent::new(
        connector_id,
        EventType::SavedTransferInitiation,
        Utc::now(),
        &payload,
    )))
}

/// `DELETED_TRANSFER_INITIATION` or `DELETED_POOL` of `id`, in `connector_id`'s sequence.
pub fn deleted(connector_id: &str, event_type: EventType, id: &str) -> Option<NewEvent> {
    if !outbox_enabled() {
        return None;
    }
    let now = Utc::now();
    let payload = payloads::Deleted {
        created_at: now,
        id: id.to_string(),
    };
    Some(NewEvent::new(connector_id, event_type, now, &payload))
}

// The masks stored at creation (migration V14): this layer cannot open the sealed numbers.
const BANK_ACCOUNT: &str = "SELECT created_at, name, COALESCE(account_number_masked, ''),
        COALESCE(iban_masked, ''), COALESCE(swift_bic_code, ''), country
    FROM bank_accounts WHERE id = $1";

const BANK_ACCOUNT_RELATED: &str = "SELECT r.id, r.created_at, r.account_id, r.connector_id,
        COALESCE(c.provider, '')
    FROM bank_account_related_accounts r LEFT JOIN connectors c ON c.id = r.connector_id
    WHERE r.bank_account_id = $1 ORDER BY r.created_at, r.id";

/// `SAVED_BANK_ACCOUNT` of bank account `id` as it is now in `tx`: its numbers masked as the
/// API shows them, never in clear.
pub async fn saved_bank_account(tx: &Tx<'_>, id: Uuid) -> Result<Option<NewEvent>, StorageError> {
    if !outbox_enabled() {
        return Ok(None);
    }
    let context = "reading a bank account for its event";
    let stmt = tx.prepare_cached(BANK_ACCOUNT).await.map_err(db(context))?;
    let Some(row) = tx.query_opt(&stmt, &[&id]).await.map_err(db(context))? else {
        return Ok(None);
    };
    let stmt = tx
        .prepare_cached(BANK_ACCOUNT_RELATED)
        .await
        .map_err(db(context))?;
    let related: Vec<BankAccountRelatedAccount> = tx
        .query(&stmt, &[&id])
        .await
        .map_err(db(context))?
        .iter()
        .map(|r: &Row| BankAccountRelatedAccount {
            id: r.get::<_, Uuid>(0).to_string(),
            created_at: r.get(1),
            account_id: r.get(2),
            connector_id: r.get(3),
            provider: r.get(4),
        })
        .collect();
    let payload = SavedBankAccount {
        id: id.to_string(),
        created_at: row.get(0),
        name: row.get(1),
        account_number: row.get(2),
        iban: row.get(3),
        swift_bic_code: row.get(4),
        country: row.get(5),
        related_accounts: (!related.is_empty()).then_some(related),
    };
    Ok(Some(NewEvent::new(
        NO_CONNECTOR,
        EventType::SavedBankAccount,
        Utc::now(),
        &payload,
    )))
}

const POOL: &str = "SELECT p.name, p.created_at,
        ARRAY(SELECT account_id FROM pool_accounts a WHERE a.pool_id = p.id
              ORDER BY a.added_at, a.account_id)
    FROM pools p WHERE p.id = $1";

/// `SAVED_POOL` of pool `id` as it is now in `tx`: its explicit members (none for a DYNAMIC
/// pool, whose members are what its query matches when read).
pub async fn saved_pool(tx: &Tx<'_>, id: Uuid) -> Result<Option<NewEvent>, StorageError> {
    if !outbox_enabled() {
        return Ok(None);
    }
    let context = "reading a pool for its event";
    let stmt = tx.prepare_cached(POOL).await.map_err(db(context))?;
    let Some(row) = tx.query_opt(&stmt, &[&id]).await.map_err(db(context))? else {
        return Ok(None);
    };
    let payload = SavedPool {
        id: id.to_string(),
        name: row.get(0),
        created_at: row.get(1),
        account_ids: row.get(2),
    };
    Ok(Some(NewEvent::new(
        NO_CONNECTOR,
        EventType::SavedPool,
        Utc::now(),
        &payload,
    )))
}
