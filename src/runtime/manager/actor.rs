//! The `ConnectorManager` actor: its mailbox translates each message into an event of the
//! state machine (`machine.rs`) and performs the effects the machine answers — it decides
//! nothing itself. The effects that take time are the plain async workflows below (install,
//! uninstall, reset, config update, pause, resume, start, and the restore at boot), which talk
//! to the supervisor and the storage actor by message and report their end back as
//! [`Event::Done`].

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;
use futures::future::join_all;
use uuid::Uuid;

use super::machine::{Effect, Event, Machine, Refusal, Request, Work};
use crate::ids::ConnectorKey;
use crate::redact::MASK;
use crate::redact::Redactor;
use crate::runtime::error::RuntimeError;
use crate::runtime::messages::{
    CallConnector, InstallConnector, PauseConnector, ReplaceConnector, RerunTask, ResetConnector,
    RestartTask, RestoreConnectors, ResumeConnector, ResumeTasks, RunHook, ShutdownRuntime,
    StopAllTasks, StopMode, StopSupervisor, UninstallConnector, UpdateConnectorConfig,
};
use crate::runtime::registry::Registry;
use crate::runtime::supervisor::{ConnectorSupervisor, SupervisorConfig};
use crate::sdk::{Clock, Config, ConfigError, Connector, Loader, TaskError};
use crate::secrets::Vault;
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
    /// Every config stored is sealed by it, every config loaded opened by it.
    vault: Arc<Vault>,
}

impl Env {
    /// Starts a connector's supervisor, paused: nothing runs until it is sent `ResumeTasks`.
    /// Its metrics carry `name` and the loader's provider from here on.
    fn launch(
        &self,
        connector_id: &str,
        name: &str,
        loader: &Arc<dyn Loader>,
        connector: Arc<dyn Connector>,
        redactor: Redactor,
    ) -> Handle {
        crate::monitoring::connectors::set(connector_id, name, loader.provider());
        let supervisor = ConnectorSupervisor::launch(SupervisorConfig {
            connector_id: connector_id.to_string(),
            connector,
            redactor,
            allow_tasks: loader.allow_tasks(),
            storage: self.storage.clone(),
            clock: self.clock.clone(),
            settings: self.settings.clone(),
        });
        Handle {
            supervisor,
            loader: loader.clone(),
        }
    }
}

/// A connector's supervisor and provider: the handle the machine's states carry.
#[derive(Clone)]
pub struct Handle {
    supervisor: Addr<ConnectorSupervisor>,
    loader: Arc<dyn Loader>,
}

/// The registry actor.
pub struct ConnectorManager {
    env: Env,
    machine: Machine<Handle>,
}

impl ConnectorManager {
    /// A manager over `registry`'s providers.
    pub fn new(
        registry: Arc<Registry>,
        storage: StorageHandle,
        clock: Arc<dyn Clock>,
        settings: RuntimeSettings,
        vault: Arc<Vault>,
    ) -> Self {
        Self {
            env: Env {
                registry,
                storage,
                clock,
                settings,
                vault,
            },
            machine: Machine::default(),
        }
    }

    /// Feeds a request to the machine and answers with what its effects give.
    fn request(
        &mut self,
        ctx: &mut Context<Self>,
        connector_id: String,
        request: Request,
    ) -> ResponseFuture<Result<(), RuntimeError>> {
        let effects = self.machine.on(&connector_id, Event::Request(request));
        Box::pin(perform(
            self.env.clone(),
            ctx.address(),
            connector_id,
            effects,
        ))
    }
}

impl Actor for ConnectorManager {
    type Context = Context<Self>;
}

/// Internal: an event from a workflow (registration, end); answered with the machine's effects.
#[derive(Message)]
#[rtype(result = "Vec<Effect<Handle>>")]
struct Feed {
    connector_id: String,
    event: Event<Handle>,
}

impl Handler<Feed> for ConnectorManager {
    type Result = Vec<Effect<Handle>>;

    fn handle(&mut self, msg: Feed, _ctx: &mut Self::Context) -> Self::Result {
        self.machine.on(&msg.connector_id, msg.event)
    }
}

