//! A task actor's logic as a pure state machine: from "due" to "ended", what each event
//! (timer, slot grant, the body's end, a write's result, a stop) leads to. No actix, no
//! database, no clock of its own: the actor feeds [`Event`]s (with the time and the jitter)
//! and carries out the [`Effect`]s.
//!
//! The rules that make it safe:
//! - every status write is for this actor's run and fenced on its run number in the database:
//!   a refused write ([`Written::Superseded`]) means a newer run owns the task, and the actor
//!   closes without writing anything more — whatever error the body returned;
//! - before a write that ends the task, the supervisor is told ([`Effect::Ending`]), so a
//!   schedule that arrives while the end commits is decided against the durable status;
//! - a stop waits for the body (cancelled, then dropped after the grace period) and for the
//!   write in flight; only a stop with the parent (`StopMode::Stopped`) writes STOPPED.

use chrono::{DateTime, Utc};

use super::TaskSpec;
use crate::domain::{RunRef, TaskStatus};
use crate::runtime::messages::StopMode;
use crate::runtime::policy::{self, Counters, Next};
use crate::sdk::{OnInterrupt, TaskError};
use crate::settings::RuntimeSettings;
use crate::storage::commands::tasks::UpdateTaskRun;

/// What the actor is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// Waiting for the due time.
    Waiting,
    /// Waiting for a concurrency slot.
    AwaitingSlot,
    /// Writing the record that a run starts (`on_interrupt = Fail`) before the body runs.
    Starting,
    /// The body runs; `attempt` counts this actor's runs.
    Running {
        /// Which run of this actor.
        attempt: u64,
    },
    /// A write is out; `then` follows once it lands.
    Writing {
        /// What follows.
        then: Then,
    },
    /// Nothing more to do: the actor stops.
    Closed,
}

/// What follows a write.
#[derive(Debug, Clone, PartialEq)]
pub enum Then {
    /// Wait for the next due time (a retry, a restart, the next periodic tick).
    Arm,
    /// The task ended: report the outcome to the supervisor.
    End(Result<(), TaskError>),
    /// Close (after the STOPPED write).
    Close,
}

/// A write's result as the machine needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum Written {
    /// It landed.
    Ok,
    /// A newer run owns the task (or the task is gone).
    Superseded,
    /// It was abandoned because the actor stops (shutdown, pause, uninstall); or, for the
    /// start record, it failed with this error.
    Failed(TaskError),
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The actor started.
    Begin {
        /// The time now.
        now: DateTime<Utc>,
    },
    /// The due time came.
    Due,
    /// A concurrency slot was granted.
    Granted {
        /// The time now.
        now: DateTime<Utc>,
    },
    /// The body returned (or panicked, or was dropped).
    BodyEnded {
        /// Its outcome.
        outcome: Result<(), TaskError>,
        /// Its final write (`ingest_final`) committed: the task is TERMINATED already.
        final_committed: bool,
        /// The time now.
        now: DateTime<Utc>,
        /// A random number in 0..1 for the backoff's jitter.
        jitter: f64,
    },
    /// The write in flight came back.
    Written {
        /// Its result.
        written: Written,
        /// The time now.
        now: DateTime<Utc>,
    },
    /// Stop.
    Stop {
        /// Why.
        mode: StopMode,
        /// The time now.
        now: DateTime<Utc>,
    },
    /// The grace period of a cancelled body is over.
    GraceOver,
    /// A run is still going after the delay before its ACTIVE write.
    ActiveDue {
        /// Which run.
        attempt: u64,
        /// Its final write is already out (an ACTIVE write would land after it).
        final_sent: bool,
        /// The time now.
        now: DateTime<Utc>,
    },
}

/// What the actor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Feed [`Event::Due`] at this time.
    ArmTimer(DateTime<Utc>),
    /// Forget the armed timer.
    CancelTimer,
    /// Ask the supervisor for a slot; feed [`Event::Granted`].
    RequestSlot,
    /// Give the slot back.
    ReleaseSlot,
    /// Start the body; feed [`Event::BodyEnded`] when it returns.
    StartBody,
    /// Cancel the body's token, and feed [`Event::GraceOver`] after the grace period.
    CancelBody,
    /// Drop the body.
    AbortBody,
    /// Feed [`Event::ActiveDue`] a little later.
    ArmActive {
        /// Which run.
        attempt: u64,
    },
    /// Write, retrying what the database refuses transiently; feed [`Event::Written`].
    Write(UpdateTaskRun),
    /// Write without waiting (an intermediate status that may be coalesced).
    WriteDetached(UpdateTaskRun),
    /// Stop retrying writes: the stop writes nothing, the run is redone at the next start.
    GiveUpWrites,
    /// Tell the supervisor the run is about to end.
    Ending,
    /// Tell the supervisor the run ended (durably) with this outcome.
    Ended(Result<(), TaskError>),
    /// Count a metric.
    Count(&'static str),
    /// Stop the actor.
    Close,
}

