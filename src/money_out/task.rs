//! The runtime's money-out task: one attempt at sending an initiation, or one reversal. It
//! runs as a task of the connector (`on_interrupt = FAIL`), calls the connector's
//! [`MoneyOut`], and records the outcome through the storage actor: the payment the
//! connector reports is ingested, linked to the initiation, and the initiation becomes
//! PROCESSED in one transaction; a failure becomes FAILED with its message. A retryable error
//! runs the same attempt again, with the same idempotency key.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;

use super::descriptor::MoneyOutTask;
use super::machine::Event;
use crate::ids::{AccountKey, ConnectorKey, PaymentKey};
use crate::runtime::error::task_error;
use crate::sdk::ingest::{Amount, Batch, PaymentData};
use crate::sdk::money_out::check_supported;
use crate::sdk::{
    Connector, InitiationType, MoneyOut, PaymentInitiation, PaymentReversal, Task, TaskContext,
    TaskError,
};
use crate::storage::StorageHandle;
use crate::storage::commands::ingest::IngestBatch;
use crate::storage::commands::transfers::{Transition, Transitioned, With};
use crate::storage::queries::transfers::{self as stored, InitiationRow};

/// The environment variable naming a failpoint (tests only; inert when unset; not
/// `TRIBUTARY_`-prefixed, which the settings reserve): with
/// `money-out-after-send`, the process aborts right after the connector sent an initiation
/// and before its payment is recorded — the crash the outcome-unknown rule is for.
pub const FAILPOINT_ENV: &str = "FAILPOINTS";

fn failpoint(name: &str) {
    if std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == name) {
        tracing::error!(failpoint = name, "failpoint reached: aborting the process");
        std::process::abort();
    }
}

/// A money-out task, bound to the connector value of its run.
pub struct MoneyOutRun {
    /// The connector whose [`MoneyOut`] is called.
    pub connector: Arc<dyn Connector>,
    /// Where the outcome is recorded.
    pub storage: StorageHandle,
    /// Which send or reversal.
    pub task: MoneyOutTask,
}

#[async_trait]
impl Task for MoneyOutRun {
    async fn run(&self, ctx: TaskContext) -> Result<(), TaskError> {
        match &self.task {
            MoneyOutTask::Initiate {
                initiation,
                attempt,
            } => self.initiate(&ctx, initiation, *attempt).await,
            MoneyOutTask::Reverse { reversal } => self.reverse(&ctx, reversal).await,
        }
    }
}

impl MoneyOutRun {
    async fn transition(
        &self,
        ctx: &TaskContext,
        id: &str,
        event: Event,
        attempt: Option<i32>,
        error: Option<String>,
        with: With,
    ) -> Result<Transitioned, TaskError> {
        self.storage
            .write(Transition {
                id: id.to_string(),
                event,
                attempt,
                error,
                at: ctx.clock().now(),
                with,
            })
            .await
            .map_err(task_error)
    }

    fn money_out(&self) -> Result<&dyn MoneyOut, String> {
        self.connector
            .money_out()
            .ok_or_else(|| "the connector does not support money out".to_string())
    }

    async fn initiate(&self, ctx: &TaskContext, id: &str, attempt: i32) -> Result<(), TaskError> {
        let started = self
            .transition(ctx, id, Event::Send, Some(attempt), None, With::Nothing)
            .await?;
        if !matches!(started, Transitioned::Done { .. }) {
            // Deleted, or moved on (another attempt, or this one already ended): nothing to send.
            tracing::info!(initiation = %id, attempt, ?started, "send not needed");
            return Ok(());
        }
        let row = stored::get(self.storage.pool(), id)
            .await
            .map_err(task_error)?
            .ok_or_else(|| TaskError::non_retryable(format!("transfer initiation {id} is gone")))?;
        let fail = |message: String| async move {
            self.transition(
                ctx,
                id,
                Event::Failed,
                Some(attempt),
                Some(message.clone()),
                With::Nothing,
            )
            .await?;
            Err::<(), _>(TaskError::non_retryable(message))
        };
        let money_out = match self.money_out() {
            Ok(m) => m,
            Err(message) => return fail(message).await,
        };
        if let Err(unsupported) = check_supported(&money_out.supported_currencies(), &row.asset) {
            return fail(unsupported.to_string()).await;
        }
        let initiation = match payment_initiation(&row, ctx.idempotency_key()) {
            Ok(i) => i,
            Err(message) => return fail(message).await,
        };
        tracing::info!(initiation = %id, attempt, key = %initiation.idempotency_key, "sending");
        match money_out.initiate_payment(ctx, &initiation).await {
            Ok(outcome) => {
                failpoint("money-out-after-send");
                let (ingest, payment_id) = ingest_one(&row.connector_id, outcome.payment)?;
                self.transition(
                    ctx,
                    id,
                    Event::Succeeded,
                    Some(attempt),
                    None,
                    With::Payment {
                        ingest: Box::new(ingest),
                        payment_id,
                    },
                )
                .await?;
                Ok(())
            }
            Err(TaskError::Retryable(message)) => Err(TaskError::Retryable(message)),
            Err(e) => fail(e.to_string()).await,
        }
    }

