//! Reading the files of a log directory safely: never blocking on what is not a regular
//! file, never following a symlink, never holding more than one capped line per reader.

use super::output::{Output, Stop};
use crate::log::archive::Archive;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Bytes read per call.
pub const CHUNK: usize = 64 * 1024;
/// Longest line held in memory. tend's records are far shorter (`--max-line` is at most
/// 1 MiB); anything longer is not a record tend wrote and is printed in pieces of this
/// size, so memory stays bounded whatever a file holds (a 2 GiB line without `\n`).
pub const LINE_CAP: usize = 2 << 20;

/// Opens `path` read-only without following a symlink and without blocking (a FIFO named
/// like a log file would block `open` forever). `Ok(None)`: it exists but is not a regular
/// file (a FIFO, a device, a directory, a symlink), so it is skipped.
pub fn open_regular(path: &Path) -> io::Result<Option<File>> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        // O_NOFOLLOW on a symlink.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
        Err(e) => return Err(e),
    };
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        if ft.is_fifo() || ft.is_char_device() || ft.is_socket() || ft.is_block_device() {
            eprintln!("tend logs: {}: not a regular file; skipped", path.display());
        }
        return Ok(None);
    }
    Ok(Some(f))
}

/// Cuts a byte stream into lines, holding at most [`LINE_CAP`] bytes of an unfinished one.
#[derive(Default)]
pub struct Lines {
    partial: Vec<u8>,
}

impl Lines {
    /// Prints every complete line of `data`; the unfinished tail is held.
    pub fn feed(&mut self, mut data: &[u8], out: &mut Output<'_>) -> Result<(), Stop> {
        while let Some(p) = memchr::memchr(b'\n', data) {
            if self.partial.is_empty() {
                out.record(&data[..p])?;
            } else {
                self.partial.extend_from_slice(&data[..p]);
                out.record(&self.partial)?;
                self.partial.clear();
            }
            data = &data[p + 1..];
        }
        while self.partial.len() + data.len() > LINE_CAP {
            let take = LINE_CAP - self.partial.len();
            self.partial.extend_from_slice(&data[..take]);
            out.record(&self.partial)?;
            self.partial.clear();
            data = &data[take..];
        }
        self.partial.extend_from_slice(data);
        if self.partial.capacity() > 2 * CHUNK && self.partial.is_empty() {
            // A long line is over: give its memory back.
            self.partial = Vec::new();
        }
        Ok(())
    }

    /// The input ended: an unfinished last line is printed as is.
    pub fn finish(&mut self, out: &mut Output<'_>) -> Result<(), Stop> {
        if !self.partial.is_empty() {
            out.record(&self.partial)?;
            self.partial.clear();
        }
        Ok(())
    }
}

/// Prints every record of one archive. Between the listing and this open, the archive may
/// have been compressed (its `.log` is gone, its `.log.gz` twin is there: the same archive)
/// or pruned (both are gone: skipped).
pub fn print_archive(dir: &Path, a: &Archive, out: &mut Output<'_>) -> Result<(), Stop> {
    // Prefer the .gz when both were listed: the plain file may be on its way out. A `.log`
    // is unlinked only after its `.gz` is in place, so trying `.log` then `.gz` never
    // misses a compression that happens in between.
    let order = if a.gz {
        [(a.gz_name(), true), (a.log_name(), false)]
    } else {
        [(a.log_name(), false), (a.gz_name(), true)]
    };
    for (name, gz) in order {
        let path = dir.join(&name);
        let f = match open_regular(&path) {
            Ok(Some(f)) => f,
            Ok(None) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Stop::io("open", &path, &e));
            }
        };
        let mut reader: Box<dyn Read> = if gz {
            Box::new(crate::log::gzip::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        return copy_lines(&mut reader, &path, out);
    }
    Ok(())
}

/// Feeds all of `r` through [`Lines`], checking for SIGINT/SIGTERM between reads.
fn copy_lines(r: &mut dyn Read, path: &Path, out: &mut Output<'_>) -> Result<(), Stop> {
    let mut buf = vec![0u8; CHUNK];
    let mut lines = Lines::default();
    loop {
        if out.stop.load(Ordering::Relaxed) {
            return Err(Stop::Quiet);
        }
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(Stop::io("read", path, &e));
            }
        };
        lines.feed(&buf[..n], out)?;
    }
    lines.finish(out)
}
