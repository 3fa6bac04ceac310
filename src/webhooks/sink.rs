//! The sink of a webhook publisher: each event the config subscribes to is sent, in order,
//! until it succeeds or its retries reach the horizon ([`super::retry`]); every attempt is
//! recorded with its delivery (src/storage/commands/webhooks.rs). The config is read again
//! before each event and each retry, so a new secret or endpoint applies to every attempt
//! made after the change.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use super::retry::{AfterFailure, RetryPolicy};
use super::sender::{self, Outcome, Request};
use super::{body_of, delivery_id, formance_type};
use crate::events::publisher::{Sink, SinkError};
use crate::runtime::policy::later;
use crate::secrets::Vault;
use crate::storage::StorageHandle;
use crate::storage::commands::webhooks::{DeliveryKey, RecordAttempt};
use crate::storage::queries::events::StoredEvent;
use crate::storage::queries::webhooks::{self as queries, ConfigRow, DeliveryRow};

/// Delivery status: being retried.
pub const PENDING: &str = "pending";
/// Delivery status: the endpoint took it.
pub const SUCCEEDED: &str = "succeeded";
/// Delivery status: given up at the horizon (or a replay failed).
pub const FAILED: &str = "failed";

/// Sends one config's events.
pub struct WebhookSink {
    config_id: Uuid,
    storage: StorageHandle,
    vault: Arc<Vault>,
    client: reqwest::Client,
    policy: RetryPolicy,
}

impl WebhookSink {
    /// The sink of config `config_id`.
    pub fn new(
        config_id: Uuid,
        storage: StorageHandle,
        vault: Arc<Vault>,
        client: reqwest::Client,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            config_id,
            storage,
            vault,
            client,
            policy,
        }
    }

    async fn config(&self) -> Result<ConfigRow, SinkError> {
        match queries::config(self.storage.pool(), self.config_id).await {
            Ok(Some(config)) if config.active => Ok(config),
            Ok(_) => Err(SinkError(format!(
                "webhook config {} is gone or inactive",
                self.config_id
            ))),
            Err(e) => Err(SinkError(e.to_string())),
        }
    }

    /// Sends `event` until it succeeds or fails for good; `Err` only when the database or the
    /// vault failed (the publisher then reads the same events again). `earlier` is what an
    /// earlier run recorded of its delivery.
    async fn deliver_one(
        &self,
        event: &StoredEvent,
        earlier: Option<&DeliveryRow>,
    ) -> Result<(), SinkError> {
        let mut config = self.config().await?;
        let event_type = formance_type(&event.event_type);
        if !config.event_types.contains(&event_type) {
            return Ok(());
        }
        let id = delivery_id(self.config_id, event.id);
        // An earlier run may have finished it (a crash before the cursor moved), or be
        // part-way through its retries.
        let (mut attempts, mut cycle_started) = match earlier {
            Some(d) if d.status != PENDING => return Ok(()),
            Some(d) => (d.attempt_count.max(0) as u32, d.cycle_started_at),
            // The horizon counts from the event: a backlog behind a dead endpoint fails fast
            // once it is older than the horizon, instead of a full horizon per event.
            None => (0, Some(event.created_at)),
        };
        let key = DeliveryKey {
            id,
            config_id: self.config_id,
            event_id: event.id,
            event_type,
            connector_id: event.connector_id.clone(),
            sequence: event.sequence,
            payload: body_of(&event.envelope, &event.event_type),
        };
        loop {
            let now = Utc::now();
            let started = *cycle_started.get_or_insert(now);
            let outcome = attempt(&self.client, &self.vault, &config, &key, false).await?;
            attempts += 1;
            let elapsed = (Utc::now() - started).to_std().unwrap_or_default();
            let next = if outcome.success {
                None
            } else {
                Some(self.policy.after_failure(attempts, elapsed, rand::random()))
            };
            let (status, next_at) = match next {
                None => (SUCCEEDED, None),
                Some(AfterFailure::RetryIn(delay)) => (PENDING, Some(later(Utc::now(), delay))),
                Some(AfterFailure::GiveUp) => (FAILED, None),
            };
            tracing::info!(
                config_id = %self.config_id,
                event_id = %event.id,
                delivery_id = %id,
                attempt = attempts,
                status_code = outcome.status_code,
                error = outcome.error.as_deref(),
                status,
                "webhook attempt"
            );
            record(
                &self.storage,
                &config,
                &key,
                &outcome,
                status,
                next_at,
                started,
                false,
            )
            .await?;
            match next {
                Some(AfterFailure::RetryIn(delay)) => {
                    tokio::time::sleep(delay).await;
                    config = self.config().await?;
                    // A replay may have delivered it meanwhile.
                    match queries::delivery(self.storage.pool(), id).await {
                        Ok(Some(d)) if d.status != PENDING => return Ok(()),
                        Ok(_) => {}
                        Err(e) => return Err(SinkError(e.to_string())),
                    }
                }
                _ => return Ok(()),
            }
        }
    }
}

