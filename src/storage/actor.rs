//! The `Storage` actor: the single writer to PostgreSQL.
//!
//! Every write is a typed command ([`WriteCommand`]) sent as a [`Write`] message. Commands
//! queue while a transaction is in flight; the next transaction takes everything queued (up to
//! `batch_size`) — group commit — and each sender gets its own result only after the commit,
//! so an acknowledged write is durable.
//!
//! Merging: commands of a [`WriteCommand::MERGEABLE`] type queued in one batch are applied
//! together by one [`WriteCommand::apply_many`] call — one multi-row statement for a thousand
//! task updates or single-file ingests, not a thousand. A merged command moves forward to the
//! first command of its type in the batch; commands of one type keep their order. Writes queued
//! without waiting for each other are concurrent, so any order of different types is a valid
//! one; a sender that needs one write to follow another of a different type awaits the first.
//!
//! Failure isolation: a batch first runs optimistically as one plain transaction. If one
//! command fails, the batch is rolled back and run again with a savepoint around each command,
//! so the failing command gets its error and every other command still commits. If the commit
//! itself fails, every sender of the batch gets the error and nothing of the batch is applied.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use futures::future::{LocalBoxFuture, join_all};
use tokio::sync::oneshot;

use super::{Pool, StorageError};

/// The transaction a command runs in; prepared statements are cached per connection
/// (`tx.prepare_cached`), so a statement is parsed once per connection, not once per write.
pub type Tx<'a> = deadpool_postgres::Transaction<'a>;

/// A write the storage actor can apply inside its batch transaction.
///
/// `apply` may run twice (once optimistically, once isolated after another command failed),
/// always in a transaction that is rolled back in between, so it must not keep side effects
/// outside the database.
pub trait WriteCommand: Send + 'static {
    /// What the sender gets back after the commit.
    type Output: Send + 'static;

    /// Whether commands of this type queued in one batch are applied together, by one
    /// [`WriteCommand::apply_many`] call.
    const MERGEABLE: bool = false;

    /// The one statement this command runs, if it runs exactly one, once, through
    /// `tx.prepare_cached(sql)` as its first action. Such commands are pipelined: the actor
    /// prepares the statement beforehand, then sends a run of them without waiting for each
    /// answer, in order. Commands that return `None` run alone, one after the other.
    fn statement(&self) -> Option<&'static str> {
        None
    }

    /// Runs the command's statements in `tx`.
    fn apply(&self, tx: &Tx<'_>) -> impl Future<Output = Result<Self::Output, StorageError>>;

    /// Applies several commands of this type at once (for [`WriteCommand::MERGEABLE`] types),
    /// with one result per command, in order. `Ok` promises that a command whose own result is
    /// an error changed nothing; `Err` fails them all and leaves the transaction to be rolled
    /// back, after which each command runs alone through [`WriteCommand::apply`].
    fn apply_many(
        commands: &[&Self],
        tx: &Tx<'_>,
    ) -> impl Future<Output = Result<Vec<Result<Self::Output, StorageError>>, StorageError>>
    where
        Self: Sized,
    {
        async move {
            let mut outputs = Vec::with_capacity(commands.len());
            for command in commands {
                outputs.push(Ok(command.apply(tx).await?));
            }
            Ok(outputs)
        }
    }
}

/// The one result of a merged call made for a single command (how mergeable commands
/// implement [`WriteCommand::apply`]: one code path for one and many).
pub fn single<T>(results: Vec<Result<T, StorageError>>) -> Result<T, StorageError> {
    results
        .into_iter()
        .next()
        .unwrap_or(Err(StorageError::Stopped))
}

/// The message carrying a command to the actor.
pub struct Write<C: WriteCommand>(pub C);

impl<C: WriteCommand> Message for Write<C> {
    type Result = Result<C::Output, StorageError>;
}

