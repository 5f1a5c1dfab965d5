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
//! Layout of one tile-block (16 rows × 32 columns) of the 32-column types:
//! - `d`: the 16 rows' f16 block scales; Q4_1 and Q5_1 then the 16 rows' f16 mins `m`;
//! - Q8_0 `qs`: 8 groups × 16 rows × 4 bytes, each weight stored as `q + 128` (unsigned);
//! - Q4_0/Q4_1 `qs`: 4 groups × 16 rows × 4 bytes, byte `j` of group `g` holding the 4-bit
//!   values of columns `8g + j` (low nibble) and `8g + j + 4` (high nibble), unsigned (Q4_0:
//!   `q + 8`);
//! - Q5_0/Q5_1: the Q4 layout for the low 4 bits, then per group two 64-bit masks (one bit per
//!   row and byte, for the low and the high nibbles) holding the fifth bit, unsigned (Q5_0:
//!   `q + 16`). A masked byte add (AVX-512 BW) or a byte compare of the expanded bits (AVX2)
//!   puts the fifth bit back. As many bytes per row and block as in the GGUF file.
//!
//! With unsigned weights `w + o` and signed activations `a`, `Σ (w + o)·a = Σ w·a + o·Σ a`, so the
//! exact integer dot product is the sum started from `-o·Σ a`; the mins of Q4_1/Q5_1 add
//! `m·Σ a` in floating point. The K-quants (256-column superblocks) are in `kquants`, F16 and
//! BF16 (f32 products over converted rows, activations not quantized) in `float`. The tiles are
//! walked in parallel on [`pool`]'s threads; each thread writes whole tiles of the output.

use candle_core::quantized::GgmlDType;
use half::f16;

mod avx2;
mod float;
mod kquants;
pub mod pool;

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

/// The zeroed buffer of a matrix's packed tiles. Buffers of 2 MiB and more are 2 MiB-aligned and,
/// on Linux, advised onto transparent huge pages before anything touches them (honoured in the
/// common `madvise` THP mode): a decode step streams every weight once, and with 4 KiB pages
/// the TLB misses cost about as much as the arithmetic on F16 matrices (llama.cpp reads the file
/// through the page cache, which the kernel may map with large folios).
pub struct Tiles {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
    layout: std::alloc::Layout,
}

// SAFETY: `Tiles` owns its bytes like a `Vec<u8>`.
unsafe impl Send for Tiles {}
unsafe impl Sync for Tiles {}

const HUGE: usize = 2 << 20;

