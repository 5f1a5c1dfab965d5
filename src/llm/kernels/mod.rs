//! Quantized matrix products for the local model's hot path. Weight matrices of every common
//! GGUF type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, the K-quants Q2_K..Q6_K, F16 and BF16) are repacked
//! once, at load, into tiles of 16 output rows, and activations are quantized to 8 bits per
//! 32-value block with their sums kept for the offset and min corrections. Three paths run the
//! same integer arithmetic, picked at run time (see [`level`]):
//! - AVX-512 (F/BW/VNNI): one `vpdpbusd` adds 4 products for each of the 16 rows at once;
//! - AVX2 (+FMA, F16C): the tile in two halves of 8 rows, `vpmaddubsw` + `vpmaddwd` in place
//!   of `vpdpbusd` (16-bit pair sums added while they cannot overflow);
//! - scalar: portable, the reference the SIMD paths are tested against.
//!
//! This module holds the types, the run-time choice and the dispatch over tiles. The 32-column
//! types (their tile layout, packing and scalar kernel) are in `blocks`, their AVX-512 kernel in
//! `avx512`, the AVX2 kernels of every quantized type in `avx2`.
//!
//! With unsigned weights `w + o` and signed activations `a`, `Σ (w + o)·a = Σ w·a + o·Σ a`, so the
//! exact integer dot product is the sum started from `-o·Σ a`; the mins of Q4_1/Q5_1 add
//! `m·Σ a` in floating point. The K-quants (256-column superblocks) are in `kquants`, F16 and
//! BF16 (f32 products over converted rows, activations not quantized) in `float`. The tiles are
//! walked in parallel on [`pool`]'s threads; each thread writes whole tiles of the output.

use candle_core::quantized::GgmlDType;

mod avx2;
mod avx512;
mod blocks;
mod float;
mod kquants;
pub mod pool;
mod tiles;

pub use tiles::Tiles;

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
    Q4_1,
    Q5_0,
    Q5_1,
    /// K-quants: 256-column superblocks (see `kquants`).
    Q2K,
    Q3K,
    Q4K,
    Q5K,
    Q6K,
    /// Unquantized halves (see `float`).
    F16,
    BF16,
}

impl Kind {
    /// The kind for a GGUF tensor type, when this module handles it.
    pub fn of(dtype: GgmlDType) -> Option<Kind> {
        match dtype {
            GgmlDType::Q8_0 => Some(Kind::Q8_0),
            GgmlDType::Q4_0 => Some(Kind::Q4_0),
            GgmlDType::Q4_1 => Some(Kind::Q4_1),
            GgmlDType::Q5_0 => Some(Kind::Q5_0),
            GgmlDType::Q5_1 => Some(Kind::Q5_1),
            GgmlDType::Q2K => Some(Kind::Q2K),
            GgmlDType::Q3K => Some(Kind::Q3K),
            GgmlDType::Q4K => Some(Kind::Q4K),
            GgmlDType::Q5K => Some(Kind::Q5K),
            GgmlDType::Q6K => Some(Kind::Q6K),
            GgmlDType::F16 => Some(Kind::F16),
            GgmlDType::BF16 => Some(Kind::BF16),
            _ => None,
        }
    }

    /// Columns a row length must be a multiple of.
    pub fn granule(self) -> usize {
        if self.is_k() { kquants::SUPER } else { BLOCK }
    }

    fn is_k(self) -> bool {
        matches!(
            self,
            Kind::Q2K | Kind::Q3K | Kind::Q4K | Kind::Q5K | Kind::Q6K
        )
    }

    /// F16 or BF16: multiplied with the f32 activations, not the quantized ones.
    pub fn is_float(self) -> bool {
        matches!(self, Kind::F16 | Kind::BF16)
    }

    /// Q4_1 and Q5_1: `w = d·q + m`.
    fn has_min(self) -> bool {
        matches!(self, Kind::Q4_1 | Kind::Q5_1)
    }

    /// Q5_0 and Q5_1: fifth-bit masks after the nibbles.
    fn has_fifth(self) -> bool {
        matches!(self, Kind::Q5_0 | Kind::Q5_1)
    }

