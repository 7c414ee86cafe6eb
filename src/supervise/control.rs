//! What `tend ctl` may ask of the supervisor: status, start, stop, restart, kill, shutdown.

use super::state::Event;
use super::supervisor::Supervisor;
use crate::ctl::proto::{Control, Kind, Runs, ServiceStatus, Shown};
use crate::log::stats::SinkStats;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Log counters as (bytes, dropped, rotations).
fn counters(stats: Option<&SinkStats>) -> (u64, u64, u64) {
    stats.map_or((0, 0, 0), |s| {
        (
            s.bytes.load(Relaxed),
            s.dropped.load(Relaxed),
            s.rotations.load(Relaxed),
        )
    })
}

impl Supervisor {
    fn index_of(&self, name: &str) -> Result<usize, String> {
        self.svcs
            .iter()
            .position(|s| s.def.name == name)
            .ok_or_else(|| format!("no service named '{name}'"))
    }
}

impl Control for Supervisor {
    fn status(&self) -> Vec<ServiceStatus> {
        let now = Instant::now();
        let mut out: Vec<ServiceStatus> = self
            .svcs
            .iter()
            .map(|s| {
                let (log_bytes, dropped_bytes, rotations) = counters(Some(&s.stats));
                ServiceStatus {
                    name: s.def.name.clone(),
                    state: s.state_name().to_owned(),
                    pid: s.m.pid().map(Pid::as_raw),
                    since: s.m.pid().and(s.m.started).map(|t| now.duration_since(t)),
                    runs: s.m.runs,
                    log_bytes,
                    dropped_bytes,
                    rotations,
                    kind: if s.is_oneshot() {
                        Kind::Oneshot
                    } else {
                        Kind::Longrun
                    }
                    .as_str()
                    .to_owned(),
                    wanted: s.want_up,
                }
            })
            .collect();
        if let Some(m) = &self.main {
            let (log_bytes, dropped_bytes, rotations) = counters(m.stats.as_deref());
            let state = match (m.pid, m.exit) {
                (Some(_), _) => Shown::Up,
                (None, Some(_)) => Shown::Done,
                (None, None) => Shown::Starting,
            };
            out.push(ServiceStatus {
                name: m.name.clone(),
                state: state.as_str().to_owned(),
                pid: m.pid.map(Pid::as_raw),
                since: m.pid.and(m.started).map(|t| now.duration_since(t)),
                runs: Runs {
                    restarts: 0,
                    last_exit: m.exit,
                },
                log_bytes,
                dropped_bytes,
                rotations,
                kind: Kind::Cmd.as_str().to_owned(),
                wanted: true,
            });
        }
        out
    }

    fn start(&mut self, name: &str) -> Result<(), String> {
        let i = self.index_of(name)?;
        if self.shutting_down() {
            return Err("tend is shutting down".into());
        }
        self.svcs[i].want_up = true;
        // Stopped for good, but an operator asked: start afresh, with a fresh backoff.
        self.feed(i, Event::Enable, Instant::now());
        Ok(())
    }

    fn stop(&mut self, name: &str) -> Result<(), String> {
        let i = self.index_of(name)?;
        self.svcs[i].want_up = false;
        self.feed(i, Event::Stop, Instant::now());
        Ok(())
    }

    fn restart(&mut self, name: &str) -> Result<(), String> {
        let i = self.index_of(name)?;
        if self.svcs[i].is_oneshot() {
            return Err(format!("{name} is a oneshot; only longruns restart"));
        }
        if self.shutting_down() {
            return Err("tend is shutting down".into());
        }
        self.svcs[i].want_up = true;
        self.feed(i, Event::Restart, Instant::now());
        Ok(())
    }

    fn kill(&mut self, signal: Signal, name: &str) -> Result<(), String> {
        if let Some(m) = self.main.as_ref().filter(|m| m.name == name) {
            let pid = m.pid.ok_or_else(|| format!("{name} is not running"))?;
            return kill(pid, signal).map_err(|e| format!("{name}: {e}"));
        }
        let i = self.index_of(name)?;
        let pid = self.svcs[i]
            .m
            .pid()
            .ok_or_else(|| format!("{name} is not running"))?;
        kill(Pid::from_raw(-pid.as_raw()), signal).map_err(|e| format!("{name}: {e}"))
    }

    fn shutdown(&mut self) {
        self.shutdown_requested = true;
    }

    fn rotate(&mut self, name: Option<&str>) -> Result<(), String> {
        if let Some(n) = name {
            let is_main = self.main.as_ref().is_some_and(|m| m.name == n);
            if !is_main {
                self.index_of(n)?;
            }
        }
        match self.pump.as_ref() {
            Some(p) => {
                p.rotate(name);
                Ok(())
            }
            None => Err("output is not captured (--no-capture)".into()),
        }
    }
}
