//! Reaping: collect every exited child, whether tend started it or it was re-parented here.

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid, waitpid};
use nix::unistd::Pid;

/// How a process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this code.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
}

impl Exit {
    /// The shell convention: the code, or 128+N for signal N.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(n) => 128 + n,
        }
    }

    /// True for exit code 0.
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(n) => match nix::sys::signal::Signal::try_from(*n) {
                Ok(s) => write!(f, "signal {} ({})", n, s.as_str()),
                Err(_) => write!(f, "signal {n}"),
            },
        }
    }
}

/// Reaps every child that has exited, without blocking.
pub fn reap_all() -> Vec<(Pid, Exit)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => out.push((pid, Exit::Code(code))),
            Ok(WaitStatus::Signaled(pid, sig, _)) => out.push((pid, Exit::Signal(sig as i32))),
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    out
}

/// True when tend has no child left at all (running or zombie).
pub fn no_children() -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::All, flags), Err(Errno::ECHILD))
}
