//! JWTs from an identity provider (`[auth.jwt]`): RS256, ES256 and EdDSA, against the keys of
//! a JWKS document read from a file or fetched from a URL.
//!
//! The key decides the algorithm, never the token: each JWKS key is given the one algorithm
//! its type allows (RSA → RS256, EC P-256 → ES256, OKP Ed25519 → EdDSA) and a token whose
//! header names another one is refused before any signature check. Symmetric (`oct`) keys are
//! never loaded, so `alg: HS256` signed with a public key's bytes has nothing to verify
//! against; `alg: none` is not an algorithm `jsonwebtoken` knows, so its header does not parse.
//!
//! `jwks_url` is fetched at start, then every `refresh_interval`, and again when a token names
//! a key id the cache does not hold — at most once per `min_refresh_interval`, so a flood of
//! made-up key ids costs the identity provider one request per interval. A failed fetch keeps
//! the keys already cached.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::scope::Scopes;
use crate::settings::JwtSettings;

/// Tolerated clock difference with the identity provider, for `exp` and `nbf`.
pub const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a JWKS document could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The file could not be read.
    #[error("auth.jwt.jwks_file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// The URL could not be fetched or did not answer 200.
    #[error("auth.jwt.jwks_url {url}: {message}")]
    Fetch { url: String, message: String },
    /// The document is not a JWKS or holds no usable key.
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// Why a JWT was refused; the message is safe to answer (it names no key material).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, a header that does not parse, or an algorithm we never accept
    /// (`none`, any HMAC on a header we cannot read…).
    #[error("malformed token or unsupported algorithm")]
    Malformed,
    /// No cached key has the token's `kid` (after a refresh, when one was allowed).
    #[error("unknown key id")]
    UnknownKey,
    /// The header's `alg` is not the one the key's type allows (e.g. HS256 against an RSA key).
    #[error("algorithm {0} does not match the key")]
    AlgorithmMismatch(String),
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is past (beyond the clock skew).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the clock skew).
    #[error("token not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("wrong audience")]
    WrongAudience,
    /// A claim we require (`exp`, `iss`, `aud`, `sub`) is missing or malformed.
    #[error("missing or malformed claim {0}")]
    Claim(String),
}

/// The claims Tributary reads besides the validated ones.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    scp: Option<Scp>,
}

/// `scp` is a space-separated string (Okta, Azure AD) or an array of strings.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scp {
    One(String),
    Many(Vec<String>),
}

/// A verified token: who and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The `sub` claim.
    pub subject: String,
    /// The known scopes among `scope` and `scp`.
    pub scopes: Scopes,
}

/// A public key with the one algorithm its type allows.
struct VerifyKey {
    key: DecodingKey,
    alg: Algorithm,
}

/// The cached keys, by key id (a key without `kid` is usable only when it is the only key).
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Arc<VerifyKey>>,
    unnamed: Vec<Arc<VerifyKey>>,
}

impl KeySet {
    fn len(&self) -> usize {
        self.by_kid.len() + self.unnamed.len()
    }

    fn find(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None if self.len() == 1 => self
                .by_kid
                .values()
                .chain(self.unnamed.iter())
                .next()
                .cloned(),
            None => None,
        }
    }
}

/// The one algorithm a JWK's type allows, or why it is skipped.
fn key_algorithm(jwk: &Jwk) -> Result<Algorithm, &'static str> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key");
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric key (never accepted)"),
        _ => return Err("a key type or curve other than RSA, EC P-256 and Ed25519"),
    };
    // A key that declares another algorithm (RS512, PS256…) is not one we verify with.
    if let Some(declared) = &jwk.common.key_algorithm
        && declared.to_string() != format!("{alg:?}")
    {
        return Err("a key declared for an algorithm other than RS256, ES256 or EdDSA");
    }
    Ok(alg)
}

