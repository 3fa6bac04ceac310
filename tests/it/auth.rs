//! Authentication and authorization of the HTTP API (src/api/auth), the bind rule, the
//! OpenAPI security declarations and the audit log, against the real service on a fresh
//! database: static tokens and JWTs (RS256, ES256, EdDSA; from a JWKS file and from a JWKS
//! server this test runs), every route of the route table walked with no token, a read-only
//! token and a write token.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpResponse, HttpServer, web};
use awc::http::Method;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tributary::api::BASE_PATH;
use tributary::app::Application;
use tributary::runtime::Registry;
use tributary::settings::{JwtSettings, Settings, StaticTokenSettings};

use crate::helpers::{TestApp, TestDb, eventually, spawn_app_configured, test_settings};
use crate::runtime::support::{Probe, TestLoader};

const READER: &str = "reader-token-3c9d1f";
const WRITER: &str = "writer-token-8e2a4b";
const ISSUER: &str = "https://idp.example.test/";
const AUDIENCE: &str = "tributary-api";
/// A config value: it must never reach the audit log.
const CONNECTOR_NAME: &str = "cfgvalue-7f3a";

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/auth/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The test keys (tests/fixtures/auth: test-only keys, committed).
struct Keys {
    rsa: EncodingKey,
    ec1: EncodingKey,
    ec2: EncodingKey,
    ed: EncodingKey,
}

impl Keys {
    fn load() -> Keys {
        Keys {
            rsa: EncodingKey::from_rsa_pem(&fixture("rsa.pem")).expect("rsa"),
            ec1: EncodingKey::from_ec_pem(&fixture("ec1.pem")).expect("ec1"),
            ec2: EncodingKey::from_ec_pem(&fixture("ec2.pem")).expect("ec2"),
            ed: EncodingKey::from_ed_pem(&fixture("ed25519.pem")).expect("ed"),
        }
    }

    /// The public JWK of `key`, named `kid`.
    fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Value {
        let mut jwk = Jwk::from_encoding_key(key, alg).expect("jwk");
        jwk.common.key_id = Some(kid.to_string());
        serde_json::to_value(jwk).expect("json")
    }

    /// A JWKS of the given `(key, alg, kid)`s.
    fn jwks(keys: &[(&EncodingKey, Algorithm, &str)]) -> String {
        let keys: Vec<Value> = keys
            .iter()
            .map(|(k, a, kid)| Keys::jwk(k, *a, kid))
            .collect();
        json!({ "keys": keys }).to_string()
    }

    /// rsa, ec1 and ed: ec2 is not in it.
    fn main_jwks(&self) -> String {
        Keys::jwks(&[
            (&self.rsa, Algorithm::RS256, "rsa"),
            (&self.ec1, Algorithm::ES256, "ec1"),
            (&self.ed, Algorithm::EdDSA, "ed"),
        ])
    }
}

fn now() -> i64 {
    jsonwebtoken::get_current_timestamp() as i64
}

