//! Writes of webhooks out: configs (create, activate/deactivate, change secret, delete) and
//! the record of each delivery attempt (the delivery's new state and the attempt, together).

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::storage::{StorageError, Tx, WriteCommand};

/// Gives an active config's publisher its cursor at the outbox head, in the transaction that
/// activates it: every event committed after that transaction is delivered, none before.
/// A cursor already there (a config activated twice) is kept.
///
/// Deactivating or deleting a config drops its cursor in that transaction too ([`drop_cursor`]),
/// so a config is active exactly when it has a cursor, whatever a crash interrupts.
async fn cursor_at_head(tx: &Tx<'_>, id: Uuid) -> Result<(), StorageError> {
    tx.execute(
        "INSERT INTO event_cursors (publisher, position)
         SELECT $1, COALESCE(max(position), 0) FROM events
         ON CONFLICT (publisher) DO NOTHING",
        &[&crate::webhooks::publisher_name(id)],
    )
    .await
    .map_err(|e| StorageError::db("starting a webhook cursor", e))?;
    Ok(())
}

/// Drops the cursor of a config that stops being active (deactivated or deleted).
async fn drop_cursor(tx: &Tx<'_>, id: Uuid) -> Result<(), StorageError> {
    super::events::DropCursor {
        publisher: crate::webhooks::publisher_name(id),
    }
    .apply(tx)
    .await
}

/// Drops every webhook cursor whose config is gone or inactive (left by a version or a crash
/// that did not drop them with the config): such a cursor would hold back pruning forever.
#[derive(Debug, Clone)]
pub struct DropOrphanWebhookCursors;

impl WriteCommand for DropOrphanWebhookCursors {
    type Output = u64;

    async fn apply(&self, tx: &Tx<'_>) -> Result<u64, StorageError> {
        tx.execute(
            "DELETE FROM event_cursors c WHERE c.publisher LIKE 'webhook:%' AND NOT EXISTS (
                 SELECT 1 FROM webhook_configs w
                 WHERE w.active AND c.publisher = 'webhook:' || w.id::text)",
            &[],
        )
        .await
        .map_err(|e| StorageError::db("dropping orphan webhook cursors", e))
    }
}

/// Stores a new webhook config (its secret already sealed), active, its cursor at the outbox
/// head.
#[derive(Debug, Clone)]
pub struct CreateWebhookConfig {
    /// Its id.
    pub id: Uuid,
    /// The http(s) URL.
    pub endpoint: String,
    /// The sealed signing secret.
    pub secret: Value,
    /// Formance's lower-case event types.
    pub event_types: Vec<String>,
}

impl WriteCommand for CreateWebhookConfig {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        tx.execute(
            "INSERT INTO webhook_configs (id, endpoint, secret, event_types, active)
             VALUES ($1, $2, $3, $4, true)",
            &[&self.id, &self.endpoint, &self.secret, &self.event_types],
        )
        .await
        .map_err(|e| StorageError::db("creating a webhook config", e))?;
        cursor_at_head(tx, self.id).await
    }
}

/// Activates or deactivates a config; answers whether it exists. Activation starts its
/// cursor at the outbox head, deactivation drops it, in this transaction.
#[derive(Debug, Clone)]
pub struct SetWebhookConfigActive {
    /// The config.
    pub id: Uuid,
    /// Its new state.
    pub active: bool,
}

impl WriteCommand for SetWebhookConfigActive {
    type Output = bool;

    async fn apply(&self, tx: &Tx<'_>) -> Result<bool, StorageError> {
        let n = tx
            .execute(
                "UPDATE webhook_configs SET active = $2, updated_at = now() WHERE id = $1",
                &[&self.id, &self.active],
            )
            .await
            .map_err(|e| StorageError::db("activating or deactivating a webhook config", e))?;
        if n > 0 && self.active {
            cursor_at_head(tx, self.id).await?;
        } else if n > 0 {
            drop_cursor(tx, self.id).await?;
        }
        Ok(n > 0)
    }
}

/// Changes a config's endpoint, event types and secret (`PUT /configs/{id}`; a secret change
/// alone is `PUT /configs/{id}/secret/change`); a field left `None` keeps its value. Its
/// publisher reads the config before each attempt, so the next attempt follows the change.
/// Answers whether the config exists.
#[derive(Debug, Clone, Default)]
pub struct UpdateWebhookConfig {
    /// The config.
    pub id: Uuid,
    /// The new endpoint.
    pub endpoint: Option<String>,
    /// The new event types (Formance's form).
    pub event_types: Option<Vec<String>>,
    /// The new sealed secret.
    pub secret: Option<Value>,
}

impl WriteCommand for UpdateWebhookConfig {
    type Output = bool;

    async fn apply(&self, tx: &Tx<'_>) -> Result<bool, StorageError> {
        let n = tx
            .execute(
                "UPDATE webhook_configs SET endpoint = COALESCE($2, endpoint),
                     event_types = COALESCE($3, event_types), secret = COALESCE($4, secret),
                     updated_at = now()
                 WHERE id = $1",
                &[&self.id, &self.endpoint, &self.event_types, &self.secret],
            )
            .await
            .map_err(|e| StorageError::db("updating a webhook config", e))?;
        Ok(n > 0)
    }
}

