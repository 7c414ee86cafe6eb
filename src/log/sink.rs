//! One log directory: `current`, rotation to `@<time>.log`, retention, disk-full policy.

use super::archive;
use super::batch::Batch;
use super::compress::Compressor;
use super::dirfd;
use super::dirfd::{open_current, recover_compression};
use super::format::{Stamp, render, render_marker, whole_line_prefix};
use super::frame::{Framer, Record};
use super::hooks::request_hook;
use super::index::{Index, Policy};
use super::layout::{Identity, validate_component};
use super::options::{Format, OnFull, TeeFormat};
use super::recover;
use super::stats::{GiveUp, SinkStats};
use super::tee::Tee;
use super::{LogOptions, Stream};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Marker after a `plain` line that a crash ended early.
const PLAIN_TORN: &str = "tend: previous record was cut short (tend restarted)";
/// First and longest wait between write attempts on a full disk.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often to check that `current` is still linked (a deleted directory).
const GONE_CHECK: Duration = Duration::from_secs(1);
/// How long to wait before retrying a rotation that failed.
const ROTATE_RETRY: Duration = Duration::from_secs(10);
/// Start writeback of `current` every this many bytes, so the fsync at rotation finds
/// little left to write instead of stalling capture on the whole file.
const WRITEBACK_EVERY: u64 = 8 << 20;
/// The batch is written once it holds this much: a full 1 MiB read of short lines in `cri`
/// (1.4 MiB) stays one `write` (scripts/bench-log.sh), while memory stays bounded however
/// much a format expands its input (`cri` of empty lines is 41x).
pub const OUT_CAP: usize = 3 << 19;
/// Room beyond [`OUT_CAP`] for the record that crosses it, so the batch rarely grows.
pub const OUT_SLACK: usize = 64 << 10;

/// A locked, open log directory.
pub struct Sink {
    dir: OwnedFd,
    path: PathBuf,
    _lock: Flock<OwnedFd>,
    current: OwnedFd,
    cur_size: u64,
    /// Offset of `current` at a record boundary where its name was last seen linked:
    /// if it is deleted, the bytes past it are copied into the new `current`.
    confirmed: u64,
    /// Offset up to which writeback of `current` has been started.
    written_back: u64,
    cur_since: Instant,
    opts: LogOptions,
    /// The last record pushed was a `P` piece: no rotation until its `F`.
    in_split: bool,
    /// `current` ends with `\n` (or is empty).
    ends_nl: bool,
    /// Bytes dropped since the last marker was written (`--on-full drop`).
    pending_drop: u64,
    last_archive_ns: i128,
    /// The archives, listed once at open.
    archives: Index,
    /// The log root and the directories below it, to recreate them if deleted.
    chain: (PathBuf, Vec<String>),
    /// When to check next that `current` is still linked.
    gone_check_at: Instant,
    rotate_retry_at: Option<Instant>,
    /// The write error going on (reported once when it starts), and the bytes lost
    /// since (reported once when writing works again).
    failing: Option<Errno>,
    lost_while_failing: u64,
    stats: Arc<SinkStats>,
    compressor: Option<Compressor>,
    /// Past its deadline a full disk drops instead of blocking (shutdown).
    give_up: Option<Arc<GiveUp>>,
    /// A rotation was asked for mid-split: done at the split line's end.
    rotate_asked: bool,
    /// `--tee`.
    tee: Option<Tee>,
}

impl Sink {
    /// Opens (creating) `<root>/<ns>/<app>/<pod>/<service>/` and takes its lock.
    pub fn open_service(
        root: &Path,
        id: &Identity,
        service: &str,
        opts: LogOptions,
    ) -> Result<Sink, String> {
        validate_component("service", service)?;
        for (src, v) in [
            ("namespace", &id.namespace),
            ("app", &id.app),
            ("pod", &id.pod),
        ] {
            validate_component(src, v)?;
        }
        let parts = [id.namespace.as_str(), &id.app, &id.pod, service];
        let parts: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
        let (fd, path) = open_chain(root, &parts)?;
        Sink::open_fd(fd, path, (root.to_path_buf(), parts), opts)
    }

    /// Opens (creating) a log directory given directly, as `tend log DIR` does.
    pub fn open_dir(dir: &Path, opts: LogOptions) -> Result<Sink, String> {
        let fd = dirfd::open_root(dir)?;
        Sink::open_fd(fd, dir.to_path_buf(), (dir.to_path_buf(), Vec::new()), opts)
    }

