//! `/api/webhooks/deliveries`: what webhooks out sent or tried to send (Formance Webhooks
//! v1's deliveries and their attempts), and replaying one delivery now. Reads go to the pool;
//! a replay's attempt is recorded through the storage actor like any other.

use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::error::{ApiError, ErrorCode};
use super::extract::{JsonObject, Params, rfc3339};
use super::webhook_configs::{config_id, refuse_unknown};
use super::{AppState, Data, RouteEntry};
use crate::storage::commands::webhooks::DeliveryKey;
use crate::storage::queries::webhooks::{
    self as queries, AttemptRow, ConfigRow, DeliveryFilter, DeliveryRow,
};
use crate::webhooks::{Webhooks, sink};

/// The delivery routes (literal segments before parameters).
pub fn routes() -> Vec<RouteEntry> {
    vec![
        (Method::GET, "/deliveries", web::to(list)),
        (Method::GET, "/deliveries/{id}", web::to(get)),
        (Method::GET, "/deliveries/{id}/attempts", web::to(attempts)),
        (Method::POST, "/deliveries/replay", web::to(replay_many)),
        (Method::POST, "/deliveries/{id}/replay", web::to(replay)),
    ]
}

/// Delivery statuses Formance names (Tributary uses pending, succeeded and failed).
const STATUSES: [&str; 5] = ["pending", "delivering", "succeeded", "failed", "cancelled"];

/// Formance's `Delivery`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryJson {
    id: Uuid,
    #[serde(rename = "eventID")]
    event_id: Uuid,
    /// The event id, as the `formance-webhook-idempotency-key` header carries it.
    idempotency_key: String,
    #[serde(rename = "configID")]
    config_id: Uuid,
    #[schema(example = "payments.saved_payment")]
    event_type: String,
    /// The body sent: only on `GET /deliveries/{id}` and a replay's answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    /// `pending` (being retried), `succeeded` or `failed`.
    status: String,
    attempt_count: i32,
    replay_generation: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cycle_started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempt_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    /// Tributary's own: the event's connector.
    #[serde(rename = "connectorID")]
    connector_id: String,
    /// Tributary's own: the event's number in its connector's sequence.
    sequence: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

fn delivery_json(row: DeliveryRow, with_payload: bool) -> DeliveryJson {
    DeliveryJson {
        id: row.id,
        event_id: row.event_id,
        idempotency_key: row.event_id.to_string(),
        config_id: row.config_id,
        event_type: row.event_type,
        payload: with_payload.then_some(row.payload),
        status: row.status,
        attempt_count: row.attempt_count,
        replay_generation: row.replay_generation,
        cycle_started_at: row.cycle_started_at,
        next_attempt_at: row.next_attempt_at,
        last_attempt_at: row.last_attempt_at,
        last_status_code: row.last_status_code,
        last_error: row.last_error,
        connector_id: row.connector_id,
        sequence: row.sequence,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }
}

/// Formance's `DeliveryAttempt`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptJson {
    id: Uuid,
    #[serde(rename = "deliveryID")]
    delivery_id: Uuid,
    attempt_number: i32,
    replay_generation: i32,
    endpoint: String,
    /// `succeeded`, `retryable_failure` or `permanent_failure`.
    outcome: String,
    /// 0 when no answer came (refused connection, timeout).
    status_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_millis: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_excerpt: Option<String>,
    created_at: DateTime<Utc>,
}

fn attempt_json(row: AttemptRow) -> AttemptJson {
    AttemptJson {
        id: row.id,
        delivery_id: row.delivery_id,
        attempt_number: row.attempt_number,
        replay_generation: row.replay_generation,
        endpoint: row.endpoint,
        outcome: row.outcome,
        status_code: row.status_code,
        error: row.error,
        duration_millis: row.duration_millis,
        response_excerpt: row.response_excerpt,
        created_at: row.created_at,
    }
}

/// Formance's paginated cursor (`DeliveriesResponse`, `DeliveryAttemptsResponse`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PageJson<T> {
    cursor: PageCursor<T>,
}

