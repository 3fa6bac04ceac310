//! Sending an initiation or a reversal from the API: the transition that asks for it (a
//! compare-and-set, so of two concurrent requests one acts and the other gets a 400 naming
//! the status), then the connector's task, scheduled through `Runtime::call_connector` —
//! RUN_NOW_SYNC (the answer waits for the outcome; RUN_NOW while the connector is paused) or
//! RUN_SCHEDULED_AT a future `scheduledAt`, RESTART_IF_NOT_ACTIVE, `on_interrupt = FAIL`. A connector without money
//! out, or an asset outside its currencies, fails the initiation with that reason and
//! answers 400.

use chrono::{DateTime, Utc};

use crate::api::AppState;
use crate::api::error::{ApiError, ErrorCode};
use crate::money_out::descriptor::MoneyOutTask;
use crate::money_out::machine::Event;
use crate::money_out::task::due;
use crate::sdk::money_out::check_supported;
use crate::sdk::{Restart, Schedule, ScheduleOptions};
use crate::storage::commands::transfers::{NewReversal, Transition, Transitioned, With};

/// The answer of a transition, as the API gives it.
pub fn answered(id: &str, done: Transitioned) -> Result<i32, ApiError> {
    match done {
        Transitioned::Done { attempt, .. } => Ok(attempt),
        Transitioned::Refused(refused) => Err(ApiError::validation(refused.to_string())),
        Transitioned::OtherAttempt { current } => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("transfer initiation {id} changed meanwhile (now on attempt {current})"),
        )),
        Transitioned::NotFound => Err(ApiError::not_found(format!(
            "transfer initiation {id} not found"
        ))),
        Transitioned::AmountExceeds { left } => Err(ApiError::validation(format!(
            "amount: the reversal is greater than what is left to reverse ({left})"
        ))),
    }
}

/// Writes `event` for initiation `id` (its own error, and what goes with it).
pub async fn transition(
    state: &AppState,
    id: &str,
    event: Event,
    attempt: Option<i32>,
    error: Option<String>,
    with: With,
) -> Result<i32, ApiError> {
    let done = state
        .storage
        .write(Transition {
            id: id.to_string(),
            event,
            attempt,
            error,
            at: Utc::now(),
            with,
        })
        .await?;
    answered(id, done)
}

/// What the connector call found.
enum Dispatched {
    Scheduled,
    NotSupported,
    Unsupported(String),
}

