//! The per-connector decisions of the `ConnectorManager`, as a pure state machine: which
//! operation may start while another runs (`CONFLICT`), what is a no-op, what shutdown
//! refuses, when a connector's tasks start and when it is forgotten. No actix, no database:
//! the actor (`actor.rs`) feeds it events and performs the effects it answers.
//!
//! `H` is the handle of a connector's supervisor (its address and loader in the actor, a plain
//! value in the tests below).

use std::collections::HashMap;

use uuid::Uuid;

use crate::sdk::Config;
use crate::storage::commands::connectors::Lifecycle;

/// What the manager knows of an installed connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed<H> {
    /// Its supervisor.
    pub handle: H,
    /// Not paused (the persisted `enabled` flag).
    pub enabled: bool,
    /// Its stored config loads; when false the supervisor holds a stand-in that runs nothing.
    pub loads: bool,
    /// Its supervisor was told to run its tasks (only ever while `enabled && loads`).
    pub running: bool,
}

/// An operation in progress on an installed connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Uninstall (requested, or finished at boot).
    Uninstall,
    /// Reset (requested, or finished at boot).
    Reset,
    /// Config update.
    UpdateConfig,
    /// Pause.
    Pause,
    /// Resume.
    Resume,
    /// Starting the tasks of a connector restored at boot.
    Start,
}

/// Where one connector stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn<H> {
    /// Unknown to the manager: never installed, or forgotten (uninstalled, install failed).
    Absent,
    /// Its install hook runs.
    Installing(H),
    /// Installed, no operation in progress.
    Ready(Installed<H>),
    /// Installed, with `Op` in progress: any other operation is a conflict.
    Busy(Installed<H>, Op),
}

/// A request from the API or boot about one connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Uninstall it.
    Uninstall,
    /// Reset it.
    Reset,
    /// Replace its config (as sent, defaults not applied).
    UpdateConfig(Config),
    /// Pause it.
    Pause,
    /// Resume it.
    Resume,
    /// Run an ended task again.
    RestartTask(Uuid),
    /// Find its supervisor, to call into the connector (money out, webhooks).
    Locate,
}

/// What happens to a connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<H> {
    /// An install wrote the connector's row (marked `installing`) and launched its supervisor.
    Install(H),
    /// Boot found the connector's row; its supervisor was launched paused.
    Restored {
        /// Its supervisor.
        handle: H,
        /// The stored lifecycle mark.
        lifecycle: Lifecycle,
        /// The stored `enabled` flag.
        enabled: bool,
        /// Whether its config loads.
        loads: bool,
    },
    /// A request.
    Request(Request),
    /// The workflow in progress ended; `landed` tells whether its durable change took effect
    /// (see each [`Work`] for what that is).
    Done {
        /// Whether the operation took effect.
        landed: bool,
    },
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such connector.
    NotFound,
    /// Another operation on it is in progress.
    Conflict,
    /// The runtime is shutting down.
    Stopped,
    /// Its stored config does not load: there is no connector value to call.
    NotLoaded,
}

/// A workflow the actor runs; its end is fed back as [`Event::Done`].
#[derive(Debug, Clone, PartialEq)]
pub enum Work<H> {
    /// Install hook, then the `installed` mark; rolled back on failure. Landed: installed.
    Install(H),
    /// Delete a connector whose install was interrupted (already forgotten). Landed: deleted.
    RollBack(H),
    /// Mark, stop the tasks, uninstall hook, delete everything. Landed: deleted.
    Uninstall(H),
    /// Mark, stop the tasks, uninstall hook, wipe the data, install hook, mark installed and
    /// enabled; with `start` the tasks run again (before the install hook, so that it may
    /// await what it schedules). Landed: marked installed again.
    Reset {
        /// Its supervisor.
        handle: H,
        /// Start the tasks.
        start: bool,
    },
    /// Check, load and store the config, swap the connector in, run its `config_updated`
    /// hook; with `start`, then start the tasks. Landed: stored and swapped in.
    UpdateConfig {
        /// Its supervisor.
        handle: H,
        /// The config as sent.
        config: Config,
        /// Start the tasks (the connector was enabled but idle: its old config did not load).
        start: bool,
    },
    /// Persist `enabled = false`, then stop the tasks. Landed: persisted.
    Pause(H),
    /// Persist `enabled = true` unless it already is; with `start`, start the tasks.
    /// Landed: persisted.
    Resume {
        /// Its supervisor.
        handle: H,
        /// Persist the flag (false when only the tasks are to start).
        enable: bool,
        /// Start the tasks.
        start: bool,
    },
    /// Start the tasks (`ResumeTasks`). Always lands.
    Start(H),
}

