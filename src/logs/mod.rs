//! `tend logs`: prints a log directory's records, oldest first, across archives (gzip too)
//! and `current`; `-f` follows `current` across rotations (see [`follow`]).
//!
//! Reading never takes the `lock` and never writes: the writer is never slowed down.

mod follow;
mod output;
mod read;
pub mod timestamp;

use crate::sys::io_msg;
use output::{Filter, Output, Stop};
use read::print_archive;
use std::collections::VecDeque;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use timestamp::{Nanos, parse_rfc3339};

/// What `tend logs` prints, resolved from its flags.
pub struct LogsOptions {
    /// The log directory.
    pub dir: PathBuf,
    /// `-f`: follow `current` across rotations.
    pub follow: bool,
    /// `-n N`: only the last N records.
    pub lines: Option<usize>,
    /// `--since`: only records at or after this time.
    pub since: Option<Nanos>,
    /// `--stream`: only records of this stream (`stdout` or `stderr`).
    pub stream: Option<Vec<u8>>,
}

/// Prints the records of `opts.dir`; returns the exit code (errors go to stderr).
pub fn print_dir(opts: LogsOptions) -> i32 {
    let dir = opts.dir;
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
        ring: opts
            .lines
            .map(|n| (VecDeque::with_capacity(n.min(4096)), n)),
        filter: Filter {
            since: opts.since,
            stream: opts.stream,
            checked: false,
            last: true,
        },
        stop,
    };
    match print(&dir, opts.follow, &mut out) {
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

/// `--since`: RFC 3339, or a duration ago.
pub fn parse_since(s: &str) -> Result<Nanos, String> {
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
pub fn resolve(name: &str, root: &Path) -> Result<PathBuf, String> {
    if name.contains('/') {
        return Ok(PathBuf::from(name));
    }
    if !crate::name::is_valid(name) {
        return Err(format!(
            "'{name}' is not a service name (expected {}, or a path containing '/')",
            crate::name::RULE
        ));
    }
    let id = crate::log::layout::Identity::from_env().map_err(|e| {
        format!("cannot find the log directory of '{name}': {e} (give the directory's path instead, e.g. /data/logs/NS/APP/POD/{name})")
    })?;
    Ok(id.service_dir(root, name))
}

/// The whole job: archives, then `current`, then (with `-f`) following.
fn print(dir: &Path, follow_on: bool, out: &mut Output<'_>) -> Result<(), Stop> {
    let snap = follow::snapshot(dir)?;
    let since = out.filter.since;
    for a in &snap.archives {
        // An archive is named by its rotation time, at or after its newest record.
        if since.is_some_and(|s| a.ns < s) {
            continue;
        }
        print_archive(dir, a, out)?;
    }
    let mut cur = snap.current;
    if let Some(c) = &mut cur {
        while c.read_available(out)? > 0 {}
    }
    out.release()?;
    out.w.flush()?;
    if follow_on {
        follow::follow(dir, cur, snap.current_id, &snap.archives, out)?;
    }
    Ok(())
}
