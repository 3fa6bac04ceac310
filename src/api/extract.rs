//! Request extractors that answer bad input with Formance error bodies: a JSON object body
//! (size-limited, named errors) and query parameters.

use std::collections::HashMap;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde_json::{Map, Value};

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// A request body that must be a JSON object.
pub struct JsonObject(pub Map<String, Value>);

impl FromRequest for JsonObject {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(map)) => Ok(JsonObject(map)),
                Ok(other) => Err(ApiError::bad_body(format!(
                    "the body must be a JSON object, not {}",
                    kind(&other)
                ))),
                Err(e) => Err(ApiError::bad_body(format!(
                    "the body is not valid JSON: {e}"
                ))),
            }
        })
    }
}

/// Reads a non-empty body up to the service's size limit.
fn read_body(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let body = read_bytes(req, payload);
    Box::pin(async move {
        let body = body.await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::bad_body("a JSON object body is required"));
        }
        Ok(body)
    })
}

/// Reads a body, possibly empty, up to the service's size limit.
fn read_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
) -> LocalBoxFuture<'static, Result<web::Bytes, ApiError>> {
    let limit = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.max_body_bytes)
        .unwrap_or(256 * 1024);
    let mut payload = payload.take();
    Box::pin(async move {
        let mut body = web::BytesMut::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ApiError::bad_body(format!("reading the body: {e}")))?;
            if body.len() + chunk.len() > limit {
                return Err(ApiError::new(
                    ErrorCode::BodyTooLarge,
                    format!("the body is larger than {limit} bytes"),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    })
}

/// A JSON object body whose values are kept as their exact text (an amount of any size stays
/// exact: it never becomes an `f64`), with the body itself.
pub struct RawObject {
    /// Each field's JSON text.
    pub fields: std::collections::BTreeMap<String, Box<serde_json::value::RawValue>>,
    /// The body as received.
    pub body: web::Bytes,
}

impl FromRequest for RawObject {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_body(req, payload);
        Box::pin(async move {
            let body = body.await?;
            let fields = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_body(format!("the body must be a JSON object: {e}")))?;
            Ok(RawObject { fields, body })
        })
    }
}

/// A raw byte body of any content (webhooks: verified byte for byte), up to the size limit;
/// it may be empty.
pub struct RawBytes(pub web::Bytes);

impl FromRequest for RawBytes {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let body = read_bytes(req, payload);
        Box::pin(async move { Ok(RawBytes(body.await?)) })
    }
}

/// The JSON type name of a value, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Query parameters by name (the last value wins), and every pair in order for repeated
/// parameters (`sort=a&sort=b`).
pub struct Params(pub HashMap<String, String>, pub Vec<(String, String)>);

impl FromRequest for Params {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let parsed = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| {
                let pairs = q.into_inner();
                Params(pairs.iter().cloned().collect(), pairs)
            })
            .map_err(|e| ApiError::validation(format!("malformed query string: {e}")));
        std::future::ready(parsed)
    }
}

impl Params {
    /// A parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Every value of a repeated parameter, in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.1
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A timestamp parameter (RFC 3339).
    pub fn time(&self, name: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
        self.get(name).map(|v| rfc3339(name, v)).transpose()
    }
}

/// The RFC 3339 time `text` of the parameter or field `name`; a 400 naming it otherwise.
pub fn rfc3339(name: &str, text: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| ApiError::validation(format!("{name} must be an RFC 3339 time: {e}")))
}
