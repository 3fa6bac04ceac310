//! Restart and retry policy as pure functions: what happens after a run, when the next run is
//! due, how long to back off. Kept free of actors and I/O so each rule is unit-tested alone.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::sdk::{Restart, Schedule, ScheduleOptions, TaskError, TaskStatus};
use crate::settings::RuntimeSettings;

/// A task's failure bookkeeping, persisted with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Retries of the current run (retryable errors).
    pub attempts: u32,
    /// Consecutive failed runs (RESTART_ALWAYS).
    pub restarts: u32,
    /// When the current streak of retryable failures began (for the maximum retry age).
    pub failing_since: Option<DateTime<Utc>>,
}

/// What follows a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Run again at `due`, staying ACTIVE: a periodic tick, a retry or a restart.
    RunAgain {
        /// When.
        due: DateTime<Utc>,
        /// The updated counters.
        counters: Counters,
        /// The failure to show meanwhile, if this run failed.
        error: Option<String>,
        /// This run succeeded.
        succeeded: bool,
        /// The run is a new periodic tick (not a retry of the same one).
        new_tick: bool,
    },
    /// The task ended.
    End {
        /// TERMINATED or FAILED.
        status: TaskStatus,
        /// The error kept with FAILED.
        error: Option<String>,
        /// This run succeeded.
        succeeded: bool,
    },
}

/// The delay before retry or restart number `attempt` (1-based): `initial` doubled at each
/// attempt, capped at `max`, minus up to 20 % of jitter (`jitter` in 0..1). Delays keep
/// growing until the cap even with jitter, since 0.8 × 2d > d.
pub fn backoff(settings: &RuntimeSettings, attempt: u32, jitter: f64) -> Duration {
    exponential_backoff(settings.retry_initial, settings.retry_max, attempt, jitter)
}

/// [`backoff`] with its bounds given: also what event publishers and webhook deliveries wait
/// between attempts.
pub fn exponential_backoff(
    initial: Duration,
    max: Duration,
    attempt: u32,
    jitter: f64,
) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let raw = initial.saturating_mul(1u32 << exponent).min(max);
    raw.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
}

/// The next tick of a periodic task whose current tick was due at `tick`: one period later,
/// or now if that is already past (missed ticks coalesce into one run).
pub fn next_tick(tick: DateTime<Utc>, period: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    later(tick, period).max(now)
}

