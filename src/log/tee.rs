//! `--tee`: a copy of the records on tend's own stdout/stderr, for `docker logs` and
//! `kubectl logs`. The copy never stalls capture: what the output cannot take now waits in
//! a small queue, and when that is full whole records are dropped from the copy and counted
//! (the log files are never affected).
//!
//! Why not make fd 1 `O_NONBLOCK`: the flag lives on the open file description, which tend
//! shares with whoever else writes that pipe (a `--no-capture` child, a shell, the runtime's
//! other processes); they would start getting `EAGAIN`. Instead a pipe or FIFO is reopened
//! through `/proc/self/fd/N`, which makes a new description of the same pipe whose
//! non-blocking flag is ours alone. Anything else (a terminal, a socket, no `/proc`) gets
//! `poll(POLLOUT, 0)` before each write of at most `PIPE_BUF` bytes, which cannot block once
//! poll says there is room. Regular files and `/dev/null` never block.

use super::Stream;
use super::frame::Record;
use super::options::TeeFormat;
use super::stats::SinkStats;
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::{SFlag, fstat};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Bytes of copies waiting for one output before records are dropped.
const QUEUE_CAP: usize = 256 << 10;
/// A plain/prefixed line longer than this is copied in pieces, each ended by `\n`.
const LINE_CAP: usize = 64 << 10;
/// Largest write that a pipe takes whole or not at all (POSIX `PIPE_BUF` on Linux).
const PIPE_BUF: usize = 4096;
/// Least time between two notes of dropped copies: a reader that keeps lagging must not
/// turn tend's stderr into a stream of notes.
const NOTE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// How writes to one output avoid blocking.
enum Mode {
    /// Our own `O_NONBLOCK` description of the pipe.
    Own(OwnedFd),
    /// A regular file or a null-like device: writes do not block.
    Direct(OwnedFd),
    /// Check with `poll` first, then write at most `PIPE_BUF` bytes.
    Poll(OwnedFd),
    /// Broken (the reader is gone, an error): the copy is off.
    Off,
}

/// One of tend's outputs and the copies waiting for it.
struct Out {
    mode: Mode,
    queue: Vec<u8>,
}

impl Out {
    fn open(fd: BorrowedFd<'_>, n: i32) -> Out {
        let mode = match fstat(fd) {
            Err(_) => Mode::Off,
            Ok(st) => {
                let kind = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT;
                let dup = || fd.try_clone_to_owned().ok();
                if kind == SFlag::S_IFIFO {
                    let own = nix::fcntl::open(
                        format!("/proc/self/fd/{n}").as_str(),
                        nix::fcntl::OFlag::O_WRONLY
                            | nix::fcntl::OFlag::O_NONBLOCK
                            | nix::fcntl::OFlag::O_CLOEXEC,
                        nix::sys::stat::Mode::empty(),
                    );
                    match own {
                        Ok(fd) => Mode::Own(fd),
                        Err(_) => dup().map_or(Mode::Off, Mode::Poll),
                    }
                } else if kind == SFlag::S_IFREG || (kind == SFlag::S_IFCHR && !is_tty(fd)) {
                    dup().map_or(Mode::Off, Mode::Direct)
                } else {
                    dup().map_or(Mode::Off, Mode::Poll)
                }
            }
        };
        Out {
            mode,
            queue: Vec::new(),
        }
    }

    /// Queues one whole record; false if it was dropped (queue full or output off).
    fn push(&mut self, rec: &[u8]) -> bool {
        if matches!(self.mode, Mode::Off) || self.queue.len() + rec.len() > QUEUE_CAP {
            return false;
        }
        self.queue.extend_from_slice(rec);
        true
    }

    /// Writes what the output takes now, without blocking.
    fn flush(&mut self) -> u64 {
        while !self.queue.is_empty() {
            let r = match &self.mode {
                Mode::Off => break,
                Mode::Direct(fd) => nix::unistd::write(fd, &self.queue),
                Mode::Own(fd) | Mode::Poll(fd) => {
                    // Checked first even on our non-blocking pipe: writing to a pipe whose
                    // reader is gone raises SIGPIPE, which tend (blocking every signal for
                    // its signalfd) would take in and, under `run`, forward to the command.
                    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
                    let bad = PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL;
                    let ready = match poll(&mut p, PollTimeout::ZERO) {
                        Ok(1) => p[0].revents().unwrap_or(PollFlags::POLLERR),
                        _ => PollFlags::empty(),
                    };
                    if ready.intersects(bad) {
                        Err(Errno::EPIPE)
                    } else if !ready.contains(PollFlags::POLLOUT) {
                        break;
                    } else {
                        let n = match self.mode {
                            Mode::Own(_) => self.queue.len(),
                            _ => self.queue.len().min(PIPE_BUF),
                        };
                        nix::unistd::write(fd, &self.queue[..n])
                    }
                }
            };
            match r {
                Ok(n) => {
                    self.queue.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => break,
                Err(_) => {
                    // The reader is gone: stop copying rather than fail every write.
                    self.mode = Mode::Off;
                    let lost = self.queue.len() as u64;
                    self.queue = Vec::new();
                    return lost;
                }
            }
        }
        if self.queue.is_empty() && self.queue.capacity() > QUEUE_CAP {
            self.queue = Vec::new();
        }
        0
    }
}

fn is_tty(fd: BorrowedFd<'_>) -> bool {
    nix::unistd::isatty(fd).unwrap_or(false)
}

/// The `--tee` copy of one log directory's records.
pub struct Tee {
    format: TeeFormat,
    /// `NAME | `.
    prefix: Vec<u8>,
    /// tend's stdout and stderr.
    outs: [Out; 2],
    /// plain/prefixed: the line being assembled from `P` pieces, per stream.
    line: [Vec<u8>; 2],
    /// Counts the bytes of copies dropped (`tee_dropped`).
    stats: Arc<SinkStats>,
    /// Dropped since the last note on stderr.
    unreported: u64,
    /// When the last note of dropped copies was written.
    last_note: Option<std::time::Instant>,
}

impl Tee {
    /// A copy in `format` to tend's stdout and stderr, naming the service `name`.
    pub fn new(format: TeeFormat, name: &str, stats: Arc<SinkStats>) -> Tee {
        Tee {
            format,
            prefix: format!("{name} | ").into_bytes(),
            outs: [
                Out::open(std::io::stdout().as_fd(), 1),
                Out::open(std::io::stderr().as_fd(), 2),
            ],
            line: [Vec::new(), Vec::new()],
            stats,
            unreported: 0,
            last_note: None,
        }
    }

