//! `tend logs`: prints a log directory's records, oldest first, across archives (gzip too)
//! and `current`; `-f` follows `current` across rotations (see [`super::follow`]).
//!
//! Reading never takes the `lock` and never writes: the writer is never slowed down.

use super::follow;
use super::timestamp::{Nanos, parse_archive_stem, parse_rfc3339};
use crate::cli::{EXIT_USAGE, LogsArgs, log_root};
use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why printing stopped early.
pub enum Stop {
    /// The reader went away (EPIPE) or we were asked to stop (SIGINT/SIGTERM): exit 0.
    Quiet,
    /// An error for stderr, exit 1.
    Fail(String),
}

impl From<io::Error> for Stop {
    fn from(e: io::Error) -> Stop {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Stop::Quiet
        } else {
            Stop::Fail(format!("cannot write output: {e}"))
        }
    }
}

/// `tend logs …`.
pub fn logs_job(args: LogsArgs) -> i32 {
    let usage = |m: String| {
        eprintln!("tend logs: {m}");
        EXIT_USAGE
    };
    let since = match args.since.as_deref().map(parse_since).transpose() {
        Ok(s) => s,
        Err(e) => return usage(e),
    };
    let stream = match args.stream.as_deref() {
        None => None,
        Some(s @ ("stdout" | "stderr")) => Some(s.as_bytes().to_vec()),
        Some(s) => {
            return usage(format!(
                "--stream: '{s}' is not a stream (expected stdout or stderr)"
            ));
        }
    };
    let dir = match resolve(&args.name, args.log_root.as_deref()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("tend logs: {e}");
            return 1;
        }
    };
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            eprintln!(
                "tend logs: no log directory at {} (not a directory)",
                dir.display()
            );
            return 1;
        }
        Err(e) => {
            eprintln!(
                "tend logs: no log directory at {} ({})",
                dir.display(),
                io_msg(&e)
            );
            return 1;
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // Without the handler the default action still ends us, only less quietly.
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    let stdout = io::stdout();
    let mut out = Output {
        w: io::BufWriter::with_capacity(64 * 1024, stdout.lock()),
        ring: args
            .lines
            .map(|n| (VecDeque::with_capacity(n.min(4096)), n)),
        filter: Filter {
            since,
            stream,
            checked: false,
            last: true,
        },
        stop,
    };
    match print(&dir, args.follow, &mut out) {
        Ok(()) | Err(Stop::Quiet) => {
            let _ = out.w.flush();
            0
        }
        Err(Stop::Fail(e)) => {
            let _ = out.w.flush();
            eprintln!("tend logs: {e}");
            1
        }
    }
}

/// An io::Error's message without the `(os error N)` suffix.
pub fn io_msg(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(p) => s[..p].to_owned(),
        None => s,
    }
}

/// `--since`: RFC 3339, or a duration ago.
fn parse_since(s: &str) -> Result<Nanos, String> {
    if let Some(t) = parse_rfc3339(s.trim().as_bytes()) {
        return Ok(t);
    }
    let d = crate::units::parse_duration(s).map_err(|_| {
        format!("--since: '{s}' is not a time (expected RFC 3339 such as 2026-11-22T22:30:01Z, or a duration ago such as 10m)")
    })?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as Nanos);
    Ok(now - d.as_nanos() as Nanos)
}

/// NAME with a `/` is a directory; otherwise `<log-root>/<ns>/<app>/<pod>/<NAME>`.
fn resolve(name: &str, root: Option<&str>) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    let valid = name.len() <= 253
        && name
            .bytes()
            .enumerate()
            .all(|(i, b)| b.is_ascii_alphanumeric() || (i > 0 && matches!(b, b'.' | b'_' | b'-')));
    if !valid || name.is_empty() {
        return Err(format!(
            "'{name}' is not a service name (expected [A-Za-z0-9][A-Za-z0-9._-]*, or a path containing '/')"
        ));
    }
    let id = crate::log::layout::Identity::from_env().map_err(|e| {
        format!("cannot find the log directory of '{name}': {e} (give the directory's path instead, e.g. /data/logs/NS/APP/POD/{name})")
    })?;
    Ok(log_root(root)
        .join(id.namespace)
        .join(id.app)
        .join(id.pod)
        .join(name))
}