fn refused(refusal: Refusal, connector_id: &str) -> RuntimeError {
    match refusal {
        Refusal::NotFound => RuntimeError::ConnectorNotFound(connector_id.to_string()),
        Refusal::Conflict => RuntimeError::Conflict(format!(
            "another operation on connector {connector_id} is in progress"
        )),
        Refusal::Stopped => RuntimeError::Stopped,
        Refusal::NotLoaded => RuntimeError::ConnectorNotLoaded(connector_id.to_string()),
    }
}

/// Performs a request's effects; a workflow's end is fed back to the machine.
async fn perform(
    env: Env,
    me: Addr<ConnectorManager>,
    connector_id: String,
    effects: Vec<Effect<Handle>>,
) -> Result<(), RuntimeError> {
    let mut answer = Ok(());
    for effect in effects {
        answer = match effect {
            Effect::Refuse(refusal) => Err(refused(refusal, &connector_id)),
            Effect::Answer => Ok(()),
            Effect::Rerun(handle, task_id) => {
                match handle.supervisor.send(RerunTask { task_id }).await {
                    Ok(rerun) => rerun,
                    Err(_) => Err(RuntimeError::Stopped),
                }
            }
            Effect::Halt(handle) => {
                halt(&[handle]).await;
                Ok(())
            }
            // Only a call locates (ConnectorManager's Handler<CallConnector>), never a request
            // performed here.
            Effect::Located(_) => Ok(()),
            Effect::Run(work) => {
                let ran = run(&env, &connector_id, work).await;
                let landed = ran.is_ok();
                let _ = me
                    .send(Feed {
                        connector_id: connector_id.clone(),
                        event: Event::Done { landed },
                    })
                    .await;
                ran.and_then(|answer| answer)
            }
        };
    }
    answer
}

/// A workflow's end: `Err` when its durable change did not take effect, otherwise the answer
/// to give (an error from a hook, after the change took effect).
type Ran = Result<Result<(), RuntimeError>, RuntimeError>;

/// Runs one workflow.
async fn run(env: &Env, id: &str, work: Work<Handle>) -> Ran {
    match work {
        Work::Install(h) => install(env, id, &h).await,
        Work::RollBack(h) => {
            tracing::warn!(connector_id = %id, "rolling back an interrupted install");
            let _ = h.supervisor.send(StopSupervisor).await;
            env.storage
                .write(DeleteConnector { id: id.to_string() })
                .await?;
            crate::monitoring::connectors::forget(id);
            Ok(Ok(()))
        }
        Work::Uninstall(h) => {
            mark(env, id, Lifecycle::Uninstalling).await?;
            uninstall(env, id, &h.supervisor).await.map(Ok)
        }
        Work::Reset { handle, start } => {
            mark(env, id, Lifecycle::Resetting).await?;
            reset(env, id, &handle.supervisor, start).await
        }
        Work::UpdateConfig {
            handle,
            config,
            start,
        } => update_config(env, id, &handle, config, start).await,
        Work::Pause(h) => {
            set_enabled(env, id, false).await?;
            let _ = h
                .supervisor
                .send(StopAllTasks {
                    mode: StopMode::Pause,
                })
                .await;
            Ok(Ok(()))
        }
        Work::Resume {
            handle,
            enable,
            start,
        } => {
            if enable {
                set_enabled(env, id, true).await?;
            }
            Ok(if start {
                start_tasks(id, &handle).await
            } else {
                Ok(())
            })
        }
        Work::Start(h) => {
            if let Err(e) = start_tasks(id, &h).await {
                tracing::error!(connector_id = %id, error = %e, "tasks could not be restored");
            }
            Ok(Ok(()))
        }
    }
}

/// Starts a connector's live tasks from the database.
async fn start_tasks(id: &str, handle: &Handle) -> Result<(), RuntimeError> {
    let n = handle
        .supervisor
        .send(ResumeTasks)
        .await
        .map_err(|_| RuntimeError::Stopped)??;
    tracing::info!(connector_id = %id, tasks = n, "connector tasks started");
    Ok(())
}