/// Counters kept by the actor, read by tests and the metrics endpoint.
#[derive(Debug, Default)]
pub struct StorageStats {
    /// Transactions committed.
    pub transactions: AtomicU64,
    /// Commands acknowledged as committed.
    pub writes: AtomicU64,
    /// Commands that failed (their own error or their batch's).
    pub failed_writes: AtomicU64,
    /// Batches re-run with savepoints because one command failed.
    pub isolated_batches: AtomicU64,
    /// Commands applied by a merged call together with at least one other.
    pub merged_writes: AtomicU64,
    /// Time spent committing batches, in microseconds: against wall time, how busy the single
    /// writer is (near 100 %: the database is the bottleneck; far below: the writers are).
    pub busy_micros: AtomicU64,
}

/// A queued command with its reply channel, type-erased so one queue holds every kind.
trait PendingWrite: Any {
    /// The command's single pipelinable statement, if it has one.
    fn statement(&self) -> Option<&'static str>;
    /// The command's type, if commands of it are merged.
    fn merge_type(&self) -> Option<TypeId>;
    /// For downcasting the other members of a merged group.
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Runs the command, keeping its output for [`PendingWrite::finish`].
    fn apply<'a>(&'a mut self, tx: &'a Tx<'a>) -> LocalBoxFuture<'a, Result<(), StorageError>>;
    /// Runs this command and `others` (all of its type) with one merged call.
    fn apply_merged<'a>(
        &'a mut self,
        others: &'a mut [Box<dyn PendingWrite>],
        tx: &'a Tx<'a>,
    ) -> LocalBoxFuture<'a, Result<(), StorageError>>;
    /// Marks the command as failed by its own error.
    fn fail(&mut self, error: StorageError);
    /// Sends the outcome: the command's own result, or `batch_error` when the batch failed.
    fn finish(self: Box<Self>, batch_error: Option<StorageError>, stats: &StorageStats);
}

struct Pending<C: WriteCommand> {
    command: C,
    outcome: Option<Result<C::Output, StorageError>>,
    reply: oneshot::Sender<Result<C::Output, StorageError>>,
}

impl<C: WriteCommand> PendingWrite for Pending<C> {
    fn statement(&self) -> Option<&'static str> {
        self.command.statement()
    }

    fn merge_type(&self) -> Option<TypeId> {
        C::MERGEABLE.then(TypeId::of::<C>)
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn apply_merged<'a>(
        &'a mut self,
        others: &'a mut [Box<dyn PendingWrite>],
        tx: &'a Tx<'a>,
    ) -> LocalBoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let mut members: Vec<&mut Pending<C>> = vec![self];
            for other in others.iter_mut() {
                let other = other
                    .as_any_mut()
                    .downcast_mut::<Pending<C>>()
                    .ok_or_else(|| {
                        StorageError::Internal("a merged group mixes command types".into())
                    })?;
                members.push(other);
            }
            let commands: Vec<&C> = members.iter().map(|m| &m.command).collect();
            let results = C::apply_many(&commands, tx).await;
            drop(commands);
            match results {
                Ok(results) if results.len() == members.len() => {
                    for (member, result) in members.into_iter().zip(results) {
                        member.outcome = Some(result);
                    }
                    Ok(())
                }
                Ok(_) => Err(StorageError::Internal(
                    "a merged write returned the wrong number of results".into(),
                )),
                Err(e) => Err(e),
            }
        })
    }

    fn apply<'a>(&'a mut self, tx: &'a Tx<'a>) -> LocalBoxFuture<'a, Result<(), StorageError>> {
        Box::pin(async move {
            let output = self.command.apply(tx).await?;
            self.outcome = Some(Ok(output));
            Ok(())
        })
    }

    fn fail(&mut self, error: StorageError) {
        self.outcome = Some(Err(error));
    }

    fn finish(self: Box<Self>, batch_error: Option<StorageError>, stats: &StorageStats) {
        let outcome = match (batch_error, self.outcome) {
            (Some(e), _) => Err(e),
            (None, Some(outcome)) => outcome,
            (None, None) => Err(StorageError::Stopped),
        };
        let counter = if outcome.is_ok() {
            &stats.writes
        } else {
            &stats.failed_writes
        };
        counter.fetch_add(1, Ordering::Relaxed);
        // The sender may have given up waiting; the write is committed all the same.
        let _ = self.reply.send(outcome);
    }
}

