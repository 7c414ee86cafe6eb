//! The life of one service as data: its states, the events it reacts to, and one pure
//! transition function, [`Machine::on`]. Nothing here makes a system call; the supervisor
//! carries out the [`Action`]s and feeds back what happened (a pid, an exit, a timer).
//!
//! Every timer lives inside the state that needs it, so a service never has a timer whose
//! meaning depends on something else ([`Machine::next_timer`] reads them). `Spawn` is
//! answered at once by the supervisor with `Spawned` or `SpawnFailed`.
//!
//! ```text
//! state        event                    → next state                actions
//! ----------   ----------------------   ----------------------      ----------------------------
//! Down         Start                    → Down                      Spawn(run | up)
//! Down,Backoff Spawned(run|up, pid)     → Starting{pid,give_up_at}  (readiness none: → Up)
//! Down,Backoff SpawnFailed(run|up)      → like an exit; permanent:  Log; ExitContainer(111) at
//!                                         Failed                    start-up, or (critical) code
//! Down,Backoff Restart                  → Down (restarts+1)         -
//! Backoff      Timer (until passed)     → Backoff (Down if stop)    Spawn(run); restarts+1
//! Backoff      Stop                     → Down                      -
//! Backoff      Enable                   → Backoff{until: now}       -
//! Starting     Ready                    → Up (longrun)              -
//! Starting     Timer (give_up_at)       → Stopping{then:TimedOut}   Log; Signal(down, CONT)
//!                                         oneshot: Stopping         Log; Signal(KILL)
//! Starting     Timer (check due)        → Starting                  Spawn(check)
//! Starting     Spawned(check)           → Starting{Checking}        -
//! Starting     Exited(check pid)        → Up if 0, else CheckAt     -
//! Starting     Timer (remind_at)        → Starting{remind_at+30s}   Log "still not ready"
//! Starting,Up  Exited(pid)              → see "after an exit"       Signal(KILL) to a check
//! Starting,Up  Stop                     → Stopping{kill_at}         Signal(down-signal, CONT)
//! Starting,Up  Restart                  → Stopping{then:Restart}    Signal(down-signal, CONT)
//! Stopping     Timer (kill_at)          → Stopping{kill_at: None}   Log; Signal(KILL)
//! Stopping     Restart                  → Stopping{then:Restart}    -
//! Stopping     Exited(pid)              → see "after an exit"       -
//! Finishing    Spawned(finish)          → Finishing{pid}            -
//! Finishing    SpawnFailed(finish)      → see "settle"              Log
//! Finishing    Exited(finish pid)       → see "settle"              -
//! Finishing    Timer (kill_at)          → Finishing{kill_at: None}  Log; Signal(KILL)
//! Finishing    Restart                  → Finishing{then:Restart}   -
//! Done         RunDown (oneshot)        → Downing (Down if no down) Spawn(down)
//! Downing      Spawned / SpawnFailed    → Downing{pid} / Down       - / Log
//! Downing      Exited(down pid)         → Down                      Log if it failed
//! Downing      Timer (kill_at)          → Downing{kill_at: None}    Log; Signal(KILL)
//! Done,Failed  Enable, Restart (longrun)→ Down, fresh backoff       -
//! any other pair                        → unchanged                 -
//!
//! after an exit:  oneshot `up`: 0 → Done; else → Failed + Log + ExitContainer(code)
//!                 (not while shutting down). longrun: → Finishing{kill_at: timeout-finish,
//!                 cut to the stop deadline} + Spawn(finish) when there is a `finish`,
//!                 else settle.
//! settle:         shutting down or stopped by `tend ctl stop` → Down; `ctl restart` → Down
//!                 (started again at once); a failed run counts against `restart-limit`:
//!                 over it → Failed for good; else per `restart` → Backoff{until}; else
//!                 Failed (non-zero) or Done (0). Failed or Done for good with `critical`
//!                 → ExitContainer(last code).
//! ```

