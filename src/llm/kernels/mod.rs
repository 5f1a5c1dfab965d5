//! Quantized matrix products for the local model's hot path: Q8_0, Q4_0 and Q5_0 weight matrices are
//! repacked once, at load, into tiles of 16 output rows so that one AVX-512 VNNI instruction
//! (`vpdpbusd`) adds 4 products for each of 16 rows at once, and activations are quantized to
//! 8 bits per 32-value block with their sums kept for the offset correction.
//!
//! Layout of one tile-block (16 rows × 32 columns):
//! - `d`: the 16 rows' f16 block scales;
//! - Q8_0 `qs`: 8 groups × 16 rows × 4 bytes, each weight stored as `q + 128` (unsigned);
//! - Q4_0 `qs`: 4 groups × 16 rows × 4 bytes, byte `j` of group `g` holding the 4-bit values of
//!   columns `8g + j` (low nibble) and `8g + j + 4` (high nibble), unsigned (`q + 8`);
//! - Q5_0: the Q4_0 layout for the low 4 bits, then per group two 64-bit masks (one bit per
//!   row and byte, for the low and the high nibbles) holding the fifth bit, unsigned (`q + 16`).
//!   A masked byte add (AVX-512 BW) puts the fifth bit back. 22 bytes per row and block, as in
//!   the GGUF file.
//!
//! With unsigned weights `w + o` and signed activations `a`, `Σ (w + o)·a = Σ w·a + o·Σ a`, so the
//! exact integer dot product is the VNNI sum started from `-o·Σ a` (`o` = 128 or 8). The tiles
//! are walked in parallel on candle's CPU thread pool; each thread writes whole tiles of the
//! output. A portable scalar version of the same arithmetic serves CPUs without AVX-512 VNNI
//! and checks the SIMD one in tests.

use candle_core::quantized::GgmlDType;
use half::f16;

mod kquants;

/// Output rows per tile.
pub const TILE: usize = 16;
/// Values per quantization block.
pub const BLOCK: usize = 32;
/// Activation rows processed together against one tile (reuse of the loaded weights).
const ROWS: usize = 4;

/// The weight formats this module repacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Q8_0,
    Q4_0,
    Q5_0,
    /// K-quants: 256-column superblocks (see `kquants`).
    Q4K,
    Q6K,
}

impl Kind {
    /// The kind for a GGUF tensor type, when this module handles it.
    pub fn of(dtype: GgmlDType) -> Option<Kind> {
        match dtype {
            GgmlDType::Q8_0 => Some(Kind::Q8_0),
            GgmlDType::Q4_0 => Some(Kind::Q4_0),
            GgmlDType::Q5_0 => Some(Kind::Q5_0),
            GgmlDType::Q4K => Some(Kind::Q4K),
            GgmlDType::Q6K => Some(Kind::Q6K),
            _ => None,
        }
    }

    /// Columns a row length must be a multiple of.
    pub fn granule(self) -> usize {
        match self {
            Kind::Q4K | Kind::Q6K => kquants::SUPER,
            _ => BLOCK,
        }
    }

    fn is_k(self) -> bool {
        matches!(self, Kind::Q4K | Kind::Q6K)
    }

    /// Bytes of a GGUF row of `k` values.
    fn gguf_row_bytes(self, k: usize) -> usize {
        match self {
            Kind::Q4K => k / kquants::SUPER * kquants::Q4K_BLOCK,
            Kind::Q6K => k / kquants::SUPER * kquants::Q6K_BLOCK,
            _ => k / BLOCK * self.gguf_block_bytes(),
        }
    }

    /// Bytes of one packed tile (16 rows) of `k` columns.
    fn tile_bytes(self, k: usize) -> usize {
        match self {
            Kind::Q4K => k / kquants::SUPER * kquants::Q4K_TILE_SUPER,
            Kind::Q6K => k / kquants::SUPER * kquants::Q6K_TILE_SUPER,
            _ => k / BLOCK * self.tile_block_bytes(),
        }
    }

    /// Bytes of one GGUF block (f16 scale + quants).
    fn gguf_block_bytes(self) -> usize {
        match self {
            Kind::Q8_0 => 2 + BLOCK,
            Kind::Q4_0 => 2 + BLOCK / 2,
            Kind::Q5_0 => 2 + 4 + BLOCK / 2,
            Kind::Q4K | Kind::Q6K => unreachable!("K-quants are packed by superblock"),
        }
    }

