//! The webhook manager: one actor keeping a [`Publisher`] per active config. Its mailbox only
//! starts and stops them; where to start (the newest event) and how to deliver are the
//! publisher's and the sink's.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use uuid::Uuid;

use super::retry::RetryPolicy;
use super::sink::WebhookSink;
use super::{PublisherAddr, publisher_name};
use crate::events::publisher::machine::ReaderLimits;
use crate::events::publisher::{Publisher, PublisherOptions, StartAt};
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

/// Starts the publisher of an active config, unless it runs already.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StartWebhook {
    /// The config.
    pub id: Uuid,
}

impl Handler<StartWebhook> for WebhookManager {
    type Result = ();

    fn handle(&mut self, msg: StartWebhook, _ctx: &mut Self::Context) {
        if self.publishers.contains_key(&msg.id) {
            return;
        }
        let sink = WebhookSink::new(
            msg.id,
            self.storage.clone(),
            self.vault.clone(),
            self.client.clone(),
            self.policy,
        );
        let options = PublisherOptions {
            name: publisher_name(msg.id),
            start_at: StartAt::Newest,
            limits: ReaderLimits {
                batch: 100,
                idle_poll: Duration::from_millis(100),
                retry_initial: self.policy.initial,
                retry_max: self.policy.max,
            },
        };
        tracing::info!(config_id = %msg.id, "webhook publisher starting");
        let publisher = Publisher::start(self.storage.clone(), sink, options);
        self.publishers.insert(msg.id, publisher);
    }
}

/// Forgets the publisher of a config, answering it so the caller stops it.
#[derive(Message)]
#[rtype(result = "Option<PublisherAddr>")]
pub struct StopWebhook {
    /// The config.
    pub id: Uuid,
}

impl Handler<StopWebhook> for WebhookManager {
    type Result = Option<PublisherAddr>;

    fn handle(&mut self, msg: StopWebhook, _ctx: &mut Self::Context) -> Self::Result {
        self.publishers.remove(&msg.id)
    }
}
