//! Formance Webhooks' signing, so that a receiver written for Formance verifies ours
//! unchanged (formancehq/webhooks `pkg/security/security.go`, `pkg/attempt.go`,
//! `docs/security.md`): the `formance-webhook-signature` header is `v1,<base64 HMAC-SHA256>`
//! of `{webhook id}.{unix timestamp}.{body}`, keyed with the secret's text (the base64
//! string itself, not its decoded bytes — as Formance does). Secrets are base64 of 24 random
//! bytes, generated when none is given.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The delivery id, the same at every attempt of one delivery (the signed id).
pub const HEADER_ID: &str = "formance-webhook-id";
/// The attempt's Unix time in seconds (signed).
pub const HEADER_TIMESTAMP: &str = "formance-webhook-timestamp";
/// `v1,<base64 HMAC-SHA256>`.
pub const HEADER_SIGNATURE: &str = "formance-webhook-signature";
/// `true` for the test endpoint's request, `false` otherwise.
pub const HEADER_TEST: &str = "formance-webhook-test";
/// The outbox event's id: the same for every config and attempt of one event.
pub const HEADER_IDEMPOTENCY_KEY: &str = "formance-webhook-idempotency-key";
/// Tributary's own: the event's connector ('' for events of no connector).
pub const HEADER_CONNECTOR: &str = "tributary-connector-id";
/// Tributary's own: the event's number in its connector's sequence (1, 2, 3 …).
pub const HEADER_SEQUENCE: &str = "tributary-sequence";

/// How many random bytes a secret holds before base64.
pub const SECRET_BYTES: usize = 24;

/// The `formance-webhook-signature` value of `body` sent as delivery `id` at `timestamp`.
pub fn sign(id: &str, timestamp: i64, secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// A fresh secret: base64 of 24 random bytes.
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    STANDARD.encode(bytes)
}

/// Why a secret given by a user is refused: Formance accepts only base64 of 24 bytes.
pub fn check_secret(secret: &str) -> Result<(), String> {
    match STANDARD.decode(secret) {
        Err(e) => Err(format!("secret should be base64 encoded: {e}")),
        Ok(bytes) if bytes.len() != SECRET_BYTES => Err(format!(
            "decoded secret should be of size {SECRET_BYTES}, not {}",
            bytes.len()
        )),
        Ok(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_formance() {
        // Computed independently: Python's hmac over the same text, keyed with the secret's
        // text.
        assert_eq!(
            sign(
                "wh-1",
                1_700_000_000,
                "V0bivxRWveaoz08afqjU6Ko/jwO0Cb+3",
                br#"{"a":1}"#
            ),
            "v1,2YPpqpTHKvN+jLbz2adit5pZZOpZdb1/dbS4pbCMNO4="
        );
    }

    #[test]
    fn secrets_are_base64_of_24_bytes() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        assert_eq!(check_secret(&secret), Ok(()));
        assert_ne!(new_secret(), secret);
        assert!(check_secret("not base64!").is_err());
        assert!(check_secret(&STANDARD.encode([0u8; 16])).is_err());
    }
}
