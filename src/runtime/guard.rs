//! The one place connector code runs: spawned on its own, so that a panic in a task body or a
//! hook becomes an ordinary failure instead of taking an actor (or the service) down. actix
//! does not catch panics in handlers; a spawned future's `JoinHandle` reports them.

use std::future::Future;

use tokio::task::AbortHandle;

use crate::sdk::TaskError;

/// Spawns `work` and returns its outcome-to-be (a panic as `TaskError::Failed("<what>
/// panicked: <message>")`, an abort as `Cancelled`) and the handle that drops it.
pub fn spawn<F, T>(
    what: &'static str,
    work: F,
) -> (
    impl Future<Output = Result<T, TaskError>> + 'static,
    AbortHandle,
)
where
    F: Future<Output = Result<T, TaskError>> + 'static,
    T: 'static,
{
    let handle = actix_rt::spawn(work);
    let abort = handle.abort_handle();
    let outcome = async move {
        match handle.await {
            Ok(outcome) => outcome,
            Err(e) if e.is_panic() => Err(TaskError::Failed(format!(
                "{what} panicked: {}",
                panic_message(e.into_panic())
            ))),
            Err(_) => Err(TaskError::Cancelled),
        }
    };
    (outcome, abort)
}

/// The text of a panic payload.
fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}
