//! Readiness channels: the s6 notification-fd pipe and the sd_notify datagram socket.

use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr, bind, recv, socket};
use std::os::fd::{AsRawFd, OwnedFd};

/// What a read from a readiness channel told us.
#[derive(Debug, PartialEq, Eq)]
pub enum Signalled {
    /// The service said it is ready.
    Ready,
    /// Nothing conclusive yet.
    Nothing,
    /// The channel closed without readiness (the writer is gone).
    Closed,
}

/// Reads what is available from a notification-fd pipe: a newline means ready (s6).
pub fn read_pipe(fd: &OwnedFd) -> Signalled {
    let mut buf = [0u8; 512];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => return Signalled::Closed,
            Ok(n) if buf[..n].contains(&b'\n') => return Signalled::Ready,
            Ok(_) => continue,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return Signalled::Nothing,
        }
    }
}

/// A bound sd_notify socket in the abstract namespace: no file is needed, so it works on a
/// read-only root. Returns the socket and the `NOTIFY_SOCKET` value (`@name`).
pub fn notify_socket(service: &str) -> Result<(OwnedFd, String), String> {
    let name = format!("tend/{}/{}", nix::unistd::getpid(), service);
    let sock = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("{service}: notify: cannot create a socket: {e}"))?;
    let addr = UnixAddr::new_abstract(name.as_bytes())
        .map_err(|e| format!("{service}: notify: bad socket name: {e}"))?;
    bind(sock.as_raw_fd(), &addr).map_err(|e| format!("{service}: notify: cannot bind: {e}"))?;
    Ok((sock, format!("@{name}")))
}

/// Reads every pending sd_notify datagram; `READY=1` on a line of its own means ready.
pub fn read_notify(sock: &OwnedFd) -> Signalled {
    let mut buf = [0u8; 4096];
    let mut seen = Signalled::Nothing;
    while let Ok(n) = recv(sock.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        if buf[..n].split(|&b| b == b'\n').any(|l| l == b"READY=1") {
            seen = Signalled::Ready;
        }
    }
    seen
}
