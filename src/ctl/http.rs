//! `--metrics-addr HOST:PORT`: a minimal HTTP/1.1 listener inside PID 1's poll loop serving
//! `GET /metrics` (Prometheus text), `/readyz` (200, or 503 naming what is not ready) and
//! `/livez` (200 while the loop runs), for `httpGet` probes in images without a shell.
//!
//! No client can stall PID 1: every socket is non-blocking; a request is read into a
//! fixed 2 KiB buffer and must be complete within 2 s; at most 16 connections are open and a
//! new one beyond that closes the oldest; one response per connection, then close.

use super::metrics::render_metrics;
use super::proto::{Control, not_ready};
use nix::poll::PollFlags;
use nix::sys::socket::{MsgFlags, send};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

/// Largest request head (request line and headers) read.
const MAX_REQUEST: usize = 2048;
/// Connections open at once.
pub const MAX_CONNS: usize = 16;
/// Time a client has to send its request and read the response.
const TIMEOUT: Duration = Duration::from_secs(2);
/// Accepts per `handle` call, so a connection flood cannot starve the rest of the loop.
const ACCEPTS_PER_CALL: usize = 16;

/// The listener and its open connections.
pub struct Http {
    listener: TcpListener,
    conns: Vec<Conn>,
    next_seq: u64,
    timeout: Duration,
}

struct Conn {
    stream: TcpStream,
    /// Fixed buffer: reading never allocates.
    buf: [u8; MAX_REQUEST],
    len: usize,
    out: Vec<u8>,
    sent: usize,
    responded: bool,
    deadline: Instant,
    /// Accept order; the smallest is closed first when all slots are taken.
    seq: u64,
}

/// Parses `HOST:PORT` (an IP address, `localhost`, or nothing for every address).
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    let full = if let Some(port) = s.strip_prefix(':') {
        format!("0.0.0.0:{port}")
    } else if let Some(port) = s.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        s.to_owned()
    };
    full.parse().map_err(|_| {
        format!(
            "'{s}' is not HOST:PORT (expected an IP address and a port, e.g. 0.0.0.0:9090, [::]:9090, :9090 or localhost:9090)"
        )
    })
}

impl Http {
    /// The listener `--metrics-addr` (else `TEND_METRICS_ADDR`, the value of `env`) asks
    /// for, if any; Err names the flag or variable, the value and what was expected.
    pub fn configured(flag: Option<&str>, env: Option<String>) -> Result<Option<Http>, String> {
        let (name, value) = match (flag, env) {
            (Some(f), _) => ("--metrics-addr", f.to_owned()),
            (None, Some(e)) if !e.is_empty() => ("TEND_METRICS_ADDR", e),
            _ => return Ok(None),
        };
        Http::bind(&value)
            .map(Some)
            .map_err(|e| format!("{name}: {e}"))
    }

    /// Binds `addr` (see [`parse_addr`]); Err names the address and the reason.
    pub fn bind(addr: &str) -> Result<Http, String> {
        // Errors quote the address as given: formatting a SocketAddr costs binary size.
        let fail = |e: io::Error| format!("cannot listen on {addr}: {e}");
        let listener = TcpListener::bind(parse_addr(addr)?).map_err(fail)?;
        listener.set_nonblocking(true).map_err(fail)?;
        Ok(Http {
            listener,
            // Reserved once: connections never reallocate the table.
            conns: Vec::with_capacity(MAX_CONNS),
            next_seq: 0,
            timeout: TIMEOUT,
        })
    }

    /// The bound address (port 0 resolved).
    #[cfg(test)]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Shortens the request timeout for tests.
    #[cfg(test)]
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// Appends the fds to poll: the listener, and each connection (POLLOUT while a response
    /// is pending).
    pub fn poll_fds<'a>(&'a self, v: &mut Vec<(BorrowedFd<'a>, PollFlags)>) {
        v.push((self.listener.as_fd(), PollFlags::POLLIN));
        for c in &self.conns {
            v.push((c.stream.as_fd(), wanted(c.responded)));
        }
    }

    /// Makes progress on every ready fd without blocking.
    pub fn handle(&mut self, ready: &[RawFd], ctl: &dyn Control) {
        let mut i = 0;
        while i < self.conns.len() {
            let keep =
                !ready.contains(&self.conns[i].stream.as_raw_fd()) || self.conns[i].service(ctl);
            if keep {
                i += 1;
            } else {
                self.conns.swap_remove(i);
            }
        }
        if ready.contains(&self.listener.as_raw_fd()) {
            self.accept(ctl);
        }
    }

