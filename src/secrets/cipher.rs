//! AES-256-GCM over one config value: the value's JSON text is encrypted with a random 96-bit
//! nonce and the associated data `tributary/config/v1 \0 <connector id> \0 <field>`, so a
//! ciphertext copied to another connector or field does not decrypt. Bank account numbers use
//! the same format with their own associated data ([`bank_account_aad`]).
//!
//! Stored form: `{"$encrypted": {"kid": …, "nonce": base64, "ciphertext": base64}}`. An object
//! rather than a prefixed string: no secret a user can type (a string) is ever mistaken for a
//! ciphertext, and SQL can see which key a value uses (`config->'f'->'$encrypted'->>'kid'`)
//! without parsing a string format.

use aes_gcm::aead::{Aead, AeadCore, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// The key of the object that marks an encrypted value.
pub const MARKER: &str = "$encrypted";

/// The parts of an encrypted value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// The id of the key it is encrypted under.
    pub kid: String,
    /// The 96-bit nonce.
    pub nonce: Vec<u8>,
    /// The ciphertext with its 128-bit tag.
    pub ciphertext: Vec<u8>,
}

impl Sealed {
    /// The stored JSON form.
    pub fn to_json(&self) -> Value {
        json!({ MARKER: {
            "kid": self.kid,
            "nonce": STANDARD.encode(&self.nonce),
            "ciphertext": STANDARD.encode(&self.ciphertext),
        }})
    }

    /// `Ok(None)` when `value` is not an encrypted value (a clear one); `Err` with the problem
    /// when it is one but malformed.
    pub fn from_json(value: &Value) -> Result<Option<Sealed>, String> {
        let Some(inner) = value.as_object().and_then(|o| o.get(MARKER)) else {
            return Ok(None);
        };
        let text = |key: &str| {
            inner
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("no {key:?} string"))
        };
        let bytes = |key: &str| {
            STANDARD
                .decode(text(key)?)
                .map_err(|e| format!("{key:?} is not base64: {e}"))
        };
        let nonce = bytes("nonce")?;
        if nonce.len() != 12 {
            return Err(format!("nonce of {} bytes, not 12", nonce.len()));
        }
        Ok(Some(Sealed {
            kid: text("kid")?.to_string(),
            nonce,
            ciphertext: bytes("ciphertext")?,
        }))
    }
}

/// The associated data binding a value to its connector and field.
fn aad(connector_id: &str, field: &str) -> Vec<u8> {
    format!("tributary/config/v1\0{connector_id}\0{field}").into_bytes()
}

/// The associated data binding a bank account's value to the bank account and the field
/// (`accountNumber`, `iban`): a ciphertext moved to another row or column does not decrypt.
pub fn bank_account_aad(bank_account_id: &str, field: &str) -> Vec<u8> {
    format!("tributary/bank-account/v1\0{bank_account_id}\0{field}").into_bytes()
}

/// The associated data binding a webhook config's signing secret to the config: a sealed
/// secret copied onto another config does not open.
pub fn webhook_secret_aad(config_id: &str) -> Vec<u8> {
    format!("tributary/webhook-secret/v1\0{config_id}").into_bytes()
}

/// Encrypts `value` for `field` of `connector_id` under `key` (id `kid`), with a fresh nonce.
pub fn seal(key: &Aes256Gcm, kid: &str, connector_id: &str, field: &str, value: &Value) -> Sealed {
    seal_bound(key, kid, &aad(connector_id, field), value)
}

/// Encrypts `value` under `key` (id `kid`) with a fresh nonce, bound to `aad`.
pub fn seal_bound(key: &Aes256Gcm, kid: &str, aad: &[u8], value: &Value) -> Sealed {
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let plaintext = value.to_string();
    // Encryption into a Vec fails only on a plaintext over 64 GiB.
    let ciphertext = key
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext.as_bytes(),
                aad,
            },
        )
        .unwrap_or_default();
    Sealed {
        kid: kid.to_string(),
        nonce: nonce.to_vec(),
        ciphertext,
    }
}

/// Decrypts `sealed` as `field` of `connector_id`; `None` when the key, the connector or the
/// field is not the one it was sealed with, or it was altered.
pub fn open(key: &Aes256Gcm, connector_id: &str, field: &str, sealed: &Sealed) -> Option<Value> {
    open_bound(key, &aad(connector_id, field), sealed)
}

/// Decrypts `sealed` bound to `aad`; `None` when the key or the binding is not the one it was
/// sealed with, or it was altered.
pub fn open_bound(key: &Aes256Gcm, aad: &[u8], sealed: &Sealed) -> Option<Value> {
    let plaintext = key
        .decrypt(
            Nonce::from_slice(&sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad,
            },
        )
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

#[cfg(test)]
mod tests {
    use aes_gcm::KeyInit;

    use super::*;

    fn key(byte: u8) -> Aes256Gcm {
        Aes256Gcm::new_from_slice(&[byte; 32]).expect("32 bytes")
    }

    #[test]
    fn a_value_opens_only_with_its_key_connector_and_field() {
        let sealed = seal(&key(1), "k1", "c1", "apiKey", &json!("sk_live_1"));
        let stored = Sealed::from_json(&sealed.to_json()).unwrap().unwrap();
        assert_eq!(stored, sealed);
        assert!(!sealed.to_json().to_string().contains("sk_live_1"));
        assert_eq!(
            open(&key(1), "c1", "apiKey", &stored),
            Some(json!("sk_live_1"))
        );
        assert_eq!(open(&key(2), "c1", "apiKey", &stored), None);
        assert_eq!(open(&key(1), "c2", "apiKey", &stored), None);
        assert_eq!(open(&key(1), "c1", "password", &stored), None);
    }

    #[test]
    fn a_bank_account_value_opens_only_for_its_bank_account_and_field() {
        let aad = bank_account_aad("b1", "iban");
        let sealed = seal_bound(&key(1), "k1", &aad, &json!("FR76SENTINEL"));
        assert!(!sealed.to_json().to_string().contains("SENTINEL"));
        assert_eq!(
            open_bound(&key(1), &aad, &sealed),
            Some(json!("FR76SENTINEL"))
        );
        assert_eq!(
            open_bound(&key(1), &bank_account_aad("b2", "iban"), &sealed),
            None
        );
        assert_eq!(
            open_bound(&key(1), &bank_account_aad("b1", "accountNumber"), &sealed),
            None
        );
        // Never mistaken for a connector's config value of the same names.
        assert_eq!(open(&key(1), "b1", "iban", &sealed), None);
    }

    #[test]
    fn each_seal_has_its_own_nonce() {
        let a = seal(&key(1), "k1", "c", "f", &json!(42));
        let b = seal(&key(1), "k1", "c", "f", &json!(42));
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.ciphertext, b.ciphertext);
        assert_eq!(open(&key(1), "c", "f", &b), Some(json!(42)));
    }

    #[test]
    fn clear_and_malformed_values_are_told_apart() {
        assert_eq!(Sealed::from_json(&json!("sk_live")), Ok(None));
        assert_eq!(Sealed::from_json(&json!({"a": 1})), Ok(None));
        assert!(Sealed::from_json(&json!({MARKER: {"kid": "k"}})).is_err());
    }
}