/// Deletes a config (its deliveries stay, for history); answers whether it existed.
#[derive(Debug, Clone)]
pub struct DeleteWebhookConfig {
    /// The config.
    pub id: Uuid,
}

impl WriteCommand for DeleteWebhookConfig {
    type Output = bool;

    async fn apply(&self, tx: &Tx<'_>) -> Result<bool, StorageError> {
        let n = tx
            .execute("DELETE FROM webhook_configs WHERE id = $1", &[&self.id])
            .await
            .map_err(|e| StorageError::db("deleting a webhook config", e))?;
        drop_cursor(tx, self.id).await?;
        Ok(n > 0)
    }
}

/// The delivery an attempt belongs to, as created by its first attempt.
#[derive(Debug, Clone)]
pub struct DeliveryKey {
    /// UUID v5 of (config id, event id).
    pub id: Uuid,
    /// The config.
    pub config_id: Uuid,
    /// The outbox event.
    pub event_id: Uuid,
    /// Formance's form (`payments.saved_payment`).
    pub event_type: String,
    /// The event's connector ('' for none).
    pub connector_id: String,
    /// The event's connector sequence.
    pub sequence: i64,
    /// The body sent.
    pub payload: String,
}

/// Records one HTTP attempt of a delivery and the delivery's state after it, in one
/// transaction: the delivery is created by its first attempt. Answers the attempt's number.
#[derive(Debug, Clone)]
pub struct RecordAttempt {
    /// The delivery.
    pub delivery: DeliveryKey,
    /// Whether the attempt is a replay (the delivery's replay generation moves on).
    pub replay: bool,
    /// The attempt's id.
    pub attempt_id: Uuid,
    /// The endpoint it went to.
    pub endpoint: String,
    /// `succeeded`, `retryable_failure` or `permanent_failure`.
    pub outcome: &'static str,
    /// The answer's status, 0 when none came.
    pub status_code: i32,
    /// The transport error or a description of the refusal.
    pub error: Option<String>,
    /// How long it took.
    pub duration_millis: i64,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
    /// The delivery's status after it: `pending`, `succeeded` or `failed`. Decided by the
    /// database where the stored row may have moved on since it was read: `succeeded` stays;
    /// a failed replay leaves the status, the next attempt and the cycle as they are (the
    /// sink's retries go on, or a failed delivery stays failed).
    pub status: &'static str,
    /// When the next attempt is due (status `pending`).
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the first attempt of this cycle was made (the horizon counts from it).
    pub cycle_started_at: DateTime<Utc>,
}

const UPSERT_DELIVERY: &str = "INSERT INTO webhook_deliveries AS d (id, config_id, event_id,
        event_type, connector_id, sequence, payload, status, attempt_count, replay_generation,
        cycle_started_at, next_attempt_at, last_attempt_at, last_status_code, last_error)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, 0, $9, $10, now(), NULLIF($11, 0), $12)
    ON CONFLICT (id) DO UPDATE SET status = CASE WHEN d.status = 'succeeded' THEN d.status
            WHEN $13 AND EXCLUDED.status <> 'succeeded' THEN d.status
            ELSE EXCLUDED.status END,
        attempt_count = d.attempt_count + 1,
        replay_generation = d.replay_generation + CASE WHEN $13 THEN 1 ELSE 0 END,
        cycle_started_at = CASE WHEN $13 THEN d.cycle_started_at
            ELSE EXCLUDED.cycle_started_at END,
        next_attempt_at = CASE WHEN d.status = 'succeeded' OR EXCLUDED.status = 'succeeded'
            THEN NULL WHEN $13 THEN d.next_attempt_at ELSE EXCLUDED.next_attempt_at END,
        last_attempt_at = now(),
        last_status_code = EXCLUDED.last_status_code, last_error = EXCLUDED.last_error,
        updated_at = now()
    RETURNING attempt_count, replay_generation";

impl WriteCommand for RecordAttempt {
    type Output = i32;

    async fn apply(&self, tx: &Tx<'_>) -> Result<i32, StorageError> {
        let context = "recording a webhook delivery attempt";
        let d = &self.delivery;
        let row = tx
            .query_one(
                UPSERT_DELIVERY,
                &[
                    &d.id,
                    &d.config_id,
                    &d.event_id,
                    &d.event_type,
                    &d.connector_id,
                    &d.sequence,
                    &d.payload,
                    &self.status,
                    &self.cycle_started_at,
                    &self.next_attempt_at,
                    &self.status_code,
                    &self.error,
                    &self.replay,
                ],
            )
            .await
            .map_err(|e| StorageError::db(context, e))?;
        let number: i32 = row.get(0);
        let generation: i32 = row.get(1);
        tx.execute(
            "INSERT INTO webhook_attempts (id, delivery_id, attempt_number, replay_generation,
                endpoint, outcome, status_code, error, duration_millis, response_excerpt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &self.attempt_id,
                &d.id,
                &number,
                &generation,
                &self.endpoint,
                &self.outcome,
                &self.status_code,
                &self.error,
                &self.duration_millis,
                &self.response_excerpt,
            ],
        )
        .await
        .map_err(|e| StorageError::db(context, e))?;
        Ok(number)
    }
}
