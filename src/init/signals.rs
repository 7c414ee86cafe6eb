//! Signal intake: every catchable signal is blocked and read from a signalfd in the event loop.
//!
//! Blocking (rather than handling) matters for PID 1: the kernel drops signals sent to a
//! namespace's init that it neither handles nor blocks, and a signalfd turns the rest into
//! plain data for `poll`, with no async-signal-safety rules to obey.

use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::OnceLock;
use std::time::Duration;

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
    /// The first stop signal (TERM, INT, QUIT) read.
    stop: Option<Signal>,
}

/// The signals that ask tend to stop.
fn is_stop(s: Signal) -> bool {
    matches!(s, Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT)
}

/// One signal read from the signalfd.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    /// A standard signal.
    Named(Signal),
    /// A realtime signal (SIGRTMIN..SIGRTMAX), by number: nix has no name for these.
    Realtime(i32),
}

/// What tend was started with, restored in every child before exec (as tini does): a signal
/// the caller blocked stays blocked, one it ignored stays ignored.
#[derive(Clone, Copy)]
pub struct Inherited {
    /// The signal mask tend was started with.
    pub mask: libc::sigset_t,
    /// Whether SIGTTIN was ignored (tend ignores it itself, so exec would not restore it).
    pub ttin_ignored: bool,
    /// Whether SIGTTOU was ignored.
    pub ttou_ignored: bool,
}

static INHERITED: OnceLock<Inherited> = OnceLock::new();

/// The mask and dispositions tend was started with, once `SignalIntake::install` ran.
pub fn inherited() -> Option<Inherited> {
    INHERITED.get().copied()
}

/// Whether `sig`'s current disposition is SIG_IGN.
fn is_ignored(sig: libc::c_int) -> Result<bool, String> {
    // SAFETY: sigaction with a null new action only reads the current one into `old`.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            return Err(format!(
                "cannot read the disposition of signal {sig}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(old.sa_sigaction == libc::SIG_IGN)
    }
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
        let ttin_ignored = is_ignored(libc::SIGTTIN)?;
        let ttou_ignored = is_ignored(libc::SIGTTOU)?;
        let mut old = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), Some(&mut old))
            .map_err(|e| format!("cannot block signals: {e}"))?;
        // Installed once per process; a second install keeps the first (the original) state.
        let _ = INHERITED.set(Inherited {
            mask: *old.as_ref(),
            ttin_ignored,
            ttou_ignored,
        });
        for s in [Signal::SIGTTIN, Signal::SIGTTOU] {
            // SAFETY: installing SIG_IGN runs no handler code; children get the disposition
            // tend was started with back before exec (see supervise::spawn).
            unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigIgn) }
                .map_err(|e| format!("cannot ignore {s}: {e}"))?;
        }
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| format!("cannot open a signalfd: {e}"))?;
        Ok(SignalIntake { fd, stop: None })
    }

    /// The fd to poll for readability.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every signal pending now, in arrival order (empty when none).
    pub fn drain(&mut self) -> Vec<Taken> {
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            let n = info.ssi_signo as i32;
            // Only blocked signals arrive here, so a number without a name is a realtime one
            // (the libc's SIGRTMIN differs: 34 with glibc, 35 with musl).
            out.push(match Signal::try_from(n) {
                Ok(s) => {
                    if is_stop(s) && self.stop.is_none() {
                        self.stop = Some(s);
                    }
                    Taken::Named(s)
                }
                Err(_) => Taken::Realtime(n),
            });
        }
        out
    }

    /// Whether a stop signal (TERM, INT, QUIT) has been read so far.
    pub fn stop_seen(&self) -> bool {
        self.stop.is_some()
    }

    /// The first stop signal read, if any.
    pub fn stop_signal(&self) -> Option<Signal> {
        self.stop
    }

    /// Outside the event loop (start-up, final log flush): waits up to `d` for a signal or
    /// for `also` to become readable, and says whether a stop signal has come. Children are reaped here; there is no command to
    /// forward other signals to, so they are dropped.
    pub fn wait_for_stop(&mut self, d: Duration, also: BorrowedFd<'_>) -> bool {
        use nix::poll::{PollFd, PollFlags, poll};
        let mut p = [
            PollFd::new(self.fd.as_fd(), PollFlags::POLLIN),
            PollFd::new(also, PollFlags::POLLIN),
        ];
        let ms = d.as_millis().min(60_000) as u16;
        let woke = matches!(poll(&mut p, ms), Ok(n) if n > 0);
        if woke && p[0].revents().is_some_and(|r| !r.is_empty()) {
            for sig in self.drain() {
                if sig == Taken::Named(Signal::SIGCHLD) {
                    let _ = super::reap::reap_all();
                }
            }
        }
        self.stop.is_some()
    }
}

/// Sends signal number `signo` (a realtime one, say) to `target`; errors (gone) are moot.
pub fn send_number(target: Pid, signo: i32) {
    // SAFETY: kill takes two integers and touches no memory.
    unsafe {
        libc::kill(target.as_raw(), signo);
    }
}

/// Whether `sig` is one tend forwards in `run` mode: every taken signal but SIGCHLD.
pub fn forwardable(sig: Signal) -> bool {
    sig != Signal::SIGCHLD && !NOT_TAKEN.contains(&sig)
}
