//! Startup: builds the running service on a database URL — instance lock, migrations, the
//! storage actor and the HTTP server — and runs it until a shutdown signal.
//!
//! Tests build the same [`Application`] on a fresh database and port 0, so what they exercise
//! is exactly what `tributary serve` runs.

use std::net::TcpListener;
use std::time::Instant;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use tokio_util::sync::CancellationToken;
use tracing_actix_web::TracingLogger;

use crate::api::{self, AppState};
use crate::settings::Settings;
use crate::storage::instance_lock::{self, InstanceLock};
use crate::storage::{StorageError, StorageHandle, database, migrate};

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be prepared (or another instance holds it).
    #[error(transparent)]
    Storage(#[from] StorageError),
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
    shutdown: CancellationToken,
    _instance_lock: InstanceLock,
}

impl Application {
    /// Takes the instance lock, migrates, starts the storage actor and binds the HTTP server.
    /// Must run inside an actix System.
    pub async fn build(settings: &Settings, database_url: &str) -> Result<Self, StartupError> {
        let started = Instant::now();
        let instance_lock = instance_lock::acquire(database_url).await?;
        let pool = database::connect(
            database_url,
            settings.database.max_connections,
            settings.database.timeout,
        )?;
        migrate::run(&pool).await?;
        let storage =
            StorageHandle::start(pool, settings.storage.batch_size, settings.storage.linger);

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
        let state = AppState {
            storage: storage.clone(),
            db_timeout: settings.database.timeout,
        };
        let max_body = settings.server.max_body_bytes;
        let server = HttpServer::new(move || {
            App::new()
                .wrap(TracingLogger::default())
                .app_data(web::Data::new(state.clone()))
                .app_data(web::JsonConfig::default().limit(max_body))
                .app_data(web::PayloadConfig::new(max_body))
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
            shutdown: CancellationToken::new(),
            _instance_lock: instance_lock,
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

    /// Cancelling this token shuts the service down gracefully, as a signal would.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Serves until the shutdown token is cancelled (or, with `handle_signals`, until SIGINT
    /// or SIGTERM), then stops accepting requests, lets in-flight ones finish and drains the
    /// storage actor's queue.
    pub async fn run_until_stopped(self, handle_signals: bool) -> std::io::Result<()> {
        let handle = self.server.handle();
        let token = self.shutdown.clone();
        if handle_signals {
            let token = token.clone();
            actix_rt::spawn(async move {
                wait_for_signal().await;
                token.cancel();
            });
        }
        actix_rt::spawn(async move {
            token.cancelled().await;
            tracing::info!("shutting down");
            handle.stop(true).await;
        });
        self.server.await?;
        self.storage.drain().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
