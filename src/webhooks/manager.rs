//! The webhook manager: one actor keeping a [`Publisher`] per active config. Its mailbox only
//! reconciles a config's publisher with the database (running exactly when the config is
//! active), one config at a time; where to start (the cursor the config's activation saved)
//! and how to deliver are the publisher's and the sink's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use super::retry::RetryPolicy;
use super::sink::WebhookSink;
use super::{PublisherAddr, publisher_name};
use crate::events::publisher::machine::ReaderLimits;
use crate::events::publisher::{Publisher, PublisherOptions, StartAt, StopPublisher};
use crate::secrets::Vault;
use crate::storage::StorageHandle;

/// Keeps the running webhook publishers.
pub struct WebhookManager {
    storage: StorageHandle,
    vault: Arc<Vault>,
    client: reqwest::Client,
    policy: RetryPolicy,
    publishers: HashMap<Uuid, PublisherAddr>,
}

impl WebhookManager {
    /// A manager with no publisher yet.
    pub fn new(
        storage: StorageHandle,
        vault: Arc<Vault>,
        client: reqwest::Client,
        policy: RetryPolicy,
    ) -> Self {
        Self {
            storage,
            vault,
            client,
            policy,
            publishers: HashMap::new(),
        }
    }
}

impl Actor for WebhookManager {
    type Context = Context<Self>;
}

/// Brings a config's publisher in line with the database: running if the config exists and
/// is active, stopped otherwise. The mailbox waits for each reconciliation, so whatever order
/// concurrent activations and deactivations took, the last one reads the last state written.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReconcileWebhook {
    /// The config.
    pub id: Uuid,
}

impl Handler<ReconcileWebhook> for WebhookManager {
    type Result = ();

    fn handle(&mut self, msg: ReconcileWebhook, ctx: &mut Self::Context) {
        let pool = self.storage.pool().clone();
        let id = msg.id;
        let read = async move { crate::storage::queries::webhooks::config(&pool, id).await };
        ctx.wait(read.into_actor(self).map(move |config, act, _ctx| match config {
            Ok(Some(config)) if config.active => act.start_publisher(id),
            Ok(_) => act.stop_publisher(id),
            Err(error) => {
                tracing::warn!(config_id = %id, %error, "cannot read a webhook config to reconcile it");
            }
        }));
    }
}

impl WebhookManager {
    /// Starts the publisher of an active config, unless it runs already.
    fn start_publisher(&mut self, id: Uuid) {
        if self.publishers.contains_key(&id) {
            return;
        }
        let sink = WebhookSink::new(
            id,
            self.storage.clone(),
            self.vault.clone(),
            self.client.clone(),
            self.policy,
        );
        let options = PublisherOptions {
            name: publisher_name(id),
            start_at: StartAt::Saved,
            limits: ReaderLimits {
                batch: 100,
                idle_poll: Duration::from_millis(100),
                retry_initial: self.policy.initial,
                retry_max: self.policy.max,
            },
        };
        tracing::info!(config_id = %id, "webhook publisher starting");
        let publisher = Publisher::start(self.storage.clone(), sink, options);
        self.publishers.insert(id, publisher);
    }

    /// Stops the publisher of a config that is no longer active (its cursor was dropped with
    /// the deactivation, so a save still in flight changes nothing).
    fn stop_publisher(&mut self, id: Uuid) {
        if let Some(publisher) = self.publishers.remove(&id) {
            tracing::info!(config_id = %id, "webhook publisher stopping");
            publisher.do_send(StopPublisher);
        }
    }
}
