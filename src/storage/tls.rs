//! TLS to PostgreSQL, with libpq's parameters: `sslmode`, `sslrootcert`, `sslcert`, `sslkey`.
//!
//! They may be given in the database URL's query string and as `[database]` settings keys.
//! tokio-postgres knows only `sslmode=disable|prefer|require` and refuses every other TLS
//! parameter, so they are taken out of the URL here ([`split_url`]) and turned into a rustls
//! client configuration. [`Target`] is the one entry point: every connection the service opens
//! (the pool, database creation, the instance lock, `migrate`, the bench) is made from one.
//!
//! Semantics follow libpq (<https://www.postgresql.org/docs/current/libpq-ssl.html>):
//! - `disable`: never TLS. `prefer` (the default): TLS when the server offers it, otherwise
//!   plain. `require`: TLS or nothing. Neither verifies the server's certificate — unless an
//!   `sslrootcert` is given: then, as libpq does, the chain is verified against it (so
//!   `require` with `sslrootcert` is `verify-ca`).
//! - `verify-ca`: TLS, the chain must lead to `sslrootcert`; the host name is not checked.
//! - `verify-full`: `verify-ca` plus the host name: the URL's host must be one of the
//!   certificate's DNS names (or IP addresses, for an IP host).
//! - `sslcert` + `sslkey`: a client certificate, for servers that ask for one (mutual TLS).
//!
//! Deliberate differences from libpq: no file is read unless named (libpq looks for
//! `~/.postgresql/root.crt` and `postgresql.{crt,key}`); `sslcert` and `sslkey` go together;
//! `verify-ca`/`verify-full` without `sslrootcert` is an error at start, not at connect; under
//! `prefer` a failed handshake is an error (libpq retries without TLS, tokio-postgres cannot);
//! `allow` is refused (tokio-postgres has no "plain first, then TLS").
//!
//! A key set both in the URL and in the settings must have the same value there: the two are
//! usually written by different people (a secret `DATABASE_URL`, a reviewed settings file),
//! and letting either silently win could turn `verify-full` into `require`. A different value
//! is an error naming both. Equal values are fine, so applying the settings twice is harmless.
//!
//! A Unix-socket host (the embedded cluster) never uses TLS, as with libpq: PostgreSQL does
//! not offer it there, and the socket never leaves the machine.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use serde::{Deserialize, Serialize};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StorageError;

/// The TLS parameters taken out of the URL; tokio-postgres would refuse all but `sslmode`.
const PARAMS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// libpq's `sslmode`: whether TLS is used and what of the server's certificate is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it (the default).
    Prefer,
    /// TLS or no connection; the certificate is checked only if `sslrootcert` is given.
    Require,
    /// TLS, and the certificate chain must lead to `sslrootcert`.
    VerifyCa,
    /// `verify-ca`, and the certificate must name the host connected to.
    VerifyFull,
}

impl SslMode {
    const NAMES: &str = "disable, prefer, require, verify-ca, verify-full";

    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SslMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "\"allow\" is not supported (tokio-postgres cannot try plain first); use \
                     prefer or disable"
                        .into(),
                );
            }
            other => return Err(format!("\"{other}\" is not one of {}", Self::NAMES)),
        })
    }
}

/// TLS parameters as given in one place (the URL or the settings); unset means "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    /// `sslmode`.
    pub sslmode: Option<SslMode>,
    /// `sslrootcert`: the CA certificate(s) the server's chain must lead to (PEM).
    pub sslrootcert: Option<PathBuf>,
    /// `sslcert`: the client certificate chain (PEM), for mutual TLS.
    pub sslcert: Option<PathBuf>,
    /// `sslkey`: the client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub sslkey: Option<PathBuf>,
}