/// A JWKS document before its keys are read.
#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Builds the key set of a JWKS document; `origin` names the file or URL in messages.
fn parse_jwks(body: &[u8], origin: &str) -> Result<KeySet, JwksError> {
    // Keys are parsed one by one, so that one key of a kind `jsonwebtoken` cannot read (an
    // algorithm it does not name) skips that key, not the whole document.
    let set: RawJwks = serde_json::from_slice(body).map_err(|e| JwksError::Invalid {
        origin: origin.to_string(),
        message: format!("not a JWKS document: {e}"),
    })?;
    let mut keys = KeySet::default();
    for raw in set.keys {
        let jwk: Jwk = match serde_json::from_value(raw) {
            Ok(jwk) => jwk,
            Err(e) => {
                tracing::warn!(origin, error = %e, "JWKS key skipped: not a JWK this service reads");
                continue;
            }
        };
        let jwk = &jwk;
        let kid = jwk.common.key_id.clone();
        let loaded = key_algorithm(jwk).and_then(|alg| {
            DecodingKey::from_jwk(jwk)
                .map(|key| VerifyKey { key, alg })
                .map_err(|_| "a key whose parameters do not decode")
        });
        match (loaded, kid) {
            (Ok(key), Some(kid)) => {
                keys.by_kid.insert(kid, Arc::new(key));
            }
            (Ok(key), None) => keys.unnamed.push(Arc::new(key)),
            (Err(why), kid) => tracing::warn!(origin, ?kid, "JWKS key skipped: {why}"),
        }
    }
    if keys.len() == 0 {
        return Err(JwksError::Invalid {
            origin: origin.to_string(),
            message: "no RS256, ES256 or EdDSA signing key".into(),
        });
    }
    Ok(keys)
}

/// Where the keys come from.
enum Source {
    File,
    Url {
        url: String,
        client: reqwest::Client,
    },
}

/// Verifies JWTs against the cached keys; shared by every HTTP worker.
pub struct JwtVerifier {
    issuer: String,
    audience: String,
    source: Source,
    keys: RwLock<Arc<KeySet>>,
    /// When an unknown key id last caused a fetch; the lock also makes concurrent requests with
    /// unknown key ids wait for one fetch instead of starting their own.
    last_on_demand: tokio::sync::Mutex<Option<Instant>>,
    min_refresh_interval: Duration,
    /// How often the periodic refresh runs (URL source only).
    refresh_interval: Duration,
}

impl JwtVerifier {
    /// Loads the keys: a file must load; a URL that cannot be fetched at start is logged and
    /// retried by the periodic refresh and on the first token (until then JWTs are refused).
    pub async fn new(settings: &JwtSettings) -> Result<JwtVerifier, JwksError> {
        let (source, keys) = match (&settings.jwks_file, &settings.jwks_url) {
            (Some(path), _) => (Source::File, load_file(path)?),
            (None, Some(url)) => {
                let client = reqwest::Client::builder()
                    .timeout(FETCH_TIMEOUT)
                    .pool_max_idle_per_host(0)
                    .build()
                    .map_err(|e| JwksError::Fetch {
                        url: url.clone(),
                        message: e.to_string(),
                    })?;
                let source = Source::Url {
                    url: url.clone(),
                    client,
                };
                let keys = match fetch(&source).await {
                    Ok(keys) => keys,
                    Err(e) => {
                        tracing::error!(error = %e, "JWKS not fetched at start; JWTs are refused until a fetch succeeds");
                        KeySet::default()
                    }
                };
                (source, keys)
            }
            (None, None) => {
                return Err(JwksError::Invalid {
                    origin: "auth.jwt".into(),
                    message: "set jwks_file or jwks_url".into(),
                });
            }
        };
        Ok(JwtVerifier {
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            source,
            keys: RwLock::new(Arc::new(keys)),
            last_on_demand: tokio::sync::Mutex::new(None),
            min_refresh_interval: settings.min_refresh_interval,
            refresh_interval: settings.refresh_interval,
        })
    }

    /// Whether the keys come from a URL (and so are refreshed).
    pub fn refreshes(&self) -> bool {
        matches!(self.source, Source::Url { .. })
    }

