//! The output buffer of one sink: formatted records waiting for their `write`.
//!
//! A `Vec<u8>` that is zero-filled once and then written in place, with its own fill
//! count. `Vec::extend_from_slice` is not inlined at the crate's `opt-level = "s"`, so
//! every record paid four out-of-line calls and four libc `memcpy`s; writing through
//! `copy_from_slice` lets a fixed-size piece (the 30-byte timestamp, the 10-byte stream
//! tag) compile to a few moves. The line itself is copied by [`copy_line`] rather than
//! libc: musl's `memcpy` (the static build) aligns and finishes byte by byte around a
//! `rep movsq`, which doubled tend's user time on 100-byte lines.

use tend_lines::copy_line;

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

    /// The free room after the waiting bytes, at most `max` bytes of it, for the caller to
    /// fill and then [`Batch::commit`].
    pub fn spare(&mut self, max: usize) -> &mut [u8] {
        let end = self.buf.len().min(self.len.saturating_add(max));
        self.buf.get_mut(self.len..end).unwrap_or_default()
    }

    /// Counts `n` bytes written into [`Batch::spare`] as waiting.
    pub fn commit(&mut self, n: usize) {
        self.len = (self.len + n).min(self.buf.len());
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
