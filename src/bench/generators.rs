//! The generators every workload draws from: keys written as db_bench writes them,
//! compressible values cut from a pool (db_bench's RandomGenerator), YCSB's scrambled zipfian,
//! and the [`Op`] a measuring thread performs next.

use crate::rng::Rng;

/// Write key number `k` into `buf` as db_bench does: big-endian digits first, zero padded.
#[inline]
pub fn make_key(k: u64, key_size: usize, buf: &mut Vec<u8>) {
    buf.clear();
    let be = k.to_be_bytes();
    if key_size >= 8 {
        buf.extend_from_slice(&be);
        buf.resize(key_size, b'0');
    } else {
        buf.extend_from_slice(&be[8 - key_size..]);
    }
}

/// A pool of compressible bytes; values are windows into it (db_bench's RandomGenerator).
#[derive(Debug, Clone)]
pub struct ValuePool {
    data: Vec<u8>,
    pos: usize,
}

impl ValuePool {
    /// `compression_ratio` 0.5 means each 100-byte piece is 50 random bytes repeated.
    pub fn new(seed: u64, compression_ratio: f64, value_size: usize) -> ValuePool {
        let mut rng = Rng::new(seed ^ 0xA5A5);
        let len = (1 << 20).max(value_size * 2);
        let mut data = Vec::with_capacity(len + 100);
        while data.len() < len {
            let raw = ((100.0 * compression_ratio) as usize).max(1);
            let piece: Vec<u8> = (0..raw).map(|_| b' ' + (rng.below(95) as u8)).collect();
            for i in 0..100 {
                data.push(piece[i % raw]);
            }
        }
        ValuePool { data, pos: 0 }
    }

    #[inline]
    pub fn next(&mut self, len: usize) -> &[u8] {
        if self.pos + len > self.data.len() {
            self.pos = 0;
        }
        let s = &self.data[self.pos..self.pos + len];
        self.pos += len;
        s
    }
}

/// YCSB's zipfian generator over [0, n) with constant 0.99 (Gray et al.), scrambled with FNV so
/// popular keys spread over the key space, as YCSB's ScrambledZipfianGenerator does.
#[derive(Debug, Clone)]
pub struct Zipfian {
    n: u64,
    theta: f64,
    alpha: f64,
    zetan: f64,
    eta: f64,
}

impl Zipfian {
    pub const THETA: f64 = 0.99;

    pub fn new(n: u64) -> Zipfian {
        Zipfian::with_theta(n, Self::THETA)
    }

    /// Over [0, n) with skew `theta` in (0, 1): higher is more skewed.
    pub fn with_theta(n: u64, theta: f64) -> Zipfian {
        let zetan = zeta(n, theta);
        let zeta2 = zeta(2, theta);
        let alpha = 1.0 / (1.0 - theta);
        let eta = (1.0 - (2.0 / n as f64).powf(1.0 - theta)) / (1.0 - zeta2 / zetan);
        Zipfian {
            n,
            theta,
            alpha,
            zetan,
            eta,
        }
    }

    /// Rank in [0, n): 0 is the most popular.
    #[inline]
    pub fn rank(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit();
        let uz = u * self.zetan;
        if uz < 1.0 {
            return 0;
        }
        if uz < 1.0 + 0.5f64.powf(self.theta) {
            return 1.min(self.n - 1);
        }
        let v = (self.n as f64 * (self.eta * u - self.eta + 1.0).powf(self.alpha)) as u64;
        v.min(self.n - 1)
    }

    /// A key in [0, n), popular ranks scattered by FNV-1a.
    #[inline]
    pub fn scrambled(&self, rng: &mut Rng) -> u64 {
        fnv64(self.rank(rng)) % self.n
    }
}

fn zeta(n: u64, theta: f64) -> f64 {
    (1..=n).map(|i| 1.0 / (i as f64).powf(theta)).sum()
}

#[inline]
fn fnv64(v: u64) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in v.to_le_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

/// What one operation of a mixed workload is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read(u64),
    Write(u64),
    /// Read then write the same key.
    ReadModifyWrite(u64),
    /// Seek to a key and read this many entries.
    Scan(u64, u32),
    /// Append a new key (YCSB D/E inserts).
    Insert,
    /// Delete a key.
    Delete(u64),
    /// One MultiGet of this many keys (drawn as the mix draws keys).
    MultiGet(u32),
}