use super::backoff::Backoff;
use crate::ctl::proto::{Runs, Shown};
use crate::init::Exit;
use crate::service::Policy;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::time::{Duration, Instant};

/// First delay between `check` runs; it doubles up to [`CHECK_MAX`].
pub const CHECK_FIRST: Duration = Duration::from_millis(50);
/// Longest delay between `check` runs.
pub const CHECK_MAX: Duration = Duration::from_secs(1);
/// tend's exit code when it cannot start (the contract's 111).
pub const START_ERROR: i32 = 111;
/// How often a service that is not ready (and has no `timeout-up`) is reported.
pub const REMIND_EVERY: Duration = Duration::from_secs(30);

/// Where a service is in its life; each state holds the data (pids, timers) it needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Not running and not scheduled.
    Down,
    /// `run` (or a oneshot's `up`) is running and not ready yet.
    Starting {
        /// Pid of `run` / `up`.
        pid: Pid,
        /// `timeout-up`: when it counts as failed.
        give_up_at: Option<Instant>,
        /// When to report again that it is still not ready (no `timeout-up`).
        remind_at: Option<Instant>,
        /// The readiness `check` poll.
        probe: Probe,
    },
    /// A longrun that is running and ready.
    Up {
        /// Pid of `run`.
        pid: Pid,
    },
    /// The down signal was sent; waiting for the exit.
    Stopping {
        /// Pid of `run` / `up`.
        pid: Pid,
        /// When to send SIGKILL; `None` once sent.
        kill_at: Option<Instant>,
        /// What the exit means.
        then: Then,
    },
    /// `finish` runs after `run` exited.
    Finishing {
        /// Pid of `finish` (`None` until spawned).
        pid: Option<Pid>,
        /// When to SIGKILL a hung `finish`; `None` once sent.
        kill_at: Option<Instant>,
        /// How `run` ended and what that means.
        ended: Ended,
    },
    /// Waiting to restart.
    Backoff {
        /// When to start again.
        until: Instant,
    },
    /// A oneshot's `down` runs during shutdown.
    Downing {
        /// Pid of `down` (`None` until spawned).
        pid: Option<Pid>,
        /// When to SIGKILL a hung `down`; `None` once sent.
        kill_at: Option<Instant>,
    },
    /// Stopped for good after a failure.
    Failed,
    /// Stopped for good after success: a oneshot that is up, or a longrun that exited 0
    /// under `on-failure`/`never`.
    Done,
}

/// The readiness `check` poll of a starting longrun.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// No `check`: readiness comes as [`Event::Ready`] (notification-fd, sd_notify), or
    /// not at all (a oneshot).
    Wait,
    /// Run `check` at `at`; the next delay is `every`.
    CheckAt {
        /// When to run it.
        at: Instant,
        /// Delay after a failed check (doubles to [`CHECK_MAX`]).
        every: Duration,
    },
    /// `check` is running.
    Checking {
        /// Its pid.
        pid: Pid,
        /// Delay after a failed check.
        every: Duration,
    },
}

/// What a stop or exit leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Decide by the restart policy.
    Settle,
    /// `tend ctl restart`: start again at once.
    Restart,
    /// It missed `timeout-up`: the run counts as failed.
    TimedOut,
}

/// How a run ended and what that means: what `finish` waits with and `settle` decides on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ended {
    /// How `run` ended.
    pub exit: Exit,
    /// What the exit means.
    pub then: Then,
}

impl Ended {
    /// An exit the restart policy decides on.
    fn settle(exit: Exit) -> Ended {
        Ended {
            exit,
            then: Then::Settle,
        }
    }
}

/// A program of a service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prog {
    /// A longrun's `run`.
    Run,
    /// A oneshot's `up`.
    Up,
    /// `finish CODE SIGNAL` (code 256 when killed by a signal, as s6 does).
    Finish {
        /// Exit code, or 256.
        code: i32,
        /// Signal number, or 0.
        sig: i32,
    },
    /// The readiness `check`.
    Check,
    /// A oneshot's `down`.
    Down,
}

