//! The process's exit codes: what went wrong, from the error's type (never its text), so
//! that a supervisor (systemd, Kubernetes, a deploy script) can tell a deploy to fix from an
//! outage to wait out. The values follow BSD's sysexits.h, which systemd also understands
//! (e.g. `RestartPreventExitStatus=78`), and stay clear of clap's 2 for usage errors.

use crate::api::auth::AuthError;
use crate::app::StartupError;
use crate::declared::DeclaredError;
use crate::runtime::RuntimeError;
use crate::secrets::SecretsError;
use crate::settings::SettingsError;
use crate::storage::StorageError;
use crate::storage::embedded::EmbeddedError;
use crate::storage::tls::TlsError;
use crate::telemetry::TelemetryError;

/// Why the process stopped, as an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Ran and stopped cleanly (0).
    Success = 0,
    /// Anything else: an internal error, the port taken, an I/O failure (EX_SOFTWARE, 70).
    Internal = 70,
    /// The database could not be reached or started (EX_UNAVAILABLE, 69): retrying later may
    /// work.
    DatabaseUnavailable = 69,
    /// Another Tributary process holds the database's instance lock (EX_TEMPFAIL, 75).
    InstanceLocked = 75,
    /// The settings (file, environment, declared connectors) are invalid (EX_CONFIG, 78):
    /// retrying will not help.
    BadSettings = 78,
}

impl Exit {
    /// The code, for `std::process::ExitCode`.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Classifies an error of `tributary::cli::run`: the first error of its chain whose type
    /// says what happened decides.
    pub fn of(error: &anyhow::Error) -> Exit {
        error.chain().find_map(classify).unwrap_or(Exit::Internal)
    }
}

/// What one error of a chain says, if its type says anything.
fn classify(e: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if e.is::<SettingsError>() || e.is::<TelemetryError>() || e.is::<AuthError>() {
        return Some(Exit::BadSettings);
    }
    if let Some(e) = e.downcast_ref::<SecretsError>() {
        return Some(secrets(e));
    }
    if let Some(e) = e.downcast_ref::<StorageError>() {
        return Some(storage(e));
    }
    if e.is::<EmbeddedError>() {
        return Some(Exit::DatabaseUnavailable);
    }
    if let Some(e) = e.downcast_ref::<DeclaredError>() {
        return Some(match e {
            DeclaredError::Invalid { .. } => Exit::BadSettings,
            DeclaredError::Apply { source, .. } => runtime(source),
            DeclaredError::Storage(e) => storage(e),
            DeclaredError::Secrets(e) => secrets(e),
        });
    }
    if let Some(e) = e.downcast_ref::<RuntimeError>() {
        return Some(runtime(e));
    }
    if let Some(e) = e.downcast_ref::<StartupError>() {
        return Some(match e {
            StartupError::Storage(e) => storage(e),
            StartupError::Runtime(e) => runtime(e),
            StartupError::Declared(DeclaredError::Invalid { .. }) => Exit::BadSettings,
            StartupError::Declared(DeclaredError::Apply { source, .. }) => runtime(source),
            StartupError::Declared(DeclaredError::Storage(e)) => storage(e),
            StartupError::Declared(DeclaredError::Secrets(e)) | StartupError::Secrets(e) => {
                secrets(e)
            }
            // No authentication on a public address, or an unreadable JWKS file.
            StartupError::Auth(_) => Exit::BadSettings,
            StartupError::Bind { .. } => Exit::Internal,
        });
    }
    None
}

fn storage(e: &StorageError) -> Exit {
    match e {
        StorageError::AlreadyRunning => Exit::InstanceLocked,
        StorageError::Unavailable { .. } => Exit::DatabaseUnavailable,
        // Refused at the door: bad credentials (class 28) or no such database (3D000).
        StorageError::Database { code, .. } if code.starts_with("28") || code == "3D000" => {
            Exit::DatabaseUnavailable
        }
        // A TLS setting that cannot work (a bad value, an unreadable certificate) is the
        // settings' fault; a handshake the server fails or a server without TLS is the
        // database refusing us, like bad credentials.
        StorageError::Tls(
            TlsError::Param { .. } | TlsError::Conflict { .. } | TlsError::File { .. },
        ) => Exit::BadSettings,
        StorageError::Tls(TlsError::Handshake { .. } | TlsError::NotOffered { .. }) => {
            Exit::DatabaseUnavailable
        }
        _ => Exit::Internal,
    }
}

/// Key material that is bad, missing or does not decrypt what is stored is the operator's to
/// fix (retrying will not help); a malformed stored value is not.
fn secrets(e: &SecretsError) -> Exit {
    match e {
        SecretsError::Malformed { .. } => Exit::Internal,
        _ => Exit::BadSettings,
    }
}

fn runtime(e: &RuntimeError) -> Exit {
    match e {
        RuntimeError::Storage(e) => storage(e),
        RuntimeError::Validation(_) | RuntimeError::UnknownProvider(_) => Exit::BadSettings,
        RuntimeError::Secrets(e) => secrets(e),
        _ => Exit::Internal,
    }
}
