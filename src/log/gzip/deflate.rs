//! Compressor: LZ77 over a 32 KiB window (hash chains, one-step lazy matching, the search
//! limits of `gzip -6`), then per block of ~16K symbols a dynamic Huffman code, or the
//! fixed one when that is smaller.

use super::{CL_ORDER, DIST_BASE, DIST_EXTRA, LEN_BASE, LEN_EXTRA, crc32, fixed_lit_lengths};
use std::io::{self, Write};

const WSIZE: usize = 1 << 15;
const WMASK: usize = WSIZE - 1;
/// Input buffer: 32 KiB of history plus 32 KiB being compressed; slides by WSIZE.
const BUF: usize = 2 * WSIZE;
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
const HASH_BITS: u32 = 15;
/// Longest chain walked per search, and the length that ends a search early (gzip -6).
const MAX_CHAIN: u32 = 128;
const NICE: usize = 128;
/// A match this long already makes the lazy look-ahead search only a quarter of the chain.
const GOOD: usize = 8;
/// Symbols per block: a new Huffman code every so often adapts to the data.
const BLOCK_SYMS: usize = 16 * 1024;

/// A `Write` that gzips into `W`; call [`GzEncoder::finish`] to write the trailer.
pub struct GzEncoder<W: Write> {
    inner: W,
    lz: Deflater,
    crc: u32,
    size: u32,
}

