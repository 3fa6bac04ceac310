//! The publisher loop as a pure state machine: what to do next after each outcome. No I/O,
//! no clock: the actor feeds outcomes (and the jitter) and performs the [`Step`]s.

use std::time::Duration;

use crate::runtime::policy::exponential_backoff;

/// What the actor does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read up to `limit` events after `after`.
    Read {
        /// The cursor.
        after: i64,
        /// The batch size.
        limit: i64,
    },
    /// Hand the events just read to the sink.
    Deliver,
    /// Record the cursor at `position`, durably.
    Save {
        /// The last position delivered.
        position: i64,
    },
    /// Wait, then read again.
    Wait(Duration),
}

/// Timing and batch size of a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderLimits {
    /// The most events handed to the sink at once.
    pub batch: i64,
    /// How long to wait before reading again when the outbox had nothing new.
    pub idle_poll: Duration,
    /// The first delay after a failure (doubled at each failure in a row).
    pub retry_initial: Duration,
    /// The largest delay after failures.
    pub retry_max: Duration,
}

/// A reader's state: its cursor, and how many failures in a row it has seen.
#[derive(Debug, Clone, PartialEq)]
pub struct Reader {
    cursor: i64,
    /// The last position of the batch being delivered or saved.
    pending: Option<i64>,
    failures: u32,
    limits: ReaderLimits,
}

impl Reader {
    /// A reader starting after `cursor`.
    pub fn new(cursor: i64, limits: ReaderLimits) -> Self {
        Self {
            cursor,
            pending: None,
            failures: 0,
            limits,
        }
    }

    /// The cursor: every event at or below it is delivered and saved.
    pub fn cursor(&self) -> i64 {
        self.cursor
    }

    /// Failures in a row (0 when the last step succeeded).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The first step.
    pub fn start(&self) -> Step {
        self.read()
    }

    fn read(&self) -> Step {
        Step::Read {
            after: self.cursor,
            limit: self.limits.batch,
        }
    }

    /// A read returned events up to `last` (None: nothing new).
    pub fn read_done(&mut self, last: Option<i64>) -> Step {
        self.failures = 0;
        match last {
            Some(last) if last > self.cursor => {
                self.pending = Some(last);
                Step::Deliver
            }
            _ => Step::Wait(self.limits.idle_poll),
        }
    }

    /// The sink took the batch.
    pub fn delivered(&mut self) -> Step {
        self.failures = 0;
        match self.pending {
            Some(position) => Step::Save { position },
            None => self.read(),
        }
    }

    /// The cursor write committed. A full batch means more may be waiting: read at once.
    pub fn saved(&mut self, batch_was_full: bool) -> Step {
        if let Some(position) = self.pending.take() {
            self.cursor = self.cursor.max(position);
        }
        self.failures = 0;
        if batch_was_full {
            self.read()
        } else {
            Step::Wait(self.limits.idle_poll)
        }
    }

    /// A read, a delivery or the cursor write failed: the same batch is read again after a
    /// backoff (`jitter` in 0..1). Nothing past the saved cursor counts as delivered.
    pub fn failed(&mut self, jitter: f64) -> Step {
        self.pending = None;
        self.failures = self.failures.saturating_add(1);
        Step::Wait(exponential_backoff(
            self.limits.retry_initial,
            self.limits.retry_max,
            self.failures,
            jitter,
        ))
    }

    /// After a wait: read again from the cursor.
    pub fn waited(&self) -> Step {
        self.read()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ReaderLimits {
        ReaderLimits {
            batch: 10,
            idle_poll: Duration::from_millis(100),
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(8),
        }
    }

    #[test]
    fn a_batch_is_read_delivered_saved_and_the_cursor_moves_only_then() {
        let mut r = Reader::new(5, limits());
        assert_eq!(
            r.start(),
            Step::Read {
                after: 5,
                limit: 10
            }
        );
        assert_eq!(r.read_done(Some(15)), Step::Deliver);
        assert_eq!(r.cursor(), 5, "not moved before the sink took it");
        assert_eq!(r.delivered(), Step::Save { position: 15 });
        assert_eq!(r.cursor(), 5, "not moved before the save committed");
        assert_eq!(
            r.saved(true),
            Step::Read {
                after: 15,
                limit: 10
            }
        );
        assert_eq!(r.cursor(), 15);
        assert_eq!(r.read_done(Some(17)), Step::Deliver);
        r.delivered();
        assert_eq!(r.saved(false), Step::Wait(Duration::from_millis(100)));
        assert_eq!(
            r.waited(),
            Step::Read {
                after: 17,
                limit: 10
            }
        );
    }

    #[test]
    fn nothing_new_waits_the_idle_poll() {
        let mut r = Reader::new(3, limits());
        assert_eq!(r.read_done(None), Step::Wait(Duration::from_millis(100)));
        assert_eq!(r.read_done(Some(3)), Step::Wait(Duration::from_millis(100)));
    }

    #[test]
    fn failures_back_off_exponentially_and_redeliver_from_the_cursor() {
        let mut r = Reader::new(0, limits());
        r.read_done(Some(9));
        let waits: Vec<Step> = (0..5).map(|_| r.failed(0.0)).collect();
        let secs = |s: u64| Step::Wait(Duration::from_secs(s));
        assert_eq!(waits, [secs(1), secs(2), secs(4), secs(8), secs(8)]);
        assert_eq!(r.failures(), 5);
        assert_eq!(r.cursor(), 0);
        assert_eq!(
            r.waited(),
            Step::Read {
                after: 0,
                limit: 10
            }
        );
        // A failed delivery is never saved, even if a stale save answer arrives.
        assert_eq!(r.saved(false), Step::Wait(Duration::from_millis(100)));
        assert_eq!(r.cursor(), 0);
        assert_eq!(r.read_done(Some(9)), Step::Deliver);
        assert_eq!(r.failures(), 0);
    }
}
