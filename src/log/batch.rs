//! The output buffer of one sink: formatted records waiting for their `write`.
//!
//! A `Vec<u8>` that is zero-filled once and then written in place, with its own fill
//! count. `Vec::extend_from_slice` is not inlined at the crate's `opt-level = "s"`, so
//! every record paid four out-of-line calls and four libc `memcpy`s; writing through
//! `copy_from_slice` lets a fixed-size piece (the 30-byte timestamp, the 10-byte stream
//! tag) compile to a few moves, leaving one `memcpy` per record, for the line itself.

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
    #[inline(always)]
    pub fn slot(&mut self, n: usize) -> &mut [u8] {
        let (start, end) = (self.len, self.len + n);
        if end > self.buf.len() {
            self.grow(end);
        }
        self.len = end;
        &mut self.buf[start..end]
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
}
