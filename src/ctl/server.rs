//! The control socket server, driven by PID 1's single-threaded poll loop: every call is
//! non-blocking, memory is bounded (few clients, short requests, one reply each).

use super::metrics::render_metrics;
use super::proto::{Control, MAX_REQUEST, Request, status_json, status_line};
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, getsockopt, send, sockopt};
use std::io::{self, Read, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A client must send its request, and read its reply, within this time.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are refused with an error line (bounds memory and fds).
const MAX_CLIENTS: usize = 32;
/// Accepts per `handle` call, so a connection flood cannot starve PID 1's other duties.
const ACCEPTS_PER_CALL: usize = 16;

/// The listening control socket and its connected clients.
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
    /// (dev, ino) of the socket we bound, so Drop removes only our own socket.
    id: (u64, u64),
    uid: u32,
    clients: Vec<Client>,
    timeout: Duration,
}

struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    output: Vec<u8>,
    sent: usize,
    /// Set once the request is answered: from then on we only write, then close.
    replied: bool,
    deadline: Instant,
    timeout: Duration,
}

impl Server {
    /// Binds `<run_dir>/control.sock` (creating run_dir 0755 if needed, replacing a stale
    /// socket). Err(message) if not possible; the caller then warns once and runs without it.
    pub fn bind(run_dir: &Path) -> Result<Server, String> {
        let path = run_dir.join("control.sock");
        let ctx = |what: &str, e: io::Error| format!("{what} {}: {e}", path.display());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(run_dir)
            .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => {
                // A socket that still answers belongs to a live tend: never steal it.
                if is_live(&path) {
                    return Err(format!(
                        "another tend is already listening on {}",
                        path.display()
                    ));
                }
            }
            Ok(_) => return Err(format!("{} exists and is not a socket", path.display())),
            Err(_) => {}
        }
        // Bind under a temporary name, restrict it, then rename over the final name: the
        // socket is never reachable with umask permissions, and a stale one is replaced
        // atomically.
        let tmp = run_dir.join(format!(".control.sock.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let listener = UnixListener::bind(&tmp).map_err(|e| ctx("cannot bind", e))?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(ctx("cannot create", e));
        }
        listener
            .set_nonblocking(true)
            .map_err(|e| ctx("cannot set up", e))?;
        let m = std::fs::symlink_metadata(&path).map_err(|e| ctx("cannot stat", e))?;
        Ok(Server {
            listener,
            path,
            id: (m.dev(), m.ino()),
            uid: nix::unistd::geteuid().as_raw(),
            clients: Vec::new(),
            timeout: CLIENT_TIMEOUT,
        })
    }

