//! TLS to PostgreSQL (storage/tls.rs) against real servers this process starts: one with
//! `ssl = on` and certificates made here with rcgen, listening on 127.0.0.1 (one per test
//! process, a database per test), and one with `ssl = off` for `require` to fail against.
//!
//! The server certificate names only the IP address 127.0.0.1, so connecting to `localhost`
//! (with `hostaddr=127.0.0.1`, to reach the same listener) is a wrong host name.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio_postgres::NoTls;
use tributary::app::Application;
use tributary::settings::Settings;
use tributary::storage::database;
use tributary::storage::embedded::{EmbeddedConfig, EmbeddedPostgres};
use tributary::storage::instance_lock;
use tributary::storage::tls::SslMode;

use crate::cli::free_port;
use crate::helpers::test_settings;

/// Certificates and keys, as PEM files.
struct Pki {
    /// The CA that signed the server and client certificates.
    ca: PathBuf,
    /// A CA that signed nothing the server uses.
    other_ca: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
}

/// A PostgreSQL server of this test process, listening on 127.0.0.1.
struct Server {
    port: u16,
    /// An admin URL over the Unix socket (no TLS involved), for setup and inspection.
    admin_url: String,
    pki: Option<Pki>,
    _pg: EmbeddedPostgres,
}

static TLS_SERVER: OnceLock<Server> = OnceLock::new();
static PLAIN_SERVER: OnceLock<Server> = OnceLock::new();

fn tls_server() -> &'static Server {
    TLS_SERVER.get_or_init(|| {
        std::thread::spawn(|| start(true))
            .join()
            .expect("TLS server thread")
    })
}

fn plain_server() -> &'static Server {
    PLAIN_SERVER.get_or_init(|| {
        std::thread::spawn(|| start(false))
            .join()
            .expect("plain server thread")
    })
}