/// `at + by`, saturating at the latest time chrono can hold instead of panicking.
pub fn later(at: DateTime<Utc>, by: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(by)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// When a newly scheduled task's first run is due (None: as soon as a slot is free).
pub fn first_due(schedule: &Schedule, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match schedule {
        Schedule::RunInDuration(d) => Some(later(now, *d)),
        Schedule::RunScheduledAt(at) => Some(*at),
        _ => None,
    }
}

/// Decides what follows a run that ended with `outcome` (cancellation is handled by the caller).
pub fn after_run(
    options: &ScheduleOptions,
    counters: Counters,
    outcome: &Result<(), TaskError>,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
    settings: &RuntimeSettings,
    jitter: f64,
) -> Next {
    let delay = |attempt| later(now, backoff(settings, attempt, jitter));
    let failed = |error: &str| Next::End {
        status: TaskStatus::Failed,
        error: Some(error.to_string()),
        succeeded: false,
    };
    match outcome {
        Ok(()) => match options.schedule {
            Schedule::RunPeriodically(period) => Next::RunAgain {
                due: next_tick(tick, period, now),
                counters: Counters::default(),
                error: None,
                succeeded: true,
                new_tick: true,
            },
            _ => Next::End {
                status: TaskStatus::Terminated,
                error: None,
                succeeded: true,
            },
        },
        Err(TaskError::Retryable(error)) => {
            let failing_since = counters.failing_since.unwrap_or(now);
            let max_age = settings.max_retry_age;
            if !max_age.is_zero()
                && now - failing_since >= chrono::Duration::from_std(max_age).unwrap_or_default()
            {
                return failed(&format!("gave up retrying after {max_age:?}: {error}"));
            }
            let attempts = counters.attempts + 1;
            Next::RunAgain {
                due: delay(attempts),
                counters: Counters {
                    attempts,
                    restarts: counters.restarts,
                    failing_since: Some(failing_since),
                },
                error: Some(error.clone()),
                succeeded: false,
                new_tick: false,
            }
        }
        Err(TaskError::NonRetryable(error)) => failed(error),
        Err(other) => {
            let error = other.to_string();
            let restarts = counters.restarts + 1;
            if options.restart != Restart::Always || restarts >= options.max_restarts {
                if options.restart == Restart::Always {
                    return failed(&format!("{error} (gave up after {restarts} failed runs)"));
                }
                return failed(&error);
            }
            Next::RunAgain {
                due: delay(restarts),
                counters: Counters {
                    attempts: 0,
                    restarts,
                    failing_since: None,
                },
                error: Some(error),
                succeeded: false,
                new_tick: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdk::{Restart, Schedule, ScheduleOptions};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn settings() -> RuntimeSettings {
        RuntimeSettings::default()
    }

    #[test]
    fn backoff_doubles_from_half_a_second_and_caps_at_two_minutes() {
        let s = settings();
        assert_eq!(backoff(&s, 1, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(&s, 2, 0.0), Duration::from_secs(1));
        assert_eq!(backoff(&s, 5, 0.0), Duration::from_secs(8));
        assert_eq!(backoff(&s, 40, 0.0), Duration::from_secs(120));
        // Jitter never makes a delay shorter than the previous one.
        for n in 1..12 {
            assert!(backoff(&s, n + 1, 1.0) > backoff(&s, n, 0.0) || n >= 9);
        }
    }

    #[test]
    fn periodic_ticks_coalesce_when_missed() {
        let period = Duration::from_secs(10);
        assert_eq!(
            next_tick(t0(), period, t0()),
            t0() + chrono::Duration::seconds(10)
        );
        let late = t0() + chrono::Duration::seconds(35);
        assert_eq!(next_tick(t0(), period, late), late);
    }

    #[test]
    fn a_one_shot_success_terminates_and_a_periodic_one_stays_active() {
        let once = ScheduleOptions::new(Schedule::RunNow, Restart::Never);
        let next = after_run(
            &once,
            Counters::default(),
            &Ok(()),
            t0(),
            t0(),
            &settings(),
            0.0,
        );
        assert!(matches!(
            next,
            Next::End {
                status: TaskStatus::Terminated,
                ..
            }
        ));

        let periodic = ScheduleOptions::new(
            Schedule::RunPeriodically(Duration::from_secs(60)),
            Restart::Never,
        );
        let next = after_run(
            &periodic,
            Counters::default(),
            &Ok(()),
            t0(),
            t0(),
            &settings(),
            0.0,
        );
        assert!(matches!(
            next,
            Next::RunAgain {
                succeeded: true,
                ..
            }
        ));
    }

    #[test]
    fn non_retryable_is_final_under_every_restart_option() {
        for restart in [
            Restart::Never,
            Restart::IfNotActive,
            Restart::Always,
            Restart::StopAndRestart,
        ] {
            let o = ScheduleOptions::new(Schedule::RunNow, restart);
            let next = after_run(
                &o,
                Counters::default(),
                &Err(TaskError::non_retryable("refused")),
                t0(),
                t0(),
                &settings(),
                0.0,
            );
            assert!(
                matches!(
                    next,
                    Next::End {
                        status: TaskStatus::Failed,
                        ..
                    }
                ),
                "{restart:?}"
            );
        }
    }

    #[test]
    fn retryable_retries_under_every_option_until_the_maximum_age() {
        let o = ScheduleOptions::new(Schedule::RunNow, Restart::Never);
        let err = Err(TaskError::retryable("timeout"));
        let next = after_run(&o, Counters::default(), &err, t0(), t0(), &settings(), 0.0);
        let Next::RunAgain { due, counters, .. } = next else {
            panic!("expected a retry, got {next:?}")
        };
        assert_eq!(due, t0() + chrono::Duration::milliseconds(500));
        assert_eq!(counters.attempts, 1);

        let mut s = settings();
        s.max_retry_age = Duration::from_secs(60);
        let old = Counters {
            attempts: 9,
            restarts: 0,
            failing_since: Some(t0()),
        };
        let later = t0() + chrono::Duration::seconds(61);
        let next = after_run(&o, old, &err, t0(), later, &s, 0.0);
        assert!(matches!(
            next,
            Next::End {
                status: TaskStatus::Failed,
                ..
            }
        ));
    }

    #[test]
    fn plain_failures_restart_only_under_always_and_only_up_to_the_limit() {
        let err = Err(TaskError::failed("boom"));
        let never = ScheduleOptions::new(Schedule::RunNow, Restart::Never);
        assert!(matches!(
            after_run(
                &never,
                Counters::default(),
                &err,
                t0(),
                t0(),
                &settings(),
                0.0
            ),
            Next::End {
                status: TaskStatus::Failed,
                ..
            }
        ));
        let always = ScheduleOptions::new(Schedule::RunNow, Restart::Always).max_restarts(3);
        let mut counters = Counters::default();
        for run in 1..3 {
            match after_run(&always, counters, &err, t0(), t0(), &settings(), 0.0) {
                Next::RunAgain { counters: c, .. } => counters = c,
                other => panic!("run {run}: expected a restart, got {other:?}"),
            }
        }
        assert!(matches!(
            after_run(&always, counters, &err, t0(), t0(), &settings(), 0.0),
            Next::End {
                status: TaskStatus::Failed,
                ..
            }
        ));
    }
}
