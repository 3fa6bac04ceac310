//! Keeping connector secrets out of logs and error messages.
//!
//! A connector author marks a config field secret (`FieldSpec::secret`). The runtime then
//! builds a [`Redactor`] from the connector's schema and config whenever a config is checked,
//! loaded or replaced, and passes every text that connector code produced — config validation
//! messages, task errors, install/uninstall/config hook errors — through it before that text
//! is logged, stored in the tasks table or answered by the API. Connector code calls nothing:
//! a PSP client error that echoes a URL with the API key in it is masked on its way out.
//!
//! Types that carry a whole config but know no schema (storage commands, stored rows, settings
//! declarations) print only the config's keys in their `Debug` output ([`ConfigKeys`]).

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::sdk::{Config, ConfigError, ConfigSchema, FieldError, TaskError};

/// What replaces a secret in any text the runtime logs, stores or answers.
pub const MASK: &str = "********";

/// Replaces every secret value of one connector's config with [`MASK`].
///
/// Besides each value as it is, the forms it commonly takes inside error texts are masked
/// too: percent-encoded (a key in a URL's query string), JSON-escaped and Rust-`Debug`-escaped
/// (a key echoed inside a request body or a `{:?}`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Redactor {
    /// Every form of every secret, longest first (so a secret containing another is masked
    /// whole), without duplicates or empty strings.
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for the values of `config`'s fields that `schema` marks secret. Strings
    /// and numbers count (nested in arrays and objects too); booleans and null never do.
    pub fn new(schema: &ConfigSchema, config: &Config) -> Self {
        let mut values = Vec::new();
        for (field, spec) in schema {
            if spec.secret
                && let Some(value) = config.get(*field)
            {
                collect(value, &mut values);
            }
        }
        let mut redactor = Redactor::default();
        for value in values {
            redactor.add(&value);
        }
        redactor
    }

    /// Adds one secret value and its encoded forms.
    fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let json = serde_json::to_string(secret).unwrap_or_default();
        let debug = format!("{secret:?}");
        let forms = [
            secret.to_string(),
            percent_encode(secret, false, false),
            percent_encode(secret, true, false),
            percent_encode(secret, false, true),
            unquote(&json).to_string(),
            unquote(&debug).to_string(),
        ];
        for form in forms {
            if !form.is_empty() && !self.needles.contains(&form) {
                self.needles.push(form);
            }
        }
        // Longest first; ties in a fixed order so that equal redactors compare equal.
        self.needles
            .sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    }

    /// A redactor masking the secrets of both `self` and `other`. Used when a config is
    /// replaced: a run that started with the old connector may still report the old secret.
    pub fn merged(&self, other: &Redactor) -> Redactor {
        let mut needles = self.needles.clone();
        needles.extend(other.needles.iter().cloned());
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret replaced by [`MASK`].
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }

    /// A task or hook error with its text redacted; the variant (what the runtime does next)
    /// is kept.
    pub fn task_error(&self, error: TaskError) -> TaskError {
        let text = |s: String| self.redact(&s).into_owned();
        match error {
            TaskError::Retryable(s) => TaskError::Retryable(text(s)),
            TaskError::NonRetryable(s) => TaskError::NonRetryable(text(s)),
            TaskError::Failed(s) => TaskError::Failed(text(s)),
            other => other,
        }
    }

    /// A config validation error with every field message redacted.
    pub fn config_error(&self, error: ConfigError) -> ConfigError {
        ConfigError(
            error
                .0
                .into_iter()
                .map(|e| FieldError {
                    field: self.redact(&e.field).into_owned(),
                    message: self.redact(&e.message).into_owned(),
                })
                .collect(),
        )
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the needles themselves: they are the secrets.
        f.debug_struct("Redactor")
            .field("forms", &self.needles.len())
            .finish()
    }
}

/// The secret strings inside one config value.
fn collect(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|v| collect(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect(v, out)),
        Value::Bool(_) | Value::Null => {}
    }
}