    /// Bytes of a GGUF row of `k` values.
    fn gguf_row_bytes(self, k: usize) -> usize {
        if self.is_k() {
            k / kquants::SUPER * kquants::gguf_block(self)
        } else if self.is_float() {
            2 * k
        } else {
            k / BLOCK * self.gguf_block_bytes()
        }
    }

    /// Bytes of one packed tile (16 rows) of `k` columns.
    fn tile_bytes(self, k: usize) -> usize {
        if self.is_k() {
            k / kquants::SUPER * kquants::tile_super(self)
        } else if self.is_float() {
            2 * TILE * k
        } else {
            k / BLOCK * self.tile_block_bytes()
        }
    }

    /// Bytes of one GGUF block of a 32-column type (f16 scale, f16 min, fifth bits, quants).
    fn gguf_block_bytes(self) -> usize {
        match self {
            Kind::Q8_0 => 2 + BLOCK,
            Kind::Q4_0 => 2 + BLOCK / 2,
            Kind::Q4_1 => 4 + BLOCK / 2,
            Kind::Q5_0 => 2 + 4 + BLOCK / 2,
            Kind::Q5_1 => 4 + 4 + BLOCK / 2,
            _ => unreachable!("{self:?} is not a 32-column block type"),
        }
    }

    /// Bytes of the f16 scales (and mins) at the start of a tile-block.
    fn head_bytes(self) -> usize {
        if self.has_min() { 4 * TILE } else { 2 * TILE }
    }

    /// Bytes of quants per tile-block (Q5: nibbles, then the fifth-bit masks).
    fn qs_bytes(self) -> usize {
        match self {
            Kind::Q8_0 => TILE * BLOCK,
            Kind::Q4_0 | Kind::Q4_1 => TILE * BLOCK / 2,
            Kind::Q5_0 | Kind::Q5_1 => TILE * BLOCK / 2 + TILE * BLOCK / 8,
            _ => unreachable!("{self:?} is not a 32-column block type"),
        }
    }

    /// Bytes per tile-block: the f16 scales (and mins) then the quants.
    fn tile_block_bytes(self) -> usize {
        self.head_bytes() + self.qs_bytes()
    }

    /// The unsigned offset the packed weights of a 32-column type carry.
    fn offset(self) -> i32 {
        match self {
            Kind::Q8_0 => 128,
            Kind::Q4_0 => 8,
            Kind::Q5_0 => 16,
            _ => 0,
        }
    }
}

/// Which kernels run: picked once per process from the CPU's features and the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Portable integer arithmetic (`LSMTUNE_NO_SIMD=1`, or a CPU without AVX2/FMA/F16C).
    Scalar,
    /// AVX2 + FMA + F16C (`LSMTUNE_NO_AVX512=1` forces it on an AVX-512 machine).
    Avx2,
    /// AVX-512 F/BW/VNNI.
    Avx512,
}

/// The kernels this process uses, checked at run time: the binary itself targets Haswell.
pub fn level() -> Level {
    use std::sync::OnceLock;
    static LEVEL: OnceLock<Level> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        if std::env::var_os("LSMTUNE_NO_SIMD").is_some() {
            return Level::Scalar;
        }
        let best = supported();
        if best == Level::Avx512 && std::env::var_os("LSMTUNE_NO_AVX512").is_some() {
            Level::Avx2
        } else {
            best
        }
    })
}

/// The best level this CPU can run, whatever the environment says.
pub fn supported() -> Level {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("f16c")
            && is_x86_feature_detected!("fma")
        {
            return Level::Avx512;
        }
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            return Level::Avx2;
        }
    }
    Level::Scalar
}

/// Whether the SIMD kernels run (AVX-512 or AVX2): the transformer packs its matrices for them
/// and otherwise leaves them to candle.
pub fn simd_available() -> bool {
    level() != Level::Scalar
}

/// A weight matrix `n × k` (n output rows) repacked into tiles.
pub struct PackedMatrix {
    kind: Kind,
    n: usize,
    k: usize,
    data: Tiles,
}

impl std::fmt::Debug for PackedMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedMatrix({:?}, {}x{})", self.kind, self.n, self.k)
    }
}

