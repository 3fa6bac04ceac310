//! Connector secrets at rest: config fields declared secret (`FieldSpec::secret`) are stored
//! encrypted in `connectors.config`, each value with AES-256-GCM under a key of the keyring.
//!
//! - [`keyring`]: where the keys come from (`TRIBUTARY_ENCRYPTION_KEY`, `encryption.key_file`,
//!   or a key file created under the data directory at first start), their `kid=base64`
//!   format, and adding a key (rotation);
//! - [`cipher`]: one value in, one `{"$encrypted": …}` object out, bound to its connector and
//!   field (AAD), and back;
//! - [`vault`]: the one boundary configs cross on their way into and out of the database, with
//!   the connector's schema at hand;
//! - [`rotate`]: `tributary rotate-key`, re-encrypting every stored value under the current key
//!   (connector configs and bank accounts' account numbers and IBANs).
//!
//! Bank accounts' account numbers and IBANs are sealed with the same keyring
//! ([`Vault::seal_bank_field`], [`Vault::open_bank_field`]), bound to the bank account.

pub mod cipher;
pub mod keyring;
pub mod rotate;
pub mod vault;

pub use keyring::{KeySource, Keyring};
pub use vault::Vault;

/// The environment variable holding the keyring (wins over `encryption.key_file`).
pub const KEY_ENV: &str = "TRIBUTARY_ENCRYPTION_KEY";

/// Why a key could not be loaded or a value not encrypted or decrypted. Never carries key
/// material or a decrypted value; names the source, the connector, the field and the key id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    /// The key source holds something that is not a keyring.
    #[error("{source_name}: {problem}")]
    BadKeyMaterial {
        /// The variable or file.
        source_name: String,
        /// What is wrong (line number, never the key).
        problem: String,
    },
    /// The key file could not be read, created or written.
    #[error("{path}: {problem}")]
    KeyFile {
        /// The file.
        path: String,
        /// The I/O error.
        problem: String,
    },
    /// A stored value names a key id the keyring does not hold.
    #[error(
        "connector {connector_id}: field {field:?} is encrypted under key id {kid:?}, which {source_name} does not hold (was the key file lost or replaced?)"
    )]
    UnknownKey {
        /// The connector.
        connector_id: String,
        /// The config field.
        field: String,
        /// The key id stored beside the value.
        kid: String,
        /// Where the keyring came from.
        source_name: String,
    },
    /// The keyring's key under that id does not decrypt the value (a wrong key under a right
    /// id, a value tampered with or moved from another connector or field).
    #[error(
        "connector {connector_id}: field {field:?} does not decrypt with key id {kid:?} from {source_name}: wrong key, or the value was altered or moved"
    )]
    Undecryptable {
        /// The connector.
        connector_id: String,
        /// The config field.
        field: String,
        /// The key id stored beside the value.
        kid: String,
        /// Where the keyring came from.
        source_name: String,
    },
    /// A bank account's stored account number or IBAN cannot be decrypted (unknown key id,
    /// wrong key, altered or moved value, malformed).
    #[error("bank account {bank_account_id}: field {field:?} cannot be decrypted: {problem}")]
    BankAccount {
        /// The bank account.
        bank_account_id: String,
        /// `accountNumber` or `iban`.
        field: String,
        /// What is wrong (names the key id and the keyring's source, never the value).
        problem: String,
    },
    /// A webhook config's stored signing secret cannot be decrypted.
    #[error("webhook config {config_id}: its secret cannot be decrypted: {problem}")]
    WebhookSecret {
        /// The webhook config.
        config_id: String,
        /// What is wrong (names the key id and the keyring's source, never the value).
        problem: String,
    },
    /// A stored `$encrypted` object is malformed.
    #[error("connector {connector_id}: field {field:?}: malformed encrypted value ({problem})")]
    Malformed {
        /// The connector.
        connector_id: String,
        /// The config field.
        field: String,
        /// What is wrong.
        problem: String,
    },
}