/// Why TLS to the database cannot be set up or failed; every message names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A TLS parameter has a bad value or is missing a companion.
    #[error("database: {key}: {problem}")]
    Param { key: String, problem: String },
    /// The URL and the settings give one parameter two different values.
    #[error(
        "database: {key} is \"{in_url}\" in the database URL but \"{in_settings}\" in \
         database.{key}; set it in one place"
    )]
    Conflict {
        key: &'static str,
        in_url: String,
        in_settings: String,
    },
    /// A certificate or key file cannot be read or holds nothing usable.
    #[error("database: {key}={path}: {problem}")]
    File {
        key: &'static str,
        path: String,
        problem: String,
    },
    /// The TLS handshake failed (bad certificate, wrong host name, unknown CA…).
    #[error("database: TLS handshake failed ({settings}) while {context}: {message}")]
    Handshake {
        settings: String,
        context: String,
        message: String,
    },
    /// TLS is required but the server does not offer it.
    #[error("database: the server does not support TLS; {settings} (while {context})")]
    NotOffered { settings: String, context: String },
}

/// The effective TLS choice after merging the URL and the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// The mode asked for (default `prefer`).
    pub mode: SslMode,
    /// The CA file, when the chain is verified.
    pub root_cert: Option<PathBuf>,
    /// The client certificate and key files, for mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing (libpq's `prefer`/`require` without a root certificate): encrypted, not
    /// authenticated.
    None,
    /// The chain, not the host name.
    Chain,
    /// The chain and the host name.
    Full,
}

impl TlsOptions {
    /// Resolves the parameters given (libpq's rules; see the module header).
    pub fn resolve(params: &TlsParams) -> Result<Self, TlsError> {
        let mode = params.sslmode.unwrap_or(SslMode::Prefer);
        if matches!(mode, SslMode::VerifyCa | SslMode::VerifyFull) && params.sslrootcert.is_none() {
            return Err(TlsError::Param {
                key: "sslrootcert".into(),
                problem: format!(
                    "sslmode={mode} verifies the server's certificate and needs the CA \
                     certificate file in sslrootcert"
                ),
            });
        }
        let client_cert = match (&params.sslcert, &params.sslkey) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (Some(_), None) => return Err(missing_pair("sslkey", "sslcert")),
            (None, Some(_)) => return Err(missing_pair("sslcert", "sslkey")),
        };
        Ok(TlsOptions {
            mode,
            root_cert: params.sslrootcert.clone(),
            client_cert,
        })
    }

    /// What is checked of the server's certificate when TLS is used.
    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::VerifyFull, _) => Verification::Full,
            (SslMode::Disable, _) | (_, None) => Verification::None,
            (_, Some(_)) => Verification::Chain,
        }
    }

    /// The mode tokio-postgres enforces (it decides plain vs TLS; rustls does the checks).
    fn driver_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Driver;
        match self.mode {
            SslMode::Disable => Driver::Disable,
            SslMode::Prefer => Driver::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Driver::Require,
        }
    }

    /// "sslmode=…, sslrootcert=…" for messages.
    pub fn describe(&self) -> String {
        let mut out = format!("sslmode={}", self.mode);
        if let Some(root) = &self.root_cert {
            out.push_str(&format!(", sslrootcert={}", root.display()));
        }
        if let Some((cert, key)) = &self.client_cert {
            out.push_str(&format!(
                ", sslcert={}, sslkey={}",
                cert.display(),
                key.display()
            ));
        }
        out
    }
}

fn missing_pair(missing: &str, given: &str) -> TlsError {
    TlsError::Param {
        key: missing.into(),
        problem: format!("{given} is set but {missing} is not; a client certificate needs both"),
    }
}

/// Takes the TLS parameters out of a `postgres://` URL: the URL tokio-postgres may parse, and
/// the parameters. A parameter given twice or with a bad `sslmode` is an error.
pub fn split_url(url: &str) -> Result<(String, TlsParams), TlsError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), TlsParams::default()));
    };
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_key, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = decode(raw_key, "database URL parameter")?;
        if !PARAMS.contains(&key.as_str()) {
            kept.push(pair);
            continue;
        }
        let value = decode(raw_value, &key)?;
        let twice = || TlsError::Param {
            key: format!("{key} in the database URL"),
            problem: "is given twice".into(),
        };
        // An empty value means "not set", as in libpq.
        if value.is_empty() {
            continue;
        }
        match key.as_str() {
            "sslmode" => {
                let mode = value.parse().map_err(|problem| TlsError::Param {
                    key: "sslmode in the database URL".into(),
                    problem,
                })?;
                if params.sslmode.replace(mode).is_some() {
                    return Err(twice());
                }
            }
            key => {
                let slot = match key {
                    "sslrootcert" => &mut params.sslrootcert,
                    "sslcert" => &mut params.sslcert,
                    _ => &mut params.sslkey,
                };
                if slot.replace(value.into()).is_some() {
                    return Err(twice());
                }
            }
        }
    }
    let url = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, params))
}

