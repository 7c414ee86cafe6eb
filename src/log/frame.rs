//! Bytes to records: line splitting, `--max-line` pieces, final partial line at EOF.
//!
//! A [`Framer`] belongs to one stream. Records borrow the caller's read buffer where they
//! can; only a line that spans two reads is copied, into the carry buffer (capacity
//! `max_line`, reused), so there is no allocation per line.

/// Finds `\n`. On 100-byte lines memchr's own per-call CPU dispatch was a third of the
/// search (callgrind), so the AVX2 searcher is picked once here when the CPU has it.
#[derive(Clone, Copy)]
struct Newline {
    #[cfg(target_arch = "x86_64")]
    avx2: Option<memchr::arch::x86_64::avx2::memchr::One>,
}

impl Newline {
    fn new() -> Newline {
        Newline {
            #[cfg(target_arch = "x86_64")]
            avx2: memchr::arch::x86_64::avx2::memchr::One::new(b'\n'),
        }
    }

    #[inline(always)]
    fn find(&self, hay: &[u8]) -> Option<usize> {
        #[cfg(target_arch = "x86_64")]
        if let Some(one) = &self.avx2 {
            return one.find(hay);
        }
        memchr::memchr(b'\n', hay)
    }
}

/// One record: a whole line (without its `\n`) or one piece of a split line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The bytes of the line or piece, never including the `\n`.
    pub line: &'a [u8],
    /// `true` for a `P` piece: more of the same line follows.
    pub partial: bool,
    /// `false` when the line ended without `\n` (EOF, or a split closed early).
    pub newline: bool,
}

/// Cuts one stream's bytes into records.
pub struct Framer {
    newline: Newline,
    carry: Vec<u8>,
    max_line: usize,
    in_split: bool,
}

impl Framer {
    /// A framer splitting lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Framer {
        Framer {
            newline: Newline::new(),
            carry: Vec::with_capacity(max_line),
            max_line,
            in_split: false,
        }
    }

    /// `true` between a `P` piece and its `F` piece: the other stream must wait.
    pub fn in_split(&self) -> bool {
        self.in_split
    }

    /// Bytes of an unfinished line held back.
    #[cfg(test)]
    pub fn carried(&self) -> usize {
        self.carry.len()
    }

    /// Frames `data`, calling `emit` for every record it completes.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(Record<'_>)) {
        let max = self.max_line;
        if !self.carry.is_empty() {
            let room = max - self.carry.len();
            match self.newline.find(&data[..data.len().min(room + 1)]) {
                Some(i) if i <= room => {
                    self.carry.extend_from_slice(&data[..i]);
                    self.in_split = false;
                    emit(full(&self.carry, true));
                    self.carry.clear();
                    data = &data[i + 1..];
                }
                _ if data.len() > room => {
                    // The carry plus `room` more bytes make a full piece and more follows.
                    self.carry.extend_from_slice(&data[..room]);
                    self.in_split = true;
                    emit(piece(&self.carry));
                    self.carry.clear();
                    data = &data[room..];
                }
                _ => {
                    self.carry.extend_from_slice(data);
                    return;
                }
            }
        }
        while let Some(i) = self.newline.find(data) {
            let mut line = &data[..i];
            while line.len() > max {
                self.in_split = true;
                emit(piece(&line[..max]));
                line = &line[max..];
            }
            self.in_split = false;
            emit(full(line, true));
            data = &data[i + 1..];
        }
        while data.len() > max {
            self.in_split = true;
            emit(piece(&data[..max]));
            data = &data[max..];
        }
        // Exactly `max` bytes may wait here: whether they end the line is not known yet.
        self.carry.extend_from_slice(data);
    }

    /// For `plain`, whose output is its input: cuts `data` into what must be framed first
    /// (through the first `\n` while a line is carried over or split), the whole lines
    /// after it, which can be written as they are, and the rest, framed after them.
    pub fn plain_parts<'a>(&self, data: &'a [u8]) -> (&'a [u8], &'a [u8], &'a [u8]) {
        let head = if self.carry.is_empty() && !self.in_split {
            0
        } else {
            match self.newline.find(data) {
                Some(i) => i + 1,
                None => return (data, &[], &[]),
            }
        };
        let (head, after) = data.split_at(head);
        match memchr::memrchr(b'\n', after) {
            Some(i) => {
                let (lines, rest) = after.split_at(i + 1);
                (head, lines, rest)
            }
            None => (head, &[], after),
        }
    }

    /// Emits the unfinished line, if any, as a final record without newline (EOF, or a
    /// split closed early so the other stream can proceed).
    pub fn finish(&mut self, emit: &mut impl FnMut(Record<'_>)) {
        if !self.carry.is_empty() || self.in_split {
            self.in_split = false;
            emit(full(&self.carry, false));
            self.carry.clear();
        }
    }
}

fn full(line: &[u8], newline: bool) -> Record<'_> {
    Record {
        line,
        partial: false,
        newline,
    }
}

fn piece(line: &[u8]) -> Record<'_> {
    Record {
        line,
        partial: true,
        newline: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, chunks: &[&[u8]]) -> Vec<(String, char)> {
        let mut f = Framer::new(max);
        let mut out = Vec::new();
        let mut emit = |r: Record<'_>| {
            let tag = if r.partial {
                'P'
            } else if r.newline {
                'F'
            } else {
                'E'
            };
            out.push((String::from_utf8_lossy(r.line).into_owned(), tag));
        };
        for c in chunks {
            f.feed(c, &mut emit);
        }
        f.finish(&mut emit);
        out
    }

    fn v(items: &[(&str, char)]) -> Vec<(String, char)> {
        items.iter().map(|(s, c)| (s.to_string(), *c)).collect()
    }

    #[test]
    fn lines_and_eof() {
        assert_eq!(
            run(16, &[b"a\nbb\nccc"]),
            v(&[("a", 'F'), ("bb", 'F'), ("ccc", 'E')])
        );
        assert_eq!(
            run(16, &[b"a", b"b\n", b"\n"]),
            v(&[("ab", 'F'), ("", 'F')])
        );
        assert_eq!(run(16, &[]), v(&[]));
    }

    #[test]
    fn split_at_max_line_in_any_chunking() {
        let input =
            b"0123456789abcdefXYZ\n0123456789abcdef\nshort\n0123456789abcdef0123456789abcdef";
        let want = v(&[
            ("0123456789abcdef", 'P'),
            ("XYZ", 'F'),
            ("0123456789abcdef", 'F'),
            ("short", 'F'),
            ("0123456789abcdef", 'P'),
            ("0123456789abcdef", 'E'),
        ]);
        for cut1 in 0..input.len() {
            for cut2 in cut1..input.len() {
                let got = run(16, &[&input[..cut1], &input[cut1..cut2], &input[cut2..]]);
                assert_eq!(got, want, "cuts {cut1} {cut2}");
            }
        }
    }

    #[test]
    fn in_split_tracks_p_until_f() {
        let mut f = Framer::new(16);
        let mut n = 0;
        f.feed(&[b'x'; 20], &mut |_| n += 1);
        assert!(f.in_split() && n == 1 && f.carried() == 4);
        f.feed(b"y\n", &mut |_| n += 1);
        assert!(!f.in_split() && n == 2);
    }
}
