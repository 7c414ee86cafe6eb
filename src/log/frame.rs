//! Bytes to records: line splitting, `--max-line` pieces, final partial line at EOF.
//!
//! A [`Framer`] belongs to one stream. Records borrow the caller's read buffer where they
//! can; only a line that spans two reads is copied, into the carry buffer (capacity
//! `max_line`, reused), so there is no allocation per line.

use tend_lines::Newline;

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
    /// Cut pieces at a UTF-8 character boundary (json), not at exactly `max_line` bytes.
    utf8: bool,
}

impl Framer {
    /// A framer splitting lines longer than `max_line` bytes.
    pub fn new(max_line: usize) -> Framer {
        Framer {
            newline: Newline::new(),
            carry: Vec::with_capacity(max_line),
            max_line,
            in_split: false,
            utf8: false,
        }
    }

    /// Cuts pieces at the last UTF-8 character boundary at or before `max_line` (json), so
    /// a valid character is never split between two records.
    pub fn utf8_cuts(mut self, on: bool) -> Framer {
        self.utf8 = on;
        self
    }

    /// The `\n` searcher, for the caller's bulk path.
    pub fn newline(&self) -> Newline {
        self.newline
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

    /// Where to end a piece of `s` (`s.len() > max_line`).
    #[inline(always)]
    fn cut(&self, s: &[u8]) -> usize {
        if self.utf8 {
            utf8_cut(&s[..self.max_line], &s[self.max_line..])
        } else {
            self.max_line
        }
    }

    /// Frames `data`, calling `emit` for every record it completes.
    pub fn feed(&mut self, mut data: &[u8], emit: &mut impl FnMut(Record<'_>)) {
        let max = self.max_line;
        // A UTF-8 cut can leave up to 3 bytes of a piece in the carry: loop until it empties.
        while !self.carry.is_empty() {
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
                    data = &data[room..];
                    let at = if self.utf8 {
                        utf8_cut(&self.carry, data)
                    } else {
                        max
                    };
                    self.in_split = true;
                    emit(piece(&self.carry[..at]));
                    self.carry.drain(..at);
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
                let at = self.cut(line);
                emit(piece(&line[..at]));
                line = &line[at..];
            }
            self.in_split = false;
            emit(full(line, true));
            // Not `&data[i + 1..]`: at opt-level "z" that is a call per line (`i` < len).
            data = data.get(i + 1..).unwrap_or_default();
        }
        while data.len() > max {
            self.in_split = true;
            let at = self.cut(data);
            emit(piece(&data[..at]));
            data = &data[at..];
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

/// Length of `piece` once a character straddling its end is moved to the next piece
/// (`after` holds the bytes that follow, possibly few). Only a character begun in the last
/// 3 bytes and continued after the end is moved, never the whole piece; bytes that cannot
/// be valid UTF-8 stay where they are (they become U+FFFD wherever they land).
#[cold] // once per piece of a long line: kept out of the per-line loop
#[inline(never)]
fn utf8_cut(piece: &[u8], after: &[u8]) -> usize {
    let n = piece.len();
    let cont = |b: u8| b & 0xC0 == 0x80;
    let mut start = n;
    while start > 0 && n - start < 3 && cont(piece[start - 1]) {
        start -= 1;
    }
    let Some(start) = start.checked_sub(1) else {
        return n;
    };
    let need = match piece[start] {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return n, // ASCII, or no lead byte: nothing straddles the end
    };
    let missing = (start + need).saturating_sub(n);
    if start == 0 || missing == 0 {
        return n;
    }
    if after.iter().take(missing).all(|&b| cont(b)) {
        start
    } else {
        n
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

    #[test]
    fn json_cuts_at_a_character_boundary_in_any_chunking() {
        // max 8: "abcdef€" would cut the euro sign (3 bytes at 6..9) after its 2nd byte.
        let input = "abcdef€gh\nxyz😀😀\n".as_bytes();
        let want: Vec<(Vec<u8>, bool)> = vec![
            (b"abcdef".to_vec(), true),
            ("€gh".as_bytes().to_vec(), false),
            ("xyz😀".as_bytes().to_vec(), true),
            ("😀".as_bytes().to_vec(), false),
        ];
        for cut1 in 0..input.len() {
            for cut2 in cut1..input.len() {
                let mut f = Framer::new(8).utf8_cuts(true);
                let mut got = Vec::new();
                for c in [&input[..cut1], &input[cut1..cut2], &input[cut2..]] {
                    f.feed(c, &mut |r| got.push((r.line.to_vec(), r.partial)));
                }
                f.finish(&mut |r| got.push((r.line.to_vec(), r.partial)));
                assert_eq!(got, want, "cuts {cut1} {cut2}");
            }
        }
        // Invalid bytes are not moved: a lead byte followed by ASCII stays in its piece.
        assert_eq!(utf8_cut(b"abcdefg\xe2", b"xy"), 8);
        assert_eq!(utf8_cut(b"abcdefg\xe2", b"\x82"), 7);
        // A piece that is one character's start only is never emptied.
        assert_eq!(utf8_cut(b"\xf0\x9f\x98", b"\x80"), 3);
        // Without utf8_cuts, exactly max_line bytes.
        let mut f = Framer::new(8);
        let mut got = Vec::new();
        f.feed(input, &mut |r| got.push(r.line.len()));
        assert_eq!(got[0], 8);
    }
}
