//! Decompressor: a streaming `Read` over gzip members (one after another, like `gzip -d`),
//! any deflate block type. Corrupt input is an `InvalidData` error, never a panic; memory
//! is a 128 KiB window and a 32 KiB input buffer whatever the input.

use super::{CL_ORDER, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA, crc32, fixed_lit_lengths};
use std::io::{self, Read};

const WSIZE: usize = 1 << 15;
/// Output window: what is not yet read plus at least WSIZE of history for back-references.
const CAP: usize = 4 * WSIZE;
const MAX_MATCH: usize = 258;
/// Codes up to this long decode with one table look-up; longer ones bit by bit.
const FAST: u32 = 9;

/// Where the decoder is in the gzip stream.
#[derive(Clone, Copy, PartialEq)]
enum State {
    /// A member header is next; `true` if it is not the first (end of input is fine there).
    Header(bool),
    /// A block header is next.
    Block,
    /// Inside a stored block with this many bytes left.
    Stored(u16),
    /// Inside a Huffman-coded block.
    Codes,
    /// The final block ended: the CRC and size trailer is next.
    Trailer,
    Done,
}

/// A canonical Huffman decoding table.
struct Huffman {
    count: [u16; 16],
    /// Symbols in code order.
    sym: [u16; 288],
    /// Low FAST bits of the input → `len << 9 | symbol`, 0 when the code is longer.
    fast: [u16; 1 << FAST],
}

impl Huffman {
    fn new(lens: &[u8]) -> io::Result<Huffman> {
        let mut h = Huffman {
            count: [0; 16],
            sym: [0; 288],
            fast: [0; 1 << FAST],
        };
        for &l in lens {
            h.count[l as usize] += 1;
        }
        h.count[0] = 0;
        let mut next = [0u32; 16];
        let mut code = 0u32;
        let mut offs = [0u16; 16];
        let mut left = 1i32;
        for len in 1..16 {
            code = (code + h.count[len - 1] as u32) << 1;
            next[len] = code;
            left = (left << 1) - h.count[len] as i32;
            if left < 0 {
                return Err(bad("over-subscribed Huffman code"));
            }
            offs[len] = if len == 1 {
                0
            } else {
                offs[len - 1] + h.count[len - 1]
            };
        }
        // Incomplete codes are allowed; an unassigned code fails when met.
        for (s, &l) in lens.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let l = l as usize;
            h.sym[offs[l] as usize] = s as u16;
            offs[l] += 1;
            if l as u32 <= FAST {
                let rev = (next[l].reverse_bits() >> (32 - l)) as usize;
                let mut i = rev;
                while i < 1 << FAST {
                    h.fast[i] = (l as u16) << 9 | s as u16;
                    i += 1 << l;
                }
            }
            next[l] += 1;
        }
        Ok(h)
    }

    /// Decodes one symbol from the low bits of `bits`: (symbol, code length).
    fn decode(&self, bits: u64) -> io::Result<(usize, u32)> {
        let e = self.fast[(bits & ((1 << FAST) - 1)) as usize];
        if e != 0 {
            return Ok(((e & 0x1ff) as usize, (e >> 9) as u32));
        }
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..16 {
            code |= ((bits >> (len - 1)) & 1) as i32;
            let count = self.count[len] as i32;
            if code - first < count {
                return Ok((
                    self.sym[(index + code - first) as usize] as usize,
                    len as u32,
                ));
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(bad("invalid Huffman code"))
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("corrupt gzip data: {what}"),
    )
}

/// The compressed input as a stream of bits, LSB first.
struct Input<R: Read> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    bits: u64,
    nbits: u32,
}

impl<R: Read> Input<R> {
    /// Tops the bit buffer up to at least 56 bits, or to what is left of the input.
    fn refill(&mut self) -> io::Result<()> {
        if let Some(c) = self.buf[self.pos..self.len].first_chunk::<8>() {
            // Fast path: whole bytes from one 8-byte load; bits above the count stay zero.
            let take = (63 - self.nbits) / 8;
            self.bits |= u64::from_le_bytes(*c) << self.nbits;
            self.nbits += take * 8;
            self.bits &= (1u64 << self.nbits) - 1;
            self.pos += take as usize;
            return Ok(());
        }
        while self.nbits <= 56 {
            if self.pos == self.len {
                if self.eof {
                    break;
                }
                self.len = loop {
                    match self.inner.read(&mut self.buf) {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        r => break r?,
                    }
                };
                self.pos = 0;
                if self.len == 0 {
                    self.eof = true;
                    break;
                }
            }
            self.bits |= (self.buf[self.pos] as u64) << self.nbits;
            self.pos += 1;
            self.nbits += 8;
        }
        Ok(())
    }

