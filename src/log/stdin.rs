//! `tend log DIR`: stdin to a rotating log directory, as s6-log, svlogd and multilog do.

use super::hooks::Hooks;
use super::pump::Pump;
use super::sink::Sink;
use super::{LogOptions, Stream};
use crate::init::reap::reap_all;
use std::path::Path;

/// Copies stdin into `dir` until EOF or a stop signal; SIGALRM rotates.
pub fn run(dir: &Path, opts: LogOptions) -> Result<(), String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::{AsFd, BorrowedFd};

    // Blocked before the log thread starts so it inherits the mask: the signals are then
    // only seen through the signalfd below. As s6-log: SIGALRM rotates, SIGHUP and SIGTERM
    // (and SIGINT) end the job cleanly after writing what was read. SIGCHLD: this loop is
    // the reaper of `--on-rotate` hooks.
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGALRM,
        Signal::SIGCHLD,
    ] {
        mask.add(s);
    }
    mask.thread_block()
        .map_err(|e| format!("cannot block SIGTERM/SIGINT/SIGHUP/SIGALRM/SIGCHLD: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let mut hooks = Hooks::install().map_err(|e| format!("eventfd: {e}"))?;
    let sink = Sink::open_dir(dir, opts)?;
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("stdin: {e}"))?;
    crate::sys::enlarge_pipe(&stdin);
    // The log thread makes its fds non-blocking; stdin's flags live on a file description
    // shared with whoever started tend (a terminal, a shell), so they are put back at exit.
    let stdin_flags = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_GETFL).ok();
    let pump = Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
    pump.add(sink, vec![(Stream::Stdout, stdin)]);
    // What the signals asked for; returns true on a stop signal.
    let on_signals = |hooks: &mut Hooks, pump: Option<&Pump>| {
        let mut stop = false;
        while let Ok(Some(info)) = sfd.read_signal() {
            match Signal::try_from(info.ssi_signo as i32) {
                Ok(Signal::SIGALRM) => pump.iter().for_each(|p| p.rotate(None)),
                Ok(Signal::SIGCHLD) => {
                    for (pid, _) in reap_all() {
                        hooks.on_exit(pid);
                    }
                }
                _ => stop = true,
            }
        }
        stop
    };
    let wait = |hooks: &Hooks, other: BorrowedFd<'_>, ms: PollTimeout| {
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(hooks.fd(), PollFlags::POLLIN),
            PollFd::new(other, PollFlags::POLLIN),
        ];
        match poll(&mut fds, ms) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        Ok([hit(&fds[0]), hit(&fds[1]), hit(&fds[2])])
    };
    let signalled = loop {
        let [sig, hook, idle] = wait(&hooks, pump.idle_fd(), PollTimeout::NONE)?;
        if hook {
            hooks.on_wake();
        }
        if sig && on_signals(&mut hooks, Some(&pump)) {
            break true;
        }
        if idle {
            break false;
        }
    };
    // On a signal: stop reading now, write what was read.
    pump.finish(signalled.then(std::time::Instant::now));
    // Hooks: at EOF the last rotations' hooks still run; after a stop signal they are
    // stopped, and given a moment to end before tend exits.
    if signalled {
        hooks.stop();
    }
    let mut stop_at =
        signalled.then(|| std::time::Instant::now() + std::time::Duration::from_secs(2));
    let never = nix::sys::eventfd::EventFd::new().map_err(|e| format!("eventfd: {e}"))?;
    loop {
        hooks.on_wake();
        if hooks.running() == 0 || stop_at.is_some_and(|t| std::time::Instant::now() >= t) {
            break;
        }
        let [sig, _, _] = wait(&hooks, never.as_fd(), PollTimeout::from(100u8))?;
        if sig && on_signals(&mut hooks, None) && stop_at.is_none() {
            hooks.stop();
            stop_at = Some(std::time::Instant::now() + std::time::Duration::from_secs(2));
        }
    }
    if let Some(flags) = stdin_flags {
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        let _ = nix::fcntl::fcntl(std::io::stdin(), nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    Ok(())
}