    /// Bytes of quants per tile-block (Q5_0: nibbles, then the fifth-bit masks).
    fn qs_bytes(self) -> usize {
        match self {
            Kind::Q8_0 => TILE * BLOCK,
            Kind::Q4_0 => TILE * BLOCK / 2,
            Kind::Q5_0 => TILE * BLOCK / 2 + TILE * BLOCK / 8,
            Kind::Q4K | Kind::Q6K => unreachable!("K-quants are packed by superblock"),
        }
    }

    /// Bytes per tile-block: 16 f16 scales then the quants.
    fn tile_block_bytes(self) -> usize {
        2 * TILE + self.qs_bytes()
    }

    /// The unsigned offset the packed weights carry.
    fn offset(self) -> i32 {
        match self {
            Kind::Q8_0 => 128,
            Kind::Q4_0 => 8,
            Kind::Q5_0 => 16,
            Kind::Q4K => 0,
            Kind::Q6K => 32,
        }
    }
}

/// Whether this CPU runs the SIMD kernels (AVX-512 F/BW/VNNI), checked at run time: the binary
/// itself targets Haswell.
pub fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::sync::OnceLock;
        static OK: OnceLock<bool> = OnceLock::new();
        *OK.get_or_init(|| {
            std::env::var_os("LSMTUNE_NO_SIMD").is_none()
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vnni")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A weight matrix `n × k` (n output rows) repacked into tiles.
pub struct PackedMatrix {
    kind: Kind,
    n: usize,
    k: usize,
    data: Vec<u8>,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedMatrix({:?}, {}x{})", self.kind, self.n, self.k)
    }
}

fn f16_at(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
}

impl PackedMatrix {
    /// Repack the raw GGUF bytes of an `n × k` matrix (row-major blocks). Errors when the byte
    /// count does not match or `k` is not a multiple of 32.
    pub fn pack(kind: Kind, raw: &[u8], n: usize, k: usize) -> anyhow::Result<PackedMatrix> {
        let granule = kind.granule();
        if k == 0 || !k.is_multiple_of(granule) {
            anyhow::bail!(
                "a {kind:?} matrix needs a row length that is a multiple of {granule}, not {k}"
            );
        }
        if raw.len() != n * kind.gguf_row_bytes(k) {
            anyhow::bail!(
                "a {kind:?} matrix of {n}x{k} has {} bytes, not {}",
                n * kind.gguf_row_bytes(k),
                raw.len()
            );
        }
        match kind {
            Kind::Q4K => {
                let data = kquants::pack_q4k(raw, n, k);
                return Ok(PackedMatrix { kind, n, k, data });
            }
            Kind::Q6K => {
                let data = kquants::pack_q6k(raw, n, k);
                return Ok(PackedMatrix { kind, n, k, data });
            }
            _ => {}
        }
        let nb = k / BLOCK;
        let bb = kind.gguf_block_bytes();
        let tiles = n.div_ceil(TILE);
        let tb = kind.tile_block_bytes();
        let mut data = vec![0u8; tiles * nb * tb];
        for t in 0..tiles {
            for b in 0..nb {
                let dst = &mut data[(t * nb + b) * tb..][..tb];
                for r in 0..TILE {
                    let row = t * TILE + r;
                    if row >= n {
                        // Padding rows: a zero scale makes them contribute nothing.
                        continue;
                    }
                    let src = &raw[(row * nb + b) * bb..][..bb];
                    dst[2 * r] = src[0];
                    dst[2 * r + 1] = src[1];
                    let qs = &src[2..];
                    match kind {
                        Kind::Q4K | Kind::Q6K => unreachable!("packed above"),
                        Kind::Q8_0 => {
                            for g in 0..BLOCK / 4 {
                                for j in 0..4 {
                                    dst[2 * TILE + g * TILE * 4 + r * 4 + j] =
                                        (qs[4 * g + j] as i8 as i16 + 128) as u8;
                                }
                            }
                        }
                        Kind::Q4_0 | Kind::Q5_0 => {
                            let (qh, qs) = if kind == Kind::Q5_0 {
                                (u32::from_le_bytes([qs[0], qs[1], qs[2], qs[3]]), &qs[4..])
                            } else {
                                (0, qs)
                            };
                            let q = |i: usize| {
                                if i < 16 {
                                    qs[i] & 0x0F
                                } else {
                                    qs[i - 16] >> 4
                                }
                            };
                            let high = |i: usize| ((qh >> i) & 1) as u64;
                            for g in 0..BLOCK / 8 {
                                for j in 0..4 {
                                    dst[2 * TILE + g * TILE * 4 + r * 4 + j] =
                                        q(8 * g + j) | (q(8 * g + j + 4) << 4);
                                }
                                if kind == Kind::Q5_0 {
                                    let masks = 2 * TILE + TILE * BLOCK / 2 + g * 16;
                                    let mut lo = u64::from_le_bytes(
                                        dst[masks..masks + 8].try_into().unwrap(),
                                    );
                                    let mut hi = u64::from_le_bytes(
                                        dst[masks + 8..masks + 16].try_into().unwrap(),
                                    );
                                    for j in 0..4 {
                                        lo |= high(8 * g + j) << (r * 4 + j);
                                        hi |= high(8 * g + j + 4) << (r * 4 + j);
                                    }
                                    dst[masks..masks + 8].copy_from_slice(&lo.to_le_bytes());
                                    dst[masks + 8..masks + 16].copy_from_slice(&hi.to_le_bytes());
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(PackedMatrix { kind, n, k, data })
    }

    /// Output rows.
    pub fn rows(&self) -> usize {
        self.n
    }

    /// Columns (the input width).
    pub fn cols(&self) -> usize {
        self.k
    }

    /// The weight format.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The bytes of tile `t`.
    fn tile(&self, t: usize) -> &[u8] {
        let tb = self.kind.tile_bytes(self.k);
        &self.data[t * tb..(t + 1) * tb]
    }

    fn tile_block(&self, t: usize, b: usize) -> &[u8] {
        let tb = self.kind.tile_block_bytes();
        &self.data[(t * (self.k / BLOCK) + b) * tb..][..tb]
    }

    /// The fifth bits of Q5_0 group `g` in a tile-block: (low-nibble mask, high-nibble mask),
    /// one bit per `row * 4 + j`.
    fn fifth_bits(tb: &[u8], g: usize) -> (u64, u64) {
        let at = 2 * TILE + TILE * BLOCK / 2 + g * 16;
        (
            u64::from_le_bytes(tb[at..at + 8].try_into().unwrap()),
            u64::from_le_bytes(tb[at + 8..at + 16].try_into().unwrap()),
        )
    }

    /// Row `row` dequantized into `out` (`k` values): an embedding lookup.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let (t, r) = (row / TILE, row % TILE);
        if self.kind.is_k() {
            kquants::dequantize_row(self.kind == Kind::Q6K, self.tile(t), self.k, r, out);
            return;
        }
        let off = self.kind.offset();
        for b in 0..self.k / BLOCK {
            let tb = self.tile_block(t, b);
            let d = f16_at(tb, 2 * r).to_f32();
            for (o, v) in out[b * BLOCK..][..BLOCK].iter_mut().zip(self.stored(tb, r)) {
                *o = (v - off) as f32 * d;
            }
        }
    }

    /// The 32 stored (unsigned, offset) values of row `r` in a tile-block of a simple kind.
    fn stored(&self, tb: &[u8], r: usize) -> [i32; BLOCK] {
        let qs = &tb[2 * TILE..];
        let mut v = [0i32; BLOCK];
        match self.kind {
            Kind::Q4K | Kind::Q6K => unreachable!("K-quants have their own layout"),
            Kind::Q8_0 => {
                for g in 0..BLOCK / 4 {
                    for j in 0..4 {
                        v[4 * g + j] = qs[g * TILE * 4 + r * 4 + j] as i32;
                    }
                }
            }
            Kind::Q4_0 | Kind::Q5_0 => {
                for g in 0..BLOCK / 8 {
                    let (lo, hi) = if self.kind == Kind::Q5_0 {
                        Self::fifth_bits(tb, g)
                    } else {
                        (0, 0)
                    };
                    for j in 0..4 {
                        let byte = qs[g * TILE * 4 + r * 4 + j];
                        let bit = r * 4 + j;
                        v[8 * g + j] = (byte & 0x0F) as i32 | (((lo >> bit) & 1) as i32) << 4;
                        v[8 * g + j + 4] = (byte >> 4) as i32 | (((hi >> bit) & 1) as i32) << 4;
                    }
                }
            }
        }
        v
    }
}

/// `m` activation rows of width `k`, quantized to 8 bits per 32-value block.
#[derive(Debug, Default)]
pub struct QuantRows {
    m: usize,
    k: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    sums: Vec<i32>,
    /// Sums of the first 16 values of each block (Q6_K's scales cover 16 columns).
    sums16: Vec<i32>,
}

impl QuantRows {
    /// Quantize `x` (`m × k`, row-major) in place of the previous contents (buffers are reused).
    pub fn quantize(&mut self, x: &[f32], m: usize, k: usize) {
        debug_assert_eq!(x.len(), m * k);
        debug_assert!(k.is_multiple_of(BLOCK));
        let nb = k / BLOCK;
        self.m = m;
        self.k = k;
        self.qs.resize(m * k, 0);
        self.d.resize(m * nb, 0.0);
        self.sums.resize(m * nb, 0);
        self.sums16.resize(m * nb, 0);
        for (i, block) in x.chunks_exact(BLOCK).enumerate() {
            let amax = block.iter().fold(0f32, |a, v| a.max(v.abs()));
            let d = amax / 127.0;
            let inv = if d > 0.0 { 1.0 / d } else { 0.0 };
            let q = &mut self.qs[i * BLOCK..][..BLOCK];
            let (mut sum, mut sum16) = (0i32, 0i32);
            for (j, (q, v)) in q.iter_mut().zip(block).enumerate() {
                let v = (v * inv).round().clamp(-127.0, 127.0) as i8;
                *q = v;
                sum += v as i32;
                if j == 15 {
                    sum16 = sum;
                }
            }
            self.d[i] = d;
            self.sums[i] = sum;
            self.sums16[i] = sum16;
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.m
    }
}

/// `out[r][c] = Σ_k w[c][k]·x[r][k]` for every activation row `r` of `x` and output row `c` of
/// `w`; `out` is `m × n`, row-major. Runs on candle's CPU thread pool.
pub fn matmul(w: &PackedMatrix, x: &QuantRows, out: &mut [f32]) {
    assert_eq!(w.k, x.k, "matmul: width mismatch");
    assert!(out.len() >= x.m * w.n, "matmul: output too small");
    let tiles = w.n.div_ceil(TILE);
    let chunks = x.m.div_ceil(ROWS);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let simd = simd_available();
    let work = |range: std::ops::Range<usize>| {
        let out_ptr = &out_ptr;
        for item in range {
            let (t, c) = (item / chunks, item % chunks);
            let rows = c * ROWS..(c * ROWS + ROWS).min(x.m);
            let mut acc = [[0f32; TILE]; ROWS];
            let six = w.kind == Kind::Q6K;
            match (simd, w.kind.is_k()) {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: simd_available() checked the CPU features these functions enable.
                (true, false) => unsafe { simd::tile(w, x, t, rows.clone(), &mut acc) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above; the tile holds k / 256 superblocks of the kind.
                (true, true) => unsafe {
                    kquants::simd::tile(six, w.tile(t), w.k, x, rows.clone(), &mut acc)
                },
                (_, false) => scalar_tile(w, x, t, rows.clone(), &mut acc),
                (_, true) => kquants::scalar_tile(six, w.tile(t), w.k, x, rows.clone(), &mut acc),
            }
            let width = TILE.min(w.n - t * TILE);
            for (i, r) in rows.enumerate() {
                // SAFETY: each (row, tile) of the output belongs to exactly one work item, and
                // the bounds were asserted above.
                unsafe {
                    let dst = out_ptr.0.add(r * w.n + t * TILE);
                    std::ptr::copy_nonoverlapping(acc[i].as_ptr(), dst, width);
                }
            }
        }
    };
    let items = tiles * chunks;
    if items < 4 {
        work(0..items);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(items, work);
    }
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only written at disjoint offsets by the work items of one call.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// One tile against up to `ROWS` activation rows, portably: the same integer arithmetic as the
/// SIMD kernel.
fn scalar_tile(
    w: &PackedMatrix,
    x: &QuantRows,
    t: usize,
    rows: std::ops::Range<usize>,
    acc: &mut [[f32; TILE]; ROWS],
) {
    let nb = w.k / BLOCK;
    let off = w.kind.offset();
    for b in 0..nb {
        let tb = w.tile_block(t, b);
        for (i, r) in rows.clone().enumerate() {
            let a = &x.qs[r * w.k + b * BLOCK..][..BLOCK];
            let da = x.d[r * nb + b];
            let start = -off * x.sums[r * nb + b];
            for (row, acc) in acc[i].iter_mut().enumerate() {
                let dot = w
                    .stored(tb, row)
                    .iter()
                    .zip(a)
                    .fold(start, |s, (v, a)| s + v * *a as i32);
                *acc += dot as f32 * (f16_at(tb, 2 * row).to_f32() * da);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::*;
    use std::arch::x86_64::*;

    /// One tile against up to `ROWS` activation rows with AVX-512 VNNI.
    ///
    /// # Safety
    /// The CPU must support avx512f, avx512bw and avx512vnni.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    pub(super) unsafe fn tile(
        w: &PackedMatrix,
        x: &QuantRows,
        t: usize,
        rows: std::ops::Range<usize>,
        acc: &mut [[f32; TILE]; ROWS],
    ) {
        // SAFETY: the offsets below stay inside the tile's data and the activation rows.
        unsafe {
            let nb = w.k / BLOCK;
            let off = w.kind.offset();
            let tb_bytes = w.kind.tile_block_bytes();
            let base = w.data.as_ptr().add(t * nb * tb_bytes);
            let n_rows = rows.len();
            let r0 = rows.start;
            let mut f = [_mm512_setzero_ps(); ROWS];
            let low = _mm512_set1_epi8(0x0F);
            let sixteen = _mm512_set1_epi8(16);
            for b in 0..nb {
                let tb = base.add(b * tb_bytes);
                let dw = _mm512_cvtph_ps(_mm256_loadu_si256(tb as *const __m256i));
                let qs = tb.add(2 * TILE);
                // Weights of this tile-block, loaded once for all activation rows.
                let mut wv = [_mm512_setzero_si512(); 8];
                match w.kind {
                    Kind::Q4K | Kind::Q6K => unreachable!("K-quants have their own tile code"),
                    Kind::Q8_0 => {
                        for (g, v) in wv.iter_mut().enumerate() {
                            *v = _mm512_loadu_si512(qs.add(g * 64) as *const __m512i);
                        }
                    }
                    Kind::Q4_0 | Kind::Q5_0 => {
                        for g in 0..4 {
                            let v = _mm512_loadu_si512(qs.add(g * 64) as *const __m512i);
                            let mut lo = _mm512_and_si512(v, low);
                            let mut hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                            if w.kind == Kind::Q5_0 {
                                let masks = qs.add(TILE * BLOCK / 2 + g * 16) as *const u64;
                                lo = _mm512_mask_add_epi8(lo, masks.read_unaligned(), lo, sixteen);
                                hi = _mm512_mask_add_epi8(
                                    hi,
                                    masks.add(1).read_unaligned(),
                                    hi,
                                    sixteen,
                                );
                            }
                            wv[2 * g] = lo;
                            wv[2 * g + 1] = hi;
                        }
                    }
                }
                for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                    let r = r0 + i;
                    let a = x.qs.as_ptr().add(r * w.k + b * BLOCK) as *const u8;
                    let mut s = _mm512_set1_epi32(-off * *x.sums.get_unchecked(r * nb + b));
                    match w.kind {
                        Kind::Q4K | Kind::Q6K => unreachable!("K-quants have their own tile code"),
                        Kind::Q8_0 => {
                            for (g, v) in wv.iter().enumerate() {
                                let av = _mm512_set1_epi32(
                                    (a.add(4 * g) as *const i32).read_unaligned(),
                                );
                                s = _mm512_dpbusd_epi32(s, *v, av);
                            }
                        }
                        Kind::Q4_0 | Kind::Q5_0 => {
                            for g in 0..4 {
                                let lo = _mm512_set1_epi32(
                                    (a.add(8 * g) as *const i32).read_unaligned(),
                                );
                                let hi = _mm512_set1_epi32(
                                    (a.add(8 * g + 4) as *const i32).read_unaligned(),
                                );
                                s = _mm512_dpbusd_epi32(s, wv[2 * g], lo);
                                s = _mm512_dpbusd_epi32(s, wv[2 * g + 1], hi);
                            }
                        }
                    }
                    let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*x.d.get_unchecked(r * nb + b)));
                    *fi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, *fi);
                }
            }
            for i in 0..n_rows {
                _mm512_storeu_ps(acc[i].as_mut_ptr(), f[i]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::QTensor;
    use candle_core::{Device, Tensor};

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Pack `n × k` random weights as `dtype` through candle's own quantizer; also return
    /// candle's dequantized copy (the exact values the packed form must reproduce).
    fn packed(dtype: GgmlDType, n: usize, k: usize, seed: u64) -> (PackedMatrix, Vec<f32>) {
        let w = Tensor::from_vec(random(n * k, seed), (n, k), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&w, dtype).unwrap();
        let deq = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let raw = q.data().unwrap();
        let kind = Kind::of(dtype).unwrap();
        (
            PackedMatrix::pack(kind, &raw, n, k).unwrap(),
            deq.to_vec1().unwrap(),
        )
    }

    /// Every type this module packs.
    const ALL: [GgmlDType; 5] = [
        GgmlDType::Q8_0,
        GgmlDType::Q4_0,
        GgmlDType::Q5_0,
        GgmlDType::Q4K,
        GgmlDType::Q6K,
    ];

    #[test]
    fn rows_dequantize_to_candles_values() {
        for dtype in ALL {
            let (n, k) = (
                37,
                if Kind::of(dtype).unwrap().is_k() {
                    512
                } else {
                    96
                },
            );
            let (p, deq) = packed(dtype, n, k, 7);
            let mut row = vec![0f32; k];
            for r in 0..n {
                p.dequantize_row(r, &mut row);
                assert_eq!(row, deq[r * k..(r + 1) * k], "{dtype:?} row {r}");
            }
        }
    }

    #[test]
    fn products_match_the_dequantized_reference_on_both_paths() {
        for dtype in ALL {
            // n not a multiple of the tile, m not a multiple of ROWS.
            let kind = Kind::of(dtype).unwrap();
            let (n, k, m) = (50, if kind.is_k() { 512 } else { 128 }, 7);
            let (p, deq) = packed(dtype, n, k, 11);
            let x = random(m * k, 3);
            let mut q = QuantRows::default();
            q.quantize(&x, m, k);
            let mut out = vec![f32::NAN; m * n];
            matmul(&p, &q, &mut out);
            let mut scalar = vec![f32::NAN; m * n];
            let chunks = m.div_ceil(ROWS);
            for t in 0..n.div_ceil(TILE) {
                for c in 0..chunks {
                    let rows = c * ROWS..(c * ROWS + ROWS).min(m);
                    let mut acc = [[0f32; TILE]; ROWS];
                    if kind.is_k() {
                        let six = kind == Kind::Q6K;
                        kquants::scalar_tile(six, p.tile(t), k, &q, rows.clone(), &mut acc);
                    } else {
                        scalar_tile(&p, &q, t, rows.clone(), &mut acc);
                    }
                    for (i, r) in rows.enumerate() {
                        for j in 0..TILE.min(n - t * TILE) {
                            scalar[r * n + t * TILE + j] = acc[i][j];
                        }
                    }
                }
            }
            for r in 0..m {
                for c in 0..n {
                    let exact: f32 = (0..k).map(|i| deq[c * k + i] * x[r * k + i]).sum();
                    let got = out[r * n + c];
                    // 8-bit activations: error well under 1% of the row's magnitude.
                    let scale: f32 = (0..k).map(|i| (deq[c * k + i] * x[r * k + i]).abs()).sum();
                    assert!(
                        (got - exact).abs() <= 0.01 * scale,
                        "{dtype:?} [{r},{c}]: {got} vs {exact}"
                    );
                    let s = scalar[r * n + c];
                    assert!(
                        (got - s).abs() <= 1e-4 * scale.max(1.0),
                        "{dtype:?} [{r},{c}]: simd {got} vs scalar {s}"
                    );
                }
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(PackedMatrix::pack(Kind::Q8_0, &[0; 34], 1, 33).is_err());
        assert!(PackedMatrix::pack(Kind::Q8_0, &[0; 33], 1, 32).is_err());
        assert!(PackedMatrix::pack(Kind::Q4_0, &[0; 18], 1, 32).is_ok());
        assert!(PackedMatrix::pack(Kind::Q4K, &[0; 144], 1, 256).is_ok());
        assert!(PackedMatrix::pack(Kind::Q4K, &[0; 144], 1, 128).is_err());
        assert!(PackedMatrix::pack(Kind::Q6K, &[0; 209], 1, 256).is_err());
    }
}