/// A task actor's state.
#[derive(Debug)]
pub struct Machine {
    /// The run this actor serves.
    pub run: RunRef,
    /// The options.
    pub options: crate::sdk::ScheduleOptions,
    /// The status as this actor last wrote (or read) it.
    pub status: TaskStatus,
    /// The failure counters.
    pub counters: Counters,
    /// The error to show.
    pub error: Option<String>,
    /// When the next run is due.
    pub due_at: Option<DateTime<Utc>>,
    /// The due time of the current periodic tick (retries keep it; success moves it).
    tick: DateTime<Utc>,
    /// What it is doing.
    pub phase: Phase,
    /// Why it is stopping, once a stop arrived.
    pub stopping: Option<StopMode>,
    attempt: u64,
}

impl Machine {
    /// The machine of `spec`'s run; `now` is the first tick when nothing is due.
    pub fn new(spec: &TaskSpec, now: DateTime<Utc>) -> Self {
        Self {
            run: spec.run,
            options: spec.options.clone(),
            status: spec.status,
            counters: spec.counters,
            error: spec.error.clone(),
            due_at: spec.due_at,
            tick: spec.due_at.unwrap_or(now),
            phase: Phase::Waiting,
            stopping: None,
            attempt: 0,
        }
    }

    /// Applies `event`; `settings` give the backoff (shared by every task of the runtime, so
    /// not kept per task: idle tasks are many).
    pub fn on(&mut self, event: Event, settings: &RuntimeSettings) -> Vec<Effect> {
        let mut fx = Vec::new();
        match event {
            Event::Begin { now } => self.arm(now, &mut fx),
            Event::Due => {
                if self.phase == Phase::Waiting && self.stopping.is_none() {
                    self.phase = Phase::AwaitingSlot;
                    fx.push(Effect::RequestSlot);
                }
            }
            Event::Granted { now } => self.granted(now, &mut fx),
            Event::BodyEnded {
                outcome,
                final_committed,
                now,
                jitter,
            } => {
                if matches!(self.phase, Phase::Running { .. }) {
                    self.body_ended(outcome, final_committed, now, jitter, settings, &mut fx);
                }
            }
            Event::Written { written, now } => self.written(written, now, settings, &mut fx),
            Event::Stop { mode, now } => self.stop(mode, now, &mut fx),
            Event::GraceOver => {
                if matches!(self.phase, Phase::Running { .. }) {
                    fx.push(Effect::AbortBody);
                }
            }
            Event::ActiveDue {
                attempt,
                final_sent,
                now,
            } => {
                if self.phase == (Phase::Running { attempt })
                    && self.stopping.is_none()
                    && !final_sent
                {
                    fx.push(Effect::WriteDetached(self.update(
                        TaskStatus::Active,
                        false,
                        None,
                        now,
                    )));
                }
            }
        }
        fx
    }

    /// Waits for the due time, or asks for a slot at once.
    fn arm(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        match self.due_at {
            Some(due) if due > now => {
                self.phase = Phase::Waiting;
                fx.push(Effect::ArmTimer(due));
            }
            _ => {
                self.phase = Phase::AwaitingSlot;
                fx.push(Effect::RequestSlot);
            }
        }
    }

