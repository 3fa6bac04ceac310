//! Settings: one TOML file, `TRIBUTARY_…` environment overrides, and `DATABASE_URL`.
//!
//! Precedence, lowest first: built-in defaults, the settings file, `TRIBUTARY_SECTION__KEY`
//! variables, `DATABASE_URL`, then command-line flags (applied by the CLI). Every struct
//! denies unknown keys, so a typo is an error that names the key instead of a silently
//! ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::storage::tls::{self, SslMode, TlsParams};

/// The settings file `serve` and `migrate` read when no `--config` is given.
pub const DEFAULT_CONFIG_PATH: &str = "config/tributary.toml";

/// Why settings could not be loaded; the message names the file or variable and the key.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The file given on the command line does not exist.
    #[error("settings file {path}: not found")]
    NotFound { path: PathBuf },
    /// A key is unknown, has the wrong type, or holds a bad value.
    #[error("{0}")]
    Invalid(String),
}

/// Everything the service can be configured with.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Where the embedded PostgreSQL cluster (and other local state) lives.
    pub data_dir: PathBuf,
    /// The HTTP server.
    pub server: ServerSettings,
    /// The PostgreSQL server, or the embedded one when `url` is empty.
    pub database: DatabaseSettings,
    /// The embedded PostgreSQL cluster used when no database URL is set.
    pub embedded: EmbeddedSettings,
    /// The storage actor's group commit.
    pub storage: StorageSettings,
    /// Task scheduling: cancellation grace period and retry backoff.
    pub runtime: RuntimeSettings,
    /// Logging.
    pub log: LogSettings,
    /// Traces exported over OTLP.
    pub telemetry: TelemetrySettings,
    /// The metrics served at `/metrics`.
    pub metrics: MetricsSettings,
    /// Connectors declared in the file, reconciled at boot.
    pub connectors: Vec<DeclaredConnector>,
    /// Where the key encrypting connector secrets at rest comes from.
    pub encryption: EncryptionSettings,
    /// Where DUMMY-PAY connectors may read files.
    pub dummypay: DummyPaySettings,
    /// Who may call the API: static bearer tokens and/or JWTs (src/api/auth).
    pub auth: AuthSettings,
    /// Events out: the outbox, NATS JetStream, webhooks (src/events).
    pub events: EventsSettings,
}

/// Events out (src/events): the outbox written with every change, and its publishers.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSettings {
    /// Whether changes write their events to the outbox. Off: nothing is published, and
    /// changes made meanwhile never will be.
    pub enabled: bool,
    /// How long an event every publisher has passed is kept (for replays) before it is pruned.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often the pruner deletes the events past retention (src/events/pruner).
    #[serde(with = "humantime_serde")]
    pub prune_interval: Duration,
    /// Publishing to NATS JetStream; absent: no NATS publisher.
    pub nats: Option<NatsSettings>,
    /// Delivering to the webhook endpoints configured through the API.
    pub webhooks: WebhookSettings,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            retention: Duration::from_secs(7 * 24 * 3600),
            prune_interval: Duration::from_secs(60),
            nats: None,
            webhooks: WebhookSettings::default(),
        }
    }
}

/// The NATS JetStream publisher.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NatsSettings {
    /// The server, `nats://host:4222`.
    pub url: String,
    /// The JetStream stream, created (capturing `subject`) if missing.
    pub stream: String,
    /// The subject every event is published on.
    pub subject: String,
}

impl Default for NatsSettings {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".into(),
            stream: "payments".into(),
            subject: "payments".into(),
        }
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// How long after its event was stored a delivery keeps being retried (exponential
    /// backoff with jitter) before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub retry_horizon: Duration,
    /// The first retry delay (doubled at each attempt).
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// The largest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// How long one delivery attempt may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            retry_horizon: Duration::from_secs(24 * 3600),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Encryption of connector secrets at rest (see `secrets`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EncryptionSettings {
    /// A keyring file (`kid=base64` lines, the last current). Empty: `TRIBUTARY_ENCRYPTION_KEY`
    /// if set, else `<data_dir>/encryption.key`, created at first start.
    pub key_file: PathBuf,
}

