//! Connectors and their loaders: config schema, defaults and validation, install/uninstall
//! hooks, and resolving descriptors into tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

use super::host::Host;
use super::{Clock, MoneyOut, Scheduler, Task, TaskError};

/// A connector's configuration: the JSON object clients send.
pub type Config = serde_json::Map<String, Value>;

/// One config field, as `GET /connectors/configs` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct FieldSpec {
    /// Formance's type names: `string`, `duration ns`, `unsigned integer`, `boolean`.
    #[cfg_attr(feature = "openapi", schema(example = "string"))]
    pub data_type: &'static str,
    /// Whether the field must be given.
    pub required: bool,
    /// The value used when the field is absent. Written as text whatever its JSON type (`0`
    /// goes out as `"0"`): Formance's `defaultValue` is a string, and its SDKs refuse a number.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "default_as_text"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "10s"))]
    pub default_value: Option<Value>,
    /// The value is a secret (an API key, a password): the runtime masks it in every error
    /// message and log line it produces about the connector (config validation errors, task
    /// errors, install/uninstall/config hook errors). Not shown in `GET /connectors/configs`,
    /// whose shape is Formance's.
    #[serde(skip)]
    pub secret: bool,
}

/// Writes a default as Formance does: a string as it is, any other value as its JSON text.
fn default_as_text<S: serde::Serializer>(value: &Option<Value>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(Value::String(text)) => s.serialize_str(text),
        Some(other) => s.serialize_str(&other.to_string()),
        None => s.serialize_none(),
    }
}

/// A connector's config fields by name.
pub type ConfigSchema = BTreeMap<&'static str, FieldSpec>;

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    /// The field's name.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// A config that failed validation, with every offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
pub struct ConfigError(pub Vec<FieldError>);

impl ConfigError {
    /// An error on one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }
}

/// Describes a provider and builds its connectors from config.
pub trait Loader: Send + Sync + 'static {
    /// The provider name in the API, upper case (e.g. `DUMMY-PAY`).
    fn provider(&self) -> &'static str;

    /// The title-case name Formance clients expect in `GET …/config` (e.g. `Dummypay`).
    fn provider_title(&self) -> &'static str;

    /// The most task runs of one connector at a time; the rest wait FIFO as PENDING.
    fn allow_tasks(&self) -> usize {
        10
    }

    /// The config fields, their types and defaults.
    fn schema(&self) -> ConfigSchema;

    /// Fills absent fields with their defaults.
    fn apply_defaults(&self, mut config: Config) -> Config {
        for (field, spec) in self.schema() {
            if let Some(default) = spec.default_value {
                config.entry(field).or_insert(default);
            }
        }
        config
    }

    /// Checks a config (defaults applied): required fields, unknown fields, and whatever the
    /// provider adds on top via [`Loader::validate_fields`].
    fn validate(&self, config: &Config) -> Result<(), ConfigError> {
        let schema = self.schema();
        let mut errors = Vec::new();
        for (field, spec) in &schema {
            let missing = match config.get(*field) {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.trim().is_empty(),
                _ => false,
            };
            if spec.required && missing {
                errors.push(FieldError {
                    field: field.to_string(),
                    message: "is required".into(),
                });
            }
        }
        for field in config.keys() {
            if field != "provider" && !schema.contains_key(field.as_str()) {
                errors.push(FieldError {
                    field: field.clone(),
                    message: "is not a field of this connector".into(),
                });
            }
        }
        if let Err(ConfigError(more)) = self.validate_fields(config) {
            errors.extend(more);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errors))
        }
    }

    /// Provider-specific checks (types, ranges, formats).
    fn validate_fields(&self, _config: &Config) -> Result<(), ConfigError> {
        Ok(())
    }

    /// Builds a connector from a validated config.
    fn load(&self, config: &Config) -> Result<Arc<dyn Connector>, ConfigError>;
}

/// An installed connector.
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Called once, when the connector is installed (not at every boot): schedule the
    /// connector's root tasks here. A failure undoes the whole install.
    async fn install(&self, ctx: &ConnectorContext) -> Result<(), TaskError>;

    /// Called before the connector's data is deleted; clean up what it created outside.
    async fn uninstall(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        Ok(())
    }

    /// Called on the connector built from a new config, once it replaced the old one (e.g. to
    /// reschedule a periodic task with a new period). Running tasks see the new connector
    /// from their next run.
    async fn config_updated(&self, _ctx: &ConnectorContext) -> Result<(), TaskError> {
        Ok(())
    }

    /// Turns a descriptor into the task to run. An unknown descriptor is an error. Objects
    /// with a `"tributary"` key are the runtime's own (money out) and never reach this.
    fn resolve(&self, descriptor: &Value) -> Result<Box<dyn Task>, TaskError>;

    /// The external-bank-account capability, if the connector has it (`None`: the API
    /// answers 400 CONNECTOR_CAPABILITY_NOT_SUPPORTED to a forward).
    fn bank_accounts(&self) -> Option<&dyn crate::ExternalBankAccounts> {
        None
    }

    /// The connector's money-out capability (transfer initiations), if it has one: `None`
    /// answers 400 `CONNECTOR_CAPABILITY_NOT_SUPPORTED`.
    fn money_out(&self) -> Option<&dyn MoneyOut> {
        None
    }

    /// The webhook capability: `None` (the default) answers the webhooks route with 400
    /// `CONNECTOR_CAPABILITY_NOT_SUPPORTED`.
    fn webhooks(&self) -> Option<&dyn crate::Webhooks> {
        None
    }
}

/// What a connector's install and uninstall hooks get from the runtime.
pub struct ConnectorContext {
    host: Arc<dyn Host>,
}

impl ConnectorContext {
    /// Built by the runtime.
    pub fn new(host: Arc<dyn Host>) -> Self {
        Self { host }
    }

    /// The connector's id.
    pub fn connector_id(&self) -> &str {
        self.host.connector_id()
    }

    /// Schedules the connector's root tasks.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.host.clone(), None)
    }

    /// The runtime's clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.host.clock()
    }

    /// Reads every key of the connector's store that starts with `prefix`.
    pub async fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, TaskError> {
        self.host.kv_list(prefix).await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::FieldSpec;

    fn spec(default_value: Option<serde_json::Value>) -> FieldSpec {
        FieldSpec {
            data_type: "unsigned integer",
            required: false,
            default_value,
            secret: false,
        }
    }

    /// Formance writes every default as a string (its `configtemplate.Parameter.DefaultValue`
    /// is a Go string), and its Python SDK refuses anything else: a number must go out as text.
    #[test]
    fn defaults_are_written_as_text_as_formance_does() {
        assert_eq!(
            serde_json::to_value(spec(Some(json!(0)))).expect("json"),
            json!({"dataType": "unsigned integer", "required": false, "defaultValue": "0"})
        );
        assert_eq!(
            serde_json::to_value(spec(Some(json!(true)))).expect("json")["defaultValue"],
            json!("true")
        );
        assert_eq!(
            serde_json::to_value(spec(Some(json!("10s")))).expect("json")["defaultValue"],
            json!("10s")
        );
        assert_eq!(
            serde_json::to_value(spec(None)).expect("json"),
            json!({"dataType": "unsigned integer", "required": false})
        );
    }
}