/// One page.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageCursor<T> {
    page_size: i64,
    has_more: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<String>,
    data: Vec<T>,
}

/// The page asked for: its size (1..=1000, default 100) and where it starts.
fn page(params: &Params) -> Result<(i64, i64), ApiError> {
    let size = match params.get("pageSize") {
        None => 100,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(ApiError::validation(format!(
                    "pageSize must be an integer from 1 to 1000, not {text:?}"
                )));
            }
        },
    };
    let offset = match params.get("cursor") {
        None | Some("") => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|t| t.strip_prefix("offset:")?.parse::<i64>().ok())
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::validation(format!("cursor {token:?} is not valid")))?,
    };
    Ok((size, offset))
}

/// One more row than the page was read: the rows of the page and the next cursor.
fn paged<T>(mut rows: Vec<T>, size: i64, offset: i64) -> PageCursor<T> {
    let has_more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    PageCursor {
        page_size: size,
        has_more,
        next: has_more
            .then(|| URL_SAFE_NO_PAD.encode(format!("offset:{}", offset.saturating_add(size)))),
        data: rows,
    }
}

fn delivery_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text)
        .map_err(|_| ApiError::validation(format!("id must be a UUID, not {text:?}")))
}

/// Filters of the delivery list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct DeliveryQuery {
    /// Only this config's deliveries.
    #[param(rename = "configId")]
    config_id: Option<Uuid>,
    /// Only deliveries in this status (pending, succeeded, failed).
    status: Option<String>,
    /// Created at or after (RFC 3339).
    #[param(rename = "createdAtFrom")]
    created_at_from: Option<DateTime<Utc>>,
    /// Created before (RFC 3339).
    #[param(rename = "createdAtTo")]
    created_at_to: Option<DateTime<Utc>>,
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(rename = "pageSize")]
    page_size: Option<i64>,
}

/// Deliveries, newest first, without their payloads.
#[utoipa::path(get, path = "/api/webhooks/deliveries", tag = "webhooks",
    operation_id = "getDeliveries", params(DeliveryQuery),
    responses((status = 200, description = "A page of deliveries", body = PageJson<DeliveryJson>)))]
async fn list(state: web::Data<AppState>, params: Params) -> Result<HttpResponse, ApiError> {
    let (size, offset) = page(&params)?;
    let status = params.get("status").map(str::to_string);
    if let Some(status) = &status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(ApiError::validation(format!(
            "status must be one of {}, not {status:?}",
            STATUSES.join(", ")
        )));
    }
    let filter = DeliveryFilter {
        config_ids: params
            .get("configId")
            .map(config_id)
            .transpose()?
            .into_iter()
            .collect(),
        statuses: status.into_iter().collect(),
        created_from: params.time("createdAtFrom")?,
        created_to: params.time("createdAtTo")?,
    };
    let rows = queries::deliveries(state.storage.pool(), &filter, offset, size + 1).await?;
    let rows = rows.into_iter().map(|r| delivery_json(r, false)).collect();
    Ok(HttpResponse::Ok().json(PageJson {
        cursor: paged(rows, size, offset),
    }))
}

/// One delivery, with its payload.
#[utoipa::path(get, path = "/api/webhooks/deliveries/{id}", tag = "webhooks",
    operation_id = "getDelivery",
    responses((status = 200, description = "The delivery", body = Data<DeliveryJson>)))]
async fn get(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = delivery_id(&path.into_inner())?;
    let row = queries::delivery(state.storage.pool(), id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook delivery {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: delivery_json(row, true),
    }))
}

/// Pagination of the attempt list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // never built: it only describes the parameters
pub struct AttemptQuery {
    /// The `next` of the previous page.
    cursor: Option<String>,
    /// 1 to 1000, default 100.
    #[param(rename = "pageSize")]
    page_size: Option<i64>,
}

/// A delivery's attempts, first first.
#[utoipa::path(get, path = "/api/webhooks/deliveries/{id}/attempts", tag = "webhooks",
    operation_id = "getDeliveryAttempts", params(AttemptQuery),
    responses((status = 200, description = "A page of attempts", body = PageJson<AttemptJson>)))]
