//! HTTP request metrics: a count and a latency histogram by method, route *template* and
//! status. The template (`/api/payments/connectors/{connectorID}`), never the raw path: raw
//! paths carry ids and whatever a client invents, one series each, without bound. A path no
//! route matches counts as [`UNMATCHED`], and a method outside the standard ones as `OTHER`.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;

/// Requests served, by method, route and status.
pub const REQUESTS_METRIC: &str = "tributary_http_requests_total";
/// Time to the response head, by method, route and status.
pub const DURATION_METRIC: &str = "tributary_http_request_duration_seconds";
/// The route label of a path no route matches.
pub const UNMATCHED: &str = "unmatched";

/// The latency buckets, in seconds, chosen from `tributary-bench latency` (docs/performance.md,
/// "HTTP latency buckets"): single requests take 1–3 ms at the median (bounds at 1, 2 and 3 ms),
/// 2–25 ms at p99 (5, 7.5, 10, 25 ms), tens of ms under load (50, 100 ms); a read waiting out
/// an outage ends at `database.timeout`, 5 s by default (2.5, 5, 10 s), not in `+Inf`.
pub const DURATION_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

/// The method as a label value, from a closed set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The middleware (`actix_web::middleware::from_fn`): records every request, whatever its
/// answer, errors included.
pub async fn record(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_string());
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(e) => e.as_response_error().status_code(),
    };
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_str().to_string()),
    ];
    metrics::counter!(REQUESTS_METRIC, &labels).increment(1);
    metrics::histogram!(DURATION_METRIC, &labels).record(started.elapsed().as_secs_f64());
    result
}
