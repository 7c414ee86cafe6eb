//! Starting a process the way a supervisor must: own process group or session, terminal
//! hand-over, readiness fd, credentials, captured stdout/stderr, default signal dispositions.

use crate::init::signals::Inherited;
use nix::unistd::{Gid, Pid, Uid};
use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Where the new process sits among sessions and process groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isolation {
    /// A new session (and so process group): services, detached from any terminal.
    Session,
    /// A new process group in tend's session; it takes the terminal's foreground when stdin
    /// is a terminal (what tini does, so ^C and job control reach the child).
    Group,
}

/// The uid, gid and supplementary groups to switch to before exec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    /// User id.
    pub uid: Uid,
    /// Primary group id.
    pub gid: Gid,
    /// Supplementary groups.
    pub groups: Vec<Gid>,
}

/// What to start and how.
pub struct Spawn<'a, A: AsRef<OsStr> = String> {
    /// Program (looked up in PATH when it has no `/`) and its arguments, as bytes.
    pub argv: &'a [A],
    /// Variables to set (`Some`) or unset (`None`) on top of tend's environment.
    pub env: &'a [(String, Option<std::ffi::OsString>)],
    /// Where fd 1 goes; `None` inherits tend's.
    pub stdout: Option<BorrowedFd<'a>>,
    /// Where fd 2 goes; `None` inherits tend's.
    pub stderr: Option<BorrowedFd<'a>>,
    /// Give the child /dev/null as stdin instead of tend's.
    pub stdin_null: bool,
    /// Session or process group.
    pub isolation: Isolation,
    /// Credentials to switch to.
    pub ids: Option<&'a Ids>,
    /// An extra fd the child gets at a fixed number (s6 `notification-fd`).
    pub extra_fd: Option<(RawFd, BorrowedFd<'a>)>,
    /// Working directory.
    pub cwd: Option<&'a Path>,
}

/// The exit code a shell gives for a command that could not be executed: 127 when it was
/// not found, 126 when it was found but could not run.
pub fn exec_failure_code(e: &io::Error) -> i32 {
    if e.kind() == io::ErrorKind::NotFound {
        127
    } else {
        126
    }
}

fn dup_stdio(fd: Option<BorrowedFd<'_>>) -> io::Result<Stdio> {
    Ok(match fd {
        Some(fd) => Stdio::from(fd.try_clone_to_owned()?),
        None => Stdio::inherit(),
    })
}

/// Starts the process; the error is the exec failure (`ENOENT`, `EACCES`, …).
pub fn spawn<A: AsRef<OsStr>>(s: &Spawn<'_, A>) -> io::Result<Pid> {
    let (program, args) = s
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    for (k, v) in s.env {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdout(dup_stdio(s.stdout)?);
    cmd.stderr(dup_stdio(s.stderr)?);
    cmd.stdin(if s.stdin_null {
        Stdio::null()
    } else {
        Stdio::inherit()
    });
    if let Some(dir) = s.cwd {
        cmd.current_dir(dir);
    }
    let isolation = s.isolation;
    let inherited = crate::init::signals::inherited();
    let extra: Option<(RawFd, RawFd)> = s.extra_fd.map(|(n, fd)| (n, fd.as_raw_fd()));
    let ids = s.ids.cloned();
    let groups: Vec<libc::gid_t> = ids
        .as_ref()
        .map(|i| i.groups.iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // async-signal-safe system calls on values captured by copy (no allocation, no locks).
    unsafe {
        cmd.pre_exec(move || {
            child_setup(isolation, extra, inherited.as_ref())?;
            if let Some(ids) = &ids {
                switch_ids(ids, &groups)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // tend reaps with waitpid(-1), so the std handle is dropped without waiting on it.
    Ok(Pid::from_raw(child.id() as i32))
}

/// Session or group, terminal, readiness fd, and the signal mask and TTIN/TTOU dispositions
/// tend was started with. Runs in the child.
fn child_setup(
    isolation: Isolation,
    extra: Option<(RawFd, RawFd)>,
    inherited: Option<&Inherited>,
) -> io::Result<()> {
    // SAFETY (whole function): plain system calls on integers, allowed between fork and exec.
    unsafe {
        match isolation {
            Isolation::Session => {
                if libc::setsid() < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Isolation::Group => {
                if libc::setpgid(0, 0) < 0 {
                    return Err(io::Error::last_os_error());
                }
                // Only a terminal on stdin gets handed over; ENOTTY and friends are fine.
                if libc::isatty(0) == 1 {
                    libc::tcsetpgrp(0, libc::getpgrp());
                }
            }
        }
        if let Some((target, fd)) = extra {
            if target == fd {
                // dup2 onto itself keeps FD_CLOEXEC, which would close it at exec.
                libc::fcntl(fd, libc::F_SETFD, 0);
            } else if libc::dup2(fd, target) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        // tend ignores TTIN/TTOU and blocks every signal for its signalfd; the command gets
        // what tend itself was started with instead (tini does the same), so a signal the
        // caller ignored or blocked stays so. Without a record: defaults, empty mask.
        let disposition = |ignored: bool| {
            if ignored {
                libc::SIG_IGN
            } else {
                libc::SIG_DFL
            }
        };
        let (ttin, ttou) = inherited.map_or((false, false), |i| (i.ttin_ignored, i.ttou_ignored));
        libc::signal(libc::SIGTTIN, disposition(ttin));
        libc::signal(libc::SIGTTOU, disposition(ttou));
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        if let Some(i) = inherited {
            mask = i.mask;
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut());
    }
    Ok(())
}

/// setgroups, setgid, setuid — in that order, since setuid drops the right to do the others.
fn switch_ids(ids: &Ids, groups: &[libc::gid_t]) -> io::Result<()> {
    // SAFETY: plain system calls; `groups` was allocated before fork and is only read.
    unsafe {
        if libc::setgroups(groups.len(), groups.as_ptr()) < 0 && libc::geteuid() == 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setgid(ids.gid.as_raw()) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setuid(ids.uid.as_raw()) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}
