//! The publisher actor: performs the [`Reader`]'s steps — outbox reads on the pool, the sink,
//! cursor writes through the storage actor, waits — one after the other in one future owned
//! by the actor, so stopping the actor stops the loop. Its mailbox takes one message: stop.
//! One overlap: while a full batch (a backlog) is delivered, the next page is read ahead, and
//! the next read step takes it when it starts where that page does.

use actix::prelude::*;

use super::machine::{Reader, ReaderLimits, Step};
use super::{Sink, StartAt};
use crate::storage::commands::events::{AdvanceCursor, StartCursor};
use crate::storage::queries::events::{self as outbox, Page, StoredEvent};
use crate::storage::{StorageError, StorageHandle};

/// How a publisher is named, where it starts and how it reads.
#[derive(Debug, Clone)]
pub struct PublisherOptions {
    /// Its cursor's name (`nats`, `webhook:<config id>`), also its metrics label.
    pub name: String,
    /// Where it starts when it has no cursor yet.
    pub start_at: StartAt,
    /// Batch size, idle poll and failure backoff.
    pub limits: ReaderLimits,
}

/// One publisher: the outbox, in order, to one sink.
pub struct Publisher {
    run: Option<(Box<dyn Sink>, StorageHandle, PublisherOptions)>,
}

impl Publisher {
    /// Starts a publisher on the calling arbiter.
    pub fn start(
        storage: StorageHandle,
        sink: impl Sink,
        options: PublisherOptions,
    ) -> Addr<Publisher> {
        Publisher {
            run: Some((Box::new(sink), storage, options)),
        }
        .start()
    }
}

impl Actor for Publisher {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        if let Some((sink, storage, options)) = self.run.take() {
            ctx.spawn(run(sink, storage, options).into_actor(self));
        }
    }
}

/// Stops a publisher; what it delivered but had not yet recorded is delivered again by the
/// next one to start under its name.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopPublisher;

impl Handler<StopPublisher> for Publisher {
    type Result = ();

    fn handle(&mut self, _msg: StopPublisher, ctx: &mut Self::Context) {
        ctx.stop();
    }
}

/// Where the publisher starts: its saved cursor, else the oldest or newest event, saved at
/// once so that it holds back pruning (and a `Newest` start is not moved by a restart);
/// `None` for a [`StartAt::Saved`] publisher without a cursor.
async fn initial_cursor(
    storage: &StorageHandle,
    options: &PublisherOptions,
) -> Result<Option<i64>, StorageError> {
    if let Some(cursor) = outbox::cursor(storage.pool(), &options.name).await? {
        return Ok(Some(cursor));
    }
    let start = match options.start_at {
        StartAt::Oldest => 0,
        StartAt::Newest => outbox::head(storage.pool()).await?,
        StartAt::Saved => return Ok(None),
    };
    storage
        .write(StartCursor {
            publisher: options.name.clone(),
            position: start,
        })
        .await?;
    // Another start may have created it first: what is stored wins.
    Ok(Some(
        outbox::cursor(storage.pool(), &options.name)
            .await?
            .unwrap_or(start),
    ))
}

async fn run(mut sink: Box<dyn Sink>, storage: StorageHandle, options: PublisherOptions) {
    let name = options.name.as_str();
    let mut failures = 0u32;
    let cursor = loop {
        match initial_cursor(&storage, &options).await {
            Ok(Some(cursor)) => break cursor,
            Ok(None) => {
                tracing::info!(
                    publisher = name,
                    "publisher has no cursor (inactive): not started"
                );
                return;
            }
            Err(error) => {
                failures += 1;
                tracing::warn!(publisher = name, %error, "publisher cannot read its cursor");
                let delay = crate::runtime::policy::exponential_backoff(
                    options.limits.retry_initial,
                    options.limits.retry_max,
                    failures,
                    rand::random(),
                );
                tokio::time::sleep(delay).await;
            }
        }
    };
    tracing::info!(publisher = name, cursor, "publisher started");
    let mut reader = Reader::new(cursor, options.limits);
    let mut batch: Vec<StoredEvent> = Vec::new();
    let mut full = false;
    // After a full batch (a backlog), where the next page starts: it is read while the batch
    // is delivered, and kept as (where it starts, it) for the next read step.
    let mut read_ahead: Option<i64> = None;
    let mut prefetched: Option<(i64, Page)> = None;
    let mut step = reader.start();
    loop {
        step = match step {
            Step::Read { after, limit } => {
                let read = match prefetched.take() {
                    // Still what a read now would start with: the outbox only grows at its
                    // end (positions in commit order), and nothing after a cursor is pruned.
                    Some((at, page)) if at == after => Ok(page),
                    _ => outbox::after(storage.pool(), after, limit).await,
                };
                match read {
                    Ok(page) => {
                        full = page.full;
                        batch = page.events;
                        read_ahead = page.last.filter(|_| page.full);
                        record_backlog(&storage, name, after, &batch, full).await;
                        reader.read_done(page.last)
                    }
                    Err(error) => {
                        tracing::warn!(publisher = name, %error, "publisher cannot read the outbox");
                        reader.failed(rand::random())
                    }
                }
            }
            Step::Deliver => match deliver_and_prefetch(
                sink.as_mut(),
                &batch,
                &storage,
                read_ahead.map(|at| (at, options.limits.batch)),
                &mut prefetched,
            )
            .await
            {
                Ok(()) => {
                    metrics::counter!("tributary_events_published_total", "publisher" => name.to_string())
                        .increment(batch.len() as u64);
                    reader.delivered()
                }
                Err(error) => {
                    tracing::warn!(
                        publisher = name,
                        %error,
                        failures = reader.failures() + 1,
                        "publishing failed; the same events will be sent again"
                    );
                    reader.failed(rand::random())
                }
            },
            Step::Save { position } => {
                let advance = AdvanceCursor {
                    publisher: name.to_string(),
                    position,
                };
                match storage.write(advance).await {
                    Ok(()) => reader.saved(full),
                    Err(error) => {
                        tracing::warn!(publisher = name, %error, "publisher cannot save its cursor");
                        reader.failed(rand::random())
                    }
                }
            }
            Step::Wait(delay) => {
                tokio::time::sleep(delay).await;
                reader.waited()
            }
        };
    }
}

/// Delivers `batch`; with `ahead` (where the next page starts, its size), reads that page
/// meanwhile into `prefetched`, so the outbox query and the envelopes built from it overlap
/// the sink's work.
async fn deliver_and_prefetch(
    sink: &mut dyn Sink,
    batch: &[StoredEvent],
    storage: &StorageHandle,
    ahead: Option<(i64, i64)>,
    prefetched: &mut Option<(i64, Page)>,
) -> Result<(), super::SinkError> {
    let Some((next, limit)) = ahead else {
        return sink.deliver(batch).await;
    };
    let (delivered, page) = futures::join!(
        sink.deliver(batch),
        outbox::after(storage.pool(), next, limit)
    );
    // A failed read is read again when its turn comes.
    *prefetched = page.ok().map(|page| (next, page));
    delivered
}

/// The backlog gauge: events after the cursor at this read (the outbox head when the batch
/// was full, since more wait behind it).
async fn record_backlog(
    storage: &StorageHandle,
    name: &str,
    after: i64,
    batch: &[StoredEvent],
    full: bool,
) {
    let backlog = if full {
        match outbox::head(storage.pool()).await {
            Ok(head) => (head - after).max(0),
            Err(_) => return,
        }
    } else {
        batch.len() as i64
    };
    metrics::gauge!("tributary_events_backlog", "publisher" => name.to_string())
        .set(backlog as f64);
}