fn decode(raw: &str, what: &str) -> Result<String, TlsError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| TlsError::Param {
            key: what.into(),
            problem: "is not valid percent-encoded UTF-8".into(),
        })
}

/// Characters escaped when a parameter is written into a URL's query string.
const QUERY_VALUE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'=')
    .add(b'?');

/// The URL with the settings' TLS parameters added: each key must be unset in the URL or
/// have the same value there (see the module header).
pub fn apply_settings(url: &str, settings: &TlsParams) -> Result<String, TlsError> {
    let (_, in_url) = split_url(url)?;
    let mut added = Vec::new();
    let mut check = |key: &'static str, url_value: Option<String>, set: Option<String>| match (
        url_value, set,
    ) {
        (Some(u), Some(s)) if u != s => Err(TlsError::Conflict {
            key,
            in_url: u,
            in_settings: s,
        }),
        (None, Some(s)) => {
            added.push(format!("{key}={}", utf8_percent_encode(&s, QUERY_VALUE)));
            Ok(())
        }
        _ => Ok(()),
    };
    let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    check(
        "sslmode",
        in_url.sslmode.map(|m| m.to_string()),
        settings.sslmode.map(|m| m.to_string()),
    )?;
    check(
        "sslrootcert",
        path(&in_url.sslrootcert),
        path(&settings.sslrootcert),
    )?;
    check("sslcert", path(&in_url.sslcert), path(&settings.sslcert))?;
    check("sslkey", path(&in_url.sslkey), path(&settings.sslkey))?;
    if added.is_empty() {
        return Ok(url.to_string());
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}{}", added.join("&")))
}

/// Checks a URL's TLS parameters (merged with the settings') without reading any file: what
/// settings validation can tell before the service starts.
pub fn check(url: &str, settings: &TlsParams) -> Result<TlsOptions, TlsError> {
    let (_, params) = split_url(&apply_settings(url, settings)?)?;
    TlsOptions::resolve(&params)
}

/// A database to connect to: the tokio-postgres configuration (TLS parameters taken out) and
/// the rustls connector built from them. Every connection of the service is made from one.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// The resolved options, or `None` when every host is a Unix socket (no TLS there).
    options: Option<TlsOptions>,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("config", &self.config)
            .field("tls", &self.options)
            .finish()
    }
}

impl Target {
    /// Parses a `postgres://` URL, its TLS parameters included, and loads the certificate
    /// files they name.
    pub fn from_url(url: &str) -> Result<Self, StorageError> {
        let (stripped, params) = split_url(url)?;
        let mut config =
            tokio_postgres::Config::from_str(&stripped).map_err(|e| StorageError::Unavailable {
                context: "parsing the database URL".into(),
                message: e.to_string(),
            })?;
        let over_tcp = config.get_hosts().iter().any(|h| matches!(h, Host::Tcp(_)))
            || !config.get_hostaddrs().is_empty();
        if !over_tcp {
            // Unix sockets only (the embedded cluster): PostgreSQL offers no TLS there.
            config.ssl_mode(tokio_postgres::config::SslMode::Disable);
            return Ok(Target {
                config,
                tls: MakeRustlsConnect::new(client_config(None, Verification::None, None)?),
                options: None,
            });
        }
        let options = TlsOptions::resolve(&params)?;
        config.ssl_mode(options.driver_mode());
        let roots = options
            .root_cert
            .as_deref()
            .map(load_roots)
            .transpose()?
            .filter(|_| options.mode != SslMode::Disable);
        let client = options
            .client_cert
            .as_ref()
            .map(|(cert, key)| load_client_cert(cert, key))
            .transpose()?;
        let tls = client_config(roots, options.verification(), client)?;
        Ok(Target {
            config,
            tls: MakeRustlsConnect::new(tls),
            options: Some(options),
        })
    }

