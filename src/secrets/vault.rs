//! The one boundary connector configs cross between the runtime and the `connectors.config`
//! column: [`Vault::seal`] before every write (install, config update, declared configs,
//! restore, rotation), [`Vault::open`] after every read that needs the values (restore at
//! boot, the declared-config comparison, a config update keeping a masked secret, rotation).
//! The storage actor and queries know no schema and store what they are given; the API's
//! `GET …/config` never decrypts: it masks ([`mask`]).
//!
//! A running service keeps decrypting while `tributary rotate-key` works: a key file is
//! re-read when it changed (before sealing) and when a stored value names a key id the
//! keyring lacks (before opening).

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use serde_json::Value;

use super::cipher::{self, Sealed};
use super::{KeySource, Keyring, SecretsError};
use crate::redact::MASK;
use crate::sdk::{Config, ConfigSchema};

/// The keyring in use and where it comes from.
#[derive(Debug)]
pub struct Vault {
    source: KeySource,
    state: RwLock<State>,
}

#[derive(Debug)]
struct State {
    keyring: Arc<Keyring>,
    /// The key file's identity when it was read (modification time, length).
    stamp: Option<(SystemTime, u64)>,
}

/// A stored config, decrypted.
#[derive(Debug)]
pub struct Opened {
    /// The config in clear.
    pub config: Config,
    /// The fields that were stored encrypted.
    pub encrypted: Vec<String>,
    /// Whether a value is stored in clear although secret (written before encryption existed)
    /// or under a key other than the current one: it should be sealed again.
    pub stale: bool,
}

fn stamp(source: &KeySource) -> Option<(SystemTime, u64)> {
    match source {
        KeySource::Env | KeySource::Memory => None,
        KeySource::File(p) => std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len())),
    }
}

/// The names of `schema`'s secret fields.
pub fn secret_fields(schema: &ConfigSchema) -> Vec<String> {
    schema
        .iter()
        .filter(|(_, spec)| spec.secret)
        .map(|(f, _)| f.to_string())
        .collect()
}

/// A stored config as `GET …/config` answers it: every secret field that has a value shows
/// [`MASK`]. Nothing is decrypted.
pub fn mask(schema: &ConfigSchema, stored: &Value) -> Config {
    let mut config = match stored {
        Value::Object(map) => map.clone(),
        _ => Config::new(),
    };
    for field in secret_fields(schema) {
        if let Some(v) = config.get_mut(&field)
            && !v.is_null()
        {
            *v = Value::String(MASK.into());
        }
    }
    config
}

impl Vault {
    /// A vault over a keyring already read from `source`.
    pub fn new(source: KeySource, keyring: Keyring) -> Self {
        let stamp = stamp(&source);
        Self {
            source,
            state: RwLock::new(State {
                keyring: Arc::new(keyring),
                stamp,
            }),
        }
    }

    /// The vault of the settings: `TRIBUTARY_ENCRYPTION_KEY`, `key_file`, or the default file
    /// under `data_dir` (created at first start).
    pub fn from_settings(key_file: &Path, data_dir: &Path) -> Result<Self, SecretsError> {
        let (source, keyring) = KeySource::resolve(key_file, data_dir)?;
        tracing::info!(source = %source.name(), current_kid = keyring.current().0,
            kids = keyring.kids().len(), "encryption keyring loaded");
        Ok(Self::new(source, keyring))
    }

    /// A vault with one random key held in memory: for benchmarks and tests that never read
    /// their connectors back from another process.
    pub fn ephemeral() -> Self {
        let (_, line) = super::keyring::new_entry(&[]);
        let keyring =
            Keyring::parse(&line, "the in-memory keyring").expect("a generated key parses");
        Self::new(KeySource::Memory, keyring)
    }