/// Valid claims with both scopes, changed by `changes` (a `null` removes a claim).
fn claims(changes: Value) -> Value {
    let mut claims = json!({
        "sub": "svc-reconciler",
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now(),
        "exp": now() + 600,
        "scope": "openid payments:read payments:write",
    });
    for (k, v) in changes.as_object().expect("object") {
        if v.is_null() {
            claims.as_object_mut().expect("object").remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    claims
}

fn sign(alg: Algorithm, kid: Option<&str>, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_string);
    jsonwebtoken::encode(&header, claims, key).expect("sign")
}

fn sha256_hex(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn static_tokens() -> Vec<StaticTokenSettings> {
    vec![
        StaticTokenSettings {
            name: "dashboard".into(),
            sha256: sha256_hex(READER),
            scopes: vec!["payments:read".into()],
        },
        StaticTokenSettings {
            name: "operator".into(),
            sha256: sha256_hex(WRITER),
            scopes: vec!["payments:write".into()],
        },
    ]
}

fn jwt_settings(file: Option<std::path::PathBuf>, url: Option<String>) -> JwtSettings {
    JwtSettings {
        jwks_file: file,
        jwks_url: url,
        issuer: ISSUER.into(),
        audience: AUDIENCE.into(),
        refresh_interval: Duration::from_secs(300),
        min_refresh_interval: Duration::from_secs(30),
    }
}

/// An HTTP answer.
struct Answer {
    status: u16,
    www_authenticate: Option<String>,
    body: Value,
}

impl Answer {
    /// Asserts a refusal: status, Formance envelope with `code`, and a Bearer challenge.
    fn refused(&self, status: u16, code: &str, what: &str) {
        assert_eq!(self.status, status, "{what}: {}", self.body);
        assert_eq!(self.body["errorCode"], code, "{what}: {}", self.body);
        assert!(
            self.body["errorMessage"].is_string(),
            "{what}: {}",
            self.body
        );
        let challenge = self.www_authenticate.as_deref().unwrap_or_default();
        assert!(challenge.starts_with("Bearer"), "{what}: {challenge:?}");
    }

    fn challenge(&self) -> &str {
        self.www_authenticate.as_deref().unwrap_or_default()
    }
}

/// A service with authentication on.
struct AuthApi {
    app: TestApp,
    root: String,
    client: awc::Client,
    _dir: tempfile::TempDir,
}

impl AuthApi {
    /// Static tokens and a JWKS file (rsa, ec1, ed), with `edit` applied to the settings.
    async fn start_with(keys: &Keys, edit: impl FnOnce(&mut Settings)) -> AuthApi {
        let dir = tempfile::tempdir().expect("tempdir");
        let jwks = dir.path().join("jwks.json");
        std::fs::write(&jwks, keys.main_jwks()).expect("write jwks");
        let mut settings = test_settings();
        settings.auth.tokens = static_tokens();
        settings.auth.jwt = Some(jwt_settings(Some(jwks), None));
        edit(&mut settings);
        let registry = Registry::new().with(Arc::new(TestLoader {
            probe: Arc::new(Probe::default()),
            allow: 10,
        }));
        let app = spawn_app_configured(TestDb::new().await, registry, &settings).await;
        let root = app.base.trim_end_matches(BASE_PATH).to_string();
        AuthApi {
            app,
            root,
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish(),
            _dir: dir,
        }
    }

    async fn start(keys: &Keys) -> AuthApi {
        AuthApi::start_with(keys, |_| {}).await
    }

    /// A request to `path` (from the server's root) with an optional bearer token and body.
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut request = self.client.request(method, format!("{}{path}", self.root));
        if let Some(token) = token {
            request = request.insert_header(("Authorization", format!("Bearer {token}")));
        }
        let mut response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().limit(16 * 1024 * 1024).await.expect("body");
        Answer {
            status: response.status().as_u16(),
            www_authenticate: response
                .headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.call(Method::GET, path, token, None).await
    }

    async fn install(&self, token: &str, name: &str) -> String {
        let answer = self
            .call(
                Method::POST,
                "/api/payments/connectors/test",
                Some(token),
                Some(&json!({ "name": name })),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["data"]["connectorID"]
            .as_str()
            .expect("connectorID")
            .to_string()
    }
}

const PAYMENTS: &str = "/api/payments/payments";

/// The concrete path of a route template.
fn concrete(template: &str, connector_id: &str) -> String {
    template
        .replace("{provider}", "test")
        .replace("{connectorID}", connector_id)
        .replace("{taskID}", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
        .replace("{paymentID}", "eyJub3BlIjoxfQ")
        .replace("{accountID}", "eyJub3BlIjoxfQ")
        .replace("{poolID}", "6ba7b810-9dad-11d1-80b4-00c04fd430c8")
        .replace("{path}", "events")
}

/// Connector webhooks: no bearer token (a provider cannot send ours); the connector verifies
/// each request itself (src/api/webhooks.rs).
fn is_webhook(path: &str) -> bool {
    path.starts_with(&format!("{BASE_PATH}/connectors/webhooks/"))
}

fn is_open(path: &str) -> bool {
    ["/_live", "/_health", "/_info"]
        .iter()
        .any(|p| path == format!("{BASE_PATH}{p}"))
        || path == "/metrics"
}

#[actix_rt::test]
async fn every_route_needs_a_token_and_its_scope() {
    let keys = Keys::load();
    let api = AuthApi::start(&keys).await;
    let connector_id = api.install(WRITER, "walked").await;
    let served = tributary::api::served();

    // The document lists exactly the served routes; each protected operation declares the
    // bearer scheme with its scope, the open ones none, /metrics an optional one.
    let doc = api.get("/openapi.json", None).await;
    assert_eq!(doc.status, 200, "the document is open");
    let scheme = &doc.body["components"]["securitySchemes"]["bearerAuth"];
    assert_eq!(scheme["type"], "http", "{scheme}");
    assert_eq!(scheme["scheme"], "bearer", "{scheme}");
    assert_eq!(scheme["bearerFormat"], "JWT", "{scheme}");
    let mut documented = BTreeSet::new();
    for (path, item) in doc.body["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("item") {
            if !["get", "post", "patch", "delete", "put"].contains(&method.as_str()) {
                continue;
            }
            documented.insert((method.to_uppercase(), path.clone()));
            let scope = if method == "get" {
                "payments:read"
            } else {
                "payments:write"
            };
            let expected = if path == "/metrics" {
                json!([{}, { "bearerAuth": [scope] }])
            } else if is_open(path) || is_webhook(path) {
                Value::Null
            } else {
                json!([{ "bearerAuth": [scope] }])
            };
            assert_eq!(operation["security"], expected, "{method} {path}");
            if !is_open(path) && !is_webhook(path) {
                assert!(operation["responses"]["401"].is_object(), "{method} {path}");
                assert!(operation["responses"]["403"].is_object(), "{method} {path}");
            }
        }
    }
    let table: BTreeSet<(String, String)> = served
        .iter()
        .map(|(m, p)| (m.to_string(), p.clone()))
        .collect();
    assert_eq!(documented, table, "documented (left) vs served (right)");

    let body = json!({});
    let mut walked = Vec::new();
    for (method, template) in &served {
        let path = concrete(template, &connector_id);
        let what = format!("{method} {template}");
        let mutating = *method != Method::GET;
        let send = |token: Option<&'static str>| {
            let path = path.clone();
            let method = method.clone();
            let body = mutating.then_some(&body);
            let api = &api;
            async move { api.call(method, &path, token, body).await }
        };
        let anonymous = send(None).await;
        if is_webhook(template) {
            // Reaches the connector without a token: the TEST connector has no webhook hook.
            assert_eq!(anonymous.status, 400, "{what}: {}", anonymous.body);
            assert_eq!(
                anonymous.body["errorCode"], "CONNECTOR_CAPABILITY_NOT_SUPPORTED",
                "{what}"
            );
            walked.push(format!("{what}: open to the connector's verification"));
            continue;
        }
        if is_open(template) {
            assert!(
                anonymous.status == 200 || anonymous.status == 503,
                "{what} is open: {} {}",
                anonymous.status,
                anonymous.body
            );
            walked.push(format!("{what}: open"));
            continue;
        }
        anonymous.refused(401, "UNAUTHORIZED", &format!("{what} without a token"));
        assert_eq!(
            anonymous.challenge(),
            "Bearer realm=\"tributary\"",
            "{what}"
        );
        let bad = send(Some("not-a-token")).await;
        bad.refused(401, "UNAUTHORIZED", &format!("{what} with a bad token"));
        assert!(
            bad.challenge().contains("error=\"invalid_token\""),
            "{what}: {}",
            bad.challenge()
        );

        let read = send(Some(READER)).await;
        if mutating {
            read.refused(403, "FORBIDDEN", &format!("{what} with a read-only token"));
            assert!(
                read.challenge().contains("error=\"insufficient_scope\"")
                    && read.challenge().contains("scope=\"payments:write\""),
                "{what}: {}",
                read.challenge()
            );
        } else {
            assert!(
                read.status != 401 && read.status != 403,
                "{what} with a read token: {} {}",
                read.status,
                read.body
            );
            // payments:write implies payments:read, as in Formance.
            let write = send(Some(WRITER)).await;
            assert_eq!(
                write.status, read.status,
                "{what} with a write token: {}",
                write.body
            );
        }
        walked.push(format!(
            "{what}: {}",
            if mutating { "write" } else { "read" }
        ));
    }
    assert_eq!(walked.len(), served.len());
    // The connector the walk tried to uninstall, reset and pause with a read token is intact.
    let listed = api.get("/api/payments/connectors", Some(READER)).await;
    assert_eq!(
        listed.body["data"][0]["connectorID"], connector_id,
        "{}",
        listed.body
    );
    assert_eq!(listed.body["data"][0]["enabled"], true, "{}", listed.body);

    // Swagger UI's assets are open too.
    for asset in ["/swagger-ui/", "/swagger-ui/swagger-ui.css"] {
        let answer = api.get(asset, None).await;
        assert_eq!(answer.status, 200, "{asset}");
    }
    // An unknown route is not revealed to a caller without a token.
    api.get("/api/payments/nope", None)
        .await
        .refused(401, "UNAUTHORIZED", "unknown route");
}

#[actix_rt::test]
async fn metrics_need_a_token_when_required() {
    let keys = Keys::load();
    let api = AuthApi::start_with(&keys, |s| s.metrics.require_auth = true).await;
    api.get("/metrics", None)
        .await
        .refused(401, "UNAUTHORIZED", "/metrics");
    assert_eq!(api.get("/metrics", Some(READER)).await.status, 200);
    assert_eq!(api.get("/api/payments/_live", None).await.status, 200);
}

#[actix_rt::test]
async fn static_tokens_are_checked_by_value_and_header_form() {
    let keys = Keys::load();
    let api = AuthApi::start(&keys).await;
    assert_eq!(api.get(PAYMENTS, Some(READER)).await.status, 200);
    for (header, what) in [
        (format!("Bearer {READER}x"), "a wrong token"),
        (
            format!("Bearer {}", sha256_hex(READER)),
            "the digest itself",
        ),
        (format!("Basic {READER}"), "another scheme"),
        ("Bearer ".to_string(), "an empty token"),
    ] {
        let mut response = api
            .client
            .get(format!("{}{PAYMENTS}", api.root))
            .insert_header(("Authorization", header))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 401, "{what}");
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(
            challenge.contains("error=\"invalid_token\""),
            "{what}: {challenge}"
        );
        let body: Value = response.json().await.expect("json body");
        assert_eq!(body["errorCode"], "UNAUTHORIZED", "{what}");
    }
    // Header scheme is case-insensitive.
    let mut response = api
        .client
        .get(format!("{}{PAYMENTS}", api.root))
        .insert_header(("Authorization", format!("bearer {READER}")))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status().as_u16(),
        200,
        "{:?}",
        response.body().await
    );
}