/// Where records go: straight to stdout, or into the `-n` ring first.
pub struct Output<'a> {
    /// Buffered stdout.
    pub w: io::BufWriter<io::StdoutLock<'a>>,
    /// `-n N`: the last N records seen so far.
    ring: Option<(VecDeque<Vec<u8>>, usize)>,
    filter: Filter,
    /// Set by SIGINT/SIGTERM.
    pub stop: Arc<AtomicBool>,
}

impl Output<'_> {
    /// One complete record (without its newline).
    pub fn record(&mut self, line: &[u8]) -> Result<(), Stop> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(Stop::Quiet);
        }
        if !self.filter.pass(line)? {
            return Ok(());
        }
        match &mut self.ring {
            Some((ring, n)) => {
                if *n == 0 {
                    return Ok(());
                }
                // Reuse the oldest line's allocation once the ring is full.
                let mut buf = if ring.len() >= *n {
                    ring.pop_front().unwrap_or_default()
                } else {
                    Vec::new()
                };
                buf.clear();
                buf.extend_from_slice(line);
                ring.push_back(buf);
            }
            None => {
                self.w.write_all(line)?;
                self.w.write_all(b"\n")?;
            }
        }
        Ok(())
    }

    /// Ends the `-n` phase: prints the ring; later records are printed as they come.
    fn release(&mut self) -> Result<(), Stop> {
        if let Some((ring, _)) = self.ring.take() {
            for l in ring {
                self.w.write_all(&l)?;
                self.w.write_all(b"\n")?;
            }
        }
        Ok(())
    }
}

/// `--since` and `--stream`.
struct Filter {
    since: Option<Nanos>,
    stream: Option<Vec<u8>>,
    /// The first record has been checked for the fields the filters need.
    checked: bool,
    /// Verdict of the last record that had a timestamp (untimed lines follow it).
    last: bool,
}

impl Filter {
    fn pass(&mut self, line: &[u8]) -> Result<bool, Stop> {
        if self.since.is_none() && self.stream.is_none() {
            return Ok(true);
        }
        let (time, stream) = fields(line);
        if !self.checked {
            self.checked = true;
            if self.since.is_some() && time.is_none() {
                return Err(Stop::Fail(
                    "--since needs timestamped records (cri, json or ts), but this log's records have no timestamp (plain format)".into(),
                ));
            }
            if self.stream.is_some() && stream.is_none() {
                return Err(Stop::Fail(
                    "--stream needs records tagged by stream (cri or json), but this log's records have none (ts or plain format)".into(),
                ));
            }
        }
        let Some(t) = time else { return Ok(self.last) };
        let ok = self.since.is_none_or(|s| t >= s)
            && self
                .stream
                .as_deref()
                .is_none_or(|want| stream == Some(want));
        self.last = ok;
        Ok(ok)
    }
}

/// A record's timestamp and stream: `cri` (`TIME STREAM P|F …`), `ts` (`TIME …`), or
/// `json` (`"time"` and `"stream"` keys). Plain records have neither.
fn fields(line: &[u8]) -> (Option<Nanos>, Option<&[u8]>) {
    if line.first() == Some(&b'{') {
        return (
            json_str(line, b"\"time\":\"").and_then(parse_rfc3339),
            json_str(line, b"\"stream\":\""),
        );
    }
    let mut words = line.splitn(4, |&b| b == b' ');
    let Some(t) = words.next().and_then(parse_rfc3339) else {
        return (None, None);
    };
    let stream = match (words.next(), words.next()) {
        (Some(s @ (b"stdout" | b"stderr")), Some(b"P" | b"F")) => Some(s),
        _ => None,
    };
    (Some(t), stream)
}

/// The value of a string field in a JSON object written by tend. Inside JSON strings every
/// `"` is escaped, so `"key":"` can only match a real key.
fn json_str<'a>(line: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(line, key)? + key.len();
    let len = memchr::memchr(b'"', &line[at..])?;
    Some(&line[at..at + len])
}

/// An archive found in a listing: its name without `.log[.gz]`, and which files exist.
#[derive(Clone, Debug)]
pub struct Archive {
    /// `@<time>`.
    pub stem: String,
    /// `@<time>.log` exists.
    pub plain: bool,
    /// `@<time>.log.gz` exists.
    pub gz: bool,
}

