//! Authentication and authorization of API requests: bearer tokens, checked by one middleware
//! wrapped around every route (src/app.rs).
//!
//! - [`tokens`]: static tokens from the settings, known by their SHA-256;
//! - [`jwt`]: JWTs from an identity provider, verified against its JWKS;
//! - [`scope`]: `payments:read` for reads, `payments:write` (which implies read) for writes.
//!
//! The middleware answers 401 (`UNAUTHORIZED`, `WWW-Authenticate: Bearer`, with
//! `error="invalid_token"` when a token was sent but is not valid) or 403 (`FORBIDDEN`,
//! `error="insufficient_scope"`), both in the Formance error envelope, and otherwise puts the
//! [`Principal`] in the request's extensions for what runs after it (the audit log). With no
//! source configured, authentication is off: every request runs as [`Principal::anonymous`],
//! and [`check_bind`] keeps such a service on a loopback address unless told otherwise.

pub mod jwt;
pub mod scope;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError, web};

use super::error::{ApiError, ErrorCode};
use crate::settings::{AuthSettings, Settings};
use jwt::JwtVerifier;
use scope::{Scope, Scopes};
use tokens::StaticTokens;

/// The realm named in `WWW-Authenticate`.
const REALM: &str = "tributary";

/// Who made a request, for the audit log and the scope check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The static token's name, the JWT's `sub`, or `anonymous` when authentication is off.
    pub name: String,
    /// How it was authenticated.
    pub kind: PrincipalKind,
    /// What it may do.
    pub scopes: Scopes,
}

/// How a principal was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A static token from `[[auth.tokens]]`.
    Token,
    /// A JWT verified against `[auth.jwt]`.
    Jwt,
    /// Nobody: authentication is off.
    Anonymous,
}

impl PrincipalKind {
    /// The name stored in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            PrincipalKind::Token => "token",
            PrincipalKind::Jwt => "jwt",
            PrincipalKind::Anonymous => "anonymous",
        }
    }
}

impl Principal {
    /// The caller when authentication is off: allowed everything.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            kind: PrincipalKind::Anonymous,
            scopes: Scopes::ALL,
        }
    }
}

/// Why authentication could not be set up at start.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The JWKS could not be loaded.
    #[error(transparent)]
    Jwks(#[from] jwt::JwksError),
    /// No authentication on a non-loopback address, and not allowed explicitly.
    #[error(
        "refusing to listen on {addr} without authentication: configure [[auth.tokens]] or \
         [auth.jwt], or set server.allow_unauthenticated = true to serve it unauthenticated \
         on purpose (or bind a loopback address such as 127.0.0.1)"
    )]
    UnauthenticatedBind {
        /// The configured `server.bind`.
        addr: SocketAddr,
    },
}

/// The configured sources, shared by every HTTP worker (as `web::Data<Authenticator>`).
pub struct Authenticator {
    tokens: StaticTokens,
    jwt: Option<Arc<JwtVerifier>>,
    metrics_require_auth: bool,
}

/// Why a presented token was refused.
#[derive(Debug)]
enum Refusal {
    /// No `Authorization: Bearer` header.
    Missing,
    /// A token that is not valid; the reason is answered.
    Invalid(String),
}

impl Authenticator {
    /// Builds the sources from the settings (loading or fetching the JWKS).
    pub async fn new(settings: &Settings) -> Result<Authenticator, AuthError> {
        let jwt = match &settings.auth.jwt {
            Some(jwt) => Some(Arc::new(JwtVerifier::new(jwt).await?)),
            None => None,
        };
        Ok(Authenticator {
            tokens: StaticTokens::new(&settings.auth.tokens),
            jwt,
            metrics_require_auth: settings.metrics.require_auth,
        })
    }

    /// Authentication off: every request is anonymous.
    pub fn disabled() -> Authenticator {
        Authenticator {
            tokens: StaticTokens::default(),
            jwt: None,
            metrics_require_auth: false,
        }
    }

    /// Whether any source is configured.
    pub fn enabled(&self) -> bool {
        !self.tokens.is_empty() || self.jwt.is_some()
    }

    /// The JWT verifier, when `[auth.jwt]` is set (the app runs its periodic refresh).
    pub fn jwt(&self) -> Option<&Arc<JwtVerifier>> {
        self.jwt.as_ref()
    }

    /// Whether a path is served without a token: liveness, health, version, the OpenAPI
    /// document and Swagger UI, and `/metrics` unless `metrics.require_auth`. Exact paths only:
    /// anything else, unknown routes included, needs a token.
    pub fn is_open(&self, path: &str) -> bool {
        OPEN_API_PATHS
            .iter()
            .any(|p| path.strip_prefix(super::BASE_PATH) == Some(p))
            || path == super::openapi::DOC_PATH
            || path == "/swagger-ui"
            || path.starts_with("/swagger-ui/")
            || (path == super::metrics::PATH && !self.metrics_require_auth)
    }

