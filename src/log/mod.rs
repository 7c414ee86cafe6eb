//! The log engine: pipes in, framed and formatted records out, into rotating directories.
//!
//! Data flows one way: [`pump`] reads every pipe, [`frame`] cuts bytes into records,
//! [`format`] renders them into a [`batch`], [`sink`] writes, rotates and prunes one
//! directory whose path [`layout`] derives from the container's identity.

pub mod batch;
mod compress;
mod dirfd;
pub mod format;
pub mod frame;
mod hooks;
mod index;
pub mod layout;
pub mod options;
pub mod pump;
mod recover;
mod retention;
pub mod sink;

pub use options::LogOptions;

/// Which output of a process a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

impl Stream {
    /// The tag written in `cri` and `json` records.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// `tend log DIR`: stdin to a rotating log directory.
pub fn job(args: crate::cli::LogArgs) -> i32 {
    match run_job(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("tend log: {e}");
            crate::cli::EXIT_CONFIG
        }
    }
}

fn run_job(args: &crate::cli::LogArgs) -> Result<(), String> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::AsFd;

    let opts = crate::cli::log_options(&args.log_flag_values(), args.tee, false)?;
    // Blocked before the log thread starts so it inherits the mask: the signals are then
    // only seen through the signalfd below.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.thread_block()
        .map_err(|e| format!("cannot block SIGTERM/SIGINT: {e}"))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| format!("signalfd: {e}"))?;
    let sink = sink::Sink::open_dir(std::path::Path::new(&args.dir), opts)?;
    let stdin = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| format!("stdin: {e}"))?;
    crate::sys::enlarge_pipe(&stdin);
    // The log thread makes its fds non-blocking; stdin's flags live on a file description
    // shared with whoever started tend (a terminal, a shell), so they are put back at exit.
    let stdin_flags = nix::fcntl::fcntl(&stdin, nix::fcntl::FcntlArg::F_GETFL).ok();
    let pump = pump::Pump::start().map_err(|e| format!("cannot start the log thread: {e}"))?;
    pump.add_sink(sink, vec![(Stream::Stdout, stdin)]);
    let signalled = loop {
        let mut fds = [
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(pump.idle_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let hit = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        if hit(&fds[0]) {
            break true;
        }
        if hit(&fds[1]) {
            break false;
        }
    };
    // On a signal: stop reading now, write what was read.
    pump.finish(signalled.then(std::time::Instant::now));
    if let Some(flags) = stdin_flags {
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags);
        let _ = nix::fcntl::fcntl(std::io::stdin(), nix::fcntl::FcntlArg::F_SETFL(flags));
    }
    Ok(())
}