    fn index(stream: Stream) -> usize {
        match stream {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }

    fn emit(&mut self, i: usize, rec: &[u8]) {
        if !self.outs[i].push(rec) {
            self.stats.tee_dropped.fetch_add(rec.len() as u64, Relaxed);
            // An output that is off was reported once when it broke: count, say nothing.
            if !matches!(self.outs[i].mode, Mode::Off) {
                self.unreported += rec.len() as u64;
            }
        }
    }

    /// One record as written to the file (`rendered`) and as read (`rec`).
    pub fn record(&mut self, stream: Stream, rec: &Record<'_>, rendered: &[u8]) {
        let i = Tee::index(stream);
        if self.format == TeeFormat::Same {
            self.emit(i, rendered);
            return;
        }
        let mut line = std::mem::take(&mut self.line[i]);
        if line.is_empty() && self.format == TeeFormat::Prefixed {
            line.extend_from_slice(&self.prefix);
        }
        line.extend_from_slice(rec.line);
        if !rec.partial || line.len() >= LINE_CAP {
            line.push(b'\n');
            self.emit(i, &line);
            line.clear();
        }
        self.line[i] = line;
    }

    /// Whole lines (`plain` format's fast path), each ending with `\n`.
    pub fn lines(&mut self, stream: Stream, lines: &[u8]) {
        let i = Tee::index(stream);
        if self.format != TeeFormat::Prefixed {
            self.emit(i, lines);
            return;
        }
        let mut buf = Vec::with_capacity(lines.len() + 64);
        for l in lines.split_inclusive(|&b| b == b'\n') {
            buf.extend_from_slice(&self.prefix);
            buf.extend_from_slice(l);
        }
        self.emit(i, &buf);
    }

    /// Writes what the outputs take now; never blocks.
    pub fn flush(&mut self) {
        for i in 0..2 {
            let was_on = !matches!(self.outs[i].mode, Mode::Off);
            let lost = self.outs[i].flush();
            self.stats.tee_dropped.fetch_add(lost, Relaxed);
            if was_on && matches!(self.outs[i].mode, Mode::Off) {
                // Said once: from now on this output's copies are dropped without a note.
                let note = format!(
                    "tend: {}--tee: {} stopped taking copies (dropped {} bytes; no more copies there; the log files are complete)\n",
                    String::from_utf8_lossy(&self.prefix),
                    ["stdout", "stderr"][i],
                    lost + std::mem::take(&mut self.unreported),
                );
                self.outs[1].push(note.as_bytes());
            }
        }
        let due = self.last_note.is_none_or(|t| t.elapsed() >= NOTE_EVERY);
        if self.unreported > 0 && due && self.outs[1].queue.is_empty() {
            // Said through the copy's own non-blocking stderr: a blocked stderr must not
            // stall capture either.
            let note = format!(
                "tend: {}--tee dropped {} bytes of copies (the output was not read fast enough; the log files are complete)\n",
                String::from_utf8_lossy(&self.prefix),
                self.unreported
            );
            if self.outs[1].push(note.as_bytes()) {
                self.unreported = 0;
                self.last_note = Some(std::time::Instant::now());
                self.outs[1].flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_full_pipe_queues_then_drops_whole_records_and_never_blocks() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut out = Out::open(w.as_fd(), w.as_raw_fd());
        assert!(
            matches!(out.mode, Mode::Own(_)),
            "a pipe gets its own description"
        );
        // The shared description stays blocking: only ours is O_NONBLOCK.
        let fl = nix::fcntl::fcntl(&w, nix::fcntl::FcntlArg::F_GETFL).unwrap();
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        let rec = [b'x'; 1000];
        let mut kept = 0;
        for _ in 0..1000 {
            if out.push(&rec) {
                kept += 1;
            }
            out.flush();
        }
        // 64 KiB in the pipe plus the 256 KiB queue, in whole records; the rest dropped.
        assert!((300..=330).contains(&kept), "{kept} records kept");
        assert!(out.queue.len() <= QUEUE_CAP);
        // Once the reader drains, the queue moves on.
        let mut buf = vec![0u8; 1 << 20];
        let n = nix::unistd::read(&r, &mut buf).unwrap();
        assert!(n >= 60_000);
        let before = out.queue.len();
        out.flush();
        assert!(out.queue.len() < before);
        // The reader goes away: the copy turns off, no SIGPIPE is raised.
        drop(r);
        assert!(out.flush() > 0 || out.queue.is_empty());
        assert!(matches!(out.mode, Mode::Off));
    }
}