    /// The principal a bearer token stands for: a static token first (one hash and a map
    /// lookup), then a JWT.
    async fn principal(&self, token: &str) -> Result<Principal, Refusal> {
        if let Some((name, scopes)) = self.tokens.find(token) {
            return Ok(Principal {
                name: name.to_string(),
                kind: PrincipalKind::Token,
                scopes,
            });
        }
        match &self.jwt {
            Some(jwt) if token.bytes().filter(|b| *b == b'.').count() == 2 => {
                let verified = jwt
                    .verify(token)
                    .await
                    .map_err(|e| Refusal::Invalid(e.to_string()))?;
                Ok(Principal {
                    name: verified.subject,
                    kind: PrincipalKind::Jwt,
                    scopes: verified.scopes,
                })
            }
            _ => Err(Refusal::Invalid("unknown token".into())),
        }
    }
}

/// Whether a path is a connector webhook's (`/connectors/webhooks/…` under the base path):
/// served without a token, since a provider cannot send ours; the connector's own
/// verification (signature, shared secret) authenticates it (src/api/webhooks.rs).
pub fn is_webhook(path: &str) -> bool {
    path.strip_prefix(super::BASE_PATH)
        .is_some_and(|p| p.starts_with(super::webhooks::PREFIX))
}

/// The routes under the base path that need no token.
const OPEN_API_PATHS: [&str; 3] = ["/_live", "/_health", "/_info"];

/// The bearer token of a request, if it sent one.
fn bearer(req: &ServiceRequest) -> Result<&str, Refusal> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(Refusal::Missing);
    };
    let value = value
        .to_str()
        .map_err(|_| Refusal::Invalid("Authorization header is not ASCII".into()))?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(Refusal::Invalid(
            "Authorization header is not `Bearer <token>`".into(),
        )),
    }
}

/// A 401 or 403 in the Formance envelope with its `WWW-Authenticate` challenge.
fn challenge(code: ErrorCode, message: String, www_authenticate: String) -> HttpResponse {
    let mut response = ApiError::new(code, message).error_response();
    let value = HeaderValue::from_str(&www_authenticate)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// The middleware function (`actix_web::middleware::from_fn(auth::authenticate)`).
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    let auth = req.app_data::<web::Data<Authenticator>>().cloned();
    let auth = match auth {
        Some(auth) if auth.enabled() => auth,
        // Off (or not installed, as in an app built without it): everything is anonymous.
        _ => {
            req.extensions_mut().insert(Principal::anonymous());
            return next.call(req).await.map(|r| r.map_into_left_body());
        }
    };
    if auth.is_open(req.path()) {
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    if req.method() == actix_web::http::Method::POST && is_webhook(req.path()) {
        // Audited under this name; the connector verifies the request.
        req.extensions_mut().insert(Principal {
            name: "webhook".into(),
            kind: PrincipalKind::Anonymous,
            scopes: Scopes::default(),
        });
        return next.call(req).await.map(|r| r.map_into_left_body());
    }
    let needed = Scope::required_for(req.method());
    let principal = match bearer(&req) {
        Ok(token) => auth.principal(token).await,
        Err(refusal) => Err(refusal),
    };
    let refusal = match principal {
        Ok(principal) if principal.scopes.allow(needed) => {
            req.extensions_mut().insert(principal);
            return next.call(req).await.map(|r| r.map_into_left_body());
        }
        Ok(principal) => {
            tracing::info!(
                target: "tributary::auth",
                principal = %principal.name,
                method = %req.method(),
                path = req.path(),
                needed = needed.name(),
                "request refused: insufficient scope"
            );
            let message = format!(
                "{} {} needs the scope {} (this token has: {})",
                req.method(),
                req.path(),
                needed.name(),
                principal.scopes.names().join(", ")
            );
            req.extensions_mut().insert(principal);
            challenge(
                ErrorCode::Forbidden,
                message,
                format!(
                    "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{}\"",
                    needed.name()
                ),
            )
        }
        Err(Refusal::Missing) => challenge(
            ErrorCode::Unauthorized,
            "missing bearer token: send Authorization: Bearer <token>".into(),
            format!("Bearer realm=\"{REALM}\""),
        ),
        Err(Refusal::Invalid(reason)) => {
            tracing::info!(
                target: "tributary::auth",
                method = %req.method(),
                path = req.path(),
                reason = %reason,
                "request refused: invalid token"
            );
            challenge(
                ErrorCode::Unauthorized,
                format!("invalid bearer token: {reason}"),
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{reason}\""
                ),
            )
        }
    };
    Ok(req.into_response(refusal).map_into_right_body())
}

/// What the bind rule decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindMode {
    /// Authentication is configured.
    Authenticated,
    /// No authentication, on a loopback address only (the default).
    LoopbackUnauthenticated,
    /// No authentication on another address, allowed by `server.allow_unauthenticated`.
    UnauthenticatedOnPurpose,
}

