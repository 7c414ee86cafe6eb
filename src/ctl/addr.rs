//! Where the control socket lives: `<run_dir>/control.sock`, or the abstract socket
//! `@tend/control` when the run directory is not writable (read-only root, non-root user).
//!
//! Abstract unix names belong to the network namespace (a Kubernetes pod shares one across
//! its containers), have no file permissions and vanish with the listener. Both ends
//! therefore check the other with `SO_PEERCRED`: the server serves only root and its own uid;
//! the client talks only to a server run by root or its own uid whose pid it can see (so a
//! tend in another container of the pod, another PID namespace, is never mistaken for ours).
//! That second tend finds `@tend/control` taken and listens on `@tend/control/<PID namespace
//! inode>`, which `tend ctl` in its container tries last.

use nix::sys::socket::{getsockopt, sockopt};
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The abstract socket name (shown as `@tend/control`).
pub const ABSTRACT_NAME: &str = "tend/control";

/// The name a second tend in the same network namespace (another container of the pod)
/// takes: `tend/control/<PID namespace inode>`, which `tend ctl` in that container computes
/// the same way. None without /proc.
pub fn pidns_name() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/self/ns/pid").ok()?.ino();
    Some(format!("{ABSTRACT_NAME}/{ino}"))
}

/// Listens on `@tend/control` (close-on-exec, like every std socket).
pub fn bind_abstract(name: &str) -> io::Result<UnixListener> {
    UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)
}

/// One place `tend ctl` may reach tend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// `<run_dir>/control.sock`.
    Path(PathBuf),
    /// An abstract name, without the leading `@`.
    Abstract(String),
}

impl Addr {
    /// The addresses to try, in order: the path, the abstract name, then the one of this
    /// PID namespace.
    pub fn candidates(run_dir: &Path) -> Vec<Addr> {
        let mut v = vec![
            Addr::Path(run_dir.join("control.sock")),
            Addr::Abstract(ABSTRACT_NAME.to_owned()),
        ];
        v.extend(pidns_name().map(Addr::Abstract));
        v
    }

    /// Connects; an abstract peer must pass [`check_server`].
    pub fn connect(&self) -> io::Result<UnixStream> {
        match self {
            Addr::Path(p) => UnixStream::connect(p),
            Addr::Abstract(n) => {
                let s = UnixStream::connect_addr(&SocketAddr::from_abstract_name(n.as_bytes())?)?;
                check_server(&s)?;
                Ok(s)
            }
        }
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Addr::Path(p) => write!(f, "{}", p.display()),
            Addr::Abstract(n) => write!(f, "@{n}"),
        }
    }
}

/// The listener behind an abstract name must be root or us, and in our PID namespace (the
/// kernel reports pid 0 for a process we cannot see).
fn check_server(s: &UnixStream) -> io::Result<()> {
    let cred = getsockopt(s, sockopt::PeerCredentials).map_err(io::Error::from)?;
    let me = nix::unistd::geteuid().as_raw();
    if cred.uid() != 0 && cred.uid() != me {
        return Err(io::Error::other(format!(
            "its listener runs as uid {}, not root or uid {me}",
            cred.uid()
        )));
    }
    if cred.pid() == 0 {
        return Err(io::Error::other(
            "its listener is in another PID namespace (another container of the pod?)",
        ));
    }
    Ok(())
}
