//! `ConnectorManager`: the registry of installed connectors. It runs install, uninstall,
//! reset, config updates, pause/resume and the restore at boot, one operation per connector at
//! a time. Each operation is marked durably before it starts, so a crash mid-way is finished
//! (or, for install, rolled back) at the next boot.
//!
//! The handlers only check and mark state synchronously; each operation then runs as an async
//! workflow that talks to the supervisor and the storage actor by message.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::join_all;
use uuid::Uuid;

use super::error::RuntimeError;
use super::messages::{
    InstallConnector, PauseConnector, ReplaceConnector, RerunTask, ResetConnector, RestartTask,
    RestoreConnectors, ResumeConnector, ResumeTasks, RunHook, ShutdownRuntime, StopAllTasks,
    StopMode, StopSupervisor, UninstallConnector, UpdateConnectorConfig,
};
use super::registry::Registry;
use super::supervisor::{ConnectorSupervisor, SupervisorConfig};
use crate::ids::ConnectorKey;
use crate::redact::Redactor;
use crate::sdk::{Clock, Config, ConfigError, Connector, Loader, TaskError};
use crate::settings::RuntimeSettings;
use crate::storage::commands::connectors::{
    DeleteConnector, InsertConnector, Lifecycle, UpdateConnector, WipeConnectorData,
};
use crate::storage::queries::connectors::ConnectorRow;
use crate::storage::{StorageHandle, queries};

/// What every workflow needs; cheap to clone into a future.
#[derive(Clone)]
struct Env {
    registry: Arc<Registry>,
    storage: StorageHandle,
    clock: Arc<dyn Clock>,
    settings: RuntimeSettings,
}

impl Env {
    fn launch(
        &self,
        connector_id: &str,
        loader: &Arc<dyn Loader>,
        connector: Arc<dyn Connector>,
        redactor: Redactor,
    ) -> Addr<ConnectorSupervisor> {
        ConnectorSupervisor::launch(SupervisorConfig {
            connector_id: connector_id.to_string(),
            connector,
            redactor,
            allow_tasks: loader.allow_tasks(),
            storage: self.storage.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
        })
    }
}

/// An installed connector, as the manager tracks it.
struct Managed {
    supervisor: Addr<ConnectorSupervisor>,
    loader: Arc<dyn Loader>,
    /// An operation is in progress; others are refused until it ends.
    busy: bool,
}

/// The registry actor.
pub struct ConnectorManager {
    env: Env,
    connectors: HashMap<String, Managed>,
    shutting_down: bool,
}

impl ConnectorManager {
    /// A manager over `registry`'s providers.
    pub fn new(
        registry: Arc<Registry>,
        storage: StorageHandle,
        clock: Arc<dyn Clock>,
        settings: RuntimeSettings,
    ) -> Self {
        Self {
            env: Env {
                registry,
                storage,
                clock,
                settings,
            },
            connectors: HashMap::new(),
            shutting_down: false,
        }
    }

    /// Marks a connector busy for an operation; refuses if it is unknown or already busy.
    fn begin(
        &mut self,
        connector_id: &str,
    ) -> Result<(Addr<ConnectorSupervisor>, Arc<dyn Loader>), RuntimeError> {
        if self.shutting_down {
            return Err(RuntimeError::Stopped);
        }
        let managed = self
            .connectors
            .get_mut(connector_id)
            .ok_or_else(|| RuntimeError::ConnectorNotFound(connector_id.to_string()))?;
        if managed.busy {
            return Err(RuntimeError::Conflict(format!(
                "another operation on connector {connector_id} is in progress"
            )));
        }
        managed.busy = true;
        Ok((managed.supervisor.clone(), managed.loader.clone()))
    }
}

impl Actor for ConnectorManager {
    type Context = Context<Self>;
}

/// Internal: the end of a workflow; `keep` is false once the connector is gone.
#[derive(Message)]
#[rtype(result = "()")]
struct Finished {
    connector_id: String,
    keep: bool,
}

/// Internal: a connector now exists (installed or restored).
#[derive(Message)]
#[rtype(result = "()")]
struct Register {
    connector_id: String,
    supervisor: Addr<ConnectorSupervisor>,
    loader: Arc<dyn Loader>,
    busy: bool,
}

impl Handler<Finished> for ConnectorManager {
    type Result = ();

