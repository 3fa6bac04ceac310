//! Webhooks: how a connector takes events its provider pushes, instead of (or besides)
//! polling. The runtime serves `POST /connectors/webhooks/{provider}/{connectorID}[/…]` with no
//! bearer token (a provider cannot send one) and hands each request to the connector's
//! [`Webhooks`] hook: first [`Webhooks::verify`] (the provider's signature or shared secret:
//! the only authentication such a request has), then, for a verified request only,
//! [`Webhooks::handle`], which stores what it must and/or schedules a task with the
//! [`crate::ConnectorContext`]'s scheduler. A connector without the hook answers 400
//! `CONNECTOR_CAPABILITY_NOT_SUPPORTED`.

use async_trait::async_trait;

use super::{ConnectorContext, TaskError};

/// One request the provider sent, as received.
#[derive(Debug, Clone, Default)]
pub struct WebhookRequest {
    /// What followed `/{connectorID}` in the path, without the leading `/` (empty when nothing
    /// did): lets one connector tell several event kinds apart.
    pub path: String,
    /// The query parameters, in order.
    pub query: Vec<(String, String)>,
    /// The headers, names in lower case (values that are not text are left out).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte (signatures are computed over these bytes).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first value of a header (`name` in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request is not accepted as the provider's: answered 401, and nothing is stored or
/// scheduled. The message is logged and returned; it must not reveal the secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unverified(pub String);

/// The webhook capability of a connector (reached through `Connector::webhooks`).
#[async_trait]
pub trait Webhooks: Send + Sync {
    /// Checks that the request comes from the provider (its signature, its shared secret).
    async fn verify(&self, request: &WebhookRequest) -> Result<(), Unverified>;

    /// Acts on a verified request: schedule a task to ingest what it reports (the usual way:
    /// the task's ingest is fenced and retried like any other), or store state. An error is
    /// answered as a task error is (non-retryable: 400 naming it; retryable: 503, so that the
    /// provider sends the event again).
    async fn handle(
        &self,
        ctx: &ConnectorContext,
        request: WebhookRequest,
    ) -> Result<(), TaskError>;
}

#[cfg(test)]
mod tests {
    use super::WebhookRequest;

    #[test]
    fn headers_are_found_in_any_case() {
        let request = WebhookRequest {
            headers: vec![("x-signature".into(), "abc".into())],
            ..WebhookRequest::default()
        };
        assert_eq!(request.header("X-Signature"), Some("abc"));
        assert_eq!(request.header("x-other"), None);
    }
}