    fn granted(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if self.phase != Phase::AwaitingSlot || self.stopping.is_some() {
            // A grant that is not needed any more goes back at once.
            fx.push(Effect::ReleaseSlot);
            return;
        }
        self.attempt += 1;
        let was = self.status;
        self.status = TaskStatus::Active;
        if self.options.on_interrupt == OnInterrupt::Fail {
            // The run must be on record before it starts, so a crash mid-run is detected.
            self.phase = Phase::Starting;
            fx.push(Effect::Write(self.update(
                TaskStatus::Active,
                true,
                None,
                now,
            )));
            return;
        }
        self.phase = Phase::Running {
            attempt: self.attempt,
        };
        fx.push(Effect::Count("tributary_task_runs_total"));
        fx.push(Effect::StartBody);
        // PENDING → ACTIVE is intermediate: a run that ends soon never writes it (its final
        // write says all there is). Periodic tasks are ACTIVE between runs already.
        if was != TaskStatus::Active {
            fx.push(Effect::ArmActive {
                attempt: self.attempt,
            });
        }
    }

    fn body_ended(
        &mut self,
        outcome: Result<(), TaskError>,
        final_committed: bool,
        now: DateTime<Utc>,
        jitter: f64,
        settings: &RuntimeSettings,
        fx: &mut Vec<Effect>,
    ) {
        fx.push(Effect::ReleaseSlot);
        // A run whose final write committed has ended, durably, even if a stop came before
        // its body returned: its waiters are owed its outcome.
        if self.stopping.is_some() && !final_committed {
            self.finish_stop(now, fx);
            return;
        }
        if final_committed {
            // The run's last write ended it in the database: nothing more to persist. (The
            // supervisor was told before that write went out.)
            self.status = TaskStatus::Terminated;
            self.due_at = None;
            self.counters = Counters::default();
            self.phase = Phase::Closed;
            fx.push(Effect::Ended(Ok(())));
            fx.push(Effect::Close);
            return;
        }
        let next = policy::after_run(
            &self.options,
            self.counters,
            &outcome,
            self.tick,
            now,
            settings,
            jitter,
        );
        match next {
            Next::RunAgain {
                due,
                counters,
                error,
                succeeded,
                new_tick,
            } => {
                if !succeeded {
                    fx.push(Effect::Count(
                        if matches!(outcome, Err(TaskError::Retryable(_))) {
                            "tributary_task_retries_total"
                        } else {
                            "tributary_task_restarts_total"
                        },
                    ));
                }
                self.counters = counters;
                self.error = error;
                self.due_at = Some(due);
                if new_tick {
                    self.tick = due;
                }
                self.status = TaskStatus::Active;
                let update = self.update(TaskStatus::Active, false, succeeded.then_some(now), now);
                self.phase = Phase::Writing { then: Then::Arm };
                fx.push(Effect::Write(update));
            }
            Next::End {
                status,
                error,
                succeeded,
            } => {
                if status == TaskStatus::Failed {
                    fx.push(Effect::Count("tributary_task_failures_total"));
                }
                self.status = status;
                self.due_at = None;
                if succeeded {
                    self.counters = Counters::default();
                }
                self.error = error.clone();
                let update = self.update(status, false, succeeded.then_some(now), now);
                // RUN_NOW_SYNC waiters get the error with its class: a refusal stays final.
                let outcome = match (&outcome, error) {
                    (_, None) => Ok(()),
                    (Err(TaskError::NonRetryable(_)), Some(e)) => Err(TaskError::NonRetryable(e)),
                    (_, Some(e)) => Err(TaskError::Failed(e)),
                };
                self.phase = Phase::Writing {
                    then: Then::End(outcome),
                };
                fx.push(Effect::Ending);
                fx.push(Effect::Write(update));
            }
        }
    }

    fn written(
        &mut self,
        written: Written,
        now: DateTime<Utc>,
        settings: &RuntimeSettings,
        fx: &mut Vec<Effect>,
    ) {
        let phase = std::mem::replace(&mut self.phase, Phase::Closed);
        match (phase, written) {
            (Phase::Starting, Written::Ok) if self.stopping.is_some() => {
                fx.push(Effect::ReleaseSlot);
                // The start record says a run began though none did. A stop that writes
                // nothing leaves it so: the next start takes the run for interrupted, the
                // safe reading for work that must not run twice.
                self.finish_stop(now, fx);
            }
            (Phase::Starting, Written::Ok) => {
                self.phase = Phase::Running {
                    attempt: self.attempt,
                };
                fx.push(Effect::Count("tributary_task_runs_total"));
                fx.push(Effect::StartBody);
            }
            (Phase::Starting, Written::Failed(e)) if self.stopping.is_none() => {
                // As if the run failed at once: the policy decides (a database error is
                // retryable to the task).
                self.phase = Phase::Running {
                    attempt: self.attempt,
                };
                self.body_ended(Err(e), false, now, 0.5, settings, fx);
            }
            (Phase::Starting, _) => {
                fx.push(Effect::ReleaseSlot);
                fx.push(Effect::Close);
            }
            (Phase::Writing { then }, Written::Ok) => match then {
                Then::Arm if self.stopping.is_none() => self.arm(now, fx),
                Then::Arm => self.finish_stop(now, fx),
                Then::End(outcome) => {
                    fx.push(Effect::Ended(outcome));
                    fx.push(Effect::Close);
                }
                Then::Close => fx.push(Effect::Close),
            },
            // A newer run owns the task, or the stop gave the write up: nothing more to say.
            (_, _) => fx.push(Effect::Close),
        }
    }

