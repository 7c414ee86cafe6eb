//! A consistent view of a log directory while the writer rotates it, and `tend logs -f`.
//!
//! Rotation renames `current` to `@<time>.log` and creates a new `current`. We hold the
//! open fd of `current`; at EOF we compare its inode with the file now named `current`.
//! When they differ, the fd we hold is the newest archive: it is drained to EOF, archives
//! that appeared and were never held are read whole (several rotations may happen between
//! two polls), and the new `current` is read from offset 0. Nothing is missed or repeated.

use super::logs::{Archive, Output, Stop, file_id, list_archives, open_nofollow, print_archive};
use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often `current` is checked for growth or rotation while following.
const POLL: Duration = Duration::from_millis(100);
/// Bytes read per call, and the bound of a held partial line before it is printed as is.
const CHUNK: usize = 64 * 1024;
const MAX_PARTIAL: usize = 4 << 20;

/// The open `current` and the incomplete last line read from it.
pub struct Current {
    file: File,
    id: (u64, u64),
    partial: Vec<u8>,
    buf: Vec<u8>,
}

impl Current {
    fn open(dir: &Path) -> io::Result<Option<Current>> {
        match open_nofollow(&dir.join("current")) {
            Ok(file) => {
                let id = file_id(&file.metadata()?);
                Ok(Some(Current {
                    file,
                    id,
                    partial: Vec::new(),
                    buf: vec![0; CHUNK],
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Prints every complete record available now; returns the bytes read. A trailing
    /// partial line is held until its newline arrives (the writer may be mid-record).
    pub fn read_available(&mut self, out: &mut Output<'_>) -> Result<usize, Stop> {
        let mut total = 0;
        loop {
            let n = match self.file.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Fail(format!("cannot read current: {e}"))),
            };
            total += n;
            let mut rest = &self.buf[..n];
            while let Some(p) = memchr::memchr(b'\n', rest) {
                if self.partial.is_empty() {
                    out.record(&rest[..p])?;
                } else {
                    self.partial.extend_from_slice(&rest[..p]);
                    out.record(&self.partial)?;
                    self.partial.clear();
                }
                rest = &rest[p + 1..];
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_PARTIAL {
                // Not a record tend would write; print it rather than grow without bound.
                out.record(&self.partial)?;
                self.partial.clear();
            }
            if total >= 16 * CHUNK {
                // Give the caller a chance to flush and check for signals.
                return Ok(total);
            }
        }
    }

    /// The file is finished (rotated away): a held partial line is printed as is.
    fn finish(mut self, out: &mut Output<'_>) -> Result<(), Stop> {
        while self.read_available(out)? > 0 {}
        if !self.partial.is_empty() {
            out.record(&self.partial)?;
        }
        Ok(())
    }
}

/// `current` (if any) and the archives older than it, taken without racing a rotation.
pub struct Snapshot {
    /// The open `current`.
    pub current: Option<Current>,
    /// Archives older than `current`, oldest first.
    pub archives: Vec<Archive>,
}

/// Opens `current`, lists the archives, and checks `current` is still the same file: if a
/// rotation happened in between, the listing could hold our own `current`, so retry.
pub fn snapshot(dir: &Path) -> Result<Snapshot, Stop> {
    let fail = |e: io::Error| Stop::Fail(format!("cannot open {}/current: {e}", dir.display()));
    let mut tries = 0;
    loop {
        let current = Current::open(dir).map_err(fail)?;
        let archives = list_archives(dir)?;
        let now = std::fs::symlink_metadata(dir.join("current"))
            .ok()
            .map(|m| file_id(&m));
        tries += 1;
        if now == current.as_ref().map(|c| c.id) || tries >= 50 {
            return Ok(Snapshot { current, archives });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Follows `current` across rotations until SIGINT/SIGTERM or a closed stdout.
pub fn follow(
    dir: &Path,
    mut cur: Option<Current>,
    archives: &[Archive],
    out: &mut Output<'_>,
) -> Result<(), Stop> {
    let mut seen: BTreeSet<String> = archives.iter().map(|a| a.stem.clone()).collect();
    loop {
        if out.stop.load(Ordering::Relaxed) {
            return Err(Stop::Quiet);
        }
        if let Some(c) = &mut cur
            && c.read_available(out)? > 0
        {
            out.w.flush_checked()?;
            continue;
        }
        out.w.flush_checked()?;
        // At EOF: is the file named `current` still ours?
        let named = std::fs::symlink_metadata(dir.join("current"))
            .ok()
            .map(|m| file_id(&m));
        let held = cur.as_ref().map(|c| c.id);
        if named.is_none() || named == held {
            // No rotation (or mid-rotation: renamed, new one not created yet).
            if stdout_closed(POLL) {
                return Err(Stop::Quiet);
            }
            continue;
        }
        // Rotated: after the rename the writer never writes the old file again, so
        // draining it to EOF now gets all of it.
        let old = cur.take().map(|c| {
            let id = c.id;
            (c.finish(out), id)
        });
        let old_id = match old {
            Some((r, id)) => {
                r?;
                Some(id)
            }
            None => None,
        };
        let snap = snapshot(dir)?;
        let mut skip_ours = old_id.is_some();
        for a in &snap.archives {
            if seen.contains(&a.stem) {
                continue;
            }
            if skip_ours {
                // The first archive that appeared is the file we held (the oldest rotation
                // since we opened it); check by inode when it is still uncompressed.
                skip_ours = false;
                let ours = match std::fs::symlink_metadata(dir.join(format!("{}.log", a.stem))) {
                    Ok(m) => Some(file_id(&m)) == old_id,
                    Err(_) => true,
                };
                if ours {
                    continue;
                }
            }
            print_archive(dir, a, out)?;
        }
        seen.extend(snap.archives.into_iter().map(|a| a.stem));
        cur = snap.current;
    }
}

/// Waits up to `wait`; true if stdout is a pipe whose reader has gone (`tend logs -f |
/// head` must end even when no new record arrives to fail a write).
fn stdout_closed(wait: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let stdout = io::stdout();
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&stdout),
        PollFlags::empty(),
    )];
    let ms = PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, ms) {
        Ok(n) if n > 0 => fds[0]
            .revents()
            .is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)),
        // EINTR (a signal: the caller checks the stop flag) or nothing happened.
        _ => false,
    }
}

/// Flushing stdout while following: a closed pipe ends the follow quietly.
trait FlushChecked {
    fn flush_checked(&mut self) -> Result<(), Stop>;
}

impl<W: io::Write> FlushChecked for W {
    fn flush_checked(&mut self) -> Result<(), Stop> {
        self.flush().map_err(Stop::from)
    }
}