/// What the actor does in answer to an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect<H> {
    /// Answer the request with this error.
    Refuse(Refusal),
    /// Answer the request with success at once: there is nothing to do.
    Answer,
    /// Run the workflow and answer the request with its result.
    Run(Work<H>),
    /// Hand a task restart to the supervisor and answer with its result.
    Rerun(H, Uuid),
    /// Stop every task without changing its status, then the supervisor (shutdown).
    Halt(H),
    /// Answer with its supervisor, for a call into the connector.
    Located(H),
}

/// One connector's transition: its next state and what to do.
pub fn on<H: Clone>(state: Conn<H>, event: Event<H>, stopping: bool) -> (Conn<H>, Vec<Effect<H>>) {
    use Effect::*;
    match (state, event) {
        (state, Event::Install(_) | Event::Restored { .. } | Event::Request(_)) if stopping => {
            (state, vec![Refuse(Refusal::Stopped)])
        }

        // Registration.
        (Conn::Absent, Event::Install(h)) => {
            (Conn::Installing(h.clone()), vec![Run(Work::Install(h))])
        }
        (
            Conn::Absent,
            Event::Restored {
                handle,
                lifecycle,
                enabled,
                loads,
            },
        ) => {
            let installed = Installed {
                handle: handle.clone(),
                enabled,
                loads,
                running: false,
            };
            match lifecycle {
                // All-or-nothing: an install the process died in never happened; it is forgotten
                // at once (nothing can name it), and its row deleted.
                Lifecycle::Installing => (Conn::Absent, vec![Run(Work::RollBack(handle))]),
                Lifecycle::Uninstalling => (
                    Conn::Busy(installed, Op::Uninstall),
                    vec![Run(Work::Uninstall(handle))],
                ),
                Lifecycle::Resetting => (
                    Conn::Busy(installed, Op::Reset),
                    vec![Run(Work::Reset {
                        handle,
                        start: loads,
                    })],
                ),
                Lifecycle::Installed if enabled && loads => (
                    Conn::Busy(installed, Op::Start),
                    vec![Run(Work::Start(handle))],
                ),
                Lifecycle::Installed => (Conn::Ready(installed), vec![]),
            }
        }
        // Ids are random and a row is restored once: another registration is a conflict.
        (state, Event::Install(_) | Event::Restored { .. }) => {
            (state, vec![Refuse(Refusal::Conflict)])
        }

        // Ends of workflows.
        (Conn::Installing(handle), Event::Done { landed: true }) => (
            Conn::Ready(Installed {
                handle,
                enabled: true,
                loads: true,
                running: true,
            }),
            vec![],
        ),
        (Conn::Installing(_), Event::Done { landed: false }) => (Conn::Absent, vec![]),
        (Conn::Busy(i, op), Event::Done { landed }) => (done(i, op, landed), vec![]),
        (state @ (Conn::Absent | Conn::Ready(_)), Event::Done { .. }) => (state, vec![]),

        // Requests.
        (Conn::Absent, Event::Request(_)) => (Conn::Absent, vec![Refuse(Refusal::NotFound)]),
        // A task restart goes to the supervisor whatever is in progress.
        (Conn::Installing(h), Event::Request(Request::RestartTask(task))) => {
            (Conn::Installing(h.clone()), vec![Rerun(h, task)])
        }
        (Conn::Busy(i, op), Event::Request(Request::RestartTask(task))) => {
            let handle = i.handle.clone();
            (Conn::Busy(i, op), vec![Rerun(handle, task)])
        }
        (state @ (Conn::Installing(_) | Conn::Busy(..)), Event::Request(_)) => {
            (state, vec![Refuse(Refusal::Conflict)])
        }
        (Conn::Ready(i), Event::Request(request)) => request_ready(i, request),
    }
}

