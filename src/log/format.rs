//! Records to bytes: `cri`, `json`, `ts`, `plain`, with the timestamp formatted once per batch.
//!
//! # A UTF-8 character at a `--max-line` boundary (json)
//!
//! The json framer cuts a split line at the last character boundary at or before
//! `max_line` bytes ([`super::frame::Framer::utf8_cuts`]), so a valid character is never
//! split and valid text is never altered. Each piece is decoded on its own, as
//! `String::from_utf8_lossy` would: only invalid input bytes become U+FFFD. `cri`, `ts` and
//! `plain` cut at exactly `max_line` bytes and write the bytes untouched.
//!
//! # Complete records in json
//!
//! Every json record but a `P` piece ends its `log` with `\n`, as `cri` writes `F`: an
//! unterminated last line (EOF) and a held piece released early for the other stream are
//! complete records, so a reader never joins the next record (of either stream) to them.
//!
//! # Split lines in `ts` and `plain`
//!
//! `ts` writes every piece as its own line with its own timestamp (as s6-log does with an
//! over-long line). `plain` writes the pieces back to back without a newline, so the bytes
//! stay exactly as written; only a final line without `\n` gets one added.

use super::Stream;
use super::batch::Batch;
use super::frame::Record;
use super::options::Format;
use std::time::{SystemTime, UNIX_EPOCH};
use tend_lines::{PREFIX_CAP, Prefix};

/// Length of `2026-11-22T22:30:01.123456789Z`.
const STAMP_LEN: usize = 30;
/// Length of the microsecond form without its `Z`: `2026-11-22T22:30:01.123456`.
const MICROS_LEN: usize = 26;

/// One read batch's timestamp, formatted once as RFC 3339 UTC with nanoseconds.
#[derive(Clone)]
pub struct Stamp {
    text: [u8; STAMP_LEN],
    /// Seconds since the epoch the date part of `text` was computed for.
    secs: i64,
}

impl Default for Stamp {
    fn default() -> Self {
        let mut s = Stamp {
            text: *b"1970-01-01T00:00:00.000000000Z",
            secs: -1,
        };
        s.set(UNIX_EPOCH);
        s
    }
}

impl Stamp {
    /// Takes the wall clock now (`clock_gettime(CLOCK_REALTIME)`).
    pub fn now() -> Stamp {
        let mut s = Stamp::default();
        s.set(SystemTime::now());
        s
    }

    /// Reformats for `t`; the civil date is recomputed only when the second changes.
    pub fn set(&mut self, t: SystemTime) {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = d.as_secs() as i64;
        if secs != self.secs {
            self.secs = secs;
            // invariant: a u64 second count from SystemTime is far inside time's range.
            let dt = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            digits(&mut self.text[0..4], dt.year() as u32);
            digits(&mut self.text[5..7], u8::from(dt.month()) as u32);
            digits(&mut self.text[8..10], dt.day() as u32);
            digits(&mut self.text[11..13], dt.hour() as u32);
            digits(&mut self.text[14..16], dt.minute() as u32);
            digits(&mut self.text[17..19], dt.second() as u32);
        }
        digits(&mut self.text[20..29], d.subsec_nanos());
    }

    /// `2026-11-22T22:30:01.123456789Z`.
    pub fn nanos(&self) -> &[u8; STAMP_LEN] {
        &self.text
    }

    /// `2026-11-22T22:30:01.123456` (the caller appends `Z`).
    fn micros(&self) -> &[u8; MICROS_LEN] {
        // invariant: MICROS_LEN < STAMP_LEN, so the conversion cannot fail.
        self.text.first_chunk().unwrap_or(&[b'0'; MICROS_LEN])
    }
}

