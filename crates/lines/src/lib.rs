//! The log hot path of `tend`: whole lines to prefixed records (`cri`, `ts`).
//!
//! A crate of its own only so that it can be built at `opt-level = 3` while the rest of
//! tend is built at `"z"` for size: an `#[inline]` function is compiled at the opt-level
//! of the crate that calls it, and at `"z"` memchr's searcher and the line copy stay
//! out-of-line calls, one each per log line. Here the search, the prefix and the copy
//! of every line of a read run in one loop with no call per line.

#![forbid(unsafe_code)]

/// What [`prefix_lines`] did: input bytes consumed and output bytes written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Done {
    /// Bytes of `lines` consumed: whole lines, each with its `\n`.
    pub read: usize,
    /// Bytes written at the start of `out`.
    pub wrote: usize,
    /// Where the `\n` of the line it stopped before is, counted from `read`: the caller
    /// frames that line without searching for it again. `None`: no `\n` was left.
    pub next: Option<usize>,
}

/// Finds `\n`, with the AVX2 searcher when the CPU has it (picked once, not per call).
#[derive(Clone, Copy)]
pub struct Newline {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl Default for Newline {
    fn default() -> Newline {
        Newline::new()
    }
}

impl Newline {
    /// Detects the CPU's features once.
    pub fn new() -> Newline {
        Newline {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    /// Position of the first `\n` in `hay`.
    #[inline(always)]
    fn find_inline(&self, hay: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(hay);
        }
        memchr::memchr(b'\n', hay)
    }

    /// Position of the first `\n` in `hay` (one call, the search inside it inlined).
    #[inline(never)]
    pub fn find(&self, hay: &[u8]) -> Option<usize> {
        self.find_inline(hay)
    }
}

/// Writes `prefix`, the line and `\n` into `out` for each whole line at the start of
/// `lines`, stopping before the first line that is longer than `max_line` bytes (without
/// its `\n`), that does not fit in what is left of `out`, or that has no `\n`. The caller
/// frames what is left the slow way (splitting, rotation, flushing) and may call again.
pub fn prefix_lines(
    nl: &Newline,
    prefix: &Prefix,
    lines: &[u8],
    max_line: usize,
    out: &mut [u8],
) -> Done {
    let (mut rest, mut free) = (lines, &mut *out);
    let total = free.len();
    let p = prefix.len;
    let next = loop {
        let Some(i) = nl.find_inline(rest) else {
            break None;
        };
        let need = p + i + 1;
        // All PREFIX_CAP bytes of the prefix are copied (one fixed-size move, no memcpy
        // call); the line then overwrites what lies past `p`.
        if i > max_line || need.max(PREFIX_CAP) > free.len() {
            break Some(i);
        }
        if let Some(head) = free.first_chunk_mut::<PREFIX_CAP>() {
            *head = prefix.bytes;
        }
        // In bounds: `need` <= free.len() was checked, and `i` < rest.len() (a `\n` is there).
        let (rec, tail) = free.split_at_mut(need);
        copy_line(&mut rec[p..p + i], &rest[..i]);
        rec[p + i] = b'\n';
        free = tail;
        rest = &rest[i + 1..];
    };
    Done {
        read: lines.len() - rest.len(),
        wrote: total - free.len(),
        next,
    }
}

/// The longest prefix [`prefix_lines`] writes (`cri`'s timestamp and stream tag).
pub const PREFIX_CAP: usize = 40;

/// The bytes written before each line, at most [`PREFIX_CAP`].
#[derive(Clone, Copy)]
pub struct Prefix {
    bytes: [u8; PREFIX_CAP],
    len: usize,
}

impl Prefix {
    /// The first `len` bytes of `bytes` (at most [`PREFIX_CAP`]).
    pub fn new(bytes: [u8; PREFIX_CAP], len: usize) -> Prefix {
        Prefix {
            bytes,
            len: len.min(PREFIX_CAP),
        }
    }
}

/// `dst.copy_from_slice(src)` for slices of equal length, inline for log-line sizes:
/// 16-byte moves, then one overlapping move for the tail; long lines go to `memcpy`.
/// The moves are of fixed-size arrays: musl's `memcpy` (the static build) aligns and
/// finishes byte by byte around a `rep movsq`, which doubled tend's user time on 100-byte
/// lines, and at `opt-level = "z"` (where [`copy_line`] is also inlined, in tend's batch
/// buffer) even a 16-byte slice copy is a `memcpy` call.
#[inline(always)]
pub fn copy_line(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n != dst.len() || n > 512 {
        dst.copy_from_slice(src);
    } else if n >= 16 {
        // Chunk by chunk without indexing: at opt-level "z" even `&dst[i..]` is a call.
        let (mut d, mut s) = (&mut *dst, src);
        while d.len() > 16 {
            let (Some((dh, dt)), Some((sh, st))) =
                (d.split_first_chunk_mut::<16>(), s.split_first_chunk::<16>())
            else {
                break;
            };
            *dh = *sh;
            (d, s) = (dt, st);
        }
        copy_last::<16>(dst, src);
    } else if n >= 8 {
        if let (Some(d), Some(s)) = (dst.first_chunk_mut::<8>(), src.first_chunk::<8>()) {
            *d = *s;
        }
        copy_last::<8>(dst, src);
    } else {
        for (a, b) in dst.iter_mut().zip(src) {
            *a = *b;
        }
    }
}

/// Copies the last `N` bytes as one array move (both slices hold at least `N`).
#[inline(always)]
fn copy_last<const N: usize>(dst: &mut [u8], src: &[u8]) {
    // `get` and `first_chunk`, not `last_chunk`: at opt-level "z" `last_chunk` (and the
    // `split_at` inside it) stay out-of-line calls, two per record.
    let at = src.len().saturating_sub(N);
    let (d, s) = (dst.get_mut(at..), src.get(at..));
    if let (Some(d), Some(s)) = (
        d.and_then(|d| d.first_chunk_mut::<N>()),
        s.and_then(|s| s.first_chunk::<N>()),
    ) {
        *d = *s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cri() -> Prefix {
        let mut bytes = [b'.'; PREFIX_CAP];
        bytes[30..].copy_from_slice(b" stdout F ");
        Prefix::new(bytes, PREFIX_CAP)
    }

    /// What `prefix_lines` should have written for the lines it consumed.
    fn want(prefix: &[u8], lines: &[u8]) -> Vec<u8> {
        let mut w = Vec::new();
        for l in lines.split_inclusive(|&b| b == b'\n') {
            w.extend_from_slice(prefix);
            w.extend_from_slice(l);
        }
        w
    }

    #[test]
    fn every_line_gets_the_prefix_whatever_its_length() {
        let nl = Newline::new();
        let mut lines = Vec::new();
        for n in 0..600 {
            lines.extend((0..n).map(|i| b'a' + (i % 26) as u8));
            lines.push(b'\n');
        }
        for (prefix, len) in [
            (cri(), PREFIX_CAP),
            (Prefix::new([b'T'; PREFIX_CAP], 28), 28),
        ] {
            let mut out = vec![0; lines.len() * 2 + 600 * PREFIX_CAP];
            let done = prefix_lines(&nl, &prefix, &lines, 1000, &mut out);
            assert_eq!(done.read, lines.len());
            assert_eq!(&out[..done.wrote], want(&prefix.bytes[..len], &lines));
        }
    }

    #[test]
    fn stops_before_a_long_line_a_full_buffer_or_an_unfinished_line() {
        let nl = Newline::new();
        let p = cri();
        let mut out = vec![0; 4096];
        // A line over max_line: the two before it only.
        let done = prefix_lines(&nl, &p, b"a\nbb\ntoo long\nc\n", 4, &mut out);
        assert_eq!(
            done,
            Done {
                read: 5,
                wrote: 2 * 40 + 5,
                next: Some(8)
            }
        );
        // Exactly max_line bytes is not too long.
        let done = prefix_lines(&nl, &p, b"abcd\n", 4, &mut out);
        assert_eq!((done.read, done.next), (5, None));
        // No `\n`: nothing.
        let done = prefix_lines(&nl, &p, b"abc", 4, &mut out);
        assert_eq!(
            done,
            Done {
                read: 0,
                wrote: 0,
                next: None
            }
        );
        // Room for one record and a half: one.
        let done = prefix_lines(&nl, &p, b"0123456789\n0123456789\n", 100, &mut out[..70]);
        assert_eq!(
            done,
            Done {
                read: 11,
                wrote: 51,
                next: Some(10)
            }
        );
        // Room for the record but not the whole fixed-size prefix copy: it stops (the
        // caller's slow path writes it).
        let short = Prefix::new([b'T'; PREFIX_CAP], 28);
        let done = prefix_lines(&nl, &short, b"x\n", 100, &mut out[..35]);
        assert_eq!(
            done,
            Done {
                read: 0,
                wrote: 0,
                next: Some(1)
            }
        );
        // Empty lines are records too.
        let done = prefix_lines(&nl, &p, b"\n\n", 100, &mut out);
        assert_eq!(&out[..done.wrote], want(&p.bytes, b"\n\n"));
    }
}