#[actix_rt::test]
async fn jwts_of_each_algorithm_are_accepted_with_their_scopes() {
    let keys = Keys::load();
    let api = AuthApi::start(&keys).await;
    for (alg, kid, key) in [
        (Algorithm::RS256, "rsa", &keys.rsa),
        (Algorithm::ES256, "ec1", &keys.ec1),
        (Algorithm::EdDSA, "ed", &keys.ed),
    ] {
        let token = sign(alg, Some(kid), key, &claims(json!({})));
        let answer = api.get(PAYMENTS, Some(&token)).await;
        assert_eq!(answer.status, 200, "{alg:?}: {}", answer.body);
    }
    let es = |changes: Value| sign(Algorithm::ES256, Some("ec1"), &keys.ec1, &claims(changes));
    // Scopes from `scope` (space-separated), `scp` as a string, `scp` as an array.
    let cases = [
        (json!({"scope": "payments:read"}), 200, 403),
        (json!({"scope": null, "scp": "payments:read"}), 200, 403),
        (json!({"scope": null, "scp": ["payments:write"]}), 200, 400),
        (
            json!({"scope": null, "scp": "openid payments:write"}),
            200,
            400,
        ),
        (json!({"scope": "openid profile"}), 403, 403),
        (json!({"scope": null}), 403, 403),
    ];
    for (changes, read_status, write_status) in cases {
        let token = es(changes.clone());
        let read = api.get(PAYMENTS, Some(&token)).await;
        assert_eq!(
            read.status, read_status,
            "read with {changes}: {}",
            read.body
        );
        // A write that passes the scope check reaches the handler (400: no such provider body).
        let write = api
            .call(
                Method::POST,
                "/api/payments/connectors/configs/test/validate",
                Some(&token),
                Some(&json!(["not an object"])),
            )
            .await;
        assert_eq!(
            write.status, write_status,
            "write with {changes}: {}",
            write.body
        );
    }
    // Clock skew of 60 s: just expired and not quite valid yet are accepted.
    for changes in [json!({"exp": now() - 30}), json!({"nbf": now() + 30})] {
        let answer = api.get(PAYMENTS, Some(&es(changes.clone()))).await;
        assert_eq!(answer.status, 200, "{changes}: {}", answer.body);
    }
    // An audience list containing ours is accepted.
    let list = es(json!({"aud": ["other", AUDIENCE]}));
    assert_eq!(api.get(PAYMENTS, Some(&list)).await.status, 200);
}