    fn open_fd(
        dir: OwnedFd,
        path: PathBuf,
        chain: (PathBuf, Vec<String>),
        opts: LogOptions,
    ) -> Result<Sink, String> {
        let shown = path.display().to_string();
        let lock = lock_dir(&dir, &shown)?;
        recover_compression(&dir);
        let current = open_current(&dir, &shown)?;
        let st = nix::sys::stat::fstat(&current)
            .map_err(|e| format!("{shown}/current: cannot stat: {e}"))?;
        let mut sink = Sink {
            cur_size: st.st_size as u64,
            confirmed: 0,
            written_back: st.st_size as u64,
            cur_since: Instant::now(),
            in_split: false,
            ends_nl: true,
            pending_drop: 0,
            last_archive_ns: 0,
            archives: Index::default(),
            chain,
            gone_check_at: Instant::now() + GONE_CHECK,
            rotate_retry_at: None,
            failing: None,
            lost_while_failing: 0,
            stats: Arc::new(SinkStats::default()),
            compressor: None,
            // On the log thread, a shutdown must end a repair blocked on a full disk too.
            give_up: super::stats::engine_give_up(),
            rotate_asked: false,
            tee: None,
            dir,
            path,
            _lock: lock,
            current,
            opts,
        };
        sink.repair_tail(&shown)?;
        sink.confirmed = sink.cur_size;
        if sink.opts.tee {
            let name = sink
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            let format = sink.opts.tee_format.unwrap_or(TeeFormat::Same);
            let t = Tee::new(format, name.as_deref().unwrap_or("?"), sink.stats.clone());
            sink.tee = Some(t);
        }
        let archives = archive::list(&sink.dir).unwrap_or_default();
        for a in &archives {
            sink.archives.push(a.stem.clone(), a.ns, a.size);
        }
        sink.last_archive_ns = sink.archives.last_ns();
        if sink.opts.compress {
            let dup = sink
                .dir
                .try_clone()
                .map_err(|e| format!("{shown}: cannot duplicate directory fd: {e}"))?;
            let c = Compressor::start(dup, sink.path.clone(), sink.opts.on_rotate.clone())?;
            // Archives left uncompressed by a previous run (or one without --compress).
            for a in &archives {
                if let [f] = a.files.as_slice()
                    && f.ends_with(".log")
                {
                    c.submit(f.clone());
                }
            }
            sink.compressor = Some(c);
        }
        sink.prune();
        Ok(sink)
    }

    /// After a crash: cuts a torn last record (writing one marker saying how many bytes
    /// went) and closes a dangling `P` piece with an empty `F`, before anything else.
    fn repair_tail(&mut self, shown: &str) -> Result<(), String> {
        let fix = recover::inspect(&self.current, self.cur_size, self.opts.format)
            .map_err(|e| format!("{shown}/current: cannot read: {e}"))?;
        if let Some(len) = fix.truncate_to {
            nix::unistd::ftruncate(&self.current, len as i64)
                .map_err(|e| format!("{shown}/current: cannot cut a torn record: {e}"))?;
            self.cur_size = len;
            self.written_back = len;
        }
        let mut m = Batch::with_capacity(256);
        let stamp = Stamp::now();
        if fix.newline {
            // plain: the app's bytes stay (any prefix of a line is valid plain); the line
            // is ended and marked.
            m.push(b'\n');
            render_marker(self.opts.format, &stamp, PLAIN_TORN, &mut m);
        }
        if let Some(stream) = fix.close {
            let empty_f = Record {
                line: b"",
                partial: false,
                newline: true,
            };
            render(self.opts.format, &stamp, stream, empty_f, &mut m);
        }
        if fix.cut > 0 {
            let text = format!(
                "tend: cut {} bytes of a record torn by a crash (tend restarted)",
                fix.cut
            );
            render_marker(self.opts.format, &stamp, &text, &mut m);
        }
        if self.write_all(m.as_slice()) < m.len() {
            // Reported by write_all; capture goes on (a full disk under `drop`).
            eprintln!("tend: {shown}/current: the end of the file is left unrepaired");
        }
        Ok(())
    }

    /// Counters shared with the PID-1 thread.
    pub fn stats(&self) -> Arc<SinkStats> {
        self.stats.clone()
    }

    /// A framer for one of this sink's streams (`--max-line`; json cuts at characters).
    pub fn framer(&self) -> Framer {
        Framer::new(self.opts.max_line).utf8_cuts(self.opts.format == Format::Json)
    }

    /// The directory this sink writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record to `out`; rotates first when it would pass `--rotate-size`
    /// (only at a record boundary, never between a `P` and its `F`).
    ///
    /// `out` is the log thread's one batch, lent to one sink at a time: whoever pushes
    /// into it flushes it before another sink may use it.
    #[inline(always)] // called once per log line
    pub fn push(&mut self, out: &mut Batch, stamp: &Stamp, stream: Stream, rec: Record<'_>) {
        let mark = out.len();
        render(self.opts.format, stamp, stream, rec, out);
        if let Some(t) = &mut self.tee {
            t.record(stream, &rec, &out.as_slice()[mark..]);
        }
        if self.cur_size + out.len() as u64 > self.opts.rotate_size
            && self.cur_size + mark as u64 > 0
        {
            if !self.in_split {
                self.write_batch(&out.as_slice()[..mark]);
                out.consume(mark);
                self.try_rotate();
            } else if rec.partial
                && self.cur_size + out.len() as u64 > self.opts.rotate_size.saturating_mul(2)
            {
                self.end_split(out, mark, stamp, stream, rec);
                return;
            }
        }
        self.in_split = rec.partial;
        if self.rotate_asked && !rec.partial {
            self.rotate_asked = false;
            self.flush(out);
            self.rotate_now();
        }
        if out.len() >= OUT_CAP {
            self.flush_full(out);
        }
    }

