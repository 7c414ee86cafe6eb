//! Where `tend logs` puts records: stdout directly or through the `-n` ring, after the
//! `--since`/`--stream` filters; and why printing stopped.

use super::timestamp::{Nanos, parse_rfc3339};
use std::collections::VecDeque;
use std::io::{self, Write};
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

impl Stop {
    /// `cannot VERB PATH: why`, for a file of the log directory.
    pub fn io(verb: &str, path: &std::path::Path, e: &io::Error) -> Stop {
        Stop::Fail(format!(
            "cannot {verb} {}: {}",
            path.display(),
            crate::sys::io_msg(e)
        ))
    }
}

/// Where records go: straight to stdout, or into the `-n` ring first.
pub struct Output<'a> {
    /// Buffered stdout.
    pub w: io::BufWriter<io::StdoutLock<'a>>,
    /// `-n N`: the last N records seen so far.
    pub(super) ring: Option<(VecDeque<Vec<u8>>, usize)>,
    pub(super) filter: Filter,
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
    pub(super) fn release(&mut self) -> Result<(), Stop> {
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
pub(super) struct Filter {
    pub(super) since: Option<Nanos>,
    pub(super) stream: Option<Vec<u8>>,
    /// The first record has been checked for the fields the filters need.
    pub(super) checked: bool,
    /// Verdict of the last record that had a timestamp (untimed lines follow it).
    pub(super) last: bool,
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