/// A header and claims as given, with an empty or arbitrary signature (not signed by a key).
fn forged(header: Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[actix_rt::test]
async fn bad_jwts_are_refused_each_for_its_reason() {
    let keys = Keys::load();
    let api = AuthApi::start(&keys).await;
    let es = |changes: Value| sign(Algorithm::ES256, Some("ec1"), &keys.ec1, &claims(changes));
    let valid = es(json!({}));
    let (head, rest) = valid.split_once('.').expect("jwt");
    let (payload, signature) = rest.split_once('.').expect("jwt");
    let mut tampered_claims = claims(json!({}));
    tampered_claims["sub"] = json!("admin");
    let tampered = format!(
        "{head}.{}.{signature}",
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string())
    );
    let _ = payload;
    let hs256_with_public_key = {
        let secret = EncodingKey::from_secret(&fixture("rsa.pub.pem")).expect("hmac key");
        sign(Algorithm::HS256, Some("rsa"), &secret, &claims(json!({})))
    };
    let hs256_with_jwk_n = {
        let jwk = Keys::jwk(&keys.rsa, Algorithm::RS256, "rsa");
        let secret =
            EncodingKey::from_secret(jwk["n"].as_str().expect("n").as_bytes()).expect("hmac key");
        sign(Algorithm::HS256, Some("rsa"), &secret, &claims(json!({})))
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired beyond the skew",
            es(json!({"exp": now() - 120})),
            "expired",
        ),
        (
            "not valid yet beyond the skew",
            es(json!({"nbf": now() + 120})),
            "not valid yet",
        ),
        (
            "wrong issuer",
            es(json!({"iss": "https://evil.example/"})),
            "wrong issuer",
        ),
        (
            "wrong audience",
            es(json!({"aud": "another-api"})),
            "wrong audience",
        ),
        ("no exp", es(json!({"exp": null})), "exp"),
        ("no iss", es(json!({"iss": null})), "iss"),
        ("no aud", es(json!({"aud": null})), "aud"),
        ("no sub", es(json!({"sub": null})), "sub"),
        (
            "alg none",
            forged(
                json!({"alg": "none", "typ": "JWT", "kid": "ec1"}),
                &claims(json!({})),
                "",
            ),
            "malformed",
        ),
        (
            "alg none, no kid",
            forged(json!({"alg": "none", "typ": "JWT"}), &claims(json!({})), ""),
            "malformed",
        ),
        (
            "HS256 signed with the RSA public key's PEM",
            hs256_with_public_key,
            "does not match the key",
        ),
        (
            "HS256 signed with the RSA JWK's modulus",
            hs256_with_jwk_n,
            "does not match the key",
        ),
        (
            "RS256 header against the EC key",
            sign(Algorithm::RS256, Some("ec1"), &keys.rsa, &claims(json!({}))),
            "does not match the key",
        ),
        (
            "unknown kid",
            sign(Algorithm::ES256, Some("ec2"), &keys.ec2, &claims(json!({}))),
            "unknown key id",
        ),
        (
            "signed by another key under a known kid",
            sign(Algorithm::ES256, Some("ec1"), &keys.ec2, &claims(json!({}))),
            "bad signature",
        ),
        (
            "no kid with several keys",
            sign(Algorithm::ES256, None, &keys.ec1, &claims(json!({}))),
            "unknown key id",
        ),
        ("claims changed after signing", tampered, "bad signature"),
        ("not a JWT", "a.b.c".to_string(), "malformed"),
    ];
    for (what, token, reason) in cases {
        let answer = api.get(PAYMENTS, Some(&token)).await;
        answer.refused(401, "UNAUTHORIZED", what);
        assert!(
            answer.challenge().contains("error=\"invalid_token\""),
            "{what}"
        );
        let message = answer.body["errorMessage"].as_str().unwrap_or_default();
        assert!(message.contains(reason), "{what}: {message}");
    }
    assert_eq!(api.get(PAYMENTS, Some(&valid)).await.status, 200);
}