    /// Where the keyring comes from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// The keyring as last read.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.state
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keyring
            .clone()
    }

    /// Re-reads a key file that changed since it was read. A file that no longer parses
    /// keeps the keyring in use (logged): a service must not lose its keys to a bad edit.
    pub fn refresh(&self) {
        let now = stamp(&self.source);
        if now.is_none() || now == self.state.read().unwrap_or_else(|e| e.into_inner()).stamp {
            return;
        }
        match self.source.read() {
            Ok(keyring) => {
                tracing::info!(source = %self.source.name(), current_kid = keyring.current().0,
                    "encryption keyring re-read");
                let mut state = self.state.write().unwrap_or_else(|e| e.into_inner());
                state.keyring = Arc::new(keyring);
                state.stamp = now;
            }
            Err(e) => {
                tracing::error!(error = %e, "the key file changed but does not load; keeping the keys in use")
            }
        }
    }

    /// `config` as stored: each of `fields` that has a non-null value is encrypted under the
    /// current key, bound to `connector_id` and the field.
    pub fn seal_fields(&self, connector_id: &str, fields: &[String], config: &Config) -> Value {
        self.refresh();
        let keyring = self.keyring();
        let (kid, key) = keyring.current();
        let mut stored = config.clone();
        for field in fields {
            if let Some(v) = stored.get_mut(field)
                && !v.is_null()
            {
                *v = cipher::seal(key, kid, connector_id, field, v).to_json();
            }
        }
        Value::Object(stored)
    }

    /// `config` as stored, its secret fields (by `schema`) encrypted.
    pub fn seal(&self, connector_id: &str, schema: &ConfigSchema, config: &Config) -> Value {
        self.seal_fields(connector_id, &secret_fields(schema), config)
    }

    /// A stored config in clear. Every encrypted field is decrypted (whatever the schema now
    /// says); a key id the keyring lacks, a value the key does not decrypt, or a malformed
    /// value is an error naming the connector, the field and the key id.
    pub fn open(
        &self,
        connector_id: &str,
        schema: &ConfigSchema,
        stored: &Value,
    ) -> Result<Opened, SecretsError> {
        let mut config = match stored {
            Value::Object(map) => map.clone(),
            _ => Config::new(),
        };
        let secret = secret_fields(schema);
        let mut keyring = self.keyring();
        let mut encrypted = Vec::new();
        let mut stale = false;
        for (field, value) in config.iter_mut() {
            let sealed = Sealed::from_json(value).map_err(|problem| SecretsError::Malformed {
                connector_id: connector_id.to_string(),
                field: field.clone(),
                problem,
            })?;
            let Some(sealed) = sealed else {
                stale |= secret.contains(field) && !value.is_null();
                continue;
            };
            if keyring.get(&sealed.kid).is_none() {
                self.refresh();
                keyring = self.keyring();
            }
            let Some(key) = keyring.get(&sealed.kid) else {
                return Err(SecretsError::UnknownKey {
                    connector_id: connector_id.to_string(),
                    field: field.clone(),
                    kid: sealed.kid,
                    source_name: self.source.name(),
                });
            };
            *value = cipher::open(key, connector_id, field, &sealed).ok_or_else(|| {
                SecretsError::Undecryptable {
                    connector_id: connector_id.to_string(),
                    field: field.clone(),
                    kid: sealed.kid.clone(),
                    source_name: self.source.name(),
                }
            })?;
            stale |= sealed.kid != keyring.current().0;
            encrypted.push(field.clone());
        }
        Ok(Opened {
            config,
            encrypted,
            stale,
        })
    }
}

/// Single values sealed with the keyring, each bound to what it belongs to: bank account
/// numbers and webhook signing secrets.
impl Vault {
    /// A bank account's `field` as stored: encrypted under the current key, bound to the bank
    /// account and the field.
    pub fn seal_bank_field(&self, bank_account_id: &str, field: &str, value: &str) -> Value {
        self.seal_text(&cipher::bank_account_aad(bank_account_id, field), value)
    }

    /// A bank account's stored `field` in clear, and whether it is under a key other than the
    /// current one. A value that is not encrypted, names a key id the keyring lacks, or does
    /// not decrypt is an error naming the bank account, the field and the key id.
    pub fn open_bank_field(
        &self,
        bank_account_id: &str,
        field: &str,
        stored: &Value,
    ) -> Result<(String, bool), SecretsError> {
        let aad = cipher::bank_account_aad(bank_account_id, field);
        self.open_text(&aad, stored, |problem| SecretsError::BankAccount {
            bank_account_id: bank_account_id.to_string(),
            field: field.to_string(),
            problem,
        })
    }

    /// A webhook config's signing secret as stored: encrypted under the current key, bound to
    /// the config.
    pub fn seal_webhook_secret(&self, config_id: &str, secret: &str) -> Value {
        self.seal_text(&cipher::webhook_secret_aad(config_id), secret)
    }

    /// A webhook config's stored signing secret in clear, and whether it is under a key other
    /// than the current one. A value that is not encrypted, names a key id the keyring lacks,
    /// or does not decrypt is an error naming the config.
    pub fn open_webhook_secret(
        &self,
        config_id: &str,
        stored: &Value,
    ) -> Result<(String, bool), SecretsError> {
        let aad = cipher::webhook_secret_aad(config_id);
        self.open_text(&aad, stored, |problem| SecretsError::WebhookSecret {
            config_id: config_id.to_string(),
            problem,
        })
    }

