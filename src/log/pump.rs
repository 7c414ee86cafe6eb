//! The log thread: reads every capture pipe and drives frame → format → sink.
//!
//! One thread, one epoll set (edge-triggered) over every pipe's read end plus an eventfd
//! for messages from [`Pump::add`] and [`Pump::finish`]. Each round reads at most one
//! buffer per ready pipe (fair between services), frames it, formats every record into
//! the sink's batch and writes the batch with one `write`.
//!
//! Split lines: while one stream of a sink is between a `P` piece and its `F`, the other
//! streams of that sink are not read, so the pieces stay back to back in the file. If the
//! splitting stream then sends nothing for [`SPLIT_WAIT`] while another stream of the sink
//! has data waiting, its held bytes are written as an `F` record (json: without `\n`) and
//! the rest of that line becomes a new record later: an app that writes half a long line
//! to stdout and then blocks on stderr is never deadlocked by this rule.
//!
//! Instances: a service's pipes outlive its processes. When one is reaped,
//! [`Pump::instance_ended`] marks where its bytes end in each pipe; reads stop at the mark
//! and the line it left unterminated is closed there, before the next instance's bytes.

use super::Stream;
use super::batch::Batch;
use super::format::Stamp;
use super::frame::Framer;
use super::sink::{OUT_CAP, OUT_SLACK, Sink};
use super::stats::set_engine_give_up;
use super::stats::{GiveUp, SinkStats};
use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// How long a half-written split line may hold back the other stream of its sink.
pub const SPLIT_WAIT: Duration = Duration::from_millis(500);
/// One read buffer for every pipe, reused. As large as the pipe (`sys::enlarge_pipe`) so
/// one read drains it and the writer wakes once per pipe-full, not per chunk.
const READ_BUF: usize = 1 << 20;
/// Instance ends remembered per stream while the log thread has not read up to them.
const MAX_MARKS: usize = 64;
/// epoll token of the control eventfd.
const WAKE: u64 = u64::MAX;

/// Opens a sink; run on the log thread, so the PID-1 thread never does log-file I/O.
pub type Opener = Box<dyn FnOnce() -> Result<Sink, String> + Send>;

/// The answer to [`Pump::open`]: the sink's counters, or why it could not be opened.
pub type Opened = mpsc::Receiver<Result<Arc<SinkStats>, String>>;

enum Msg {
    Add(Box<Sink>, Vec<(Stream, OwnedFd)>),
    Open(
        Opener,
        Vec<(Stream, OwnedFd)>,
        mpsc::Sender<Result<Arc<SinkStats>, String>>,
    ),
    /// A process ended; its streams' `end_at` marks are set.
    Ended,
    Finish(Option<Instant>),
    /// Rotate the sink of this service (the directory's name), or every sink.
    Rotate(Option<String>),
}

