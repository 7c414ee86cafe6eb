//! The output buffer of one sink: formatted records waiting for their `write`.
//!
//! A `Vec<u8>` that is zero-filled once and then written in place, with its own fill
//! count. `Vec::extend_from_slice` is not inlined at the crate's `opt-level = "s"`, so
//! every record paid four out-of-line calls and four libc `memcpy`s; writing through
//! `copy_from_slice` lets a fixed-size piece (the 30-byte timestamp, the 10-byte stream
//! tag) compile to a few moves. The line itself is copied by [`copy_line`] rather than
//! libc: musl's `memcpy` (the static build) aligns and finishes byte by byte around a
//! `rep movsq`, which doubled tend's user time on 100-byte lines.

/// Bytes formatted but not yet written.
pub struct Batch {
    buf: Vec<u8>,
    len: usize,
}

impl Batch {
    /// An empty batch with room for `cap` bytes before it first grows.
    pub fn with_capacity(cap: usize) -> Batch {
        Batch {
            buf: vec![0; cap],
            len: 0,
        }
    }

    /// Appends `b`.
    #[inline(always)]
    pub fn put(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        if end > self.buf.len() {
            self.grow(end);
        }
        self.buf[self.len..end].copy_from_slice(b);
        self.len = end;
    }

    /// Appends `n` bytes for the caller to fill, with one capacity check.
    /// Appends a fixed-size piece as one array move (a slice copy is a `memcpy` call at
    /// opt-level "z").
    #[inline(always)]
    pub fn put_array<const N: usize>(&mut self, b: &[u8; N]) {
        if let Some(d) = self.slot(N).first_chunk_mut::<N>() {
            *d = *b;
        }
    }

    #[inline(always)]
    pub fn slot(&mut self, n: usize) -> &mut [u8] {
        let (start, end) = (self.len, self.len + n);
        if end > self.buf.len() {
            self.grow(end);
        }
        self.len = end;
        // `get_mut`, not `[start..end]`: at opt-level "z" the indexing is a call per record.
        // Invariant: `grow` made `buf` at least `end` long, so this is never `None`.
        self.buf.get_mut(start..end).unwrap_or_default()
    }

    /// Appends `prefix`, `line` and, if `newline`, `\n`, with one capacity check.
    #[inline(always)]
    pub fn put_record<const P: usize>(&mut self, prefix: &[u8; P], line: &[u8], newline: bool) {
        let dst = self.slot(P + line.len() + usize::from(newline));
        let Some((head, rest)) = dst.split_first_chunk_mut::<P>() else {
            return; // invariant: the slot holds P bytes and more
        };
        *head = *prefix;
        // `rest` is `line` plus the newline byte if any. Not `split_at_mut`: at opt-level
        // "z" that is an out-of-line call per record.
        if let Some(body) = rest.get_mut(..line.len()) {
            copy_line(body, line);
        }
        if newline && let Some(b) = rest.last_mut() {
            *b = b'\n';
        }
    }

    /// Appends one byte.
    #[inline(always)]
    pub fn push(&mut self, b: u8) {
        if self.len == self.buf.len() {
            self.grow(self.len + 1);
        }
        self.buf[self.len] = b;
        self.len += 1;
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, need: usize) {
        let cap = need.max(self.buf.len() * 2).max(64);
        self.buf.resize(cap, 0);
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// `true` when nothing is waiting.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The waiting bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    /// Forgets everything (the memory stays for the next batch).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps only the first `n` bytes.
    pub fn truncate(&mut self, n: usize) {
        self.len = self.len.min(n);
    }

    /// Removes the first `n` bytes (written already), keeping the rest in order.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.len);
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }
}

/// `dst.copy_from_slice(src)` for slices of equal length, inline for log-line sizes:
/// 16-byte moves, then one overlapping move for the tail; long lines go to `memcpy`.
/// The moves are of fixed-size arrays: at `opt-level = "z"` (the release profile) a
/// slice's `copy_from_slice` is a `memcpy` call even for 16 bytes.
#[inline(always)]
fn copy_line(dst: &mut [u8], src: &[u8]) {
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

    #[test]
    fn put_grow_consume() {
        let mut b = Batch::with_capacity(4);
        assert!(b.is_empty());
        b.put(b"abc");
        b.push(b'd');
        b.put(b"efghij"); // grows past the first capacity
        assert_eq!(b.as_slice(), b"abcdefghij");
        b.consume(4);
        assert_eq!(b.as_slice(), b"efghij");
        b.clear();
        b.push(b'x');
        assert_eq!(b.as_slice(), b"x");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn records_of_every_length_around_the_copy_steps() {
        let src: Vec<u8> = (0..600u32).map(|i| (i % 251) as u8).collect();
        for n in 0..600 {
            let mut b = Batch::with_capacity(8);
            b.put_record(b"ab", &src[..n], n % 2 == 0);
            let mut want = b"ab".to_vec();
            want.extend_from_slice(&src[..n]);
            if n % 2 == 0 {
                want.push(b'\n');
            }
            assert_eq!(b.as_slice(), want, "length {n}");
        }
    }
}