    /// A split line has run on for `--rotate-size` past the rotation point (output without
    /// newlines): its piece just rendered at `out[mark..]` ends the line (`cri`: `F`,
    /// json: `\n`), the file rotates, and the rest of the line continues as a new line.
    /// `ts` pieces are whole lines already and `plain` stays byte-exact: they just rotate.
    #[cold]
    #[inline(never)]
    fn end_split(
        &mut self,
        out: &mut Batch,
        mark: usize,
        stamp: &Stamp,
        stream: Stream,
        rec: Record<'_>,
    ) {
        if matches!(self.opts.format, Format::Cri | Format::Json) {
            out.truncate(mark);
            let last = Record {
                partial: false,
                ..rec
            };
            render(self.opts.format, stamp, stream, last, out);
        }
        self.flush(out);
        self.in_split = false;
        self.try_rotate();
    }

    /// Frames, formats and writes one read of `stream` (whose framer is `framer`), leaving
    /// `out` empty. Only the line carried over from the last read and the unfinished tail
    /// are framed one record at a time; the whole lines between them are written straight
    /// from `data` in `plain` (its output is its input), and in bulk in `cri` and `ts`
    /// unless tee needs each record or a rotation waits for the next one.
    pub fn take(
        &mut self,
        framer: &mut Framer,
        out: &mut Batch,
        stamp: &Stamp,
        stream: Stream,
        data: &[u8],
    ) {
        let plain = self.opts.format == Format::Plain;
        let prefix = whole_line_prefix(self.opts.format, stamp, stream)
            .filter(|_| self.tee.is_none() && !self.rotate_asked);
        if !plain && prefix.is_none() {
            framer.feed(data, &mut |r| self.push(out, stamp, stream, r));
            self.flush(out);
            return;
        }
        let (head, lines, rest) = framer.plain_parts(data);
        framer.feed(head, &mut |r| self.push(out, stamp, stream, r));
        match &prefix {
            Some(prefix) => self.push_bulk(framer, out, stamp, stream, prefix, lines),
            None => {
                if let Some(t) = &mut self.tee {
                    t.lines(stream, lines);
                }
                self.push_lines(out, lines);
            }
        }
        framer.feed(rest, &mut |r| self.push(out, stamp, stream, r));
        self.flush(out);
    }

    /// Writes the whole lines `lines` (ending with `\n`) as `prefix`, line, `\n` each, in
    /// bulk ([`tend_lines::prefix_lines`]) up to where [`Sink::push`] would rotate or flush;
    /// the line there (or one longer than `--max-line`) goes through `push`, then bulk again.
    fn push_bulk(
        &mut self,
        framer: &mut Framer,
        out: &mut Batch,
        stamp: &Stamp,
        stream: Stream,
        prefix: &tend_lines::Prefix,
        mut lines: &[u8],
    ) {
        let nl = framer.newline();
        while !lines.is_empty() {
            // `push` rotates before a record that would take `current` past --rotate-size
            // and flushes once the batch holds OUT_CAP: bulk stops short of both.
            let to_rotate = self
                .opts
                .rotate_size
                .saturating_sub(self.cur_size + out.len() as u64);
            let room = usize::try_from(to_rotate).unwrap_or(usize::MAX);
            let free = out.spare(room.min(OUT_CAP.saturating_sub(out.len())));
            let done = tend_lines::prefix_lines(&nl, prefix, lines, self.opts.max_line, free);
            out.commit(done.wrote);
            if done.read > 0 {
                self.in_split = false; // the last record was a whole line
            }
            lines = lines.get(done.read..).unwrap_or_default();
            // `lines` ends with `\n`: bulk stopped before a line it found, or at the end.
            let end = done.next.map_or(lines.len(), |i| i + 1);
            let (one, more) = lines.split_at(end.min(lines.len()));
            framer.feed(one, &mut |r| self.push(out, stamp, stream, r));
            lines = more;
        }
    }

