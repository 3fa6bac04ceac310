//! DUMMY-PAY's config: `name`, `directory` (required), `filePollingPeriod` (default `10s`),
//! `prefixFileToIngest`, `numberOfAccountsPreGenerated`, `numberOfPaymentsPreGenerated`.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use tributary_sdk::{Config, ConfigError, ConfigSchema, FieldError, FieldSpec};

/// The name a connector gets when its config has none (Formance v1's `ApplyDefaults`).
pub const DEFAULT_NAME: &str = "DUMMY-PAY";

/// The longest polling period accepted.
const MAX_PERIOD: Duration = Duration::from_secs(30 * 24 * 3600);

/// The most files the connector generates at install.
const MAX_GENERATED: u64 = 100_000;

/// The parsed config.
#[derive(Debug, Clone, PartialEq)]
pub struct DummyPayConfig {
    /// The directory to watch.
    pub directory: PathBuf,
    /// How often `read-files` lists it.
    pub file_polling_period: Duration,
    /// Only files whose names start with this are ingested; generated files start with it.
    pub prefix_file_to_ingest: String,
    /// Account files generated at install.
    pub accounts_pre_generated: u64,
    /// Payment files generated at install.
    pub payments_pre_generated: u64,
}

/// The fields as `GET /connectors/configs` shows them.
pub fn schema() -> ConfigSchema {
    let field = |data_type, required, default_value| FieldSpec {
        data_type,
        required,
        default_value,
        secret: false,
    };
    ConfigSchema::from([
        // Formance's DUMMY-PAY loader: `if cfg.Name == "" { cfg.Name = "DUMMY-PAY" }`.
        ("name", field("string", false, Some(json!(DEFAULT_NAME)))),
        ("directory", field("string", true, None)),
        (
            "filePollingPeriod",
            field("duration ns", false, Some(json!("10s"))),
        ),
        (
            "prefixFileToIngest",
            field("string", false, Some(json!(""))),
        ),
        (
            "numberOfAccountsPreGenerated",
            field("unsigned integer", false, Some(json!(0))),
        ),
        (
            "numberOfPaymentsPreGenerated",
            field("unsigned integer", false, Some(json!(0))),
        ),
    ])
}

impl DummyPayConfig {
    /// Parses a config (defaults applied), naming every field that is wrong.
    pub fn parse(config: &Config) -> Result<Self, ConfigError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.to_string(),
                message,
            })
        };
        let directory = match config.get("directory") {
            Some(Value::String(d)) if !d.trim().is_empty() => PathBuf::from(d),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                fail("directory", "is required".into());
                PathBuf::new()
            }
            Some(other) => {
                fail("directory", format!("must be a string, not {other}"));
                PathBuf::new()
            }
        };
        let file_polling_period = match config.get("filePollingPeriod") {
            None | Some(Value::Null) => Duration::from_secs(10),
            Some(Value::String(p)) => match humantime::parse_duration(p.trim()) {
                Ok(d) if !d.is_zero() && d <= MAX_PERIOD => d,
                Ok(d) if d > MAX_PERIOD => {
                    fail("filePollingPeriod", "must be at most 30 days".into());
                    Duration::ZERO
                }
                Ok(_) => {
                    fail("filePollingPeriod", "must be greater than zero".into());
                    Duration::ZERO
                }
                Err(e) => {
                    fail(
                        "filePollingPeriod",
                        format!("must be a duration such as \"10s\" ({p:?}: {e})"),
                    );
                    Duration::ZERO
                }
            },
            Some(other) => {
                fail(
                    "filePollingPeriod",
                    format!("must be a duration string such as \"10s\", not {other}"),
                );
                Duration::ZERO
            }
        };
        let prefix_file_to_ingest = match config.get("prefixFileToIngest") {
            None | Some(Value::Null) => String::new(),
            // Generated files are named with it, so it must start a plain, visible name.
            Some(Value::String(p)) if p.contains(['/', '\0']) => {
                fail(
                    "prefixFileToIngest",
                    "must be the start of a file name (no \"/\")".into(),
                );
                String::new()
            }
            Some(Value::String(p)) if p.starts_with('.') => {
                fail(
                    "prefixFileToIngest",
                    "must not start with \".\": hidden files are never read".into(),
                );
                String::new()
            }
            Some(Value::String(p)) => p.clone(),
            Some(other) => {
                fail(
                    "prefixFileToIngest",
                    format!("must be a string, not {other}"),
                );
                String::new()
            }
        };
        let mut count = |field: &str| match config.get(field) {
            None | Some(Value::Null) => 0,
            Some(v) => match v.as_u64() {
                Some(n) if n <= MAX_GENERATED => n,
                _ => {
                    fail(
                        field,
                        format!("must be an integer from 0 to {MAX_GENERATED}, not {v}"),
                    );
                    0
                }
            },
        };
        let accounts_pre_generated = count("numberOfAccountsPreGenerated");
        let payments_pre_generated = count("numberOfPaymentsPreGenerated");
        if !errors.is_empty() {
            return Err(ConfigError(errors));
        }
        Ok(Self {
            directory,
            file_polling_period,
            prefix_file_to_ingest,
            accounts_pre_generated,
            payments_pre_generated,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_must_start_a_plain_visible_file_name() {
        for (prefix, ok) in [
            ("in-", true),
            ("", true),
            ("../x", false),
            ("a/", false),
            (".in", false),
        ] {
            let mut config = Config::new();
            config.insert("directory".into(), json!("/tmp/x"));
            config.insert("prefixFileToIngest".into(), json!(prefix));
            let parsed = DummyPayConfig::parse(&config);
            assert_eq!(parsed.is_ok(), ok, "{prefix:?}: {parsed:?}");
        }
    }
}