/// The single-writer actor. Start it with [`StorageHandle::start`].
pub struct Storage {
    pool: Pool,
    batch_size: usize,
    linger: Duration,
    queue: VecDeque<Box<dyn PendingWrite>>,
    /// Whether commands append their events to the outbox (`events.enabled`).
    outbox: bool,
    /// A batch is being committed (or lingering); new writes wait for the next one.
    busy: bool,
    stats: Arc<StorageStats>,
}

impl Actor for Storage {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Writes queue up behind a slow commit; a larger mailbox keeps senders from blocking.
        ctx.set_mailbox_capacity(self.batch_size.max(16));
    }

    fn stopping(&mut self, _ctx: &mut Self::Context) -> Running {
        // Never drop queued writes: keep running until the queue is empty.
        if self.busy || !self.queue.is_empty() {
            Running::Continue
        } else {
            Running::Stop
        }
    }
}

impl<C: WriteCommand> Handler<Write<C>> for Storage {
    type Result = ResponseFuture<Result<C::Output, StorageError>>;

    fn handle(&mut self, msg: Write<C>, ctx: &mut Self::Context) -> Self::Result {
        let (reply, rx) = oneshot::channel();
        self.queue.push_back(Box::new(Pending {
            command: msg.0,
            outcome: None,
            reply,
        }));
        self.schedule_batch(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(StorageError::Stopped)) })
    }
}

/// Waits until every write queued before it is committed (used at shutdown).
pub struct Drain;

impl Message for Drain {
    type Result = ();
}

impl Handler<Drain> for Storage {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _msg: Drain, ctx: &mut Self::Context) -> Self::Result {
        // A no-op command queued last is acknowledged only after everything before it.
        let (reply, rx) = oneshot::channel();
        self.queue.push_back(Box::new(Pending {
            command: Noop,
            outcome: None,
            reply,
        }));
        self.schedule_batch(ctx);
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}

/// A command that writes nothing: a barrier for [`Drain`], and the inner write of a
/// [`crate::storage::commands::tasks::Fenced`] that only saves state.
#[derive(Debug, Clone, Copy)]
pub struct Noop;

impl WriteCommand for Noop {
    type Output = ();
    const MERGEABLE: bool = true;
    async fn apply(&self, _tx: &Tx<'_>) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Storage {
    /// Starts the next batch unless one is in flight (it will pick up the queue when done).
    fn schedule_batch(&mut self, ctx: &mut Context<Self>) {
        if self.busy || self.queue.is_empty() {
            return;
        }
        self.busy = true;
        if !self.linger.is_zero() && self.queue.len() < self.batch_size {
            ctx.run_later(self.linger, |act, ctx| act.commit_batch(ctx));
        } else {
            self.commit_batch(ctx);
        }
    }

    fn commit_batch(&mut self, ctx: &mut Context<Self>) {
        let take = self.queue.len().min(self.batch_size);
        let batch: Vec<Box<dyn PendingWrite>> = self.queue.drain(..take).collect();
        let pool = self.pool.clone();
        let stats = self.stats.clone();
        let outbox = self.outbox;
        let work = async move {
            let (started, writes) = (std::time::Instant::now(), batch.len());
            crate::events::with_outbox(outbox, run_batch(&pool, batch, &stats)).await;
            let seconds = started.elapsed().as_secs_f64();
            stats
                .busy_micros
                .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
            metrics::histogram!("tributary_storage_batch_seconds").record(seconds);
            metrics::histogram!("tributary_storage_batch_writes").record(writes as f64);
            tracing::trace!(writes, ms = seconds * 1e3, "storage batch committed");
        };
        ctx.spawn(work.into_actor(self).map(|(), act, ctx| {
            act.busy = false;
            act.schedule_batch(ctx);
        }));
    }
}

/// Commits one batch and answers every sender.
async fn run_batch(pool: &Pool, mut batch: Vec<Box<dyn PendingWrite>>, stats: &StorageStats) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(e) => {
            let error = StorageError::pool("committing a batch", e);
            tracing::warn!(%error, writes = batch.len(), "storage batch failed");
            batch
                .into_iter()
                .for_each(|p| p.finish(Some(error.clone()), stats));
            return;
        }
    };
    group_mergeable(&mut batch);
    let mut result = apply_all(&mut client, &mut batch, false, stats).await;
    if let Err(BatchFailure::Command) = result {
        if batch.len() > 1 {
            stats.isolated_batches.fetch_add(1, Ordering::Relaxed);
            result = apply_all(&mut client, &mut batch, true, stats).await;
        } else {
            // A lone failing command: its own error is its outcome.
            result = Ok(());
        }
    }
    let batch_error = match result {
        Ok(()) => None,
        Err(BatchFailure::Command) => None,
        Err(BatchFailure::Transaction(e)) => {
            tracing::warn!(error = %e, writes = batch.len(), "storage batch failed");
            Some(e)
        }
    };
    batch
        .into_iter()
        .for_each(|p| p.finish(batch_error.clone(), stats));
}

