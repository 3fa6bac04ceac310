//! Writes of transfer initiations: creating one, and moving one through its state machine
//! ([`crate::money_out::machine`]) as a compare-and-set. [`Transition`] reads the row `FOR
//! UPDATE`, applies the pure table to the status it read, and writes the new status, its
//! history row and whatever goes with the change (the new attempt's task, the connector's
//! payment and its link, a reversal) in the same transaction; the storage actor is the only
//! writer, so two transitions of one initiation can never both act on the same status.
//!
//! Every change appends its event in the same transaction (Formance v1's): a creation, a
//! status change, a new related payment or a reversal's amount `SAVED_TRANSFER_INITIATION`
//! (the initiation as it is after the change), a deletion `DELETED_TRANSFER_INITIATION`, both
//! in the initiation's connector's sequence. A refused transition writes nothing, so no event.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::events::append;
use super::ingest::IngestBatch;
use super::snapshots::{deleted, saved_initiation};
use super::tasks::OUTCOME_UNKNOWN;
use crate::events::EventType;
use crate::money_out::machine::{self, Event, IllegalTransition, Next, Status};
use crate::storage::{StorageError, Tx, WriteCommand};

/// A new transfer initiation, as the API validated it.
#[derive(Debug, Clone)]
pub struct CreateInitiation {
    /// Formance's id (connector and reference).
    pub id: String,
    /// The connector.
    pub connector_id: String,
    /// The client's reference.
    pub reference: String,
    /// TRANSFER or PAYOUT.
    pub initiation_type: String,
    /// Exact decimal text.
    pub amount: String,
    /// `CUR/precision`.
    pub asset: String,
    /// An account id, if given.
    pub source_account_id: Option<String>,
    /// An account id.
    pub destination_account_id: String,
    /// The client's description.
    pub description: String,
    /// String metadata (a JSON object).
    pub metadata: Option<Value>,
    /// When to send it.
    pub scheduled_at: DateTime<Utc>,
    /// Now.
    pub created_at: DateTime<Utc>,
}

const INSERT_INITIATION: &str = "INSERT INTO transfer_initiations (id, connector_id, reference,
        type, status, amount, initial_amount, asset, source_account_id, destination_account_id,
        description, metadata, scheduled_at, created_at, updated_at)
    VALUES ($1, $2, $3, $4, 'WAITING_FOR_VALIDATION', $5::text::numeric, $5::text::numeric, $6,
        $7, $8, $9, $10, $11, $12, $12)
    ON CONFLICT (id) DO NOTHING";

const INSERT_HISTORY: &str = "INSERT INTO transfer_initiation_adjustments
        (id, transfer_initiation_id, created_at, status, error)
    VALUES ($1, $2, $3, $4, $5)";

impl WriteCommand for CreateInitiation {
    type Output = ();

    async fn apply(&self, tx: &Tx<'_>) -> Result<(), StorageError> {
        let context = "creating a transfer initiation";
        let n = tx
            .execute(
                INSERT_INITIATION,
                &[
                    &self.id,
                    &self.connector_id,
                    &self.reference,
                    &self.initiation_type,
                    &self.amount,
                    &self.asset,
                    &self.source_account_id,
                    &self.destination_account_id,
                    &self.description,
                    &self.metadata,
                    &self.scheduled_at,
                    &self.created_at,
                ],
            )
            .await
            .map_err(|e| StorageError::db(context, e))?;
        if n == 0 {
            return Err(StorageError::Conflict(format!(
                "reference: a transfer initiation with reference {:?} already exists on this \
                 connector",
                self.reference
            )));
        }
        history(
            tx,
            &self.id,
            self.created_at,
            Status::WaitingForValidation,
            None,
        )
        .await?;
        saved(tx, &self.id).await
    }
}

/// Appends the initiation's `SAVED_TRANSFER_INITIATION` as it is now.
async fn saved(tx: &Tx<'_>, id: &str) -> Result<(), StorageError> {
    let event = saved_initiation(tx, id).await?;
    append(tx, event.as_slice()).await
}

async fn history(
    tx: &Tx<'_>,
    id: &str,
    at: DateTime<Utc>,
    status: Status,
    error: Option<&str>,
) -> Result<(), StorageError> {
    tx.execute(
        INSERT_HISTORY,
        &[&Uuid::new_v4(), &id, &at, &status.as_str(), &error],
    )
    .await
    .map_err(|e| StorageError::db("writing a transfer initiation's history", e))?;
    Ok(())
}