impl Sink for WebhookSink {
    fn deliver<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
    ) -> LocalBoxFuture<'a, Result<(), SinkError>> {
        Box::pin(async move {
            let ids: Vec<Uuid> = events
                .iter()
                .map(|e| delivery_id(self.config_id, e.id))
                .collect();
            let earlier: HashMap<Uuid, DeliveryRow> =
                queries::deliveries_by_id(self.storage.pool(), &ids)
                    .await
                    .map_err(|e| SinkError(e.to_string()))?
                    .into_iter()
                    .map(|d| (d.id, d))
                    .collect();
            for (event, id) in events.iter().zip(&ids) {
                self.deliver_one(event, earlier.get(id)).await?;
            }
            Ok(())
        })
    }
}

/// Sends `key`'s payload once to `config`'s endpoint, signed with its secret (`test`: the
/// test endpoint's request, without the event headers).
pub async fn attempt(
    client: &reqwest::Client,
    vault: &Vault,
    config: &ConfigRow,
    key: &DeliveryKey,
    test: bool,
) -> Result<Outcome, SinkError> {
    let secret = vault
        .open_webhook_secret(&config.id.to_string(), &config.secret)
        .map(|(secret, _)| secret)
        .map_err(|e| SinkError(e.to_string()))?;
    let delivery = key.id.to_string();
    let request = Request {
        endpoint: &config.endpoint,
        delivery_id: &delivery,
        secret: &secret,
        body: &key.payload,
        test,
        // A test request is of no event.
        idempotency_key: (!test).then(|| key.event_id.to_string()),
        sequence: (!test).then_some((key.connector_id.as_str(), key.sequence)),
    };
    Ok(sender::send(client, &request).await)
}

/// Records an attempt's outcome and the delivery's new state; answers the attempt number.
#[allow(clippy::too_many_arguments)]
pub async fn record(
    storage: &StorageHandle,
    config: &ConfigRow,
    key: &DeliveryKey,
    outcome: &Outcome,
    status: &'static str,
    next_attempt_at: Option<DateTime<Utc>>,
    cycle_started_at: DateTime<Utc>,
    replay: bool,
) -> Result<i32, SinkError> {
    let command = RecordAttempt {
        delivery: key.clone(),
        replay,
        attempt_id: Uuid::new_v4(),
        endpoint: config.endpoint.clone(),
        outcome: match (outcome.success, status) {
            (true, _) => "succeeded",
            (false, PENDING) => "retryable_failure",
            (false, _) => "permanent_failure",
        },
        status_code: i32::from(outcome.status_code),
        error: outcome.error.clone(),
        duration_millis: outcome.duration.as_millis().min(i64::MAX as u128) as i64,
        response_excerpt: outcome.excerpt.clone(),
        status,
        next_attempt_at,
        cycle_started_at,
    };
    storage
        .write(command)
        .await
        .map_err(|e| SinkError(e.to_string()))
}
