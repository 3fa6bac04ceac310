//! HTTP API tests: the real service on a fresh database and port 0, spoken to over HTTP.

mod bank_accounts;
mod connectors;
mod data;
mod errors;
mod manual;
mod openapi;
mod pools;
mod query;
mod tasks;

use std::sync::Arc;

use serde_json::Value;
use tributary::runtime::Registry;

use crate::helpers::{TestApp, spawn_app_with};
use crate::runtime::support::{Probe, TestLoader};

/// A running service with the TEST provider.
pub struct Api {
    /// The service.
    pub app: TestApp,
    /// The TEST connectors' probe.
    pub probe: Arc<Probe>,
    client: awc::Client,
}

/// An HTTP response: status and JSON body (Null when empty or not JSON).
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The body.
    pub body: Value,
}

impl Api {
    /// Starts the service.
    pub async fn start() -> Api {
        let probe = Arc::new(Probe::default());
        let registry = Registry::new().with(Arc::new(TestLoader {
            probe: probe.clone(),
            allow: 10,
        }));
        let app = spawn_app_with(registry).await;
        Api {
            app,
            probe,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
        }
    }

    /// Starts the service with DUMMY-PAY beside the TEST provider.
    pub async fn start_with_dummypay() -> Api {
        let probe = Arc::new(Probe::default());
        let registry = tributary::connectors::registry(&crate::helpers::test_settings()).with(
            Arc::new(TestLoader {
                probe: probe.clone(),
                allow: 10,
            }),
        );
        let app = spawn_app_with(registry).await;
        Api {
            app,
            probe,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.app.base, path)
    }

    async fn send(&self, request: awc::ClientRequest, body: Option<&Value>) -> Reply {
        let mut response = match body {
            Some(body) => request.send_json(body).await,
            None => request.send().await,
        }
        .expect("request");
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body");
        Reply {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// GET a path under /api/payments.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.client.get(self.url(path)), None).await
    }

    /// POST JSON.
    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.post(self.url(path)), Some(body))
            .await
    }

    /// POST without a body.
    pub async fn post_empty(&self, path: &str) -> Reply {
        self.send(self.client.post(self.url(path)), None).await
    }

    /// PATCH JSON.
    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.send(self.client.patch(self.url(path)), Some(body))
            .await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.client.delete(self.url(path)), None).await
    }

    /// A raw request, for malformed input.
    pub fn raw(&self, method: awc::http::Method, path: &str) -> awc::ClientRequest {
        self.client.request(method, self.url(path))
    }

    /// Sends a raw request with a body.
    pub async fn send_raw(&self, request: awc::ClientRequest, body: Vec<u8>) -> Reply {
        let mut response = request.send_body(body).await.expect("request");
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("body");
        Reply {
            status: response.status().as_u16(),
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// Installs a TEST connector named `name`; returns its id.
    pub async fn install(&self, name: &str) -> String {
        let reply = self
            .post("/connectors/test", &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply.body["data"]["connectorID"]
            .as_str()
            .expect("connectorID")
            .to_string()
    }
}

impl Reply {
    /// Asserts a Formance error body with this status and code; returns the message.
    pub fn error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["errorCode"], code, "body: {}", self.body);
        self.body["errorMessage"]
            .as_str()
            .expect("errorMessage")
            .to_string()
    }
}