/// Stops every task without changing its status, then the supervisors (shutdown).
async fn halt(handles: &[Handle]) {
    join_all(handles.iter().map(|h| {
        h.supervisor.send(StopAllTasks {
            mode: StopMode::Shutdown,
        })
    }))
    .await;
    join_all(handles.iter().map(|h| h.supervisor.send(StopSupervisor))).await;
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
        Box::pin(async move {
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
                    name: name.clone(),
                    config: env.vault.seal(&connector_id, &loader.schema(), &config),
                    declared: msg.declared,
                })
                .await?;
            let handle = env.launch(&connector_id, &name, &loader, connector, redactor);
            let effects = me
                .send(Feed {
                    connector_id: connector_id.clone(),
                    event: Event::Install(handle.clone()),
                })
                .await
                .unwrap_or_else(|_| vec![Effect::Refuse(Refusal::Stopped)]);
            if let [Effect::Refuse(refusal)] = effects.as_slice() {
                roll_back_install(&env, &connector_id, &handle).await;
                return Err(refused(*refusal, &connector_id));
            }
            perform(env.clone(), me, connector_id.clone(), effects).await?;
            tracing::info!(%connector_id, provider = loader.provider(), "connector installed");
            Ok(connector_id)
        })
    }
}

/// All-or-nothing: stops what an install started and deletes what it wrote.
async fn roll_back_install(env: &Env, connector_id: &str, handle: &Handle) {
    let _ = handle
        .supervisor
        .send(StopAllTasks {
            mode: StopMode::Uninstall,
        })
        .await;
    let _ = handle.supervisor.send(StopSupervisor).await;
    crate::monitoring::connectors::forget(connector_id);
    if let Err(e) = env
        .storage
        .write(DeleteConnector {
            id: connector_id.to_string(),
        })
        .await
    {
        tracing::error!(%connector_id, error = %e, "a failed install could not be deleted; the next boot rolls it back");
    }
}

/// Install, after the row (marked `installing`) was written: the hook, then the mark.
async fn install(env: &Env, connector_id: &str, handle: &Handle) -> Ran {
    // The new supervisor is paused; nothing of the connector is stored yet, so resuming it
    // starts nothing but lets the install hook's schedules run.
    let installed = match handle.supervisor.send(ResumeTasks).await {
        Ok(Ok(_)) => handle
            .supervisor
            .send(RunHook::Install)
            .await
            .unwrap_or(Err(TaskError::Cancelled)),
        Ok(Err(e)) => Err(TaskError::retryable(e.to_string())),
        Err(_) => Err(TaskError::Cancelled),
    };
    let result = match installed {
        Ok(()) => env
            .storage
            .write(UpdateConnector {
                id: connector_id.to_string(),
                lifecycle: Some(Lifecycle::Installed),
                ..Default::default()
            })
            .await
            .map_err(RuntimeError::from),
        Err(e) => Err(RuntimeError::InstallFailed(e)),
    };
    if let Err(e) = result {
        tracing::warn!(%connector_id, error = %e, "install failed; rolling back");
        roll_back_install(env, connector_id, handle).await;
        return Err(e);
    }
    Ok(Ok(()))
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
    env.storage
        .write(DeleteConnector {
            id: connector_id.to_string(),
        })
        .await?;
    // Only once the rows are gone: a failed delete leaves the connector with a (paused)
    // supervisor, so that the uninstall can be tried again without a restart.
    let _ = supervisor.send(StopSupervisor).await;
    crate::monitoring::connectors::forget(connector_id);
    tracing::info!(%connector_id, "connector uninstalled");
    Ok(())
}

/// Reset, after the mark: stop, uninstall hook, wipe the data, install again, same id. With
/// `start` the tasks run again before the install hook, so that it may await what it
/// schedules.
async fn reset(
    env: &Env,
    connector_id: &str,
    supervisor: &Addr<ConnectorSupervisor>,
    start: bool,
) -> Ran {
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
    if start {
        supervisor
            .send(ResumeTasks)
            .await
            .map_err(|_| RuntimeError::Stopped)??;
    }
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
    tracing::info!(%connector_id, "connector reset");
    Ok(installed.map_err(RuntimeError::InstallFailed))
}

/// Config update: check, load, store, swap in and run the hook; with `start`, start the tasks.
async fn update_config(
    env: &Env,
    connector_id: &str,
    handle: &Handle,
    config: Config,
    start: bool,
) -> Ran {
    let config = keep_masked(env, connector_id, &handle.loader, config).await?;
    let (config, name) = checked_config(&handle.loader, config)?;
    let (connector, redactor) = load(&handle.loader, &config)?;
    env.storage
        .write(UpdateConnector {
            id: connector_id.to_string(),
            config: Some(
                env.vault
                    .seal(connector_id, &handle.loader.schema(), &config),
            ),
            name: Some(name.clone()),
            ..Default::default()
        })
        .await?;
    crate::monitoring::connectors::set(connector_id, &name, handle.loader.provider());
    let hooked = match handle
        .supervisor
        .send(ReplaceConnector {
            connector,
            redactor,
        })
        .await
    {
        Ok(Err(e)) => Err(RuntimeError::ConfigHookFailed(e)),
        _ => Ok(()),
    };
    if start {
        start_tasks(connector_id, handle).await?;
    }
    Ok(hooked)
}