/// Writes `v` as zero-padded decimal filling `out`.
fn digits(out: &mut [u8], mut v: u32) {
    for b in out.iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// `ts`: the bytes before a record's text, `2026-11-22T22:30:01.123456Z `.
#[inline(always)]
fn ts_prefix(stamp: &Stamp) -> [u8; MICROS_LEN + 2] {
    let mut prefix = [b' '; MICROS_LEN + 2];
    if let Some((head, tail)) = prefix.split_first_chunk_mut::<MICROS_LEN>() {
        *head = *stamp.micros();
        tail[0] = b'Z';
    }
    prefix
}

/// `cri`: the bytes before a record's text, `2026-11-22T22:30:01.123456789Z stdout F `.
#[inline(always)]
fn cri_prefix(stamp: &Stamp, stream: Stream, partial: bool) -> [u8; PREFIX_CAP] {
    // Array moves, not slice copies: at opt-level "z" those are memcpy calls.
    let mut prefix = [0u8; PREFIX_CAP];
    if let Some((head, tail)) = prefix.split_first_chunk_mut::<STAMP_LEN>() {
        *head = *stamp.nanos();
        if let Some(tail) = tail.first_chunk_mut::<10>() {
            *tail = *match (stream, partial) {
                (Stream::Stdout, false) => b" stdout F ",
                (Stream::Stdout, true) => b" stdout P ",
                (Stream::Stderr, false) => b" stderr F ",
                (Stream::Stderr, true) => b" stderr P ",
            };
        }
    }
    prefix
}

/// The bytes before the text of a whole line, for formats whose record of a whole line
/// is just prefix, text and `\n` (`cri`, `ts`): what [`render`] writes before each of one
/// read's whole lines, so they can be written in bulk ([`tend_lines::prefix_lines`]).
pub fn whole_line_prefix(format: Format, stamp: &Stamp, stream: Stream) -> Option<Prefix> {
    match format {
        Format::Cri => Some(Prefix::new(
            cri_prefix(stamp, stream, false),
            STAMP_LEN + 10,
        )),
        Format::Ts => {
            let mut bytes = [0; PREFIX_CAP];
            if let Some(head) = bytes.first_chunk_mut::<{ MICROS_LEN + 2 }>() {
                *head = ts_prefix(stamp);
            }
            Some(Prefix::new(bytes, MICROS_LEN + 2))
        }
        Format::Plain | Format::Json => None,
    }
}

/// Appends one record in `format` to `out`.
#[inline(always)] // the per-record hot path: one call per log line otherwise
pub fn render(format: Format, stamp: &Stamp, stream: Stream, rec: Record<'_>, out: &mut Batch) {
    match format {
        Format::Plain => out.put_record(&[], rec.line, !rec.partial),
        Format::Ts => out.put_record(&ts_prefix(stamp), rec.line, true),
        Format::Cri => out.put_record(&cri_prefix(stamp, stream, rec.partial), rec.line, true),
        Format::Json => {
            out.put_array(b"{\"log\":\"");
            json_escape(rec.line, out);
            // Every record but a `P` piece is complete (as `cri` writes `F`), so a record of
            // the other stream is never joined to it: an unterminated line gets `\n` too.
            if !rec.partial {
                out.put_array(b"\\n");
            }
            out.put_array(match stream {
                Stream::Stdout => b"\",\"stream\":\"stdout\",\"time\":\"",
                Stream::Stderr => b"\",\"stream\":\"stderr\",\"time\":\"",
            });
            out.put_array(stamp.nanos());
            out.put_array(b"\"}\n");
        }
    }
}

/// Appends a marker record written by tend itself (stream stderr) in `format`.
pub fn render_marker(format: Format, stamp: &Stamp, text: &str, out: &mut Batch) {
    let rec = Record {
        line: text.as_bytes(),
        partial: false,
        newline: true,
    };
    render(format, stamp, Stream::Stderr, rec, out);
}

/// JSON string body of `s`: valid UTF-8 kept, each invalid sequence one U+FFFD.
fn json_escape(s: &[u8], out: &mut Batch) {
    for chunk in s.utf8_chunks() {
        escape_valid(chunk.valid().as_bytes(), out);
        if !chunk.invalid().is_empty() {
            out.put("\u{FFFD}".as_bytes());
        }
    }
}

/// Whether `s` holds `"`, `\\` or a control character. Eight bytes at a time (SWAR): the
/// release profile's opt-level "z" does not vectorise a byte loop.
#[inline(always)]
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // Bytes of `v` below `n` (n <= 128) have their high bit set in the result, exactly.
    let below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGH;
    let mut rest = s;
    let mut hit = 0;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        let v = u64::from_ne_bytes(*chunk);
        hit |= below(v, 0x20) | below(v ^ (ONES * 0x22), 1) | below(v ^ (ONES * 0x5c), 1);
        rest = tail;
    }
    hit != 0 || rest.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Escapes `"`, `\` and control characters; copies runs of other bytes at once.
fn escape_valid(s: &[u8], out: &mut Batch) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    // Fast path: most lines need no escaping.
    if !needs_escape(s) {
        out.put_record(&[], s, false); // the line copy that stays inline at opt-level "z"
        return;
    }
    let mut start = 0;
    for (i, &b) in s.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        out.put(&s[start..i]);
        start = i + 1;
        match b {
            b'"' => out.put(b"\\\""),
            b'\\' => out.put(b"\\\\"),
            b'\n' => out.put(b"\\n"),
            b'\t' => out.put(b"\\t"),
            b'\r' => out.put(b"\\r"),
            _ => out.put(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[(b >> 4) as usize],
                HEX[(b & 15) as usize],
            ]),
        }
    }
    out.put(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stream::{Stderr, Stdout};
    use std::time::Duration;

    fn stamp() -> Stamp {
        let mut s = Stamp::default();
        // 2026-11-22T22:30:01.123456789Z
        s.set(UNIX_EPOCH + Duration::new(1_795_386_601, 123_456_789));
        s
    }

    fn one(format: Format, stream: Stream, line: &[u8], partial: bool, newline: bool) -> String {
        let mut out = Batch::with_capacity(16);
        render(
            format,
            &stamp(),
            stream,
            Record {
                line,
                partial,
                newline,
            },
            &mut out,
        );
        String::from_utf8(out.as_slice().to_vec()).unwrap()
    }

    #[test]
    fn stamp_text() {
        assert_eq!(stamp().nanos(), b"2026-11-22T22:30:01.123456789Z");
        let mut s = Stamp::default();
        assert_eq!(s.nanos(), b"1970-01-01T00:00:00.000000000Z");
        s.set(UNIX_EPOCH + Duration::new(951_782_400, 5)); // leap day 2000
        assert_eq!(s.nanos(), b"2000-02-29T00:00:00.000000005Z");
    }

    #[test]
    fn each_format() {
        let cases = [
            (
                Format::Cri,
                Stdout,
                "hello",
                false,
                true,
                "2026-11-22T22:30:01.123456789Z stdout F hello\n",
            ),
            (
                Format::Cri,
                Stderr,
                "hel",
                true,
                false,
                "2026-11-22T22:30:01.123456789Z stderr P hel\n",
            ),
            (
                Format::Json,
                Stdout,
                "hello",
                false,
                true,
                "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T22:30:01.123456789Z\"}\n",
            ),
            (
                Format::Ts,
                Stdout,
                "hello",
                false,
                true,
                "2026-11-22T22:30:01.123456Z hello\n",
            ),
            (Format::Plain, Stdout, "hello", false, false, "hello\n"),
            (Format::Plain, Stdout, "hel", true, false, "hel"),
        ];
        for (format, stream, line, partial, newline, want) in cases {
            assert_eq!(one(format, stream, line.as_bytes(), partial, newline), want);
        }
    }

    #[test]
    fn needs_escape_finds_every_special_byte_at_every_position() {
        for len in 0..20 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut line = vec![b'a'; len];
                    line[pos] = b;
                    let want = b < 0x20 || b == b'"' || b == b'\\';
                    assert_eq!(needs_escape(&line), want, "{len} {pos} {b}");
                }
            }
        }
        assert!(!needs_escape(b""));
    }

    #[test]
    fn json_escapes_and_replaces() {
        let s = one(
            Format::Json,
            Stderr,
            b"a\"b\\c\td\x01\x1f\xff\xe2\x82",
            false,
            false,
        );
        assert_eq!(
            s,
            "{\"log\":\"a\\\"b\\\\c\\td\\u0001\\u001f\u{FFFD}\u{FFFD}\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-22T22:30:01.123456789Z\"}\n"
        );
        // Invalid input (a euro sign's first byte, then orphaned continuation bytes): one
        // U+FFFD per invalid sequence.
        let a = one(Format::Json, Stdout, b"ab\xe2", true, false);
        let b = one(Format::Json, Stdout, b"\x82\xacc", false, true);
        assert!(a.starts_with("{\"log\":\"ab\u{FFFD}\""), "{a}");
        assert!(b.starts_with("{\"log\":\"\u{FFFD}\u{FFFD}c\\n\""), "{b}");
        // An unterminated last line is a complete record: `\n` like any `F`.
        let eof = one(Format::Json, Stdout, b"end", false, false);
        assert!(eof.starts_with("{\"log\":\"end\\n\""), "{eof}");
    }
}