    fn consume(&mut self, n: u32) -> io::Result<()> {
        if n > self.nbits {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "gzip data ends early",
            ));
        }
        self.bits >>= n;
        self.nbits -= n;
        Ok(())
    }

    /// The next `n` (≤ 32) bits.
    fn get(&mut self, n: u32) -> io::Result<u32> {
        if self.nbits < n {
            self.refill()?;
        }
        let v = (self.bits & ((1u64 << n) - 1)) as u32;
        self.consume(n)?;
        Ok(v)
    }

    fn symbol(&mut self, h: &Huffman) -> io::Result<usize> {
        if self.nbits < 15 {
            self.refill()?;
        }
        let (s, n) = h.decode(self.bits)?;
        self.consume(n)?;
        Ok(s)
    }

    /// Skips to the next byte boundary.
    fn align(&mut self) {
        let n = self.nbits % 8;
        self.bits >>= n;
        self.nbits -= n;
    }
}

/// A `Read` that decompresses the gzip members read from `R`.
pub struct GzDecoder<R: Read> {
    inp: Input<R>,
    state: State,
    last: bool,
    win: Vec<u8>,
    /// `win[out..]` is decompressed but not yet returned by `read`.
    out: usize,
    crc: u32,
    /// Bytes produced by the current member (back-references may not reach before it).
    size: u64,
    lit: Huffman,
    dist: Huffman,
}

const EMPTY: Huffman = Huffman {
    count: [0; 16],
    sym: [0; 288],
    fast: [0; 1 << FAST],
};

impl<R: Read> GzDecoder<R> {
    /// Reads gzip data from `inner`.
    pub fn new(inner: R) -> GzDecoder<R> {
        let inp = Input {
            inner,
            buf: vec![0; WSIZE],
            pos: 0,
            len: 0,
            eof: false,
            bits: 0,
            nbits: 0,
        };
        GzDecoder {
            inp,
            state: State::Header(false),
            last: false,
            win: Vec::with_capacity(CAP),
            out: 0,
            crc: 0,
            size: 0,
            lit: EMPTY,
            dist: EMPTY,
        }
    }

    fn get(&mut self, n: u32) -> io::Result<u32> {
        self.inp.get(n)
    }

    fn header(&mut self) -> io::Result<()> {
        let id = self.get(16)?;
        if id != 0x8b1f || self.get(8)? != 8 {
            return Err(bad("not gzip (bad magic number or method)"));
        }
        let flags = self.get(8)?;
        self.get(32)?; // mtime
        self.get(16)?; // extra flags, OS
        if flags & 4 != 0 {
            for _ in 0..self.get(16)? {
                self.get(8)?;
            }
        }
        for flag in [8, 16] {
            // file name, comment: zero-terminated
            if flags & flag != 0 {
                while self.get(8)? != 0 {}
            }
        }
        if flags & 2 != 0 {
            self.get(16)?; // header CRC
        }
        (self.crc, self.size, self.last) = (0, 0, false);
        self.state = State::Block;
        Ok(())
    }

    fn block(&mut self) -> io::Result<()> {
        if self.last {
            self.state = State::Trailer;
            return Ok(());
        }
        self.last = self.get(1)? == 1;
        match self.get(2)? {
            0 => {
                self.inp.align();
                let len = self.get(16)?;
                if self.get(16)? != !len & 0xffff {
                    return Err(bad("stored block length check"));
                }
                self.state = State::Stored(len as u16);
            }
            1 => {
                self.lit = Huffman::new(&fixed_lit_lengths())?;
                self.dist = Huffman::new(&[5; 30])?;
                self.state = State::Codes;
            }
            2 => {
                self.dynamic()?;
                self.state = State::Codes;
            }
            _ => return Err(bad("invalid block type")),
        }
        Ok(())
    }