    /// The connection parameters, for connection-level settings (application name, timeout).
    pub fn config_mut(&mut self) -> &mut tokio_postgres::Config {
        &mut self.config
    }

    /// The connection parameters.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The effective TLS options; `None` over a Unix socket, where TLS does not apply.
    pub fn options(&self) -> Option<&TlsOptions> {
        self.options.as_ref()
    }

    /// Opens one connection. The caller drives (spawns) the returned connection future.
    pub async fn connect(
        &self,
        context: &str,
    ) -> Result<
        (
            tokio_postgres::Client,
            impl Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
        ),
        StorageError,
    > {
        self.config
            .connect(self.tls.clone())
            .await
            .map_err(|e| self.error(context, e))
    }

    /// A connection-pool manager that connects like [`Target::connect`].
    pub fn manager(&self, config: deadpool_postgres::ManagerConfig) -> deadpool_postgres::Manager {
        deadpool_postgres::Manager::from_config(self.config.clone(), self.tls.clone(), config)
    }

    /// Wraps a driver error, naming the TLS settings when TLS is what failed.
    pub fn error(&self, context: &str, e: tokio_postgres::Error) -> StorageError {
        match (tls_failure(&e), &self.options) {
            (Some(message), Some(options)) => {
                let settings = options.describe();
                let context = context.to_string();
                StorageError::Tls(if message == NOT_OFFERED {
                    TlsError::NotOffered { settings, context }
                } else {
                    TlsError::Handshake {
                        settings,
                        context,
                        message,
                    }
                })
            }
            _ => StorageError::db(context, e),
        }
    }
}

/// tokio-postgres' message when `require` meets a server that answers "no TLS".
const NOT_OFFERED: &str = "server does not support TLS";

/// The cause of a TLS failure (`None` for any other error). tokio-postgres does not expose
/// its error kinds; a TLS failure is the one whose own text is this.
pub fn tls_failure(e: &tokio_postgres::Error) -> Option<String> {
    if e.to_string() != "error performing TLS handshake" {
        return None;
    }
    let mut message = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        // An io::Error wrapping a rustls error prints the same text as its source.
        if message.last() != Some(&text) {
            message.push(text);
        }
        source = cause.source();
    }
    Some(message.join(": "))
}

/// The process' choice of cryptography: ring (aws-lc-rs would need cmake to build).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    roots: Option<RootCertStore>,
    verification: Verification,
    client: Option<ClientCert>,
) -> Result<ClientConfig, StorageError> {
    let provider = provider();
    let internal = |e: rustls::Error| StorageError::Internal(format!("TLS setup: {e}"));
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(internal)?;
    let verifier: Arc<dyn ServerCertVerifier> = match (verification, roots) {
        (Verification::None, _) | (_, None) => Arc::new(NoVerification(provider)),
        (v, Some(roots)) => {
            // Fails only without roots, which load_roots rules out.
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| StorageError::Internal(format!("TLS verifier: {e}")))?;
            if v == Verification::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    Ok(match client {
        None => builder.with_no_client_auth(),
        Some(client) => builder
            .with_client_auth_cert(client.certs, client.key)
            .map_err(|e| {
                file_error(
                    "sslkey",
                    &client.key_path,
                    format!("unusable with sslcert: {e}"),
                )
            })?,
    })
}

fn file_error(key: &'static str, path: &Path, problem: impl fmt::Display) -> TlsError {
    TlsError::File {
        key,
        path: path.display().to_string(),
        problem: problem.to_string(),
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(key, path, format!("cannot read the file: {e}")))
}

fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(key, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(key, path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "holds no PEM certificate"));
    }
    Ok(certs)
}

fn load_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs("sslrootcert", path)? {
        roots
            .add(cert)
            .map_err(|e| file_error("sslrootcert", path, format!("invalid certificate: {e}")))?;
    }
    Ok(roots)
}

