//! When a failed delivery is tried again, as a pure function of its attempts so far and the
//! time since its cycle began (when the event was stored):
//! exponential backoff with jitter
//! ([`crate::runtime::policy::exponential_backoff`]) until the next attempt would fall past
//! the horizon, then the delivery fails (as Formance's `limitRetryWindow` does).

use std::time::Duration;

use crate::runtime::policy::exponential_backoff;
use crate::settings::WebhookSettings;

/// The retry bounds of webhook deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first delay.
    pub initial: Duration,
    /// The largest delay.
    pub max: Duration,
    /// How long after its cycle began (the event's creation) a delivery may still be tried.
    pub horizon: Duration,
}

/// What follows a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    /// Try the same delivery again after this delay.
    RetryIn(Duration),
    /// The next attempt would fall past the horizon: the delivery has failed.
    GiveUp,
}

impl RetryPolicy {
    /// The bounds from `[events.webhooks]`.
    pub fn from_settings(settings: &WebhookSettings) -> Self {
        Self {
            initial: settings.retry_initial,
            max: settings.retry_max,
            horizon: settings.retry_horizon,
        }
    }

    /// After the `attempts`-th failed attempt (1 for the first), `elapsed` after the cycle
    /// began (the event's creation); `jitter` in 0..1 shortens the delay by up to 20 %.
    pub fn after_failure(&self, attempts: u32, elapsed: Duration, jitter: f64) -> AfterFailure {
        let delay = exponential_backoff(self.initial, self.max, attempts, jitter);
        if elapsed.saturating_add(delay) > self.horizon {
            AfterFailure::GiveUp
        } else {
            AfterFailure::RetryIn(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(8),
            horizon: Duration::from_secs(30),
        }
    }

    #[test]
    fn delays_grow_to_the_cap_then_the_horizon_ends_it() {
        let p = policy();
        let mut elapsed = Duration::ZERO;
        let mut delays = Vec::new();
        for attempt in 1.. {
            match p.after_failure(attempt, elapsed, 0.0) {
                AfterFailure::RetryIn(d) => {
                    delays.push(d.as_secs());
                    elapsed += d;
                }
                AfterFailure::GiveUp => break,
            }
        }
        // 1+2+4+8+8 = 23; another 8 would end at 31 > 30.
        assert_eq!(delays, [1, 2, 4, 8, 8]);
    }

    #[test]
    fn jitter_shortens_by_at_most_a_fifth() {
        let p = policy();
        assert_eq!(
            p.after_failure(3, Duration::ZERO, 1.0),
            AfterFailure::RetryIn(Duration::from_millis(3200))
        );
        assert_eq!(
            p.after_failure(1, Duration::from_secs(30), 0.0),
            AfterFailure::GiveUp
        );
    }
}