/// A request to an installed connector with nothing in progress.
fn request_ready<H: Clone>(i: Installed<H>, request: Request) -> (Conn<H>, Vec<Effect<H>>) {
    use Effect::*;
    let handle = i.handle.clone();
    let (op, work) = match request {
        Request::RestartTask(task) => return (Conn::Ready(i), vec![Rerun(handle, task)]),
        Request::Locate if !i.loads => return (Conn::Ready(i), vec![Refuse(Refusal::NotLoaded)]),
        // Paused or not: what a call schedules waits, like any task, until the connector runs.
        Request::Locate => return (Conn::Ready(i), vec![Located(handle)]),
        Request::Uninstall => (Op::Uninstall, Work::Uninstall(handle)),
        Request::Reset => (
            Op::Reset,
            Work::Reset {
                handle,
                start: i.loads,
            },
        ),
        Request::UpdateConfig(config) => {
            // An enabled connector idle because its old config did not load starts with the new one.
            let start = i.enabled && !i.running;
            (
                Op::UpdateConfig,
                Work::UpdateConfig {
                    handle,
                    config,
                    start,
                },
            )
        }
        Request::Pause if !i.enabled => return (Conn::Ready(i), vec![Answer]),
        Request::Pause => (Op::Pause, Work::Pause(handle)),
        // Resuming a connector that is not paused is a no-op: nothing is stopped to start.
        Request::Resume if i.enabled && (i.running || !i.loads) => {
            return (Conn::Ready(i), vec![Answer]);
        }
        Request::Resume => {
            let work = Work::Resume {
                handle,
                enable: !i.enabled,
                start: i.loads,
            };
            (Op::Resume, work)
        }
    };
    (Conn::Busy(i, op), vec![Run(work)])
}

/// Where a connector stands once `op` ended.
fn done<H>(i: Installed<H>, op: Op, landed: bool) -> Conn<H> {
    match (op, landed) {
        (Op::Uninstall, true) => Conn::Absent,
        // Its tasks were stopped; the row keeps its mark and the next boot finishes the job.
        (Op::Uninstall | Op::Reset, false) => Conn::Ready(Installed {
            running: false,
            ..i
        }),
        (Op::Reset, true) => Conn::Ready(Installed {
            enabled: true,
            running: i.loads,
            ..i
        }),
        (Op::UpdateConfig, true) => Conn::Ready(Installed {
            loads: true,
            running: i.enabled,
            ..i
        }),
        (Op::Pause, true) => Conn::Ready(Installed {
            enabled: false,
            running: false,
            ..i
        }),
        (Op::Resume, true) => Conn::Ready(Installed {
            enabled: true,
            running: i.loads,
            ..i
        }),
        (Op::Start, _) => Conn::Ready(Installed { running: true, ..i }),
        (Op::UpdateConfig | Op::Pause | Op::Resume, false) => Conn::Ready(i),
    }
}

/// Every connector's state, and whether the runtime is shutting down.
pub struct Machine<H> {
    connectors: HashMap<String, Conn<H>>,
    stopping: bool,
}

impl<H: Clone> Default for Machine<H> {
    fn default() -> Self {
        Self {
            connectors: HashMap::new(),
            stopping: false,
        }
    }
}

impl<H: Clone> Machine<H> {
    /// Applies `event` to connector `id`; a connector that becomes `Absent` is forgotten.
    pub fn on(&mut self, id: &str, event: Event<H>) -> Vec<Effect<H>> {
        let state = self.connectors.remove(id).unwrap_or(Conn::Absent);
        let (state, effects) = on(state, event, self.stopping);
        if !matches!(state, Conn::Absent) {
            self.connectors.insert(id.to_string(), state);
        }
        effects
    }

    /// Shutdown: every later request is refused, and every connector is halted.
    pub fn shutdown(&mut self) -> Vec<Effect<H>> {
        self.stopping = true;
        self.connectors
            .values()
            .filter_map(|c| match c {
                Conn::Absent => None,
                Conn::Installing(h)
                | Conn::Ready(Installed { handle: h, .. })
                | Conn::Busy(Installed { handle: h, .. }, _) => Some(Effect::Halt(h.clone())),
            })
            .collect()
    }

