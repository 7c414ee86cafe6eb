//! One supervised service: its definition, run-time state and the processes it owns.

use super::backoff::Backoff;
use super::spawn::Ids;
use crate::init::Exit;
use crate::log::pump::SinkStats;
use crate::service::{Kind, Readiness, ServiceDef};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where a service is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not running and not scheduled.
    Down,
    /// Running (or `up` running), not ready yet.
    Starting,
    /// Running and ready (a oneshot whose `up` succeeded is `Done`).
    Ready,
    /// Down signal sent, waiting for the exit.
    Stopping,
    /// `finish` running after an exit.
    Finishing,
    /// Waiting to restart.
    Backoff,
    /// Stopped for good after a failure.
    Failed,
    /// Stopped for good after success (a oneshot that is up, or a longrun that exited 0 under `on-failure`/`never`).
    Done,
}

/// An auxiliary process a service runs besides `run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aux {
    /// `finish EXIT SIGNAL` after `run` exited.
    Finish,
    /// A readiness `check` poll.
    Check,
    /// A oneshot's `down` at shutdown.
    Down,
}

/// A service with its state.
pub struct Svc {
    /// The validated definition.
    pub def: ServiceDef,
    /// Current state.
    pub state: State,
    /// Pid of `run` (longrun) or `up` (oneshot).
    pub pid: Option<Pid>,
    /// A `finish`, `check` or `down` process.
    pub aux: Option<(Pid, Aux)>,
    /// When the current run started.
    pub started: Option<Instant>,
    /// Restarts so far.
    pub restarts: u64,
    /// How the last run ended.
    pub last_exit: Option<Exit>,
    /// Restart backoff.
    pub backoff: Backoff,
    /// The state's timer: readiness timeout, kill time, finish limit or restart time.
    pub deadline: Option<Instant>,
    /// Next readiness `check` run.
    pub check_at: Option<Instant>,
    /// Delay between `check` runs (grows to 1 s).
    pub check_every: Duration,
    /// Write ends of the capture pipes, kept for every incarnation.
    pub out: OwnedFd,
    /// Write end of the stderr capture pipe.
    pub err: OwnedFd,
    /// Log counters.
    pub stats: Arc<SinkStats>,
    /// Read end of the notification-fd pipe of the current run.
    pub ready_pipe: Option<OwnedFd>,
    /// sd_notify socket, kept across restarts.
    pub notify: Option<OwnedFd>,
    /// Whether it should be running (`disabled` and `tend ctl stop` clear it).
    pub want_up: bool,
    /// The current run missed its `timeout-up`.
    pub up_timed_out: bool,
    /// `tend ctl restart` asked for a start right after this stop.
    pub restart_requested: bool,
    /// A oneshot's `down` has run (or been started) during shutdown.
    pub down_done: bool,
    /// Credentials.
    pub ids: Option<Ids>,
    /// Environment changes: `env/` plus `NOTIFY_SOCKET`.
    pub env: Vec<(String, Option<String>)>,
}

impl Svc {
    /// True for a oneshot.
    pub fn is_oneshot(&self) -> bool {
        matches!(self.def.kind, Kind::Oneshot { .. })
    }

    /// True while it or one of its processes is alive.
    pub fn active(&self) -> bool {
        self.pid.is_some() || self.aux.is_some()
    }

    /// Ready for dependents: a ready longrun or a oneshot whose `up` succeeded.
    pub fn satisfies_dependents(&self) -> bool {
        matches!(self.state, State::Ready) || (self.is_oneshot() && self.state == State::Done)
    }

    /// The state as `tend ctl status` shows it.
    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Down => "down",
            State::Starting => "starting",
            State::Ready if matches!(self.def.readiness, Readiness::None) => "up",
            State::Ready => "ready",
            State::Stopping => "stopping",
            State::Finishing => "finishing",
            State::Backoff => "backoff",
            State::Failed => "failed",
            State::Done if self.is_oneshot() => "up",
            State::Done => "done",
        }
    }
}