/// A config update's secret fields that carry [`MASK`] (what `GET …/config` shows) take the
/// stored value: a client that echoes the config it read keeps the secret (Kafka Connect's and
/// Airbyte's convention). Decrypted from the stored row; a mask with nothing stored behind it
/// is a validation error, never stored as the secret.
async fn keep_masked(
    env: &Env,
    connector_id: &str,
    loader: &Arc<dyn Loader>,
    mut config: Config,
) -> Result<Config, RuntimeError> {
    let schema = loader.schema();
    let masked: Vec<String> = crate::secrets::vault::secret_fields(&schema)
        .into_iter()
        .filter(|f| config.get(f).and_then(|v| v.as_str()) == Some(MASK))
        .collect();
    if masked.is_empty() {
        return Ok(config);
    }
    let row = queries::connectors::get(env.storage.pool(), connector_id)
        .await?
        .ok_or_else(|| RuntimeError::ConnectorNotFound(connector_id.to_string()))?;
    let stored = env.vault.open(connector_id, &schema, &row.config)?.config;
    for field in masked {
        match stored.get(&field) {
            Some(value) if !value.is_null() => {
                config.insert(field, value.clone());
            }
            _ => {
                return Err(ConfigError::field(
                    field,
                    format!("is {MASK:?}, which keeps the stored value, but none is stored"),
                )
                .into());
            }
        }
    }
    Ok(config)
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

impl<T: Send + 'static> Handler<CallConnector<T>> for ConnectorManager {
    type Result = ResponseFuture<Result<T, RuntimeError>>;

    fn handle(&mut self, msg: CallConnector<T>, _ctx: &mut Self::Context) -> Self::Result {
        let effects = self
            .machine
            .on(&msg.connector_id, Event::Request(Request::Locate));
        Box::pin(async move {
            match effects.as_slice() {
                [Effect::Located(handle)] => handle
                    .supervisor
                    .send(msg)
                    .await
                    .unwrap_or(Err(RuntimeError::Stopped)),
                [Effect::Refuse(refusal)] => Err(refused(*refusal, &msg.connector_id)),
                other => Err(RuntimeError::Conflict(format!(
                    "connector {} cannot be called now ({} effects)",
                    msg.connector_id,
                    other.len()
                ))),
            }
        })
    }
}

impl Handler<UninstallConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: UninstallConnector, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::Uninstall)
    }
}

impl Handler<ResetConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: ResetConnector, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::Reset)
    }
}

impl Handler<UpdateConnectorConfig> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: UpdateConnectorConfig, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::UpdateConfig(msg.config))
    }
}

impl Handler<PauseConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: PauseConnector, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::Pause)
    }
}

impl Handler<ResumeConnector> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: ResumeConnector, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::Resume)
    }
}

impl Handler<RestartTask> for ConnectorManager {
    type Result = ResponseFuture<Result<(), RuntimeError>>;

