//! After a crash: find what `current` must lose or gain so it ends with complete records.
//!
//! A crash can tear only the last write, so everything after the last `\n` is a torn
//! record (`cri`, `json`, `ts`): it is cut off and replaced by one marker record. In `plain`
//! the bytes are the app's own and any prefix of a line is a valid prefix, so nothing is
//! cut: the line is ended with `\n` and marked. A last complete record that is a `P` piece (json: a
//! `log` without `\n`) is dangling: its line is closed with an empty `F` (json: `"\n"`).

use super::Stream;
use super::options::Format;
use std::os::fd::OwnedFd;

/// How far back one read looks for a `\n`.
const CHUNK: usize = 64 << 10;

/// What to do to `current` before anything else is written.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Repair {
    /// Truncate to this length (the end of the last complete record), when torn.
    pub truncate_to: Option<u64>,
    /// Bytes cut off.
    pub cut: u64,
    /// `plain` only: the file ends mid-line and needs a `\n`.
    pub newline: bool,
    /// The last record is a dangling `P` piece of this stream: write an empty `F`.
    pub close: Option<Stream>,
}

/// Inspects the end of `current` (`len` bytes) written in `format`.
pub fn inspect(fd: &OwnedFd, len: u64, format: Format) -> nix::Result<Repair> {
    let mut r = Repair::default();
    if len == 0 {
        return Ok(r);
    }
    let end = match last_newline(fd, len)? {
        Some(i) => i + 1,
        None => 0,
    };
    if end < len {
        if format == Format::Plain {
            r.newline = true;
            return Ok(r);
        }
        r.truncate_to = Some(end);
        r.cut = len - end;
    }
    if end == 0 || !matches!(format, Format::Cri | Format::Json) {
        return Ok(r);
    }
    // The last complete record: from the `\n` before it (or the start) to `end - 1`.
    let start = last_newline(fd, end - 1)?.map_or(0, |i| i + 1);
    let line = |from: u64, n: usize| -> nix::Result<Vec<u8>> {
        let mut b = vec![0u8; n];
        let got = nix::sys::uio::pread(fd, &mut b, from as i64)?;
        b.truncate(got);
        Ok(b)
    };
    let rec_len = end - 1 - start;
    r.close = match format {
        // `<30-byte time> stdout P …`
        Format::Cri if rec_len >= 40 => match line(start + 30, 10)?.as_slice() {
            b" stdout P " => Some(Stream::Stdout),
            b" stderr P " => Some(Stream::Stderr),
            _ => None,
        },
        // `…","stream":"stdout","time":"<30>"}`: the log ends before that suffix.
        Format::Json => {
            let tail = line(end - 1 - (rec_len.min(4096)), rec_len.min(4096) as usize)?;
            json_dangling(&tail)
        }
        _ => None,
    };
    Ok(r)
}

/// The stream of a json record (its last bytes, without `\n`) whose `log` does not end
/// with `\n`, i.e. a `P` piece.
fn json_dangling(tail: &[u8]) -> Option<Stream> {
    const SUFFIX_LEN: usize = "\",\"stream\":\"stdout\",\"time\":\"".len() + 30 + 2;
    let body_end = tail.len().checked_sub(SUFFIX_LEN)?;
    let suffix = &tail[body_end..];
    let stream = if suffix.starts_with(b"\",\"stream\":\"stdout\"") {
        Stream::Stdout
    } else if suffix.starts_with(b"\",\"stream\":\"stderr\"") {
        Stream::Stderr
    } else {
        return None;
    };
    let body = &tail[..body_end];
    // `\n` escaped as `\` `n`, the `\` itself not escaped (an odd run of backslashes).
    let ends_nl = body.ends_with(b"\\n")
        && body[..body.len() - 1]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count()
            % 2
            == 1;
    (!ends_nl).then_some(stream)
}

/// Offset of the last `\n` in the first `len` bytes of `fd`.
fn last_newline(fd: &OwnedFd, mut len: u64) -> nix::Result<Option<u64>> {
    let mut buf = vec![0u8; CHUNK];
    while len > 0 {
        let n = (len as usize).min(CHUNK);
        let from = len - n as u64;
        let got = nix::sys::uio::pread(fd, &mut buf[..n], from as i64)?;
        if got < n {
            // The file shrank under us: look again below what is there.
            len = from + got as u64;
            continue;
        }
        if let Some(i) = memchr::memrchr(b'\n', &buf[..n]) {
            return Ok(Some(from + i as u64));
        }
        len = from;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_dangling_piece() {
        let t = "\",\"stream\":\"stdout\",\"time\":\"2026-11-22T22:30:01.123456789Z\"}";
        let rec = |log: &str| format!("{{\"log\":\"{log}{t}").into_bytes();
        assert_eq!(json_dangling(&rec("abc")), Some(Stream::Stdout));
        assert_eq!(json_dangling(&rec("abc\\n")), None);
        // An escaped backslash then `n` is not a newline.
        assert_eq!(json_dangling(&rec("abc\\\\n")), Some(Stream::Stdout));
        assert_eq!(json_dangling(&rec("abc\\\\\\n")), None);
        let e = String::from_utf8(rec("x"))
            .unwrap()
            .replace("stdout", "stderr");
        assert_eq!(json_dangling(e.as_bytes()), Some(Stream::Stderr));
        assert_eq!(json_dangling(b"garbage"), None);
    }
}