/// DUMMY-PAY settings.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DummyPaySettings {
    /// The directories (and everything under them) a DUMMY-PAY connector may read. Empty:
    /// `<data_dir>/dummypay`. The directories of DUMMY-PAY connectors declared in this file are
    /// always allowed.
    pub allowed_roots: Vec<PathBuf>,
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// The address the API listens on.
    pub bind: SocketAddr,
    /// How long in-flight requests may take to finish after a shutdown signal.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; empty means no cross-origin request is allowed.
    pub cors_allowed_origins: Vec<String>,
    /// Allows listening on a non-loopback address with no authentication configured.
    pub allow_unauthenticated: bool,
}

/// Authentication sources; with neither configured, authentication is off.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Static bearer tokens, each known by the SHA-256 of its value (`[[auth.tokens]]`).
    pub tokens: Vec<StaticTokenSettings>,
    /// JWTs signed by an identity provider (`[auth.jwt]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtSettings>,
}

/// One static token: the file holds its digest, never the token itself.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StaticTokenSettings {
    /// Who the token stands for, as written in the audit log.
    pub name: String,
    /// The hex SHA-256 of the token (`printf %s "$TOKEN" | sha256sum`).
    pub sha256: String,
    /// What it may do: `payments:read`, `payments:write`.
    pub scopes: Vec<String>,
}

// The digest lets a weak token be brute-forced offline: `Debug` (Settings is Debug) omits it.
impl std::fmt::Debug for StaticTokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticTokenSettings")
            .field("name", &self.name)
            .field("sha256", &"…")
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// JWT validation against an identity provider's keys.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// A local JWKS document (exactly one of `jwks_file` and `jwks_url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_file: Option<PathBuf>,
    /// The identity provider's JWKS URL, fetched at start and cached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// The required `iss` claim.
    pub issuer: String,
    /// The required `aud` claim (one of the token's audiences).
    pub audience: String,
    /// How often `jwks_url` is fetched again.
    #[serde(default = "default_jwks_refresh", with = "humantime_serde")]
    pub refresh_interval: Duration,
    /// The least time between two fetches caused by tokens naming an unknown key id.
    #[serde(default = "default_jwks_min_refresh", with = "humantime_serde")]
    pub min_refresh_interval: Duration,
}

fn default_jwks_refresh() -> Duration {
    Duration::from_secs(300)
}

fn default_jwks_min_refresh() -> Duration {
    Duration::from_secs(30)
}

/// Database settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// A `postgres://` URL; empty runs the embedded cluster. `DATABASE_URL` overrides it.
    pub url: String,
    /// The size of the connection pool shared by API reads and the storage actor.
    pub max_connections: usize,
    /// How long an API read or a health check waits for the database.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// libpq's `sslmode` (default `prefer`); a `sslmode` in the URL must agree with it.
    pub sslmode: Option<SslMode>,
    /// libpq's `sslrootcert`: the CA certificate file (PEM) the server's chain must lead to.
    pub sslrootcert: Option<PathBuf>,
    /// libpq's `sslcert`: a client certificate chain (PEM), for servers that require one.
    pub sslcert: Option<PathBuf>,
    /// libpq's `sslkey`: the client certificate's private key (PEM).
    pub sslkey: Option<PathBuf>,
}

impl DatabaseSettings {
    /// The TLS keys, to be merged with the URL's own parameters (storage/tls.rs).
    pub fn tls(&self) -> TlsParams {
        TlsParams {
            sslmode: self.sslmode,
            sslrootcert: self.sslrootcert.clone(),
            sslcert: self.sslcert.clone(),
            sslkey: self.sslkey.clone(),
        }
    }
}

/// Embedded PostgreSQL settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EmbeddedSettings {
    /// The directory holding `initdb` and `postgres`; empty means search the usual places.
    pub bin_dir: PathBuf,
    /// The port number naming the cluster's Unix socket (it listens on no TCP port).
    pub port: u16,
}

/// Storage actor settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSettings {
    /// The most writes coalesced into one transaction.
    pub batch_size: usize,
    /// How long the actor waits for more writes before committing a batch that is not full.
    #[serde(with = "humantime_serde")]
    pub linger: Duration,
}

