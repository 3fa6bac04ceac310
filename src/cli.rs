//! The `tributary` command line: `serve`, `migrate` and `check-config`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::Application;
use crate::settings::{DEFAULT_CONFIG_PATH, Settings};
use crate::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};
use crate::storage::{database, migrate};
use crate::telemetry;

/// The database the service uses inside the embedded cluster.
const EMBEDDED_DATABASE: &str = "tributary";

/// Tributary: a payments connector runtime.
#[derive(Debug, Parser)]
#[command(name = "tributary", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (with an embedded PostgreSQL unless a database URL is set).
    Serve {
        /// The settings file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The address to listen on (overrides server.bind).
        #[arg(long, value_name = "ADDR")]
        bind: Option<SocketAddr>,
        /// Where the embedded database and local state live (overrides data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// The settings file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where the embedded database lives (overrides data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Validate a settings file and exit (0 when valid).
    CheckConfig {
        /// The settings file to check.
        file: PathBuf,
    },
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            config,
            bind,
            data_dir,
        } => {
            let mut settings = load(config.as_deref())?;
            if let Some(bind) = bind {
                settings.server.bind = bind;
            }
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            // Dropped when `serve` returns, whatever it returns: pending spans are flushed.
            let _telemetry = telemetry::init(&settings.log, &settings.telemetry)?;
            serve(settings)
        }
        Command::Migrate { config, data_dir } => {
            let mut settings = load(config.as_deref())?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            let _telemetry = telemetry::init(&settings.log, &settings.telemetry)?;
            let timeout = settings.database.timeout;
            with_database(&settings, |url| async move {
                let pool = database::connect(&url, 2, timeout)?;
                let applied = migrate::run(&pool).await?;
                println!(
                    "{applied} migration(s) applied; {} shipped",
                    migrate::shipped()
                );
                Ok(())
            })
        }
        Command::CheckConfig { file } => {
            let settings = Settings::load(&file, true)?;
            crate::declared::validate(&crate::connectors::registry(), &settings.connectors)
                .with_context(|| file.display().to_string())?;
            println!("{}: ok", file.display());
            Ok(())
        }
    }
}

/// Loads settings from an explicit file (which must exist) or the default one (optional).
fn load(config: Option<&Path>) -> anyhow::Result<Settings> {
    let (path, required) = match config {
        Some(p) => (p, true),
        None => (Path::new(DEFAULT_CONFIG_PATH), false),
    };
    Settings::load(path, required).map_err(Into::into)
}

fn serve(settings: Settings) -> anyhow::Result<()> {
    let settings_ref = &settings;
    with_database(settings_ref, |url| async move {
        let app = Application::build(settings_ref, &url).await?;
        app.run_until_stopped(true).await?;
        Ok(())
    })
}

/// Runs `body` in an actix System with the database URL: the configured server, or the
/// embedded cluster, started first and stopped after `body` returns (whatever it returns).
fn with_database<F, Fut>(settings: &Settings, body: F) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let embedded = if settings.uses_embedded_database() {
        let started = Instant::now();
        let config = EmbeddedConfig::for_data_dir(
            &settings.data_dir,
            &settings.embedded.bin_dir,
            settings.embedded.port,
        );
        let server = EmbeddedPostgres::start(&config)?;
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            "embedded PostgreSQL started"
        );
        Some(server)
    } else {
        None
    };
    let url = match &embedded {
        Some(server) => server.url(EMBEDDED_DATABASE),
        None => settings.database.url.clone(),
    };
    let admin_url = embedded.as_ref().map(|s| s.url("postgres"));
    let result = actix_rt::System::new().block_on(async move {
        if let Some(admin_url) = admin_url {
            database::ensure_database(&admin_url, EMBEDDED_DATABASE).await?;
        }
        body(url).await
    });
    if let Some(server) = embedded {
        server.stop();
    }
    result
}