/// Why a program could not be started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpawnError {
    /// The exit a shell would report (126 or 127).
    pub exit: Exit,
    /// Retrying cannot help: not executable, exec format error, setuid/setgid refused.
    pub permanent: bool,
    /// The reason, for messages.
    pub why: String,
}

/// Something that happened to a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Start it now (its dependencies are ready).
    Start,
    /// `tend ctl start`: leave a final state, or cut a backoff short.
    Enable,
    /// A program was started.
    Spawned(Prog, Pid),
    /// A program could not be started.
    SpawnFailed(Prog, SpawnError),
    /// A process of this service exited.
    Exited(Pid, Exit),
    /// The service said it is ready (notification-fd or sd_notify).
    Ready,
    /// Time passed: whatever timer of the state is due fires.
    Timer,
    /// Stop it (`tend ctl stop`, or its turn at shutdown).
    Stop,
    /// `tend ctl restart`.
    Restart,
    /// Shutdown: run a oneshot's `down`.
    RunDown,
}

/// What the supervisor must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start a program; answer with `Spawned` or `SpawnFailed` at once.
    Spawn(Prog),
    /// Send a signal to the process group of a pid.
    Signal(Pid, Signal),
    /// One line on stderr (the supervisor adds `tend: `).
    Log(String),
    /// Shut the container down with this exit code.
    ExitContainer(i32),
}

/// How a service reports readiness, as far as the machine cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadyBy {
    /// Ready once started.
    Start,
    /// A notification-fd newline on this fd.
    Fd(i32),
    /// sd_notify `READY=1`.
    Systemd,
    /// A polled `check`.
    Check,
}

/// The part of a service definition the machine reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conf {
    /// The service name, for messages.
    pub name: String,
    /// A oneshot (`up`/`down`) rather than a longrun.
    pub oneshot: bool,
    /// Readiness protocol.
    pub ready_by: ReadyBy,
    /// A longrun has a `finish`.
    pub has_finish: bool,
    /// A oneshot has a `down`.
    pub has_down: bool,
    /// Restart, stop and time limits, as the definition has them.
    pub policy: Policy,
}

/// What the machine needs to know of the world at the moment of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The current time.
    pub now: Instant,
    /// When a stop begun now must end in SIGKILL (its grace, cut to the stop deadline).
    pub kill_at: Instant,
    /// During shutdown: no process of the service may outlive this (`TEND_STOP_DEADLINE`).
    pub cut: Option<Instant>,
    /// tend is shutting down.
    pub shutting_down: bool,
    /// Start-up is not over (CMD not started, not every service settled).
    pub startup: bool,
    /// The service should run (`disabled` and `tend ctl stop` clear it).
    pub want_up: bool,
    /// CMD is waiting for the services to be ready.
    pub cmd_waiting: bool,
}

/// One service's state plus what it remembers across runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// Current state.
    pub state: State,
    /// When the current (or last) run started.
    pub started: Option<Instant>,
    /// Restarts so far, and how the last run ended.
    pub runs: Runs,
    /// Restart backoff.
    pub backoff: Backoff,
    /// When recent failed runs ended (for `restart-limit`).
    pub failures: Vec<Instant>,
}

impl Default for Machine {
    fn default() -> Self {
        Machine::new()
    }
}

impl State {
    /// The same `Starting` (pid and timers kept) with `new` as its probe; other states as they are.
    fn with_probe(mut self, new: Probe) -> State {
        if let State::Starting { probe, .. } = &mut self {
            *probe = new;
        }
        self
    }
}

impl Machine {
    /// A service that has not run yet.
    pub fn new() -> Machine {
        Machine {
            state: State::Down,
            started: None,
            runs: Runs::default(),
            backoff: Backoff::default(),
            failures: Vec::new(),
        }
    }

    /// Pid of `run` / `up`, while it runs.
    pub fn pid(&self) -> Option<Pid> {
        match self.state {
            State::Starting { pid, .. } | State::Up { pid } | State::Stopping { pid, .. } => {
                Some(pid)
            }
            _ => None,
        }
    }