    fn stop(&mut self, mode: StopMode, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(mode);
        if mode != StopMode::Stopped {
            fx.push(Effect::GiveUpWrites);
        }
        match self.phase {
            Phase::Waiting => {
                fx.push(Effect::CancelTimer);
                self.finish_stop(now, fx);
            }
            // A grant that arrives later is given back.
            Phase::AwaitingSlot => self.finish_stop(now, fx),
            Phase::Running { .. } => fx.push(Effect::CancelBody),
            // The write in flight completes the stop when it returns.
            Phase::Starting | Phase::Writing { .. } | Phase::Closed => {}
        }
    }

    /// Completes a stop once no body runs and no write is out.
    fn finish_stop(&mut self, now: DateTime<Utc>, fx: &mut Vec<Effect>) {
        if self.stopping == Some(StopMode::Stopped) && self.status.is_live() {
            self.status = TaskStatus::Stopped;
            self.due_at = None;
            let update = self.update(TaskStatus::Stopped, false, None, now);
            self.phase = Phase::Writing { then: Then::Close };
            fx.push(Effect::Write(update));
            return;
        }
        self.phase = Phase::Closed;
        fx.push(Effect::Close);
    }

    /// A status write for this run.
    fn update(
        &self,
        status: TaskStatus,
        running: bool,
        succeeded_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> UpdateTaskRun {
        UpdateTaskRun {
            run: self.run,
            status,
            // PostgreSQL text cannot hold NUL; an error message must never fail its own write.
            error: self.error.as_ref().map(|e| e.replace('\0', "\u{fffd}")),
            attempts: self.counters.attempts,
            restarts: self.counters.restarts,
            failing_since: self.counters.failing_since,
            due_at: self.due_at,
            running,
            succeeded_at,
            now,
        }
    }
}

#[cfg(test)]
mod tests {
    //! A task actor's rules, event by event.

    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::sdk::{Restart, Schedule, ScheduleOptions};