/// A reversal asked for, written with the ASK_REVERSED transition.
#[derive(Debug, Clone)]
pub struct NewReversal {
    /// Formance's reversal id (connector and reference).
    pub id: String,
    /// The client's reference.
    pub reference: String,
    /// The connector.
    pub connector_id: String,
    /// The client's description.
    pub description: String,
    /// Exact decimal text.
    pub amount: String,
    /// `CUR/precision`.
    pub asset: String,
    /// String metadata.
    pub metadata: Option<Value>,
    /// The task that sends it.
    pub task_id: Uuid,
}

/// What is written with a transition, besides the status and its history row.
#[derive(Debug, Clone)]
pub enum With {
    /// Nothing else.
    Nothing,
    /// A new attempt (approve, retry): `attempt + 1`, sent by this task.
    NewAttempt {
        /// The task of the new attempt.
        task_id: Uuid,
    },
    /// The payment the connector created, ingested and linked.
    Payment {
        /// The ingest.
        ingest: Box<IngestBatch>,
        /// The payment's id.
        payment_id: String,
    },
    /// A reversal asked for.
    Reversal(Box<NewReversal>),
    /// A reversal succeeded: the amount left goes down by the reversal's, and the event is
    /// `ReversedFully` or `ReversedPartially` by what is left (the command's own event is
    /// not used).
    ReversalDone {
        /// The reversal.
        reversal_id: String,
        /// The payment's change the connector reported, if any.
        ingest: Option<Box<IngestBatch>>,
    },
    /// A reversal failed.
    ReversalFailed {
        /// The reversal.
        reversal_id: String,
    },
}

/// Moves an initiation through its state machine, if its current status (and attempt, when
/// given) allows.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The initiation.
    pub id: String,
    /// What happens.
    pub event: Event,
    /// Only if the initiation is on this attempt (the writes of a send task, or the API's
    /// new attempt, which read it).
    pub attempt: Option<i32>,
    /// The error that comes with the change (kept on the initiation and its history row).
    pub error: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// What else is written.
    pub with: With,
}

/// What a transition did.
#[derive(Debug, Clone, PartialEq)]
pub enum Transitioned {
    /// Done: the new status (None: deleted) and the attempt it is on.
    Done {
        /// The status now.
        status: Option<Status>,
        /// The attempt now.
        attempt: i32,
    },
    /// The current status does not allow the event.
    Refused(IllegalTransition),
    /// The initiation moved on to another attempt.
    OtherAttempt {
        /// Its attempt.
        current: i32,
    },
    /// No such initiation.
    NotFound,
    /// A reversal of more than what is left to reverse.
    AmountExceeds {
        /// What is left, exact decimal text.
        left: String,
    },
}

impl WriteCommand for Transition {
    // Refusals are answers, not errors: an error would roll back the whole batch.
    type Output = Transitioned;

