//! One signed HTTP attempt to a webhook endpoint, as Formance's `MakeAttempt` makes it:
//! `POST` of the body with `content-type: application/json` and the signature headers
//! ([`super::signing`]); any 2xx answer is a success, anything else (another status, a refused
//! connection, the timeout) a failure to retry.

use std::time::{Duration, Instant};

use reqwest::Client;

use super::signing::{
    HEADER_CONNECTOR, HEADER_ID, HEADER_IDEMPOTENCY_KEY, HEADER_SEQUENCE, HEADER_SIGNATURE,
    HEADER_TEST, HEADER_TIMESTAMP, sign,
};

/// How much of an answer's body is kept with the attempt.
const EXCERPT_BYTES: usize = 1024;

/// What to send.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The http(s) URL.
    pub endpoint: &'a str,
    /// The delivery id (`formance-webhook-id`, signed).
    pub delivery_id: &'a str,
    /// The config's secret, in clear.
    pub secret: &'a str,
    /// The body, sent and signed byte for byte.
    pub body: &'a str,
    /// Whether it is the test endpoint's request.
    pub test: bool,
    /// The event id (`formance-webhook-idempotency-key`), if any.
    pub idempotency_key: Option<String>,
    /// The event's connector and sequence, if any.
    pub sequence: Option<(&'a str, i64)>,
}

/// What came of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Whether the endpoint answered 2xx.
    pub success: bool,
    /// The answer's status, 0 when none came.
    pub status_code: u16,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The start of the answer's body.
    pub excerpt: Option<String>,
    /// How long it took.
    pub duration: Duration,
}

/// An HTTP client whose every request gives up after `timeout`.
pub fn client(timeout: Duration) -> Client {
    Client::builder()
        .timeout(timeout)
        .user_agent(concat!("tributary-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "webhook HTTP client without its timeout");
            Client::new()
        })
}

/// Sends `request` once, signed now.
pub async fn send(client: &Client, request: &Request<'_>) -> Outcome {
    let timestamp = chrono::Utc::now().timestamp();
    let signature = sign(
        request.delivery_id,
        timestamp,
        request.secret,
        request.body.as_bytes(),
    );
    let mut builder = client
        .post(request.endpoint)
        .header("content-type", "application/json")
        .header(HEADER_ID, request.delivery_id)
        .header(HEADER_TIMESTAMP, timestamp.to_string())
        .header(HEADER_SIGNATURE, signature)
        .header(HEADER_TEST, if request.test { "true" } else { "false" });
    if let Some(key) = &request.idempotency_key {
        builder = builder.header(HEADER_IDEMPOTENCY_KEY, key.as_str());
    }
    if let Some((connector, sequence)) = request.sequence {
        builder = builder
            .header(HEADER_CONNECTOR, connector)
            .header(HEADER_SEQUENCE, sequence.to_string());
    }
    let started = Instant::now();
    let answer = builder.body(request.body.to_string()).send().await;
    match answer {
        Err(e) => Outcome {
            success: false,
            status_code: 0,
            error: Some(failure(e)),
            excerpt: None,
            duration: started.elapsed(),
        },
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            let excerpt: String = body.chars().take(EXCERPT_BYTES).collect();
            Outcome {
                success: status.is_success(),
                status_code: status.as_u16(),
                error: (!status.is_success()).then(|| format!("endpoint answered {status}")),
                excerpt: (!excerpt.is_empty()).then_some(excerpt),
                duration: started.elapsed(),
            }
        }
    }
}

/// What a request that got no answer says in its attempt: the error and its causes ("connection
/// refused"), without the endpoint's URL, which may carry a token and is in the config anyway.
fn failure(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    if timed_out {
        format!("timed out: {text}")
    } else {
        text
    }
}