/// The directory of this process' servers; those of dead test processes are removed first
/// (a `static` is never dropped, so a process cannot remove its own).
fn work_dir() -> PathBuf {
    let prefix = "tributary-tls-";
    if let Ok(entries) = std::fs::read_dir("/tmp") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix(prefix) else {
                continue;
            };
            let alive = pid
                .split('-')
                .next()
                .is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
            if !alive {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = PathBuf::from(format!(
        "/tmp/{prefix}{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("work dir");
    // The server runs as `postgres` when we are root: it must traverse this.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    dir
}

fn start(tls: bool) -> Server {
    let dir = work_dir();
    let port = free_port();
    let mut config = EmbeddedConfig::for_data_dir(&dir, Path::new(""), port);
    config
        .server_options
        .push(("listen_addresses".into(), "127.0.0.1".into()));
    let pki = tls.then(|| make_pki(&dir.join("pki")));
    match &pki {
        Some(pki) => {
            let path = |p: &PathBuf| p.display().to_string();
            config.server_options.extend([
                ("ssl".into(), "on".into()),
                ("ssl_cert_file".into(), path(&pki.server_cert)),
                ("ssl_key_file".into(), path(&pki.server_key)),
                // Asks clients for a certificate (optional: pg_hba says `host … trust`).
                ("ssl_ca_file".into(), path(&pki.ca)),
            ]);
        }
        None => config.server_options.push(("ssl".into(), "off".into())),
    }
    let pg = EmbeddedPostgres::start(&config).expect("start a test PostgreSQL on 127.0.0.1");
    Server {
        port,
        admin_url: pg.url("postgres"),
        pki,
        _pg: pg,
    }
}

fn make_pki(dir: &Path) -> Pki {
    std::fs::create_dir_all(dir).expect("pki dir");
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).expect("write pem");
        path
    };
    let ca = |name: &str| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("CA certificate");
        (cert, Issuer::new(params, key))
    };
    let (ca_cert, issuer) = ca("Tributary test CA");
    let (other_cert, _) = ca("Unrelated CA");
    let leaf = |sans: Vec<String>, cn: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(sans).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &issuer).expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_pem, server_key) = leaf(
        vec!["127.0.0.1".into()],
        "tributary-test-server",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_pem, client_key) = leaf(
        Vec::new(),
        "tributary-client",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let pki = Pki {
        ca: write("ca.pem", ca_cert.pem()),
        other_ca: write("other-ca.pem", other_cert.pem()),
        server_cert: write("server.pem", server_pem),
        server_key: write("server.key", server_key),
        client_cert: write("client.pem", client_pem),
        client_key: write("client.key", client_key),
    };
    // PostgreSQL reads its key only if it is private to the user it runs as.
    std::fs::set_permissions(
        &pki.server_key,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod key");
    if nix::unistd::geteuid().is_root() {
        let user = nix::unistd::User::from_name("postgres")
            .expect("users")
            .expect("a postgres user");
        nix::unistd::chown(&pki.server_key, Some(user.uid), Some(user.gid)).expect("chown key");
    }
    pki
}

impl Server {
    fn pki(&self) -> &Pki {
        self.pki.as_ref().expect("the TLS server has certificates")
    }

    /// A new empty database (the service migrates it), by name.
    async fn database(&self) -> String {
        let name = format!("t_{}", uuid::Uuid::new_v4().simple());
        let (client, conn) = tokio_postgres::connect(&self.admin_url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create database");
        name
    }

    /// A TCP URL of `db` on this server: `host` is what TLS checks the certificate against.
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        let hostaddr = if host == "127.0.0.1" {
            String::new()
        } else {
            "hostaddr=127.0.0.1&".into()
        };
        format!(
            "postgres://postgres@{host}:{}/{db}?{hostaddr}{params}",
            self.port
        )
    }

    /// (application name, TLS, client certificate DN) of every backend on `db`.
    async fn backends(&self, db: &str) -> Vec<(String, bool, Option<String>)> {
        let (client, conn) = tokio_postgres::connect(&self.admin_url, NoTls)
            .await
            .expect("admin connection");
        tokio::spawn(conn);
        client
            .query(
                "SELECT a.application_name, s.ssl, s.client_dn FROM pg_stat_activity a \
                 JOIN pg_stat_ssl s USING (pid) WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
                &[&db],
            )
            .await
            .expect("pg_stat_ssl")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect()
    }
}

/// Whether a connection of the service's pool on `url` is encrypted, and the client
/// certificate the server saw.
async fn pool_connection(url: &str) -> Result<(bool, Option<String>), String> {
    let pool = database::connect(url, 2, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| format!("{e:?}"))?;
    let row = client
        .query_one(
            "SELECT ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok((row.get(0), row.get(1)))
}

/// Builds the service as `serve` does; the error message when it does not start.
async fn build(settings: &Settings, url: &str) -> Result<Application, String> {
    Application::build_with(
        settings,
        url,
        tributary::connectors::registry(settings),
        Arc::new(tributary::sdk::SystemClock),
    )
    .await
    .map_err(|e| e.to_string())
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

#[actix_rt::test]
async fn verify_full_starts_the_service_and_every_backend_of_it_is_encrypted() {
    let server = tls_server();
    let db = server.database().await;
    // The TLS settings come from the settings keys here, not from the URL.
    let mut settings = test_settings();
    settings.database.sslmode = Some(SslMode::VerifyFull);
    settings.database.sslrootcert = Some(server.pki().ca.clone());
    let app = build(&settings, &server.url("127.0.0.1", &db, ""))
        .await
        .expect("the service starts under verify-full");
    // Several pool connections at once (the storage actor and API reads take theirs there).
    let pool = app.storage().pool().clone();
    let held = futures::future::try_join_all((0..3).map(|_| pool.get()))
        .await
        .expect("pool connections");
    let backends = server.backends(&db).await;
    drop(held);
    let ours: Vec<_> = backends
        .iter()
        .filter(|(name, ..)| name.starts_with("tributary"))
        .collect();
    assert!(
        ours.len() >= 4,
        "expected the lock and 3 pool backends: {backends:?}"
    );
    assert!(
        ours.iter()
            .any(|(name, ..)| name == instance_lock::APPLICATION_NAME),
        "the instance lock's backend: {backends:?}"
    );
    assert!(
        ours.iter().all(|(_, ssl, _)| *ssl),
        "every backend of the service uses TLS: {backends:?}"
    );
    let shutdown = app.shutdown_token();
    let running = actix_rt::spawn(app.run_until_stopped(None));
    shutdown.cancel();
    running.await.expect("join").expect("stopped");
}

#[actix_rt::test]
async fn verify_full_refuses_a_wrong_host_name_at_start_and_verify_ca_accepts_it() {
    let server = tls_server();
    let db = server.database().await;
    let ca = path(&server.pki().ca);
    // The certificate names 127.0.0.1, not localhost.
    let url = server.url(
        "localhost",
        &db,
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    let message = build(&test_settings(), &url)
        .await
        .err()
        .expect("verify-full must refuse a certificate for another name");
    for part in [
        "TLS handshake failed",
        "sslmode=verify-full",
        &format!("sslrootcert={ca}"),
        "not valid for name \"localhost\"",
    ] {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
    // verify-ca checks the chain only.
    let url = server.url(
        "localhost",
        &db,
        &format!("sslmode=verify-ca&sslrootcert={ca}"),
    );
    assert_eq!(pool_connection(&url).await, Ok((true, None)));
    // As libpq does, require with a root certificate is verify-ca: the name is not checked,
    // but the chain is.
    let url = server.url(
        "localhost",
        &db,
        &format!("sslmode=require&sslrootcert={ca}"),
    );
    assert_eq!(pool_connection(&url).await, Ok((true, None)));
    let other = path(&server.pki().other_ca);
    let url = server.url(
        "localhost",
        &db,
        &format!("sslmode=require&sslrootcert={other}"),
    );
    let message = pool_connection(&url).await.expect_err("unknown CA");
    assert!(message.contains("UnknownIssuer"), "{message}");
}

#[actix_rt::test]
async fn an_unknown_ca_fails_at_start_naming_sslrootcert() {
    let server = tls_server();
    let db = server.database().await;
    let other = path(&server.pki().other_ca);
    for mode in ["verify-full", "verify-ca"] {
        let url = server.url(
            "127.0.0.1",
            &db,
            &format!("sslmode={mode}&sslrootcert={other}"),
        );
        let message = build(&test_settings(), &url)
            .await
            .err()
            .expect("a server certificate from an unknown CA must be refused");
        for part in [
            "TLS handshake failed",
            &format!("sslmode={mode}"),
            &format!("sslrootcert={other}"),
            "UnknownIssuer",
        ] {
            assert!(message.contains(part), "{part:?} missing from: {message}");
        }
    }
    // The same through the settings keys (so they are read, not ignored).
    let mut settings = test_settings();
    settings.database.sslmode = Some(SslMode::VerifyCa);
    settings.database.sslrootcert = Some(server.pki().other_ca.clone());
    let message = build(&settings, &server.url("127.0.0.1", &db, ""))
        .await
        .err()
        .expect("the settings' sslrootcert applies");
    assert!(
        message.contains(&format!("sslmode=verify-ca, sslrootcert={other}")),
        "{message}"
    );
    // An unreadable file is named too, before any connection.
    let url = server.url(
        "127.0.0.1",
        &db,
        "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
    );
    let message = build(&test_settings(), &url).await.err().expect("no file");
    assert!(
        message.contains("sslrootcert=/nonexistent/ca.pem: cannot read the file"),
        "{message}"
    );
}

#[actix_rt::test]
async fn require_against_a_server_without_tls_fails_clearly_and_prefer_falls_back() {
    let server = plain_server();
    let db = server.database().await;
    let message = build(
        &test_settings(),
        &server.url("127.0.0.1", &db, "sslmode=require"),
    )
    .await
    .err()
    .expect("require must refuse a server without TLS");
    assert!(
        message.contains("the server does not support TLS; sslmode=require"),
        "{message}"
    );
    let prefer = server.url("127.0.0.1", &db, "");
    assert_eq!(pool_connection(&prefer).await, Ok((false, None)));
}

#[actix_rt::test]
async fn disable_is_plain_prefer_and_require_encrypt_without_verifying() {
    let server = tls_server();
    let db = server.database().await;
    for (params, tls) in [
        ("sslmode=disable", false),
        ("", true),
        ("sslmode=prefer", true),
        // No root certificate: encrypted though nobody here trusts the test CA.
        ("sslmode=require", true),
    ] {
        let url = server.url("localhost", &db, params);
        assert_eq!(pool_connection(&url).await, Ok((tls, None)), "{params:?}");
    }
}

#[actix_rt::test]
async fn a_client_certificate_is_presented_for_mutual_tls() {
    let server = tls_server();
    let db = server.database().await;
    let pki = server.pki();
    let url = server.url(
        "127.0.0.1",
        &db,
        &format!(
            "sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            path(&pki.ca),
            path(&pki.client_cert),
            path(&pki.client_key)
        ),
    );
    assert_eq!(
        pool_connection(&url).await,
        Ok((true, Some("/CN=tributary-client".to_string())))
    );
}

#[actix_rt::test]
async fn tributary_serve_prints_the_tls_failure_and_exits_non_zero() {
    let server = tls_server();
    let db = server.database().await;
    let other = path(&server.pki().other_ca);
    let url = server.url(
        "127.0.0.1",
        &db,
        &format!("sslmode=verify-full&sslrootcert={other}"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let out = actix_rt::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_tributary"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .expect("run tributary serve")
    })
    .await
    .expect("join");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!(
            "error: database: TLS handshake failed (sslmode=verify-full, sslrootcert={other})"
        )),
        "stderr: {stderr}"
    );
}

/// Settings from a TOML text alone (no environment: DATABASE_URL is the test server's).
fn settings(toml: &str) -> Result<Settings, String> {
    use figment::providers::{Format, Serialized, Toml};
    Settings::from_figment(
        figment::Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(toml)),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn tls_settings_are_checked_when_loaded_and_errors_name_the_key() {
    let ok = settings(
        "[database]\nurl = \"postgres://h/db?sslmode=verify-full\"\nsslrootcert = \"/ca.pem\"\n",
    )
    .expect("URL and settings keys combine");
    assert_eq!(ok.database.sslrootcert, Some(PathBuf::from("/ca.pem")));
    for (toml, expected) in [
        (
            "[database]\nsslmode = \"verify_full\"\n",
            "key `database.sslmode`: unknown variant: found `verify_full`",
        ),
        (
            "[database]\nurl = \"postgres://h/db?sslmode=verify_full\"\n",
            "sslmode in the database URL: \"verify_full\" is not one of",
        ),
        (
            "[database]\nurl = \"postgres://h/db?sslmode=require\"\nsslmode = \"verify-full\"\n",
            "sslmode is \"require\" in the database URL but \"verify-full\" in database.sslmode",
        ),
        (
            "[database]\nurl = \"postgres://h/db\"\nsslmode = \"verify-ca\"\n",
            "sslrootcert: sslmode=verify-ca verifies the server's certificate",
        ),
        (
            "[database]\nurl = \"postgres://h/db\"\nsslcert = \"/c.pem\"\n",
            "sslkey: sslcert is set but sslkey is not",
        ),
    ] {
        let message = settings(toml).expect_err(toml);
        assert!(message.contains(expected), "{toml:?}: {message}");
    }
}