    /// Connector `id`'s state.
    pub fn state(&self, id: &str) -> Conn<H> {
        self.connectors.get(id).cloned().unwrap_or(Conn::Absent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type M = Machine<u8>;

    fn ready(enabled: bool, loads: bool, running: bool) -> Conn<u8> {
        Conn::Ready(Installed {
            handle: 1,
            enabled,
            loads,
            running,
        })
    }

    /// A machine with connector "c" restored as stored.
    fn restored(lifecycle: Lifecycle, enabled: bool, loads: bool) -> (M, Vec<Effect<u8>>) {
        let mut m = M::default();
        let effects = m.on(
            "c",
            Event::Restored {
                handle: 1,
                lifecycle,
                enabled,
                loads,
            },
        );
        (m, effects)
    }

    fn request(m: &mut M, r: Request) -> Vec<Effect<u8>> {
        m.on("c", Event::Request(r))
    }

    fn done(m: &mut M, landed: bool) {
        assert_eq!(m.on("c", Event::Done { landed }), vec![]);
    }

    #[test]
    fn an_install_runs_its_hook_and_is_forgotten_when_it_fails() {
        let mut m = M::default();
        assert_eq!(
            m.on("c", Event::Install(1)),
            vec![Effect::Run(Work::Install(1))]
        );
        assert_eq!(
            request(&mut m, Request::Pause),
            vec![Effect::Refuse(Refusal::Conflict)]
        );
        done(&mut m, false);
        assert_eq!(m.state("c"), Conn::Absent);

        m.on("c", Event::Install(1));
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true));
    }

    #[test]
    fn boot_rolls_back_installs_and_finishes_uninstalls_and_resets() {
        let (mut m, effects) = restored(Lifecycle::Installing, true, true);
        assert_eq!(effects, vec![Effect::Run(Work::RollBack(1))]);
        assert_eq!(
            m.state("c"),
            Conn::Absent,
            "a rolled back install is forgotten"
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), Conn::Absent);