/// A client certificate chain and its key, loaded.
struct ClientCert {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    key_path: PathBuf,
}

fn load_client_cert(cert: &Path, key_path: &Path) -> Result<ClientCert, TlsError> {
    let certs = load_certs("sslcert", cert)?;
    let pem = read("sslkey", key_path)?;
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        file_error(
            "sslkey",
            key_path,
            format!("no usable PEM private key: {e}"),
        )
    })?;
    Ok(ClientCert {
        certs,
        key,
        key_path: key_path.to_path_buf(),
    })
}

/// `prefer`/`require` without a root certificate: the connection is encrypted but the
/// server is not authenticated (libpq's behaviour). The handshake's signatures are still
/// checked, so the session keys belong to whoever holds the certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: rustls' WebPKI verifier, with its host-name verdict ignored. WebPKI checks
/// the chain (trust anchor, validity, usage, revocation) before the name, so a
/// "not valid for name" error means everything else passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> TlsParams {
        split_url(url).expect("split").1
    }

    #[test]
    fn every_sslmode_is_read_from_the_url() {
        for (text, mode) in [
            ("disable", SslMode::Disable),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
            ("verify-ca", SslMode::VerifyCa),
            ("verify-full", SslMode::VerifyFull),
        ] {
            let p = params(&format!("postgres://h/db?sslmode={text}"));
            assert_eq!(p.sslmode, Some(mode), "{text}");
            assert_eq!(mode.to_string(), text);
        }
    }

    #[test]
    fn an_unknown_sslmode_names_the_key_and_the_choices() {
        let e = split_url("postgres://h/db?sslmode=verify_full").unwrap_err();
        let text = e.to_string();
        assert!(text.contains("sslmode"), "{text}");
        assert!(text.contains("verify_full"), "{text}");
        assert!(text.contains("verify-full"), "{text}");
        let allow = split_url("postgres://h/db?sslmode=allow").unwrap_err();
        assert!(allow.to_string().contains("not supported"), "{allow}");
    }

    #[test]
    fn tls_parameters_are_taken_out_and_others_kept() {
        let (url, p) = split_url(
            "postgres://u:p%3F@h:5433/db?application_name=x&sslmode=verify-full&sslrootcert=%2Fa%20b%2Fca.pem&sslcert=/c.pem&sslkey=/k.pem&connect_timeout=3",
        )
        .expect("split");
        assert_eq!(
            url,
            "postgres://u:p%3F@h:5433/db?application_name=x&connect_timeout=3"
        );
        assert_eq!(p.sslmode, Some(SslMode::VerifyFull));
        assert_eq!(p.sslrootcert, Some(PathBuf::from("/a b/ca.pem")));
        assert_eq!(p.sslcert, Some(PathBuf::from("/c.pem")));
        assert_eq!(p.sslkey, Some(PathBuf::from("/k.pem")));
        // What is left parses with tokio-postgres, which refuses sslrootcert & co.
        tokio_postgres::Config::from_str(&url).expect("tokio-postgres parses the rest");
        assert!(
            tokio_postgres::Config::from_str("postgres://h/db?sslrootcert=/x").is_err(),
            "tokio-postgres would refuse the parameter if it were left in"
        );
        let (bare, _) = split_url("postgres://h/db?sslmode=require").expect("split");
        assert_eq!(bare, "postgres://h/db");
    }

    #[test]
    fn a_parameter_given_twice_is_refused() {
        let e = split_url("postgres://h/db?sslmode=verify-full&sslmode=require").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
    }

    #[test]
    fn defaults_and_libpq_rules() {
        let resolve = |url: &str| TlsOptions::resolve(&params(url));
        let default = resolve("postgres://h/db").expect("default");
        assert_eq!(default.mode, SslMode::Prefer);
        assert_eq!(default.verification(), Verification::None);
        let require = resolve("postgres://h/db?sslmode=require").expect("require");
        assert_eq!(require.verification(), Verification::None);
        // libpq: require with a root certificate verifies the chain, like verify-ca.
        let require_ca =
            resolve("postgres://h/db?sslmode=require&sslrootcert=/ca.pem").expect("require+ca");
        assert_eq!(require_ca.verification(), Verification::Chain);
        let ca = resolve("postgres://h/db?sslmode=verify-ca&sslrootcert=/ca.pem").expect("ca");
        assert_eq!(ca.verification(), Verification::Chain);
        let full = resolve("postgres://h/db?sslmode=verify-full&sslrootcert=/ca.pem").expect("f");
        assert_eq!(full.verification(), Verification::Full);
        assert_eq!(full.describe(), "sslmode=verify-full, sslrootcert=/ca.pem");
        let disable =
            resolve("postgres://h/db?sslmode=disable&sslrootcert=/ca.pem").expect("disable");
        assert_eq!(disable.verification(), Verification::None);
        for mode in ["verify-ca", "verify-full"] {
            let e = resolve(&format!("postgres://h/db?sslmode={mode}")).unwrap_err();
            assert!(e.to_string().contains("sslrootcert"), "{e}");
            assert!(e.to_string().contains(mode), "{e}");
        }
        let e = resolve("postgres://h/db?sslcert=/c.pem").unwrap_err();
        assert!(e.to_string().contains("sslkey"), "{e}");
        let e = resolve("postgres://h/db?sslkey=/k.pem").unwrap_err();
        assert!(e.to_string().contains("sslcert"), "{e}");
    }

    #[test]
    fn settings_are_added_to_the_url_and_a_conflict_names_both() {
        let settings = TlsParams {
            sslmode: Some(SslMode::VerifyFull),
            sslrootcert: Some("/etc/ca dir/ca.pem".into()),
            ..TlsParams::default()
        };
        let url = apply_settings("postgres://h/db?application_name=x", &settings).expect("apply");
        assert_eq!(
            params(&url),
            TlsParams {
                sslmode: Some(SslMode::VerifyFull),
                sslrootcert: Some("/etc/ca dir/ca.pem".into()),
                ..TlsParams::default()
            }
        );
        // Applying again (same values) changes nothing.
        assert_eq!(apply_settings(&url, &settings).expect("again"), url);
        let e = apply_settings("postgres://h/db?sslmode=require", &settings).unwrap_err();
        assert_eq!(
            e.to_string(),
            "database: sslmode is \"require\" in the database URL but \"verify-full\" in \
             database.sslmode; set it in one place"
        );
        let e = check("postgres://h/db?sslrootcert=/other.pem", &settings).unwrap_err();
        assert!(e.to_string().contains("sslrootcert"), "{e}");
    }

    #[test]
    fn a_unix_socket_never_uses_tls() {
        let target =
            Target::from_url("postgresql://postgres@%2Ftmp%2Fpg:5432/x?sslmode=verify-full")
                .expect("target");
        assert!(target.options().is_none());
        assert_eq!(
            target.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn missing_or_invalid_files_name_the_setting() {
        let e =
            Target::from_url("postgres://h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
                .unwrap_err();
        let text = e.to_string();
        assert!(text.contains("sslrootcert=/nonexistent/ca.pem"), "{text}");
        let dir = tempfile::tempdir().expect("dir");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").expect("write");
        let e = Target::from_url(&format!(
            "postgres://h/db?sslmode=verify-ca&sslrootcert={}",
            junk.display()
        ))
        .unwrap_err();
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let text = Target::from_url(&format!(
            "postgres://h/db?sslcert={0}&sslkey={0}",
            junk.display()
        ))
        .unwrap_err()
        .to_string();
        assert!(text.contains("sslcert="), "{text}");
    }

    #[test]
    fn the_driver_enforces_the_mode() {
        use tokio_postgres::config::SslMode as Driver;
        for (mode, driver) in [
            ("disable", Driver::Disable),
            ("prefer", Driver::Prefer),
            ("require", Driver::Require),
        ] {
            let target =
                Target::from_url(&format!("postgres://h/db?sslmode={mode}")).expect("target");
            assert_eq!(target.config().get_ssl_mode(), driver, "{mode}");
        }
        let target = Target::from_url("postgres://h/db").expect("target");
        assert_eq!(target.config().get_ssl_mode(), Driver::Prefer);
    }
}