    fn handle(&mut self, msg: Finished, _ctx: &mut Self::Context) {
        if msg.keep {
            if let Some(managed) = self.connectors.get_mut(&msg.connector_id) {
                managed.busy = false;
            }
        } else {
            self.connectors.remove(&msg.connector_id);
        }
    }
}

impl Handler<Register> for ConnectorManager {
    type Result = ();

    fn handle(&mut self, msg: Register, _ctx: &mut Self::Context) {
        self.connectors.insert(
            msg.connector_id,
            Managed {
                supervisor: msg.supervisor,
                loader: msg.loader,
                busy: msg.busy,
            },
        );
    }
}

/// Applies defaults and validates; the name is required for every provider. Returns the
/// config to store and the connector's name. The provider's messages may quote values: the
/// secret ones are masked here, the one place every install, update, validate and declared
/// config passes through.
pub fn checked_config(
    loader: &Arc<dyn Loader>,
    config: Config,
) -> Result<(Config, String), ConfigError> {
    let config = loader.apply_defaults(config);
    if let Err(e) = loader.validate(&config) {
        return Err(Redactor::new(&loader.schema(), &config).config_error(e));
    }
    match config.get("name").and_then(|v| v.as_str()) {
        Some(name) if name.chars().count() > MAX_NAME_CHARS => Err(ConfigError::field(
            "name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        )),
        Some(name) if !name.trim().is_empty() => {
            let name = name.to_string();
            Ok((config, name))
        }
        _ => Err(ConfigError::field("name", "is required")),
    }
}

/// The longest connector name: names are unique through a btree index, whose entries cannot
/// exceed about 2.7 kB (256 characters are at most 1 kB of UTF-8).
pub const MAX_NAME_CHARS: usize = 256;

/// Builds a connector from a checked config, with the redactor of that config's secrets
/// (which also masks them in a load error).
fn load(
    loader: &Arc<dyn Loader>,
    config: &Config,
) -> Result<(Arc<dyn Connector>, Redactor), ConfigError> {
    let redactor = Redactor::new(&loader.schema(), config);
    match loader.load(config) {
        Ok(connector) => Ok((connector, redactor)),
        Err(e) => Err(redactor.config_error(e)),
    }
}

impl Handler<InstallConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<String, RuntimeError>>;

    fn handle(&mut self, msg: InstallConnector, ctx: &mut Self::Context) -> Self::Result {
        let env = self.env.clone();
        let me = ctx.address();
        let shutting_down = self.shutting_down;
        Box::pin(async move {
            if shutting_down {
                return Err(RuntimeError::Stopped);
            }
            let loader = env
                .registry
                .get(&msg.provider)
                .cloned()
                .ok_or_else(|| RuntimeError::UnknownProvider(msg.provider.clone()))?;
            let (config, name) = checked_config(&loader, msg.config)?;
            let (connector, redactor) = load(&loader, &config)?;
            let key = ConnectorKey {
                provider: loader.provider().to_string(),
                reference: Uuid::new_v4(),
            };
            let connector_id = key.id();
            env.storage
                .write(InsertConnector {
                    id: connector_id.clone(),
                    reference: key.reference,
                    provider: key.provider,
                    name,
                    config: serde_json::Value::Object(config),
                    declared: msg.declared,
                })
                .await?;
            let supervisor = env.launch(&connector_id, &loader, connector, redactor);

            let _ = me
                .send(Register {
                    connector_id: connector_id.clone(),
                    supervisor: supervisor.clone(),
                    loader,
                    busy: true,
                })
                .await;
            // A new supervisor is paused; nothing of the connector is stored yet, so resuming
            // starts nothing but lets the install hook's schedules run.
            let resumed = match supervisor.send(ResumeTasks).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(RuntimeError::Stopped),
            };
            let installed = match resumed {
                Ok(()) => supervisor
                    .send(RunHook::Install)
                    .await
                    .unwrap_or(Err(crate::sdk::TaskError::Cancelled))
                    .map_err(RuntimeError::InstallFailed),
                Err(e) => Err(e),
            };
            let result = match installed {
                Ok(()) => env
                    .storage
                    .write(UpdateConnector {
                        id: connector_id.clone(),
                        lifecycle: Some(Lifecycle::Installed),
                        ..Default::default()
                    })
                    .await
                    .map_err(RuntimeError::from),
                Err(e) => Err(e),
            };
            if let Err(e) = result {
                // All-or-nothing: stop what started and delete what was written.
                tracing::warn!(%connector_id, error = %e, "install failed; rolling back");
                let _ = supervisor
                    .send(StopAllTasks {
                        mode: StopMode::Uninstall,
                    })
                    .await;
                let _ = supervisor.send(StopSupervisor).await;
                let _ = env
                    .storage
                    .write(DeleteConnector {
                        id: connector_id.clone(),
                    })
                    .await;
                let _ = me
                    .send(Finished {
                        connector_id,
                        keep: false,
                    })
                    .await;
                return Err(e);
            }
            tracing::info!(%connector_id, provider = loader_provider(&env, &msg.provider), "connector installed");
            let _ = me
                .send(Finished {
                    connector_id: connector_id.clone(),
                    keep: true,
                })
                .await;
            Ok(connector_id)
        })
    }
}