/// The send's options: at `scheduled_at` when it is in the future; otherwise now, the answer
/// waiting for the outcome — unless the connector is paused, where the run waits for the
/// resume and the answer does not.
async fn options(
    state: &AppState,
    connector_id: &str,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<ScheduleOptions, ApiError> {
    let paused = crate::storage::queries::connectors::get(state.storage.pool(), connector_id)
        .await?
        .is_some_and(|c| !c.enabled);
    let schedule = match scheduled_at.and_then(|at| due(at, Utc::now())) {
        Some(at) => Schedule::RunScheduledAt(at),
        None if paused => Schedule::RunNow,
        None => Schedule::RunNowSync,
    };
    Ok(ScheduleOptions::new(schedule, Restart::IfNotActive).fail_on_interrupt())
}

/// Schedules `task` on `connector_id` once its asset is checked.
async fn dispatch(
    state: &AppState,
    connector_id: &str,
    asset: &str,
    task: MoneyOutTask,
    options: ScheduleOptions,
) -> Result<Dispatched, ApiError> {
    let asset = asset.to_string();
    let descriptor = task.to_value();
    let found = state
        .runtime
        .call_connector(connector_id, move |connector, ctx| {
            Box::pin(async move {
                let supported = match connector.money_out() {
                    None => return Ok(Dispatched::NotSupported),
                    Some(money_out) => money_out.supported_currencies(),
                };
                if let Err(e) = check_supported(&supported, &asset) {
                    return Ok(Dispatched::Unsupported(e.to_string()));
                }
                // The run's own outcome is the initiation's status: a failed run is not an
                // error of the request that asked for it.
                if let Err(e) = ctx.scheduler().schedule(&descriptor, options).await {
                    tracing::info!(error = %e, "money-out run ended with an error");
                }
                Ok(Dispatched::Scheduled)
            })
        })
        .await?;
    Ok(found)
}

/// Whether `connector_id` has the money-out capability (checked before anything is stored).
pub async fn capable(state: &AppState, connector_id: &str) -> Result<(), ApiError> {
    let capable = state
        .runtime
        .call_connector(connector_id, |connector, _| {
            Box::pin(async move { Ok(connector.money_out().is_some()) })
        })
        .await?;
    if capable {
        Ok(())
    } else {
        Err(ApiError::capability_not_supported(
            connector_id,
            "money out (transfer initiations)",
        ))
    }
}

/// Approves (`Event::Approve`) or retries (`Event::Retry`) initiation `id`, then sends the
/// new attempt.
pub async fn send(
    state: &AppState,
    id: &str,
    connector_id: &str,
    asset: &str,
    attempt: i32,
    event: Event,
    scheduled_at: Option<DateTime<Utc>>,
) -> Result<(), ApiError> {
    let task = MoneyOutTask::Initiate {
        initiation: id.to_string(),
        attempt: attempt + 1,
    };
    let task_id = task.task_id(connector_id);
    let attempt = transition(
        state,
        id,
        event,
        Some(attempt),
        None,
        With::NewAttempt { task_id },
    )
    .await?;
    let dispatched = match options(state, connector_id, scheduled_at).await {
        Ok(options) => dispatch(state, connector_id, asset, task, options).await,
        Err(e) => Err(e),
    };
    let failed = match dispatched {
        Ok(Dispatched::Scheduled) => return Ok(()),
        Ok(Dispatched::NotSupported) => {
            ApiError::capability_not_supported(connector_id, "money out (transfer initiations)")
        }
        Ok(Dispatched::Unsupported(reason)) => ApiError::validation(reason),
        Err(e) => e,
    };
    // Not scheduled: failed only if its run never started (NotSent), so a retry cannot send
    // twice; a run that did start ends it itself (or, interrupted, "outcome unknown" at boot).
    unscheduled(
        state,
        id,
        Event::NotSent,
        Some(attempt),
        &failed,
        With::Nothing,
    )
    .await?;
    Err(failed)
}

/// Ends an attempt (or reversal) whose task could not be scheduled. Another writer may have
/// ended it meanwhile (a resume fails the approvals and retries whose task is not recorded
/// yet): that refusal is not the answer, which stays why this request could not send it.
async fn unscheduled(
    state: &AppState,
    id: &str,
    event: Event,
    attempt: Option<i32>,
    failed: &ApiError,
    with: With,
) -> Result<(), ApiError> {
    let done = state
        .storage
        .write(Transition {
            id: id.to_string(),
            event,
            attempt,
            error: Some(failed.message.clone()),
            at: Utc::now(),
            with,
        })
        .await?;
    if !matches!(done, Transitioned::Done { .. }) {
        tracing::info!(initiation = %id, ?done, "the unscheduled send had already ended");
    }
    Ok(())
}

/// Asks for `reversal` of initiation `id`, then sends it.
pub async fn reverse(
    state: &AppState,
    id: &str,
    asset: &str,
    reversal: NewReversal,
) -> Result<(), ApiError> {
    let task = MoneyOutTask::Reverse {
        reversal: reversal.id.clone(),
    };
    let connector_id = reversal.connector_id.clone();
    let reversal_id = reversal.id.clone();
    transition(
        state,
        id,
        Event::Reverse,
        None,
        None,
        With::Reversal(Box::new(reversal)),
    )
    .await?;
    let dispatched = match options(state, &connector_id, None).await {
        Ok(options) => dispatch(state, &connector_id, asset, task, options).await,
        Err(e) => Err(e),
    };
    let failed = match dispatched {
        Ok(Dispatched::Scheduled) => return Ok(()),
        Ok(Dispatched::NotSupported) => {
            ApiError::capability_not_supported(&connector_id, "money out (transfer initiations)")
        }
        Ok(Dispatched::Unsupported(reason)) => ApiError::validation(reason),
        Err(e) => e,
    };
    unscheduled(
        state,
        id,
        Event::NotSent,
        None,
        &failed,
        With::ReversalFailed { reversal_id },
    )
    .await?;
    Err(failed)
}