    /// Whether `pid` is a process of this service (run, up, check, finish, down).
    pub fn owns(&self, p: Pid) -> bool {
        match &self.state {
            State::Starting {
                pid,
                probe: Probe::Checking { pid: c, .. },
                ..
            } => *pid == p || *c == p,
            State::Finishing { pid, .. } | State::Downing { pid, .. } => *pid == Some(p),
            _ => self.pid() == Some(p),
        }
    }

    /// True while one of its processes runs.
    pub fn active(&self) -> bool {
        matches!(
            self.state,
            State::Starting { .. }
                | State::Up { .. }
                | State::Stopping { .. }
                | State::Finishing { .. }
                | State::Downing { .. }
        )
    }

    /// The nearest timer of the current state.
    pub fn next_timer(&self) -> Option<Instant> {
        match &self.state {
            State::Starting {
                give_up_at,
                remind_at,
                probe,
                ..
            } => {
                let check = match probe {
                    Probe::CheckAt { at, .. } => Some(*at),
                    _ => None,
                };
                [*give_up_at, *remind_at, check].into_iter().flatten().min()
            }
            State::Stopping { kill_at, .. }
            | State::Finishing { kill_at, .. }
            | State::Downing { kill_at, .. } => *kill_at,
            State::Backoff { until } => Some(*until),
            _ => None,
        }
    }