fn loader_provider(env: &Env, provider: &str) -> &'static str {
    env.registry
        .get(provider)
        .map(|l| l.provider())
        .unwrap_or("?")
}

/// Uninstall, after the mark: stop every task, call the hook, delete everything.
async fn uninstall(
    env: &Env,
    connector_id: &str,
    supervisor: &Addr<ConnectorSupervisor>,
) -> Result<(), RuntimeError> {
    let _ = supervisor
        .send(StopAllTasks {
            mode: StopMode::Uninstall,
        })
        .await;
    if let Ok(Err(e)) = supervisor.send(RunHook::Uninstall).await {
        tracing::warn!(%connector_id, error = %e, "connector uninstall hook failed; deleting anyway");
    }
    let _ = supervisor.send(StopSupervisor).await;
    env.storage
        .write(DeleteConnector {
            id: connector_id.to_string(),
        })
        .await?;
    tracing::info!(%connector_id, "connector uninstalled");
    Ok(())
}

/// Reset, after the mark: stop, uninstall hook, wipe the data, install again, same id.
async fn reset(
    env: &Env,
    connector_id: &str,
    supervisor: &Addr<ConnectorSupervisor>,
) -> Result<(), RuntimeError> {
    let _ = supervisor
        .send(StopAllTasks {
            mode: StopMode::Uninstall,
        })
        .await;
    if let Ok(Err(e)) = supervisor.send(RunHook::Uninstall).await {
        tracing::warn!(%connector_id, error = %e, "connector uninstall hook failed during reset");
    }
    env.storage
        .write(WipeConnectorData {
            id: connector_id.to_string(),
        })
        .await?;
    supervisor
        .send(ResumeTasks)
        .await
        .map_err(|_| RuntimeError::Stopped)??;
    let installed = supervisor
        .send(RunHook::Install)
        .await
        .map_err(|_| RuntimeError::Stopped)?;
    env.storage
        .write(UpdateConnector {
            id: connector_id.to_string(),
            lifecycle: Some(Lifecycle::Installed),
            enabled: Some(true),
            ..Default::default()
        })
        .await?;
    installed.map_err(RuntimeError::InstallFailed)?;
    tracing::info!(%connector_id, "connector reset");
    Ok(())
}

/// Marks a connector's lifecycle durably before an operation.
async fn mark(env: &Env, connector_id: &str, lifecycle: Lifecycle) -> Result<(), RuntimeError> {
    env.storage
        .write(UpdateConnector {
            id: connector_id.to_string(),
            lifecycle: Some(lifecycle),
            ..Default::default()
        })
        .await?;
    Ok(())
}

impl ConnectorManager {
    /// Runs `work` as the connector's one operation in progress, then marks it finished;
    /// with `forget_on_success` (uninstall) a successful operation drops the connector.
    fn operation<F, Fut>(
        &mut self,
        ctx: &mut Context<Self>,
        connector_id: String,
        forget_on_success: bool,
        work: F,
    ) -> ResponseFuture<Result<(), RuntimeError>>
    where
        F: FnOnce(Env, String, Addr<ConnectorSupervisor>, Arc<dyn Loader>) -> Fut + 'static,
        Fut: Future<Output = Result<(), RuntimeError>> + 'static,
    {
        let started = self.begin(&connector_id);
        let env = self.env.clone();
        let me = ctx.address();
        Box::pin(async move {
            let (supervisor, loader) = started?;
            let result = work(env, connector_id.clone(), supervisor, loader).await;
            let keep = !(forget_on_success && result.is_ok());
            let _ = me.send(Finished { connector_id, keep }).await;
            result
        })
    }
}

