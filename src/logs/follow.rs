//! A consistent view of a log directory while the writer rotates it, and `tend logs -f`.
//!
//! Rotation renames `current` to `@<time>.log` and creates a new `current`; the compressor
//! may then replace `@<time>.log` by `@<time>.log.gz` and retention may delete it. Files are
//! identified by what we hold, never by their position in a listing:
//! - a snapshot opens `current`, lists the archives, and checks that the file named
//!   `current` is still the one opened (by device and inode), so every listed archive is
//!   older than the held file;
//! - archive names only grow, so "printed" is one watermark: the newest stem handled;
//! - when the file named `current` is no longer ours, the held fd is drained to EOF (the
//!   writer never writes it again) and its archive name is read from the fd itself
//!   (`/proc/self/fd`), whatever happened to it since: renamed, compressed, pruned (without
//!   `/proc`: by its inode among the new `.log` files). Archives newer than it were
//!   `current` after it and are printed whole; the next snapshot follows.

use super::output::{Output, Stop};
use super::read::{CHUNK, Lines, open_regular, print_archive};
use crate::log::archive::{Archive, list_stable, split_name};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often `current` is checked for growth or rotation while following.
const POLL: Duration = Duration::from_millis(100);

/// (device, inode): what identifies a file across renames.
pub type FileId = (u64, u64);

/// The open `current` and the incomplete last line read from it.
pub struct Current {
    file: File,
    lines: Lines,
    buf: Vec<u8>,
}

impl Current {
    /// Prints every complete record available now; returns the bytes read. A trailing
    /// partial line is held until its newline arrives (the writer may be mid-record).
    pub fn read_available(&mut self, out: &mut Output<'_>) -> Result<usize, Stop> {
        let mut total = 0;
        loop {
            if out.stop.load(Ordering::Relaxed) {
                return Err(Stop::Quiet);
            }
            let n = match self.file.read(&mut self.buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Stop::Fail(format!("cannot read current: {e}"))),
            };
            total += n;
            self.lines.feed(&self.buf[..n], out)?;
            if total >= 16 * CHUNK {
                // Give the caller a chance to flush.
                return Ok(total);
            }
        }
    }

    /// The archive stem the held file has now, read from the fd: `Ok(None)` when its name
    /// is not an archive's (still `current`), `Err` when `/proc` cannot tell.
    fn archive_stem(&self) -> io::Result<Option<String>> {
        let link = std::fs::read_link(format!("/proc/self/fd/{}", self.file.as_raw_fd()))?;
        let link = link.to_string_lossy();
        // An unlinked file (compressed or pruned since) keeps its last name.
        let path = link.strip_suffix(" (deleted)").unwrap_or(&link);
        let name = path.rsplit('/').next().unwrap_or_default();
        Ok(split_name(name).map(|(stem, _)| stem.to_owned()))
    }

    /// The file is finished (rotated away): a held partial line is printed as is.
    fn finish(mut self, out: &mut Output<'_>) -> Result<(), Stop> {
        while self.read_available(out)? > 0 {}
        self.lines.finish(out)
    }
}

/// `current` (if any) and the archives older than it, taken without racing a rotation.
pub struct Snapshot {
    /// The open `current` (`None`: absent, or not a regular file).
    pub current: Option<Current>,
    /// The file named `current` when the snapshot was taken, held or not.
    pub current_id: Option<FileId>,
    /// Archives older than `current`, oldest first.
    pub archives: Vec<Archive>,
}

fn id_of(path: &Path) -> Option<FileId> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Opens `current`, lists the archives, and checks `current` is still the same file: if a
/// rotation happened in between, the listing could hold our own `current`, so retry.
pub fn snapshot(dir: &Path) -> Result<Snapshot, Stop> {
    let path = dir.join("current");
    let fail = |e: io::Error| Stop::Fail(format!("cannot open {}: {e}", path.display()));
    let mut tries = 0;
    loop {
        let (current, id) = match open_regular(&path) {
            Ok(Some(file)) => {
                let m = file.metadata().map_err(fail)?;
                let cur = Current {
                    file,
                    lines: Lines::default(),
                    buf: vec![0; CHUNK],
                };
                (Some(cur), Some((m.dev(), m.ino())))
            }
            Ok(None) => (None, id_of(&path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => (None, None),
            Err(e) => return Err(fail(e)),
        };
        let archives = list_stable(dir).map_err(|e| Stop::io("list", dir, &e))?;
        tries += 1;
        if id_of(&path) == id || tries >= 50 {
            return Ok(Snapshot {
                current,
                current_id: id,
                archives,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Follows `current` across rotations until SIGINT/SIGTERM or a closed stdout.
pub fn follow(
    dir: &Path,
    mut cur: Option<Current>,
    mut cur_id: Option<FileId>,
    archives: &[Archive],
    out: &mut Output<'_>,
) -> Result<(), Stop> {
    // Every archive up to this stem has been printed (or was older than what we printed).
    let mut mark: Option<String> = archives.last().map(|a| a.stem.clone());
    loop {
        if out.stop.load(Ordering::Relaxed) {
            return Err(Stop::Quiet);
        }
        if let Some(c) = &mut cur
            && c.read_available(out)? > 0
        {
            out.w.flush().map_err(Stop::from)?;
            continue;
        }
        out.w.flush().map_err(Stop::from)?;
        // At EOF: is the file named `current` still the one we hold?
        let named = id_of(&dir.join("current"));
        if named.is_none() || named == cur_id {
            // No rotation (or mid-rotation: renamed, new one not created yet).
            if stdout_closed(POLL) {
                return Err(Stop::Quiet);
            }
            continue;
        }
        // Rotated: after the rename the writer never writes the old file again, so
        // draining it to EOF now gets all of it.
        let mut no_name = false;
        if let Some(c) = cur.take() {
            match c.archive_stem() {
                Ok(Some(stem)) => mark = mark.max(Some(stem)),
                Ok(None) => {}
                Err(_) => no_name = true,
            }
            c.finish(out)?;
        }
        let snap = snapshot(dir)?;
        // No /proc: look for the held inode among the new `.log` files; if it is no longer
        // one (compressed or pruned already), it was the first archive made after the mark.
        let mut skip_first_new = false;
        if no_name {
            let newer = |a: &&Archive| mark.as_ref().is_none_or(|m| a.stem > *m);
            let held = snap
                .archives
                .iter()
                .filter(newer)
                .find(|a| a.log && id_of(&dir.join(a.log_name())) == cur_id);
            match held {
                Some(a) => mark = Some(a.stem.clone()),
                None => skip_first_new = true,
            }
        }
        for a in &snap.archives {
            if mark.as_ref().is_some_and(|m| a.stem <= *m) {
                continue;
            }
            if std::mem::take(&mut skip_first_new) {
                continue;
            }
            print_archive(dir, a, out)?;
        }
        if let Some(last) = snap.archives.last() {
            mark = mark.max(Some(last.stem.clone()));
        }
        cur = snap.current;
        cur_id = snap.current_id;
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