/// Every archive of `dir`, oldest first.
pub fn list_archives(dir: &Path) -> Result<Vec<Archive>, Stop> {
    let mut map: BTreeMap<String, Archive> = BTreeMap::new();
    let rd = std::fs::read_dir(dir)
        .map_err(|e| Stop::Fail(format!("cannot list {}: {}", dir.display(), io_msg(&e))))?;
    for ent in rd.flatten() {
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if !name.starts_with('@') {
            continue;
        }
        let (stem, gz) = if let Some(s) = name.strip_suffix(".log.gz") {
            (s, true)
        } else if let Some(s) = name.strip_suffix(".log") {
            (s, false)
        } else {
            continue; // e.g. a compression in progress under a temporary name
        };
        let a = map.entry(stem.to_owned()).or_insert_with(|| Archive {
            stem: stem.to_owned(),
            plain: false,
            gz: false,
        });
        if gz {
            a.gz = true;
        } else {
            a.plain = true;
        }
    }
    Ok(map.into_values().collect())
}

/// Opens a file below the log directory read-only, never following a symlink.
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// (dev, ino) of an open file or a path: how a rotation is recognised.
pub fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

/// Prints every record of one archive; a vanished archive (pruned by retention meanwhile)
/// is skipped, one compressed meanwhile is read from its `.gz`.
pub fn print_archive(dir: &Path, a: &Archive, out: &mut Output<'_>) -> Result<(), Stop> {
    let gz_path = dir.join(format!("{}.log.gz", a.stem));
    let log_path = dir.join(format!("{}.log", a.stem));
    // Prefer the .gz when both exist: the plain file may be on its way out.
    let mut order = vec![];
    if a.gz {
        order.push((gz_path.clone(), true));
    }
    order.push((log_path, false));
    if !a.gz {
        order.push((gz_path, true));
    }
    for (path, gz) in order {
        let f = match open_nofollow(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Stop::Fail(format!(
                    "cannot open {}: {}",
                    path.display(),
                    io_msg(&e)
                )));
            }
        };
        let reader: Box<dyn Read> = if gz {
            Box::new(crate::log::gzip::GzDecoder::new(f))
        } else {
            Box::new(f)
        };
        let mut r = BufReader::with_capacity(64 * 1024, reader);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = r
                .read_until(b'\n', &mut line)
                .map_err(|e| Stop::Fail(format!("cannot read {}: {e}", path.display())))?;
            if n == 0 {
                return Ok(());
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            out.record(&line)?;
        }
    }
    Ok(())
}

/// The whole job: archives, then `current`, then (with `-f`) following.
fn print(dir: &Path, follow_on: bool, out: &mut Output<'_>) -> Result<(), Stop> {
    let snap = follow::snapshot(dir)?;
    let since = out.filter.since;
    for a in &snap.archives {
        // An archive is named by its rotation time, at or after its newest record.
        if let (Some(s), Some(t)) = (since, parse_archive_stem(&a.stem))
            && t < s
        {
            continue;
        }
        print_archive(dir, a, out)?;
    }
    let mut cur = snap.current;
    if let Some(c) = &mut cur {
        c.read_available(out)?;
    }
    out.release()?;
    out.w.flush()?;
    if follow_on {
        follow::follow(dir, cur, &snap.archives, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_fields() {
        let t = parse_rfc3339(b"2026-11-22T22:30:01.5Z");
        assert_eq!(
            fields(b"2026-11-22T22:30:01.5Z stdout F hi there"),
            (t, Some(&b"stdout"[..]))
        );
        assert_eq!(
            fields(b"2026-11-22T22:30:01.5Z stderr P x"),
            (t, Some(&b"stderr"[..]))
        );
        assert_eq!(
            fields(b"2026-11-22T22:30:01.5Z stdout is a word"),
            (t, None)
        );
        assert_eq!(fields(b"hello"), (None, None));
        let j = br#"{"log":"a \"time\":\"x\" \"stream\":\"stderr\"\n","stream":"stdout","time":"2026-11-22T22:30:01.5Z"}"#;
        assert_eq!(fields(j), (t, Some(&b"stdout"[..])));
    }
}
