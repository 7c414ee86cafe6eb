//! The control socket server, driven by PID 1's single-threaded poll loop: every call is
//! non-blocking, memory is bounded (few clients, short requests, one reply each). It also
//! carries the `--metrics-addr` HTTP listener ([`super::http`]), so the loop polls one thing.

use super::addr::{ABSTRACT_NAME, Addr, bind_abstract, pidns_name};
use super::http::{Accepted, Http, accepted_nonblocking};
use super::metrics::render_metrics;
use super::proto::{Control, MAX_REQUEST, Request, status_json, status_line};
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, getsockopt, send, sockopt};
use std::io::{self, Read, Write as _};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// A client must send its request, and read its reply, within this time. Short, so idle
/// connections cannot hold slots for long (`tend ctl` writes its request at once).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections served at once (bounds memory and fds); a new one beyond this evicts the
/// oldest, so idle or slow clients can never lock others out.
const MAX_CLIENTS: usize = 32;
/// Accepts per `handle` call, so a connection flood cannot starve PID 1's other duties.
const ACCEPTS_PER_CALL: usize = 16;

/// The listening control socket and its connected clients (and the HTTP listener, if any).
pub struct Server {
    unix: Option<Bound>,
    uid: u32,
    clients: Vec<Client>,
    timeout: Duration,
    http: Option<Http>,
}

/// A bound control socket.
struct Bound {
    listener: UnixListener,
    addr: Addr,
    /// (dev, ino) of the socket file we bound, so Drop removes only our own socket.
    id: Option<(u64, u64)>,
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
    /// Accept order: the smallest is evicted first when all slots are taken.
    seq: u64,
}

impl Server {
    /// What `init` serves: `<run_dir>/control.sock`, or `@tend/control` when the run
    /// directory is not writable, plus `http` if given. Says on stderr what it could not
    /// do; None when there is nothing to serve at all.
    pub fn open(run_dir: &Path, http: Option<Http>) -> Option<Server> {
        let unix = match bind_path(run_dir) {
            Ok(b) => Some(b),
            // Falling back would only hide that `tend ctl` reaches the other tend.
            Err((e, false)) => {
                eprintln!("tend: control socket disabled: {e}");
                None
            }
            Err((e, true)) => {
                let (what, b) = match bind_fallback() {
                    Ok(b) => (format!("listening on {} instead", b.addr), Some(b)),
                    Err(e2) => (format!("disabled; {e2}"), None),
                };
                eprintln!("tend: control socket: {e}; {what}");
                b
            }
        };
        if unix.is_none() && http.is_none() {
            return None;
        }
        Some(Server::new(unix, http))
    }

    /// Serves only HTTP (`tend run --metrics-addr`); None without it.
    pub fn http_only(http: Option<Http>) -> Option<Server> {
        http.map(|h| Server::new(None, Some(h)))
    }

    /// Binds `<run_dir>/control.sock` (creating run_dir 0755 if needed, replacing a stale
    /// socket). Err(message) if not possible.
    #[cfg(test)]
    pub fn bind(run_dir: &Path) -> Result<Server, String> {
        let b = bind_path(run_dir).map_err(|(e, _)| e)?;
        Ok(Server::new(Some(b), None))
    }

    /// Listens on an abstract socket name only (tests use their own names).
    #[cfg(test)]
    pub fn bind_abstract(name: &str) -> Result<Server, String> {
        let l = bind_abstract(name).map_err(|e| format!("cannot bind @{name}: {e}"))?;
        Ok(Server::new(Some(bound_abstract(l, name)?), None))
    }

    fn new(unix: Option<Bound>, http: Option<Http>) -> Server {
        Server {
            unix,
            uid: nix::unistd::geteuid().as_raw(),
            clients: Vec::new(),
            timeout: CLIENT_TIMEOUT,
            http,
        }
    }

    /// Where `tend ctl` reaches this server, if it listens on a unix socket.
    #[cfg(test)]
    pub fn addr(&self) -> Option<&Addr> {
        self.unix.as_ref().map(|b| &b.addr)
    }

    /// Shortens the client timeout so tests need not wait 2 s.
    #[cfg(test)]
    pub fn set_client_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// Every fd to poll, with the events wanted (POLLIN, or POLLOUT while a reply is
    /// pending). Build `nix::poll::PollFd`s from these, poll, then pass the fds that had
    /// any event (including POLLHUP/POLLERR) to [`Server::handle`].
    pub fn poll_fds(&self) -> Vec<(BorrowedFd<'_>, PollFlags)> {
        let mut v = Vec::with_capacity(2 + self.clients.len());
        if let Some(b) = &self.unix {
            v.push((b.listener.as_fd(), PollFlags::POLLIN));
        }
        for c in &self.clients {
            v.push((c.stream.as_fd(), super::http::wanted(c.replied)));
        }
        if let Some(h) = &self.http {
            h.poll_fds(&mut v);
        }
        v
    }

