//! The storage error type: what a write or read can fail with, and whether retrying may help.

/// A storage failure. Clonable, because one failed commit is reported to every sender of its
/// batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached (connect, pool or I/O failure): retrying may succeed.
    #[error("database unavailable during {context}: {message}")]
    Unavailable { context: String, message: String },
    /// The database refused a statement; `code` is the SQLSTATE.
    #[error("database error during {context}: {message} (SQLSTATE {code})")]
    Database {
        context: String,
        code: String,
        message: String,
    },
    /// A unique constraint would be violated.
    #[error("{0}")]
    Conflict(String),
    /// The row a write targets does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The write came from a task run that a newer run has superseded.
    #[error("write rejected: run {run} of task {task_id} was superseded")]
    Superseded { task_id: uuid::Uuid, run: i64 },
    /// Another Tributary process already serves this database.
    #[error(
        "another Tributary process is already serving this database (it holds the instance \
         lock); stop it first, or point this one at another database"
    )]
    AlreadyRunning,
    /// The storage actor has stopped (the service is shutting down).
    #[error("the storage actor has stopped")]
    Stopped,
    /// The database refused a value as malformed (SQLSTATE class 22: NUL in text, bad uuid,
    /// out-of-range time…): bad input, never a server error.
    #[error("invalid value: {0}")]
    InvalidInput(String),
    /// A migration failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The write refers to a row not written yet (a balance before its account): retrying
    /// later may succeed, but only this write failed, not the database.
    #[error("{0}")]
    MissingReference(String),
    /// TLS to the database is misconfigured or its handshake failed; the message names the
    /// setting (storage/tls.rs).
    #[error(transparent)]
    Tls(#[from] super::tls::TlsError),
    /// An invariant of the storage layer itself broke (a bug, never bad input).
    #[error("storage internal error: {0}")]
    Internal(String),
}

/// A stored name this version does not know is a broken invariant of the database, never a
/// guess at what it meant.
impl From<crate::domain::UnknownName> for StorageError {
    fn from(e: crate::domain::UnknownName) -> Self {
        StorageError::Internal(e.to_string())
    }
}

impl StorageError {
    /// Wraps a driver error with what we were doing, keeping the SQLSTATE when there is one.
    /// (`tokio_postgres::Error`'s own Display is just "db error".)
    pub fn db(context: impl Into<String>, e: tokio_postgres::Error) -> Self {
        let context = context.into();
        match e.as_db_error() {
            Some(db) => {
                let mut message = db.message().to_string();
                if let Some(detail) = db.detail() {
                    message.push_str(": ");
                    message.push_str(detail);
                }
                let code = db.code().code().to_string();
                if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
                    // connection exceptions, admin shutdown, too many connections
                    StorageError::Unavailable { context, message }
                } else if code.starts_with("22") {
                    StorageError::InvalidInput(format!("{context}: {message}"))
                } else {
                    StorageError::Database {
                        context,
                        code,
                        message,
                    }
                }
            }
            None => StorageError::Unavailable {
                context,
                message: match super::tls::tls_failure(&e) {
                    Some(cause) => format!("TLS handshake failed: {cause}"),
                    None => format!("{e:?}"),
                },
            },
        }
    }

    /// Wraps a pool error (no connection could be had).
    pub fn pool(context: impl Into<String>, e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Self::db(context, e),
            other => StorageError::Unavailable {
                context: context.into(),
                message: other.to_string(),
            },
        }
    }

    /// Whether retrying the same operation later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StorageError::Unavailable { .. }
                | StorageError::Stopped
                | StorageError::MissingReference(_)
        ) || matches!(self, StorageError::Database { code, .. }
                if code == "40001" || code == "40P01")
    }
}