    /// Shortens the client timeout so tests need not wait 5 s.
    #[cfg(test)]
    pub fn set_client_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// Every fd to poll, with the events wanted (POLLIN, or POLLOUT while a reply is
    /// pending). Build `nix::poll::PollFd`s from these, poll, then pass the fds that had
    /// any event (including POLLHUP/POLLERR) to [`Server::handle`].
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut v = Vec::with_capacity(1 + self.clients.len());
        v.push((self.listener.as_fd(), PollFlags::POLLIN));
        for c in &self.clients {
            let ev = if c.replied {
                PollFlags::POLLOUT
            } else {
                PollFlags::POLLIN
            };
            v.push((c.stream.as_fd(), ev));
        }
        v
    }

    /// Handles whatever is ready (accept, read, reply) without blocking; `ctl` answers
    /// requests. Fds in `ready` that are not the server's are ignored.
    pub fn handle(&mut self, ready: &[RawFd], ctl: &mut dyn Control) {
        if ready.contains(&self.listener.as_raw_fd()) {
            self.accept();
        }
        let mut i = 0;
        while i < self.clients.len() {
            let c = &mut self.clients[i];
            let keep = if ready.contains(&c.stream.as_raw_fd()) {
                c.service(ctl)
            } else {
                true
            };
            if keep {
                i += 1;
            } else {
                self.clients.swap_remove(i);
            }
        }
    }

    /// The earliest deadline to wake for (idle clients are dropped after 5 s).
    pub fn next_deadline(&self) -> Option<Instant> {
        self.clients.iter().map(|c| c.deadline).min()
    }

    /// Drops clients whose deadline has passed.
    pub fn on_timer(&mut self, now: Instant) {
        self.clients.retain_mut(|c| {
            if c.deadline > now {
                return true;
            }
            if !c.replied {
                // Best effort: tell a slow client why it is closed.
                let _ = send(
                    c.stream.as_raw_fd(),
                    b"error timed out waiting for a request\n",
                    MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                );
            }
            false
        });
    }

    fn accept(&mut self) {
        for _ in 0..ACCEPTS_PER_CALL {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // WouldBlock: nothing more to accept. EMFILE and the like: try again on the
                // next wake-up rather than spin here.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() {
                continue;
            }
            let refuse = |msg: &[u8]| {
                drain(&stream);
                let _ = send(
                    stream.as_raw_fd(),
                    msg,
                    MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
                );
            };
            match getsockopt(&stream, sockopt::PeerCredentials) {
                Ok(cred) if cred.uid() == 0 || cred.uid() == self.uid => {}
                Ok(cred) => {
                    let _ = writeln!(
                        io::stderr(),
                        "tend: control socket: refused uid {} (pid {}): only root and uid {} may control tend",
                        cred.uid(),
                        cred.pid(),
                        self.uid
                    );
                    refuse(b"error permission denied\n");
                    continue;
                }
                Err(e) => {
                    let _ = writeln!(io::stderr(), "tend: control socket: SO_PEERCRED: {e}");
                    refuse(b"error permission denied\n");
                    continue;
                }
            }
            if self.clients.len() >= MAX_CLIENTS {
                refuse(b"error too many connections, try again\n");
                continue;
            }
            self.clients.push(Client {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                sent: 0,
                replied: false,
                deadline: Instant::now() + self.timeout,
                timeout: self.timeout,
            });
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Remove the socket only if it is still ours (a newer tend may have replaced it);
        // its disappearance is also how `tend ctl shutdown` knows tend is gone.
        if let Ok(m) = std::fs::symlink_metadata(&self.path)
            && (m.dev(), m.ino()) == self.id
        {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Client {
    /// Makes progress on one ready client; false when it should be closed.
    fn service(&mut self, ctl: &mut dyn Control) -> bool {
        if !self.replied {
            match self.read_request() {
                Ok(Some(line)) => self.reply(&line, ctl),
                Ok(None) => return true,
                Err(()) => return false,
            }
        }
        self.flush()
    }

    /// Reads what is available; Some(line) once a request is complete (or an error reply
    /// is due, including EOF before any byte), Err on a read error.
    fn read_request(&mut self) -> Result<Option<Result<String, String>>, ()> {
        let mut buf = [0u8; 1024];
        loop {
            // Never buffer more than one maximal request plus its newline.
            let room = (MAX_REQUEST + 1 - self.input.len()).min(buf.len());
            let n = match self.stream.read(&mut buf[..room]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(_) => return Err(()),
            };
            if n == 0 {
                if self.input.is_empty() {
                    // Half-closed without a byte: still a final answer, as for a bare "\n"
                    // (found by fuzzing). A peer that is fully gone makes the send fail, and
                    // the connection is closed as before.
                    return Ok(Some(Err("empty request".to_owned())));
                }
                // Half-closed after a request without its newline: accept it.
                return Ok(Some(line_of(std::mem::take(&mut self.input))));
            }
            let start = self.input.len();
            self.input.extend_from_slice(&buf[..n]);
            if let Some(p) = memchr::memchr(b'\n', &self.input[start..]) {
                self.input.truncate(start + p);
                return Ok(Some(line_of(std::mem::take(&mut self.input))));
            }
            if self.input.len() > MAX_REQUEST {
                return Ok(Some(Err(format!(
                    "request longer than {MAX_REQUEST} bytes"
                ))));
            }
        }
    }

    fn reply(&mut self, line: &Result<String, String>, ctl: &mut dyn Control) {
        let mut out = String::new();
        let result = match line {
            Err(e) => Err(e.clone()),
            Ok(l) => Request::parse(l).and_then(|r| answer(r, ctl, &mut out)),
        };
        match result {
            Ok(()) => out.push_str("ok\n"),
            Err(e) => {
                // One line, whatever the supervisor's message looks like.
                let e: String = e
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                out.push_str("error ");
                out.push_str(&e);
                out.push('\n');
            }
        }
        self.output = out.into_bytes();
        self.replied = true;
        self.deadline = Instant::now() + self.timeout;
    }

    /// Writes what the socket takes; false once everything is sent (or the peer is gone).
    fn flush(&mut self) -> bool {
        while self.sent < self.output.len() {
            // MSG_NOSIGNAL: a vanished client must not SIGPIPE PID 1.
            match send(
                self.stream.as_raw_fd(),
                &self.output[self.sent..],
                MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
            ) {
                Ok(n) => self.sent += n,
                Err(nix::errno::Errno::EINTR) => {}
                Err(nix::errno::Errno::EAGAIN) => return true,
                Err(_) => return false,
            }
        }
        drain(&self.stream);
        false
    }
}

/// Whether a listener answers at `path`. Non-blocking, so a live tend with a full backlog
/// cannot stall PID 1's start-up (a blocking connect would wait for it).
fn is_live(path: &Path) -> bool {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, UnixAddr, connect, socket};
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    ) else {
        return false;
    };
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) | Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINPROGRESS) => true,
        // ECONNREFUSED: nobody listens, the socket is stale.
        Err(_) => false,
    }
}

/// Reads and discards what the peer already sent (bounded), so closing does not turn into
/// a reset that could make the peer lose our reply's final EOF.
fn drain(stream: &UnixStream) {
    let mut buf = [0u8; 4096];
    for _ in 0..16 {
        match (&*stream).read(&mut buf) {
            Ok(n) if n > 0 => {}
            _ => return,
        }
    }
}

fn line_of(bytes: Vec<u8>) -> Result<String, String> {
    String::from_utf8(bytes).map_err(|_| "request is not UTF-8".to_owned())
}

/// Carries out one request; extra reply lines go to `out`.
fn answer(r: Request, ctl: &mut dyn Control, out: &mut String) -> Result<(), String> {
    match r {
        Request::Status => {
            for s in ctl.status() {
                out.push_str(&status_line(&s));
                out.push('\n');
            }
            Ok(())
        }
        Request::StatusJson => {
            out.push_str(&status_json(&ctl.status()));
            out.push('\n');
            Ok(())
        }
        Request::Metrics => {
            out.push_str(&render_metrics(&ctl.status()));
            Ok(())
        }
        Request::Start(n) => ctl.start(&n),
        Request::Stop(n) => ctl.stop(&n),
        Request::Restart(n) => ctl.restart(&n),
        Request::Kill(s, n) => ctl.kill(s, &n),
        Request::Shutdown => {
            ctl.shutdown();
            Ok(())
        }
        Request::Rotate(n) => ctl.rotate(n.as_deref()),
    }
}

#[cfg(test)]
mod tests;
