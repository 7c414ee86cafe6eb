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
//! Done,Failed  Enable (longrun)         → Down, fresh backoff       -
//! any other pair                        → unchanged                 -
//!
//! after an exit:  oneshot `up`: 0 → Done; else → Failed + Log + ExitContainer(code)
//!                 (not while shutting down). longrun: → Finishing + Spawn(finish) when
//!                 there is a `finish`, else settle.
//! settle:         shutting down or stopped by `tend ctl stop` → Down; `ctl restart` → Down
//!                 (started again at once); a failed run counts against `restart-limit`:
//!                 over it → Failed for good; else per `restart` → Backoff{until}; else
//!                 Failed (non-zero) or Done (0). Failed or Done for good with `critical`
//!                 → ExitContainer(last code).
//! ```

use super::backoff::Backoff;
use crate::init::Exit;
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
        /// How `run` ended.
        exit: Exit,
        /// What the exit means.
        then: Then,
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

pub use crate::service::RestartLimit;

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
    /// Restart policy.
    pub restart: crate::service::Restart,
    /// Its stopping for good shuts the container down.
    pub critical: bool,
    /// `timeout-up`.
    pub timeout_up: Option<Duration>,
    /// Time limit of `finish`.
    pub timeout_finish: Duration,
    /// Signal that stops it.
    pub down_signal: Signal,
    /// `restart-limit`.
    pub restart_limit: Option<RestartLimit>,
}

/// What the machine needs to know of the world at the moment of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The current time.
    pub now: Instant,
    /// When a stop begun now must end in SIGKILL (its grace, cut to the stop deadline).
    pub kill_at: Instant,
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
    /// Restarts so far.
    pub restarts: u64,
    /// How the last run ended.
    pub last_exit: Option<Exit>,
    /// When the current (or last) run started.
    pub started: Option<Instant>,
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

