//! Thin wrappers over the few system calls the rest of tend shares.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

/// Pipe buffer size asked for capture pipes: large reads, few wake-ups. 1 MiB is the
/// default `/proc/sys/fs/pipe-max-size`, so an unprivileged tend gets it too.
const CAPTURE_PIPE_SIZE: libc::c_int = 1 << 20;

/// A close-on-exec pipe for capturing a child's output, enlarged when the kernel allows.
/// Returns (read end, write end).
pub fn capture_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    enlarge_pipe(&r);
    Ok((r, w))
}

/// Asks for a 1 MiB pipe buffer: large reads, few wake-ups. Best effort: a refusal (not a
/// pipe, or over the user's pipe quota) only costs more wake-ups, so it is ignored.
pub fn enlarge_pipe(fd: &impl AsFd) {
    let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(CAPTURE_PIPE_SIZE));
}

/// An io::Error's message without the `(os error N)` suffix.
pub fn io_msg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_owned(),
        None => s,
    }
}