    /// The earliest connection deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.conns.iter().map(|c| c.deadline).min()
    }

    /// Closes connections past their deadline.
    pub fn on_timer(&mut self, now: Instant) {
        self.conns.retain(|c| c.deadline > now);
    }

    fn accept(&mut self, ctl: &dyn Control) {
        for _ in 0..ACCEPTS_PER_CALL {
            let accepted = self.listener.accept().map(|(s, _)| s);
            let stream = match accepted_nonblocking(accepted, |s| s.set_nonblocking(true)) {
                Accepted::Conn(s) => s,
                Accepted::Skip => continue,
                Accepted::Stop => return,
            };
            if self.conns.len() >= MAX_CONNS {
                // A probe sends its request with the connection and is answered below at
                // once, so the oldest connection is the idle or slow one.
                if let Some(i) = (0..self.conns.len()).min_by_key(|&i| self.conns[i].seq) {
                    self.conns.swap_remove(i);
                }
            }
            let mut c = Conn {
                stream,
                buf: [0; MAX_REQUEST],
                len: 0,
                out: Vec::new(),
                sent: 0,
                responded: false,
                deadline: Instant::now() + self.timeout,
                seq: self.next_seq,
            };
            self.next_seq += 1;
            if c.service(ctl) {
                self.conns.push(c);
            }
        }
    }
}

impl Conn {
    /// Reads, answers, writes what it can; false once the connection should close.
    fn service(&mut self, ctl: &dyn Control) -> bool {
        if !self.responded {
            loop {
                if self.len == MAX_REQUEST {
                    self.respond(response(431, "request head larger than 2 KiB\n", false));
                    break;
                }
                match self.stream.read(&mut self.buf[self.len..]) {
                    Ok(0) if self.len == 0 => return false,
                    // Half-closed after a head without its blank line: answer what came.
                    Ok(0) => {
                        let r = answer(&self.buf[..self.len], ctl);
                        self.respond(r);
                        break;
                    }
                    Ok(n) => self.len += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                    Err(_) => return false,
                }
                let head = &self.buf[..self.len];
                if memchr::memmem::find(head, b"\r\n\r\n").is_some()
                    || memchr::memmem::find(head, b"\n\n").is_some()
                {
                    let r = answer(head, ctl);
                    self.respond(r);
                    break;
                }
            }
        }
        if let Some(keep) = send_pending(self.stream.as_raw_fd(), &self.out, &mut self.sent) {
            return keep;
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Write);
        false
    }

    fn respond(&mut self, out: Vec<u8>) {
        self.out = out;
        self.responded = true;
    }
}

/// The response to one request head.
fn answer(head: &[u8], ctl: &dyn Control) -> Vec<u8> {
    let line_end = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let line = head[..line_end]
        .strip_suffix(b"\r")
        .unwrap_or(&head[..line_end]);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return response(400, "malformed request line\n", false);
    };
    if !version.starts_with(b"HTTP/1.") {
        return response(400, "only HTTP/1.x is spoken here\n", false);
    }
    let head_only = match method {
        b"GET" => false,
        b"HEAD" => true,
        _ => return response(405, "only GET and HEAD\n", false),
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or(b"");
    match path {
        b"/livez" => response(200, "ok\n", head_only),
        b"/readyz" => match not_ready(&ctl.status(), &[]) {
            Ok(v) if v.is_empty() => response(200, "ready\n", head_only),
            Ok(v) => response(503, &format!("not ready: {}\n", v.join(", ")), head_only),
            Err(e) => response(503, &format!("{e}\n"), head_only),
        },
        b"/metrics" => response(200, &render_metrics(&ctl.status()), head_only),
        _ => response(
            404,
            "not found (try /metrics, /readyz or /livez)\n",
            head_only,
        ),
    }
}

fn response(code: u16, body: &str, head_only: bool) -> Vec<u8> {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Service Unavailable",
    };
    // Prometheus' text format 0.0.4; plain text for the probes is the same type.
    let mut out = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if code == 405 { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// What a connection waits for: to send its reply once it has one, else to read.
pub(super) fn wanted(replied: bool) -> PollFlags {
    if replied {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    }
}

/// What one `accept` gave.
pub(super) enum Accepted<S> {
    /// A connection, made non-blocking.
    Conn(S),
    /// Interrupted, or the connection could not be made non-blocking: try the next.
    Skip,
    /// WouldBlock (nothing more to accept), or EMFILE and the like: try again on the next
    /// wake-up rather than spin here.
    Stop,
}

/// Sorts an `accept` result and makes the connection non-blocking.
pub(super) fn accepted_nonblocking<S>(
    r: io::Result<S>,
    nonblocking: impl FnOnce(&S) -> io::Result<()>,
) -> Accepted<S> {
    match r {
        Ok(s) if nonblocking(&s).is_ok() => Accepted::Conn(s),
        Ok(_) => Accepted::Skip,
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Accepted::Skip,
        Err(_) => Accepted::Stop,
    }
}

/// Sends `out[*sent..]` without blocking, advancing `sent`. None once all is sent;
/// Some(true) when the socket is full (poll again), Some(false) when the peer is gone.
pub(super) fn send_pending(fd: RawFd, out: &[u8], sent: &mut usize) -> Option<bool> {
    while *sent < out.len() {
        // MSG_NOSIGNAL: a vanished client must not SIGPIPE PID 1.
        match send(
            fd,
            &out[*sent..],
            MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT,
        ) {
            Ok(n) => *sent += n,
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => return Some(true),
            Err(_) => return Some(false),
        }
    }
    None
}

#[cfg(test)]
mod tests;