impl<W: Write> GzEncoder<W> {
    /// Starts a gzip member (no name, no mtime: archives are named by their file).
    pub fn new(inner: W) -> GzEncoder<W> {
        let mut lz = Deflater::new();
        // magic, CM=deflate, no flags, mtime 0, XFL 0, OS=Unix
        lz.out
            .extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]);
        GzEncoder {
            inner,
            lz,
            crc: 0,
            size: 0,
        }
    }

    /// Compresses what is buffered, writes the final block and the trailer; returns `W`.
    pub fn finish(mut self) -> io::Result<W> {
        self.lz.compress(true);
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&self.crc.to_le_bytes());
        t[4..].copy_from_slice(&self.size.to_le_bytes());
        self.lz.out.extend_from_slice(&t);
        self.inner.write_all(&self.lz.out)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for GzEncoder<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(BUF - self.lz.buf.len());
        let data = &data[..n];
        self.crc = crc32(self.crc, data);
        self.size = self.size.wrapping_add(n as u32);
        self.lz.buf.extend_from_slice(data);
        if self.lz.buf.len() == BUF {
            self.lz.compress(false);
            if self.lz.out.len() >= WSIZE {
                self.inner.write_all(&self.lz.out)?;
                self.lz.out.clear();
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The LZ77 state and the bit writer of one deflate stream.
struct Deflater {
    /// Input; `buf[..pos]` is compressed, the WSIZE bytes before `pos` are the history.
    buf: Vec<u8>,
    pos: usize,
    /// hash of 3 bytes → latest position + 1 in `buf` (0: none).
    head: Vec<u32>,
    /// position & WMASK → previous position + 1 with the same hash.
    prev: Vec<u32>,
    /// Lazy matching: the search already done at `pos` (len, dist), if any.
    ahead: Option<(usize, usize)>,
    /// Tokens of the current block: a literal byte, or `len << 16 | dist`.
    syms: Vec<u32>,
    lit_freq: [u32; 286],
    dist_freq: [u32; 30],
    out: Vec<u8>,
    acc: u64,
    nacc: u32,
}

impl Deflater {
    fn new() -> Deflater {
        Deflater {
            buf: Vec::with_capacity(BUF),
            pos: 0,
            head: vec![0; 1 << HASH_BITS],
            prev: vec![0; WSIZE],
            ahead: None,
            syms: Vec::with_capacity(BLOCK_SYMS + 2),
            lit_freq: [0; 286],
            dist_freq: [0; 30],
            out: Vec::with_capacity(2 * WSIZE),
            acc: 0,
            nacc: 0,
        }
    }

    fn hash(&self, p: usize) -> usize {
        let b = &self.buf[p..p + 3];
        let v = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        (v.wrapping_mul(0x9E37_79B1) >> (32 - HASH_BITS)) as usize
    }

    fn insert(&mut self, p: usize) {
        if p + MIN_MATCH <= self.buf.len() {
            let h = self.hash(p);
            self.prev[p & WMASK] = self.head[h];
            self.head[h] = p as u32 + 1;
        }
    }

    /// Longest earlier match of the bytes at `p` (length < MIN_MATCH: none).
    fn find(&self, p: usize, mut chain: u32) -> (usize, usize) {
        let max = (self.buf.len() - p).min(MAX_MATCH);
        if max < MIN_MATCH {
            return (0, 0);
        }
        let (mut best, mut dist) = (MIN_MATCH - 1, 0);
        let mut cur = self.head[self.hash(p)] as usize;
        let here = &self.buf[p..p + max];
        while cur != 0 && chain > 0 {
            let c = cur - 1;
            if c >= p || p - c >= WSIZE {
                break;
            }
            let there = &self.buf[c..c + max];
            if there[best] == here[best] {
                let n = common_prefix(here, there);
                if n > best {
                    (best, dist) = (n, p - c);
                    if n >= NICE.min(max) {
                        break;
                    }
                }
            }
            let next = self.prev[c & WMASK] as usize;
            // Entries only ever point backwards; anything else is a recycled slot.
            if next >= cur {
                break;
            }
            cur = next;
            chain -= 1;
        }
        if best >= MIN_MATCH {
            (best, dist)
        } else {
            (0, 0)
        }
    }

    /// Turns buffered input into tokens (all of it when `last`, else keeping MAX_MATCH
    /// bytes of look-ahead), emits full blocks, and slides the window.
    fn compress(&mut self, last: bool) {
        let limit = if last {
            self.buf.len()
        } else {
            self.buf.len() - MAX_MATCH
        };
        while self.pos < limit {
            let p = self.pos;
            let (len, dist) = match self.ahead.take() {
                Some(m) => m,
                None => self.find(p, MAX_CHAIN),
            };
            self.insert(p);
            if (MIN_MATCH..NICE).contains(&len) && p + 1 < limit {
                let chain = if len >= GOOD {
                    MAX_CHAIN / 4
                } else {
                    MAX_CHAIN
                };
                let next = self.find(p + 1, chain);
                if next.0 > len {
                    self.ahead = Some(next);
                    self.literal(self.buf[p]);
                    self.pos += 1;
                    continue;
                }
            }
            if len >= MIN_MATCH {
                for q in p + 1..p + len {
                    self.insert(q);
                }
                self.syms.push((len as u32) << 16 | dist as u32);
                self.lit_freq[257 + len_code(len)] += 1;
                self.dist_freq[dist_code(dist)] += 1;
                self.pos += len;
            } else {
                self.literal(self.buf[p]);
                self.pos += 1;
            }
            if self.syms.len() >= BLOCK_SYMS {
                self.block(false);
            }
        }
        if last {
            self.block(true);
            let n = self.nacc.div_ceil(8) as usize;
            self.out.extend_from_slice(&self.acc.to_le_bytes()[..n]);
            (self.acc, self.nacc) = (0, 0);
        } else if self.pos >= BUF - MAX_MATCH {
            // Keep WSIZE of history; positions in the tables move down with the bytes.
            self.buf.drain(..WSIZE);
            self.pos -= WSIZE;
            for v in self.head.iter_mut().chain(self.prev.iter_mut()) {
                *v = v.saturating_sub(WSIZE as u32);
            }
        }
    }

    fn literal(&mut self, b: u8) {
        self.syms.push(b as u32);
        self.lit_freq[b as usize] += 1;
    }

    fn put(&mut self, bits: u32, n: u32) {
        self.acc |= (bits as u64) << self.nacc;
        self.nacc += n;
        if self.nacc >= 32 {
            self.out.extend_from_slice(&(self.acc as u32).to_le_bytes());
            self.acc >>= 32;
            self.nacc -= 32;
        }
    }

    /// Writes the tokens so far as one block with the smaller of the dynamic and fixed codes.
    fn block(&mut self, last: bool) {
        self.lit_freq[256] = 1;
        let mut lit = [0u8; 286];
        let mut dist = [0u8; 30];
        lengths(&self.lit_freq, 15, &mut lit);
        lengths(&self.dist_freq, 15, &mut dist);
        let hlit = 257 + lit[257..].iter().rposition(|&l| l > 0).map_or(0, |i| i + 1);
        let hdist = 1 + dist.iter().rposition(|&l| l > 0).unwrap_or(0);
        // The code-length alphabet: the lengths run-length coded (symbols 16, 17, 18).
        let mut all = [0u8; 286 + 30];
        all[..hlit].copy_from_slice(&lit[..hlit]);
        all[hlit..hlit + hdist].copy_from_slice(&dist[..hdist]);
        let rle = run_lengths(&all[..hlit + hdist]);
        let mut cl_freq = [0u32; 19];
        for &(s, _) in &rle {
            cl_freq[s as usize] += 1;
        }
        let mut cl = [0u8; 19];
        lengths(&cl_freq, 7, &mut cl);
        let hclen = 4 + CL_ORDER[4..]
            .iter()
            .rposition(|&s| cl[s] > 0)
            .map_or(0, |i| i + 1);

        let fixed = fixed_lit_lengths();
        let cost = |l: &[u8], d: &dyn Fn(usize) -> u32| -> u64 {
            let lits: u64 = (0..286)
                .map(|s| self.lit_freq[s] as u64 * l[s] as u64)
                .sum();
            lits + (0..30)
                .map(|s| self.dist_freq[s] as u64 * d(s) as u64)
                .sum::<u64>()
        };
        let mut dyn_cost = cost(&lit, &|s| dist[s] as u32) + 14 + 3 * hclen as u64;
        for &(s, _) in &rle {
            dyn_cost += cl[s as usize] as u64
                + [2, 3, 7]
                    .get((s as usize).wrapping_sub(16))
                    .copied()
                    .unwrap_or(0);
        }
        let use_fixed = cost(&fixed, &|_| 5) <= dyn_cost;

        self.put(last as u32 | if use_fixed { 2 } else { 4 }, 3);
        let (lcodes, dcodes);
        if use_fixed {
            lcodes = codes(&fixed);
            dcodes = codes(&[5; 30]);
        } else {
            self.put((hlit - 257) as u32, 5);
            self.put((hdist - 1) as u32, 5);
            self.put((hclen - 4) as u32, 4);
            for &s in &CL_ORDER[..hclen] {
                self.put(cl[s] as u32, 3);
            }
            let clc = codes(&cl);
            for &(s, extra) in &rle {
                self.put(clc[s as usize] as u32, cl[s as usize] as u32);
                if s >= 16 {
                    self.put(extra as u32, [2, 3, 7][s as usize - 16]);
                }
            }
            lcodes = codes(&lit);
            dcodes = codes(&dist);
        }
        let llen = |s: usize| if use_fixed { fixed[s] } else { lit[s] } as u32;
        let dlen = |s: usize| if use_fixed { 5 } else { dist[s] as u32 };
        let syms = std::mem::take(&mut self.syms);
        for &t in &syms {
            if t < 256 {
                self.put(lcodes[t as usize] as u32, llen(t as usize));
                continue;
            }
            let (len, d) = ((t >> 16) as usize, (t & 0xffff) as usize);
            let lc = len_code(len);
            self.put(lcodes[257 + lc] as u32, llen(257 + lc));
            self.put((len - LEN_BASE[lc] as usize) as u32, LEN_EXTRA[lc] as u32);
            let dc = dist_code(d);
            self.put(dcodes[dc] as u32, dlen(dc));
            self.put((d - DIST_BASE[dc] as usize) as u32, DIST_EXTRA[dc] as u32);
        }
        self.put(lcodes[256] as u32, llen(256));
        self.syms = syms;
        self.syms.clear();
        self.lit_freq = [0; 286];
        self.dist_freq = [0; 30];
    }
}

/// How many leading bytes `a` and `b` share, 8 at a time.
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    while let (Some(x), Some(y)) = (a[n..].first_chunk::<8>(), b[n..].first_chunk::<8>()) {
        let d = u64::from_le_bytes(*x) ^ u64::from_le_bytes(*y);
        if d != 0 {
            return n + (d.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// Length code index (0..29) of a match length 3..=258.
fn len_code(len: usize) -> usize {
    let l = len - 3;
    if l < 8 {
        l
    } else if l == 255 {
        28
    } else {
        let nb = usize::BITS - 1 - l.leading_zeros();
        4 * (nb as usize - 1) + ((l >> (nb - 2)) & 3)
    }
}

/// Distance code (0..30) of a distance 1..=32768.
fn dist_code(dist: usize) -> usize {
    let d = dist - 1;
    if d < 4 {
        d
    } else {
        let nb = usize::BITS - 1 - d.leading_zeros();
        2 * nb as usize + ((d >> (nb - 1)) & 1)
    }
}

/// Huffman code lengths for `freq`, none above `limit`: a two-queue Huffman build; when too
/// deep, frequencies are halved (kept non-zero) and it is built again. At least two symbols
/// get a code, so every decoder accepts the code as complete.
fn lengths(freq: &[u32], limit: u8, out: &mut [u8]) {
    let mut f: Vec<u32> = freq.to_vec();
    let used = f.iter().filter(|&&x| x > 0).count();
    for x in f.iter_mut().take(2) {
        if used < 2 && *x == 0 {
            *x = 1;
        }
    }
    loop {
        let mut leaves: Vec<(u32, usize)> = f
            .iter()
            .enumerate()
            .filter(|p| *p.1 > 0)
            .map(|(s, &w)| (w, s))
            .collect();
        // Insertion sort: at most 286 leaves, and no extra copy of a generic sort in the binary.
        for i in 1..leaves.len() {
            let mut j = i;
            while j > 0 && leaves[j - 1] > leaves[j] {
                leaves.swap(j - 1, j);
                j -= 1;
            }
        }
        let n = leaves.len();
        // Nodes 0..n are leaves in weight order, n.. internal nodes in creation order.
        let mut weight: Vec<u64> = leaves.iter().map(|l| l.0 as u64).collect();
        let mut parent = vec![0usize; 2 * n - 1];
        let (mut li, mut ii) = (0, n);
        for _ in 0..n - 1 {
            let mut pick = || {
                if li < n && (ii >= weight.len() || weight[li] <= weight[ii]) {
                    li += 1;
                    li - 1
                } else {
                    ii += 1;
                    ii - 1
                }
            };
            let (a, b) = (pick(), pick());
            let new = weight.len();
            parent[a] = new;
            parent[b] = new;
            weight.push(weight[a] + weight[b]);
        }
        // Depths from the root (the last node) down: parents always come after children.
        let mut depth = vec![0u8; 2 * n - 1];
        for i in (0..2 * n - 2).rev() {
            depth[i] = depth[parent[i]] + 1;
        }
        if depth[..n].iter().all(|&d| d <= limit) {
            out.fill(0);
            for (i, l) in leaves.iter().enumerate() {
                out[l.1] = depth[i];
            }
            return;
        }
        for x in f.iter_mut().filter(|x| **x > 0) {
            *x = (*x >> 1) | 1;
        }
    }
}

/// Canonical codes for `lens`, bit-reversed for the LSB-first bit writer.
fn codes(lens: &[u8]) -> Vec<u16> {
    let mut count = [0u16; 16];
    for &l in lens {
        count[l as usize] += 1;
    }
    count[0] = 0;
    let mut next = [0u16; 16];
    let mut code = 0u16;
    for b in 1..16 {
        code = (code + count[b - 1]) << 1;
        next[b] = code;
    }
    lens.iter()
        .map(|&l| {
            if l == 0 {
                return 0;
            }
            let c = next[l as usize];
            next[l as usize] += 1;
            c.reverse_bits() >> (16 - l)
        })
        .collect()
}

/// The code-length sequence as (symbol, extra bits value): 16 repeats the previous length
/// 3-6 times, 17 and 18 are runs of 3-10 and 11-138 zeros.
fn run_lengths(lens: &[u8]) -> Vec<(u8, u8)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < lens.len() {
        let l = lens[i];
        let run = lens[i..].iter().take_while(|&&x| x == l).count();
        i += run;
        let mut left = run;
        if l == 0 {
            while left >= 11 {
                let r = left.min(138);
                v.push((18, (r - 11) as u8));
                left -= r;
            }
            if left >= 3 {
                v.push((17, (left - 3) as u8));
                left = 0;
            }
        } else {
            v.push((l, 0));
            left -= 1;
            while left >= 3 {
                let r = left.min(6);
                v.push((16, (r - 3) as u8));
                left -= r;
            }
        }
        v.extend(std::iter::repeat_n((l, 0), left));
    }
    v
}