impl PackedMatrix {
    /// Repack the raw GGUF bytes of an `n × k` matrix (row-major blocks). Errors when the byte
    /// count does not match or `k` is not a multiple of the kind's block.
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
        let data = if kind.is_k() {
            kquants::pack(kind, raw, n, k)
        } else if kind.is_float() {
            float::pack(raw, n, k)
        } else {
            blocks::pack(kind, raw, n, k)
        };
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

    /// The bytes of tile `t`.
    fn tile(&self, t: usize) -> &[u8] {
        let tb = self.kind.tile_bytes(self.k);
        &self.data[t * tb..(t + 1) * tb]
    }

    /// Row `row` dequantized into `out` (`k` values): an embedding lookup.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let (t, r) = (row / TILE, row % TILE);
        let tile = self.tile(t);
        if self.kind.is_k() {
            kquants::dequantize_row(self.kind, tile, self.k, r, out);
        } else if self.kind.is_float() {
            float::dequantize_row(self.kind, tile, r, out);
        } else {
            blocks::dequantize_row(self.kind, tile, self.k, r, out);
        }
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
    /// Sums of the first 16 values of each block (the K-quants with 16-column scales).
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
}

/// `out[r][c] = Σ_k w[c][k]·x[r][k]` for every activation row `r` and output row `c` of `w`;
/// `x` is `m × k` (row-major) and `xq` the same rows quantized (the F16/BF16 kernels read `x`,
/// the others `xq`); `out` is `m × n`, row-major. Runs on the [`pool`] threads with the
/// kernels of [`level`].
pub fn matmul(w: &PackedMatrix, x: &[f32], xq: &QuantRows, out: &mut [f32]) {
    matmul_at(level(), w, x, xq, out)
}

