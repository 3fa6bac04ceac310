//! Webhooks out, managed through the Formance Webhooks v1 API (`/api/webhooks`, src/api/
//! webhook_configs.rs and webhook_deliveries.rs): every matching event of the outbox is
//! POSTed, signed as Formance signs ([`signing`]), to each active config's endpoint.
//!
//! Each ACTIVE config has its own generic [`Publisher`] (`webhook:<config id>`, from the
//! cursor its creation or activation put at the outbox head, in that transaction), whose
//! [`sink::WebhookSink`] sends its events one after the other, retrying the same event with
//! backoff until the horizon, counted from the event's creation ([`retry`]): the outbox order
//! (hence each connector's order) holds on every endpoint, and a slow or dead endpoint delays
//! no other endpoint nor ingestion. It does hold back pruning (its cursor is the slowest) for
//! at most the horizon: past it, each event behind it fails at its first attempt. The
//! [`manager::WebhookManager`] actor keeps the running publishers; [`Webhooks`] is the handle
//! the API and the boot use.

pub mod manager;
pub mod retry;
pub mod sender;
pub mod signing;
pub mod sink;

use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

use crate::events::EventType;
use crate::events::publisher::Publisher;
use crate::secrets::Vault;
use crate::settings::WebhookSettings;
use crate::storage::commands::webhooks::DropOrphanWebhookCursors;
use crate::storage::queries::webhooks as queries;
use crate::storage::{StorageError, StorageHandle};
use manager::{ReconcileWebhook, WebhookManager};
use retry::RetryPolicy;

/// The `app` part of Formance's webhook event types (`payments.saved_payment`).
const APP_PREFIX: &str = "payments.";

/// An event type as Formance's webhooks service names it: lower-case `app.type`.
pub fn formance_type(event_type: &str) -> String {
    format!("{APP_PREFIX}{}", event_type.to_lowercase())
}

/// A config's event type as stored: Formance's form (`payments.saved_payment`), from that
/// form or the envelope's (`SAVED_PAYMENT`), in any case; `None` for a type Tributary never
/// emits.
pub fn normalize_event_type(given: &str) -> Option<String> {
    let lower = given.trim().to_lowercase();
    let bare = lower.strip_prefix(APP_PREFIX).unwrap_or(&lower);
    EventType::parse(&bare.to_uppercase()).map(|t| formance_type(t.as_str()))
}

/// The body sent for an outbox envelope: the envelope byte for byte, except its `type`,
/// which Formance's webhooks service rewrites to its own form (`payments.saved_payment`).
/// The envelope is written by [`crate::events::envelope`] with `type` before `payload`, so the
/// first `"type":"…"` is the envelope's own.
pub fn body_of(envelope: &str, event_type: &str) -> String {
    let from = format!("\"type\":\"{event_type}\"");
    let to = format!("\"type\":\"{}\"", formance_type(event_type));
    envelope.replacen(&from, &to, 1)
}

/// The delivery of `event_id` to `config_id`: the same id whenever the event is read again.
pub fn delivery_id(config_id: Uuid, event_id: Uuid) -> Uuid {
    Uuid::new_v5(&config_id, event_id.as_bytes())
}

/// The publisher name (and cursor name) of a config.
pub fn publisher_name(config_id: Uuid) -> String {
    format!("webhook:{config_id}")
}

/// What the API needs of webhooks out: starting and stopping publishers, the HTTP client and
/// the retry bounds (for the test and replay endpoints).
#[derive(Clone)]
pub struct Webhooks {
    manager: Addr<WebhookManager>,
    /// The vault sealing secrets.
    pub vault: Arc<Vault>,
    /// The HTTP client every attempt uses (its timeout is `[events.webhooks] timeout`).
    pub client: reqwest::Client,
}

impl Webhooks {
    /// Starts the manager and a publisher for every active config (the boot).
    pub async fn start(
        storage: StorageHandle,
        vault: Arc<Vault>,
        settings: &WebhookSettings,
    ) -> Result<Webhooks, StorageError> {
        let client = sender::client(settings.timeout);
        let manager = WebhookManager::new(
            storage.clone(),
            vault.clone(),
            client.clone(),
            RetryPolicy::from_settings(settings),
        )
        .start();
        // A cursor without an active config (an older version, a crash) would hold back pruning.
        let orphans = storage.write(DropOrphanWebhookCursors).await?;
        if orphans > 0 {
            tracing::info!(orphans, "dropped the cursors of inactive webhook configs");
        }
        let active = queries::configs(storage.pool(), None, None, true).await?;
        for config in &active {
            manager.do_send(ReconcileWebhook { id: config.id });
        }
        tracing::info!(webhooks = active.len(), "webhook publishers started");
        Ok(Webhooks {
            manager,
            vault,
            client,
        })
    }

    /// Starts or stops delivering to `id` after its config was created, activated,
    /// deactivated or deleted: its publisher runs exactly while the stored config is active.
    /// The cursor came or went with the config's own write, so no event is lost or sent
    /// before the publisher catches up.
    pub async fn reconcile(&self, id: Uuid) {
        if let Err(error) = self.manager.send(ReconcileWebhook { id }).await {
            tracing::error!(config_id = %id, %error, "webhook manager unreachable");
        }
    }
}

/// The publisher type the manager keeps, re-exported for its messages.
pub type PublisherAddr = Addr<Publisher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_match_as_formance_names_them() {
        assert_eq!(formance_type("SAVED_PAYMENT"), "payments.saved_payment");
        for given in [
            "payments.saved_payment",
            "PAYMENTS.SAVED_PAYMENT",
            "SAVED_PAYMENT",
        ] {
            assert_eq!(
                normalize_event_type(given).as_deref(),
                Some("payments.saved_payment"),
                "{given}"
            );
        }
        assert_eq!(normalize_event_type("ledger.committed_transactions"), None);
        assert_eq!(normalize_event_type("payments.nope"), None);
        assert_eq!(normalize_event_type(""), None);
    }

    #[test]
    fn the_body_carries_formance_s_type_and_nothing_else_changes() {
        let envelope = r#"{"date":"2026-01-01T00:00:00Z","app":"payments","version":"v1","type":"SAVED_PAYMENT","payload":{"type":"SAVED_PAYMENT"}}"#;
        assert_eq!(
            body_of(envelope, "SAVED_PAYMENT"),
            r#"{"date":"2026-01-01T00:00:00Z","app":"payments","version":"v1","type":"payments.saved_payment","payload":{"type":"SAVED_PAYMENT"}}"#
        );
    }

    #[test]
    fn a_delivery_id_is_stable_per_config_and_event() {
        let (c, e) = (Uuid::new_v4(), Uuid::new_v4());
        assert_eq!(delivery_id(c, e), delivery_id(c, e));
        assert_ne!(delivery_id(c, e), delivery_id(Uuid::new_v4(), e));
    }
}
