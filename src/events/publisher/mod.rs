//! Publishers: each one an actor that reads the outbox in order from its own durable cursor,
//! hands the events to its [`Sink`] (NATS JetStream, a webhook endpoint …), and moves the
//! cursor only once the sink has them. A crash between the two re-sends what was not yet
//! marked: delivery is at least once, a duplicate carries the same event id.
//!
//! The loop's decisions are the pure [`machine::Reader`]; [`actor::Publisher`] only performs
//! them (reads, the sink, the cursor write through the storage actor, timers).

pub mod actor;
pub mod machine;

use futures::future::LocalBoxFuture;

use crate::storage::queries::events::StoredEvent;

pub use actor::{Publisher, PublisherOptions, StopPublisher};

/// Why a sink could not take a batch; the publisher retries the same batch with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Where a publisher sends events. Connector code never sees it: this is the runtime's side.
pub trait Sink: 'static {
    /// Sends `events` (in order, all after the cursor). `Ok` means every one of them is
    /// delivered, or given up on for good and recorded as such: the cursor moves past them.
    /// `Err` means none may be assumed delivered: the same events come again after a backoff.
    fn deliver<'a>(
        &'a mut self,
        events: &'a [StoredEvent],
    ) -> LocalBoxFuture<'a, Result<(), SinkError>>;
}

/// Where a publisher without a cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// From the oldest event still in the outbox (NATS: everything is published).
    Oldest,
    /// After the newest event at start.
    Newest,
    /// Only from a cursor someone else created (a webhook config's, made active in the
    /// config's own transaction): without one the publisher stops, creating nothing.
    Saved,
}