    /// Handles whatever is ready (accept, read, reply) without blocking; `ctl` answers
    /// requests. Fds in `ready` that are not the server's are ignored.
    pub fn handle(&mut self, ready: &[RawFd], ctl: &mut dyn Control) {
        if let Some(h) = self.http.as_mut() {
            h.handle(ready, &*ctl);
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
        if self
            .unix
            .as_ref()
            .is_some_and(|b| ready.contains(&b.listener.as_raw_fd()))
        {
            self.accept(ctl);
        }
    }

    /// The earliest deadline to wake for (idle clients are dropped after 2 s).
    pub fn next_deadline(&self) -> Option<Instant> {
        let http = self.http.as_ref().and_then(Http::next_deadline);
        self.clients.iter().map(|c| c.deadline).chain(http).min()
    }

    /// Drops clients whose deadline has passed.
    pub fn on_timer(&mut self, now: Instant) {
        if let Some(h) = self.http.as_mut() {
            h.on_timer(now);
        }
        self.clients.retain_mut(|c| {
            if c.deadline > now {
                return true;
            }
            if !c.replied {
                // Best effort: tell a slow client why it is closed.
                c.tell(b"error timed out waiting for a request\n");
            }
            false
        });
    }

    fn accept(&mut self, ctl: &mut dyn Control) {
        let Some(b) = &self.unix else { return };
        for _ in 0..ACCEPTS_PER_CALL {
            let accepted = b.listener.accept().map(|(s, _)| s);
            let stream = match accepted_nonblocking(accepted, |s| s.set_nonblocking(true)) {
                Accepted::Conn(s) => s,
                Accepted::Skip => continue,
                Accepted::Stop => return,
            };
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
                // The oldest connection goes: a live `tend ctl` sends its request as it
                // connects and is answered right below, so what lingers is idle or slow.
                if let Some(i) = (0..self.clients.len()).min_by_key(|&i| self.clients[i].seq) {
                    let old = self.clients.swap_remove(i);
                    if !old.replied {
                        old.tell(b"error too many connections; closed the oldest\n");
                    }
                }
            }
            let seq = self.clients.iter().map(|c| c.seq + 1).max().unwrap_or(0);
            let mut c = Client {
                stream,
                input: Vec::new(),
                output: Vec::new(),
                sent: 0,
                replied: false,
                deadline: Instant::now() + self.timeout,
                timeout: self.timeout,
                seq,
            };
            // Its request has usually arrived with the connection: answer it now, before
            // later connections of a flood could evict it.
            if c.service(ctl) {
                self.clients.push(c);
            }
        }
    }
}

/// Binds `@tend/control`, or, when another tend in this network namespace has it (another
/// container of the pod), the name of this PID namespace.
fn bind_fallback() -> Result<Bound, String> {
    let taken = |e: &io::Error| e.kind() == io::ErrorKind::AddrInUse;
    let name = match bind_abstract(ABSTRACT_NAME) {
        Ok(l) => return bound_abstract(l, ABSTRACT_NAME),
        Err(e) if taken(&e) => pidns_name()
            .ok_or_else(|| format!("@{ABSTRACT_NAME} is taken and /proc is not mounted"))?,
        Err(e) => return Err(format!("@{ABSTRACT_NAME}: {e}")),
    };
    let l = bind_abstract(&name).map_err(|e| {
        let hint = if taken(&e) {
            " (another tend in this PID namespace?)"
        } else {
            ""
        };
        format!("@{ABSTRACT_NAME} is taken; @{name}: {e}{hint}")
    })?;
    bound_abstract(l, &name)
}

/// Binds `<run_dir>/control.sock`; Err((message, whether falling back makes sense)).
fn bind_path(run_dir: &Path) -> Result<Bound, (String, bool)> {
    let path = run_dir.join("control.sock");
    let ctx = |what: &str, e: io::Error| (format!("{what} {}: {e}", path.display()), true);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(run_dir)
        .map_err(|e| (format!("cannot create {}: {e}", run_dir.display()), true))?;
    match std::fs::symlink_metadata(&path) {
        Ok(m) if m.file_type().is_socket() => {
            // A socket that still answers belongs to a live tend: never steal it.
            if is_live(&path) {
                return Err((
                    format!("another tend is already listening on {}", path.display()),
                    false,
                ));
            }
        }
        Ok(_) => {
            return Err((
                format!("{} exists and is not a socket", path.display()),
                false,
            ));
        }
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
    Ok(Bound {
        listener,
        addr: Addr::Path(path),
        id: Some((m.dev(), m.ino())),
    })
}

fn bound_abstract(listener: UnixListener, name: &str) -> Result<Bound, String> {
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot set up @{name}: {e}"))?;
    Ok(Bound {
        listener,
        addr: Addr::Abstract(name.to_owned()),
        id: None,
    })
}

impl Drop for Bound {
    fn drop(&mut self) {
        // Remove the socket only if it is still ours (a newer tend may have replaced it);
        // its disappearance is also how `tend ctl shutdown` knows tend is gone. An abstract
        // name goes away with the listener by itself.
        if let (Addr::Path(path), Some(id)) = (&self.addr, self.id)
            && let Ok(m) = std::fs::symlink_metadata(path)
            && (m.dev(), m.ino()) == id
        {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Client {
    /// Best effort: one line to a client that is being closed.
    fn tell(&self, msg: &[u8]) {
        let _ = send(
            self.stream.as_raw_fd(),
            msg,
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        );
    }

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
        if let Some(keep) =
            super::http::send_pending(self.stream.as_raw_fd(), &self.output, &mut self.sent)
        {
            return keep;
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