    /// The state as `tend ctl status` shows it: down, starting, up, ready, stopping,
    /// finishing, backoff, failed, done.
    pub fn name(&self, conf: &Conf) -> &'static str {
        let shown = match self.state {
            State::Down => Shown::Down,
            State::Starting { .. } => Shown::Starting,
            State::Up { .. } if conf.ready_by == ReadyBy::Start => Shown::Up,
            State::Up { .. } => Shown::Ready,
            State::Stopping { .. } | State::Downing { .. } => Shown::Stopping,
            State::Finishing { .. } => Shown::Finishing,
            State::Backoff { .. } => Shown::Backoff,
            State::Failed => Shown::Failed,
            State::Done if conf.oneshot => Shown::Up,
            State::Done => Shown::Done,
        };
        shown.as_str()
    }

    /// Ready for dependents: a ready longrun or a oneshot whose `up` succeeded.
    pub fn satisfies_dependents(&self, conf: &Conf) -> bool {
        match self.state {
            State::Up { .. } => true,
            State::Done => conf.oneshot,
            _ => false,
        }
    }

    /// Handles one event; returns what the supervisor must do. Pure: no system call.
    pub fn on(&mut self, conf: &Conf, ev: Event, cx: &Ctx) -> Vec<Action> {
        let mut out = Vec::new();
        let now = cx.now;
        let state = std::mem::replace(&mut self.state, State::Down);
        self.state = match (state, ev) {
            // --- not running ---
            (State::Down, Event::Start) => {
                out.push(Action::Spawn(first_prog(conf)));
                State::Down
            }
            (State::Down | State::Backoff { .. }, Event::Spawned(p, pid))
                if p == first_prog(conf) =>
            {
                self.started = Some(now);
                self.running(conf, pid, cx)
            }
            (State::Down | State::Backoff { .. }, Event::SpawnFailed(p, e))
                if p == first_prog(conf) =>
            {
                self.started = Some(now);
                self.runs.last_exit = Some(e.exit);
                out.push(Action::Log(format!(
                    "{}: cannot run {}: {}",
                    conf.name,
                    if conf.oneshot { "up" } else { "run" },
                    e.why
                )));
                if e.permanent {
                    self.give_up_permanent(conf, e.exit, cx, &mut out)
                } else if conf.oneshot {
                    self.up_ended(conf, e.exit, cx, &mut out)
                } else {
                    self.settle(conf, Ended::settle(e.exit), cx, &mut out)
                }
            }
            (State::Down | State::Backoff { .. }, Event::Restart) => {
                self.runs.restarts += 1;
                State::Down
            }
            (State::Backoff { until }, Event::Timer) if now >= until => {
                if cx.shutting_down {
                    State::Down
                } else {
                    self.runs.restarts += 1;
                    out.push(Action::Spawn(first_prog(conf)));
                    State::Backoff { until }
                }
            }
            (State::Backoff { .. }, Event::Stop) => State::Down,
            (State::Backoff { .. }, Event::Enable) => State::Backoff { until: now },

            // --- starting: readiness, checks, timeout-up, reminders ---
            (State::Starting { pid, .. }, Event::Ready) if !conf.oneshot => State::Up { pid },
            (
                State::Starting {
                    pid,
                    give_up_at,
                    remind_at,
                    probe,
                },
                Event::Timer,
            ) => {
                if give_up_at.is_some_and(|t| now >= t) {
                    let ms = conf.policy.timeout_up.map(|d| d.as_millis()).unwrap_or(0);
                    kill_check(probe, &mut out);
                    if conf.oneshot {
                        out.push(Action::Log(format!(
                            "{}: up not done after {ms} ms (timeout-up); killing it",
                            conf.name
                        )));
                        out.push(Action::Signal(pid, Signal::SIGKILL));
                        State::Stopping {
                            pid,
                            kill_at: None,
                            then: Then::TimedOut,
                        }
                    } else {
                        out.push(Action::Log(format!(
                            "{}: not ready after {ms} ms (timeout-up); stopping it",
                            conf.name
                        )));
                        stop(conf, pid, Then::TimedOut, cx, &mut out)
                    }
                } else {
                    let mut remind_at = remind_at;
                    if remind_at.is_some_and(|t| now >= t) {
                        out.push(Action::Log(reminder(conf, self.started, now, cx)));
                        remind_at = Some(now + REMIND_EVERY);
                    }
                    if matches!(probe, Probe::CheckAt { at, .. } if now >= at) {
                        out.push(Action::Spawn(Prog::Check));
                    }
                    State::Starting {
                        pid,
                        give_up_at,
                        remind_at,
                        probe,
                    }
                }
            }
            (
                st @ State::Starting {
                    probe: Probe::CheckAt { every, .. },
                    ..
                },
                Event::Spawned(Prog::Check, c),
            ) => st.with_probe(Probe::Checking { pid: c, every }),
            (
                st @ State::Starting {
                    probe: Probe::CheckAt { every, .. },
                    ..
                },
                Event::SpawnFailed(Prog::Check, e),
            ) => {
                out.push(Action::Log(format!(
                    "{}: cannot run check: {}",
                    conf.name, e.why
                )));
                st.with_probe(Probe::CheckAt {
                    at: now + CHECK_MAX,
                    every,
                })
            }
            (
                st @ State::Starting {
                    pid,
                    probe: Probe::Checking { pid: c, every },
                    ..
                },
                Event::Exited(p, exit),
            ) if p == c => {
                if exit.success() {
                    State::Up { pid }
                } else {
                    st.with_probe(Probe::CheckAt {
                        at: now + every,
                        every: (every * 2).min(CHECK_MAX),
                    })
                }
            }

            // --- running: exit, stop, restart ---
            (State::Starting { pid, probe, .. }, Event::Exited(p, exit)) if p == pid => {
                kill_check(probe, &mut out);
                self.exited(conf, Ended::settle(exit), cx, &mut out)
            }
            (State::Up { pid }, Event::Exited(p, exit)) if p == pid => {
                self.exited(conf, Ended::settle(exit), cx, &mut out)
            }
            (State::Starting { pid, probe, .. }, Event::Stop) => {
                kill_check(probe, &mut out);
                stop(conf, pid, Then::Settle, cx, &mut out)
            }
            (State::Up { pid }, Event::Stop) => stop(conf, pid, Then::Settle, cx, &mut out),
            (State::Starting { pid, probe, .. }, Event::Restart) if !conf.oneshot => {
                kill_check(probe, &mut out);
                stop(conf, pid, Then::Restart, cx, &mut out)
            }
            (State::Up { pid }, Event::Restart) => stop(conf, pid, Then::Restart, cx, &mut out),

            // --- stopping ---
            (
                State::Stopping {
                    pid,
                    kill_at: Some(t),
                    then,
                },
                Event::Timer,
            ) if now >= t => {
                kill_late(&mut out, conf, "did not stop", pid);
                State::Stopping {
                    pid,
                    kill_at: None,
                    then,
                }
            }
            (State::Stopping { pid, kill_at, .. }, Event::Restart) if !conf.oneshot => {
                State::Stopping {
                    pid,
                    kill_at,
                    then: Then::Restart,
                }
            }
            (State::Stopping { pid, then, .. }, Event::Exited(p, exit)) if p == pid => {
                self.exited(conf, Ended { exit, then }, cx, &mut out)
            }

            // --- finish ---
            (
                State::Finishing {
                    pid: None,
                    kill_at,
                    ended,
                },
                Event::Spawned(Prog::Finish { .. }, p),
            ) => State::Finishing {
                pid: Some(p),
                kill_at,
                ended,
            },
            (
                State::Finishing {
                    pid: None, ended, ..
                },
                Event::SpawnFailed(Prog::Finish { .. }, e),
            ) => {
                out.push(Action::Log(format!(
                    "{}: cannot run finish: {}",
                    conf.name, e.why
                )));
                self.settle(conf, ended, cx, &mut out)
            }
            (
                State::Finishing {
                    pid: Some(f),
                    ended,
                    ..
                },
                Event::Exited(p, _),
            ) if p == f => self.settle(conf, ended, cx, &mut out),
            (
                State::Finishing {
                    pid: Some(f),
                    kill_at: Some(t),
                    ended,
                },
                Event::Timer,
            ) if now >= t => {
                // During shutdown the limit may have been cut to the stop deadline.
                out.push(Action::Log(format!(
                    "{}: finish did not exit within {} ms{}; killed",
                    conf.name,
                    conf.policy.timeout_finish.as_millis(),
                    if cx.shutting_down {
                        " or by the stop deadline"
                    } else {
                        ""
                    }
                )));
                out.push(Action::Signal(f, Signal::SIGKILL));
                State::Finishing {
                    pid: Some(f),
                    kill_at: None,
                    ended,
                }
            }
            (
                State::Finishing {
                    pid,
                    kill_at,
                    ended,
                },
                Event::Restart,
            ) => State::Finishing {
                pid,
                kill_at,
                ended: Ended {
                    then: Then::Restart,
                    ..ended
                },
            },

            // --- a oneshot's down at shutdown ---
            (State::Done, Event::RunDown) if conf.oneshot => {
                if conf.has_down {
                    out.push(Action::Spawn(Prog::Down));
                    State::Downing {
                        pid: None,
                        kill_at: Some(cx.kill_at),
                    }
                } else {
                    State::Down
                }
            }
            (State::Downing { pid: None, kill_at }, Event::Spawned(Prog::Down, p)) => {
                State::Downing {
                    pid: Some(p),
                    kill_at,
                }
            }
            (State::Downing { pid: None, .. }, Event::SpawnFailed(Prog::Down, e)) => {
                out.push(Action::Log(format!(
                    "{}: cannot run down: {}",
                    conf.name, e.why
                )));
                State::Down
            }
            (State::Downing { pid: Some(d), .. }, Event::Exited(p, exit)) if p == d => {
                if !exit.success() {
                    out.push(Action::Log(format!("{}: down failed ({exit})", conf.name)));
                }
                State::Down
            }
            (
                State::Downing {
                    pid: Some(d),
                    kill_at: Some(t),
                },
                Event::Timer,
            ) if now >= t => {
                kill_late(&mut out, conf, "down did not exit", d);
                State::Downing {
                    pid: Some(d),
                    kill_at: None,
                }
            }

            // --- final states ---
            (State::Done | State::Failed, ev @ (Event::Enable | Event::Restart))
                if !conf.oneshot =>
            {
                if ev == Event::Restart {
                    self.runs.restarts += 1;
                }
                self.backoff = Backoff::default();
                self.failures.clear();
                State::Down
            }

            // Every other pair changes nothing: a stale timer, an exit of a process this
            // state no longer tracks (a killed check), a stop of what is not running.
            (s, _) => s,
        };
        out
    }

    /// `run`/`up` was started: Starting, or Up at once when readiness is "started".
    fn running(&mut self, conf: &Conf, pid: Pid, cx: &Ctx) -> State {
        if !conf.oneshot && conf.ready_by == ReadyBy::Start {
            return State::Up { pid };
        }
        let give_up_at = conf.policy.timeout_up.map(|t| after(cx.now, t));
        let probe = if !conf.oneshot && conf.ready_by == ReadyBy::Check {
            Probe::CheckAt {
                at: cx.now,
                every: CHECK_FIRST,
            }
        } else {
            Probe::Wait
        };
        State::Starting {
            pid,
            give_up_at,
            remind_at: give_up_at.is_none().then(|| cx.now + REMIND_EVERY),
            probe,
        }
    }

    /// `run` or `up` exited (or was killed after a stop).
    fn exited(&mut self, conf: &Conf, ended: Ended, cx: &Ctx, out: &mut Vec<Action>) -> State {
        let exit = ended.exit;
        self.runs.last_exit = Some(exit);
        if conf.oneshot {
            return self.up_ended(conf, exit, cx, out);
        }
        if conf.has_finish {
            let (code, sig) = match exit {
                Exit::Code(c) => (c, 0),
                Exit::Signal(n) => (256, n),
            };
            out.push(Action::Spawn(Prog::Finish { code, sig }));
            let limit = after(cx.now, conf.policy.timeout_finish);
            return State::Finishing {
                pid: None,
                kill_at: Some(cx.cut.map_or(limit, |c| c.min(limit))),
                ended,
            };
        }
        self.settle(conf, ended, cx, out)
    }

    /// A oneshot's `up` ended: 0 is up; anything else stops start-up.
    fn up_ended(&mut self, conf: &Conf, exit: Exit, cx: &Ctx, out: &mut Vec<Action>) -> State {
        if exit.success() {
            return State::Done;
        }
        if !cx.shutting_down {
            out.push(Action::Log(format!(
                "{}: up failed ({exit}); start-up stopped",
                conf.name
            )));
            out.push(Action::ExitContainer(exit.code()));
        }
        State::Failed
    }

    /// A start error that retrying cannot cure.
    fn give_up_permanent(
        &mut self,
        conf: &Conf,
        exit: Exit,
        cx: &Ctx,
        out: &mut Vec<Action>,
    ) -> State {
        if cx.shutting_down {
            return State::Failed;
        }
        if cx.startup {
            out.push(Action::Log(format!(
                "{}: a permanent start error; start-up stopped",
                conf.name
            )));
            out.push(Action::ExitContainer(START_ERROR));
            return State::Failed;
        }
        out.push(Action::Log(format!(
            "{}: a permanent start error; failed for good",
            conf.name
        )));
        if conf.policy.critical {
            out.push(Action::ExitContainer(exit.code()));
        }
        State::Failed
    }

    /// Decides what a longrun's exit means, once `finish` (if any) is done.
    fn settle(&mut self, conf: &Conf, ended: Ended, cx: &Ctx, out: &mut Vec<Action>) -> State {
        let Ended { exit, then } = ended;
        if cx.shutting_down || !cx.want_up {
            return State::Down;
        }
        if then == Then::Restart {
            self.runs.restarts += 1;
            return State::Down;
        }
        let failed = !exit.success() || then == Then::TimedOut;
        if failed && self.over_limit(conf, cx.now) {
            out.push(Action::Log(format!(
                "{}: failed {} times{}; failed for good (restart-limit)",
                conf.name,
                self.failures.len(),
                conf.policy
                    .restart_limit
                    .and_then(|l| l.within)
                    .map(|d| format!(" within {} ms", d.as_millis()))
                    .unwrap_or_default()
            )));
            return self.for_good(conf, State::Failed, exit, out);
        }
        let again = match conf.policy.restart {
            crate::service::Restart::Always => true,
            crate::service::Restart::OnFailure => failed,
            crate::service::Restart::Never => false,
        };
        if again {
            let ran = self
                .started
                .map(|t| cx.now.saturating_duration_since(t))
                .unwrap_or_default();
            let delay = self.backoff.next_delay(ran);
            return State::Backoff {
                until: cx.now + delay,
            };
        }
        let end = if failed { State::Failed } else { State::Done };
        self.for_good(conf, end, exit, out)
    }

    /// Records a failed run; true when `restart-limit` is now reached.
    fn over_limit(&mut self, conf: &Conf, now: Instant) -> bool {
        let Some(limit) = conf.policy.restart_limit else {
            return false;
        };
        if let Some(w) = limit.within {
            self.failures
                .retain(|&t| now.saturating_duration_since(t) < w);
        }
        self.failures.push(now);
        self.failures.len() >= limit.count as usize
    }

    /// Stopped for good: a `critical` service takes the container with it.
    fn for_good(&mut self, conf: &Conf, end: State, exit: Exit, out: &mut Vec<Action>) -> State {
        if conf.policy.critical {
            out.push(Action::Log(format!(
                "critical service {} stopped for good ({exit}); shutting down",
                conf.name
            )));
            out.push(Action::ExitContainer(exit.code()));
        }
        end
    }
}