    async fn apply(&self, tx: &Tx<'_>) -> Result<Transitioned, StorageError> {
        let context = "changing a transfer initiation's status";
        let db = |e| StorageError::db(context, e);
        let Some(row) = tx
            .query_opt(
                "SELECT status, attempt, connector_id FROM transfer_initiations
                 WHERE id = $1 FOR UPDATE",
                &[&self.id],
            )
            .await
            .map_err(db)?
        else {
            return Ok(Transitioned::NotFound);
        };
        let stored: String = row.get(0);
        let attempt: i32 = row.get(1);
        let connector_id: String = row.get(2);
        let current = Status::parse(&stored).ok_or_else(|| StorageError::Database {
            context: context.into(),
            code: "XX000".into(),
            message: format!("unknown transfer initiation status {stored:?} in the database"),
        })?;
        if let Some(expected) = self.attempt
            && expected != attempt
        {
            return Ok(Transitioned::OtherAttempt { current: attempt });
        }
        let event = match &self.with {
            With::ReversalDone { reversal_id, .. } => {
                let fully: bool = tx
                    .query_one(
                        "SELECT i.amount - r.amount <= 0 FROM transfer_initiations i
                         JOIN transfer_reversals r ON r.transfer_initiation_id = i.id
                         WHERE i.id = $1 AND r.id = $2",
                        &[&self.id, reversal_id],
                    )
                    .await
                    .map_err(db)?
                    .get(0);
                if fully {
                    Event::ReversedFully
                } else {
                    Event::ReversedPartially
                }
            }
            _ => self.event,
        };
        let status = match machine::next(current, event) {
            Ok(Next::Deleted) => {
                tx.execute(
                    "DELETE FROM transfer_initiations WHERE id = $1",
                    &[&self.id],
                )
                .await
                .map_err(db)?;
                let event = deleted(
                    &connector_id,
                    EventType::DeletedTransferInitiation,
                    &self.id,
                );
                append(tx, event.as_slice()).await?;
                return Ok(Transitioned::Done {
                    status: None,
                    attempt,
                });
            }
            Ok(Next::To(status)) => status,
            Err(refused) => return Ok(Transitioned::Refused(refused)),
        };
        let mut attempt = attempt;
        // Whether something the event shows changed besides the status (which a retried send
        // may leave as it was): a new related payment, the amount left after a reversal.
        let mut changed = false;
        match &self.with {
            With::Nothing => {}
            With::NewAttempt { task_id } => {
                attempt += 1;
                tx.execute(
                    "UPDATE transfer_initiations SET attempt = $2, task_id = $3 WHERE id = $1",
                    &[&self.id, &attempt, task_id],
                )
                .await
                .map_err(db)?;
            }
            With::Payment { ingest, payment_id } => {
                ingest.apply(tx).await?;
                changed |= 0 < tx
                    .execute(
                        "INSERT INTO transfer_initiation_payments
                         (transfer_initiation_id, payment_id, created_at)
                     VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        &[&self.id, payment_id, &self.at],
                    )
                    .await
                    .map_err(db)?;
            }
            With::Reversal(r) => {
                let left: Option<String> = tx
                    .query_one(
                        "SELECT CASE WHEN amount < $2::text::numeric THEN amount::text END
                         FROM transfer_initiations WHERE id = $1",
                        &[&self.id, &r.amount],
                    )
                    .await
                    .map_err(db)?
                    .get(0);
                if let Some(left) = left {
                    return Ok(Transitioned::AmountExceeds { left });
                }
                let n = tx
                    .execute(
                        "INSERT INTO transfer_reversals (id, transfer_initiation_id,
                             connector_id, reference, description, amount, asset, status,
                             metadata, task_id, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6::text::numeric, $7, 'PROCESSING', $8,
                             $9, $10, $10)
                         ON CONFLICT (id) DO NOTHING",
                        &[
                            &r.id,
                            &self.id,
                            &r.connector_id,
                            &r.reference,
                            &r.description,
                            &r.amount,
                            &r.asset,
                            &r.metadata,
                            &r.task_id,
                            &self.at,
                        ],
                    )
                    .await
                    .map_err(db)?;
                if n == 0 {
                    return Err(StorageError::Conflict(format!(
                        "reference: a reversal with reference {:?} already exists on this \
                         connector",
                        r.reference
                    )));
                }
            }
            With::ReversalDone {
                reversal_id,
                ingest,
            } => {
                if let Some(ingest) = ingest {
                    ingest.apply(tx).await?;
                }
                changed |= 0 < tx
                    .execute(
                        "WITH r AS (UPDATE transfer_reversals SET status = 'PROCESSED',
                                    updated_at = $3
                                WHERE id = $2 RETURNING amount)
                     UPDATE transfer_initiations i SET amount = i.amount - r.amount
                     FROM r WHERE i.id = $1",
                        &[&self.id, reversal_id, &self.at],
                    )
                    .await
                    .map_err(db)?;
            }
            With::ReversalFailed { reversal_id } => {
                tx.execute(
                    "UPDATE transfer_reversals SET status = 'FAILED', error = $2,
                         updated_at = $3
                     WHERE id = $1",
                    &[reversal_id, &self.error, &self.at],
                )
                .await
                .map_err(db)?;
            }
        }
        if status == current {
            // The same attempt's send, run again (a retried run): the status stays.
            if changed {
                saved(tx, &self.id).await?;
            }
            return Ok(Transitioned::Done {
                status: Some(status),
                attempt,
            });
        }
        tx.execute(
            "UPDATE transfer_initiations SET status = $2, error = $3, updated_at = $4
             WHERE id = $1",
            &[&self.id, &status.as_str(), &self.error, &self.at],
        )
        .await
        .map_err(db)?;
        history(tx, &self.id, self.at, status, self.error.as_deref()).await?;
        saved(tx, &self.id).await?;
        Ok(Transitioned::Done {
            status: Some(status),
            attempt,
        })
    }
}

