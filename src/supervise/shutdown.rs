//! The shutdown sequence (SPEC §6): CMD, longruns in reverse dependency order, oneshot
//! `down`s in reverse order, then a sweep of every process left. Each stage ends the
//! moment the processes it waits for are gone.

use super::lifecycle::path_arg;
use super::supervisor::{Stage, Supervisor, short_io};
use super::svc::{Aux, State};
use crate::init::reap::no_children;
use crate::init::sweep::signal_remaining;
use crate::service::Kind;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::time::{Duration, Instant};

impl Supervisor {
    pub(super) fn advance_shutdown(&mut self, now: Instant) {
        if self.stage == Stage::Cmd {
            let running = self.main.as_ref().and_then(|m| m.pid);
            match running {
                Some(pid) if self.main_kill_at.is_none() && !self.main_killed => {
                    let group = Pid::from_raw(-pid.as_raw());
                    let _ = kill(group, Signal::SIGTERM);
                    let _ = kill(pid, Signal::SIGTERM);
                    let _ = kill(group, Signal::SIGCONT);
                    self.main_kill_at = Some(now + self.kill_grace);
                }
                Some(pid) => {
                    if self.main_kill_at.is_some_and(|t| now >= t) {
                        let _ = kill(Pid::from_raw(-pid.as_raw()), Signal::SIGKILL);
                        let _ = kill(pid, Signal::SIGKILL);
                        self.main_kill_at = None;
                        self.main_killed = true;
                    }
                }
                None => self.stage = Stage::Longruns,
            }
        }
        if self.stage == Stage::Longruns && self.stop_longruns(now) {
            self.stage = Stage::Downs;
        }
        if self.stage == Stage::Downs && self.run_downs() {
            self.stage = Stage::Sweep;
        }
        if self.stage == Stage::Sweep {
            self.sweep(now);
        }
    }

    /// Final sweep: TERM to everything left, KILL after the grace; done when no child is left.
    fn sweep(&mut self, now: Instant) {
        // Hooks stop with everything else: none starts from here on.
        if let Some(h) = self.hooks.as_mut() {
            h.stop();
        }
        if no_children() {
            self.stage = Stage::Done;
            return;
        }
        if self.sweep_term_at.is_none() && self.sweep_kill_at.is_none() {
            signal_remaining(Signal::SIGTERM);
            self.sweep_term_at = Some(now + self.kill_grace);
        } else if self.sweep_term_at.is_some_and(|t| now >= t) {
            signal_remaining(Signal::SIGKILL);
            self.sweep_term_at = None;
            // A process in uninterruptible sleep may outlive SIGKILL; do not wait forever.
            self.sweep_kill_at = Some(now + Duration::from_secs(2));
        } else if self.sweep_kill_at.is_some_and(|t| now >= t) {
            eprintln!("tend: some processes survived SIGKILL; exiting anyway");
            self.stage = Stage::Done;
        }
    }

    /// Shutdown stage: stops each longrun once no running service depends on it.
    /// Returns true when every longrun is down.
    pub(super) fn stop_longruns(&mut self, now: Instant) -> bool {
        let mut all_down = true;
        for i in (0..self.svcs.len()).rev() {
            if self.svcs[i].is_oneshot() {
                continue;
            }
            if matches!(self.svcs[i].state, State::Backoff) {
                self.svcs[i].state = State::Down;
                self.svcs[i].deadline = None;
            }
            if !self.svcs[i].active() {
                continue;
            }
            all_down = false;
            let name = self.svcs[i].def.name.clone();
            let dependents_running = self
                .svcs
                .iter()
                .any(|o| !o.is_oneshot() && o.active() && o.def.dependencies.contains(&name));
            if !dependents_running && matches!(self.svcs[i].state, State::Starting | State::Ready) {
                self.stop_service(i, now);
            }
        }
        all_down
    }

    /// Shutdown stage: runs oneshot `down`s one at a time in reverse order.
    /// Returns true when all have run.
    pub(super) fn run_downs(&mut self) -> bool {
        // `down` needs the state the oneshot left; a oneshot is `Done` until its down ran.
        if self
            .svcs
            .iter()
            .any(|s| matches!(s.aux, Some((_, Aux::Down))))
        {
            return false;
        }
        for i in (0..self.svcs.len()).rev() {
            let s = &self.svcs[i];
            if !s.is_oneshot() || s.down_done || s.state != State::Done {
                continue;
            }
            self.svcs[i].down_done = true;
            let Kind::Oneshot {
                down: Some(down), ..
            } = self.kind(i)
            else {
                continue;
            };
            let argv = vec![path_arg(down)];
            match self.spawn_in_service(i, &argv, None) {
                Ok(pid) => {
                    self.set_aux(i, pid, Aux::Down);
                    // A hung `down` must not hold the container up past its stop timeout.
                    self.svcs[i].deadline = Some(Instant::now() + self.grace_of(i));
                    return false;
                }
                Err(e) => eprintln!(
                    "tend: {}: cannot run down: {}",
                    self.svcs[i].def.name,
                    short_io(&e)
                ),
            }
        }
        true
    }
}
