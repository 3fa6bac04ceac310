//! Time behind a trait, so due times and backoff are testable without sleeping.
//!
//! tokio's paused clock is not enough: it auto-advances while a task awaits a database round
//! trip, and moves neither `Utc::now()` nor PostgreSQL's `now()`. Every due time, backoff and
//! timestamp the runtime computes comes from a [`Clock`].

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// A source of "now" and of timers.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
    /// Resolves once `now() >= deadline`.
    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()>;
}

/// The wall clock, with tokio timers.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let wait = (deadline - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when a test advances it.
#[derive(Clone)]
pub struct TestClock {
    inner: Arc<Mutex<TestClockState>>,
}

struct TestClockState {
    now: DateTime<Utc>,
    sleepers: Vec<(DateTime<Utc>, oneshot::Sender<()>)>,
}

impl TestClock {
    /// A clock standing at `now`.
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(TestClockState {
                now,
                sleepers: Vec::new(),
            })),
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    pub fn advance(&self, by: chrono::Duration) {
        let mut state = self.lock();
        state.now += by;
        let now = state.now;
        let (due, waiting): (Vec<_>, Vec<_>) =
            state.sleepers.drain(..).partition(|(d, _)| *d <= now);
        state.sleepers = waiting;
        drop(state);
        for (_, wake) in due {
            let _ = wake.send(());
        }
    }

    /// The deadlines of the timers currently waiting (dropped timers excluded).
    pub fn pending_deadlines(&self) -> Vec<DateTime<Utc>> {
        let mut state = self.lock();
        state.sleepers.retain(|(_, tx)| !tx.is_closed());
        let mut deadlines: Vec<_> = state.sleepers.iter().map(|(d, _)| *d).collect();
        deadlines.sort();
        deadlines
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TestClockState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        self.lock().now
    }

    fn sleep_until(&self, deadline: DateTime<Utc>) -> BoxFuture<'static, ()> {
        let mut state = self.lock();
        if deadline <= state.now {
            return Box::pin(async {});
        }
        let (tx, rx) = oneshot::channel();
        state.sleepers.push((deadline, tx));
        Box::pin(async move {
            let _ = rx.await;
        })
    }
}
