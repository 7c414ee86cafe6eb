//! The shutdown sequence (SPEC §6): CMD, longruns in reverse dependency order, oneshot
//! `down`s in reverse order, then a sweep of every process left. Each stage ends the
//! moment the processes it waits for are gone.

use super::state::{Event, State};
use super::supervisor::{Stage, Supervisor};
use crate::init::reap::no_children;
use crate::init::sweep::signal_remaining;
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
                    self.main_kill_at = Some(self.kill_at(now, self.kill_grace));
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
        if self.stage == Stage::Downs && self.run_downs(now) {
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
            self.sweep_term_at = Some(self.kill_at(now, self.kill_grace));
        } else if self.sweep_term_at.is_some_and(|t| now >= t) {
            signal_remaining(Signal::SIGKILL);
            self.sweep_term_at = None;
            // A process in uninterruptible sleep may outlive SIGKILL; do not wait forever,
            // nor past the stop deadline.
            let by = now + Duration::from_secs(2);
            self.sweep_kill_at = Some(self.stop_by.map_or(by, |d| d.min(by).max(now)));
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
            if matches!(self.svcs[i].m.state, State::Backoff { .. }) {
                self.feed(i, Event::Stop, now);
            }
            if !self.svcs[i].active() {
                continue;
            }
            all_down = false;
            let name = &self.svcs[i].def.name;
            let dependents_running = self
                .svcs
                .iter()
                .any(|o| !o.is_oneshot() && o.active() && o.def.dependencies.contains(name));
            if !dependents_running
                && matches!(
                    self.svcs[i].m.state,
                    State::Starting { .. } | State::Up { .. }
                )
            {
                self.feed(i, Event::Stop, now);
            }
        }
        all_down
    }

    /// Shutdown stage: runs oneshot `down`s one at a time in reverse order.
    /// Returns true when all have run.
    pub(super) fn run_downs(&mut self, now: Instant) -> bool {
        if self
            .svcs
            .iter()
            .any(|s| matches!(s.m.state, State::Downing { .. }))
        {
            return false;
        }
        // `down` needs the state the oneshot left; a oneshot is `Done` until its down ran.
        for i in (0..self.svcs.len()).rev() {
            if self.svcs[i].is_oneshot() && self.svcs[i].m.state == State::Done {
                self.feed(i, Event::RunDown, now);
                if matches!(self.svcs[i].m.state, State::Downing { .. }) {
                    return false;
                }
            }
        }
        true
    }
}
