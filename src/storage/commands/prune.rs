//! Pruning the outbox: deleting, a bounded chunk at a time, the events every publisher has
//! passed once they are older than the retention (`events.retention`). The pruner
//! ([`crate::events::pruner`]) issues it periodically.

use std::time::Duration;

use crate::storage::{StorageError, Tx, WriteCommand};

/// Deletes up to `chunk` of the oldest events that every publisher has passed (position at
/// or below the smallest cursor; every event when there is no cursor) and that are older than
/// `retention`. Returns how many it deleted.
#[derive(Debug, Clone)]
pub struct PruneEvents {
    /// How long an event is kept at least.
    pub retention: Duration,
    /// The most events one command deletes (so it never holds the single writer long).
    pub chunk: i64,
}

// Only the first `chunk` events by position are looked at (a primary-key range, however long
// the outbox): `created_at` grows with `position` (one writer, appending in commit order), so
// once an event is too young the ones after it are too, up to a transaction's duration, which
// only delays their pruning to a later round. The cursor bound is exact.
const PRUNE: &str = "WITH head AS (
        SELECT position, created_at FROM events
        WHERE position <= COALESCE((SELECT min(position) FROM event_cursors),
                                   9223372036854775807)
        ORDER BY position LIMIT $2
    )
    DELETE FROM events e USING head h
    WHERE e.position = h.position AND h.created_at < now() - make_interval(secs => $1)";

impl WriteCommand for PruneEvents {
    type Output = u64;

    fn statement(&self) -> Option<&'static str> {
        Some(PRUNE)
    }

    async fn apply(&self, tx: &Tx<'_>) -> Result<u64, StorageError> {
        let context = "pruning the outbox";
        let stmt = tx
            .prepare_cached(PRUNE)
            .await
            .map_err(|e| StorageError::db(context, e))?;
        tx.execute(&stmt, &[&self.retention.as_secs_f64(), &self.chunk])
            .await
            .map_err(|e| StorageError::db(context, e))
    }
}