/// Task runtime settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeSettings {
    /// How long a cancelled task run may take to finish before it is dropped.
    #[serde(with = "humantime_serde")]
    pub task_grace_period: Duration,
    /// The first retry delay of a retryable error (doubled at each attempt, with jitter).
    #[serde(with = "humantime_serde")]
    pub retry_initial: Duration,
    /// The largest retry delay.
    #[serde(with = "humantime_serde")]
    pub retry_max: Duration,
    /// Give up retrying (FAILED) once a run has been failing this long; 0 retries forever.
    #[serde(with = "humantime_serde")]
    pub max_retry_age: Duration,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            task_grace_period: Duration::from_secs(5),
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(120),
            max_retry_age: Duration::ZERO,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// A tracing filter such as `info` or `tributary=debug`; `RUST_LOG` wins when set.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

/// OpenTelemetry settings: traces are exported over OTLP (HTTP, protobuf) when an endpoint is
/// set.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP base URL (`http://collector:4318`; `/v1/traces` is added
    /// unless the URL already ends with it). Empty exports nothing.
    pub otlp_endpoint: String,
    /// The `service.name` resource attribute of every span.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "tributary".into(),
        }
    }
}

/// The `/metrics` route.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// Whether `/metrics` needs a token with `payments:read` (when auth is on).
    pub require_auth: bool,
    /// How often the task gauges (tasks by connector and status) are counted again in the
    /// database; a scrape serves the last count.
    #[serde(with = "humantime_serde")]
    pub refresh_interval: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            require_auth: false,
            refresh_interval: Duration::from_secs(15),
        }
    }
}

/// A connector declared in the settings file, identified by (provider, name).
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredConnector {
    /// The provider, e.g. `DUMMY-PAY`.
    pub provider: String,
    /// The connector's unique name.
    pub name: String,
    /// The connector's configuration, as the install API takes it.
    #[serde(default)]
    pub config: serde_json::Map<String, serde_json::Value>,
}

// The config may hold secrets (and `Settings` is `Debug`): only its keys are shown.
impl std::fmt::Debug for DeclaredConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let config = serde_json::Value::Object(self.config.clone());
        f.debug_struct("DeclaredConnector")
            .field("provider", &self.provider)
            .field("name", &self.name)
            .field("config", &crate::redact::ConfigKeys(&config))
            .finish()
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerSettings::default(),
            database: DatabaseSettings::default(),
            embedded: EmbeddedSettings::default(),
            storage: StorageSettings::default(),
            runtime: RuntimeSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            metrics: MetricsSettings::default(),
            connectors: Vec::new(),
            encryption: EncryptionSettings::default(),
            dummypay: DummyPaySettings::default(),
            auth: AuthSettings::default(),
            events: EventsSettings::default(),
        }
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_timeout: Duration::from_secs(5),
            max_body_bytes: 256 * 1024,
            cors_allowed_origins: Vec::new(),
            allow_unauthenticated: false,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: String::new(),
            max_connections: 16,
            timeout: Duration::from_secs(5),
            sslmode: None,
            sslrootcert: None,
            sslcert: None,
            sslkey: None,
        }
    }
}