/// Handle to the log thread.
pub struct Pump {
    tx: mpsc::Sender<Msg>,
    wake: Arc<EventFd>,
    /// Written by the log thread after each answer to `open` and when it ends, so the
    /// PID-1 thread waiting for either wakes at once.
    note: Arc<EventFd>,
    idle: Arc<EventFd>,
    give_up: Arc<GiveUp>,
    /// Set by the log thread when its work is over, just before its last note.
    done: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl Pump {
    /// Starts the log thread.
    pub fn start() -> std::io::Result<Pump> {
        let flags = EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK;
        let wake = Arc::new(EventFd::from_flags(flags)?);
        let idle = Arc::new(EventFd::from_flags(flags)?);
        let note = Arc::new(EventFd::from_flags(flags)?);
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(wake.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        let (tx, rx) = mpsc::channel();
        let give_up = Arc::new(GiveUp::new());
        let mut engine = Engine {
            give_up: give_up.clone(),
            added: false,
            epoll,
            rx,
            wake: wake.clone(),
            idle: idle.clone(),
            note: note.clone(),
            sinks: Vec::new(),
            buf: vec![0; READ_BUF],
            out: Batch::with_capacity(OUT_CAP + OUT_SLACK),
            stamp: Stamp::default(),
            finishing: None,
            polled_at: Instant::now(),
        };
        let done = Arc::new(AtomicBool::new(false));
        let ended = done.clone();
        let handle = std::thread::Builder::new()
            .name("tend-log".into())
            .spawn(move || {
                set_engine_give_up(engine.give_up.clone());
                engine.run();
                // Said only once the engine is gone: `is_finished` turns true a moment after
                // this note, so a waiter that looked in between slept a whole second.
                let note = engine.note.clone();
                drop(engine);
                ended.store(true, Ordering::Release);
                let _ = note.write(1);
            })?;
        Ok(Pump {
            tx,
            wake,
            note,
            idle,
            give_up,
            done,
            handle,
        })
    }

    /// Hands a sink and the read ends of its pipes to the log thread.
    pub fn add(&self, sink: Sink, streams: Vec<(Stream, OwnedFd)>) -> Arc<SinkStats> {
        let stats = sink.stats();
        self.send(Msg::Add(Box::new(sink), streams));
        stats
    }

    /// Has the log thread open a sink (it may write to repair `current`) and then read these
    /// pipes into it; the answer comes back on the returned channel.
    pub fn open(&self, open: Opener, streams: Vec<(Stream, OwnedFd)>) -> Opened {
        let (tx, rx) = mpsc::channel();
        self.send(Msg::Open(open, streams, tx));
        rx
    }

    /// Waits for the answer of [`Pump::open`] while `stop(d, fd)` waits up to `d` for a stop
    /// signal or for `fd` to become readable; `Ok(None)` when a stop signal came first.
    pub fn await_open(
        &self,
        opened: &Opened,
        stop: &mut dyn FnMut(Duration, BorrowedFd<'_>) -> bool,
    ) -> Result<Option<Arc<SinkStats>>, String> {
        loop {
            // Cleared before looking, so an answer sent after the look still wakes the wait.
            let _ = self.note.read();
            match opened.try_recv() {
                Ok(r) => return r.map(Some),
                Err(mpsc::TryRecvError::Disconnected) => {
                    return Err("the log thread stopped".into());
                }
                Err(mpsc::TryRecvError::Empty) => {
                    if stop(Duration::from_secs(1), self.note.as_fd()) {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Ends the log thread when tend exits. Pipes are drained to EOF (writers that linger
    /// get until `eof_deadline`). On a full disk under `--on-full block` it keeps waiting for
    /// space until a stop signal comes (`stopped`: one already has; `stop(d)` waits up to `d`
    /// for one), then gives up: the bytes lost are counted in `dropped` and said on stderr.
    pub fn finish_at_exit(
        self,
        eof_deadline: Instant,
        stopped: bool,
        stop: &mut dyn FnMut(Duration, BorrowedFd<'_>) -> bool,
    ) {
        if stopped {
            self.give_up.set(eof_deadline);
        }
        self.send(Msg::Finish(Some(eof_deadline)));
        let mut given_up = stopped;
        loop {
            // Cleared before looking, so the thread's last note still wakes the wait below.
            let _ = self.note.read();
            if self.done.load(Ordering::Acquire) || self.handle.is_finished() {
                break;
            }
            if stop(Duration::from_secs(1), self.note.as_fd()) && !given_up {
                given_up = true;
                self.give_up.set(Instant::now());
            }
        }
        if self.handle.join().is_err() {
            eprintln!("tend: the log thread panicked");
        }
    }

    /// A service's process has exited (called when it is reaped, before its next instance
    /// starts): the line it left unterminated is written as a complete record before any
    /// byte written after this call. `out` and `err` are the write ends of its pipes; the
    /// bytes still in them (`FIONREAD`) are the last of this instance. Never blocks on
    /// I/O: the lock is held by the log thread only around a non-blocking pipe read.
    pub fn instance_ended(&self, stats: &SinkStats, out: BorrowedFd<'_>, err: BorrowedFd<'_>) {
        for (stream, fd) in [(Stream::Stdout, out), (Stream::Stderr, err)] {
            let mut m = stats.mark(stream);
            let mut queued: libc::c_int = 0;
            // SAFETY: FIONREAD on a pipe fd we hold writes one int through the pointer.
            let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut queued) };
            if r == 0 {
                if m.end_at.len() >= MAX_MARKS {
                    m.end_at.pop_front(); // bounded memory; only that boundary is lost
                }
                let end = m.read + queued.max(0) as u64;
                m.end_at.push_back(end);
            }
        }
        self.send(Msg::Ended);
    }

    /// Readable (counter > 0) whenever every pipe handed over so far has reached EOF.
    pub fn idle_fd(&self) -> BorrowedFd<'_> {
        self.idle.as_fd()
    }

    /// Asks the log thread to rotate the log of service `name` (every log when `None`) at
    /// its next record boundary; an empty `current` is left as it is.
    pub fn rotate(&self, name: Option<&str>) {
        self.send(Msg::Rotate(name.map(str::to_owned)));
    }

    /// Drains every pipe to EOF (or until `deadline`), flushes and fsyncs, joins the thread.
    pub fn finish(self, deadline: Option<Instant>) {
        if let Some(d) = deadline {
            self.give_up.set(d);
        }
        self.send(Msg::Finish(deadline));
        if self.handle.join().is_err() {
            eprintln!("tend: the log thread panicked");
        }
    }

    fn send(&self, m: Msg) {
        // A send fails only if the thread is gone, which finish() reports when joining.
        let _ = self.tx.send(m);
        let _ = self.wake.write(1);
    }
}

/// One pipe being read.
struct Source {
    stream: Stream,
    fd: OwnedFd,
    framer: Framer,
    /// Data may be waiting (edge-triggered: set by epoll, cleared at `EAGAIN`).
    ready: bool,
    /// Not pollable (a regular file on stdin), or the writer hung up: read until EOF.
    always_ready: bool,
    last_data: Instant,
}

struct Entry {
    sink: Sink,
    stats: Arc<SinkStats>,
    sources: Vec<Option<Source>>,
}

impl Entry {
    /// The source, if any, whose split line holds the others back.
    fn splitting(&self) -> Option<usize> {
        self.sources
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.framer.in_split()))
    }

    fn live(&self) -> bool {
        self.sources.iter().any(Option::is_some)
    }
}

struct Engine {
    epoll: Epoll,
    rx: mpsc::Receiver<Msg>,
    wake: Arc<EventFd>,
    idle: Arc<EventFd>,
    note: Arc<EventFd>,
    sinks: Vec<Option<Entry>>,
    buf: Vec<u8>,
    /// The formatted records of one read, lent to its sink and flushed before the next.
    out: Batch,
    stamp: Stamp,
    finishing: Option<Option<Instant>>,
    give_up: Arc<GiveUp>,
    /// A sink was ever added: only then does "no source left" mean idle.
    added: bool,
    /// When `epoll_wait` last returned with every pending event: a source not `ready`
    /// is known to have had no new data up to this instant, and no later. The split wait
    /// is measured to here, not to "now": after a long write (disk full, slow fsync) the
    /// pipes' new edges are still unread, and a line the app kept writing must not be cut.
    polled_at: Instant,
}

impl Engine {
    fn run(&mut self) {
        let mut events = vec![EpollEvent::empty(); 64];
        loop {
            let now = Instant::now();
            if let Some(deadline) = self.finishing {
                let live = self.sinks.iter().flatten().any(Entry::live);
                if !live || deadline.is_some_and(|d| now >= d) {
                    break;
                }
            }
            let busy = self.any_readable();
            let timeout = if busy {
                EpollTimeout::ZERO
            } else {
                self.timeout(now)
            };
            // Every event up to this instant is returned (unless the buffer fills).
            let asked = Instant::now();
            let n = match self.epoll.wait(&mut events, timeout) {
                Ok(n) => {
                    if n < events.len() {
                        self.polled_at = asked;
                    }
                    n
                }
                Err(Errno::EINTR) => 0,
                Err(e) => {
                    eprintln!("tend: log thread: epoll_wait: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                    0
                }
            };
            for ev in &events[..n] {
                let token = ev.data();
                if token == WAKE {
                    let _ = self.wake.read();
                    self.messages();
                    continue;
                }
                let (si, fi) = ((token >> 32) as usize, (token & 0xffff_ffff) as usize);
                if let Some(Some(src)) = self
                    .sinks
                    .get_mut(si)
                    .and_then(|e| e.as_mut())
                    .and_then(|e| e.sources.get_mut(fi))
                {
                    src.ready = true;
                    // After a hang-up no further edge comes: read on until EOF.
                    if ev
                        .events()
                        .intersects(EpollFlags::EPOLLHUP | EpollFlags::EPOLLRDHUP)
                    {
                        src.always_ready = true;
                    }
                }
            }
            self.round();
            self.timers();
        }
        self.shutdown();
    }

    fn messages(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            match m {
                Msg::Add(sink, streams) => self.add(*sink, streams),
                Msg::Open(open, streams, reply) => match open() {
                    Ok(sink) => {
                        let stats = sink.stats();
                        self.add(sink, streams);
                        let _ = reply.send(Ok(stats));
                        let _ = self.note.write(1);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        let _ = self.note.write(1);
                    }
                },
                Msg::Finish(deadline) => self.finishing = Some(deadline),
                Msg::Rotate(name) => {
                    for e in self.sinks.iter_mut().flatten() {
                        let dir = e.sink.path().file_name().and_then(|n| n.to_str());
                        if name.is_none() || dir == name.as_deref() {
                            // Between rounds the shared batch is empty: nothing to flush.
                            e.sink.rotate_now();
                        }
                    }
                }
                Msg::Ended => self.ended(),
            }
        }
    }

    fn add(&mut self, mut sink: Sink, streams: Vec<(Stream, OwnedFd)>) {
        let si = match self.sinks.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.sinks.push(None);
                self.sinks.len() - 1
            }
        };
        sink.set_give_up(self.give_up.clone());
        self.added = true;
        let mut sources = Vec::new();
        for (fi, (stream, fd)) in streams.into_iter().enumerate() {
            set_nonblocking(&fd);
            let token = ((si as u64) << 32) | fi as u64;
            let ev = EpollEvent::new(
                EpollFlags::EPOLLIN | EpollFlags::EPOLLET | EpollFlags::EPOLLRDHUP,
                token,
            );
            let always_ready = match self.epoll.add(fd.as_fd(), ev) {
                Ok(()) => false,
                // Regular files cannot be polled; reads on them never block.
                Err(Errno::EPERM) => true,
                Err(e) => {
                    eprintln!(
                        "tend: {}: cannot watch {}: {e}",
                        sink.path().display(),
                        stream.as_str()
                    );
                    continue;
                }
            };
            sources.push(Some(Source {
                stream,
                fd,
                framer: sink.framer(),
                ready: true,
                always_ready,
                last_data: Instant::now(),
            }));
        }
        let stats = sink.stats();
        self.sinks[si] = Some(Entry {
            sink,
            stats,
            sources,
        });
        self.check_idle();
    }

    fn any_readable(&self) -> bool {
        self.sinks.iter().flatten().any(|e| {
            let split = e.splitting();
            e.sources
                .iter()
                .enumerate()
                .any(|(i, s)| s.as_ref().is_some_and(|s| s.ready) && split.is_none_or(|x| x == i))
        })
    }

    /// Until the next rotation by age, split-wait expiry or finish deadline.
    fn timeout(&self, now: Instant) -> EpollTimeout {
        let mut next: Option<Instant> = self.finishing.flatten();
        let mut earliest = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        for e in self.sinks.iter().flatten() {
            if let Some(d) = e.sink.deadline() {
                earliest(d);
            }
            if let Some(i) = e.splitting() {
                let others_wait = e
                    .sources
                    .iter()
                    .enumerate()
                    .any(|(j, s)| j != i && s.as_ref().is_some_and(|s| s.ready));
                if let (true, Some(s)) = (others_wait, &e.sources[i]) {
                    earliest(s.last_data + SPLIT_WAIT);
                }
            }
        }
        match next {
            None => EpollTimeout::NONE,
            Some(t) => {
                let ms = t.saturating_duration_since(now).as_millis() + 1;
                EpollTimeout::try_from(ms.min(60_000) as u64).unwrap_or(EpollTimeout::MAX)
            }
        }
    }

    /// Reads at most one buffer from every eligible ready source.
    fn round(&mut self) {
        for si in 0..self.sinks.len() {
            let Some(entry) = self.sinks[si].as_mut() else {
                continue;
            };
            for fi in 0..entry.sources.len() {
                let split = entry.splitting();
                if split.is_some_and(|x| x != fi) {
                    continue;
                }
                let Some(src) = entry.sources[fi].as_mut() else {
                    continue;
                };
                if !src.ready {
                    continue;
                }
                // Reads stop at the end of an exited instance's bytes (see `ended`).
                let mut mark = entry.stats.mark(src.stream);
                let cap = mark.end_at.front().map_or(self.buf.len(), |&end| {
                    (end.saturating_sub(mark.read) as usize).min(self.buf.len())
                });
                let res = if cap == 0 {
                    Ok(0)
                } else {
                    nix::unistd::read(&src.fd, &mut self.buf[..cap])
                };
                let instance_done = match res {
                    Ok(n) if cap > 0 => {
                        mark.read += n as u64;
                        mark.end_at.front().is_some_and(|&end| mark.read >= end)
                    }
                    Ok(_) => true,
                    Err(_) => false,
                };
                if instance_done {
                    mark.end_at.pop_front();
                }
                drop(mark);
                if cap == 0 {
                    // The exited instance's bytes are all read: close its line.
                    let (stream, sink) = (src.stream, &mut entry.sink);
                    let (stamp, out) = (&mut self.stamp, &mut self.out);
                    stamp.set(SystemTime::now());
                    src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
                    sink.flush(out);
                    continue;
                }
                match res {
                    Ok(0) => {
                        let stream = src.stream;
                        let sink = &mut entry.sink;
                        let (stamp, out) = (&mut self.stamp, &mut self.out);
                        stamp.set(SystemTime::now());
                        src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
                        sink.flush(out);
                        let _ = self.epoll.delete(src.fd.as_fd());
                        entry.sources[fi] = None;
                    }
                    Ok(n) => {
                        src.last_data = Instant::now();
                        if !src.always_ready && n < cap {
                            // A short read drained the pipe; epoll reports the next write.
                            src.ready = false;
                        }
                        let stream = src.stream;
                        let sink = &mut entry.sink;
                        let (stamp, out) = (&mut self.stamp, &mut self.out);
                        stamp.set(SystemTime::now());
                        sink.take(&mut src.framer, out, stamp, stream, &self.buf[..n]);
                        if instance_done {
                            src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
                            sink.flush(out);
                        }
                    }
                    Err(Errno::EAGAIN) => src.ready = false,
                    Err(Errno::EINTR) => {}
                    Err(e) => {
                        eprintln!(
                            "tend: {}: read {}: {e}",
                            entry.sink.path().display(),
                            src.stream.as_str()
                        );
                        let stream = src.stream;
                        let (sink, out) = (&mut entry.sink, &mut self.out);
                        src.framer
                            .finish(&mut |r| sink.push(out, &self.stamp, stream, r));
                        sink.flush(out);
                        let _ = self.epoll.delete(src.fd.as_fd());
                        entry.sources[fi] = None;
                    }
                }
            }
        }
        self.check_idle();
    }

    /// A process ended: every stream whose exited instance's bytes are all read has its
    /// pending line closed now; the others are closed when the read reaches the mark.
    fn ended(&mut self) {
        self.stamp.set(SystemTime::now());
        for e in self.sinks.iter_mut().flatten() {
            for src in e.sources.iter_mut().flatten() {
                let mut mark = e.stats.mark(src.stream);
                let mut reached = false;
                while mark.end_at.front().is_some_and(|&end| mark.read >= end) {
                    mark.end_at.pop_front();
                    reached = true;
                }
                if reached {
                    drop(mark);
                    let (stream, sink) = (src.stream, &mut e.sink);
                    let (stamp, out) = (&self.stamp, &mut self.out);
                    src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
                    sink.flush(out);
                } else if !mark.end_at.is_empty() {
                    src.ready = true;
                }
            }
        }
    }

    /// Age rotations and the split-wait rule.
    fn timers(&mut self) {
        let now = Instant::now();
        for e in self.sinks.iter_mut().flatten() {
            e.sink.tick(now);
            let Some(i) = e.splitting() else { continue };
            let others_wait = e
                .sources
                .iter()
                .enumerate()
                .any(|(j, s)| j != i && s.as_ref().is_some_and(|s| s.ready));
            let sink = &mut e.sink;
            if let Some(src) = e.sources[i].as_mut()
                && others_wait
                && !src.ready
                && self.polled_at >= src.last_data + SPLIT_WAIT
            {
                let stream = src.stream;
                self.stamp.set(SystemTime::now());
                let (stamp, out) = (&self.stamp, &mut self.out);
                src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
                sink.flush(out);
            }
        }
    }

    /// Signals `idle_fd` when no source is left open.
    fn check_idle(&mut self) {
        if self.added && !self.sinks.iter().flatten().any(Entry::live) {
            let _ = self.idle.write(1);
        }
    }

    /// Writes every held partial line, flushes, fsyncs, closes every sink.
    fn shutdown(&mut self) {
        self.stamp.set(SystemTime::now());
        let deadline = self.finishing.flatten();
        for slot in self.sinks.iter_mut() {
            let Some(mut e) = slot.take() else { continue };
            for src in e.sources.iter_mut().flatten() {
                let stream = src.stream;
                let sink = &mut e.sink;
                let (stamp, out) = (&self.stamp, &mut self.out);
                src.framer.finish(&mut |r| sink.push(out, stamp, stream, r));
            }
            let stats = e.sink.stats();
            let path = e.sink.path().to_path_buf();
            e.sink.close(&mut self.out, deadline);
            // After giving up on a full disk, what is lost must not go unsaid.
            let lost = stats.dropped.load(Ordering::SeqCst);
            if lost > 0 && self.give_up.passed() {
                eprintln!(
                    "tend: {}: {lost} bytes of output lost (disk full; gave up at shutdown)",
                    path.display()
                );
            }
        }
    }
}

fn set_nonblocking(fd: &OwnedFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    if let Ok(fl) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(fl) | OFlag::O_NONBLOCK),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogOptions;
    use crate::log::options::Format;
    use std::io::Write;

    struct Dir(std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setup(tag: &str, format: Format) -> (Dir, Pump, std::fs::File, std::fs::File) {
        let (d, pump, o, e, _) = setup_stats(tag, format);
        (d, pump, o, e)
    }

    fn setup_stats(
        tag: &str,
        format: Format,
    ) -> (Dir, Pump, std::fs::File, std::fs::File, Arc<SinkStats>) {
        let d = Dir(std::env::temp_dir().join(format!("tend-pump-{tag}-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&d.0);
        let opts = LogOptions {
            format,
            max_line: 16,
            ..LogOptions::default()
        };
        let sink = Sink::open_dir(&d.0, opts).unwrap();
        let (r1, w1) = crate::sys::capture_pipe().unwrap();
        let (r2, w2) = crate::sys::capture_pipe().unwrap();
        let pump = Pump::start().unwrap();
        let stats = pump.add(sink, vec![(Stream::Stdout, r1), (Stream::Stderr, r2)]);
        (d, pump, w1.into(), w2.into(), stats)
    }

    fn tags(d: &Dir) -> Vec<String> {
        let text = std::fs::read_to_string(d.0.join("current")).unwrap();
        text.lines().map(|l| l[31..].to_owned()).collect()
    }

    fn wait_lines(d: &Dir, n: usize) {
        let end = Instant::now() + Duration::from_secs(20);
        while std::fs::read_to_string(d.0.join("current"))
            .unwrap()
            .lines()
            .count()
            < n
        {
            assert!(Instant::now() < end, "timed out waiting for {n} records");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Writes `bytes` to a capture pipe, then waits until current holds `n` records.
    fn feed(d: &Dir, w: &mut std::fs::File, bytes: &[u8], n: usize) {
        w.write_all(bytes).unwrap();
        wait_lines(d, n);
    }

    #[test]
    fn both_streams_tagged_and_partials_closed_at_eof() {
        let (d, pump, mut out, mut err) = setup("tags", Format::Cri);
        feed(&d, &mut out, b"to stdout\n", 1);
        feed(&d, &mut err, b"to stderr\nhalf", 2);
        drop((out, err));
        pump.finish(None);
        assert_eq!(
            tags(&d),
            ["stdout F to stdout", "stderr F to stderr", "stderr F half"]
        );
    }

    #[test]
    fn split_line_is_not_interleaved_then_released_after_wait() {
        let (d, pump, mut out, mut err) = setup("split", Format::Cri);
        // stdout starts a split line (one P piece, 4 bytes held), stderr then has data.
        feed(&d, &mut out, b"0123456789abcdefHELD", 1);
        let t0 = Instant::now();
        // The held piece is closed as F after SPLIT_WAIT, then stderr's line follows.
        feed(&d, &mut err, b"err line\n", 3);
        assert!(t0.elapsed() >= SPLIT_WAIT - Duration::from_millis(50));
        // A split that completes in time keeps P and F back to back.
        feed(&d, &mut out, b"0123456789abcdefGH", 4);
        err.write_all(b"second err\n").unwrap();
        feed(&d, &mut out, b"IJ\n", 6);
        drop((out, err));
        pump.finish(None);
        assert_eq!(
            tags(&d),
            [
                "stdout P 0123456789abcdef",
                "stdout F HELD",
                "stderr F err line",
                "stdout P 0123456789abcdef",
                "stdout F GHIJ",
                "stderr F second err",
            ]
        );
    }

    #[test]
    fn plain_interleaves_whole_lines_only() {
        let (d, pump, mut out, mut err) = setup("plain", Format::Plain);
        out.write_all(b"out-part-").unwrap();
        err.write_all(b"err-line\n").unwrap();
        let end = Instant::now() + Duration::from_secs(20);
        while std::fs::read(d.0.join("current")).unwrap() != b"err-line\n" {
            assert!(Instant::now() < end);
            std::thread::sleep(Duration::from_millis(5));
        }
        out.write_all(b"rest\n").unwrap();
        drop((out, err));
        pump.finish(None);
        assert_eq!(
            std::fs::read(d.0.join("current")).unwrap(),
            b"err-line\nout-part-rest\n"
        );
    }

    #[test]
    fn finish_with_deadline_stops_despite_open_writer() {
        let (d, pump, mut out, _err) = setup("deadline", Format::Plain);
        feed(&d, &mut out, b"kept\n", 1);
        let t0 = Instant::now();
        pump.finish(Some(Instant::now() + Duration::from_millis(100)));
        assert!(t0.elapsed() < Duration::from_secs(10));
        assert_eq!(std::fs::read(d.0.join("current")).unwrap(), b"kept\n");
    }

    #[test]
    fn json_record_before_the_other_stream_is_complete() {
        let (d, pump, mut out, mut err) = setup("jsonnl", Format::Json);
        // A held piece released early for the other stream (max_line 16).
        feed(&d, &mut out, b"0123456789abcdefHELD", 1);
        feed(&d, &mut err, b"err line\n", 3);
        // Unterminated last lines on both streams.
        err.write_all(b"err tail").unwrap();
        drop(err);
        wait_lines(&d, 4);
        out.write_all(b"out tail").unwrap();
        drop(out);
        pump.finish(None);
        let text = std::fs::read_to_string(d.0.join("current")).unwrap();
        let logs: Vec<(String, String)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["stream"].as_str().unwrap().into(),
                    v["log"].as_str().unwrap().into(),
                )
            })
            .collect();
        let want = [
            ("stdout", "0123456789abcdef"),
            ("stdout", "HELD\n"),
            ("stderr", "err line\n"),
            ("stderr", "err tail\n"),
            ("stdout", "out tail\n"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(s, l)| (s.to_string(), l.to_string()))
            .collect();
        assert_eq!(logs, want);
    }

    #[test]
    fn an_exited_instance_line_is_closed_before_the_next_instance_writes() {
        let (d, pump, mut out, mut err, stats) = setup_stats("instance", Format::Cri);
        let ended = |out: &std::fs::File, err: &std::fs::File| {
            pump.instance_ended(&stats, out.as_fd(), err.as_fd())
        };
        // Read already (the pending line is in the framer), then the process ends.
        out.write_all(b"dying 1").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        ended(&out, &err);
        feed(&d, &mut out, b"start 2\n", 2);
        // Not read yet when the process ends: the boundary is where its bytes stop, even
        // though the next instance's bytes are in the same pipe right behind them.
        out.write_all(b"dying 2").unwrap();
        err.write_all(b"half err").unwrap();
        ended(&out, &err);
        out.write_all(b"start 3\n").unwrap();
        feed(&d, &mut err, b"err 3\n", 6);
        // Two quick instances, both ended before the log thread reads: two marks queued.
        out.write_all(b"dying 3").unwrap();
        ended(&out, &err);
        out.write_all(b"dying 4").unwrap();
        ended(&out, &err);
        feed(&d, &mut out, b"start 5\n", 9);
        drop((out, err));
        pump.finish(None);
        let mut got = tags(&d);
        // The two streams' order between them is the log thread's; each stream's is fixed.
        got[2..].sort();
        assert_eq!(
            got,
            [
                "stdout F dying 1",
                "stdout F start 2",
                "stderr F err 3",
                "stderr F half err",
                "stdout F dying 2",
                "stdout F dying 3",
                "stdout F dying 4",
                "stdout F start 3",
                "stdout F start 5",
            ]
        );
        let text = std::fs::read_to_string(d.0.join("current")).unwrap();
        let pos = |s: &str| text.find(s).unwrap();
        assert!(pos("dying 2") < pos("start 3"));
        assert!(pos("half err") < pos("err 3"));
        assert!(pos("start 3") < pos("dying 3") && pos("dying 4") < pos("start 5"));
    }
}