async fn attempts(
    state: web::Data<AppState>,
    path: web::Path<String>,
    params: Params,
) -> Result<HttpResponse, ApiError> {
    let id = delivery_id(&path.into_inner())?;
    let (size, offset) = page(&params)?;
    let db = state.storage.pool();
    if queries::delivery(db, id).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "webhook delivery {id} not found"
        )));
    }
    let rows = queries::attempts(db, id, offset, size + 1).await?;
    let rows = rows.into_iter().map(attempt_json).collect();
    Ok(HttpResponse::Ok().json(PageJson {
        cursor: paged(rows, size, offset),
    }))
}

/// Sends `delivery` to `config` once, now, and records the attempt as a new replay
/// generation: a success makes it `succeeded`; a failure leaves a `pending` delivery to its
/// retries (a replay never ends them early) and a `failed` or `succeeded` one as it was.
async fn replay_one(
    state: &AppState,
    hooks: &Webhooks,
    config: &ConfigRow,
    delivery: DeliveryRow,
) -> Result<(), ApiError> {
    let key = DeliveryKey {
        id: delivery.id,
        config_id: delivery.config_id,
        event_id: delivery.event_id,
        event_type: delivery.event_type,
        connector_id: delivery.connector_id,
        sequence: delivery.sequence,
        payload: delivery.payload,
    };
    let internal = |e: crate::events::publisher::SinkError| ApiError::new(ErrorCode::Internal, e.0);
    let outcome = sink::attempt(&hooks.client, &hooks.vault, config, &key, false)
        .await
        .map_err(internal)?;
    // What the delivery becomes is settled by the database against the stored row (the sink
    // may have moved it on since `delivery` was read): a success makes it `succeeded`; a
    // failure changes nothing but the attempt count, keeping the stored status, next attempt
    // and cycle (RecordAttempt). `status` here only names the attempt's outcome.
    let status = if outcome.success {
        sink::SUCCEEDED
    } else if delivery.status == sink::PENDING {
        sink::PENDING
    } else {
        sink::FAILED
    };
    sink::record(
        &state.storage,
        config,
        &key,
        &outcome,
        status,
        None,
        Utc::now(),
        true,
    )
    .await
    .map_err(internal)?;
    tracing::info!(delivery_id = %key.id, config_id = %config.id, event_id = %key.event_id,
        status_code = outcome.status_code, status, "webhook delivery replayed");
    Ok(())
}

/// Sends a delivery again now, once, to its config's current endpoint with its current
/// secret, whatever its status; the attempt is recorded (a new replay generation). A success
/// makes the delivery `succeeded`; a failure leaves a `pending` (still retried) or
/// `succeeded` delivery as it was, and a `failed` one failed. The `Idempotency-Key` header Formance
/// requires is accepted and not needed.
#[utoipa::path(post, path = "/api/webhooks/deliveries/{id}/replay", tag = "webhooks",
    operation_id = "replayDelivery",
    responses((status = 200, description = "The delivery after the attempt", body = Data<DeliveryJson>)))]
async fn replay(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let id = delivery_id(&path.into_inner())?;
    idempotency_key(&req)?;
    let db = state.storage.pool();
    let delivery = queries::delivery(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook delivery {id} not found")))?;
    let config = queries::config(db, delivery.config_id)
        .await?
        .ok_or_else(|| {
            ApiError::validation(format!(
                "webhook delivery {id}: its config {} was deleted",
                delivery.config_id
            ))
        })?;
    replay_one(&state, &hooks, &config, delivery).await?;
    let row = queries::delivery(db, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("webhook delivery {id} not found")))?;
    Ok(HttpResponse::Ok().json(Data {
        data: delivery_json(row, true),
    }))
}

