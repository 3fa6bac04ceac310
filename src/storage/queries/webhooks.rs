//! Reads of webhooks out: configs (the API, and the publishers at boot and before each
//! attempt), deliveries and their attempts (the API, and a publisher skipping what an earlier
//! run already finished).

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio_postgres::Row;
use uuid::Uuid;

use super::{client, query, query_opt};
use crate::storage::{Pool, StorageError};

/// A webhook config as stored (its secret sealed).
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigRow {
    /// Its id.
    pub id: Uuid,
    /// The http(s) URL.
    pub endpoint: String,
    /// The sealed secret.
    pub secret: Value,
    /// Formance's lower-case event types.
    pub event_types: Vec<String>,
    /// Whether events are being delivered.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const CONFIG_COLUMNS: &str =
    "id, endpoint, secret, event_types, active, created_at, updated_at FROM webhook_configs";

fn config_row(r: &Row) -> ConfigRow {
    ConfigRow {
        id: r.get(0),
        endpoint: r.get(1),
        secret: r.get(2),
        event_types: r.get(3),
        active: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

/// One config by id.
pub async fn config(pool: &Pool, id: Uuid) -> Result<Option<ConfigRow>, StorageError> {
    let context = "reading a webhook config";
    let client = client(pool, context).await?;
    let sql = format!("SELECT {CONFIG_COLUMNS} WHERE id = $1");
    Ok(query_opt(&client, &sql, &[&id], context)
        .await?
        .map(|r| config_row(&r)))
}

/// Configs, most recently updated first, optionally only the one with `id` or those with
/// `endpoint`, or only the active ones.
pub async fn configs(
    pool: &Pool,
    id: Option<Uuid>,
    endpoint: Option<&str>,
    active_only: bool,
) -> Result<Vec<ConfigRow>, StorageError> {
    let context = "listing webhook configs";
    let client = client(pool, context).await?;
    let sql = format!(
        "SELECT {CONFIG_COLUMNS} WHERE ($1::uuid IS NULL OR id = $1)
         AND ($2::text IS NULL OR endpoint = $2) AND (active OR NOT $3)
         ORDER BY updated_at DESC, id"
    );
    let rows = query(&client, &sql, &[&id, &endpoint, &active_only], context).await?;
    Ok(rows.iter().map(config_row).collect())
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryRow {
    /// Its id (the `formance-webhook-id` header).
    pub id: Uuid,
    /// The config.
    pub config_id: Uuid,
    /// The outbox event.
    pub event_id: Uuid,
    /// Formance's form.
    pub event_type: String,
    /// The event's connector.
    pub connector_id: String,
    /// The event's connector sequence.
    pub sequence: i64,
    /// The body sent.
    pub payload: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// Attempts made.
    pub attempt_count: i32,
    /// Replays made.
    pub replay_generation: i32,
    /// When the current cycle of attempts began.
    pub cycle_started_at: Option<DateTime<Utc>>,
    /// When the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the last attempt was made.
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// The last answer's status.
    pub last_status_code: Option<i32>,
    /// The last error.
    pub last_error: Option<String>,
    /// Creation time (its first attempt).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

const DELIVERY_COLUMNS: &str = "id, config_id, event_id, event_type, connector_id, sequence,
    payload, status, attempt_count, replay_generation, cycle_started_at, next_attempt_at,
    last_attempt_at, last_status_code, last_error, created_at, updated_at FROM webhook_deliveries";

fn delivery_row(r: &Row) -> DeliveryRow {
    DeliveryRow {
        id: r.get(0),
        config_id: r.get(1),
        event_id: r.get(2),
        event_type: r.get(3),
        connector_id: r.get(4),
        sequence: r.get(5),
        payload: r.get(6),
        status: r.get(7),
        attempt_count: r.get(8),
        replay_generation: r.get(9),
        cycle_started_at: r.get(10),
        next_attempt_at: r.get(11),
        last_attempt_at: r.get(12),
        last_status_code: r.get(13),
        last_error: r.get(14),
        created_at: r.get(15),
        updated_at: r.get(16),
    }
}

/// One delivery by id.
pub async fn delivery(pool: &Pool, id: Uuid) -> Result<Option<DeliveryRow>, StorageError> {
    let context = "reading a webhook delivery";
    let client = client(pool, context).await?;
    let sql = format!("SELECT {DELIVERY_COLUMNS} WHERE id = $1");
    Ok(query_opt(&client, &sql, &[&id], context)
        .await?
        .map(|r| delivery_row(&r)))
}

/// The deliveries among `ids` that exist (a publisher checking a batch at once).
pub async fn deliveries_by_id(pool: &Pool, ids: &[Uuid]) -> Result<Vec<DeliveryRow>, StorageError> {
    let context = "reading webhook deliveries";
    let client = client(pool, context).await?;
    let sql = format!("SELECT {DELIVERY_COLUMNS} WHERE id = ANY($1)");
    let rows = query(&client, &sql, &[&ids], context).await?;
    Ok(rows.iter().map(delivery_row).collect())
}

/// What a deliveries listing (or a bulk replay) selects.
#[derive(Debug, Clone, Default)]
pub struct DeliveryFilter {
    /// Only these configs' (none: every config's).
    pub config_ids: Vec<Uuid>,
    /// Only those in one of these statuses (none: any).
    pub statuses: Vec<String>,
    /// Created at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Created before.
    pub created_to: Option<DateTime<Utc>>,
}

const FILTERED: &str = "(cardinality($1::uuid[]) = 0 OR config_id = ANY($1))
     AND (cardinality($2::text[]) = 0 OR status = ANY($2))
     AND ($3::timestamptz IS NULL OR created_at >= $3)
     AND ($4::timestamptz IS NULL OR created_at < $4)";

/// Deliveries, newest first: `limit` of them after skipping `offset`.
pub async fn deliveries(
    pool: &Pool,
    filter: &DeliveryFilter,
    offset: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let context = "listing webhook deliveries";
    let client = client(pool, context).await?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} WHERE {FILTERED}
         ORDER BY created_at DESC, id DESC OFFSET $5 LIMIT $6"
    );
    let rows = query(
        &client,
        &sql,
        &[
            &filter.config_ids,
            &filter.statuses,
            &filter.created_from,
            &filter.created_to,
            &offset,
            &limit,
        ],
        context,
    )
    .await?;
    Ok(rows.iter().map(delivery_row).collect())
}

/// Deliveries, oldest first, after `after` (a `(created_at, id)` key): a bulk replay's page,
/// which stays in place while the replays move deliveries out of the filter.
pub async fn deliveries_after(
    pool: &Pool,
    filter: &DeliveryFilter,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StorageError> {
    let context = "selecting webhook deliveries to replay";
    let client = client(pool, context).await?;
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} WHERE {FILTERED}
         AND ($5::timestamptz IS NULL OR (created_at, id) > ($5, $6::uuid))
         ORDER BY created_at, id LIMIT $7"
    );
    let (at, id) = after.unzip();
    let rows = query(
        &client,
        &sql,
        &[
            &filter.config_ids,
            &filter.statuses,
            &filter.created_from,
            &filter.created_to,
            &at,
            &id,
            &limit,
        ],
        context,
    )
    .await?;
    Ok(rows.iter().map(delivery_row).collect())
}

/// One attempt as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRow {
    /// Its id.
    pub id: Uuid,
    /// Its delivery.
    pub delivery_id: Uuid,
    /// 1, 2, 3 … within the delivery.
    pub attempt_number: i32,
    /// The delivery's replay generation when it was made.
    pub replay_generation: i32,
    /// Where it went.
    pub endpoint: String,
    /// `succeeded`, `retryable_failure` or `permanent_failure`.
    pub outcome: String,
    /// The answer's status, 0 when none came.
    pub status_code: i32,
    /// The error, if any.
    pub error: Option<String>,
    /// How long it took.
    pub duration_millis: Option<i64>,
    /// The start of the answer's body.
    pub response_excerpt: Option<String>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A delivery's attempts in order: `limit` of them after skipping `offset`.
pub async fn attempts(
    pool: &Pool,
    delivery_id: Uuid,
    offset: i64,
    limit: i64,
) -> Result<Vec<AttemptRow>, StorageError> {
    let context = "listing webhook delivery attempts";
    let client = client(pool, context).await?;
    let rows = query(
        &client,
        "SELECT id, delivery_id, attempt_number, replay_generation, endpoint, outcome,
                status_code, error, duration_millis, response_excerpt, created_at
         FROM webhook_attempts WHERE delivery_id = $1 ORDER BY attempt_number
         OFFSET $2 LIMIT $3",
        &[&delivery_id, &offset, &limit],
        context,
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| AttemptRow {
            id: r.get(0),
            delivery_id: r.get(1),
            attempt_number: r.get(2),
            replay_generation: r.get(3),
            endpoint: r.get(4),
            outcome: r.get(5),
            status_code: r.get(6),
            error: r.get(7),
            duration_millis: r.get(8),
            response_excerpt: r.get(9),
            created_at: r.get(10),
        })
        .collect())
}