/// `now + d`, or about a year from now when `d` is too large to add (a huge timeout file).
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .unwrap_or(now + Duration::from_secs(365 * 86_400))
}

/// The program that starts a service.
fn first_prog(conf: &Conf) -> Prog {
    if conf.oneshot { Prog::Up } else { Prog::Run }
}

/// `NAME: WHAT in time; sending SIGKILL`, and the SIGKILL.
fn kill_late(out: &mut Vec<Action>, conf: &Conf, what: &str, pid: Pid) {
    out.push(Action::Log(format!(
        "{}: {what} in time; sending SIGKILL",
        conf.name
    )));
    out.push(Action::Signal(pid, Signal::SIGKILL));
}

/// The down signal (and SIGCONT, so a stopped process can act on it); SIGKILL at `kill_at`.
fn stop(conf: &Conf, pid: Pid, then: Then, cx: &Ctx, out: &mut Vec<Action>) -> State {
    out.push(Action::Signal(pid, conf.policy.down_signal));
    out.push(Action::Signal(pid, Signal::SIGCONT));
    State::Stopping {
        pid,
        kill_at: Some(cx.kill_at),
        then,
    }
}

/// A running `check` is pointless once its service exits or stops.
fn kill_check(probe: Probe, out: &mut Vec<Action>) {
    if let Probe::Checking { pid, .. } = probe {
        out.push(Action::Signal(pid, Signal::SIGKILL));
    }
}

/// The periodic "still not ready" line: who, for how long, and what it waits for.
fn reminder(conf: &Conf, started: Option<Instant>, now: Instant, cx: &Ctx) -> String {
    let secs = started
        .map(|t| now.saturating_duration_since(t).as_secs())
        .unwrap_or(0);
    let what = match (conf.oneshot, conf.ready_by) {
        (true, _) => "its up to exit".to_owned(),
        (false, ReadyBy::Fd(n)) => format!("a newline on its notification-fd {n}"),
        (false, ReadyBy::Systemd) => "READY=1 on its NOTIFY_SOCKET".to_owned(),
        (false, ReadyBy::Check) => "its check to exit 0".to_owned(),
        (false, ReadyBy::Start) => "its start".to_owned(),
    };
    let who = if cx.cmd_waiting {
        "CMD waits for it"
    } else {
        "its dependents wait for it"
    };
    format!(
        "{}: still not ready after {secs} s, waiting for {what}; {who} (no timeout-up)",
        conf.name
    )
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
