//! One process per database: `serve` holds a session advisory lock on a dedicated connection
//! for its whole life, so a second `serve` on the same database refuses to start instead of
//! running every task twice. PostgreSQL releases the lock when the session ends, including
//! when the process is killed.
//!
//! A database outage ends that session too. A keeper task then takes the lock again as soon
//! as the database answers; if another process took it meanwhile, the lock is reported lost
//! and the service shuts down rather than run beside it.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::StorageError;
use super::database::parse_url;

/// Advisory lock key of a serving instance ("tributary-serve").
const INSTANCE_LOCK: i64 = 0x7472_6962_7365_7276;
/// How often the keeper tries to take the lock back after losing its connection.
const RETAKE_EVERY: Duration = Duration::from_secs(1);
/// The lock connection's application name (visible in `pg_stat_activity`).
pub const APPLICATION_NAME: &str = "tributary-instance-lock";

/// Held while the service runs; [`InstanceLock::release`] gives it back (a graceful stop),
/// dropping it ends the session, which frees the lock a moment later.
pub struct InstanceLock {
    keeper: JoinHandle<()>,
    lost: CancellationToken,
    release: CancellationToken,
}

impl InstanceLock {
    /// Cancelled if, after losing its connection, the lock was found taken by another process.
    pub fn lost(&self) -> CancellationToken {
        self.lost.clone()
    }

    /// Unlocks and ends the session, returning once the lock is free: a service started on
    /// the same database right after a graceful stop is not refused. (Dropping the session
    /// alone frees it only when the server notices the closed connection.)
    pub async fn release(mut self) {
        self.release.cancel();
        let _ = (&mut self.keeper).await;
    }
}

impl Drop for InstanceLock {
    fn drop(&mut self) {
        self.keeper.abort();
    }
}

/// A session holding the lock: the client, and the task driving its connection (which ends
/// when the connection does).
struct Session {
    client: tokio_postgres::Client,
    connection: JoinHandle<()>,
}

async fn take(url: &str) -> Result<Session, StorageError> {
    let mut target = parse_url(url)?;
    target.config_mut().application_name(APPLICATION_NAME);
    let (client, connection) = target.connect("connecting for the instance lock").await?;
    let connection = tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = ?e, "instance lock connection closed");
        }
    });
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&INSTANCE_LOCK])
        .await
        .map_err(|e| StorageError::db("taking the instance lock", e))?
        .get(0);
    if !locked {
        return Err(StorageError::AlreadyRunning);
    }
    Ok(Session { client, connection })
}

/// Keeps the lock: waits for the session to end, then takes the lock again; on `release`,
/// unlocks and returns.
async fn keep(
    url: String,
    mut session: Session,
    lost: CancellationToken,
    release: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = &mut session.connection => {}
            _ = release.cancelled() => {
                // Failing, the session's end frees it all the same.
                let _ = session
                    .client
                    .execute("SELECT pg_advisory_unlock($1)", &[&INSTANCE_LOCK])
                    .await;
                return;
            }
        }
        tracing::warn!("instance lock session ended; taking the lock again");
        session = loop {
            tokio::select! {
                _ = tokio::time::sleep(RETAKE_EVERY) => {}
                _ = release.cancelled() => return,
            }
            match take(&url).await {
                Ok(session) => {
                    tracing::info!("instance lock taken again");
                    break session;
                }
                Err(StorageError::AlreadyRunning) => {
                    tracing::error!(
                        "another Tributary process took this database while the connection was down"
                    );
                    lost.cancel();
                    return;
                }
                Err(_) => continue,
            }
        };
    }
}

/// Takes the instance lock, or fails with [`StorageError::AlreadyRunning`].
pub async fn acquire(url: &str) -> Result<InstanceLock, StorageError> {
    let session = take(url).await?;
    let (lost, release) = (CancellationToken::new(), CancellationToken::new());
    let keeper = tokio::spawn(keep(
        url.to_string(),
        session,
        lost.clone(),
        release.clone(),
    ));
    Ok(InstanceLock {
        keeper,
        lost,
        release,
    })
}
