//! `POST /connectors/webhooks/{provider}/{connectorID}[/{path}]`: events a provider pushes to a
//! connector, as Formance routes them. No bearer token is asked for (a provider cannot send
//! ours; see `auth::is_webhook`): the connector's own [`Webhooks::verify`] authenticates the
//! request before its [`Webhooks::handle`] stores or schedules anything. Answers: 200 (empty)
//! when handled; 401 `UNAUTHORIZED` when verification fails; 404 for an unknown connector or a
//! provider that is not the connector's; 400 `CONNECTOR_CAPABILITY_NOT_SUPPORTED` for a
//! connector without the hook.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa::IntoParams;

use super::error::{ApiError, ErrorCode};
use super::extract::RawBytes;
use super::{AppState, RouteEntry};
use crate::ids::ConnectorKey;
use crate::sdk::{WebhookRequest, Webhooks};

/// The routes' common prefix under the base path (the auth middleware lets it through).
pub const PREFIX: &str = "/connectors/webhooks/";

/// The webhook routes: before the connector routes, whose parameters would match them.
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (
            Method::POST,
            "/connectors/webhooks/{provider}/{connectorID}",
            web::to(receive),
        ),
        (
            Method::POST,
            "/connectors/webhooks/{provider}/{connectorID}/{path:.*}",
            web::to(receive_path),
        ),
    ]
}

/// What became of a request inside the connector call.
enum Outcome {
    /// The connector has no webhook hook.
    NotSupported,
    /// Verification failed (why).
    Unverified(String),
    /// Verified and handled.
    Handled,
}

/// The path tail, for the OpenAPI document.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // never built: it only describes the parameter
pub struct WebhookPath {
    /// Anything after the connector id, passed to the connector.
    path: String,
}

/// An event for a connector (verified by the connector, not by a bearer token).
#[utoipa::path(post, path = "/api/payments/connectors/webhooks/{provider}/{connectorID}",
    tag = "connectors", operation_id = "connectorWebhooks",
    request_body(content = Object, description = "The provider's event, as it sends it"),
    responses((status = 200, description = "Verified and handled"),
        (status = 401, description = "The connector did not verify the request")))]
async fn receive(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: RawBytes,
) -> Result<HttpResponse, ApiError> {
    let (provider, connector_id) = path.into_inner();
    deliver(&state, &req, provider, connector_id, String::new(), body).await
}

/// The same, with a path after the connector id (passed to the connector).
#[utoipa::path(post, path = "/api/payments/connectors/webhooks/{provider}/{connectorID}/{path}",
    tag = "connectors", operation_id = "connectorWebhooksPath", params(WebhookPath),
    request_body(content = Object, description = "The provider's event, as it sends it"),
    responses((status = 200, description = "Verified and handled"),
        (status = 401, description = "The connector did not verify the request")))]
async fn receive_path(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    body: RawBytes,
) -> Result<HttpResponse, ApiError> {
    let (provider, connector_id, tail) = path.into_inner();
    deliver(&state, &req, provider, connector_id, tail, body).await
}

async fn deliver(
    state: &AppState,
    req: &HttpRequest,
    provider: String,
    connector_id: String,
    path: String,
    body: RawBytes,
) -> Result<HttpResponse, ApiError> {
    let key = ConnectorKey::parse(&connector_id)?;
    // The provider in the path must be the connector's (any case), as the id says.
    if !key.provider.eq_ignore_ascii_case(&provider) {
        return Err(ApiError::not_found(format!(
            "connector {connector_id} is not a {provider} connector"
        )));
    }
    let request = WebhookRequest {
        path,
        query: web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| q.into_inner())
            .map_err(|e| ApiError::validation(format!("malformed query string: {e}")))?,
        headers: req
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect(),
        body: body.0.to_vec(),
    };
    let outcome = state
        .runtime
        .call_connector(&connector_id, move |connector, ctx| {
            Box::pin(async move {
                let Some(hooks): Option<&dyn Webhooks> = connector.webhooks() else {
                    return Ok(Outcome::NotSupported);
                };
                if let Err(refused) = hooks.verify(&request).await {
                    return Ok(Outcome::Unverified(refused.0));
                }
                hooks.handle(&ctx, request).await?;
                Ok(Outcome::Handled)
            })
        })
        .await?;
    match outcome {
        Outcome::Handled => {
            tracing::info!(connector = %connector_id, "webhook handled");
            Ok(HttpResponse::Ok().finish())
        }
        Outcome::NotSupported => Err(ApiError::capability_not_supported(
            &connector_id,
            "webhooks",
        )),
        Outcome::Unverified(why) => {
            tracing::warn!(connector = %connector_id, reason = %why, "webhook refused");
            Err(ApiError::new(
                ErrorCode::Unauthorized,
                format!("the connector did not verify the webhook: {why}"),
            ))
        }
    }
}