    /// Refreshes the keys every `refresh_interval` until `stop` is cancelled (keys from a URL
    /// only; a file is read once). Runs on the current runtime.
    pub fn spawn_refresh(self: Arc<Self>, stop: tokio_util::sync::CancellationToken) {
        if !self.refreshes() {
            return;
        }
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(self.refresh_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tick.tick() => {
                        if let Err(e) = self.refresh().await {
                            tracing::warn!(error = %e, "JWKS refresh failed; old keys kept");
                        }
                    }
                }
            }
        });
    }

    /// Fetches the URL again and swaps the cache; a failure keeps the old keys.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let keys = fetch(&self.source).await?;
        tracing::debug!(keys = keys.len(), "JWKS refreshed");
        match self.keys.write() {
            Ok(mut guard) => *guard = Arc::new(keys),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(keys),
        }
        Ok(())
    }

    fn cached(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        let keys = match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        keys.find(kid)
    }

    /// The key for `kid`, fetching the JWKS again (rate-limited) when it is unknown.
    async fn key(&self, kid: Option<&str>) -> Option<Arc<VerifyKey>> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if !self.refreshes() {
            return None;
        }
        let mut last = self.last_on_demand.lock().await;
        // Another request may have fetched while this one waited for the lock.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last.is_some_and(|at| at.elapsed() < self.min_refresh_interval) {
            return None;
        }
        *last = Some(Instant::now());
        if let Err(e) = self.refresh().await {
            tracing::warn!(error = %e, "JWKS refresh for an unknown key id failed; old keys kept");
        }
        drop(last);
        self.cached(kid)
    }

    /// Verifies a token: key by `kid`, algorithm by the key, signature, `exp`/`nbf` with
    /// [`CLOCK_SKEW`], `iss`, `aud`, and a `sub`.
    pub async fn verify(&self, token: &str) -> Result<Verified, JwtError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtError::Malformed)?;
        let key = self
            .key(header.kid.as_deref())
            .await
            .ok_or(JwtError::UnknownKey)?;
        if header.alg != key.alg {
            return Err(JwtError::AlgorithmMismatch(format!("{:?}", header.alg)));
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = CLOCK_SKEW.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            jsonwebtoken::decode::<Claims>(token, &key.key, &validation).map_err(|e| {
                match e.into_kind() {
                    ErrorKind::InvalidSignature => JwtError::BadSignature,
                    ErrorKind::ExpiredSignature => JwtError::Expired,
                    ErrorKind::ImmatureSignature => JwtError::NotYetValid,
                    ErrorKind::InvalidIssuer => JwtError::WrongIssuer,
                    ErrorKind::InvalidAudience => JwtError::WrongAudience,
                    ErrorKind::InvalidAlgorithm => {
                        JwtError::AlgorithmMismatch(format!("{:?}", header.alg))
                    }
                    ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                        JwtError::Claim(c)
                    }
                    ErrorKind::Json(_) => JwtError::Claim("sub, scope or scp".into()),
                    _ => JwtError::Malformed,
                }
            })?;
        let claims = data.claims;
        let mut names: Vec<&str> = Vec::new();
        if let Some(scope) = &claims.scope {
            names.extend(scope.split_whitespace());
        }
        match &claims.scp {
            Some(Scp::One(s)) => names.extend(s.split_whitespace()),
            Some(Scp::Many(v)) => names.extend(v.iter().map(String::as_str)),
            None => {}
        }
        Ok(Verified {
            subject: claims.sub,
            scopes: Scopes::from_names(names),
        })
    }
}

fn load_file(path: &Path) -> Result<KeySet, JwksError> {
    let origin = format!("auth.jwt.jwks_file {}", path.display());
    let body = std::fs::read(path).map_err(|source| JwksError::Read {
        path: path.display().to_string(),
        source,
    })?;
    parse_jwks(&body, &origin)
}

async fn fetch(source: &Source) -> Result<KeySet, JwksError> {
    let Source::Url { url, client } = source else {
        return Err(JwksError::Invalid {
            origin: "auth.jwt".into(),
            message: "jwks_file is not fetched again; restart to reload it".into(),
        });
    };
    let failed = |message: String| JwksError::Fetch {
        url: url.clone(),
        message,
    };
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| failed(e.to_string()))?;
    if !response.status().is_success() {
        return Err(failed(format!("answered {}", response.status())));
    }
    let body = response.bytes().await.map_err(|e| failed(e.to_string()))?;
    parse_jwks(&body, &format!("auth.jwt.jwks_url {url}"))
}
