//! The connection pool, creating the service's database, and the health probe.
//!
//! Every connection is made through [`Target`] (storage/tls.rs), so the URL's `sslmode` and
//! certificates apply to all of them.

use std::time::Duration;

use deadpool_postgres::{ManagerConfig, RecyclingMethod, Runtime};

use super::StorageError;
use super::tls::Target;

/// The pool every read (and the storage actor) takes connections from.
pub type Pool = deadpool_postgres::Pool;

/// Parses a `postgres://` URL (its TLS parameters included) and loads the certificates it
/// names, naming the problem when something is wrong.
pub fn parse_url(url: &str) -> Result<Target, StorageError> {
    Target::from_url(url)
}

/// The same `postgres://` URL naming another database on the same server (used to create and
/// reach per-run databases in tests and benchmarks).
pub fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let start = base.find("://").map_or(0, |i| i + 3);
    let base = base[start..].find('/').map_or(base, |i| &base[..start + i]);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Builds a pool for `url`. Connections are made lazily; `timeout` bounds connecting and
/// waiting for a free connection, so a dead database fails fast instead of hanging requests.
pub fn connect(url: &str, max_size: usize, timeout: Duration) -> Result<Pool, StorageError> {
    pool(&parse_url(url)?, max_size, timeout)
}

/// Builds a pool on `target` (see [`connect`]).
pub fn pool(target: &Target, max_size: usize, timeout: Duration) -> Result<Pool, StorageError> {
    let mut target = target.clone();
    target
        .config_mut()
        .connect_timeout(timeout)
        .application_name("tributary");
    let manager = target.manager(ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    });
    Pool::builder(manager)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(timeout))
        .create_timeout(Some(timeout))
        .recycle_timeout(Some(timeout))
        .build()
        .map_err(|e| StorageError::Unavailable {
            context: "building the connection pool".into(),
            message: e.to_string(),
        })
}

/// Opens one connection and closes it: reports a TLS or connection problem with the
/// settings named, before a pool (whose errors cannot carry them) is used.
pub async fn check_connection(target: &Target) -> Result<(), StorageError> {
    let (client, connection) = target.connect("connecting").await?;
    let connection = tokio::spawn(connection);
    drop(client);
    let _ = connection.await;
    Ok(())
}

/// Creates `database` on the server behind `admin_url` unless it exists (used for the
/// embedded cluster, whose only database at first is `postgres`).
pub async fn ensure_database(admin_url: &str, database: &str) -> Result<(), StorageError> {
    let (client, connection) = parse_url(admin_url)?
        .connect("connecting to create the database")
        .await?;
    let conn = tokio::spawn(connection);
    let exists = client
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&database])
        .await
        .map_err(|e| StorageError::db("looking up the database", e))?
        .is_some();
    if !exists {
        let sql = format!("CREATE DATABASE \"{}\"", database.replace('"', "\"\""));
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| StorageError::db("creating the database", e))?;
    }
    drop(client);
    let _ = conn.await;
    Ok(())
}

/// Answers whether the database accepts queries right now.
pub async fn ping(pool: &Pool) -> Result<(), StorageError> {
    let client = pool
        .get()
        .await
        .map_err(|e| StorageError::pool("health check", e))?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|e| StorageError::db("health check", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::with_dbname;

    #[test]
    fn with_dbname_replaces_only_the_database() {
        assert_eq!(
            with_dbname("postgres://u@h:5432/test?sslmode=disable", "t_1"),
            "postgres://u@h:5432/t_1?sslmode=disable"
        );
        assert_eq!(
            with_dbname("postgresql://postgres@%2Ftmp%2Fpg:5432/postgres", "x"),
            "postgresql://postgres@%2Ftmp%2Fpg:5432/x"
        );
        assert_eq!(with_dbname("postgres://h", "x"), "postgres://h/x");
    }
}