/// [`matmul`] on the kernels of `level` (which this CPU must support).
pub fn matmul_at(level: Level, w: &PackedMatrix, x: &[f32], xq: &QuantRows, out: &mut [f32]) {
    assert!(
        level <= supported(),
        "matmul: {level:?} is not supported here"
    );
    let m = if w.kind.is_float() {
        assert!(x.len().is_multiple_of(w.k), "matmul: width mismatch");
        x.len() / w.k
    } else {
        assert_eq!(w.k, xq.k, "matmul: width mismatch");
        xq.m
    };
    assert!(out.len() >= m * w.n, "matmul: output too small");
    let tiles = w.n.div_ceil(TILE);
    let chunks = m.div_ceil(ROWS);
    let out_ptr = SendPtr(out.as_mut_ptr());
    let work = |range: std::ops::Range<usize>| {
        let out_ptr = &out_ptr;
        for item in range {
            let (t, c) = (item / chunks, item % chunks);
            let rows = c * ROWS..(c * ROWS + ROWS).min(m);
            let mut acc = [[0f32; TILE]; ROWS];
            tile_at(level, w, x, xq, t, rows.clone(), &mut acc);
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
        pool::run_chunked(items, work);
    }
}

/// Tile `t` of `w` against the activation rows `rows`, on the kernels of `level`.
fn tile_at(
    level: Level,
    w: &PackedMatrix,
    x: &[f32],
    xq: &QuantRows,
    t: usize,
    rows: std::ops::Range<usize>,
    acc: &mut [[f32; TILE]; ROWS],
) {
    let (kind, k, tile) = (w.kind, w.k, w.tile(t));
    let x_rows = || &x[rows.start * k..rows.end * k];
    match level {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: matmul_at checked that the CPU supports the level's features; the tile holds
        // the kind's blocks for `k` columns.
        Level::Avx512 => unsafe {
            if kind.is_k() {
                kquants::simd::tile(kind, tile, k, xq, rows, acc)
            } else if kind.is_float() {
                float::avx512_tile(kind, tile, k, x_rows(), acc)
            } else {
                avx512::tile(kind, tile, k, xq, rows, acc)
            }
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Level::Avx2 => unsafe {
            if kind.is_k() {
                avx2::ktile(kind, tile, k, xq, rows, acc)
            } else if kind.is_float() {
                float::avx2_tile(kind, tile, k, x_rows(), acc)
            } else {
                avx2::tile(kind, tile, k, xq, rows, acc)
            }
        },
        _ => {
            if kind.is_k() {
                kquants::scalar_tile(kind, tile, k, xq, rows, acc)
            } else if kind.is_float() {
                float::scalar_tile(kind, tile, k, x_rows(), acc)
            } else {
                blocks::scalar_tile(kind, tile, k, xq, rows, acc)
            }
        }
    }
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only written at disjoint offsets by the work items of one call.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

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
    const ALL: [GgmlDType; 12] = [
        GgmlDType::Q8_0,
        GgmlDType::Q4_0,
        GgmlDType::Q4_1,
        GgmlDType::Q5_0,
        GgmlDType::Q5_1,
        GgmlDType::Q2K,
        GgmlDType::Q3K,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
        GgmlDType::F16,
        GgmlDType::BF16,
    ];

    /// Every path this CPU can run, the scalar reference first.
    fn levels() -> Vec<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512]
            .into_iter()
            .filter(|l| *l <= supported())
            .collect()
    }

    #[test]
    fn rows_dequantize_to_candles_values() {
        for dtype in ALL {
            let kind = Kind::of(dtype).unwrap();
            let (n, k) = (37, if kind.is_k() { 512 } else { 96 });
            let (p, deq) = packed(dtype, n, k, 7);
            let mut row = vec![0f32; k];
            for r in 0..n {
                p.dequantize_row(r, &mut row);
                assert_eq!(row, deq[r * k..(r + 1) * k], "{dtype:?} row {r}");
            }
        }
    }

    #[test]
    fn products_match_the_dequantized_reference_on_every_path() {
        if levels().len() == 1 {
            eprintln!(
                "SKIPPED (SIMD vs scalar): this CPU runs no SIMD path; only the scalar kernel is \
                 checked, against the dequantized reference"
            );
        } else {
            eprintln!("paths: {:?}", levels());
        }
        for dtype in ALL {
            // n not a multiple of the tile, m not a multiple of ROWS.
            let kind = Kind::of(dtype).unwrap();
            let (n, k) = (50, if kind.is_k() { 512 } else { 128 });
            let (p, deq) = packed(dtype, n, k, 11);
            for m in [1, 7] {
                let x = random(m * k, 3 + m as u64);
                let mut q = QuantRows::default();
                q.quantize(&x, m, k);
                let mut scalar = vec![f32::NAN; m * n];
                matmul_at(Level::Scalar, &p, &x, &q, &mut scalar);
                for level in levels() {
                    let mut out = vec![f32::NAN; m * n];
                    matmul_at(level, &p, &x, &q, &mut out);
                    for r in 0..m {
                        for c in 0..n {
                            let exact: f32 = (0..k).map(|i| deq[c * k + i] * x[r * k + i]).sum();
                            let got = out[r * n + c];
                            // 8-bit activations: error well under 1% of the row's magnitude.
                            let scale: f32 =
                                (0..k).map(|i| (deq[c * k + i] * x[r * k + i]).abs()).sum();
                            assert!(
                                (got - exact).abs() <= 0.01 * scale,
                                "{dtype:?} {level:?} [{r},{c}]: {got} vs {exact}"
                            );
                            let s = scalar[r * n + c];
                            assert!(
                                (got - s).abs() <= 1e-4 * scale.max(1.0),
                                "{dtype:?} {level:?} [{r},{c}]: {got} vs scalar {s}"
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_shapes_are_errors() {
        assert!(PackedMatrix::pack(Kind::Q8_0, &[0; 34], 1, 33).is_err());
        assert!(PackedMatrix::pack(Kind::Q8_0, &[0; 33], 1, 32).is_err());
        assert!(PackedMatrix::pack(Kind::Q4_0, &[0; 18], 1, 32).is_ok());
        assert!(PackedMatrix::pack(Kind::Q4_1, &[0; 20], 1, 32).is_ok());
        assert!(PackedMatrix::pack(Kind::Q5_1, &[0; 22], 1, 32).is_err());
        assert!(PackedMatrix::pack(Kind::Q4K, &[0; 144], 1, 256).is_ok());
        assert!(PackedMatrix::pack(Kind::Q4K, &[0; 144], 1, 128).is_err());
        assert!(PackedMatrix::pack(Kind::Q6K, &[0; 209], 1, 256).is_err());
        assert!(PackedMatrix::pack(Kind::Q2K, &[0; 84], 1, 256).is_ok());
        assert!(PackedMatrix::pack(Kind::F16, &[0; 64], 1, 32).is_ok());
    }
}