    async fn reverse(&self, ctx: &TaskContext, reversal_id: &str) -> Result<(), TaskError> {
        let pool = self.storage.pool();
        let reversal = stored::reversal(pool, reversal_id)
            .await
            .map_err(task_error)?
            .ok_or_else(|| TaskError::non_retryable(format!("reversal {reversal_id} is gone")))?;
        if reversal.status != "PROCESSING" {
            return Ok(());
        }
        let id = reversal.transfer_initiation_id.clone();
        let started = self
            .transition(ctx, &id, Event::SendReversal, None, None, With::Nothing)
            .await?;
        if !matches!(started, Transitioned::Done { .. }) {
            tracing::info!(initiation = %id, reversal = %reversal_id, ?started, "reversal not needed");
            return Ok(());
        }
        let row = stored::get(pool, &id)
            .await
            .map_err(task_error)?
            .ok_or_else(|| TaskError::non_retryable(format!("transfer initiation {id} is gone")))?;
        let fail = |message: String| {
            let id = id.clone();
            async move {
                self.transition(
                    ctx,
                    &id,
                    Event::ReversalFailed,
                    None,
                    Some(message.clone()),
                    With::ReversalFailed {
                        reversal_id: reversal_id.to_string(),
                    },
                )
                .await?;
                Err::<(), _>(TaskError::non_retryable(message))
            }
        };
        let money_out = match self.money_out() {
            Ok(m) => m,
            Err(message) => return fail(message).await,
        };
        let key = ctx.idempotency_key();
        let built = payment_initiation(&row, key.clone()).and_then(|initiation| {
            Ok(PaymentReversal {
                id: reversal.id.clone(),
                reference: reversal.reference.clone(),
                initiation,
                payment_reference: row
                    .payments
                    .first()
                    .and_then(|p| PaymentKey::parse(&p.payment_id).ok())
                    .map(|k| k.reference),
                amount: Amount::payment("amount", &reversal.amount).map_err(|e| e.to_string())?,
                asset: reversal.asset.clone(),
                description: reversal.description.clone(),
                metadata: string_map(reversal.metadata.as_ref()),
                idempotency_key: key,
            })
        });
        let request = match built {
            Ok(r) => r,
            Err(message) => return fail(message).await,
        };
        match money_out.reverse_payment(ctx, &request).await {
            Ok(outcome) => {
                let ingest = outcome
                    .payment
                    .map(|p| ingest_one(&row.connector_id, p).map(|(i, _)| Box::new(i)))
                    .transpose()?;
                self.transition(
                    ctx,
                    &id,
                    Event::ReversedFully,
                    None,
                    None,
                    With::ReversalDone {
                        reversal_id: reversal_id.to_string(),
                        ingest,
                    },
                )
                .await?;
                Ok(())
            }
            Err(TaskError::Retryable(message)) => Err(TaskError::Retryable(message)),
            Err(e) => fail(e.to_string()).await,
        }
    }
}

fn string_map(value: Option<&Value>) -> BTreeMap<String, String> {
    value
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// What the connector sees of a stored initiation.
fn payment_initiation(row: &InitiationRow, key: String) -> Result<PaymentInitiation, String> {
    let account = |id: &str| {
        AccountKey::parse(id)
            .map(|k| k.reference)
            .map_err(|e| e.to_string())
    };
    Ok(PaymentInitiation {
        id: row.id.clone(),
        reference: row.reference.clone(),
        initiation_type: InitiationType::parse(&row.initiation_type)
            .ok_or_else(|| format!("unknown type {:?}", row.initiation_type))?,
        amount: Amount::payment("amount", &row.amount).map_err(|e| e.to_string())?,
        asset: row.asset.clone(),
        source_account: row.source_account_id.as_deref().map(account).transpose()?,
        destination_account: account(&row.destination_account_id)?,
        description: row.description.clone(),
        metadata: string_map(row.metadata.as_ref()),
        created_at: row.created_at,
        attempt: u32::try_from(row.attempt).unwrap_or(0),
        idempotency_key: key,
    })
}

/// The ingest of one payment the connector reported, and its id.
fn ingest_one(
    connector_id: &str,
    payment: PaymentData,
) -> Result<(IngestBatch, String), TaskError> {
    let connector =
        ConnectorKey::parse(connector_id).map_err(|e| TaskError::non_retryable(e.to_string()))?;
    let payment_id = PaymentKey {
        connector: connector.clone(),
        reference: payment.reference.clone(),
        payment_type: payment.payment_type.as_str().to_string(),
    }
    .id();
    let batch = Batch {
        payments: vec![payment],
        ..Batch::default()
    };
    Ok((IngestBatch { connector, batch }, payment_id))
}

/// When an initiation scheduled at `scheduled_at` runs: now, or at that time.
pub fn due(scheduled_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (scheduled_at > now).then_some(scheduled_at)
}
