//! Startup: builds the running service on a database URL — instance lock, migrations, the
//! storage actor and the HTTP server — and runs it until a shutdown signal.
//!
//! Tests build the same [`Application`] on a fresh database and port 0, so what they exercise
//! is exactly what `tributary serve` runs.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::header;
use actix_web::{App, HttpServer, middleware, web};
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::api::{self, AppState};
use crate::runtime::{Registry, Runtime, RuntimeError};
use crate::sdk::{Clock, SystemClock};
use crate::secrets::Vault;
use crate::settings::Settings;
use crate::storage::instance_lock::{self, InstanceLock};
use crate::storage::{StorageError, StorageHandle, database, migrate, tls};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be prepared (or another instance holds it).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Connectors could not be restored.
    #[error("restoring connectors: {0}")]
    Runtime(#[from] RuntimeError),
    /// A connector declared in the settings file is invalid or could not be applied.
    #[error(transparent)]
    Declared(#[from] crate::declared::DeclaredError),
    /// The encryption keyring could not be loaded.
    #[error("encryption key: {0}")]
    Secrets(#[from] crate::secrets::SecretsError),
    /// Authentication could not be set up, or would be missing on a public address.
    #[error(transparent)]
    Auth(#[from] crate::api::auth::AuthError),
    /// The HTTP listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The service, built and listening, not yet running.
pub struct Application {
    server: Server,
    port: u16,
    storage: StorageHandle,
    runtime: Runtime,
    shutdown: CancellationToken,
    instance_lock: InstanceLock,
    _refresher: crate::monitoring::tasks::Refresher,
}

impl Application {
    /// Builds the service with the built-in connectors and the wall clock.
    /// Must run inside an actix System.
    pub async fn build(settings: &Settings, database_url: &str) -> Result<Self, StartupError> {
        Self::build_with(
            settings,
            database_url,
            crate::connectors::registry(settings),
            Arc::new(SystemClock),
        )
        .await
    }

    /// Takes the instance lock, migrates, starts the storage actor and the runtime (restoring
    /// every connector and live task, declared configs applied first, then installing the
    /// declared connectors that are missing), and binds the HTTP server.
    pub async fn build_with(
        settings: &Settings,
        database_url: &str,
        registry: Registry,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartupError> {
        let started = Instant::now();
        // The settings' sslmode & co. join the URL's own; every connection below uses them.
        let database_url = &tls::apply_settings(database_url, &settings.database.tls())
            .map_err(StorageError::from)?;
        // Before anything else: without its keys the service cannot load a connector.
        let vault = Arc::new(Vault::from_settings(
            &settings.encryption.key_file,
            &settings.data_dir,
        )?);
        // Before anything else: a service that must not listen unauthenticated stops here.
        let authenticator = Arc::new(api::auth::Authenticator::new(settings).await?);
        match api::auth::check_bind(
            settings.server.bind,
            authenticator.enabled(),
            settings.server.allow_unauthenticated,
        )? {
            api::auth::BindMode::Authenticated => {}
            api::auth::BindMode::LoopbackUnauthenticated => tracing::info!(
                "authentication is off (no [[auth.tokens]] or [auth.jwt]); listening on loopback only"
            ),
            api::auth::BindMode::UnauthenticatedOnPurpose => tracing::warn!(
                bind = %settings.server.bind,
                "authentication is off and the API listens on a non-loopback address \
                 (server.allow_unauthenticated = true): anyone who reaches it can install, \
                 reconfigure and uninstall connectors"
            ),
        }
        let instance_lock = instance_lock::acquire(database_url).await?;
        let pool = database::connect(
            database_url,
            settings.database.max_connections,
            settings.database.timeout,
        )?;
        migrate::run(&pool).await?;
        let storage = StorageHandle::start_with_outbox(
            pool,
            settings.storage.batch_size,
            settings.storage.linger,
            settings.events.enabled,
        );
        let runtime = Runtime::start(
            registry,
            storage.clone(),
            clock,
            settings.runtime.clone(),
            vault.clone(),
        );
        // Declared configs are stored as the connectors are restored, before any task resumes.
        let plan = crate::declared::plan(
            runtime.registry(),
            runtime.vault(),
            storage.pool(),
            &settings.connectors,
        )
        .await?;
        let restored = runtime.restore_with(plan.configs.clone()).await?;
        tracing::info!(connectors = restored, "connectors restored");
        let declared =
            crate::declared::install_missing(&runtime, &settings.connectors, plan).await?;
        if declared != Default::default() {
            tracing::info!(?declared, "declared connectors reconciled");
        }

        let webhooks =
            crate::webhooks::Webhooks::start(storage.clone(), vault, &settings.events.webhooks)
                .await?;

        let listener =
            TcpListener::bind(settings.server.bind).map_err(|source| StartupError::Bind {
                addr: settings.server.bind,
                source,
            })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind {
                addr: settings.server.bind,
                source,
            })?
            .port();
        let (task_gauges, refresher) = crate::monitoring::tasks::start(
            storage.pool().clone(),
            settings.metrics.refresh_interval,
            settings.database.timeout,
        );
        let state = AppState {
            storage: storage.clone(),
            runtime: runtime.clone(),
            db_timeout: settings.database.timeout,
            max_body_bytes: settings.server.max_body_bytes,
            cors_allowed_origins: settings.server.cors_allowed_origins.clone(),
            task_gauges,
        };
        crate::monitoring::recorder();
        let shutdown = CancellationToken::new();
        crate::events::nats::start(&settings.events, &storage, &shutdown);
        crate::events::pruner::start(storage.clone(), &settings.events, shutdown.clone());
        if let Some(jwt) = authenticator.jwt() {
            jwt.clone().spawn_refresh(shutdown.clone());
        }
        let auth_data = web::Data::from(authenticator);
        let server = HttpServer::new(move || {
            let cors = state
                .cors_allowed_origins
                .iter()
                .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
                .allowed_methods(["GET", "POST", "PATCH", "PUT", "DELETE"])
                .allowed_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
                .max_age(3600);
            // Outermost last: tracing → CORS → audit → auth → guard → route.
            App::new()
                .wrap(middleware::from_fn(api::guard::check))
                .wrap(middleware::from_fn(api::auth::authenticate))
                .wrap(middleware::from_fn(api::audit::record))
                .wrap(cors)
                .wrap(TracingLogger::default())
                .wrap(middleware::from_fn(crate::monitoring::http::record))
                .app_data(web::Data::new(state.clone()))
                .app_data(auth_data.clone())
                .app_data(web::Data::new(webhooks.clone()))
                .configure(api::configure)
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout.as_secs().max(1))
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            addr: settings.server.bind,
            source,
        })?
        .run();
        tracing::info!(
            port,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "tributary is ready"
        );
        Ok(Self {
            server,
            port,
            storage,
            runtime,
            shutdown,
            instance_lock,
            _refresher: refresher,
        })
    }

    /// The port the API listens on (useful when bound to port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The storage handle (tests use it to write and to read counters).
    pub fn storage(&self) -> &StorageHandle {
        &self.storage
    }

    /// The runtime handle.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Cancelling this token shuts the service down gracefully, as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled (or, with `signals`, until SIGINT or
    /// SIGTERM), then stops accepting requests and, at the same time, stops every task run
    /// (statuses untouched), lets in-flight requests finish, drains the storage actor and
    /// gives back the instance lock.
    pub async fn run_until_stopped(self, signals: Option<ShutdownSignals>) -> std::io::Result<()> {
        let handle = self.server.handle();
        let token = self.shutdown.clone();
        if let Some(mut signals) = signals {
            let token = token.clone();
            actix_rt::spawn(async move {
                signals.recv().await;
                token.cancel();
            });
        }
        // Never run beside another process that took the database during an outage.
        let lost = self.instance_lock.lost();
        let on_lost = token.clone();
        actix_rt::spawn(async move {
            lost.cancelled().await;
            tracing::error!("instance lock lost to another process; shutting down");
            on_lost.cancel();
        });
        let runtime = self.runtime.clone();
        let stopped = actix_rt::spawn(async move {
            token.cancelled().await;
            tracing::info!("shutting down");
            futures::join!(handle.stop(true), runtime.shutdown());
        });
        self.server.await?;
        let _ = stopped.await;
        self.storage.drain().await;
        // Last: the database is free for the next instance once this returns.
        self.instance_lock.release().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// SIGINT and SIGTERM, listened for from the moment this is made: `serve` makes it before it
/// starts the embedded PostgreSQL and builds the service, so that a signal during boot is
/// acted upon (a graceful stop) once the service is up instead of killing the process midway
/// and leaving its PostgreSQL running.
pub struct ShutdownSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    /// Starts listening; must run inside the runtime that will wait for them.
    pub fn listen() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves on the first SIGINT or SIGTERM since [`ShutdownSignals::listen`].
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}