    fn dynamic(&mut self) -> io::Result<()> {
        let hlit = self.get(5)? as usize + 257;
        let hdist = self.get(5)? as usize + 1;
        let hclen = self.get(4)? as usize + 4;
        if hlit > 286 || hdist > 30 {
            return Err(bad("too many length or distance codes"));
        }
        let mut cl = [0u8; 19];
        for &s in &CL_ORDER[..hclen] {
            cl[s] = self.get(3)? as u8;
        }
        let clh = Huffman::new(&cl)?;
        let mut lens = [0u8; 286 + 30];
        let mut i = 0;
        while i < hlit + hdist {
            let s = self.inp.symbol(&clh)?;
            let (val, n) = match s {
                0..=15 => (s as u8, 1),
                16 if i > 0 => (lens[i - 1], 3 + self.get(2)? as usize),
                17 => (0, 3 + self.get(3)? as usize),
                18 => (0, 11 + self.get(7)? as usize),
                _ => return Err(bad("repeat with no previous length")),
            };
            if i + n > hlit + hdist {
                return Err(bad("code lengths overflow"));
            }
            lens[i..i + n].fill(val);
            i += n;
        }
        if lens[256] == 0 {
            return Err(bad("no end-of-block code"));
        }
        self.lit = Huffman::new(&lens[..hlit])?;
        self.dist = Huffman::new(&lens[hlit..hlit + hdist])?;
        Ok(())
    }

    /// Decodes symbols until the block ends or the window is full.
    fn codes(&mut self) -> io::Result<()> {
        while self.win.len() + MAX_MATCH <= CAP {
            let s = self.inp.symbol(&self.lit)?;
            if s < 256 {
                self.win.push(s as u8);
                continue;
            }
            if s == 256 {
                self.state = State::Block;
                return Ok(());
            }
            let c = s - 257;
            if c >= 29 {
                return Err(bad("invalid length code"));
            }
            let len = LEN_BASE[c] as usize + self.get(LEN_EXTRA[c] as u32)? as usize;
            let dc = self.inp.symbol(&self.dist)?;
            if dc >= 30 {
                return Err(bad("invalid distance code"));
            }
            let d = DIST_BASE[dc] as usize + self.get(DIST_EXTRA[dc] as u32)? as usize;
            let produced = self.size + (self.win.len() - self.out) as u64;
            if d > self.win.len() || d as u64 > produced {
                return Err(bad("distance too far back"));
            }
            let from = self.win.len() - d;
            if d >= len {
                self.win.extend_from_within(from..from + len);
            } else {
                // Overlapping: the copy repeats bytes it has just written.
                for k in 0..len {
                    let b = self.win[from + k];
                    self.win.push(b);
                }
            }
        }
        Ok(())
    }

    fn trailer(&mut self) -> io::Result<()> {
        self.inp.align();
        let crc = self.get(32)?;
        let size = self.get(32)?;
        if crc != self.crc || size != self.size as u32 {
            return Err(bad("CRC or length check failed"));
        }
        self.state = State::Header(true);
        Ok(())
    }

    /// Advances by one step of the state machine, appending to `win`.
    fn step(&mut self) -> io::Result<()> {
        match self.state {
            State::Header(more) => {
                if more {
                    // Another member, or the end: zero bits left and no input.
                    self.inp.align();
                    if self.inp.nbits == 0 {
                        self.inp.refill()?;
                    }
                    if self.inp.nbits == 0 {
                        self.state = State::Done;
                        return Ok(());
                    }
                }
                self.header()
            }
            State::Block => self.block(),
            State::Stored(0) => {
                self.state = State::Block;
                Ok(())
            }
            State::Stored(left) => {
                let n = (left as usize).min(CAP - self.win.len());
                for _ in 0..n {
                    let b = self.get(8)? as u8;
                    self.win.push(b);
                }
                self.state = State::Stored(left - n as u16);
                Ok(())
            }
            State::Codes => self.codes(),
            State::Trailer => self.trailer(),
            State::Done => Ok(()),
        }
    }
}

impl<R: Read> Read for GzDecoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if self.out < self.win.len() || buf.is_empty() {
                let n = buf.len().min(self.win.len() - self.out);
                buf[..n].copy_from_slice(&self.win[self.out..self.out + n]);
                self.out += n;
                return Ok(n);
            }
            if self.state == State::Done {
                return Ok(0);
            }
            if self.win.len() + MAX_MATCH > CAP {
                self.win.drain(..self.win.len() - WSIZE);
                self.out = WSIZE;
            }
            let start = self.win.len();
            self.step()?;
            self.crc = crc32(self.crc, &self.win[start..]);
            self.size += (self.win.len() - start) as u64;
        }
    }
}
