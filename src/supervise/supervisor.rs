//! The PID-1 event loop: signals in, children reaped, services driven, shutdown staged.
//!
//! One thread owns every process. It sleeps in `poll` on the signalfd, readiness channels
//! and the control socket, with a timeout that is the nearest deadline; every wait ends the
//! moment the awaited processes are gone, never on a fixed sleep.

use super::spawn::{Isolation, Spawn, exec_failure_code, spawn};
use super::state::{Event, State};
use super::svc::Svc;
use crate::init::signals::{SignalIntake, Taken, forwardable, send_number};
use crate::init::{Exit, reap::reap_all};
use crate::log::pump::Pump;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// How tend was started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `tend run`: forward every signal to the command; `group` sends to its process group.
    Run {
        /// Forward to the whole process group.
        group: bool,
    },
    /// `tend init`: TERM/INT/QUIT shut down, other signals go to CMD.
    Init,
}

/// The command after `--` (CMD of init, the command of run).
pub struct MainCmd {
    /// Program and arguments, as bytes (they need not be UTF-8).
    pub argv: Vec<std::ffi::OsString>,
    /// The name it logs and shows as (`main`, or `--name`).
    pub name: String,
    /// Its log counters, when captured.
    pub stats: Option<std::sync::Arc<crate::log::stats::SinkStats>>,
    /// When it started.
    pub started: Option<Instant>,
    /// Capture pipe write ends (None: inherit tend's stdout/stderr).
    pub out: Option<(OwnedFd, OwnedFd)>,
    /// Pid once started.
    pub pid: Option<Pid>,
    /// How it ended.
    pub exit: Option<Exit>,
    /// Exit codes that count as success: tend exits 0 for them (`--expect-exit`).
    pub expect_exit: Vec<i32>,
}

/// Steps of the shutdown sequence (SPEC §6), in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Stage {
    /// Not shutting down.
    Running,
    /// Stop CMD.
    Cmd,
    /// Stop longruns in reverse dependency order.
    Longruns,
    /// Run oneshot `down`s in reverse order.
    Downs,
    /// TERM then KILL to every process left.
    Sweep,
    /// Everything is gone.
    Done,
}

/// The supervisor: every process tend owns, and the loop that drives them.
pub struct Supervisor {
    mode: Mode,
    intake: SignalIntake,
    /// Services in topological order (dependencies first).
    pub svcs: Vec<Svc>,
    /// CMD.
    pub main: Option<MainCmd>,
    pub(super) pump: Option<Pump>,
    pub(super) kill_grace: Duration,
    cmd_wait: Option<Instant>,
    pub(super) stage: Stage,
    /// The code tend exits with, once decided.
    exit_code: Option<i32>,
    pub(super) main_kill_at: Option<Instant>,
    pub(super) main_killed: bool,
    pub(super) sweep_term_at: Option<Instant>,
    pub(super) sweep_kill_at: Option<Instant>,
    /// Set by `tend ctl shutdown`; picked up by the loop.
    pub shutdown_requested: bool,
    /// Start-up is over: CMD started, or every service settled once.
    pub(super) startup_over: bool,
    /// `TEND_STOP_DEADLINE`: how long the whole shutdown may take.
    stop_deadline: Duration,
    /// When the shutdown must be over (set when it begins).
    pub(super) stop_by: Option<Instant>,
    /// The control socket, when the run directory is writable.
    ctl: Option<crate::ctl::server::Server>,
    /// `--metrics-file` writer and the time of its next rewrite.
    metrics: Option<(crate::ctl::metrics::MetricsWriter, Instant)>,
    /// `--on-rotate` hooks, started here on the log thread's request and reaped here.
    pub(super) hooks: Option<crate::log::hooks::Hooks>,
}

/// Default `TEND_STOP_DEADLINE`: inside Docker's 10 s stop timeout.
pub const DEFAULT_STOP_DEADLINE: Duration = Duration::from_millis(9000);
/// The end of the stop deadline kept for draining and fsyncing logs.
pub const FLUSH_RESERVE: Duration = Duration::from_millis(500);