impl Machine {
    /// A service that has not run yet.
    pub fn new() -> Machine {
        Machine {
            state: State::Down,
            restarts: 0,
            last_exit: None,
            started: None,
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
        match self.state {
            State::Down => "down",
            State::Starting { .. } => "starting",
            State::Up { .. } if conf.ready_by == ReadyBy::Start => "up",
            State::Up { .. } => "ready",
            State::Stopping { .. } | State::Downing { .. } => "stopping",
            State::Finishing { .. } => "finishing",
            State::Backoff { .. } => "backoff",
            State::Failed => "failed",
            State::Done if conf.oneshot => "up",
            State::Done => "done",
        }
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
                self.last_exit = Some(e.exit);
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
                    self.settle(conf, e.exit, Then::Settle, cx, &mut out)
                }
            }
            (State::Down | State::Backoff { .. }, Event::Restart) => {
                self.restarts += 1;
                State::Down
            }
            (State::Backoff { until }, Event::Timer) if now >= until => {
                if cx.shutting_down {
                    State::Down
                } else {
                    self.restarts += 1;
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
                    let ms = conf.timeout_up.map(|d| d.as_millis()).unwrap_or(0);
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
                State::Starting {
                    pid,
                    give_up_at,
                    remind_at,
                    probe: Probe::CheckAt { every, .. },
                },
                Event::Spawned(Prog::Check, c),
            ) => State::Starting {
                pid,
                give_up_at,
                remind_at,
                probe: Probe::Checking { pid: c, every },
            },
            (
                State::Starting {
                    pid,
                    give_up_at,
                    remind_at,
                    probe: Probe::CheckAt { every, .. },
                },
                Event::SpawnFailed(Prog::Check, e),
            ) => {
                out.push(Action::Log(format!(
                    "{}: cannot run check: {}",
                    conf.name, e.why
                )));
                State::Starting {
                    pid,
                    give_up_at,
                    remind_at,
                    probe: Probe::CheckAt {
                        at: now + CHECK_MAX,
                        every,
                    },
                }
            }
            (
                State::Starting {
                    pid,
                    give_up_at,
                    remind_at,
                    probe: Probe::Checking { pid: c, every },
                },
                Event::Exited(p, exit),
            ) if p == c => {
                if exit.success() {
                    State::Up { pid }
                } else {
                    State::Starting {
                        pid,
                        give_up_at,
                        remind_at,
                        probe: Probe::CheckAt {
                            at: now + every,
                            every: (every * 2).min(CHECK_MAX),
                        },
                    }
                }
            }

            // --- running: exit, stop, restart ---
            (State::Starting { pid, probe, .. }, Event::Exited(p, exit)) if p == pid => {
                kill_check(probe, &mut out);
                self.exited(conf, exit, Then::Settle, cx, &mut out)
            }
            (State::Up { pid }, Event::Exited(p, exit)) if p == pid => {
                self.exited(conf, exit, Then::Settle, cx, &mut out)
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
                out.push(Action::Log(format!(
                    "{}: did not stop in time; sending SIGKILL",
                    conf.name
                )));
                out.push(Action::Signal(pid, Signal::SIGKILL));
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
                self.exited(conf, exit, then, cx, &mut out)
            }

            // --- finish ---
            (
                State::Finishing {
                    pid: None,
                    kill_at,
                    exit,
                    then,
                },
                Event::Spawned(Prog::Finish { .. }, p),
            ) => State::Finishing {
                pid: Some(p),
                kill_at,
                exit,
                then,
            },
            (
                State::Finishing {
                    pid: None,
                    exit,
                    then,
                    ..
                },
                Event::SpawnFailed(Prog::Finish { .. }, e),
            ) => {
                out.push(Action::Log(format!(
                    "{}: cannot run finish: {}",
                    conf.name, e.why
                )));
                self.settle(conf, exit, then, cx, &mut out)
            }
            (
                State::Finishing {
                    pid: Some(f),
                    exit,
                    then,
                    ..
                },
                Event::Exited(p, _),
            ) if p == f => self.settle(conf, exit, then, cx, &mut out),
            (
                State::Finishing {
                    pid: Some(f),
                    kill_at: Some(t),
                    exit,
                    then,
                },
                Event::Timer,
            ) if now >= t => {
                out.push(Action::Log(format!(
                    "{}: finish did not exit within {} ms; killed",
                    conf.name,
                    conf.timeout_finish.as_millis()
                )));
                out.push(Action::Signal(f, Signal::SIGKILL));
                State::Finishing {
                    pid: Some(f),
                    kill_at: None,
                    exit,
                    then,
                }
            }
            (
                State::Finishing {
                    pid, kill_at, exit, ..
                },
                Event::Restart,
            ) => State::Finishing {
                pid,
                kill_at,
                exit,
                then: Then::Restart,
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
                out.push(Action::Log(format!(
                    "{}: down did not exit in time; sending SIGKILL",
                    conf.name
                )));
                out.push(Action::Signal(d, Signal::SIGKILL));
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
                    self.restarts += 1;
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
        let give_up_at = conf.timeout_up.map(|t| cx.now + t);
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
    fn exited(
        &mut self,
        conf: &Conf,
        exit: Exit,
        then: Then,
        cx: &Ctx,
        out: &mut Vec<Action>,
    ) -> State {
        self.last_exit = Some(exit);
        if conf.oneshot {
            return self.up_ended(conf, exit, cx, out);
        }
        if conf.has_finish {
            let (code, sig) = match exit {
                Exit::Code(c) => (c, 0),
                Exit::Signal(n) => (256, n),
            };
            out.push(Action::Spawn(Prog::Finish { code, sig }));
            return State::Finishing {
                pid: None,
                kill_at: Some(cx.now + conf.timeout_finish),
                exit,
                then,
            };
        }
        self.settle(conf, exit, then, cx, out)
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
        if conf.critical {
            out.push(Action::ExitContainer(exit.code()));
        }
        State::Failed
    }

    /// Decides what a longrun's exit means, once `finish` (if any) is done.
    fn settle(
        &mut self,
        conf: &Conf,
        exit: Exit,
        then: Then,
        cx: &Ctx,
        out: &mut Vec<Action>,
    ) -> State {
        if cx.shutting_down || !cx.want_up {
            return State::Down;
        }
        if then == Then::Restart {
            self.restarts += 1;
            return State::Down;
        }
        let failed = !exit.success() || then == Then::TimedOut;
        if failed && self.over_limit(conf, cx.now) {
            out.push(Action::Log(format!(
                "{}: failed {} times{}; failed for good (restart-limit)",
                conf.name,
                self.failures.len(),
                conf.restart_limit
                    .and_then(|l| l.within)
                    .map(|d| format!(" within {} ms", d.as_millis()))
                    .unwrap_or_default()
            )));
            return self.for_good(conf, State::Failed, exit, out);
        }
        let again = match conf.restart {
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
        let Some(limit) = conf.restart_limit else {
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
        if conf.critical {
            out.push(Action::Log(format!(
                "critical service {} stopped for good ({exit}); shutting down",
                conf.name
            )));
            out.push(Action::ExitContainer(exit.code()));
        }
        end
    }
}

/// The program that starts a service.
fn first_prog(conf: &Conf) -> Prog {
    if conf.oneshot { Prog::Up } else { Prog::Run }
}

/// The down signal (and SIGCONT, so a stopped process can act on it); SIGKILL at `kill_at`.
fn stop(conf: &Conf, pid: Pid, then: Then, cx: &Ctx, out: &mut Vec<Action>) -> State {
    out.push(Action::Signal(pid, conf.down_signal));
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
mod tests {
    //! Every (state, event) pair, without a process: the table lists the pairs that do
    //! something; every other pair must leave the state alone and ask for nothing.

    use super::*;
    use crate::service::Restart;
    use Action::{ExitContainer as Exit_, Log, Signal as Sig, Spawn};
    use Signal::{SIGCONT, SIGKILL, SIGTERM};

    const RUN: Pid = Pid::from_raw(100);
    const CHECK: Pid = Pid::from_raw(200);
    const AUX: Pid = Pid::from_raw(300);
    const STRANGER: Pid = Pid::from_raw(999);
    const EVERY: Duration = Duration::from_millis(100);

    /// Fixed instants: fixtures' timers are due (`due`) or not (`later`) at `now`.
    struct T {
        now: Instant,
        due: Instant,
        later: Instant,
        kill: Instant,
    }

    fn t() -> T {
        // A fixed base far enough from boot that subtracting never underflows.
        let base = Instant::now() + Duration::from_secs(1000);
        T {
            now: base,
            due: base - Duration::from_secs(5),
            later: base + Duration::from_secs(50),
            kill: base + Duration::from_secs(3),
        }
    }

    fn cx(t: &T) -> Ctx {
        Ctx {
            now: t.now,
            kill_at: t.kill,
            shutting_down: false,
            startup: false,
            want_up: true,
            cmd_waiting: false,
        }
    }

    fn longrun() -> Conf {
        Conf {
            name: "svc".into(),
            oneshot: false,
            ready_by: ReadyBy::Check,
            has_finish: true,
            has_down: false,
            restart: Restart::Always,
            critical: false,
            timeout_up: Some(Duration::from_secs(1)),
            timeout_finish: Duration::from_secs(2),
            down_signal: SIGTERM,
            restart_limit: None,
        }
    }

    fn oneshot() -> Conf {
        Conf {
            oneshot: true,
            ready_by: ReadyBy::Start,
            has_finish: false,
            has_down: true,
            ..longrun()
        }
    }

    fn starting(give_up_at: Option<Instant>, remind_at: Option<Instant>, probe: Probe) -> State {
        State::Starting {
            pid: RUN,
            give_up_at,
            remind_at,
            probe,
        }
    }

    /// Every state shape a longrun (`L`) or a oneshot (`O`) can be in.
    fn states(t: &T) -> Vec<(&'static str, &'static str, State)> {
        let fin = |pid, kill_at| State::Finishing {
            pid,
            kill_at,
            exit: Exit::Code(1),
            then: Then::Settle,
        };
        vec![
            ("LO", "down", State::Down),
            ("LO", "starting", starting(None, None, Probe::Wait)),
            (
                "L",
                "starting-check-due",
                starting(
                    None,
                    None,
                    Probe::CheckAt {
                        at: t.due,
                        every: EVERY,
                    },
                ),
            ),
            (
                "L",
                "starting-checking",
                starting(
                    None,
                    None,
                    Probe::Checking {
                        pid: CHECK,
                        every: EVERY,
                    },
                ),
            ),
            (
                "LO",
                "starting-late",
                starting(Some(t.due), None, Probe::Wait),
            ),
            (
                "LO",
                "starting-remind",
                starting(None, Some(t.due), Probe::Wait),
            ),
            ("L", "up", State::Up { pid: RUN }),
            (
                "LO",
                "stopping",
                State::Stopping {
                    pid: RUN,
                    kill_at: Some(t.due),
                    then: Then::Settle,
                },
            ),
            (
                "LO",
                "stopping-killed",
                State::Stopping {
                    pid: RUN,
                    kill_at: None,
                    then: Then::Settle,
                },
            ),
            ("L", "finishing-spawn", fin(None, Some(t.later))),
            ("L", "finishing", fin(Some(AUX), Some(t.due))),
            ("L", "backoff-due", State::Backoff { until: t.due }),
            ("L", "backoff-later", State::Backoff { until: t.later }),
            (
                "O",
                "downing-spawn",
                State::Downing {
                    pid: None,
                    kill_at: Some(t.later),
                },
            ),
            (
                "O",
                "downing",
                State::Downing {
                    pid: Some(AUX),
                    kill_at: Some(t.due),
                },
            ),
            ("LO", "failed", State::Failed),
            ("LO", "done", State::Done),
        ]
    }

    fn err(permanent: bool) -> SpawnError {
        SpawnError {
            exit: Exit::Code(if permanent { 126 } else { 127 }),
            permanent,
            why: "nope".into(),
        }
    }

    fn events() -> Vec<(&'static str, Event)> {
        let fin = Prog::Finish { code: 1, sig: 0 };
        vec![
            ("start", Event::Start),
            ("enable", Event::Enable),
            ("spawned-run", Event::Spawned(Prog::Run, RUN)),
            ("spawned-up", Event::Spawned(Prog::Up, RUN)),
            ("spawned-check", Event::Spawned(Prog::Check, CHECK)),
            ("spawned-finish", Event::Spawned(fin, AUX)),
            ("spawned-down", Event::Spawned(Prog::Down, AUX)),
            ("spawnfail-run", Event::SpawnFailed(Prog::Run, err(false))),
            (
                "spawnfail-run-perm",
                Event::SpawnFailed(Prog::Run, err(true)),
            ),
            ("spawnfail-up", Event::SpawnFailed(Prog::Up, err(false))),
            ("spawnfail-up-perm", Event::SpawnFailed(Prog::Up, err(true))),
            (
                "spawnfail-check",
                Event::SpawnFailed(Prog::Check, err(false)),
            ),
            ("spawnfail-finish", Event::SpawnFailed(fin, err(false))),
            ("spawnfail-down", Event::SpawnFailed(Prog::Down, err(false))),
            ("exited-run-0", Event::Exited(RUN, Exit::Code(0))),
            ("exited-run-1", Event::Exited(RUN, Exit::Code(1))),
            ("exited-check-0", Event::Exited(CHECK, Exit::Code(0))),
            ("exited-check-1", Event::Exited(CHECK, Exit::Code(1))),
            ("exited-aux", Event::Exited(AUX, Exit::Code(0))),
            ("exited-stranger", Event::Exited(STRANGER, Exit::Code(0))),
            ("ready", Event::Ready),
            ("timer", Event::Timer),
            ("stop", Event::Stop),
            ("restart", Event::Restart),
            ("rundown", Event::RunDown),
        ]
    }

    type Row = (&'static str, &'static str, &'static str, State, Vec<Action>);

    fn log(s: &str) -> Action {
        Log(s.into())
    }

    /// The pairs that do something. `Log` texts are matched as substrings.
    fn table(t: &T) -> Vec<Row> {
        let now = t.now;
        let fin = |code, then| State::Finishing {
            pid: None,
            kill_at: Some(now + Duration::from_secs(2)),
            exit: Exit::Code(code),
            then,
        };
        let spawn_fin = |code| Spawn(Prog::Finish { code, sig: 0 });
        let stopping = |then| State::Stopping {
            pid: RUN,
            kill_at: Some(t.kill),
            then,
        };
        let term = || vec![Sig(RUN, SIGTERM), Sig(RUN, SIGCONT)];
        let kill_check_then_term =
            || vec![Sig(CHECK, SIGKILL), Sig(RUN, SIGTERM), Sig(RUN, SIGCONT)];
        let backoff_now = State::Backoff { until: now };
        let l_started = starting(
            Some(now + Duration::from_secs(1)),
            None,
            Probe::CheckAt {
                at: now,
                every: CHECK_FIRST,
            },
        );
        let mut rows: Vec<Row> = Vec::new();
        // Longrun: what Down and Backoff share.
        for st in ["down", "backoff-due", "backoff-later"] {
            rows.push(("L", st, "spawned-run", l_started.clone(), vec![]));
            rows.push((
                "L",
                st,
                "spawnfail-run",
                backoff_now.clone(),
                vec![log("svc: cannot run run: nope")],
            ));
            rows.push((
                "L",
                st,
                "spawnfail-run-perm",
                State::Failed,
                vec![
                    log("svc: cannot run run: nope"),
                    log("permanent start error; failed for good"),
                ],
            ));
            rows.push(("L", st, "restart", State::Down, vec![]));
        }
        rows.push(("L", "down", "start", State::Down, vec![Spawn(Prog::Run)]));
        rows.push((
            "L",
            "backoff-due",
            "timer",
            State::Backoff { until: t.due },
            vec![Spawn(Prog::Run)],
        ));
        for st in ["backoff-due", "backoff-later"] {
            rows.push(("L", st, "stop", State::Down, vec![]));
            rows.push(("L", st, "enable", backoff_now.clone(), vec![]));
        }
        // Longrun: starting, in each of its shapes.
        let shapes: [(&str, State, bool); 4] = [
            ("starting", starting(None, None, Probe::Wait), false),
            (
                "starting-check-due",
                starting(
                    None,
                    None,
                    Probe::CheckAt {
                        at: t.due,
                        every: EVERY,
                    },
                ),
                false,
            ),
            (
                "starting-checking",
                starting(
                    None,
                    None,
                    Probe::Checking {
                        pid: CHECK,
                        every: EVERY,
                    },
                ),
                true,
            ),
            (
                "starting-late",
                starting(Some(t.due), None, Probe::Wait),
                false,
            ),
        ];
        for (st, _, checking) in &shapes {
            let pre = if *checking {
                vec![Sig(CHECK, SIGKILL)]
            } else {
                vec![]
            };
            rows.push(("L", st, "ready", State::Up { pid: RUN }, vec![]));
            for code in [0, 1] {
                let ev = if code == 0 {
                    "exited-run-0"
                } else {
                    "exited-run-1"
                };
                let mut acts = pre.clone();
                acts.push(spawn_fin(code));
                rows.push(("L", st, ev, fin(code, Then::Settle), acts));
            }
            let stop_acts = if *checking {
                kill_check_then_term()
            } else {
                term()
            };
            rows.push(("L", st, "stop", stopping(Then::Settle), stop_acts.clone()));
            rows.push(("L", st, "restart", stopping(Then::Restart), stop_acts));
        }
        // `starting-remind` shares the plain `starting` rows.
        let remind = starting(None, Some(t.due), Probe::Wait);
        rows.push((
            "L",
            "starting-remind",
            "ready",
            State::Up { pid: RUN },
            vec![],
        ));
        for code in [0, 1] {
            let ev = if code == 0 {
                "exited-run-0"
            } else {
                "exited-run-1"
            };
            rows.push((
                "L",
                "starting-remind",
                ev,
                fin(code, Then::Settle),
                vec![spawn_fin(code)],
            ));
        }
        rows.push((
            "L",
            "starting-remind",
            "stop",
            stopping(Then::Settle),
            term(),
        ));
        rows.push((
            "L",
            "starting-remind",
            "restart",
            stopping(Then::Restart),
            term(),
        ));
        rows.push((
            "L",
            "starting-remind",
            "timer",
            starting(None, Some(now + REMIND_EVERY), Probe::Wait),
            vec![log("svc: still not ready after")],
        ));
        let _ = remind;
        rows.push((
            "L",
            "starting-check-due",
            "timer",
            shapes[1].1.clone(),
            vec![Spawn(Prog::Check)],
        ));
        rows.push((
            "L",
            "starting-check-due",
            "spawned-check",
            shapes[2].1.clone(),
            vec![],
        ));
        rows.push((
            "L",
            "starting-check-due",
            "spawnfail-check",
            starting(
                None,
                None,
                Probe::CheckAt {
                    at: now + CHECK_MAX,
                    every: EVERY,
                },
            ),
            vec![log("svc: cannot run check: nope")],
        ));
        rows.push((
            "L",
            "starting-checking",
            "exited-check-0",
            State::Up { pid: RUN },
            vec![],
        ));
        rows.push((
            "L",
            "starting-checking",
            "exited-check-1",
            starting(
                None,
                None,
                Probe::CheckAt {
                    at: now + EVERY,
                    every: EVERY * 2,
                },
            ),
            vec![],
        ));
        let mut late = vec![log(
            "svc: not ready after 1000 ms (timeout-up); stopping it",
        )];
        late.extend(term());
        rows.push((
            "L",
            "starting-late",
            "timer",
            stopping(Then::TimedOut),
            late,
        ));
        // Longrun: up.
        for code in [0, 1] {
            let ev = if code == 0 {
                "exited-run-0"
            } else {
                "exited-run-1"
            };
            rows.push((
                "L",
                "up",
                ev,
                fin(code, Then::Settle),
                vec![spawn_fin(code)],
            ));
        }
        rows.push(("L", "up", "stop", stopping(Then::Settle), term()));
        rows.push(("L", "up", "restart", stopping(Then::Restart), term()));
        // Longrun and oneshot: stopping.
        for k in ["L", "O"] {
            rows.push((
                k,
                "stopping",
                "timer",
                State::Stopping {
                    pid: RUN,
                    kill_at: None,
                    then: Then::Settle,
                },
                vec![
                    log("svc: did not stop in time; sending SIGKILL"),
                    Sig(RUN, SIGKILL),
                ],
            ));
        }
        for st in ["stopping", "stopping-killed"] {
            let kill_at = if st == "stopping" { Some(t.due) } else { None };
            rows.push((
                "L",
                st,
                "restart",
                State::Stopping {
                    pid: RUN,
                    kill_at,
                    then: Then::Restart,
                },
                vec![],
            ));
            for code in [0, 1] {
                let ev = if code == 0 {
                    "exited-run-0"
                } else {
                    "exited-run-1"
                };
                rows.push(("L", st, ev, fin(code, Then::Settle), vec![spawn_fin(code)]));
            }
        }
        // Longrun: finishing.
        rows.push((
            "L",
            "finishing-spawn",
            "spawned-finish",
            State::Finishing {
                pid: Some(AUX),
                kill_at: Some(t.later),
                exit: Exit::Code(1),
                then: Then::Settle,
            },
            vec![],
        ));
        rows.push((
            "L",
            "finishing-spawn",
            "spawnfail-finish",
            backoff_now.clone(),
            vec![log("svc: cannot run finish: nope")],
        ));
        rows.push(("L", "finishing", "exited-aux", backoff_now.clone(), vec![]));
        rows.push((
            "L",
            "finishing",
            "timer",
            State::Finishing {
                pid: Some(AUX),
                kill_at: None,
                exit: Exit::Code(1),
                then: Then::Settle,
            },
            vec![
                log("svc: finish did not exit within 2000 ms; killed"),
                Sig(AUX, SIGKILL),
            ],
        ));
        for (st, pid, kill_at) in [
            ("finishing-spawn", None, Some(t.later)),
            ("finishing", Some(AUX), Some(t.due)),
        ] {
            rows.push((
                "L",
                st,
                "restart",
                State::Finishing {
                    pid,
                    kill_at,
                    exit: Exit::Code(1),
                    then: Then::Restart,
                },
                vec![],
            ));
        }
        // Longrun: final states come back on `tend ctl start` / `restart`.
        for st in ["failed", "done"] {
            rows.push(("L", st, "enable", State::Down, vec![]));
            rows.push(("L", st, "restart", State::Down, vec![]));
        }

        // Oneshot.
        let o_started = starting(Some(now + Duration::from_secs(1)), None, Probe::Wait);
        rows.push(("O", "down", "start", State::Down, vec![Spawn(Prog::Up)]));
        rows.push(("O", "down", "spawned-up", o_started, vec![]));
        rows.push((
            "O",
            "down",
            "spawnfail-up",
            State::Failed,
            vec![
                log("svc: cannot run up: nope"),
                log("svc: up failed (exit code 127); start-up stopped"),
                Exit_(127),
            ],
        ));
        rows.push((
            "O",
            "down",
            "spawnfail-up-perm",
            State::Failed,
            vec![
                log("svc: cannot run up: nope"),
                log("permanent start error; failed for good"),
            ],
        ));
        rows.push(("O", "down", "restart", State::Down, vec![]));
        for st in [
            "starting",
            "starting-late",
            "starting-remind",
            "stopping",
            "stopping-killed",
        ] {
            rows.push(("O", st, "exited-run-0", State::Done, vec![]));
            rows.push((
                "O",
                st,
                "exited-run-1",
                State::Failed,
                vec![
                    log("svc: up failed (exit code 1); start-up stopped"),
                    Exit_(1),
                ],
            ));
            if st.starts_with("starting") {
                rows.push(("O", st, "stop", stopping(Then::Settle), term()));
            }
        }
        rows.push((
            "O",
            "starting-late",
            "timer",
            State::Stopping {
                pid: RUN,
                kill_at: None,
                then: Then::TimedOut,
            },
            vec![
                log("svc: up not done after 1000 ms (timeout-up); killing it"),
                Sig(RUN, SIGKILL),
            ],
        ));
        rows.push((
            "O",
            "starting-remind",
            "timer",
            starting(None, Some(now + REMIND_EVERY), Probe::Wait),
            vec![log("waiting for its up to exit")],
        ));
        rows.push((
            "O",
            "done",
            "rundown",
            State::Downing {
                pid: None,
                kill_at: Some(t.kill),
            },
            vec![Spawn(Prog::Down)],
        ));
        rows.push((
            "O",
            "downing-spawn",
            "spawned-down",
            State::Downing {
                pid: Some(AUX),
                kill_at: Some(t.later),
            },
            vec![],
        ));
        rows.push((
            "O",
            "downing-spawn",
            "spawnfail-down",
            State::Down,
            vec![log("svc: cannot run down: nope")],
        ));
        rows.push(("O", "downing", "exited-aux", State::Down, vec![]));
        rows.push((
            "O",
            "downing",
            "timer",
            State::Downing {
                pid: Some(AUX),
                kill_at: None,
            },
            vec![
                log("svc: down did not exit in time; sending SIGKILL"),
                Sig(AUX, SIGKILL),
            ],
        ));
        rows
    }

    fn same_actions(got: &[Action], want: &[Action]) -> bool {
        got.len() == want.len()
            && got.iter().zip(want).all(|(g, w)| match (g, w) {
                (Log(g), Log(w)) => g.contains(w.as_str()),
                _ => g == w,
            })
    }

    #[test]
    fn every_state_event_pair() {
        let t = t();
        let table = table(&t);
        let mut used = vec![false; table.len()];
        let mut pairs = 0;
        for (kinds, sname, state) in states(&t) {
            for kind in kinds.chars() {
                let conf = if kind == 'L' { longrun() } else { oneshot() };
                let k = if kind == 'L' { "L" } else { "O" };
                for (ename, ev) in events() {
                    pairs += 1;
                    let mut m = Machine::new();
                    m.state = state.clone();
                    let got = m.on(&conf, ev, &cx(&t));
                    let row = table
                        .iter()
                        .position(|r| r.0 == k && r.1 == sname && r.2 == ename);
                    let (want_state, want_actions) = match row {
                        Some(i) => {
                            assert!(!used[i], "duplicate row {k} {sname} {ename}");
                            used[i] = true;
                            (table[i].3.clone(), table[i].4.clone())
                        }
                        None => (state.clone(), vec![]),
                    };
                    assert_eq!(m.state, want_state, "{k} {sname} + {ename}: state");
                    assert!(
                        same_actions(&got, &want_actions),
                        "{k} {sname} + {ename}: actions {got:?}, expected {want_actions:?}"
                    );
                }
            }
        }
        let unused: Vec<_> = table
            .iter()
            .zip(&used)
            .filter(|(_, u)| !**u)
            .map(|(r, _)| (r.0, r.1, r.2))
            .collect();
        assert!(unused.is_empty(), "rows matching no pair: {unused:?}");
        assert!(pairs > 500, "{pairs}");
    }

    /// Runs a longrun's first run to its exit with `code`; returns the actions of the exit.
    fn run_and_exit(m: &mut Machine, conf: &Conf, cx: &Ctx, code: i32) -> Vec<Action> {
        m.on(conf, Event::Spawned(Prog::Run, RUN), cx);
        m.on(conf, Event::Exited(RUN, Exit::Code(code)), cx)
    }

    fn plain() -> Conf {
        Conf {
            ready_by: ReadyBy::Start,
            has_finish: false,
            timeout_up: None,
            ..longrun()
        }
    }

    #[test]
    fn restart_policies_and_critical() {
        let t = t();
        let c = cx(&t);
        for (restart, code, want) in [
            (Restart::Always, 0, "backoff"),
            (Restart::Always, 3, "backoff"),
            (Restart::OnFailure, 0, "done"),
            (Restart::OnFailure, 3, "backoff"),
            (Restart::Never, 0, "done"),
            (Restart::Never, 3, "failed"),
        ] {
            for critical in [false, true] {
                let conf = Conf {
                    restart,
                    critical,
                    ..plain()
                };
                let mut m = Machine::new();
                let acts = run_and_exit(&mut m, &conf, &c, code);
                assert_eq!(m.name(&conf), want, "{restart:?} {code}");
                let exits = acts.contains(&Exit_(code));
                assert_eq!(
                    exits,
                    critical && want != "backoff",
                    "{restart:?} {code} {acts:?}"
                );
            }
        }
    }

    #[test]
    fn restart_limit_counts_failures_within_the_window() {
        let t = t();
        let conf = Conf {
            critical: true,
            restart_limit: Some(RestartLimit {
                count: 3,
                within: Some(Duration::from_secs(60)),
            }),
            ..plain()
        };
        let mut m = Machine::new();
        let at = |s: u64| Ctx {
            now: t.now + Duration::from_secs(s),
            ..cx(&t)
        };
        // Two failures, then one that is old by the time of the next: the window slides.
        assert!(run_and_exit(&mut m, &conf, &at(0), 1).is_empty());
        assert!(run_and_exit(&mut m, &conf, &at(10), 1).is_empty());
        assert!(run_and_exit(&mut m, &conf, &at(100), 1).is_empty());
        // A success does not count.
        assert!(run_and_exit(&mut m, &conf, &at(101), 0).is_empty());
        assert!(run_and_exit(&mut m, &conf, &at(102), 1).is_empty());
        assert_eq!(m.name(&conf), "backoff");
        let acts = run_and_exit(&mut m, &conf, &at(103), 7);
        assert_eq!(m.state, State::Failed);
        assert!(same_actions(
            &acts,
            &[
                log("svc: failed 3 times within 60000 ms; failed for good (restart-limit)"),
                log("critical service svc stopped for good (exit code 7)"),
                Exit_(7)
            ]
        ));
        // Without a window every failure counts; a timed-out start is a failure.
        let conf = Conf {
            restart_limit: Some(RestartLimit {
                count: 2,
                within: None,
            }),
            timeout_up: Some(Duration::from_secs(1)),
            ready_by: ReadyBy::Systemd,
            ..plain()
        };
        let mut m = Machine::new();
        run_and_exit(&mut m, &conf, &at(0), 1);
        m.on(&conf, Event::Spawned(Prog::Run, RUN), &at(1000));
        m.on(&conf, Event::Timer, &at(1002));
        m.on(&conf, Event::Exited(RUN, Exit::Code(0)), &at(1002));
        assert_eq!(m.state, State::Failed);
    }

    #[test]
    fn permanent_start_error_at_startup_exits_111() {
        let t = t();
        let c = Ctx {
            startup: true,
            ..cx(&t)
        };
        for conf in [plain(), oneshot()] {
            let mut m = Machine::new();
            let prog = first_prog(&conf);
            let acts = m.on(&conf, Event::SpawnFailed(prog, err(true)), &c);
            assert_eq!(m.state, State::Failed);
            assert_eq!(acts.last(), Some(&Exit_(START_ERROR)), "{acts:?}");
            assert!(
                matches!(&acts[1], Log(l) if l.contains("svc: a permanent start error; start-up stopped"))
            );
        }
        // Later, a critical service takes the container down with its code.
        let conf = Conf {
            critical: true,
            ..plain()
        };
        let mut m = Machine::new();
        let acts = m.on(&conf, Event::SpawnFailed(Prog::Run, err(true)), &cx(&t));
        assert_eq!(acts.last(), Some(&Exit_(126)));
    }

    #[test]
    fn shutdown_and_ctl_stop_settle_down() {
        let t = t();
        for c in [
            Ctx {
                shutting_down: true,
                ..cx(&t)
            },
            Ctx {
                want_up: false,
                ..cx(&t)
            },
        ] {
            let mut m = Machine::new();
            assert!(run_and_exit(&mut m, &plain(), &c, 1).is_empty());
            assert_eq!(m.state, State::Down);
            // A oneshot `up` failing during shutdown does not stop anything again.
            let mut m = Machine::new();
            m.on(&oneshot(), Event::Spawned(Prog::Up, RUN), &c);
            let acts = m.on(&oneshot(), Event::Exited(RUN, Exit::Code(1)), &c);
            assert!(c.want_up == false || acts.is_empty(), "{acts:?}");
        }
        // A backoff timer during shutdown ends the service instead of starting it.
        let mut m = Machine::new();
        m.state = State::Backoff { until: t.due };
        let c = Ctx {
            shutting_down: true,
            ..cx(&t)
        };
        assert!(m.on(&plain(), Event::Timer, &c).is_empty());
        assert_eq!(m.state, State::Down);
    }

    #[test]
    fn ctl_restart_starts_again_and_counts() {
        let t = t();
        let conf = plain();
        let c = cx(&t);
        let mut m = Machine::new();
        m.on(&conf, Event::Spawned(Prog::Run, RUN), &c);
        assert_eq!(m.name(&conf), "up");
        m.on(&conf, Event::Restart, &c);
        m.on(&conf, Event::Exited(RUN, Exit::Signal(15)), &c);
        assert_eq!((m.state.clone(), m.restarts), (State::Down, 1));
        // Backoff timers count restarts too.
        m.state = State::Backoff { until: t.due };
        m.on(&conf, Event::Timer, &c);
        assert_eq!(m.restarts, 2);
    }

    #[test]
    fn timers_live_in_their_states() {
        let t = t();
        let mut m = Machine::new();
        assert_eq!(m.next_timer(), None);
        m.state = starting(
            Some(t.later),
            None,
            Probe::CheckAt {
                at: t.due,
                every: EVERY,
            },
        );
        assert_eq!(m.next_timer(), Some(t.due));
        m.state = State::Up { pid: RUN };
        assert_eq!(m.next_timer(), None);
        assert!(m.owns(RUN) && !m.owns(CHECK));
        m.state = starting(
            None,
            None,
            Probe::Checking {
                pid: CHECK,
                every: EVERY,
            },
        );
        assert!(m.owns(RUN) && m.owns(CHECK) && m.active());
        // A service with no timeout-up is reminded of every 30 s.
        let mut m = Machine::new();
        m.on(&longrun(), Event::Spawned(Prog::Run, RUN), &cx(&t));
        let c = Conf {
            timeout_up: None,
            ..longrun()
        };
        let mut m2 = Machine::new();
        m2.on(&c, Event::Spawned(Prog::Run, RUN), &cx(&t));
        assert!(
            matches!(m2.state, State::Starting { remind_at: Some(r), .. } if r == t.now + REMIND_EVERY)
        );
        assert!(matches!(
            m.state,
            State::Starting {
                remind_at: None,
                ..
            }
        ));
    }
}
