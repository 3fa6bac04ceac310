//! DUMMY-PAY: the directory connector of the Formance seed guide, made safe and fast.
//!
//! A periodic `read-files` task lists the directory and schedules one `ingest` task per new or
//! changed file (by inode, size and modification time, compared with the connector's store);
//! `ingest` reads a single JSON object, or JSON Lines streamed in batches that commit with a
//! `{prefix hash, byte offset}` checkpoint. See DESIGN.md §6 and docs/dummypay.md.
//!
//! - [`config`]: the config fields, defaults and validation;
//! - [`connector`]: install/uninstall hooks and descriptor → task;
//! - [`read_files`], [`ingest`], [`generate`]: the three tasks;
//! - [`format`](mod@format): the file formats; [`files`]: safe paths and file signatures;
//! - [`bank_accounts`]: external bank accounts (`bank-accounts/<id>.json` + an EXTERNAL
//!   account linked to the bank account).
//! - [`money_out`]: transfers, payouts and reversals written to `<directory>/outbox/`.
//!
//! A crate of its own that depends on `tributary-sdk` and general crates only: it cannot see
//! the runtime, the storage or another connector.

pub mod bank_accounts;
pub mod config;
pub mod connector;
pub mod files;
pub mod format;
pub mod generate;
pub mod ingest;
pub mod money_out;
pub mod read_files;
pub mod roots;

use std::sync::Arc;

use tributary_sdk::{Config, ConfigError, ConfigSchema, Connector, Loader};

pub use roots::AllowedRoots;

/// The provider name in the API.
pub const PROVIDER: &str = "DUMMY-PAY";

/// The DUMMY-PAY loader, with the directories its connectors may read (given by the runtime
/// when it builds the registry: a connector crate reads no settings).
pub struct DummyPayLoader {
    roots: AllowedRoots,
}

impl DummyPayLoader {
    /// A loader whose connectors read only under `roots`.
    pub fn new(roots: AllowedRoots) -> Self {
        Self { roots }
    }

    /// The config parsed, its directory checked against the allowed roots.
    fn parse(&self, config: &Config) -> Result<config::DummyPayConfig, ConfigError> {
        let parsed = config::DummyPayConfig::parse(config)?;
        self.roots
            .check(&parsed.directory)
            .map_err(|message| ConfigError::field("directory", message))?;
        Ok(parsed)
    }
}

impl Loader for DummyPayLoader {
    fn provider(&self) -> &'static str {
        PROVIDER
    }

    fn provider_title(&self) -> &'static str {
        "Dummypay"
    }

    /// File tasks mostly wait on the database: many in flight fill the group commits (100 →
    /// 1,000: single-payment files +20 %, 7× fewer transactions). Memory is bounded by
    /// [`connector::STREAMS`], not by this.
    fn allow_tasks(&self) -> usize {
        1000
    }

    fn schema(&self) -> ConfigSchema {
        config::schema()
    }

    /// The schema's defaults, and an empty or null `name` replaced too, as Formance does.
    fn apply_defaults(&self, mut config: Config) -> Config {
        let blank = match config.get("name") {
            None | Some(serde_json::Value::Null) => true,
            Some(serde_json::Value::String(s)) => s.trim().is_empty(),
            Some(_) => false,
        };
        if blank {
            config.insert("name".into(), config::DEFAULT_NAME.into());
        }
        for (field, spec) in self.schema() {
            if let Some(default) = spec.default_value {
                config.entry(field).or_insert(default);
            }
        }
        config
    }

    fn validate_fields(&self, config: &Config) -> Result<(), ConfigError> {
        self.parse(config).map(|_| ())
    }

    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError> {
        let config = self.parse(config)?;
        Ok(Arc::new(connector::DummyPay::new(config)))
    }
}