impl Tiles {
    fn zeroed(len: usize) -> Tiles {
        let align = if len >= HUGE { HUGE } else { 64 };
        let layout = std::alloc::Layout::from_size_align(len.max(1), align)
            .expect("a matrix buffer size fits a layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { std::alloc::alloc(layout) };
        let Some(ptr) = std::ptr::NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        #[cfg(target_os = "linux")]
        if len >= HUGE {
            // SAFETY: the range lies inside the allocation; the call only advises the kernel.
            unsafe {
                libc::madvise(
                    raw as *mut libc::c_void,
                    len / HUGE * HUGE,
                    libc::MADV_HUGEPAGE,
                );
            }
        }
        // SAFETY: `len` bytes were allocated (and are zeroed here before any read).
        unsafe { std::ptr::write_bytes(raw, 0, len) };
        Tiles { ptr, len, layout }
    }
}

impl std::ops::Deref for Tiles {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` initialized bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Tiles {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Tiles {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout.
        unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
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

fn f16_at(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
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
            pack_simple(kind, raw, n, k)
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

    /// Row `row` dequantized into `out` (`k` values): an embedding lookup.
    pub fn dequantize_row(&self, row: usize, out: &mut [f32]) {
        let (t, r) = (row / TILE, row % TILE);
        if self.kind.is_k() {
            kquants::dequantize_row(self.kind, self.tile(t), self.k, r, out);
            return;
        }
        if self.kind.is_float() {
            float::dequantize_row(self.kind, self.tile(t), r, out);
            return;
        }
        let off = self.kind.offset();
        let min = self.kind.has_min();
        for b in 0..self.k / BLOCK {
            let tb = self.tile_block(t, b);
            let d = f16_at(tb, 2 * r).to_f32();
            let m = if min {
                f16_at(tb, 2 * TILE + 2 * r).to_f32()
            } else {
                0.0
            };
            for (o, v) in out[b * BLOCK..][..BLOCK]
                .iter_mut()
                .zip(stored(self.kind, tb, r))
            {
                // As candle and ggml compute it: `(q - o)·d`, or `q·d + m`.
                *o = if min {
                    v as f32 * d + m
                } else {
                    (v - off) as f32 * d
                };
            }
        }
    }
}

/// The fifth bits of Q5 group `g` in a tile-block: (low-nibble mask, high-nibble mask), one bit
/// per `row * 4 + j`.
fn fifth_bits(kind: Kind, tb: &[u8], g: usize) -> (u64, u64) {
    let at = kind.head_bytes() + TILE * BLOCK / 2 + g * 16;
    (
        u64::from_le_bytes(tb[at..at + 8].try_into().unwrap()),
        u64::from_le_bytes(tb[at + 8..at + 16].try_into().unwrap()),
    )
}

/// Repack a matrix of a 32-column type.
fn pack_simple(kind: Kind, raw: &[u8], n: usize, k: usize) -> Tiles {
    let nb = k / BLOCK;
    let bb = kind.gguf_block_bytes();
    let tiles = n.div_ceil(TILE);
    let tb = kind.tile_block_bytes();
    let head = kind.head_bytes();
    let mut data = Tiles::zeroed(tiles * nb * tb);
    for t in 0..tiles {
        for b in 0..nb {
            let dst = &mut data[(t * nb + b) * tb..][..tb];
            for r in 0..TILE {
                let row = t * TILE + r;
                if row >= n {
                    // Padding rows: a zero scale (and min) makes them contribute nothing.
                    continue;
                }
                let src = &raw[(row * nb + b) * bb..][..bb];
                dst[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
                let mut qs = &src[2..];
                if kind.has_min() {
                    dst[2 * TILE + 2 * r..2 * TILE + 2 * r + 2].copy_from_slice(&qs[0..2]);
                    qs = &qs[2..];
                }
                if kind == Kind::Q8_0 {
                    for g in 0..BLOCK / 4 {
                        for j in 0..4 {
                            dst[head + g * TILE * 4 + r * 4 + j] =
                                (qs[4 * g + j] as i8 as i16 + 128) as u8;
                        }
                    }
                    continue;
                }
                let (qh, qs) = if kind.has_fifth() {
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
                        dst[head + g * TILE * 4 + r * 4 + j] =
                            q(8 * g + j) | (q(8 * g + j + 4) << 4);
                    }
                    if kind.has_fifth() {
                        let masks = head + TILE * BLOCK / 2 + g * 16;
                        let mut lo = u64::from_le_bytes(dst[masks..masks + 8].try_into().unwrap());
                        let mut hi =
                            u64::from_le_bytes(dst[masks + 8..masks + 16].try_into().unwrap());
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
    data
}

/// The 32 stored (unsigned, offset) values of row `r` in a tile-block of a 32-column type.
fn stored(kind: Kind, tb: &[u8], r: usize) -> [i32; BLOCK] {
    let qs = &tb[kind.head_bytes()..];
    let mut v = [0i32; BLOCK];
    if kind == Kind::Q8_0 {
        for g in 0..BLOCK / 4 {
            for j in 0..4 {
                v[4 * g + j] = qs[g * TILE * 4 + r * 4 + j] as i32;
            }
        }
        return v;
    }
    for g in 0..BLOCK / 8 {
        let (lo, hi) = if kind.has_fifth() {
            fifth_bits(kind, tb, g)
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
    v
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

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.m
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
                simd::tile(kind, tile, k, xq, rows, acc)
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
                scalar_tile(kind, tile, k, xq, rows, acc)
            }
        }
    }
}

struct SendPtr(*mut f32);
// SAFETY: the pointer is only written at disjoint offsets by the work items of one call.
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

/// One tile of a 32-column type against up to `ROWS` activation rows, portably: the same
/// integer arithmetic as the SIMD kernels.
fn scalar_tile(
    kind: Kind,
    tile: &[u8],
    k: usize,
    x: &QuantRows,
    rows: std::ops::Range<usize>,
    acc: &mut [[f32; TILE]; ROWS],
) {
    let nb = k / BLOCK;
    let off = kind.offset();
    let tbb = kind.tile_block_bytes();
    for b in 0..nb {
        let tb = &tile[b * tbb..][..tbb];
        for (i, r) in rows.clone().enumerate() {
            let a = &x.qs[r * k + b * BLOCK..][..BLOCK];
            let (da, sum) = (x.d[r * nb + b], x.sums[r * nb + b]);
            for (row, acc) in acc[i].iter_mut().enumerate() {
                let dot = stored(kind, tb, row)
                    .iter()
                    .zip(a)
                    .fold(-off * sum, |s, (v, a)| s + v * *a as i32);
                *acc += dot as f32 * (f16_at(tb, 2 * row).to_f32() * da);
                if kind.has_min() {
                    *acc += f16_at(tb, 2 * TILE + 2 * row).to_f32() * (da * sum as f32);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod simd {
    use super::*;
    use std::arch::x86_64::*;

    /// One tile of a 32-column type against up to `ROWS` activation rows with AVX-512 VNNI.
    ///
    /// # Safety
    /// The CPU must support avx512f, avx512bw, avx512vnni and f16c; `tile` holds `k / 32`
    /// tile-blocks of the kind.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c,fma")]
    pub(super) unsafe fn tile(
        kind: Kind,
        tile: &[u8],
        k: usize,
        x: &QuantRows,
        rows: std::ops::Range<usize>,
        acc: &mut [[f32; TILE]; ROWS],
    ) {
        // SAFETY: the offsets below stay inside the tile's data and the activation rows.
        unsafe {
            let nb = k / BLOCK;
            let off = kind.offset();
            let tb_bytes = kind.tile_block_bytes();
            let head = kind.head_bytes();
            let (min, fifth) = (kind.has_min(), kind.has_fifth());
            debug_assert_eq!(tile.len(), nb * tb_bytes);
            let base = tile.as_ptr();
            let n_rows = rows.len();
            let r0 = rows.start;
            let mut f = [_mm512_setzero_ps(); ROWS];
            let low = _mm512_set1_epi8(0x0F);
            let sixteen = _mm512_set1_epi8(16);
            for b in 0..nb {
                let tb = base.add(b * tb_bytes);
                let dw = _mm512_cvtph_ps(_mm256_loadu_si256(tb as *const __m256i));
                let mw = if min {
                    _mm512_cvtph_ps(_mm256_loadu_si256(tb.add(2 * TILE) as *const __m256i))
                } else {
                    _mm512_setzero_ps()
                };
                let qs = tb.add(head);
                // Weights of this tile-block, loaded once for all activation rows: vector `v`
                // multiplies activation bytes `4v..4v + 4`.
                let mut wv = [_mm512_setzero_si512(); 8];
                if kind == Kind::Q8_0 {
                    for (g, v) in wv.iter_mut().enumerate() {
                        *v = _mm512_loadu_si512(qs.add(g * 64) as *const __m512i);
                    }
                } else {
                    for g in 0..4 {
                        let v = _mm512_loadu_si512(qs.add(g * 64) as *const __m512i);
                        let mut lo = _mm512_and_si512(v, low);
                        let mut hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                        if fifth {
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
                for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                    let r = r0 + i;
                    let a = x.qs.as_ptr().add(r * k + b * BLOCK) as *const u8;
                    let sum = *x.sums.get_unchecked(r * nb + b);
                    let mut s = _mm512_set1_epi32(-off * sum);
                    for (v, w) in wv.iter().enumerate() {
                        let av = _mm512_set1_epi32((a.add(4 * v) as *const i32).read_unaligned());
                        s = _mm512_dpbusd_epi32(s, *w, av);
                    }
                    let da = *x.d.get_unchecked(r * nb + b);
                    let scale = _mm512_mul_ps(dw, _mm512_set1_ps(da));
                    *fi = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), scale, *fi);
                    if min {
                        *fi = _mm512_fmadd_ps(mw, _mm512_set1_ps(da * sum as f32), *fi);
                    }
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
        eprintln!("paths: {:?}", levels());
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
