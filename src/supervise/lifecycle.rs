//! The life of one service: start, readiness, exit, `finish`, restart, stop, `down`.

use super::spawn::{Isolation, Spawn, spawn};
use super::supervisor::{Supervisor, short_io};
use super::svc::{Aux, State};
use crate::init::Exit;
use crate::service::{Kind, Readiness, Restart};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// First delay between `check` runs; it doubles up to [`CHECK_MAX`].
const CHECK_FIRST: Duration = Duration::from_millis(50);
/// Longest delay between `check` runs.
const CHECK_MAX: Duration = Duration::from_secs(1);

pub(super) fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl Supervisor {
    /// Starts a service: a longrun's `run`, or a oneshot's `up`.
    pub(super) fn start_service(&mut self, i: usize, now: Instant) {
        let (argv, is_oneshot) = match self.kind(i) {
            Kind::Longrun { run, .. } => (vec![path_arg(run)], false),
            Kind::Oneshot { up, .. } => (vec![path_arg(up)], true),
        };
        let mut ready_w = None;
        let mut extra = None;
        if let (false, Readiness::Fd(n)) = (is_oneshot, self.readiness(i)) {
            match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK) {
                Ok((r, w)) => {
                    extra = Some(*n);
                    self.svcs[i].ready_pipe = Some(r);
                    ready_w = Some(w);
                }
                Err(e) => eprintln!(
                    "tend: {}: cannot create the notification pipe: {e}",
                    self.svcs[i].def.name
                ),
            }
        }
        let spawned =
            self.spawn_in_service(i, &argv, extra.zip(ready_w.as_ref().map(|w| w.as_fd())));
        // The child holds its own copy; ours must go so EOF shows when it exits.
        drop(ready_w);
        let s = &mut self.svcs[i];
        s.up_timed_out = false;
        match spawned {
            Ok(pid) => {
                s.pid = Some(pid);
                s.started = Some(now);
                s.state = State::Starting;
                s.deadline = s.def.timeout_up.map(|t| now + t);
                if is_oneshot {
                    return;
                }
                match &s.def.readiness {
                    Readiness::None => {
                        s.deadline = None;
                        s.state = State::Ready;
                    }
                    Readiness::Check(_) => {
                        s.check_every = CHECK_FIRST;
                        s.check_at = Some(now);
                    }
                    Readiness::Fd(_) | Readiness::Systemd => {}
                }
            }
            Err(e) => {
                eprintln!(
                    "tend: {}: cannot run {}: {}",
                    s.def.name,
                    argv[0],
                    short_io(&e)
                );
                s.ready_pipe = None;
                s.started = Some(now);
                let exit = Exit::Code(super::spawn::exec_failure_code(&e));
                self.on_service_exit(i, exit);
            }
        }
    }

    /// The service reported readiness (or its `check` passed).
    pub(super) fn mark_ready(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        s.ready_pipe = None;
        if s.state == State::Starting && !s.is_oneshot() {
            s.state = State::Ready;
            s.deadline = None;
            s.check_at = None;
        }
    }

    /// `run` (or `up`) exited.
    pub(super) fn on_service_exit(&mut self, i: usize, exit: Exit) {
        let now = Instant::now();
        let s = &mut self.svcs[i];
        s.pid = None;
        s.last_exit = Some(exit);
        s.ready_pipe = None;
        s.check_at = None;
        s.deadline = None;
        if let Some((pid, Aux::Check)) = s.aux {
            let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        }
        if s.is_oneshot() {
            if exit.success() {
                s.state = State::Done;
            } else {
                s.state = State::Failed;
                if !self.shutting_down() {
                    self.fail_startup(i, exit);
                }
            }
            return;
        }
        if let Kind::Longrun {
            finish: Some(finish),
            ..
        } = &s.def.kind
        {
            let (code, sig) = match exit {
                Exit::Code(c) => (c, 0),
                Exit::Signal(n) => (256, n),
            };
            let argv = vec![path_arg(finish), code.to_string(), sig.to_string()];
            let limit = s.def.timeout_finish;
            match self.spawn_in_service(i, &argv, None) {
                Ok(pid) => {
                    self.set_aux(i, pid, Aux::Finish);
                    let s = &mut self.svcs[i];
                    s.state = State::Finishing;
                    s.deadline = Some(now + limit);
                    return;
                }
                Err(e) => eprintln!(
                    "tend: {}: cannot run finish: {}",
                    self.svcs[i].def.name,
                    short_io(&e)
                ),
            }
        }
        self.settle_after_exit(i, now);
    }

    /// A `finish`, `check` or `down` process exited.
    pub(super) fn on_aux_exit(&mut self, i: usize, aux: Aux, exit: Exit) {
        let now = Instant::now();
        match aux {
            Aux::Finish => {
                if self.svcs[i].state == State::Finishing {
                    self.settle_after_exit(i, now);
                }
            }
            Aux::Check => {
                let s = &mut self.svcs[i];
                if s.state != State::Starting {
                    return;
                }
                if exit.success() {
                    self.mark_ready(i);
                } else {
                    s.check_at = Some(now + s.check_every);
                    s.check_every = (s.check_every * 2).min(CHECK_MAX);
                }
            }
            Aux::Down => {
                self.svcs[i].deadline = None;
                if !exit.success() {
                    eprintln!("tend: {}: down failed ({exit})", self.svcs[i].def.name);
                }
            }
        }
    }

    /// Fires whatever timer of service `i` is due.
    pub(super) fn on_timers(&mut self, i: usize, now: Instant) {
        if self.svcs[i].check_at.is_some_and(|t| now >= t) && self.svcs[i].aux.is_none() {
            self.svcs[i].check_at = None;
            if let Readiness::Check(path) = self.readiness(i) {
                let argv = vec![path_arg(path)];
                match self.spawn_in_service(i, &argv, None) {
                    Ok(pid) => self.set_aux(i, pid, Aux::Check),
                    Err(e) => {
                        eprintln!(
                            "tend: {}: cannot run check: {}",
                            self.svcs[i].def.name,
                            short_io(&e)
                        );
                        self.svcs[i].check_at = Some(now + CHECK_MAX);
                    }
                }
            }
        }
        let Some(due) = self.svcs[i].deadline else {
            return;
        };
        if now < due {
            return;
        }
        self.svcs[i].deadline = None;
        match self.svcs[i].state {
            State::Starting if !self.svcs[i].is_oneshot() => {
                let s = &mut self.svcs[i];
                eprintln!(
                    "tend: {}: not ready after {} ms (timeout-up); stopping it",
                    s.def.name,
                    s.def.timeout_up.map(|d| d.as_millis()).unwrap_or(0)
                );
                s.up_timed_out = true;
                self.stop_service(i, now);
            }
            State::Stopping => self.kill_service(i),
            State::Finishing | State::Done => {
                if let Some((pid, _)) = self.svcs[i].aux {
                    let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
                }
            }
            State::Backoff => {
                if self.shutting_down() {
                    self.svcs[i].state = State::Down;
                } else {
                    self.svcs[i].restarts += 1;
                    self.start_service(i, now);
                }
            }
            _ => {}
        }
    }

    /// Sends the down signal to a running service's process group and arms the kill timer.
    pub fn stop_service(&mut self, i: usize, now: Instant) {
        let grace = self.grace_of(i);
        let s = &mut self.svcs[i];
        match s.state {
            State::Backoff => {
                s.state = State::Down;
                s.deadline = None;
            }
            State::Starting | State::Ready if s.pid.is_some() => {
                if let Some(pid) = s.pid {
                    let group = Pid::from_raw(-pid.as_raw());
                    let _ = kill(group, s.def.down_signal);
                    let _ = kill(group, Signal::SIGCONT);
                }
                if let Some((pid, Aux::Check)) = s.aux {
                    let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
                }
                s.state = State::Stopping;
                s.check_at = None;
                s.deadline = Some(now + grace);
            }
            _ => {}
        }
    }

    /// The service did not stop in time: SIGKILL its process group.
    fn kill_service(&mut self, i: usize) {
        let s = &mut self.svcs[i];
        if let Some(pid) = s.pid {
            eprintln!(
                "tend: {}: did not stop in time; sending SIGKILL",
                s.def.name
            );
            let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
        }
    }

    /// Kill grace of a service: its `timeout-kill`, else `TEND_KILL_GRACE`.
    pub fn grace_of(&self, i: usize) -> Duration {
        self.svcs[i].def.timeout_kill.unwrap_or(self.kill_grace)
    }

    /// Spawns a service's `run`, `up`, `check`, `finish` or `down` program.
    pub fn spawn_in_service(
        &self,
        i: usize,
        argv: &[String],
        extra_fd: Option<(std::os::fd::RawFd, std::os::fd::BorrowedFd<'_>)>,
    ) -> std::io::Result<Pid> {
        let s = &self.svcs[i];
        spawn(&Spawn {
            argv,
            env: &s.env,
            stdout: Some(s.out.as_fd()),
            stderr: Some(s.err.as_fd()),
            stdin_null: true,
            isolation: Isolation::Session,
            ids: s.ids.as_ref(),
            extra_fd,
            cwd: Some(&s.def.dir),
        })
    }

    /// Decides what a service's exit means, once `finish` (if any) is done.
    pub fn settle_after_exit(&mut self, i: usize, now: Instant) {
        let shutting = self.shutting_down();
        let s = &mut self.svcs[i];
        s.deadline = None;
        s.check_at = None;
        if shutting || !s.want_up {
            s.state = State::Down;
            return;
        }
        if std::mem::take(&mut s.restart_requested) {
            // `tend ctl restart`: start again now, whatever the policy says.
            s.state = State::Down;
            s.restarts += 1;
            return;
        }
        let exit = s.last_exit.unwrap_or(Exit::Code(0));
        let failed = !exit.success() || s.up_timed_out;
        let again = match s.def.restart {
            Restart::Always => true,
            Restart::OnFailure => failed,
            Restart::Never => false,
        };
        if again {
            let ran = s.started.map(|t| now.duration_since(t)).unwrap_or_default();
            let delay = s.backoff.next_delay(ran);
            s.state = State::Backoff;
            s.deadline = Some(now + delay);
            return;
        }
        s.state = if failed { State::Failed } else { State::Done };
        if s.def.critical {
            eprintln!(
                "tend: critical service {} stopped for good ({}); shutting down",
                s.def.name, exit
            );
            let code = exit.code();
            self.begin_shutdown(Some(code));
        }
    }

    /// Fails start-up because a oneshot's `up` failed.
    pub fn fail_startup(&mut self, i: usize, exit: Exit) {
        let name = &self.svcs[i].def.name;
        eprintln!("tend: {name}: up failed ({exit}); start-up stopped");
        let code = if exit.success() { 1 } else { exit.code() };
        self.begin_shutdown(Some(code));
    }

    /// The readiness protocol of a service.
    pub fn readiness(&self, i: usize) -> &Readiness {
        &self.svcs[i].def.readiness
    }

    /// The kind of a service.
    pub fn kind(&self, i: usize) -> &Kind {
        &self.svcs[i].def.kind
    }

    /// Records an auxiliary process.
    pub fn set_aux(&mut self, i: usize, pid: Pid, aux: Aux) {
        self.svcs[i].aux = Some((pid, aux));
    }
}