    fn handle(&mut self, msg: RestartTask, ctx: &mut Self::Context) -> Self::Result {
        self.request(ctx, msg.connector_id, Request::RestartTask(msg.task_id))
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

/// Restores one stored connector at boot, with `desired` (a declared config) stored first in
/// place of its config, so that nothing of it runs with the old one. Answers whether its
/// tasks run.
async fn restore_one(
    env: &Env,
    me: &Addr<ConnectorManager>,
    row: ConnectorRow,
    desired: Option<Config>,
) -> Result<bool, RuntimeError> {
    let id = row.id.clone();
    let Some(loader) = env.registry.get(&row.provider).cloned() else {
        tracing::error!(connector_id = %id, provider = %row.provider, "unknown provider; connector not started");
        return Ok(false);
    };
    // A wrong or missing key is an error naming the connector and the key id: the boot stops
    // rather than run a connector with a config it cannot read.
    let schema = loader.schema();
    let opened = env.vault.open(&id, &schema, &row.config)?;
    let mut config = opened.config;
    if opened.stale {
        // Secrets stored in clear (before encryption existed) or under an older key: sealed
        // under the current key now, so that no clear secret survives the first start.
        env.storage
            .write(UpdateConnector {
                id: id.clone(),
                config: Some(env.vault.seal(&id, &schema, &config)),
                ..Default::default()
            })
            .await?;
        tracing::info!(connector_id = %id, "connector secrets re-encrypted under the current key");
    }
    // Only a connector that stays installed takes a new config (an interrupted install is
    // rolled back, an interrupted uninstall finished).
    let desired =
        desired.filter(|_| matches!(row.lifecycle, Lifecycle::Installed | Lifecycle::Resetting));
    let updated = desired.is_some();
    let mut name = row.name;
    if let Some(desired) = desired {
        let (checked, new_name) = checked_config(&loader, desired)?;
        env.storage
            .write(UpdateConnector {
                id: id.clone(),
                config: Some(env.vault.seal(&id, &schema, &checked)),
                name: Some(new_name.clone()),
                ..Default::default()
            })
            .await?;
        config = checked;
        name = new_name;
    }
    // A stored config that no longer loads (a provider's validation changed) keeps the
    // connector registered but idle, so that it can still be reconfigured or uninstalled.
    let redactor = Redactor::new(&loader.schema(), &config);
    let (connector, loads): (Arc<dyn Connector>, bool) = match loader.load(&config) {
        Ok(c) => (c, true),
        Err(e) => {
            let e = redactor.config_error(e);
            tracing::error!(connector_id = %id, error = %e,
                "stored config does not load; connector idle: update its config or uninstall it");
            (Arc::new(Unloadable(e.to_string())), false)
        }
    };
    let handle = env.launch(&id, &name, &loader, connector.clone(), redactor.clone());
    if updated && loads && row.lifecycle == Lifecycle::Installed {
        // Its `config_updated` hook runs before any of its tasks does.
        if let Ok(Err(e)) = handle
            .supervisor
            .send(ReplaceConnector {
                connector,
                redactor,
            })
            .await
        {
            tracing::error!(connector_id = %id, error = %e, "applying the declared config failed");
        }
    }
    match row.lifecycle {
        Lifecycle::Uninstalling => {
            tracing::warn!(connector_id = %id, "finishing an interrupted uninstall")
        }
        Lifecycle::Resetting => {
            tracing::warn!(connector_id = %id, "finishing an interrupted reset")
        }
        _ => {}
    }
    let effects = me
        .send(Feed {
            connector_id: id.clone(),
            event: Event::Restored {
                handle: handle.clone(),
                lifecycle: row.lifecycle,
                enabled: row.enabled,
                loads,
            },
        })
        .await
        .map_err(|_| RuntimeError::Stopped)?;
    if let [Effect::Refuse(_)] = effects.as_slice() {
        let _ = handle.supervisor.send(StopSupervisor).await;
        return Ok(false);
    }
    let runs = effects.iter().any(|e| {
        matches!(
            e,
            Effect::Run(Work::Start(_) | Work::Reset { start: true, .. })
        )
    });
    if let Err(e) = perform(env.clone(), me.clone(), id.clone(), effects).await {
        tracing::error!(connector_id = %id, error = %e, "connector could not be restored");
        return Ok(false);
    }
    Ok(runs)
}

impl Handler<RestoreConnectors> for ConnectorManager {
    type Result = ResponseFuture<Result<usize, RuntimeError>>;

    fn handle(&mut self, msg: RestoreConnectors, ctx: &mut Self::Context) -> Self::Result {
        let env = self.env.clone();
        let me = ctx.address();
        let mut configs: HashMap<String, Config> = msg.configs;
        Box::pin(async move {
            let rows = queries::connectors::all(env.storage.pool()).await?;
            let mut running = 0;
            for row in rows {
                let desired = configs.remove(&row.id);
                if restore_one(&env, &me, row, desired).await? {
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
        let handles: Vec<Handle> = self
            .machine
            .shutdown()
            .into_iter()
            .filter_map(|e| match e {
                Effect::Halt(h) => Some(h),
                _ => None,
            })
            .collect();
        Box::pin(async move { halt(&handles).await })
    }
}