/// `TEND_STOP_DEADLINE` (ms, default 9000), the bound on the whole shutdown.
pub fn stop_deadline_from_env() -> Result<Duration, String> {
    match std::env::var("TEND_STOP_DEADLINE") {
        Ok(v) if !v.is_empty() => {
            let d =
                crate::units::parse_millis(&v).map_err(|e| format!("TEND_STOP_DEADLINE: {e}"))?;
            if d.is_zero() {
                return Err(format!(
                    "TEND_STOP_DEADLINE: '{v}' must be above zero (milliseconds the whole stop may take)"
                ));
            }
            Ok(d)
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err("TEND_STOP_DEADLINE: not valid UTF-8 (expected milliseconds)".into())
        }
        _ => Ok(DEFAULT_STOP_DEADLINE),
    }
}

/// How often `--metrics-file` is rewritten.
const METRICS_EVERY: Duration = Duration::from_secs(10);

impl Supervisor {
    /// A supervisor ready to `run()`; signals must already be taken in `intake`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mode: Mode,
        intake: SignalIntake,
        svcs: Vec<Svc>,
        main: Option<MainCmd>,
        pump: Option<Pump>,
        kill_grace: Duration,
        cmd_wait: Option<Duration>,
    ) -> Supervisor {
        let hooks = pump.as_ref().and_then(|_| {
            crate::log::hooks::Hooks::install()
                .map_err(|e| eprintln!("tend: --on-rotate hooks disabled: {e}"))
                .ok()
        });
        Supervisor {
            hooks,
            mode,
            intake,
            svcs,
            main,
            pump,
            kill_grace,
            cmd_wait: cmd_wait.map(|d| Instant::now() + d),
            stage: Stage::Running,
            exit_code: None,
            main_kill_at: None,
            main_killed: false,
            sweep_term_at: None,
            sweep_kill_at: None,
            shutdown_requested: false,
            startup_over: false,
            stop_deadline: DEFAULT_STOP_DEADLINE,
            stop_by: None,
            ctl: None,
            metrics: None,
        }
    }

    /// Bounds the whole shutdown, log flushing included (`TEND_STOP_DEADLINE`).
    pub fn with_stop_deadline(mut self, d: Duration) -> Supervisor {
        self.stop_deadline = d;
        self
    }

    /// Serves `tend ctl` on this socket from the event loop.
    pub fn with_control(mut self, server: Option<crate::ctl::server::Server>) -> Supervisor {
        self.ctl = server;
        self
    }

    /// Rewrites Prometheus metrics through this writer every 10 s, starting now.
    pub fn with_metrics(
        mut self,
        writer: Option<crate::ctl::metrics::MetricsWriter>,
    ) -> Supervisor {
        self.metrics = writer.map(|w| (w, Instant::now()));
        self
    }

    /// Runs until everything has stopped; returns tend's exit code.
    pub fn run(mut self) -> i32 {
        loop {
            let now = Instant::now();
            self.step(now);
            if self.stage == Stage::Done {
                break;
            }
            self.wait_for_events();
        }
        self.finish_logs();
        self.exit_code.unwrap_or(0)
    }

    /// Closes tend's copies of the capture pipes and lets the log thread drain to EOF.
    fn finish_logs(&mut self) {
        // Dropping the write ends is what lets every pipe reach EOF once children are gone.
        self.main = None;
        self.svcs.clear();
        if let Some(pump) = self.pump.take() {
            // The log thread gets what is left of the stop deadline (at most 5 s when the
            // command ended by itself and no deadline runs); a full disk under `block` waits
            // for space until a stop signal (issue 13).
            let now = Instant::now();
            let cap = now + Duration::from_secs(5);
            let eof = self.stop_by.map_or(cap, |d| d.min(cap));
            let stopped = self.intake.stop_seen();
            pump.finish_at_exit(eof, stopped, &mut |d, fd| self.intake.wait_for_stop(d, fd));
        }
    }

    /// Sleeps until a signal, a readiness message or the nearest deadline.
    fn wait_for_events(&mut self) {
        let timeout = match self.next_deadline() {
            Some(t) => {
                let ms = t.saturating_duration_since(Instant::now()).as_millis();
                // Round up so a timer is never polled a millisecond early in a busy loop.
                (ms + 1).min(60_000) as u16
            }
            None => 60_000,
        };
        let ready: Vec<RawFd> = {
            let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(self.intake.fd(), PollFlags::POLLIN)];
            if let Some(h) = &self.hooks {
                fds.push(PollFd::new(h.fd(), PollFlags::POLLIN));
            }
            if let Some(srv) = &self.ctl {
                for (fd, events) in srv.poll_fds() {
                    fds.push(PollFd::new(fd, events));
                }
            }
            for s in &self.svcs {
                if let Some(p) = &s.ready_pipe {
                    fds.push(PollFd::new(p.as_fd(), PollFlags::POLLIN));
                }
                if let Some(n) = &s.notify {
                    fds.push(PollFd::new(n.as_fd(), PollFlags::POLLIN));
                }
            }
            if !matches!(poll(&mut fds, timeout), Ok(n) if n > 0) {
                return;
            }
            fds.iter()
                .filter(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .map(|p| p.as_fd().as_raw_fd())
                .collect()
        };
        self.on_readable(&ready);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let mut all: Vec<Instant> = Vec::new();
        for s in &self.svcs {
            all.extend(s.m.next_timer());
        }
        all.extend(
            self.cmd_wait
                .filter(|_| self.main.as_ref().is_some_and(|m| m.pid.is_none())),
        );
        all.extend(self.main_kill_at);
        all.extend(self.sweep_term_at);
        all.extend(self.sweep_kill_at);
        all.extend(self.ctl.as_ref().and_then(|c| c.next_deadline()));
        all.extend(self.metrics.as_ref().map(|m| m.1));
        all.into_iter().min()
    }

    /// Handles readable fds: signals first, then readiness channels.
    fn on_readable(&mut self, ready: &[RawFd]) {
        if ready.contains(&self.intake.fd().as_raw_fd()) {
            for sig in self.intake.drain() {
                match sig {
                    Taken::Named(sig) => self.on_signal(sig),
                    Taken::Realtime(n) => self.forward_realtime(n),
                }
            }
        }
        if let Some(h) = self
            .hooks
            .as_mut()
            .filter(|h| ready.contains(&h.fd().as_raw_fd()))
        {
            h.on_wake();
        }
        for i in 0..self.svcs.len() {
            let s = &mut self.svcs[i];
            let mut got_ready = false;
            if let Some(p) = &s.ready_pipe
                && ready.contains(&p.as_raw_fd())
            {
                match super::readiness::read_pipe(p) {
                    super::readiness::Signalled::Ready => got_ready = true,
                    super::readiness::Signalled::Closed => s.ready_pipe = None,
                    super::readiness::Signalled::Nothing => {}
                }
            }
            if let Some(n) = &s.notify
                && ready.contains(&n.as_raw_fd())
                && super::readiness::read_notify(n) == super::readiness::Signalled::Ready
            {
                got_ready = true;
            }
            if got_ready {
                self.feed(i, Event::Ready, Instant::now());
            }
        }
        // The server needs the supervisor as its `Control`, so it is lent out for the call.
        if let Some(mut srv) = self.ctl.take() {
            srv.handle(ready, self);
            self.ctl = Some(srv);
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        if sig == Signal::SIGCHLD {
            for (pid, exit) in reap_all() {
                self.on_exit(pid, exit);
            }
            return;
        }
        match self.mode {
            Mode::Run { group } => {
                if forwardable(sig) {
                    self.signal_main(sig, group);
                }
                // A container stop must end before the runtime's SIGKILL, which would cost the
                // log bytes still in flight: a command that ignores SIGTERM is killed after
                // the grace (the way s6-overlay honours S6_KILL_GRACETIME).
                if sig == Signal::SIGTERM && self.main_kill_at.is_none() {
                    let now = Instant::now();
                    self.arm_stop_deadline(now);
                    self.main_kill_at = Some(self.kill_at(now, self.kill_grace));
                }
            }
            Mode::Init => match sig {
                Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT => self.begin_shutdown(None),
                s if forwardable(s) => self.signal_main(s, false),
                _ => {}
            },
        }
    }

    /// Realtime signals are forwarded to CMD in both modes (to its group with `run --group`).
    fn forward_realtime(&self, signo: i32) {
        if let Some(pid) = self.main.as_ref().and_then(|m| m.pid) {
            let group = matches!(self.mode, Mode::Run { group: true });
            send_number(
                if group {
                    Pid::from_raw(-pid.as_raw())
                } else {
                    pid
                },
                signo,
            );
        }
    }

    /// Sends `sig` to CMD, or to its process group.
    fn signal_main(&self, sig: Signal, group: bool) {
        if let Some(pid) = self.main.as_ref().and_then(|m| m.pid) {
            let target = if group {
                Pid::from_raw(-pid.as_raw())
            } else {
                pid
            };
            let _ = kill(target, sig);
        }
    }

    /// Starts the shutdown sequence once; `code` is the exit code if already decided.
    pub fn begin_shutdown(&mut self, code: Option<i32>) {
        if self.exit_code.is_none() {
            self.exit_code = code;
        }
        if self.stage == Stage::Running {
            self.stage = Stage::Cmd;
        }
        self.arm_stop_deadline(Instant::now());
    }

    /// Starts the `TEND_STOP_DEADLINE` clock, once.
    pub(super) fn arm_stop_deadline(&mut self, now: Instant) {
        if self.stop_by.is_none() {
            self.stop_by = Some(super::state::after(now, self.stop_deadline));
        }
    }

    /// When a stop begun `now` with this grace must end in SIGKILL: the grace, cut so that
    /// the last [`FLUSH_RESERVE`] of the stop deadline is left for the logs.
    pub(super) fn kill_at(&self, now: Instant, grace: Duration) -> Instant {
        let by = super::state::after(now, grace);
        self.stop_cut(now).map_or(by, |c| by.min(c))
    }

    /// During shutdown: when every process must be gone, [`FLUSH_RESERVE`] before the end.
    pub(super) fn stop_cut(&self, now: Instant) -> Option<Instant> {
        self.stop_by
            .map(|d| d.checked_sub(FLUSH_RESERVE).unwrap_or(d).max(now))
    }

    /// A child exited: CMD, a service's run, or an auxiliary process; orphans are just reaped.
    fn on_exit(&mut self, pid: Pid, exit: Exit) {
        if self.hooks.as_mut().is_some_and(|h| h.on_exit(pid)) {
            return;
        }
        if let Some(m) = self.main.as_mut()
            && m.pid == Some(pid)
        {
            m.pid = None;
            m.exit = Some(exit);
            self.main_kill_at = None;
            if self.exit_code.is_none() {
                let code = exit.code();
                let expected = m.expect_exit.contains(&code);
                self.exit_code = Some(if expected { 0 } else { code });
            }
            match self.mode {
                // tini: the command is gone, so is the job; sweep what it left.
                Mode::Run { .. } => {
                    self.stage = Stage::Sweep;
                    self.arm_stop_deadline(Instant::now());
                }
                Mode::Init => self.begin_shutdown(None),
            }
            return;
        }
        if let Some(i) = self.svcs.iter().position(|s| s.m.owns(pid)) {
            // Before any next instance can write: its unterminated line is closed.
            if self.svcs[i].m.pid() == Some(pid)
                && let Some(p) = &self.pump
            {
                let s = &self.svcs[i];
                p.instance_ended(&s.stats, s.out.as_fd(), s.err.as_fd());
            }
            self.feed(i, Event::Exited(pid, exit), Instant::now());
        }
    }

    /// One pass over timers and state: start what can start, advance the shutdown.
    fn step(&mut self, now: Instant) {
        if self.shutdown_requested {
            self.shutdown_requested = false;
            self.begin_shutdown(None);
        }
        if let Some(srv) = self.ctl.as_mut() {
            srv.on_timer(now);
        }
        if self.metrics.as_ref().is_some_and(|m| now >= m.1) {
            let text =
                crate::ctl::metrics::render_metrics(&crate::ctl::proto::Control::status(self));
            if let Some((writer, next)) = self.metrics.as_mut() {
                writer.offer(text);
                *next = now + METRICS_EVERY;
            }
        }
        for i in 0..self.svcs.len() {
            if self.svcs[i].m.next_timer().is_some_and(|t| now >= t) {
                self.feed(i, Event::Timer, now);
            }
        }
        if self.stage == Stage::Running && self.main_kill_at.is_some_and(|t| now >= t) {
            self.main_kill_at = None;
            self.main_killed = true;
            if let Some(pid) = self.main.as_ref().and_then(|m| m.pid) {
                let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
                let _ = kill(pid, Signal::SIGKILL);
            }
        }
        if self.stage == Stage::Running {
            self.start_what_can_start(now);
            if !self.startup_over && self.all_settled() {
                self.startup_over = true;
            }
            // Starting a service may have begun the shutdown (a permanent start error, a
            // critical failure): then CMD must not start.
            if self.stage == Stage::Running {
                self.maybe_start_main(now);
            }
        } else {
            self.advance_shutdown(now);
        }
    }

    fn start_what_can_start(&mut self, now: Instant) {
        for i in 0..self.svcs.len() {
            let s = &self.svcs[i];
            if s.m.state != State::Down || !s.want_up {
                continue;
            }
            let deps_ready = s.def.dependencies.iter().all(|d| {
                self.svcs
                    .iter()
                    .find(|o| &o.def.name == d)
                    .is_some_and(Svc::satisfies_dependents)
            });
            if deps_ready {
                self.feed(i, Event::Start, now);
            }
        }
    }

    /// Every service is ready, or settled for good, or cannot start (disabled, blocked).
    fn all_settled(&self) -> bool {
        self.svcs.iter().all(|s| {
            s.satisfies_dependents()
                || matches!(s.m.state, State::Failed | State::Done)
                || !s.want_up
                || s.def.dependencies.iter().any(|d| {
                    self.svcs
                        .iter()
                        .any(|o| &o.def.name == d && o.m.state == State::Failed)
                })
        })
    }

    fn maybe_start_main(&mut self, now: Instant) {
        let waiting = self
            .main
            .as_ref()
            .is_some_and(|m| m.pid.is_none() && m.exit.is_none());
        if !waiting {
            return;
        }
        let timed_out = self.cmd_wait.is_some_and(|t| now >= t);
        if !self.all_settled() && !timed_out {
            return;
        }
        if timed_out && !self.all_settled() {
            eprintln!("tend: TEND_CMD_WAIT elapsed before every service was ready; starting CMD");
        }
        self.start_main();
    }

    fn start_main(&mut self) {
        let Some(m) = self.main.as_mut() else { return };
        let spawned = {
            let (out, err) = match &m.out {
                Some((o, e)) => (Some(o.as_fd()), Some(e.as_fd())),
                None => (None, None),
            };
            spawn(&Spawn {
                argv: &m.argv,
                env: &[],
                stdout: out,
                stderr: err,
                stdin_null: false,
                isolation: Isolation::Group,
                ids: None,
                extra_fd: None,
                cwd: None,
            })
        };
        match spawned {
            Ok(pid) => {
                m.pid = Some(pid);
                m.started = Some(Instant::now());
                self.startup_over = true;
            }
            Err(e) => {
                let code = exec_failure_code(&e);
                eprintln!(
                    "tend: cannot run '{}': {}",
                    m.argv[0].to_string_lossy(),
                    short_io(&e)
                );
                m.exit = Some(Exit::Code(code));
                self.exit_code.get_or_insert(code);
                match self.mode {
                    Mode::Run { .. } => {
                        self.stage = Stage::Sweep;
                        self.arm_stop_deadline(Instant::now());
                    }
                    Mode::Init => self.begin_shutdown(None),
                }
            }
        }
    }

    /// True when tend is shutting down.
    pub fn shutting_down(&self) -> bool {
        self.stage != Stage::Running
    }
}

/// An io::Error without the "(os error N)" suffix, for one-line messages.
pub fn short_io(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_owned(),
        None => s,
    }
}