/// Persists the paused (false) or running (true) flag.
async fn set_enabled(env: &Env, connector_id: &str, enabled: bool) -> Result<(), RuntimeError> {
    env.storage
        .write(UpdateConnector {
            id: connector_id.to_string(),
            enabled: Some(enabled),
            ..Default::default()
        })
        .await?;
    Ok(())
}

impl Handler<UninstallConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: UninstallConnector, ctx: &mut Self::Context) -> Self::Result {
        self.operation(
            ctx,
            msg.connector_id,
            true,
            |env, id, supervisor, _| async move {
                mark(&env, &id, Lifecycle::Uninstalling).await?;
                uninstall(&env, &id, &supervisor).await
            },
        )
    }
}

impl Handler<ResetConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: ResetConnector, ctx: &mut Self::Context) -> Self::Result {
        self.operation(
            ctx,
            msg.connector_id,
            false,
            |env, id, supervisor, _| async move {
                mark(&env, &id, Lifecycle::Resetting).await?;
                reset(&env, &id, &supervisor).await
            },
        )
    }
}

impl Handler<UpdateConnectorConfig> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: UpdateConnectorConfig, ctx: &mut Self::Context) -> Self::Result {
        let config = msg.config;
        self.operation(
            ctx,
            msg.connector_id,
            false,
            |env, id, supervisor, loader| async move {
                let (config, name) = checked_config(&loader, config)?;
                let (connector, redactor) = load(&loader, &config)?;
                env.storage
                    .write(UpdateConnector {
                        id,
                        config: Some(serde_json::Value::Object(config)),
                        name: Some(name),
                        ..Default::default()
                    })
                    .await?;
                match supervisor
                    .send(ReplaceConnector {
                        connector,
                        redactor,
                    })
                    .await
                {
                    Ok(Err(e)) => Err(RuntimeError::ConfigHookFailed(e)),
                    _ => Ok(()),
                }
            },
        )
    }
}

impl Handler<PauseConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: PauseConnector, ctx: &mut Self::Context) -> Self::Result {
        self.operation(
            ctx,
            msg.connector_id,
            false,
            |env, id, supervisor, _| async move {
                set_enabled(&env, &id, false).await?;
                let _ = supervisor
                    .send(StopAllTasks {
                        mode: StopMode::Pause,
                    })
                    .await;
                Ok(())
            },
        )
    }
}

impl Handler<ResumeConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: ResumeConnector, ctx: &mut Self::Context) -> Self::Result {
        self.operation(
            ctx,
            msg.connector_id,
            false,
            |env, id, supervisor, _| async move {
                set_enabled(&env, &id, true).await?;
                supervisor
                    .send(ResumeTasks)
                    .await
                    .map_err(|_| RuntimeError::Stopped)??;
                Ok(())
            },
        )
    }
}

impl Handler<RestartTask> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: RestartTask, _ctx: &mut Self::Context) -> Self::Result {
        let supervisor = self
            .connectors
            .get(&msg.connector_id)
            .map(|m| m.supervisor.clone())
            .ok_or_else(|| RuntimeError::ConnectorNotFound(msg.connector_id.clone()));
        Box::pin(async move {
            supervisor?
                .send(RerunTask {
                    task_id: msg.task_id,
                })
                .await
                .map_err(|_| RuntimeError::Stopped)?
        })
    }
}

/// Stands in for a connector whose stored config no longer loads: it runs nothing, and
/// uninstalling it works.
struct Unloadable(String);

#[async_trait::async_trait]
impl Connector for Unloadable {
    async fn install(&self, _ctx: &crate::sdk::ConnectorContext) -> Result<(), TaskError> {
        Err(TaskError::non_retryable(format!(
            "stored config does not load: {}",
            self.0
        )))
    }

    fn resolve(
        &self,
        _descriptor: &serde_json::Value,
    ) -> Result<Box<dyn crate::sdk::Task>, TaskError> {
        Err(TaskError::non_retryable(format!(
            "stored config does not load: {}",
            self.0
        )))
    }
}