/// Secure by default: without authentication the service listens on loopback addresses only,
/// unless `server.allow_unauthenticated` says otherwise.
pub fn check_bind(
    addr: SocketAddr,
    auth_enabled: bool,
    allow_unauthenticated: bool,
) -> Result<BindMode, AuthError> {
    if auth_enabled {
        Ok(BindMode::Authenticated)
    } else if addr.ip().to_canonical().is_loopback() {
        Ok(BindMode::LoopbackUnauthenticated)
    } else if allow_unauthenticated {
        Ok(BindMode::UnauthenticatedOnPurpose)
    } else {
        Err(AuthError::UnauthenticatedBind { addr })
    }
}

/// Checks `[auth]`: each token's digest, scopes and unique name, and `[auth.jwt]`'s source
/// and claims. `Err((key, problem))` names the key.
pub fn validate_settings(auth: &AuthSettings) -> Result<(), (String, String)> {
    let mut names = std::collections::HashSet::new();
    let mut digests = std::collections::HashSet::new();
    let known = || {
        Scope::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, token) in auth.tokens.iter().enumerate() {
        let key = |field: &str| format!("auth.tokens[{i}].{field}");
        if token.name.trim().is_empty() {
            return Err((key("name"), "must not be empty".into()));
        }
        if !names.insert(token.name.as_str()) {
            return Err((
                key("name"),
                format!("token name {:?} is used twice", token.name),
            ));
        }
        let Some(digest) = tokens::parse_digest(&token.sha256) else {
            return Err((
                key("sha256"),
                "must be 64 hex digits, the SHA-256 of the token (printf %s \"$TOKEN\" | sha256sum)"
                    .into(),
            ));
        };
        if !digests.insert(digest) {
            return Err((key("sha256"), "the same token is listed twice".into()));
        }
        if token.scopes.is_empty() {
            return Err((
                key("scopes"),
                format!("must list at least one scope ({})", known()),
            ));
        }
        if let Some(bad) = token.scopes.iter().find(|s| Scope::parse(s).is_none()) {
            return Err((
                key("scopes"),
                format!("unknown scope {bad:?} (known: {})", known()),
            ));
        }
    }
    if let Some(jwt) = &auth.jwt {
        match (&jwt.jwks_file, &jwt.jwks_url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err((
                    "auth.jwt".into(),
                    "set exactly one of jwks_file and jwks_url".into(),
                ));
            }
            (None, Some(url)) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                return Err((
                    "auth.jwt.jwks_url".into(),
                    "must be an http:// or https:// URL".into(),
                ));
            }
            _ => {}
        }
        if jwt.issuer.trim().is_empty() {
            return Err(("auth.jwt.issuer".into(), "must not be empty".into()));
        }
        if jwt.audience.trim().is_empty() {
            return Err(("auth.jwt.audience".into(), "must not be empty".into()));
        }
        if jwt.refresh_interval.is_zero() {
            return Err((
                "auth.jwt.refresh_interval".into(),
                "must be greater than zero".into(),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    #[test]
    fn without_auth_only_loopback_binds_unless_allowed() {
        assert_eq!(
            check_bind(addr("127.0.0.1:8080"), false, false).ok(),
            Some(BindMode::LoopbackUnauthenticated)
        );
        assert_eq!(
            check_bind(addr("[::1]:8080"), false, false).ok(),
            Some(BindMode::LoopbackUnauthenticated)
        );
        assert_eq!(
            check_bind(addr("[::ffff:127.0.0.1]:8080"), false, false).ok(),
            Some(BindMode::LoopbackUnauthenticated)
        );
        for refused in [
            "0.0.0.0:8080",
            "[::]:8080",
            "10.1.2.3:80",
            "[::ffff:10.0.0.1]:80",
        ] {
            let e = check_bind(addr(refused), false, false).expect_err(refused);
            let message = e.to_string();
            assert!(
                message.contains("server.allow_unauthenticated")
                    && message.contains("[[auth.tokens]]")
                    && message.contains("[auth.jwt]"),
                "{message}"
            );
        }
        assert_eq!(
            check_bind(addr("0.0.0.0:8080"), false, true).ok(),
            Some(BindMode::UnauthenticatedOnPurpose)
        );
        assert_eq!(
            check_bind(addr("0.0.0.0:8080"), true, false).ok(),
            Some(BindMode::Authenticated)
        );
    }

    #[test]
    fn open_paths_are_exact() {
        let auth = Authenticator {
            tokens: StaticTokens::new(&[]),
            jwt: None,
            metrics_require_auth: false,
        };
        for open in [
            "/api/payments/_live",
            "/api/payments/_health",
            "/api/payments/_info",
            "/openapi.json",
            "/swagger-ui/",
            "/swagger-ui/index.css",
            "/metrics",
        ] {
            assert!(auth.is_open(open), "{open}");
        }
        for closed in [
            "/api/payments/_live/",
            "/api/payments/payments",
            "/_live",
            "/api/payments/_infos",
            "/openapi.json/x",
            "/swagger-uix",
        ] {
            assert!(!auth.is_open(closed), "{closed}");
        }
        let strict = Authenticator {
            metrics_require_auth: true,
            ..auth
        };
        assert!(!strict.is_open("/metrics"));
    }
}