/// A JWKS server the test runs: its body and status can change; it counts requests.
struct JwksServer {
    body: Mutex<String>,
    status: AtomicU16,
    hits: AtomicUsize,
}

impl JwksServer {
    fn start(body: String) -> (Arc<JwksServer>, String) {
        let state = Arc::new(JwksServer {
            body: Mutex::new(body),
            status: AtomicU16::new(200),
            hits: AtomicUsize::new(0),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let state = shared.clone();
            App::new().route(
                "/jwks.json",
                web::get().to(move || {
                    let state = state.clone();
                    async move {
                        state.hits.fetch_add(1, Ordering::SeqCst);
                        let status = actix_web::http::StatusCode::from_u16(
                            state.status.load(Ordering::SeqCst),
                        )
                        .expect("status");
                        let body = state.body.lock().expect("lock").clone();
                        HttpResponse::build(status)
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        actix_rt::spawn(server);
        (state, format!("http://127.0.0.1:{port}/jwks.json"))
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[actix_rt::test]
async fn jwks_url_is_fetched_again_for_a_new_kid_at_most_once_per_interval() {
    let keys = Keys::load();
    let (jwks, url) = JwksServer::start(Keys::jwks(&[(&keys.ec1, Algorithm::ES256, "ec1")]));
    let api = AuthApi::start_with(&keys, |s| {
        s.auth.jwt = Some(jwt_settings(None, Some(url.clone())));
    })
    .await;
    assert_eq!(jwks.hits(), 1, "fetched once at start");
    let ec1 = sign(Algorithm::ES256, Some("ec1"), &keys.ec1, &claims(json!({})));
    assert_eq!(api.get(PAYMENTS, Some(&ec1)).await.status, 200);
    assert_eq!(jwks.hits(), 1, "a known kid is served from the cache");

    // The identity provider rotates in a new key: the first token naming it fetches again.
    *jwks.body.lock().expect("lock") = Keys::jwks(&[
        (&keys.ec1, Algorithm::ES256, "ec1"),
        (&keys.ec2, Algorithm::ES256, "ec2"),
    ]);
    let ec2 = sign(Algorithm::ES256, Some("ec2"), &keys.ec2, &claims(json!({})));
    let answer = api.get(PAYMENTS, Some(&ec2)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(jwks.hits(), 2);

    // A flood of made-up kids within min_refresh_interval (30 s) fetches nothing more.
    for i in 0..20 {
        let kid = format!("made-up-{i}");
        let token = sign(Algorithm::ES256, Some(&kid), &keys.ec2, &claims(json!({})));
        api.get(PAYMENTS, Some(&token))
            .await
            .refused(401, "UNAUTHORIZED", &kid);
    }
    assert_eq!(jwks.hits(), 2, "unknown kids are rate-limited");
    assert_eq!(api.get(PAYMENTS, Some(&ec1)).await.status, 200);
}

#[actix_rt::test]
async fn a_failed_jwks_refresh_keeps_the_cached_keys() {
    let keys = Keys::load();
    let (jwks, url) = JwksServer::start(Keys::jwks(&[(&keys.ec1, Algorithm::ES256, "ec1")]));
    let api = AuthApi::start_with(&keys, |s| {
        let mut jwt = jwt_settings(None, Some(url.clone()));
        jwt.refresh_interval = Duration::from_millis(50);
        s.auth.jwt = Some(jwt);
    })
    .await;
    let ec1 = sign(Algorithm::ES256, Some("ec1"), &keys.ec1, &claims(json!({})));
    assert_eq!(api.get(PAYMENTS, Some(&ec1)).await.status, 200);
    // The provider breaks: periodic refreshes fail, the keys stay.
    jwks.status.store(500, Ordering::SeqCst);
    *jwks.body.lock().expect("lock") = "oops".into();
    let failing_from = jwks.hits();
    eventually("two failed refreshes", Duration::from_secs(10), || async {
        jwks.hits() >= failing_from + 2
    })
    .await;
    assert_eq!(api.get(PAYMENTS, Some(&ec1)).await.status, 200);
    // It comes back with ec2 only: the periodic refresh drops ec1.
    *jwks.body.lock().expect("lock") = Keys::jwks(&[(&keys.ec2, Algorithm::ES256, "ec2")]);
    jwks.status.store(200, Ordering::SeqCst);
    let ec2 = sign(Algorithm::ES256, Some("ec2"), &keys.ec2, &claims(json!({})));
    eventually("ec2 accepted", Duration::from_secs(10), || async {
        api.get(PAYMENTS, Some(&ec2)).await.status == 200
    })
    .await;
    api.get(PAYMENTS, Some(&ec1))
        .await
        .refused(401, "UNAUTHORIZED", "a key the provider dropped");
}

#[actix_rt::test]
async fn without_auth_a_public_address_is_refused_unless_allowed() {
    let db = TestDb::new().await;
    let mut settings = test_settings();
    settings.server.bind = "0.0.0.0:0".parse().expect("addr");
    let error = match Application::build_with(
        &settings,
        &db.url,
        tributary::connectors::registry(&settings),
        Arc::new(tributary::sdk::SystemClock),
    )
    .await
    {
        Ok(_) => panic!("an unauthenticated service bound 0.0.0.0"),
        Err(e) => e.to_string(),
    };
    for names in [
        "0.0.0.0:0",
        "server.allow_unauthenticated",
        "[[auth.tokens]]",
        "[auth.jwt]",
    ] {
        assert!(error.contains(names), "{error}");
    }

    settings.server.allow_unauthenticated = true;
    let app = Application::build_with(
        &settings,
        &db.url,
        tributary::connectors::registry(&settings),
        Arc::new(tributary::sdk::SystemClock),
    )
    .await
    .expect("allowed explicitly");
    let shutdown = app.shutdown_token();
    let running = actix_rt::spawn(app.run_until_stopped(None));
    shutdown.cancel();
    running.await.expect("join").expect("stopped");
}

#[test]
fn auth_settings_are_validated_naming_the_key() {
    use figment::Figment;
    use figment::providers::{Format, Serialized, Toml};
    let load = |toml: &str| {
        Settings::from_figment(
            Figment::from(Serialized::defaults(Settings::default())).merge(Toml::string(toml)),
        )
    };
    let digest = sha256_hex("t");
    let token = |name: &str, sha: &str, scopes: &str| {
        format!("[[auth.tokens]]\nname = \"{name}\"\nsha256 = \"{sha}\"\nscopes = {scopes}\n")
    };
    let cases = [
        (token("a", "xyz", "[\"payments:read\"]"), "auth.tokens[0].sha256"),
        (token("a", &digest[..62], "[\"payments:read\"]"), "auth.tokens[0].sha256"),
        (token("a", &digest, "[\"payments:admin\"]"), "auth.tokens[0].scopes"),
        (token("a", &digest, "[]"), "auth.tokens[0].scopes"),
        (
            token("a", &digest, "[\"payments:read\"]")
                + &token("a", &sha256_hex("u"), "[\"payments:read\"]"),
            "auth.tokens[1].name",
        ),
        (
            "[auth.jwt]\nissuer = \"i\"\naudience = \"a\"\n".to_string(),
            "auth.jwt",
        ),
        (
            "[auth.jwt]\njwks_file = \"/k\"\njwks_url = \"https://x\"\nissuer = \"i\"\naudience = \"a\"\n"
                .to_string(),
            "auth.jwt",
        ),
        (
            "[auth.jwt]\njwks_url = \"ftp://x\"\nissuer = \"i\"\naudience = \"a\"\n".to_string(),
            "auth.jwt.jwks_url",
        ),
        (
            "[auth.jwt]\njwks_url = \"https://x\"\nissuer = \"\"\naudience = \"a\"\n".to_string(),
            "auth.jwt.issuer",
        ),
    ];
    for (toml, key) in cases {
        let error = load(&toml).expect_err(&toml).to_string();
        assert!(error.contains(&format!("`{key}`")), "{toml} -> {error}");
    }
    let ok = load(
        &(token(
            "a",
            &digest.to_uppercase(),
            "[\"payments:read\", \"payments:write\"]",
        ) + "[metrics]\nrequire_auth = true\n[server]\nallow_unauthenticated = false\n"),
    )
    .expect("valid");
    assert!(ok.metrics.require_auth);
    assert_eq!(ok.auth.tokens.len(), 1);
    let printed = format!("{ok:?}").to_lowercase();
    assert!(
        !printed.contains(&digest),
        "Debug shows a token's digest: {printed}"
    );
}

/// Every column of every audit row, as text.
async fn audit_rows(api: &AuthApi) -> Vec<Value> {
    let client = api.app.db.client().await;
    let rows = client
        .query(
            "SELECT to_jsonb(a) AS row FROM audit_log a ORDER BY id",
            &[],
        )
        .await
        .expect("audit rows");
    rows.iter().map(|r| r.get::<_, Value>("row")).collect()
}

#[actix_rt::test]
async fn every_change_is_audited_with_its_principal_and_outcome() {
    let keys = Keys::load();
    let api = AuthApi::start(&keys).await;
    let jwt = sign(Algorithm::EdDSA, Some("ed"), &keys.ed, &claims(json!({})));
    let connector_id = api.install(WRITER, CONNECTOR_NAME).await;
    let base = format!("/api/payments/connectors/test/{connector_id}");
    // Reads, refused or not, are not audited.
    assert_eq!(
        api.get("/api/payments/connectors", Some(READER))
            .await
            .status,
        200
    );
    api.get(&format!("{base}/config"), None).await;
    // A change by a JWT, one refused for its scope, one refused without a token, one rejected.
    let paused = api
        .call(Method::POST, &format!("{base}/pause"), Some(&jwt), None)
        .await;
    assert_eq!(paused.status, 204, "{}", paused.body);
    api.call(Method::POST, &format!("{base}/reset"), Some(READER), None)
        .await
        .refused(403, "FORBIDDEN", "reset with a read token");
    api.call(Method::DELETE, &base, None, None).await.refused(
        401,
        "UNAUTHORIZED",
        "uninstall without a token",
    );
    let patched = api
        .call(
            Method::PATCH,
            "/api/payments/payments/eyJub3BlIjoxfQ/metadata",
            Some(WRITER),
            Some(&json!({"k": "v"})),
        )
        .await;
    assert!(
        patched.status == 400 || patched.status == 404,
        "{}",
        patched.body
    );

    let rows = audit_rows(&api).await;
    let summary: Vec<(String, String, String, String, i64, String)> = rows
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("-").to_string();
            (
                s("principal"),
                s("principal_kind"),
                s("method"),
                s("route"),
                r["status"].as_i64().unwrap_or(0),
                s("outcome"),
            )
        })
        .collect();
    let row = |p: &str, k: &str, m: &str, r: &str, st: i64, o: &str| {
        (p.into(), k.into(), m.into(), r.into(), st, o.into())
    };
    assert_eq!(
        summary,
        vec![
            row(
                "operator",
                "token",
                "POST",
                "/api/payments/connectors/{provider}",
                201,
                "ok"
            ),
            row(
                "svc-reconciler",
                "jwt",
                "POST",
                "/api/payments/connectors/{provider}/{connectorID}/pause",
                204,
                "ok"
            ),
            row(
                "dashboard",
                "token",
                "POST",
                "/api/payments/connectors/{provider}/{connectorID}/reset",
                403,
                "denied"
            ),
            row(
                "operator",
                "token",
                "PATCH",
                "/api/payments/payments/{paymentID}/metadata",
                patched.status as i64,
                "rejected"
            ),
        ]
    );
    assert_eq!(rows[1]["connector_id"], connector_id);
    assert_eq!(rows[1]["provider"], "test");
    assert_eq!(rows[2]["connector_id"], connector_id);
    assert_eq!(rows[3]["payment_id"], "eyJub3BlIjoxfQ");
    assert!(
        rows.iter()
            .all(|r| r["request_id"].is_string() && r["at"].is_string())
    );
    // No token, digest, JWT or config value in any column.
    let text = serde_json::to_string(&rows).expect("json");
    for secret in [
        READER,
        WRITER,
        &sha256_hex(READER),
        &sha256_hex(WRITER),
        &jwt,
        CONNECTOR_NAME,
    ] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[actix_rt::test]
async fn with_auth_off_changes_are_audited_as_anonymous() {
    let api = crate::api::Api::start().await;
    api.install("anon-audited").await;
    api.get("/connectors").await;
    let client = api.app.db.client().await;
    let rows = client
        .query(
            "SELECT principal, principal_kind, method, status FROM audit_log",
            &[],
        )
        .await
        .expect("audit rows");
    let rows: Vec<(String, String, String, i16)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(
        rows,
        vec![("anonymous".into(), "anonymous".into(), "POST".into(), 201)]
    );
}
