//! Protection of a local server against web pages: a mutating request from a browser on an
//! origin that is not allowed (`server.cors_allowed_origins`, or the service's own origin on a
//! loopback host, where Swagger UI runs) is refused, and a request body must be declared as
//! JSON (a form post cannot set that without a CORS preflight, which fails for unknown
//! origins). Connector webhooks are exempt from the JSON rule (not from the origin rule): their
//! body is in the provider's format and verified by the connector.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, header};
use actix_web::middleware::Next;
use actix_web::{Error, ResponseError, web};

use super::AppState;
use super::error::{ApiError, ErrorCode};

/// The middleware function (`actix_web::middleware::from_fn(guard::check)`).
pub async fn check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, Error> {
    if let Err(e) = verdict(&req) {
        let response = e.error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    next.call(req).await.map(|r| r.map_into_left_body())
}

/// Whether `origin` is the service's own origin on a loopback host — Swagger UI, served at
/// `/swagger-ui/`, calling the API (browsers send `Origin` on a same-origin POST too). Only a
/// loopback host counts: under DNS rebinding an attacker's name resolves to 127.0.0.1 and the
/// browser sends that name as both Host and Origin, so "Origin equals Host" alone would let
/// any page through; a page cannot make the browser send `Host: localhost`.
fn same_loopback_origin(req: &ServiceRequest, origin: &[u8]) -> bool {
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    else {
        return false;
    };
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    let loopback = name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    let scheme = req.connection_info().scheme().to_owned();
    loopback && origin == format!("{scheme}://{host}").as_bytes()
}

fn verdict(req: &ServiceRequest) -> Result<(), ApiError> {
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !mutating {
        return Ok(());
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let listed = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.cors_allowed_origins.iter().any(|o| origin == o.as_str()))
            .unwrap_or(false);
        if !listed && !same_loopback_origin(req, origin.as_bytes()) {
            return Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "cross-origin request from {} refused (allow it in server.cors_allowed_origins)",
                    origin.to_str().unwrap_or("?")
                ),
            ));
        }
    }
    let has_body = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim() != "0")
        .unwrap_or(false)
        || req.headers().contains_key(header::TRANSFER_ENCODING);
    // A provider posts webhooks in its own format (form-encoded, say); what protects that route
    // is the connector's verification of the body, which no web page can forge.
    if has_body && !super::auth::is_webhook(req.path()) {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let essence = v.split(';').next().unwrap_or("").trim();
                essence.eq_ignore_ascii_case("application/json")
                    || essence.to_ascii_lowercase().ends_with("+json")
            })
            .unwrap_or(false);
        if !json {
            return Err(ApiError::bad_body(
                "the body must be sent with Content-Type: application/json",
            ));
        }
    }
    Ok(())
}
