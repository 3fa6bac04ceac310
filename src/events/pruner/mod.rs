//! The outbox pruner: an actor that, every `events.prune_interval`, deletes the events every
//! publisher has passed once they are older than `events.retention`, through the storage
//! actor, a bounded chunk per command ([`PruneEvents`]) so that it never holds the single
//! writer long. Its pacing is the pure [`machine`]; its mailbox takes one message: stop. It
//! also stops when the service's shutdown token is cancelled, so that it lets go of the
//! storage handle (and its pool) with the rest of the service.

pub mod machine;

use actix::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::settings::EventsSettings;
use crate::storage::commands::prune::PruneEvents;
use crate::storage::{StorageError, StorageHandle};
use machine::{Outcome, PruneLimits, Step};

/// The most events one prune command deletes.
pub const CHUNK: u64 = 10_000;

/// The pruner actor.
pub struct Pruner {
    run: Option<(StorageHandle, PruneEvents, PruneLimits, CancellationToken)>,
}

/// Starts the pruner of the service's outbox (on the calling arbiter); it stops when
/// `shutdown` is cancelled or the storage actor has stopped.
pub fn start(
    storage: StorageHandle,
    settings: &EventsSettings,
    shutdown: CancellationToken,
) -> Addr<Pruner> {
    Pruner::start_with(
        storage,
        PruneEvents {
            retention: settings.retention,
            chunk: CHUNK as i64,
        },
        PruneLimits {
            interval: settings.prune_interval,
            chunk: CHUNK,
        },
        shutdown,
    )
}

impl Pruner {
    /// Starts a pruner issuing `command` paced by `limits` (tests use small ones) until
    /// `shutdown` is cancelled.
    pub fn start_with(
        storage: StorageHandle,
        command: PruneEvents,
        limits: PruneLimits,
        shutdown: CancellationToken,
    ) -> Addr<Pruner> {
        Pruner {
            run: Some((storage, command, limits, shutdown)),
        }
        .start()
    }
}

impl Actor for Pruner {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some((storage, command, limits, shutdown)) = self.run.take() {
            let work = async move {
                tokio::select! {
                    () = run(storage, command, limits) => {}
                    () = shutdown.cancelled() => {}
                }
            };
            ctx.spawn(work.into_actor(self));
        }
    }
}

/// Stops the pruner.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPruner;

impl Handler<StopPruner> for Pruner {
    type Result = ();

    fn handle(&mut self, _msg: StopPruner, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Performs the machine's steps until it says stop.
async fn run(storage: StorageHandle, command: PruneEvents, limits: PruneLimits) {
    let mut step = machine::first(limits);
    loop {
        match step {
            Step::Wait(pause) => {
                tokio::time::sleep(pause).await;
                step = Step::Prune;
            }
            Step::Prune => {
                let outcome = match storage.write(command.clone()).await {
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(events = n, "outbox pruned");
                        }
                        Outcome::Pruned(n)
                    }
                    Err(StorageError::Stopped) => Outcome::Stopped,
                    Err(error) => {
                        tracing::warn!(%error, "pruning the outbox failed; next round retries");
                        Outcome::Failed
                    }
                };
                step = machine::next(limits, outcome);
            }
            Step::Stop => return,
        }
    }
}