/// `s` percent-encoded as in a URL (every byte but RFC 3986's unreserved ones), with upper or
/// lower case hex digits, and with spaces as `+` when `form` (HTML form encoding).
fn percent_encode(s: &str, lower: bool, form: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b' ' if form => out.push('+'),
            _ if lower => out.push_str(&format!("%{b:02x}")),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A quoted literal without its quotes.
fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// Formats a config (a JSON object) as its keys only, for `Debug` impls of types that carry a
/// config without knowing which of its fields are secret.
pub struct ConfigKeys<'a>(pub &'a Value);

impl fmt::Debug for ConfigKeys<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Object(map) => f
                .debug_map()
                .entries(map.keys().map(|k| (k, Masked)))
                .finish(),
            _ => f.write_str(MASK),
        }
    }
}

/// Prints as [`MASK`], unquoted.
struct Masked;

impl fmt::Debug for Masked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

#[cfg(test)]
mod tests {
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

    fn config(key: Value) -> Config {
        let mut config = Config::new();
        config.insert("name".into(), json!("psp"));
        config.insert("apiKey".into(), key);
        config
    }

    #[test]
    fn masks_a_secret_in_its_plain_and_encoded_forms() {
        let r = Redactor::new(&schema(), &config(json!("sk/live+a b\"c")));
        assert_eq!(r.redact("key sk/live+a b\"c!"), "key ********!");
        assert_eq!(r.redact("?k=sk%2Flive%2Ba%20b%22c&"), "?k=********&");
        assert_eq!(r.redact("?k=sk%2flive%2ba%20b%22c&"), "?k=********&");
        assert_eq!(r.redact("k=sk%2Flive%2Ba+b%22c"), "k=********");
        assert_eq!(r.redact(r#"{"k":"sk/live+a b\"c"}"#), r#"{"k":"********"}"#);
        // Non-secret fields are left alone.
        assert_eq!(r.redact("connector psp"), "connector psp");
    }

    #[test]
    fn errors_keep_their_kind_and_lose_the_secret() {
        let r = Redactor::new(&schema(), &config(json!("sk_123456")));
        assert_eq!(
            r.task_error(TaskError::non_retryable("401 for sk_123456")),
            TaskError::NonRetryable("401 for ********".into())
        );
        assert_eq!(
            r.task_error(TaskError::retryable("sk_123456")),
            TaskError::Retryable(MASK.into())
        );
        let e = r.config_error(ConfigError::field("apiKey", "sk_123456 is revoked"));
        assert_eq!(e.0[0].message, "******** is revoked");
    }

    #[test]
    fn numbers_and_nested_values_count_empty_and_absent_ones_do_not() {
        let r = Redactor::new(&schema(), &config(json!({"id": "acct_42", "pin": 98765})));
        assert_eq!(r.redact("acct_42 98765"), "******** ********");
        assert!(Redactor::new(&schema(), &config(json!(""))).is_empty());
        assert!(Redactor::new(&schema(), &config(json!(true))).is_empty());
        assert!(Redactor::new(&schema(), &Config::new()).is_empty());
    }

    #[test]
    fn a_merged_redactor_masks_old_and_new_secrets() {
        let old = Redactor::new(&schema(), &config(json!("old-key-1")));
        let new = Redactor::new(&schema(), &config(json!("new-key-2")));
        let both = new.merged(&old);
        assert_eq!(both.redact("old-key-1 new-key-2"), "******** ********");
    }

    #[test]
    fn debug_output_shows_no_secret() {
        let r = Redactor::new(&schema(), &config(json!("sk_123456")));
        assert!(!format!("{r:?}").contains("sk_123456"));
        let c = Value::Object(config(json!("sk_123456")));
        let shown = format!("{:?}", ConfigKeys(&c));
        assert!(!shown.contains("sk_123456"), "{shown}");
        assert!(shown.contains("apiKey"), "{shown}");
    }
}
