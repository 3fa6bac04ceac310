//! The actor runtime: the `ConnectorManager` registry, one `ConnectorSupervisor` per installed
//! connector, one `TaskActor` per live task. [`Runtime`] is the handle the API and boot use.
//!
//! - [`manager`]: install / uninstall / reset / config / pause / resume / restore at boot,
//!   decided by a pure state machine;
//! - [`supervisor`]: schedules, concurrency slots, RUN_NOW_SYNC waiters, task trees;
//! - [`task`]: due times, runs (panics caught), retries and restarts, status writes;
//! - [`policy`]: the restart and retry rules as pure functions;
//! - [`host`]: the runtime side of the SDK seam; [`registry`]: providers by name.

pub mod builtin;
pub mod error;
pub mod guard;
pub mod host;
pub mod manager;
pub mod messages;
pub mod policy;
pub mod registry;
pub mod supervisor;
pub mod task;

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use uuid::Uuid;

pub use error::RuntimeError;
pub use manager::checked_config;
pub use registry::Registry;

use crate::sdk::{Clock, Config, Connector, ConnectorContext, TaskError};
use crate::secrets::Vault;
use crate::settings::RuntimeSettings;
use crate::storage::StorageHandle;
use manager::ConnectorManager;
use messages::{
    CallConnector, InstallConnector, PauseConnector, ResetConnector, RestartTask,
    RestoreConnectors, ResumeConnector, ShutdownRuntime, UninstallConnector, UpdateConnectorConfig,
};

/// A clonable handle to the running runtime.
#[derive(Clone)]
pub struct Runtime {
    manager: Addr<ConnectorManager>,
    registry: Arc<Registry>,
    vault: Arc<Vault>,
}

impl Runtime {
    /// Starts the connector manager on the current arbiter. Nothing runs until [`Runtime::restore`].
    /// Every config it stores or loads crosses `vault` (secrets encrypted at rest).
    pub fn start(
        registry: Registry,
        storage: StorageHandle,
        clock: Arc<dyn Clock>,
        settings: RuntimeSettings,
        vault: Arc<Vault>,
    ) -> Self {
        let registry = Arc::new(registry);
        let manager =
            ConnectorManager::new(registry.clone(), storage, clock, settings, vault.clone())
                .start();
        Self {
            manager,
            registry,
            vault,
        }
    }

    /// The providers this runtime knows.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The keyring configs are sealed and opened with.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    async fn ask<M>(&self, msg: M) -> Result<M::Result, RuntimeError>
    where
        M: Message + Send + 'static,
        M::Result: Send,
        ConnectorManager: Handler<M>,
    {
        self.manager
            .send(msg)
            .await
            .map_err(|_| RuntimeError::Stopped)
    }

    /// Loads every installed connector and resumes its live tasks; never waits on a task.
    pub async fn restore(&self) -> Result<usize, RuntimeError> {
        self.restore_with(HashMap::new()).await
    }

    /// As [`Runtime::restore`], with new configs (by connector id) stored and loaded in place
    /// of the stored ones, so that no task runs with the old config (declared connectors).
    pub async fn restore_with(
        &self,
        configs: HashMap<String, Config>,
    ) -> Result<usize, RuntimeError> {
        self.ask(RestoreConnectors { configs }).await?
    }

    /// Installs a connector (all-or-nothing); answers its id.
    pub async fn install(
        &self,
        provider: &str,
        config: Config,
        declared: bool,
    ) -> Result<String, RuntimeError> {
        self.ask(InstallConnector {
            provider: provider.to_string(),
            config,
            declared,
        })
        .await?
    }

    /// Uninstalls a connector and deletes its data.
    pub async fn uninstall(&self, connector_id: &str) -> Result<(), RuntimeError> {
        self.ask(UninstallConnector {
            connector_id: connector_id.to_string(),
        })
        .await?
    }

    /// Wipes a connector's data and installs it again with the same id.
    pub async fn reset(&self, connector_id: &str) -> Result<(), RuntimeError> {
        self.ask(ResetConnector {
            connector_id: connector_id.to_string(),
        })
        .await?
    }

    /// Replaces a connector's config.
    pub async fn update_config(
        &self,
        connector_id: &str,
        config: Config,
    ) -> Result<(), RuntimeError> {
        self.ask(UpdateConnectorConfig {
            connector_id: connector_id.to_string(),
            config,
        })
        .await?
    }

    /// Pauses a connector (persisted).
    pub async fn pause(&self, connector_id: &str) -> Result<(), RuntimeError> {
        self.ask(PauseConnector {
            connector_id: connector_id.to_string(),
        })
        .await?
    }

    /// Resumes a paused connector.
    pub async fn resume(&self, connector_id: &str) -> Result<(), RuntimeError> {
        self.ask(ResumeConnector {
            connector_id: connector_id.to_string(),
        })
        .await?
    }

    /// Runs an ended task again.
    pub async fn restart_task(
        &self,
        connector_id: &str,
        task_id: Uuid,
    ) -> Result<(), RuntimeError> {
        self.ask(RestartTask {
            connector_id: connector_id.to_string(),
            task_id,
        })
        .await?
    }

    /// Calls into an installed connector (money out, bank accounts, webhooks): `call` gets the
    /// current connector value and a context to schedule its tasks with. A connector whose
    /// config does not load, or with an install, uninstall, reset, config update or pause in
    /// progress, is not called.
    pub async fn call_connector<T, F>(&self, connector_id: &str, call: F) -> Result<T, RuntimeError>
    where
        T: Send + 'static,
        F: FnOnce(
                Arc<dyn Connector>,
                ConnectorContext,
            ) -> futures::future::BoxFuture<'static, Result<T, TaskError>>
            + Send
            + 'static,
    {
        self.ask(CallConnector {
            connector_id: connector_id.to_string(),
            call: Box::new(call),
        })
        .await?
    }

    /// Stops every task without changing its status (service shutdown).
    pub async fn shutdown(&self) {
        let _ = self.manager.send(ShutdownRuntime).await;
    }
}
