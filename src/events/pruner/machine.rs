//! The pruner's decisions, without I/O: after each prune command, prune again at once (the
//! chunk was full: there may be more), wait for the next round, or stop (the storage actor is
//! gone: the service is shutting down).

use std::time::Duration;

/// How the pruner paces itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneLimits {
    /// Between rounds (`events.prune_interval`).
    pub interval: Duration,
    /// The most events one command deletes.
    pub chunk: u64,
}

/// What the last prune command did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It deleted this many events.
    Pruned(u64),
    /// It failed (the database is unreachable …): try again next round.
    Failed,
    /// The storage actor has stopped.
    Stopped,
}

/// What the pruner does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Run the prune command now.
    Prune,
    /// Sleep, then run it.
    Wait(Duration),
    /// End the loop.
    Stop,
}

/// The first step: a round's wait, so that pruning never competes with the boot.
pub fn first(limits: PruneLimits) -> Step {
    Step::Wait(limits.interval)
}

/// The step after `outcome`.
pub fn next(limits: PruneLimits, outcome: Outcome) -> Step {
    match outcome {
        Outcome::Pruned(n) if n >= limits.chunk => Step::Prune,
        Outcome::Pruned(_) | Outcome::Failed => Step::Wait(limits.interval),
        Outcome::Stopped => Step::Stop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: PruneLimits = PruneLimits {
        interval: Duration::from_secs(60),
        chunk: 10_000,
    };

    #[test]
    fn a_full_chunk_prunes_again_at_once_a_partial_one_waits() {
        assert_eq!(first(LIMITS), Step::Wait(LIMITS.interval));
        assert_eq!(next(LIMITS, Outcome::Pruned(10_000)), Step::Prune);
        assert_eq!(
            next(LIMITS, Outcome::Pruned(9_999)),
            Step::Wait(LIMITS.interval)
        );
        assert_eq!(
            next(LIMITS, Outcome::Pruned(0)),
            Step::Wait(LIMITS.interval)
        );
    }

    #[test]
    fn a_failure_waits_a_round_and_a_stopped_storage_stops() {
        assert_eq!(next(LIMITS, Outcome::Failed), Step::Wait(LIMITS.interval));
        assert_eq!(next(LIMITS, Outcome::Stopped), Step::Stop);
    }
}