    fn now() -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).single().expect("time")
    }

    fn machine(options: ScheduleOptions) -> Machine {
        let spec = TaskSpec::new_run(
            RunRef {
                task_id: Uuid::from_u128(1),
                run: 3,
            },
            None,
            serde_json::Value::Null,
            options,
            None,
            None,
        );
        Machine::new(&spec, now())
    }

    impl Machine {
        /// `on` with the default settings.
        fn step(&mut self, event: Event) -> Vec<Effect> {
            self.on(event, &RuntimeSettings::default())
        }
    }

    fn one_shot() -> ScheduleOptions {
        ScheduleOptions::new(Schedule::RunNow, Restart::Never)
    }

    fn running(options: ScheduleOptions) -> Machine {
        let mut m = machine(options);
        assert_eq!(m.step(Event::Begin { now: now() }), [Effect::RequestSlot]);
        let fx = m.step(Event::Granted { now: now() });
        assert!(fx.contains(&Effect::StartBody), "{fx:?}");
        m
    }

    fn ended(m: &mut Machine, outcome: Result<(), TaskError>) -> Vec<Effect> {
        m.step(Event::BodyEnded {
            outcome,
            final_committed: false,
            now: now(),
            jitter: 0.0,
        })
    }

    fn written_status(fx: &[Effect]) -> Option<TaskStatus> {
        fx.iter().find_map(|e| match e {
            Effect::Write(u) => Some(u.status),
            _ => None,
        })
    }

    #[test]
    fn a_fail_on_interrupt_run_is_on_record_before_its_body_starts() {
        let mut m = machine(one_shot().fail_on_interrupt());
        m.step(Event::Begin { now: now() });
        let fx = m.step(Event::Granted { now: now() });
        assert!(
            matches!(&fx[..], [Effect::Write(u)] if u.running && u.status == TaskStatus::Active)
        );
        let fx = m.step(Event::Written {
            written: Written::Ok,
            now: now(),
        });
        assert!(fx.contains(&Effect::StartBody));
    }

    #[test]
    fn the_supervisor_hears_of_an_end_before_the_write_that_ends_the_task() {
        let mut m = running(one_shot());
        let fx = ended(&mut m, Ok(()));
        let ending = fx.iter().position(|e| *e == Effect::Ending);
        let write = fx.iter().position(|e| matches!(e, Effect::Write(_)));
        assert!(ending.is_some() && ending < write, "{fx:?}");
        let fx = m.step(Event::Written {
            written: Written::Ok,
            now: now(),
        });
        assert_eq!(fx, [Effect::Ended(Ok(())), Effect::Close]);
    }

    #[test]
    fn a_cancelled_body_that_was_not_stopped_is_a_failure_not_a_silent_exit() {
        // What a parent's body returns when its RUN_NOW_SYNC child wait is cancelled.
        let mut m = running(one_shot());
        let fx = ended(&mut m, Err(TaskError::Cancelled));
        assert_eq!(written_status(&fx), Some(TaskStatus::Failed));
    }

    #[test]
    fn a_write_refused_as_superseded_closes_without_another_write() {
        let mut m = running(ScheduleOptions::new(Schedule::RunNow, Restart::Always));
        let fx = ended(&mut m, Err(TaskError::failed("boom")));
        assert_eq!(written_status(&fx), Some(TaskStatus::Active), "a restart");
        let fx = m.step(Event::Written {
            written: Written::Superseded,
            now: now(),
        });
        assert_eq!(fx, [Effect::Close]);
    }

    #[test]
    fn a_stop_with_the_parent_cancels_then_drops_the_body_and_writes_stopped() {
        let mut m = running(one_shot());
        let fx = m.step(Event::Stop {
            mode: StopMode::Stopped,
            now: now(),
        });
        assert_eq!(fx, [Effect::CancelBody]);
        assert_eq!(m.step(Event::GraceOver), [Effect::AbortBody]);
        let fx = ended(&mut m, Err(TaskError::Cancelled));
        assert_eq!(written_status(&fx), Some(TaskStatus::Stopped));
        let fx = m.step(Event::Written {
            written: Written::Ok,
            now: now(),
        });
        assert_eq!(fx, [Effect::Close]);
    }

    #[test]
    fn a_pause_writes_nothing_and_gives_up_the_write_in_flight() {
        let mut m = running(ScheduleOptions::new(
            Schedule::RunPeriodically(std::time::Duration::from_secs(60)),
            Restart::Never,
        ));
        let fx = ended(&mut m, Ok(()));
        assert_eq!(
            written_status(&fx),
            Some(TaskStatus::Active),
            "the next tick"
        );
        let fx = m.step(Event::Stop {
            mode: StopMode::Pause,
            now: now(),
        });
        assert_eq!(fx, [Effect::GiveUpWrites]);
        let fx = m.step(Event::Written {
            written: Written::Failed(TaskError::Cancelled),
            now: now(),
        });
        assert_eq!(fx, [Effect::Close]);
    }

    #[test]
    fn a_run_stopped_after_its_final_write_committed_still_reports_its_end() {
        let mut m = running(one_shot());
        m.step(Event::Stop {
            mode: StopMode::Superseded,
            now: now(),
        });
        let fx = m.step(Event::BodyEnded {
            outcome: Err(TaskError::Cancelled),
            final_committed: true,
            now: now(),
            jitter: 0.0,
        });
        assert_eq!(
            fx,
            [Effect::ReleaseSlot, Effect::Ended(Ok(())), Effect::Close]
        );
    }

    #[test]
    fn a_run_ended_by_its_final_write_writes_nothing_more() {
        let mut m = running(one_shot());
        let fx = m.step(Event::BodyEnded {
            outcome: Err(TaskError::failed("after the final write")),
            final_committed: true,
            now: now(),
            jitter: 0.0,
        });
        assert_eq!(
            fx,
            [Effect::ReleaseSlot, Effect::Ended(Ok(())), Effect::Close]
        );
    }
}
