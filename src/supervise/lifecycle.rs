//! Carrying out what a service's state machine ([`super::state`]) decides: spawning its
//! programs, signalling process groups, printing, shutting down. The decisions are all in
//! `state.rs`; this file only talks to the system and feeds the results back.

use super::spawn::{Isolation, Spawn, exec_failure_code, spawn};
use super::state::{Action, Ctx, Event, Prog, ReadyBy, SpawnError, State};
use super::supervisor::{Supervisor, short_io};
use crate::init::Exit;
use crate::service::{Kind, Readiness};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use std::ffi::OsString;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

/// A program's path as an argument: bytes, since the services directory need not be UTF-8.
pub(super) fn path_arg(p: &Path) -> OsString {
    p.as_os_str().to_owned()
}

/// Errors that no retry can cure: not executable, exec format error, setuid/setgid refused
/// (EPERM, or EINVAL for an id the user namespace cannot map).
fn is_permanent(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EACCES | libc::ENOEXEC | libc::EPERM | libc::EINVAL)
    )
}

impl Supervisor {
    /// Hands one event to service `i`'s state machine and carries out its actions.
    pub(super) fn feed(&mut self, i: usize, ev: Event, now: Instant) {
        let cx = self.ctx(i, now);
        let s = &mut self.svcs[i];
        let actions = s.m.on(&s.conf, ev, &cx);
        if !matches!(s.m.state, State::Starting { .. }) {
            // Readiness is only read while starting; an old pipe must not mark a new run.
            s.ready_pipe = None;
        }
        for a in actions {
            match a {
                Action::Spawn(prog) => {
                    let ev = match self.spawn_prog(i, prog) {
                        Ok(pid) => Event::Spawned(prog, pid),
                        Err(e) => Event::SpawnFailed(
                            prog,
                            SpawnError {
                                exit: Exit::Code(exec_failure_code(&e)),
                                permanent: is_permanent(&e),
                                why: short_io(&e),
                            },
                        ),
                    };
                    self.feed(i, ev, now);
                }
                Action::Signal(pid, sig) => {
                    let _ = kill(Pid::from_raw(-pid.as_raw()), sig);
                }
                Action::Log(line) => eprintln!("tend: {line}"),
                Action::ExitContainer(code) => self.begin_shutdown(Some(code)),
            }
        }
    }

    /// What the state machine needs to know of the world now.
    fn ctx(&self, i: usize, now: Instant) -> Ctx {
        Ctx {
            now,
            kill_at: self.kill_at(now, self.grace_of(i)),
            cut: self.stop_cut(now),
            shutting_down: self.shutting_down(),
            startup: !self.startup_over,
            want_up: self.svcs[i].want_up,
            cmd_waiting: self
                .main
                .as_ref()
                .is_some_and(|m| m.pid.is_none() && m.exit.is_none()),
        }
    }

    /// Starts one program of service `i`.
    fn spawn_prog(&mut self, i: usize, prog: Prog) -> std::io::Result<Pid> {
        let def = &self.svcs[i].def;
        let argv = match (prog, &def.kind, &def.readiness) {
            (Prog::Run, Kind::Longrun { run, .. }, _) => vec![path_arg(run)],
            (Prog::Up, Kind::Oneshot { up, .. }, _) => vec![path_arg(up)],
            (Prog::Down, Kind::Oneshot { down: Some(d), .. }, _) => vec![path_arg(d)],
            (
                Prog::Finish { code, sig },
                Kind::Longrun {
                    finish: Some(f), ..
                },
                _,
            ) => {
                vec![path_arg(f), code.to_string().into(), sig.to_string().into()]
            }
            (Prog::Check, _, Readiness::Check(c)) => vec![path_arg(c)],
            // Invariant: the machine only asks for programs the definition has.
            _ => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such program in the service",
                ));
            }
        };
        if let (Prog::Run, ReadyBy::Fd(n)) = (prog, self.svcs[i].conf.ready_by) {
            let flags = nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK;
            match nix::unistd::pipe2(flags) {
                Ok((r, w)) => {
                    let spawned = self.spawn_in_service(i, &argv, Some((n, w.as_fd())));
                    // The child holds its own copy; ours must go so EOF shows when it exits.
                    drop(w);
                    self.svcs[i].ready_pipe = spawned.is_ok().then_some(r);
                    return spawned;
                }
                Err(e) => eprintln!(
                    "tend: {}: cannot create the notification pipe: {e}",
                    self.svcs[i].def.name
                ),
            }
        }
        self.spawn_in_service(i, &argv, None)
    }

    /// Kill grace of a service: its `timeout-kill`, else `TEND_KILL_GRACE`.
    pub fn grace_of(&self, i: usize) -> Duration {
        self.svcs[i]
            .def
            .policy
            .timeout_kill
            .unwrap_or(self.kill_grace)
    }

    /// Spawns a service's `run`, `up`, `check`, `finish` or `down` program.
    pub fn spawn_in_service(
        &self,
        i: usize,
        argv: &[OsString],
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
}

#[cfg(test)]
mod tests {
    use super::is_permanent;
    use std::io::Error;

    #[test]
    fn permanent_start_errors() {
        for e in [libc::EACCES, libc::ENOEXEC, libc::EPERM, libc::EINVAL] {
            assert!(is_permanent(&Error::from_raw_os_error(e)), "{e}");
        }
        for e in [libc::ENOENT, libc::EAGAIN, libc::ENOMEM, libc::EMFILE] {
            assert!(!is_permanent(&Error::from_raw_os_error(e)), "{e}");
        }
    }
}
