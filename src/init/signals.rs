//! Signal intake: every catchable signal is blocked and read from a signalfd in the event loop.
//!
//! Blocking (rather than handling) matters for PID 1: the kernel drops signals sent to a
//! namespace's init that it neither handles nor blocks, and a signalfd turns the rest into
//! plain data for `poll`, with no async-signal-safety rules to obey.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::os::fd::{AsFd, BorrowedFd};

/// Signals tend never blocks: faults must kill tend as usual rather than queue forever, and
/// SIGTTIN/SIGTTOU are ignored instead so that handing the terminal to a child cannot stop tend
/// (tini's set).
const NOT_TAKEN: &[Signal] = &[
    Signal::SIGFPE,
    Signal::SIGILL,
    Signal::SIGSEGV,
    Signal::SIGBUS,
    Signal::SIGABRT,
    Signal::SIGTRAP,
    Signal::SIGSYS,
    Signal::SIGTTIN,
    Signal::SIGTTOU,
    Signal::SIGKILL,
    Signal::SIGSTOP,
];

/// The blocked signal set and the signalfd that reads it.
pub struct SignalIntake {
    fd: SignalFd,
}

/// The set of signals tend takes in through the signalfd.
fn taken() -> SigSet {
    let mut set = SigSet::all();
    for &s in NOT_TAKEN {
        set.remove(s);
    }
    set
}

impl SignalIntake {
    /// Blocks every catchable signal in the calling thread (threads started later inherit the
    /// mask, so only the event loop sees them) and opens a non-blocking signalfd.
    pub fn install() -> Result<SignalIntake, String> {
        let set = taken();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(|e| format!("cannot block signals: {e}"))?;
        for s in [Signal::SIGTTIN, Signal::SIGTTOU] {
            // SAFETY: installing SIG_IGN runs no handler code; children get SIG_DFL back
            // before exec (see supervise::spawn).
            unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigIgn) }
                .map_err(|e| format!("cannot ignore {s}: {e}"))?;
        }
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot open a signalfd: {e}"))?;
        Ok(SignalIntake { fd })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every signal pending now, in arrival order (empty when none).
    pub fn drain(&mut self) -> Vec<Signal> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            if let Ok(s) = Signal::try_from(info.ssi_signo as i32) {
                out.push(s);
            }
        }
        out
    }
}

/// Whether `sig` is one tend forwards in `run` mode: every taken signal but SIGCHLD.
pub fn forwardable(sig: Signal) -> bool {
    sig != Signal::SIGCHLD && !NOT_TAKEN.contains(&sig)
}