/// One delivery of a bulk replay, read again when its turn comes (the sends run one after
/// another, long after the page was read): a delivery that succeeded meanwhile is left alone,
/// and the config's current endpoint and secret are used; a config deleted meanwhile skips it.
async fn replay_again(state: &AppState, hooks: &Webhooks, id: Uuid) -> Result<(), ApiError> {
    let db = state.storage.pool();
    let Some(delivery) = queries::delivery(db, id).await? else {
        return Ok(());
    };
    if delivery.status == sink::SUCCEEDED {
        return Ok(());
    }
    let Some(config) = queries::config(db, delivery.config_id).await? else {
        return Ok(());
    };
    replay_one(state, hooks, &config, delivery).await
}

/// Formance requires an `Idempotency-Key` on replays; Tributary accepts one (its replays are
/// explicit re-sends, safe to repeat) and only checks Formance's length bound.
fn idempotency_key(req: &HttpRequest) -> Result<(), ApiError> {
    match req.headers().get("idempotency-key") {
        Some(key) if key.len() > 255 => Err(ApiError::validation(
            "Idempotency-Key must not exceed 255 characters",
        )),
        _ => Ok(()),
    }
}

/// The longest window a bulk replay may cover (Formance's bound).
const MAX_REPLAY_WINDOW: chrono::TimeDelta = chrono::TimeDelta::days(90);

/// Formance's `ReplayDeliveriesResult`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResultJson {
    /// Failed deliveries of the page, sent again.
    replayed: i64,
    /// Pending deliveries of the page (still being retried), sent now instead of at their
    /// next retry.
    expedited: i64,
    /// Deliveries of the page whose config was deleted: nothing to send them to.
    skipped: i64,
    has_more: bool,
    /// The `cursor` of the next page (the same filters and `createdAtTo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
    /// The window's end: the one given, or the time of the first page's call.
    created_at_to: DateTime<Utc>,
}

/// A delivery's place in a bulk replay's order: its creation time and id.
type ReplayKey = (DateTime<Utc>, Uuid);

/// Where a bulk replay's page ends: the last delivery's key and the window's end.
fn replay_cursor(after: ReplayKey, to: DateTime<Utc>) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "replay:{}|{}|{}",
        after.0.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        after.1,
        to.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    ))
}

/// The key and window end of a [`replay_cursor`].
fn parse_replay_cursor(token: &str) -> Result<(ReplayKey, DateTime<Utc>), ApiError> {
    let time = |t: &str| {
        DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    };
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|text| {
            let mut parts = text.strip_prefix("replay:")?.split('|');
            let at = time(parts.next()?)?;
            let id = Uuid::parse_str(parts.next()?).ok()?;
            let to = time(parts.next()?)?;
            Some(((at, id), to))
        })
        .ok_or_else(|| ApiError::validation(format!("cursor {token:?} is not valid")))
}

/// An RFC 3339 time field of a JSON body.
fn body_time(
    body: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => rfc3339(name, text).map(Some),
        Some(other) => Err(ApiError::validation(format!(
            "{name} must be an RFC 3339 time string, not {other}"
        ))),
    }
}

/// A string-array field of a JSON body (absent: empty).
fn body_strings(
    body: &serde_json::Map<String, Value>,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::validation(format!("{name} must be an array of strings, got {v}"))
                })
            })
            .collect(),
        Some(other) => Err(ApiError::validation(format!(
            "{name} must be an array of strings, not {other}"
        ))),
    }
}

/// Replays a page of failed or pending deliveries created in a window (Formance's bulk
/// replay): `createdAtFrom` (required), `createdAtTo` (default: now, returned so the next pages
/// use the same window; at most 90 days), `configIds`, `statuses` (`failed`, `pending`; default
/// both), `pageSize` (1 to 1000, default 1000), `cursor` (the previous page's `nextCursor`).
/// The page's deliveries are sent again in the background, oldest first, each as a replay of
/// one delivery does; the answer counts them at once. The replays are not durable: a restart
/// before they are sent leaves the rest as they were, to be replayed again.
#[utoipa::path(post, path = "/api/webhooks/deliveries/replay", tag = "webhooks",
    operation_id = "replayDeliveries",
    request_body(content = Object, example = json!({"createdAtFrom": "2026-01-01T00:00:00Z",
        "statuses": ["failed"]})),
    responses((status = 200, description = "What the page holds", body = Data<ReplayResultJson>)))]