/// Moves each command of a mergeable type next to the first command of its type, keeping
/// every other order (a stable sort on the index of the group's first member).
fn group_mergeable(batch: &mut Vec<Box<dyn PendingWrite>>) {
    let mut first: HashMap<TypeId, usize> = HashMap::new();
    let mut keyed: Vec<(usize, Box<dyn PendingWrite>)> = batch
        .drain(..)
        .enumerate()
        .map(|(i, pending)| match pending.merge_type() {
            Some(kind) => (*first.entry(kind).or_insert(i), pending),
            None => (i, pending),
        })
        .collect();
    keyed.sort_by_key(|(key, _)| *key);
    batch.extend(keyed.into_iter().map(|(_, pending)| pending));
}

enum BatchFailure {
    /// A command failed (its error is recorded on it); the transaction was rolled back.
    Command,
    /// The transaction itself failed (connection, commit); nothing was applied.
    Transaction(StorageError),
}

/// Applies every command in one transaction; with `isolate`, each inside its own savepoint so
/// a failing command is rolled back alone.
async fn apply_all(
    client: &mut deadpool_postgres::Client,
    batch: &mut [Box<dyn PendingWrite>],
    isolate: bool,
    stats: &StorageStats,
) -> Result<(), BatchFailure> {
    let tx_err = |e| BatchFailure::Transaction(StorageError::db("committing a batch", e));
    let mut tx = client.transaction().await.map_err(tx_err)?;
    if isolate {
        let mut committed_any = false;
        for pending in batch.iter_mut() {
            let savepoint = tx.savepoint("write").await.map_err(tx_err)?;
            match pending.apply(&savepoint).await {
                Ok(()) => {
                    savepoint.commit().await.map_err(tx_err)?;
                    committed_any = true;
                }
                // A command's error, even a retryable one (a balance whose account is not
                // ingested yet), is its own; only a connection that cannot even roll back the
                // savepoint fails the whole batch.
                Err(e) => match savepoint.rollback().await {
                    Ok(()) => pending.fail(e),
                    Err(_) if e.is_transient() => return Err(BatchFailure::Transaction(e)),
                    Err(rollback) => return Err(tx_err(rollback)),
                },
            }
        }
        if !committed_any {
            return Ok(());
        }
    } else {
        let mut rest = &mut batch[..];
        while let Some(first) = rest.first() {
            // A group of one mergeable type is applied by one merged call.
            if let Some(kind) = first.merge_type() {
                let n = rest
                    .iter()
                    .take_while(|p| p.merge_type() == Some(kind))
                    .count();
                let (group, later) = rest.split_at_mut(n);
                rest = later;
                let result = match group.split_first_mut() {
                    Some((head, others)) => head.apply_merged(others, &tx).await,
                    None => Ok(()),
                };
                if let Err(e) = result {
                    group.iter_mut().for_each(|p| p.fail(e.clone()));
                    return Err(BatchFailure::Command);
                }
                if n > 1 {
                    stats.merged_writes.fetch_add(n as u64, Ordering::Relaxed);
                }
                continue;
            }
            // A run of single-statement commands is pipelined; any other command runs alone.
            let run = rest
                .iter()
                .take_while(|p| p.statement().is_some() && p.merge_type().is_none())
                .count()
                .max(1);
            let (now, later) = rest.split_at_mut(run);
            rest = later;
            if run > 1 {
                // Prepared first, so each command sends its statement on its first poll and the
                // statements reach the server in queue order.
                let mut prepared: Vec<&'static str> = Vec::new();
                for sql in now.iter().filter_map(|p| p.statement()) {
                    if !prepared.contains(&sql) {
                        tx.prepare_cached(sql).await.map_err(tx_err)?;
                        prepared.push(sql);
                    }
                }
            }
            let tx = &tx;
            let results = join_all(now.iter_mut().map(|p| p.apply(tx))).await;
            let mut failed = false;
            for (pending, result) in now.iter_mut().zip(results) {
                if let Err(e) = result {
                    pending.fail(e);
                    failed = true;
                }
            }
            if failed {
                // The rollback happens when `tx` is dropped.
                return Err(BatchFailure::Command);
            }
        }
    }
    tx.commit().await.map_err(tx_err)?;
    stats.transactions.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// A cheap, clonable handle to the storage actor and the read pool.
#[derive(Clone)]
pub struct StorageHandle {
    addr: Addr<Storage>,
    pool: Pool,
    stats: Arc<StorageStats>,
}

impl StorageHandle {
    /// Starts the storage actor on the calling arbiter: the runtime's task actors and the
    /// writer exchange a few messages per task run, and on one thread these cost no
    /// cross-thread wake-up (a thread of its own made single-payment files 25–30 % slower on
    /// 2 cores; docs/performance.md). Must be called inside an actix System.
    pub fn start(pool: Pool, batch_size: usize, linger: Duration) -> Self {
        Self::start_with_outbox(pool, batch_size, linger, true)
    }

    /// [`StorageHandle::start`], with the events outbox written or not (`events.enabled`).
    pub fn start_with_outbox(
        pool: Pool,
        batch_size: usize,
        linger: Duration,
        outbox: bool,
    ) -> Self {
        let stats = Arc::new(StorageStats::default());
        let actor_pool = pool.clone();
        let actor_stats = stats.clone();
        let addr = Storage::create(move |_| Storage {
            pool: actor_pool,
            batch_size: batch_size.max(1),
            linger,
            queue: VecDeque::new(),
            outbox,
            busy: false,
            stats: actor_stats,
        });
        Self { addr, pool, stats }
    }

    /// Sends a write and waits until it is committed (or has failed).
    pub async fn write<C: WriteCommand>(&self, command: C) -> Result<C::Output, StorageError> {
        self.addr
            .send(Write(command))
            .await
            .map_err(|_| StorageError::Stopped)?
    }

    /// Queues a write without waiting for it. Writes of one type apply in the order they were
    /// sent (writes of different types may be reordered within a batch), so an intermediate
    /// status write can be queued this way ahead of the final status write it may share a
    /// transaction with. Its failure is only logged.
    pub fn write_detached<C: WriteCommand>(&self, command: C) {
        self.addr.do_send(Write(command));
    }

    /// Waits until every write sent before this call is committed or failed.
    pub async fn drain(&self) {
        let _ = self.addr.send(Drain).await;
    }

    /// The pool, for reads.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The actor's counters.
    pub fn stats(&self) -> &StorageStats {
        &self.stats
    }
}
