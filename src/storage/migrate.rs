//! Migrations: the SQL files under `migrations/`, embedded in the binary and applied at boot
//! and by `tributary migrate`. refinery takes no lock of its own, so the run is wrapped in an
//! advisory lock: two processes never migrate the same database at once.

use super::{Pool, StorageError};

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// Advisory lock key held while migrating ("tributary-migrate").
const MIGRATION_LOCK: i64 = 0x7472_6962_6d69_6772;

/// Applies pending migrations; returns how many were applied. Idempotent.
pub async fn run(pool: &Pool) -> Result<usize, StorageError> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| StorageError::pool("migrating", e))?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StorageError::db("taking the migration lock", e))?;
    let result = embedded::migrations::runner()
        .run_async(&mut **client)
        .await;
    // The lock is released even if the migration failed; if the connection itself broke,
    // the server releases it with the session.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = result.map_err(|e| StorageError::Migration(e.to_string()))?;
    let applied = report.applied_migrations().len();
    if applied > 0 {
        tracing::info!(applied, "database migrated");
    }
    Ok(applied)
}

/// The number of migrations shipped in this binary (for tests and `migrate` output).
pub fn shipped() -> usize {
    embedded::migrations::runner().get_migrations().len()
}
