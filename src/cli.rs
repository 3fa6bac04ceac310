//! The `tributary` command line: `serve`, `migrate`, `check-config` and `rotate-key`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app::{Application, ShutdownSignals};
use crate::settings::{DEFAULT_CONFIG_PATH, Settings};
use crate::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};
use crate::storage::{database, migrate, tls};
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
    /// Add a new encryption key as current and re-encrypt every stored connector secret under
    /// it; safe while the service runs (with an external database).
    RotateKey {
        /// The settings file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where the embedded database and the default key file live (overrides data_dir).
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Add no key: re-encrypt under the current (last) key. The only mode when the keys come
        /// from TRIBUTARY_ENCRYPTION_KEY, whose new key the operator adds there first.
        #[arg(long)]
        no_new_key: bool,
        /// Afterwards, remove from the key file every key no stored value uses any more (old
        /// database backups then no longer decrypt with this file).
        #[arg(long)]
        drop_old_keys: bool,
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
            let tls_settings = settings.database.tls();
            with_database(&settings, |url| async move {
                let url = tls::apply_settings(&url, &tls_settings)?;
                // A TLS problem is reported with its settings named, not as a pool error.
                database::check_connection(&database::parse_url(&url)?).await?;
                let pool = database::connect(&url, 2, timeout)?;
                let applied = migrate::run(&pool).await?;
                println!(
                    "{applied} migration(s) applied; {} shipped",
                    migrate::shipped()
                );
                Ok(())
            })
        }
        Command::RotateKey {
            config,
            data_dir,
            no_new_key,
            drop_old_keys,
        } => {
            let mut settings = load(config.as_deref())?;
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            let _telemetry = telemetry::init(&settings.log, &settings.telemetry)?;
            rotate_key(&settings, !no_new_key, drop_old_keys)
        }
        Command::CheckConfig { file } => {
            let settings = Settings::load(&file, true)?;
            crate::declared::validate(
                &crate::connectors::registry(&settings),
                &settings.connectors,
            )
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
    // Listening from the first moment, before the embedded PostgreSQL starts: a SIGTERM during
    // boot then stops the service gracefully once it is up, instead of killing it midway.
    let system = actix_rt::System::new();
    let signals = system.block_on(async { ShutdownSignals::listen() })?;
    let settings_ref = &settings;
    with_database_on(system, settings_ref, |url| async move {
        let app = Application::build(settings_ref, &url).await?;
        app.run_until_stopped(Some(signals)).await?;
        Ok(())
    })
}

/// `rotate-key`: a new key appended to the key file (unless `new_key` is false), every stored
/// secret re-encrypted under the current key, connector by connector, then (with
/// `drop_old_keys`) the keys no value uses any more removed from the file.
fn rotate_key(settings: &Settings, new_key: bool, drop_old_keys: bool) -> anyhow::Result<()> {
    use crate::secrets::{KeySource, Vault, keyring, rotate};
    let (source, _) = KeySource::resolve(&settings.encryption.key_file, &settings.data_dir)?;
    let path = match &source {
        KeySource::File(path) => Some(path.clone()),
        _ => None,
    };
    match (&path, new_key) {
        (Some(path), true) => {
            let kid = keyring::add_key(path)?;
            println!("added key {kid} to {} as the current key", path.display());
        }
        (None, true) => anyhow::bail!(
            "the keys come from {}: add the new key there (last), restart the service with it, then run `tributary rotate-key --no-new-key`",
            source.name()
        ),
        (_, false) => {}
    }
    if drop_old_keys && path.is_none() {
        anyhow::bail!(
            "--drop-old-keys edits a key file; the keys come from {}: remove the old key there",
            source.name()
        );
    }
    let vault = Vault::new(source.clone(), source.read()?);
    let current = vault.keyring().current().0.to_string();
    let registry = crate::connectors::registry(settings);
    let timeout = settings.database.timeout;
    let tls_settings = settings.database.tls();
    with_database(settings, |url| async move {
        // The settings' sslmode & co., as `serve` and `migrate` use them: this pass reads and
        // writes every connector's stored secrets.
        let url = tls::apply_settings(&url, &tls_settings)?;
        database::check_connection(&database::parse_url(&url)?).await?;
        let pool = database::connect(&url, 2, timeout)?;
        let started = Instant::now();
        let done = rotate::reencrypt(&pool, &vault, &registry).await?;
        println!(
            "{} connector(s) read, {} re-encrypted, {} bank account(s) read, {} re-encrypted, {} webhook config(s) read, {} re-encrypted under key {current} in {} ms; values by key id: {:?}",
            done.connectors,
            done.resealed,
            done.bank_accounts,
            done.bank_accounts_resealed,
            done.webhook_configs,
            done.webhook_configs_resealed,
            started.elapsed().as_millis(),
            done.kids_in_use
        );
        if drop_old_keys && let Some(path) = &path {
            let old: Vec<&String> = done.kids_in_use.keys().filter(|k| **k != current).collect();
            if !old.is_empty() {
                anyhow::bail!(
                    "values still use key(s) {old:?} (written meanwhile?): run rotate-key --no-new-key again; no key was removed"
                );
            }
            keyring::retain_keys(path, std::slice::from_ref(&current))?;
            println!("kept only key {current} in {}", path.display());
        }
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
    with_database_on(actix_rt::System::new(), settings, body)
}

/// [`with_database`] on an actix System made beforehand (`serve` listens for signals in it
/// before the embedded PostgreSQL starts).
fn with_database_on<F, Fut>(
    system: actix_rt::SystemRunner,
    settings: &Settings,
    body: F,
) -> anyhow::Result<()>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let embedded = if settings.uses_embedded_database() {
        if settings.database.tls() != Default::default() {
            tracing::warn!(
                "database.sslmode/sslrootcert/sslcert/sslkey are ignored: the embedded \
                 PostgreSQL is reached over a Unix socket, where TLS does not apply"
            );
        }
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
    let result = system.block_on(async move {
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