async fn replay_many(
    state: web::Data<AppState>,
    hooks: web::Data<Webhooks>,
    req: HttpRequest,
    body: JsonObject,
) -> Result<HttpResponse, ApiError> {
    idempotency_key(&req)?;
    let body = body.0;
    refuse_unknown(
        &body,
        &[
            "createdAtFrom",
            "createdAtTo",
            "configIds",
            "statuses",
            "pageSize",
            "cursor",
        ],
    )?;
    let from = body_time(&body, "createdAtFrom")?
        .ok_or_else(|| ApiError::validation("createdAtFrom is required"))?;
    let statuses = body_strings(&body, "statuses")?;
    if let Some(bad) = statuses
        .iter()
        .find(|s| *s != sink::FAILED && *s != sink::PENDING)
    {
        return Err(ApiError::validation(format!(
            "statuses: a bulk replay only takes failed and pending, not {bad:?}"
        )));
    }
    let statuses = if statuses.is_empty() {
        vec![sink::FAILED.to_string(), sink::PENDING.to_string()]
    } else {
        statuses
    };
    let config_ids = body_strings(&body, "configIds")?
        .iter()
        .map(|id| {
            Uuid::parse_str(id)
                .map_err(|_| ApiError::validation(format!("configIds must hold UUIDs, not {id:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let size = match body.get("pageSize") {
        None | Some(Value::Null) => 1000,
        Some(v) => v
            .as_i64()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::validation(format!(
                    "pageSize must be an integer from 1 to 1000, not {v}"
                ))
            })?,
    };
    let cursor = match body.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) if token.is_empty() => None,
        Some(Value::String(token)) => Some(parse_replay_cursor(token)?),
        Some(other) => {
            return Err(ApiError::validation(format!(
                "cursor must be a string, not {other}"
            )));
        }
    };
    let to = body_time(&body, "createdAtTo")?
        .or(cursor.map(|(_, to)| to))
        .unwrap_or_else(Utc::now);
    if to < from || to - from > MAX_REPLAY_WINDOW {
        return Err(ApiError::validation(
            "createdAtFrom to createdAtTo must be a positive window of at most 90 days",
        ));
    }
    let filter = DeliveryFilter {
        config_ids,
        statuses,
        created_from: Some(from),
        created_to: Some(to),
    };
    let db = state.storage.pool();
    let mut rows =
        queries::deliveries_after(db, &filter, cursor.map(|(after, _)| after), size + 1).await?;
    let has_more = rows.len() as i64 > size;
    rows.truncate(size as usize);
    let next_cursor = has_more
        .then(|| rows.last().map(|r| replay_cursor((r.created_at, r.id), to)))
        .flatten();

    let mut configs: std::collections::HashMap<Uuid, Option<ConfigRow>> = Default::default();
    let (mut replayed, mut expedited, mut skipped) = (0, 0, 0);
    let mut sends = Vec::with_capacity(rows.len());
    for row in rows {
        let config = match configs.get(&row.config_id) {
            Some(known) => known.clone(),
            None => {
                let config = queries::config(db, row.config_id).await?;
                configs.insert(row.config_id, config.clone());
                config
            }
        };
        match config {
            None => skipped += 1,
            Some(_) => {
                if row.status == sink::PENDING {
                    expedited += 1;
                } else {
                    replayed += 1;
                }
                sends.push(row.id);
            }
        }
    }
    let (background_state, background_hooks) = (state.clone(), hooks.clone());
    actix_rt::spawn(async move {
        for id in sends {
            if let Err(error) = replay_again(&background_state, &background_hooks, id).await {
                tracing::warn!(delivery_id = %id, error = %error.message,
                    "a bulk replay could not send a delivery");
            }
        }
    });
    tracing::info!(
        replayed,
        expedited,
        skipped,
        "webhook deliveries replayed in bulk"
    );
    Ok(HttpResponse::Ok().json(Data {
        data: ReplayResultJson {
            replayed,
            expedited,
            skipped,
            has_more,
            next_cursor,
            created_at_to: to,
        },
    }))
}