/// The error of an initiation whose send was never scheduled.
pub const NEVER_SCHEDULED: &str =
    "never sent: the service stopped before the send's task was recorded; retry to send it";

/// Marks FAILED "outcome unknown" the initiations and reversals whose task was just failed
/// because a crash or shutdown interrupted its run (`FailInterrupted`, in the same
/// transaction): a send that may have happened is never sent again without an explicit retry.
/// Also marks FAILED the connector's initiations that were approved or retried but whose send
/// task was never recorded (the process stopped between the two writes): nothing was sent, so
/// failing them is safe, and a retry sends them. Each initiation failed gets its event.
pub async fn fail_interrupted(
    tx: &Tx<'_>,
    connector_id: &str,
    tasks: &[Uuid],
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let db = |e| StorageError::db("failing interrupted transfer initiations", e);
    let unsent: Vec<&str> = machine::sources(Event::Send)
        .into_iter()
        .filter(|s| *s != Status::Processing.as_str())
        .collect();
    let mut failed = tx
        .query(
            "WITH i AS (UPDATE transfer_initiations t SET status = 'FAILED', error = $3,
                            updated_at = $4
                        WHERE t.connector_id = $1 AND t.status = ANY($2)
                          AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = t.task_id)
                        RETURNING id)
             INSERT INTO transfer_initiation_adjustments
                 (id, transfer_initiation_id, created_at, status, error)
             SELECT gen_random_uuid(), id, $4, 'FAILED', $3 FROM i
             RETURNING transfer_initiation_id",
            &[&connector_id, &unsent, &NEVER_SCHEDULED, &now],
        )
        .await
        .map_err(db)?;
    if !tasks.is_empty() {
        failed.extend(interrupted(tx, tasks, now).await?);
    }
    let mut events = Vec::new();
    for row in &failed {
        let id: &str = row.get(0);
        events.extend(saved_initiation(tx, id).await?);
    }
    append(tx, &events).await
}

/// The initiations and reversals of the interrupted `tasks`, failed: the initiations changed.
async fn interrupted(
    tx: &Tx<'_>,
    tasks: &[Uuid],
    now: DateTime<Utc>,
) -> Result<Vec<tokio_postgres::Row>, StorageError> {
    let db = |e| StorageError::db("failing interrupted transfer initiations", e);
    let sends = machine::sources(Event::OutcomeUnknown);
    let reversals = machine::sources(Event::ReversalFailed);
    let mut failed = tx
        .query(
            "WITH i AS (UPDATE transfer_initiations SET status = 'FAILED', error = $3,
                            updated_at = $4
                        WHERE task_id = ANY($1) AND status = ANY($2) RETURNING id)
             INSERT INTO transfer_initiation_adjustments
                 (id, transfer_initiation_id, created_at, status, error)
             SELECT gen_random_uuid(), id, $4, 'FAILED', $3 FROM i
             RETURNING transfer_initiation_id",
            &[&tasks, &sends, &OUTCOME_UNKNOWN, &now],
        )
        .await
        .map_err(db)?;
    let reversed = tx.query(
        "WITH r AS (UPDATE transfer_reversals SET status = 'FAILED', error = $3, updated_at = $4
                    WHERE task_id = ANY($1) AND status = 'PROCESSING'
                    RETURNING transfer_initiation_id),
              i AS (UPDATE transfer_initiations SET status = 'REVERSE_FAILED', error = $3,
                        updated_at = $4
                    WHERE id IN (SELECT transfer_initiation_id FROM r) AND status = ANY($2)
                    RETURNING id)
         INSERT INTO transfer_initiation_adjustments
             (id, transfer_initiation_id, created_at, status, error)
         SELECT gen_random_uuid(), id, $4, 'REVERSE_FAILED', $3 FROM i
         RETURNING transfer_initiation_id",
        &[&tasks, &reversals, &OUTCOME_UNKNOWN, &now],
    )
    .await
    .map_err(db)?;
    failed.extend(reversed);
    Ok(failed)
}