    /// Writes whole `plain` lines (`lines` ends with `\n`) straight from the read buffer
    /// after flushing `out`, rotating between lines exactly where [`Sink::push`] would:
    /// before the first line that would pass `--rotate-size`, unless `current` is empty.
    fn push_lines(&mut self, out: &mut Batch, mut lines: &[u8]) {
        if lines.is_empty() {
            return;
        }
        self.flush(out);
        // The split-wait rule lets no other stream in mid-split, and this one's head went
        // through the framer: the last record pushed was a whole line.
        self.in_split = false;
        while !lines.is_empty() {
            let room = self.opts.rotate_size.saturating_sub(self.cur_size);
            if lines.len() as u64 <= room {
                self.write_batch(lines);
                return;
            }
            // room < lines.len(), so it fits in usize: the whole lines that fit go first.
            let mut cut = memchr::memrchr(b'\n', &lines[..room as usize]).map_or(0, |i| i + 1);
            // The next line does not fit whole. `push` decides on its first record: a line
            // over --max-line goes in pieces of which only the first must fit, and the first
            // record of an empty `current` always goes in.
            let next = memchr::memchr(b'\n', &lines[cut..]).map_or(lines.len() - cut, |i| i + 1);
            let first = if next - 1 > self.opts.max_line {
                self.opts.max_line
            } else {
                next
            };
            if self.cur_size + cut as u64 == 0 || (cut + first) as u64 <= room {
                if next - 1 > self.opts.max_line {
                    // A split line may run past the point where `push` ends it and rotates
                    // (`end_split`): its pieces go through `push`.
                    self.write_batch(&lines[..cut]);
                    self.push_pieces(out, &lines[cut..cut + next - 1]);
                    lines = &lines[cut + next..];
                    continue;
                }
                cut += next;
            }
            self.write_batch(&lines[..cut]);
            lines = &lines[cut..];
            if self.cur_size == 0 {
                continue; // all dropped (full disk): an empty `current` is not rotated
            }
            self.try_rotate();
            if self.cur_size > 0 {
                // Rotation failed and waits for its retry: keep writing, as `push` does.
                self.write_batch(lines);
                return;
            }
        }
    }

    /// Pushes one `plain` line (without its `\n`) as the framer would cut it: `P` pieces of
    /// `--max-line` bytes, then the rest as its `F`; then flushes.
    #[cold]
    fn push_pieces(&mut self, out: &mut Batch, mut line: &[u8]) {
        let stamp = Stamp::default(); // plain writes no time
        let max = self.opts.max_line;
        while line.len() > max {
            let piece = Record {
                line: &line[..max],
                partial: true,
                newline: false,
            };
            self.push(out, &stamp, Stream::Stdout, piece);
            line = &line[max..];
        }
        let last = Record {
            line,
            partial: false,
            newline: true,
        };
        self.push(out, &stamp, Stream::Stdout, last);
        self.flush(out);
    }

    /// [`Sink::flush`] out of line, so the per-record path stays small.
    #[cold]
    #[inline(never)]
    fn flush_full(&mut self, out: &mut Batch) {
        self.flush(out);
    }

    /// Writes `out` to `current` and empties it (one write syscall in the common case).
    pub fn flush(&mut self, out: &mut Batch) {
        self.write_batch(out.as_slice());
        out.clear();
        if let Some(t) = &mut self.tee {
            t.flush();
        }
    }

    /// When `--rotate-every` is set: the instant `current` becomes due.
    pub fn deadline(&self) -> Option<Instant> {
        self.opts.rotate_every.map(|d| self.cur_since + d)
    }

    /// Rotates by age if due (an empty `current` just restarts its clock).
    pub fn tick(&mut self, now: Instant) {
        if now >= self.gone_check_at {
            self.gone_check_at = now + GONE_CHECK;
            self.recreate_if_gone();
        }
        // No flush: between reads the log thread's batch is empty.
        if self.deadline().is_some_and(|d| now >= d) && !self.in_split {
            if self.cur_size > 0 {
                self.try_rotate();
            } else {
                self.cur_since = now;
            }
        }
    }

    /// Rotates now if `current` holds anything (`tend ctl rotate`, SIGALRM); a split line
    /// in progress defers it to the line's end.
    pub fn rotate_now(&mut self) {
        if self.in_split {
            self.rotate_asked = true;
        } else if self.cur_size > 0 {
            self.rotate_retry_at = None;
            self.try_rotate();
        }
    }

    /// Shares the pump's shutdown deadline: past it a full disk drops instead of blocking.
    pub fn set_give_up(&mut self, g: Arc<GiveUp>) {
        self.give_up = Some(g);
    }

    /// Flushes `out`, fsyncs `current` and the directory, lets compression finish until
    /// `deadline`.
    pub fn close(mut self, out: &mut Batch, deadline: Option<Instant>) {
        self.flush(out);
        // Bytes written since the last periodic check are kept if `current` was deleted.
        self.recreate_if_gone();
        if self.pending_drop > 0 {
            // Last chance to say that bytes were lost.
            let text = format!("tend: dropped {} bytes", self.pending_drop);
            if self.write_marker(&text) {
                self.pending_drop = 0;
            }
        }
        if let Some(e) = self.failing {
            eprintln!(
                "tend: {}/current: closing while writes fail with {e}; {} bytes lost",
                self.path.display(),
                self.lost_while_failing
            );
        }
        if let Err(e) = nix::unistd::fsync(&self.current) {
            eprintln!("tend: {}/current: fsync: {e}", self.path.display());
        }
        let _ = nix::unistd::fsync(&self.dir);
        if let Some(c) = self.compressor.take() {
            c.stop(deadline);
        }
    }