        let (mut m, effects) = restored(Lifecycle::Uninstalling, true, true);
        assert_eq!(effects, vec![Effect::Run(Work::Uninstall(1))]);
        assert_eq!(
            request(&mut m, Request::Reset),
            vec![Effect::Refuse(Refusal::Conflict)]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), Conn::Absent);

        let (mut m, effects) = restored(Lifecycle::Resetting, false, true);
        assert_eq!(
            effects,
            vec![Effect::Run(Work::Reset {
                handle: 1,
                start: true
            })]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true), "a reset enables");

        let (_, effects) = restored(Lifecycle::Resetting, true, false);
        assert_eq!(
            effects,
            vec![Effect::Run(Work::Reset {
                handle: 1,
                start: false
            })]
        );
    }

    #[test]
    fn boot_starts_only_enabled_connectors_whose_config_loads() {
        let (mut m, effects) = restored(Lifecycle::Installed, true, true);
        assert_eq!(effects, vec![Effect::Run(Work::Start(1))]);
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true));

        for (enabled, loads) in [(false, true), (true, false), (false, false)] {
            let (m, effects) = restored(Lifecycle::Installed, enabled, loads);
            assert_eq!(effects, vec![]);
            assert_eq!(m.state("c"), ready(enabled, loads, false));
        }
    }

    #[test]
    fn one_operation_at_a_time_but_task_restarts_go_through() {
        let (mut m, _) = restored(Lifecycle::Installed, true, true);
        done(&mut m, true);
        assert_eq!(
            request(&mut m, Request::Pause),
            vec![Effect::Run(Work::Pause(1))]
        );
        for r in [
            Request::Uninstall,
            Request::Reset,
            Request::Resume,
            Request::Pause,
            Request::UpdateConfig(Config::new()),
        ] {
            assert_eq!(request(&mut m, r), vec![Effect::Refuse(Refusal::Conflict)]);
        }
        let task = Uuid::nil();
        assert_eq!(
            request(&mut m, Request::RestartTask(task)),
            vec![Effect::Rerun(1, task)]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(false, true, false));
    }

    #[test]
    fn a_call_locates_a_ready_connector_whose_config_loads_paused_or_not() {
        for enabled in [true, false] {
            let (mut m, _) = restored(Lifecycle::Installed, enabled, true);
            if enabled {
                done(&mut m, true);
            }
            assert_eq!(request(&mut m, Request::Locate), vec![Effect::Located(1)]);
        }
        let (mut m, _) = restored(Lifecycle::Installed, true, false);
        assert_eq!(
            request(&mut m, Request::Locate),
            vec![Effect::Refuse(Refusal::NotLoaded)]
        );
        let (mut m, _) = restored(Lifecycle::Uninstalling, true, true);
        assert_eq!(
            request(&mut m, Request::Locate),
            vec![Effect::Refuse(Refusal::Conflict)]
        );
        let mut m = M::default();
        assert_eq!(
            request(&mut m, Request::Locate),
            vec![Effect::Refuse(Refusal::NotFound)]
        );
    }

    #[test]
    fn resume_of_a_connector_that_is_not_paused_is_a_no_op() {
        let (mut m, _) = restored(Lifecycle::Installed, true, true);
        done(&mut m, true);
        assert_eq!(request(&mut m, Request::Resume), vec![Effect::Answer]);
        assert_eq!(m.state("c"), ready(true, true, true));

        // Enabled but idle because its config does not load: nothing to start either.
        let (mut m, _) = restored(Lifecycle::Installed, true, false);
        assert_eq!(request(&mut m, Request::Resume), vec![Effect::Answer]);

        // Paused: resumed, and started if its config loads.
        let (mut m, _) = restored(Lifecycle::Installed, false, true);
        assert_eq!(
            request(&mut m, Request::Resume),
            vec![Effect::Run(Work::Resume {
                handle: 1,
                enable: true,
                start: true
            })]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true));
        assert_eq!(
            request(&mut m, Request::Pause),
            vec![Effect::Run(Work::Pause(1))]
        );
        done(&mut m, false);
        assert_eq!(
            m.state("c"),
            ready(true, true, true),
            "a pause that did not land changes nothing"
        );
    }

    #[test]
    fn pause_of_a_paused_connector_is_a_no_op() {
        let (mut m, _) = restored(Lifecycle::Installed, false, true);
        assert_eq!(request(&mut m, Request::Pause), vec![Effect::Answer]);
    }

    #[test]
    fn a_config_update_starts_an_enabled_connector_whose_old_config_did_not_load() {
        let config = Config::new();
        let (mut m, _) = restored(Lifecycle::Installed, true, false);
        assert_eq!(
            request(&mut m, Request::UpdateConfig(config.clone())),
            vec![Effect::Run(Work::UpdateConfig {
                handle: 1,
                config: config.clone(),
                start: true
            })]
        );
        done(&mut m, false);
        assert_eq!(
            m.state("c"),
            ready(true, false, false),
            "a refused config changes nothing"
        );
        request(&mut m, Request::UpdateConfig(config.clone()));
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true));

        // Paused: it loads now, and stays paused.
        let (mut m, _) = restored(Lifecycle::Installed, false, false);
        assert_eq!(
            request(&mut m, Request::UpdateConfig(config.clone())),
            vec![Effect::Run(Work::UpdateConfig {
                handle: 1,
                config: config.clone(),
                start: false
            })]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(false, true, false));

        // Running: not started twice.
        let (mut m, _) = restored(Lifecycle::Installed, true, true);
        done(&mut m, true);
        assert_eq!(
            request(&mut m, Request::UpdateConfig(config.clone())),
            vec![Effect::Run(Work::UpdateConfig {
                handle: 1,
                config,
                start: false
            })]
        );
    }

    #[test]
    fn a_connector_is_forgotten_only_once_its_uninstall_landed() {
        let (mut m, _) = restored(Lifecycle::Installed, true, true);
        done(&mut m, true);
        request(&mut m, Request::Uninstall);
        done(&mut m, false);
        assert_eq!(
            m.state("c"),
            ready(true, true, false),
            "kept, its tasks stopped"
        );
        assert_eq!(
            request(&mut m, Request::Uninstall),
            vec![Effect::Run(Work::Uninstall(1))]
        );
        done(&mut m, true);
        assert_eq!(m.state("c"), Conn::Absent);
        assert_eq!(
            request(&mut m, Request::Pause),
            vec![Effect::Refuse(Refusal::NotFound)]
        );
    }

    #[test]
    fn shutdown_halts_every_connector_and_refuses_everything_after() {
        let (mut m, _) = restored(Lifecycle::Installed, true, true);
        m.on("i", Event::Install(2));
        let mut halted = m.shutdown();
        halted.sort_by_key(|e| format!("{e:?}"));
        assert_eq!(halted, vec![Effect::Halt(1), Effect::Halt(2)]);
        assert_eq!(
            request(&mut m, Request::Resume),
            vec![Effect::Refuse(Refusal::Stopped)]
        );
        assert_eq!(
            request(&mut m, Request::RestartTask(Uuid::nil())),
            vec![Effect::Refuse(Refusal::Stopped)]
        );
        assert_eq!(
            m.on("n", Event::Install(3)),
            vec![Effect::Refuse(Refusal::Stopped)]
        );
        assert_eq!(m.state("n"), Conn::Absent);
        // Workflows in progress still end.
        done(&mut m, true);
        assert_eq!(m.state("c"), ready(true, true, true));
    }
}