    /// One text value encrypted under the current key, bound to `aad` (what it belongs to).
    fn seal_text(&self, aad: &[u8], text: &str) -> Value {
        self.refresh();
        let keyring = self.keyring();
        let (kid, key) = keyring.current();
        cipher::seal_bound(key, kid, aad, &Value::String(text.to_string())).to_json()
    }

    /// One text value sealed by [`Vault::seal_text`] in clear, and whether its key is not the
    /// current one; `fail` names what the value belongs to in the error.
    fn open_text(
        &self,
        aad: &[u8],
        stored: &Value,
        fail: impl Fn(String) -> SecretsError,
    ) -> Result<(String, bool), SecretsError> {
        let sealed = Sealed::from_json(stored)
            .map_err(&fail)?
            .ok_or_else(|| fail("stored in clear, not encrypted".into()))?;
        let mut keyring = self.keyring();
        if keyring.get(&sealed.kid).is_none() {
            self.refresh();
            keyring = self.keyring();
        }
        let key = keyring.get(&sealed.kid).ok_or_else(|| {
            fail(format!(
                "key id {:?} is not in {} (was the key file lost or replaced?)",
                sealed.kid,
                self.source.name()
            ))
        })?;
        match cipher::open_bound(key, aad, &sealed) {
            Some(Value::String(text)) => Ok((text, sealed.kid != keyring.current().0)),
            _ => Err(fail(format!(
                "does not decrypt with key id {:?} from {}: wrong key, or the value was altered or moved",
                sealed.kid,
                self.source.name()
            ))),
        }
    }
}

/// The key id of one stored encrypted value, if it is one.
pub fn kid_of_value(stored: &Value) -> Option<String> {
    Sealed::from_json(stored).ok().flatten().map(|s| s.kid)
}

/// The key ids a stored config's values are encrypted under, and how many values use each.
pub fn kids_of(stored: &Value) -> Vec<String> {
    stored
        .as_object()
        .map(|o| {
            o.values()
                .filter_map(|v| Sealed::from_json(v).ok().flatten())
                .map(|s| s.kid)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;
    use crate::sdk::FieldSpec;

    fn schema() -> ConfigSchema {
        let field = |secret| FieldSpec {
            data_type: "string",
            required: false,
            default_value: None,
            secret,
        };
        ConfigSchema::from([("name", field(false)), ("apiKey", field(true))])
    }

    fn vault(text: &str) -> Vault {
        Vault::new(KeySource::Env, Keyring::parse(text, "test").unwrap())
    }

    fn key(kid: &str, byte: u8) -> String {
        format!(
            "{kid}={}",
            base64::engine::general_purpose::STANDARD.encode([byte; 32])
        )
    }

    fn config() -> Config {
        json!({"name": "psp", "apiKey": "sk_live_1"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn secret_fields_are_sealed_and_open_again() {
        let v = vault(&key("k1", 1));
        let stored = v.seal("c1", &schema(), &config());
        assert_eq!(stored["name"], "psp");
        assert!(!stored.to_string().contains("sk_live_1"), "{stored}");
        assert_eq!(kids_of(&stored), ["k1"]);
        let opened = v.open("c1", &schema(), &stored).unwrap();
        assert_eq!(opened.config, config());
        assert!(!opened.stale);
        assert!(matches!(
            v.open("c2", &schema(), &stored),
            Err(SecretsError::Undecryptable { .. })
        ));
    }

    #[test]
    fn clear_or_old_key_values_are_stale_and_unknown_or_wrong_keys_are_errors() {
        let old = vault(&key("k1", 1));
        let both = vault(&format!("{} {}", key("k1", 1), key("k2", 2)));
        let stored = old.seal("c", &schema(), &config());
        assert!(both.open("c", &schema(), &stored).unwrap().stale);
        let clear = Value::Object(config());
        assert!(both.open("c", &schema(), &clear).unwrap().stale);
        let e = vault(&key("k2", 2))
            .open("c", &schema(), &stored)
            .unwrap_err();
        assert!(e.to_string().contains("\"k1\""), "{e}");
        assert!(matches!(e, SecretsError::UnknownKey { .. }));
        let e = vault(&key("k1", 9))
            .open("c", &schema(), &stored)
            .unwrap_err();
        assert!(matches!(e, SecretsError::Undecryptable { .. }), "{e}");
        assert!(e.to_string().contains("connector c"), "{e}");
    }

    #[test]
    fn mask_hides_secret_values_only() {
        let masked = mask(&schema(), &Value::Object(config()));
        assert_eq!(masked["apiKey"], MASK);
        assert_eq!(masked["name"], "psp");
    }
}