    /// Writes `buf`, first the drop marker if bytes were dropped.
    fn write_batch(&mut self, buf: &[u8]) {
        let n = buf.len();
        if n == 0 {
            return;
        }
        if self.pending_drop > 0 {
            let text = format!("tend: dropped {} bytes", self.pending_drop);
            if !self.write_marker(&text) {
                self.drop_bytes(n as u64);
                return;
            }
            self.pending_drop = 0;
        }
        let written = self.write_all(buf);
        if written < n {
            self.drop_bytes((n - written) as u64);
        }
    }

    /// Writes a marker record (stream stderr), after a `\n` if `current` ends mid-line.
    fn write_marker(&mut self, text: &str) -> bool {
        let mut m = Batch::with_capacity(128);
        if !self.ends_nl {
            m.push(b'\n');
        }
        render_marker(self.opts.format, &Stamp::now(), text, &mut m);
        self.write_all(m.as_slice()) == m.len()
    }

    fn drop_bytes(&mut self, n: u64) {
        self.lost_while_failing += n;
        self.pending_drop += n;
        self.stats.dropped.fetch_add(n, Relaxed);
    }

    /// Writes `buf` fully unless the disk is full under `drop` (or past the give-up
    /// deadline) or a hard error occurs; returns the bytes written.
    fn write_all(&mut self, buf: &[u8]) -> usize {
        let mut off = 0;
        let mut backoff = BACKOFF_MIN;
        while off < buf.len() {
            match nix::unistd::write(&self.current, &buf[off..]) {
                Ok(k) => {
                    off += k;
                    self.cur_size += k as u64;
                    backoff = BACKOFF_MIN;
                    if let Some(e) = self.failing.take() {
                        eprintln!(
                            "tend: {}/current: writing again after {e}; {} bytes lost",
                            self.path.display(),
                            std::mem::take(&mut self.lost_while_failing)
                        );
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e @ (Errno::ENOSPC | Errno::EDQUOT)) => {
                    if self.archives.remove_oldest(&self.dir).unwrap_or(false) {
                        continue;
                    }
                    let action = match self.opts.on_full {
                        OnFull::Block => "waiting for space",
                        OnFull::Drop => "dropping records",
                    };
                    self.report_failing(e, action);
                    let give_up = self.give_up.as_ref().is_some_and(|g| g.passed());
                    if self.opts.on_full == OnFull::Drop || give_up {
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    self.report_failing(e, "dropping records until writing works again");
                    break;
                }
            }
        }
        if self.cur_size >= self.written_back + WRITEBACK_EVERY {
            start_writeback(&self.current, self.written_back, self.cur_size);
            self.written_back = self.cur_size;
        }
        if off > 0 {
            self.ends_nl = buf[off - 1] == b'\n';
            self.stats.bytes.fetch_add(off as u64, Relaxed);
        }
        off
    }

    /// Says once that writing fails with `e` (a persistent error, e.g. `EROFS`, would
    /// otherwise print a line per batch); the end is reported by `write_all`.
    fn report_failing(&mut self, e: Errno, action: &str) {
        if self.failing.is_none() {
            self.failing = Some(e);
            self.lost_while_failing = 0;
            eprintln!(
                "tend: {}/current: write: {e}; {action}",
                self.path.display()
            );
        }
    }

    /// If `current` is no longer linked (its directory, or a parent, or the file itself was
    /// deleted, so everything written would be lost) or its name now is another file,
    /// recreates the directories and a new `current` and says so once; returns whether it
    /// did. While linked, notes the offset as confirmed (no cost per write).
    fn recreate_if_gone(&mut self) -> bool {
        let unlinked = match nix::sys::stat::fstat(&self.current) {
            Ok(st) if st.st_nlink == 0 => true,
            Ok(_) if !self.current_is_ours() => false,
            Ok(_) => {
                // Only at a record boundary: bytes of a record cut by a failed write, or
                // a `plain` line not yet ended, are carried over from its start.
                if self.ends_nl {
                    self.confirmed = self.cur_size;
                }
                return false;
            }
            Err(_) => return false,
        };
        match self.recreate(unlinked) {
            Ok(what) => {
                eprintln!("tend: {}: {what}", self.path.display());
                true
            }
            Err(e) => {
                eprintln!(
                    "tend: {}: deleted and cannot be recreated: {e}",
                    self.path.display()
                );
                false
            }
        }
    }

    /// Whether the name `current` is still the file being written (not deleted, nor
    /// replaced by a symlink or another file, which rotation must never rename).
    fn current_is_ours(&self) -> bool {
        let ours = |a: &nix::sys::stat::FileStat| match nix::sys::stat::fstat(&self.current) {
            Ok(b) => (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino),
            Err(_) => true, // cannot tell: let the rename decide
        };
        match dirfd::stat_in(&self.dir, "current") {
            Ok(st) => ours(&st),
            Err(Errno::ENOENT) => false,
            Err(_) => true,
        }
    }

    /// Opens a new `current` (and its directories); when the old one is `unlinked`, first
    /// copies into it what was written since the last confirmed offset.
    fn recreate(&mut self, unlinked: bool) -> Result<String, String> {
        let (dir, path) = open_chain(&self.chain.0, &self.chain.1)?;
        let shown = path.display().to_string();
        let same =
            |a: &OwnedFd, b: &OwnedFd| match (nix::sys::stat::fstat(a), nix::sys::stat::fstat(b)) {
                (Ok(x), Ok(y)) => (x.st_dev, x.st_ino) == (y.st_dev, y.st_ino),
                _ => false,
            };
        let what = if same(&dir, &self.dir) {
            "current was deleted; writing a new one"
        } else {
            // A new directory: its own lock, archives and compressor.
            self._lock = lock_dir(&dir, &shown)?;
            self.dir = dir;
            self.archives = Index::default();
            for a in archive::list(&self.dir).unwrap_or_default() {
                self.archives.push(a.stem, a.ns, a.size);
            }
            if let Some(old) = self.compressor.take() {
                old.stop(Some(Instant::now()));
                let dup = self
                    .dir
                    .try_clone()
                    .map_err(|e| format!("cannot duplicate directory fd: {e}"))?;
                let c = Compressor::start(dup, path.clone(), self.opts.on_rotate.clone())?;
                self.compressor = Some(c);
            }
            "log directory was deleted; recreated it"
        };
        let old = std::mem::replace(&mut self.current, open_current(&self.dir, &shown)?);
        let (from, to) = (self.confirmed, self.cur_size);
        let size = nix::sys::stat::fstat(&self.current).map_or(0, |st| st.st_size as u64);
        self.cur_size = size;
        self.confirmed = size;
        self.written_back = size;
        self.ends_nl = true;
        self.cur_since = Instant::now();
        let carried = if unlinked {
            self.carry_over(&old, from, to)
        } else {
            0
        };
        // The carried bytes end where the old file did, a split line's `P` included.
        self.in_split &= unlinked && carried == to - from;
        if !unlinked {
            return Ok(what.to_string());
        }
        Ok(format!(
            "{what}; carried over the {carried} bytes written since it was last seen{}",
            if carried < to - from {
                format!(" ({} could not be)", to - from - carried)
            } else {
                String::new()
            }
        ))
    }

    /// Copies `from..to` of the unlinked `old` into `current`; returns the bytes copied.
    fn carry_over(&mut self, old: &OwnedFd, from: u64, to: u64) -> u64 {
        let mut buf = vec![0u8; 64 << 10];
        let mut off = from;
        while off < to {
            let want = buf.len().min((to - off) as usize);
            let n = match nix::sys::uio::pread(old, &mut buf[..want], off as i64) {
                Ok(0) => break,
                Ok(n) => n,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    eprintln!(
                        "tend: {}: cannot read the deleted current: {e}",
                        self.path.display()
                    );
                    break;
                }
            };
            let w = self.write_all(&buf[..n]);
            off += w as u64;
            if w < n {
                break;
            }
        }
        off - from
    }

    fn try_rotate(&mut self) {
        if self.rotate_retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        let mut result = self.rotate();
        if result.is_err() && self.recreate_if_gone() {
            result = Ok(()); // a fresh, empty `current`: nothing to rotate
        }
        match result {
            Ok(()) => self.rotate_retry_at = None,
            Err(e) => {
                eprintln!("tend: {}: rotation failed: {e}", self.path.display());
                self.rotate_retry_at = Some(Instant::now() + ROTATE_RETRY);
            }
        }
    }

    /// fsync `current`, rename it to a fresh archive name, open a new `current`, fsync
    /// the directory, then prune and hand the archive to the compressor or hook.
    fn rotate(&mut self) -> Result<(), String> {
        if !self.current_is_ours() {
            return Err("current is no longer the file being written".into());
        }
        nix::unistd::fsync(&self.current).map_err(|e| format!("fsync current: {e}"))?;
        let mut ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i128;
        ns = ns.max(self.last_archive_ns + 1);
        let name = loop {
            let stem = archive::stem(ns);
            let free = |n: &str| matches!(dirfd::stat_in(&self.dir, n), Err(Errno::ENOENT));
            if free(&format!("{stem}.log")) && free(&format!("{stem}.log.gz")) {
                break format!("{stem}.log");
            }
            ns += 1;
        };
        dirfd::rename_in(&self.dir, "current", &name)
            .map_err(|e| format!("rename current → {name}: {e}"))?;
        self.last_archive_ns = ns;
        self.archives.push(archive::stem(ns), ns, self.cur_size);
        let shown = self.path.display().to_string();
        self.current = open_current(&self.dir, &shown)?;
        self.cur_size = 0;
        self.confirmed = 0;
        self.written_back = 0;
        self.cur_since = Instant::now();
        self.ends_nl = true;
        nix::unistd::fsync(&self.dir).map_err(|e| format!("fsync directory: {e}"))?;
        self.stats.rotations.fetch_add(1, Relaxed);
        self.prune();
        match (&self.compressor, &self.opts.on_rotate) {
            (Some(c), _) => c.submit(name),
            (None, Some(argv)) => request_hook(argv, &self.path.join(&name)),
            (None, None) => {}
        }
        Ok(())
    }

    fn prune(&mut self) {
        let policy = Policy {
            keep: self.opts.keep,
            max_total: self.opts.max_total,
            max_age: self.opts.max_age,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as i128;
        if let Some(c) = &self.compressor {
            for (name, size) in c.compressed() {
                if let Some(stem) = name.strip_suffix(".log") {
                    self.archives.resize(stem, size);
                }
            }
        }
        if let Err(e) = self.archives.prune(&self.dir, &policy, now) {
            eprintln!("tend: {}: retention: {e}", self.path.display());
        }
    }
}

/// Creates (if missing) and opens `root`, then each of `parts` below it without following
/// symlinks; returns the last directory and its path.
fn open_chain(root: &Path, parts: &[String]) -> Result<(OwnedFd, PathBuf), String> {
    let mut fd = dirfd::open_root(root)?;
    let mut path = root.to_path_buf();
    for part in parts {
        path.push(part);
        fd = dirfd::sub_dir(&fd, part, &path)?;
    }
    Ok((fd, path))
}

/// Takes the directory's lock: one writer per log directory.
fn lock_dir(dir: &OwnedFd, shown: &str) -> Result<Flock<OwnedFd>, String> {
    // A planted symlink, FIFO, socket or device is removed, as one at `current` is:
    // refusing would stop every service of an `init` over one service's directory.
    let lock_fd = dirfd::open_regular(dir, "lock", OFlag::O_RDWR, shown)?;
    match Flock::lock(lock_fd, FlockArg::LockExclusiveNonblock) {
        Ok(l) => Ok(l),
        Err((_, Errno::EWOULDBLOCK)) => Err(format!(
            "{shown}: another tend is writing this log directory (lock held)"
        )),
        Err((_, e)) => Err(format!("{shown}/lock: cannot lock: {e}")),
    }
}

/// Asks the kernel to start writing `from..to` of `fd` to disk, without waiting.
fn start_writeback(fd: &OwnedFd, from: u64, to: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: sync_file_range on an fd we own with plain integer arguments; failure only
    // means the later fsync does all the work, so the result is ignored.
    unsafe {
        libc::sync_file_range(
            fd.as_raw_fd(),
            from as libc::off64_t,
            (to - from) as libc::off64_t,
            libc::SYNC_FILE_RANGE_WRITE,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Archives in name order, then `current`: each file's bytes.
    fn files(dir: &Path) -> Vec<Vec<u8>> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('@'))
            .collect();
        names.sort();
        names.push("current".into());
        names
            .iter()
            .map(|n| std::fs::read(dir.join(n)).unwrap())
            .collect()
    }

    /// The identity `ns/app/<pod>`.
    fn ns_app_pod(pod: &str) -> Identity {
        Identity {
            namespace: "ns".into(),
            app: "app".into(),
            pod: pod.into(),
        }
    }

    /// An empty temp dir for one test (this process's id keeps helpers apart).
    fn fresh_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn whole_lines_in_bulk_rotate_where_records_would() {
        // Lines of 0..300 bytes with some far over --max-line, no final newline.
        let mut seed = 12345u64;
        let mut rand = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let mut input = Vec::new();
        let mut small = 0; // the first 4,000 lines, for the runs that rotate every 4 KiB
        for i in 0..20_000 {
            if i == 4_000 {
                small = input.len();
            }
            let len = if rand(40) == 0 {
                800 + rand(9000)
            } else {
                rand(300)
            };
            input.extend_from_slice(format!("{i}:").as_bytes());
            input.extend(std::iter::repeat_n(b'y', len as usize));
            input.push(b'\n');
        }
        input.extend_from_slice(b"no newline");
        let small = [&input[..small], b"no newline"].concat();
        let base = fresh_dir("tend-sink-bulk");
        // Small files (rotation between lines), and one file (the batch's OUT_CAP flush).
        for (format, rotate_size) in [
            (Format::Plain, 4096),
            (Format::Cri, 4096),
            (Format::Ts, 4096),
            (Format::Cri, 1 << 30),
            (Format::Ts, 1 << 30),
        ] {
            let opts = LogOptions {
                format,
                max_line: 700,
                rotate_size,
                keep: 100_000,
                ..LogOptions::default()
            };
            let input = if rotate_size == 4096 { &small } else { &input };
            let run = |name: &str, fast: bool, chunk: usize| {
                let dir = base.join(format!("{format:?}-{rotate_size}-{name}"));
                let mut sink = Sink::open_dir(&dir, opts.clone()).unwrap();
                let mut framer = Framer::new(opts.max_line);
                let mut out = Batch::with_capacity(0);
                let stamp = Stamp::default();
                let s = Stream::Stdout;
                for data in input.chunks(chunk) {
                    if fast {
                        sink.take(&mut framer, &mut out, &stamp, s, data);
                    } else {
                        // The reference: every line framed and pushed as a record.
                        framer.feed(data, &mut |r| sink.push(&mut out, &stamp, s, r));
                        sink.flush(&mut out);
                    }
                }
                framer.finish(&mut |r| sink.push(&mut out, &stamp, s, r));
                sink.close(&mut out, None);
                files(&dir)
            };
            let want = run("records", false, 1 << 20);
            if rotate_size == 4096 {
                assert!(want.len() > 100, "only {} files", want.len());
            }
            if format == Format::Plain {
                assert_eq!(want.concat(), [&input[..], b"\n"].concat());
            }
            for chunk in [4 << 20, 1 << 20, 4096, 77] {
                let got = run(&format!("lines-{chunk}"), true, chunk);
                assert!(
                    got == want,
                    "{format:?}: reads of {chunk} bytes rotated elsewhere"
                );
            }
        }
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_full_batch_is_written_before_the_read_ends() {
        let dir = fresh_dir("tend-sink-cap");
        let opts = LogOptions {
            format: super::super::options::Format::Plain,
            ..LogOptions::default()
        };
        let mut sink = Sink::open_dir(&dir, opts).unwrap();
        let mut out = Batch::with_capacity(0);
        let line = [b'x'; 999];
        let rec = Record {
            line: &line,
            partial: false,
            newline: true,
        };
        let n = 2 * OUT_CAP / 1000 + 1;
        for _ in 0..n {
            sink.push(&mut out, &Stamp::default(), Stream::Stdout, rec);
            // Bounded: never more than the cap plus the record that crossed it.
            assert!(out.len() < OUT_CAP + 1000, "batch grew to {}", out.len());
        }
        let on_disk = std::fs::metadata(dir.join("current")).unwrap().len() as usize;
        assert_eq!(on_disk + out.len(), n * 1000);
        assert!(
            on_disk >= OUT_CAP,
            "only {on_disk} bytes written before the flush"
        );
        sink.close(&mut out, None);
        assert_eq!(out.len(), 0);
        let on_disk = std::fs::metadata(dir.join("current")).unwrap().len() as usize;
        assert_eq!(on_disk, n * 1000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn service_dirs_are_created_without_following_symlinks() {
        let root = fresh_dir("tend-sink");
        let id = ns_app_pod("pod-1");
        let s = Sink::open_service(&root, &id, "web", LogOptions::default()).unwrap();
        assert!(root.join("ns/app/pod-1/web/current").is_file());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.join("ns/app"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o750);
        let mode = std::fs::metadata(root.join("ns/app/pod-1/web/current"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        // Second live writer.
        let e = Sink::open_service(&root, &id, "web", LogOptions::default())
            .err()
            .unwrap();
        assert_eq!(
            e,
            format!(
                "{}: another tend is writing this log directory (lock held)",
                root.join("ns/app/pod-1/web").display()
            )
        );
        drop(s);
        // A planted symlink as the pod component is refused, its target untouched.
        let elsewhere = root.join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, root.join("ns/app/pod-2")).unwrap();
        let id2 = Identity {
            pod: "pod-2".into(),
            ..id.clone()
        };
        let e = Sink::open_service(&root, &id2, "web", LogOptions::default())
            .err()
            .unwrap();
        assert!(e.contains("pod-2: is a symlink"), "{e}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        let e = Sink::open_service(&root, &id, "../x", LogOptions::default())
            .err()
            .unwrap();
        assert!(e.starts_with("service: '../x'"), "{e}");
        let _ = std::fs::remove_dir_all(&root);
    }

    #[test]
    fn a_deleted_log_root_is_recreated() {
        let root = fresh_dir("tend-sink-gone");
        let id = ns_app_pod("pod");
        let mut sink = Sink::open_service(&root, &id, "web", LogOptions::default()).unwrap();
        let mut out = Batch::with_capacity(0);
        let rec = |line: &'static [u8]| Record {
            line,
            partial: false,
            newline: true,
        };
        sink.push(&mut out, &Stamp::default(), Stream::Stdout, rec(b"one"));
        sink.flush(&mut out);
        // Seen linked after "one": only what follows is carried over.
        sink.tick(Instant::now() + GONE_CHECK);
        std::fs::remove_dir_all(&root).unwrap();
        // Written to the deleted file before the next check: carried over, not lost.
        sink.push(&mut out, &Stamp::default(), Stream::Stdout, rec(b"two"));
        sink.flush(&mut out);
        sink.tick(Instant::now() + GONE_CHECK * 2);
        sink.push(&mut out, &Stamp::default(), Stream::Stdout, rec(b"three"));
        sink.close(&mut out, None);
        let cur = std::fs::read_to_string(root.join("ns/app/pod/web/current")).unwrap();
        let stamp = "1970-01-01T00:00:00.000000000Z";
        assert_eq!(
            cur,
            format!("{stamp} stdout F two\n{stamp} stdout F three\n")
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