/// Restores one stored connector at boot; answers whether it runs.
async fn restore_one(env: &Env, me: &Addr<ConnectorManager>, row: ConnectorRow) -> bool {
    let id = row.id.clone();
    let Some(loader) = env.registry.get(&row.provider).cloned() else {
        tracing::error!(connector_id = %id, provider = %row.provider, "unknown provider; connector not started");
        return false;
    };
    if row.lifecycle == Lifecycle::Installing {
        // The process died during install: all-or-nothing means it never happened.
        tracing::warn!(connector_id = %id, "rolling back an interrupted install");
        let _ = env.storage.write(DeleteConnector { id }).await;
        return false;
    }
    let config = match row.config {
        serde_json::Value::Object(map) => map,
        _ => Config::new(),
    };
    // A stored config that no longer loads (a provider's validation changed) keeps the
    // connector registered but idle, so that it can still be reconfigured or uninstalled.
    let redactor = Redactor::new(&loader.schema(), &config);
    let (connector, loads): (Arc<dyn Connector>, bool) = match loader.load(&config) {
        Ok(c) => (c, true),
        Err(e) => {
            let e = redactor.config_error(e);
            tracing::error!(connector_id = %id, error = %e,
                "stored config does not load; connector idle: update its config, then resume it, or uninstall it");
            (Arc::new(Unloadable(e.to_string())), false)
        }
    };
    // Supervisors start paused: only a loadable, enabled, installed connector is resumed.
    let supervisor = env.launch(&id, &loader, connector, redactor);
    let _ = me
        .send(Register {
            connector_id: id.clone(),
            supervisor: supervisor.clone(),
            loader,
            busy: row.lifecycle != Lifecycle::Installed,
        })
        .await;
    match row.lifecycle {
        Lifecycle::Uninstalling => {
            tracing::warn!(connector_id = %id, "finishing an interrupted uninstall");
            let done = uninstall(env, &id, &supervisor).await;
            let keep = done.is_err();
            if let Err(e) = done {
                tracing::error!(connector_id = %id, error = %e, "uninstall could not be finished");
            }
            let _ = me
                .send(Finished {
                    connector_id: id,
                    keep,
                })
                .await;
            false
        }
        Lifecycle::Resetting => {
            tracing::warn!(connector_id = %id, "finishing an interrupted reset");
            if let Err(e) = reset(env, &id, &supervisor).await {
                tracing::error!(connector_id = %id, error = %e, "reset could not be finished");
            }
            let _ = me
                .send(Finished {
                    connector_id: id,
                    keep: true,
                })
                .await;
            true
        }
        _ if !row.enabled || !loads => true,
        _ => match supervisor.send(ResumeTasks).await {
            Ok(Ok(n)) => {
                tracing::info!(connector_id = %id, tasks = n, "connector restored");
                true
            }
            Ok(Err(e)) => {
                tracing::error!(connector_id = %id, error = %e, "tasks could not be restored");
                true
            }
            Err(_) => false,
        },
    }
}

impl Handler<RestoreConnectors> for ConnectorManager {
    type Result = ResponseFuture<Result<usize, RuntimeError>>;

    fn handle(&mut self, _msg: RestoreConnectors, ctx: &mut Self::Context) -> Self::Result {
        let env = self.env.clone();
        let me = ctx.address();
        Box::pin(async move {
            let rows = queries::connectors::all(env.storage.pool()).await?;
            let mut running = 0;
            for row in rows {
                if restore_one(&env, &me, row).await {
                    running += 1;
                }
            }
            Ok(running)
        })
    }
}

impl Handler<ShutdownRuntime> for ConnectorManager {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: ShutdownRuntime, _ctx: &mut Self::Context) -> Self::Result {
        self.shutting_down = true;
        let supervisors: Vec<_> = self
            .connectors
            .values()
            .map(|m| m.supervisor.clone())
            .collect();
        Box::pin(async move {
            join_all(supervisors.iter().map(|s| {
                s.send(StopAllTasks {
                    mode: StopMode::Shutdown,
                })
            }))
            .await;
            join_all(supervisors.iter().map(|s| s.send(StopSupervisor))).await;
        })
    }
}