impl Default for EmbeddedSettings {
    fn default() -> Self {
        Self {
            bin_dir: PathBuf::new(),
            port: 5432,
        }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            linger: Duration::ZERO,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl Settings {
    /// Loads settings from `path` (which must exist when `required`), the environment and defaults.
    pub fn load(path: &Path, required: bool) -> Result<Self, SettingsError> {
        if required && !path.is_file() {
            return Err(SettingsError::NotFound {
                path: path.to_path_buf(),
            });
        }
        Self::from_figment(Self::figment(path))
    }

    /// The layered providers, exposed so tests can inspect or extend them.
    pub fn figment(path: &Path) -> Figment {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if path.exists() {
            figment = figment.merge(Toml::file_exact(path));
        }
        // TRIBUTARY_ENCRYPTION_KEY is the keyring itself, read by `secrets`, not a setting.
        figment = figment.merge(
            Env::prefixed("TRIBUTARY_")
                .ignore(&["ENCRYPTION_KEY"])
                .split("__"),
        );
        if let Ok(url) = std::env::var("DATABASE_URL")
            && !url.is_empty()
        {
            figment = figment.merge(("database.url", url));
        }
        figment
    }

    /// Extracts and validates settings from a figment.
    pub fn from_figment(figment: Figment) -> Result<Self, SettingsError> {
        let settings: Settings = figment.extract().map_err(|e| {
            SettingsError::Invalid(
                e.into_iter()
                    .map(|e| describe(&e))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the values serde cannot: ranges and non-empty fields.
    fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, problem: &str| {
            Err(SettingsError::Invalid(format!("key `{key}`: {problem}")))
        };
        if self.database.max_connections < 2 {
            return bad("database.max_connections", "must be at least 2");
        }
        if self.database.timeout.is_zero() {
            return bad("database.timeout", "must be greater than zero");
        }
        if self.storage.batch_size == 0 {
            return bad("storage.batch_size", "must be at least 1");
        }
        if self.runtime.retry_initial.is_zero() {
            return bad("runtime.retry_initial", "must be greater than zero");
        }
        if self.runtime.retry_max < self.runtime.retry_initial {
            return bad(
                "runtime.retry_max",
                "must be at least runtime.retry_initial",
            );
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return bad("log.level", "is not a valid tracing filter (e.g. \"info\")");
        }
        if self.metrics.refresh_interval.is_zero() {
            return bad("metrics.refresh_interval", "must be greater than zero");
        }
        if self.events.prune_interval.is_zero() {
            return bad("events.prune_interval", "must be greater than zero");
        }
        if !self.telemetry.otlp_endpoint.is_empty()
            && !self.telemetry.otlp_endpoint.starts_with("http://")
            && !self.telemetry.otlp_endpoint.starts_with("https://")
        {
            return bad(
                "telemetry.otlp_endpoint",
                "must be an http:// or https:// URL (OTLP over HTTP)",
            );
        }
        if self.data_dir.as_os_str().is_empty() {
            return bad("data_dir", "must not be empty");
        }
        if !self.database.url.is_empty()
            && !self.database.url.starts_with("postgres://")
            && !self.database.url.starts_with("postgresql://")
        {
            return bad(
                "database.url",
                "must start with postgres:// or postgresql://",
            );
        }
        // TLS keys are checked against the URL (files are read at start); they do not apply
        // to the embedded cluster, which is reached over a Unix socket.
        if !self.database.url.is_empty()
            && let Err(e) = tls::check(&self.database.url, &self.database.tls())
        {
            return Err(SettingsError::Invalid(e.to_string()));
        }
        // The rest of the URL as the driver will read it; a malformed one is the settings'
        // fault, not an unreachable database. The URL is not quoted: it may hold a password.
        if !self.database.url.is_empty()
            && let Ok((stripped, _)) = tls::split_url(&self.database.url)
            && let Err(e) = stripped.parse::<tokio_postgres::Config>()
        {
            return bad(
                "database.url",
                &format!("is not a valid PostgreSQL URL (DATABASE_URL sets it too): {e}"),
            );
        }
        if let Err((key, problem)) = crate::api::auth::validate_settings(&self.auth) {
            return bad(&key, &problem);
        }
        let mut seen = std::collections::HashSet::new();
        for (i, c) in self.connectors.iter().enumerate() {
            if c.name.trim().is_empty() {
                return bad(&format!("connectors[{i}].name"), "must not be empty");
            }
            if !seen.insert((c.provider.to_ascii_uppercase(), c.name.clone())) {
                return bad(
                    &format!("connectors[{i}]"),
                    &format!("connector {}/{} is declared twice", c.provider, c.name),
                );
            }
        }
        Ok(())
    }

    /// Whether the service runs its own PostgreSQL.
    pub fn uses_embedded_database(&self) -> bool {
        self.database.url.is_empty()
    }
}

/// One figment error as "<source>: key `a.b`: problem".
fn describe(e: &figment::Error) -> String {
    let key = if e.path.is_empty() {
        String::new()
    } else {
        format!("key `{}`: ", e.path.join("."))
    };
    let source = match e.metadata.as_ref() {
        Some(md) => match &md.source {
            Some(figment::Source::File(p)) => format!("{}: ", p.display()),
            _ => format!("{}: ", md.name),
        },
        None => String::new(),
    };
    format!("{source}{key}{}", e.kind)
}
