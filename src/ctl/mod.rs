//! Control: the control socket (server in init, client `tend ctl`) and the HTTP probes.
//!
//! The supervisor's poll loop drives [`server::Server`] with a [`proto::Control`]
//! implementation; `init --metrics-file` uses [`metrics`].

pub mod addr;
pub mod client;
pub mod http;
pub mod json;
pub mod metrics;
pub mod proto;
pub mod server;

/// Test helper: waits up to 20 ms on `fds` and returns the raw fds that have events.
#[cfg(test)]
pub(crate) fn poll_ready(
    fds: &[(std::os::fd::BorrowedFd<'_>, nix::poll::PollFlags)],
) -> Vec<std::os::fd::RawFd> {
    use nix::poll::{PollFd, PollTimeout, poll};
    use std::os::fd::AsRawFd;
    let mut pfds: Vec<PollFd> = fds.iter().map(|(fd, ev)| PollFd::new(*fd, *ev)).collect();
    poll(&mut pfds, PollTimeout::from(20u16)).unwrap();
    pfds.iter()
        .zip(fds)
        .filter(|(p, _)| p.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, (fd, _))| fd.as_raw_fd())
        .collect()
}
