//! The K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K: 256-column superblocks, the bulk of the
//! Q4_K_M and similar files users download) in the same 16-row tiles as the other kernels,
//! kept about as compact as in the file.
//!
//! One tile-superblock covers 16 rows × 256 columns: a head with the rows' f16 `d` (and `dmin`),
//! then 8 sub-blocks of 32 columns, each starting with two bytes per row (scales, mins) and then
//! the values, unsigned:
//! - Q4_K (4.625 bits per value, the file has 4.5): 6-bit scale and min, the 4-bit values in
//!   the Q4_0 group layout. `w = d·sc·q − dmin·m`, so a row's sub-block dot product is
//!   `d·sc·Σ q·a − dmin·m·Σ a`: the integer sum needs no offset and the activation sums carry
//!   the mins.
//! - Q5_K (5.625, file 5.5): as Q4_K, then per group the two 64-bit masks of the fifth bit
//!   (as Q5_0).
//! - Q6_K (6.56, as in the file): the two 16-column signed scales, the low 4 bits in the Q4_0
//!   group layout and the two high bits as four 64-bit masks per group. Values are `q − 32`,
//!   corrected with the activation sums of each 16-column half.
//! - Q3_K (3.5, file 3.44): the two 16-column signed scales (`sc − 32`), the low 2 bits in the
//!   2-bit layout, then the third bit as one 64-bit mask per 4-column group. Values `q − 4`.
//! - Q2_K (2.625, as in the file): per 16-column half one byte holding the 4-bit scale (low)
//!   and min (high), the 2-bit values in the 2-bit layout. `w = d·sc·q − dmin·m` per half.
//!
//! The 2-bit layout: 2 groups (16 columns each) × 16 rows × 4 bytes; bits `2s..2s + 2` of byte
//! `j` of group `g` hold column `16g + 4s + j`, so one 64-byte load, shifted by `2s` and masked,
//! gives the values of 4 columns of every row, as a nibble half does in the Q4_0 layout.

use half::f16;

use super::{BLOCK, Kind, QuantRows, ROWS, TILE};

/// Columns per superblock.
pub const SUPER: usize = 256;
/// Sub-blocks (of 32 columns) per superblock.
const SUBS: usize = SUPER / BLOCK;

/// Bytes of one GGUF block of `kind`.
pub fn gguf_block(kind: Kind) -> usize {
    match kind {
        Kind::Q2K => SUPER / 16 + SUPER / 4 + 4,
        Kind::Q3K => SUPER / 8 + SUPER / 4 + 12 + 2,
        Kind::Q4K => 2 + 2 + 12 + SUPER / 2,
        Kind::Q5K => 2 + 2 + 12 + SUPER / 8 + SUPER / 2,
        Kind::Q6K => SUPER / 2 + SUPER / 4 + SUPER / 16 + 2,
        _ => unreachable!("{kind:?} is not a K-quant"),
    }
}

/// Bytes of the head of a tile-superblock: f16 `d` (and `dmin`) per row.
pub fn head(kind: Kind) -> usize {
    match kind {
        Kind::Q3K | Kind::Q6K => 2 * TILE,
        _ => 4 * TILE,
    }
}

/// Bytes of the values in a packed sub-block (after its two scale bytes per row).
fn values(kind: Kind) -> usize {
    if crumbs(kind) {
        TILE * BLOCK / 4
    } else {
        TILE * BLOCK / 2
    }
}

/// Whether the low bits are in the 2-bit layout (else the Q4_0 nibble layout).
pub fn crumbs(kind: Kind) -> bool {
    matches!(kind, Kind::Q2K | Kind::Q3K)
}

/// Bytes of one packed sub-block.
pub fn sub(kind: Kind) -> usize {
    let masks = match kind {
        Kind::Q2K | Kind::Q4K => 0,
        Kind::Q3K => 8 * 8,
        Kind::Q5K => 4 * 16,
        Kind::Q6K => 4 * 32,
        _ => unreachable!("{kind:?} is not a K-quant"),
    };
    2 * TILE + values(kind) + masks
}

/// Bytes of one packed tile-superblock.
pub fn tile_super(kind: Kind) -> usize {
    head(kind) + SUBS * sub(kind)
}

/// The integer offset of the stored values (`q_stored = q + offset`) of the 16-column kinds.
pub fn offset(kind: Kind) -> i32 {
    match kind {
        Kind::Q6K => 32,
        Kind::Q3K => 4,
        _ => 0,
    }
}

/// ggml's 6-bit scale and min of sub-block `j` of a Q4_K or Q5_K block.
fn scale_min(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// A GGUF block decoded: the 256 stored values and two bytes per sub-block (scales, mins).
struct Decoded {
    q: [u8; SUPER],
    first: [u8; SUBS],
    second: [u8; SUBS],
}

/// Decode one GGUF block of `kind`.
fn decode(kind: Kind, b: &[u8]) -> Decoded {
    let mut out = Decoded {
        q: [0; SUPER],
        first: [0; SUBS],
        second: [0; SUBS],
    };
    let q = &mut out.q;
    match kind {
        Kind::Q4K | Kind::Q5K => {
            let scales = &b[4..16];
            let (qh, qs) = if kind == Kind::Q5K {
                (&b[16..48], &b[48..])
            } else {
                (&b[0..0], &b[16..])
            };
            for c in 0..4 {
                for l in 0..32 {
                    q[64 * c + l] = qs[32 * c + l] & 0x0F;
                    q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
                    if kind == Kind::Q5K {
                        q[64 * c + l] |= ((qh[l] >> (2 * c)) & 1) << 4;
                        q[64 * c + 32 + l] |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                }
            }
            for j in 0..SUBS {
                (out.first[j], out.second[j]) = scale_min(j, scales);
            }
        }
        Kind::Q6K => {
            let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
            for half in 0..2 {
                let (ql, qh) = (&ql[64 * half..], &qh[32 * half..]);
                let y = &mut q[128 * half..];
                for l in 0..32 {
                    y[l] = (ql[l] & 0x0F) | ((qh[l] & 3) << 4);
                    y[l + 32] = (ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4);
                    y[l + 64] = (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4);
                    y[l + 96] = (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4);
                }
            }
            for j in 0..SUBS {
                (out.first[j], out.second[j]) = (scales[2 * j], scales[2 * j + 1]);
            }
        }
        Kind::Q3K => {
            let (hm, qs, s) = (&b[..32], &b[32..96], &b[96..108]);
            // ggml's 6-bit scales: low 4 bits from s[0..8], high 2 bits from s[8..12].
            for i in 0..16 {
                let low = if i < 8 { s[i] & 0x0F } else { s[i - 8] >> 4 };
                let high = (s[8 + i % 4] >> (2 * (i / 4))) & 3;
                let sc = ((low | (high << 4)) as i8).wrapping_sub(32) as u8;
                if i % 2 == 0 {
                    out.first[i / 2] = sc;
                } else {
                    out.second[i / 2] = sc;
                }
            }
            for n in 0..2 {
                for j in 0..4 {
                    for l in 0..32 {
                        let low = (qs[32 * n + l] >> (2 * j)) & 3;
                        let high = (hm[l] >> (4 * n + j)) & 1;
                        q[128 * n + 32 * j + l] = low | (high << 2);
                    }
                }
            }
        }
        Kind::Q2K => {
            let (s, qs) = (&b[..16], &b[16..80]);
            for n in 0..2 {
                for j in 0..4 {
                    for l in 0..32 {
                        q[128 * n + 32 * j + l] = (qs[32 * n + l] >> (2 * j)) & 3;
                    }
                }
            }
            for j in 0..SUBS {
                (out.first[j], out.second[j]) = (s[2 * j], s[2 * j + 1]);
            }
        }
        _ => unreachable!("{kind:?} is not a K-quant"),
    }
    out
}

/// The f16 `d` and `dmin` of a GGUF block of `kind` (dmin 0 where there is none).
fn block_scales(kind: Kind, b: &[u8]) -> ([u8; 2], [u8; 2]) {
    let at = |i: usize| [b[i], b[i + 1]];
    match kind {
        Kind::Q4K | Kind::Q5K => (at(0), at(2)),
        Kind::Q6K => (at(208), [0, 0]),
        Kind::Q3K => (at(108), [0, 0]),
        Kind::Q2K => (at(80), at(82)),
        _ => unreachable!("{kind:?} is not a K-quant"),
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn or_u64_at(b: &mut [u8], at: usize, v: u64) {
    let v = u64_at(b, at) | v;
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where value `i` (0..32) of row `r` lives in a packed sub-block's values: (byte, shift).
fn place(kind: Kind, r: usize, i: usize) -> (usize, u32) {
    if crumbs(kind) {
        let (g, s, j) = (i / 16, (i % 16) / 4, i % 4);
        (2 * TILE + g * TILE * 4 + r * 4 + j, 2 * s as u32)
    } else {
        let (g, j, high) = (i / 8, i % 4, (i % 8) >= 4);
        (
            2 * TILE + g * TILE * 4 + r * 4 + j,
            if high { 4 } else { 0 },
        )
    }
}

/// The masks of the high bits of value `i` of a sub-block: (offset of the mask, bit it adds)
/// for each high bit the kind has (the first `n` of the array).
fn masks(kind: Kind, i: usize) -> ([(usize, u32); 2], usize) {
    let at = 2 * TILE + values(kind);
    let (g, high) = (i / 8, (i % 8) >= 4);
    let h = if high { 8 } else { 0 };
    match kind {
        Kind::Q3K => ([(at + (i / 4) * 8, 2), (0, 0)], 1),
        Kind::Q5K => ([(at + g * 16 + h, 4), (0, 0)], 1),
        Kind::Q6K => ([(at + g * 32 + h, 4), (at + g * 32 + 16 + h, 5)], 2),
        _ => ([(0, 0); 2], 0),
    }
}

/// Repack `n × k` blocks of `kind`; `k` is a multiple of 256 and the size was checked.
pub fn pack(kind: Kind, raw: &[u8], n: usize, k: usize) -> super::Tiles {
    let ns = k / SUPER;
    let (block, ts, sb) = (gguf_block(kind), tile_super(kind), sub(kind));
    let hd = head(kind);
    let bits = if crumbs(kind) { 3 } else { 15 };
    let mut data = super::Tiles::zeroed(n.div_ceil(TILE) * ns * ts);
    for row in 0..n {
        let (t, r) = (row / TILE, row % TILE);
        for s in 0..ns {
            let src = &raw[(row * ns + s) * block..][..block];
            let dst = &mut data[(t * ns + s) * ts..][..ts];
            let (d, dmin) = block_scales(kind, src);
            dst[2 * r..2 * r + 2].copy_from_slice(&d);
            if hd == 4 * TILE {
                dst[2 * TILE + 2 * r..2 * TILE + 2 * r + 2].copy_from_slice(&dmin);
            }
            let dec = decode(kind, src);
            for j in 0..SUBS {
                let sub = &mut dst[hd + j * sb..][..sb];
                sub[r] = dec.first[j];
                sub[TILE + r] = dec.second[j];
                for i in 0..BLOCK {
                    let v = dec.q[BLOCK * j + i];
                    let (at, shift) = place(kind, r, i);
                    sub[at] |= (v & bits) << shift;
                    let bit = r * 4 + i % 4;
                    let (ms, count) = masks(kind, i);
                    for &(m, b) in &ms[..count] {
                        or_u64_at(sub, m, (((v >> b) & 1) as u64) << bit);
                    }
                }
            }
        }
    }
    data
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Stored value `i` (0..32) of row `r` in a packed sub-block.
fn value(kind: Kind, sub: &[u8], r: usize, i: usize) -> i32 {
    let (at, shift) = place(kind, r, i);
    let bits = if crumbs(kind) { 3 } else { 15 };
    let mut v = ((sub[at] >> shift) & bits) as i32;
    let bit = r * 4 + i % 4;
    let (ms, count) = masks(kind, i);
    for &(m, b) in &ms[..count] {
        v |= (((u64_at(sub, m) >> bit) & 1) as i32) << b;
    }
    v
}

/// Row `r` of a tile's superblocks dequantized into `out` (`k` values), as ggml computes it.
pub fn dequantize_row(kind: Kind, tile: &[u8], k: usize, r: usize, out: &mut [f32]) {
    let (ts, sb, hd) = (tile_super(kind), sub(kind), head(kind));
    for s in 0..k / SUPER {
        let blk = &tile[s * ts..][..ts];
        let d = f16_at(blk, 2 * r);
        let dmin = if hd == 4 * TILE {
            f16_at(blk, 2 * TILE + 2 * r)
        } else {
            0.0
        };
        for j in 0..SUBS {
            let sub = &blk[hd + j * sb..][..sb];
            let (a, b) = (sub[r], sub[TILE + r]);
            for i in 0..BLOCK {
                let v = value(kind, sub, r, i);
                let second = i >= 16;
                out[s * SUPER + j * BLOCK + i] = match kind {
                    Kind::Q4K | Kind::Q5K => d * a as f32 * v as f32 - dmin * b as f32,
                    Kind::Q6K | Kind::Q3K => {
                        let sc = if second { b } else { a } as i8 as f32;
                        d * sc * (v - offset(kind)) as f32
                    }
                    _ => {
                        let sc = if second { b } else { a };
                        let dl = d * (sc & 0x0F) as f32;
                        let ml = dmin * (sc >> 4) as f32;
                        dl * v as f32 - ml
                    }
                };
            }
        }
    }
}

/// One tile against up to `ROWS` activation rows, portably (the reference for the SIMD ones).
pub fn scalar_tile(
    kind: Kind,
    tile: &[u8],
    k: usize,
    x: &QuantRows,
    rows: std::ops::Range<usize>,
    acc: &mut [[f32; TILE]; ROWS],
) {
    let nb = k / BLOCK;
    let (ts, sb, hd) = (tile_super(kind), sub(kind), head(kind));
    let off = offset(kind);
    for s in 0..k / SUPER {
        let blk = &tile[s * ts..][..ts];
        for j in 0..SUBS {
            let b = s * SUBS + j;
            let sub = &blk[hd + j * sb..][..sb];
            for (i, xr) in rows.clone().enumerate() {
                let a = &x.qs[xr * k + b * BLOCK..][..BLOCK];
                let (da, sum) = (x.d[xr * nb + b], x.sums[xr * nb + b]);
                let sum_lo = x.sums16[xr * nb + b];
                let sum_hi = sum - sum_lo;
                for (r, acc) in acc[i].iter_mut().enumerate() {
                    let (mut d1, mut d2) = (-off * sum_lo, -off * sum_hi);
                    for (ii, a) in a.iter().enumerate() {
                        let p = value(kind, sub, r, ii) * *a as i32;
                        if ii < 16 { d1 += p } else { d2 += p }
                    }
                    let d = f16_at(blk, 2 * r);
                    let dmin = if hd == 4 * TILE {
                        f16_at(blk, 2 * TILE + 2 * r)
                    } else {
                        0.0
                    };
                    let (f, g) = (sub[r], sub[TILE + r]);
                    *acc += da
                        * match kind {
                            Kind::Q4K | Kind::Q5K => {
                                d * f as f32 * (d1 + d2) as f32 - dmin * g as f32 * sum as f32
                            }
                            Kind::Q6K | Kind::Q3K => {
                                d * (d1 as f32 * f as i8 as f32 + d2 as f32 * g as i8 as f32)
                            }
                            _ => {
                                d * (d1 as f32 * (f & 0x0F) as f32 + d2 as f32 * (g & 0x0F) as f32)
                                    - dmin
                                        * ((f >> 4) as f32 * sum_lo as f32
                                            + (g >> 4) as f32 * sum_hi as f32)
                            }
                        };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub mod simd {
    use super::*;
    use std::arch::x86_64::*;

    /// One tile against up to `ROWS` activation rows with AVX-512 VNNI.
    ///
    /// # Safety
    /// The CPU must support avx512f, avx512bw, avx512vnni, f16c and fma; `tile` holds `k / 256`
    /// superblocks of the kind.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c,fma")]
    pub unsafe fn tile(
        kind: Kind,
        tile: &[u8],
        k: usize,
        x: &QuantRows,
        rows: std::ops::Range<usize>,
        acc: &mut [[f32; TILE]; ROWS],
    ) {
        // SAFETY: every offset below stays inside `tile` and the activation rows.
        unsafe {
            let nb = k / BLOCK;
            let n_rows = rows.len();
            let r0 = rows.start;
            let mut f = [_mm512_setzero_ps(); ROWS];
            let low = _mm512_set1_epi8(0x0F);
            let three = _mm512_set1_epi8(3);
            let (c4, c16, c32) = (
                _mm512_set1_epi8(4),
                _mm512_set1_epi8(16),
                _mm512_set1_epi8(32),
            );
            let (ts, sb, hd) = (tile_super(kind), sub(kind), head(kind));
            let off = offset(kind);
            debug_assert_eq!(tile.len(), k / SUPER * ts);
            let halves = matches!(kind, Kind::Q2K | Kind::Q3K | Kind::Q6K);
            for s in 0..k / SUPER {
                let blk = tile.as_ptr().add(s * ts);
                let dv = _mm512_cvtph_ps(_mm256_loadu_si256(blk as *const __m256i));
                let dminv = if hd == 4 * TILE {
                    _mm512_cvtph_ps(_mm256_loadu_si256(blk.add(2 * TILE) as *const __m256i))
                } else {
                    _mm512_setzero_ps()
                };
                for j in 0..SUBS {
                    let b = s * SUBS + j;
                    let sub = blk.add(hd + j * sb);
                    let bytes = |at: usize| _mm_loadu_si128(sub.add(at) as *const __m128i);
                    let f32s = |v: __m512i| _mm512_cvtepi32_ps(v);
                    // Per-row factors: sc1/sc2 multiply the two integer sums (or the one sum,
                    // sc2 then being dmin·m), mn1/mn2 the two activation sums (Q2_K).
                    let (mut mn1, mut mn2) = (_mm512_setzero_ps(), _mm512_setzero_ps());
                    let (sc1, sc2) = match kind {
                        Kind::Q4K | Kind::Q5K => (
                            _mm512_mul_ps(f32s(_mm512_cvtepu8_epi32(bytes(0))), dv),
                            _mm512_mul_ps(f32s(_mm512_cvtepu8_epi32(bytes(TILE))), dminv),
                        ),
                        Kind::Q6K | Kind::Q3K => (
                            _mm512_mul_ps(f32s(_mm512_cvtepi8_epi32(bytes(0))), dv),
                            _mm512_mul_ps(f32s(_mm512_cvtepi8_epi32(bytes(TILE))), dv),
                        ),
                        _ => {
                            let (a, b) = (
                                _mm512_cvtepu8_epi32(bytes(0)),
                                _mm512_cvtepu8_epi32(bytes(TILE)),
                            );
                            let m4 = _mm512_set1_epi32(0x0F);
                            mn1 = _mm512_mul_ps(f32s(_mm512_srli_epi32(a, 4)), dminv);
                            mn2 = _mm512_mul_ps(f32s(_mm512_srli_epi32(b, 4)), dminv);
                            (
                                _mm512_mul_ps(f32s(_mm512_and_si512(a, m4)), dv),
                                _mm512_mul_ps(f32s(_mm512_and_si512(b, m4)), dv),
                            )
                        }
                    };
                    let vals = sub.add(2 * TILE);
                    let mk = vals.add(values(kind)) as *const u64;
                    // Vector `v` multiplies activation bytes `4v..4v + 4`.
                    let mut wv = [_mm512_setzero_si512(); 8];
                    if crumbs(kind) {
                        for g in 0..2 {
                            let v = _mm512_loadu_si512(vals.add(g * 64) as *const __m512i);
                            for sh in 0..4 {
                                let c = 4 * g + sh;
                                let mut w = _mm512_and_si512(
                                    _mm512_srlv_epi16(v, _mm512_set1_epi16(2 * sh as i16)),
                                    three,
                                );
                                if kind == Kind::Q3K {
                                    w = _mm512_mask_add_epi8(w, mk.add(c).read_unaligned(), w, c4);
                                }
                                wv[c] = w;
                            }
                        }
                    } else {
                        for g in 0..4 {
                            let v = _mm512_loadu_si512(vals.add(g * 64) as *const __m512i);
                            let mut lo = _mm512_and_si512(v, low);
                            let mut hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                            match kind {
                                Kind::Q5K => {
                                    let m = mk.add(2 * g);
                                    lo = _mm512_mask_add_epi8(lo, m.read_unaligned(), lo, c16);
                                    hi = _mm512_mask_add_epi8(
                                        hi,
                                        m.add(1).read_unaligned(),
                                        hi,
                                        c16,
                                    );
                                }
                                Kind::Q6K => {
                                    let m = mk.add(4 * g);
                                    lo = _mm512_mask_add_epi8(lo, m.read_unaligned(), lo, c16);
                                    hi = _mm512_mask_add_epi8(
                                        hi,
                                        m.add(1).read_unaligned(),
                                        hi,
                                        c16,
                                    );
                                    lo = _mm512_mask_add_epi8(
                                        lo,
                                        m.add(2).read_unaligned(),
                                        lo,
                                        c32,
                                    );
                                    hi = _mm512_mask_add_epi8(
                                        hi,
                                        m.add(3).read_unaligned(),
                                        hi,
                                        c32,
                                    );
                                }
                                _ => {}
                            }
                            wv[2 * g] = lo;
                            wv[2 * g + 1] = hi;
                        }
                    }
                    for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                        let r = r0 + i;
                        let a = x.qs.as_ptr().add(r * k + b * BLOCK) as *const u8;
                        let da = *x.d.get_unchecked(r * nb + b);
                        let sum = *x.sums.get_unchecked(r * nb + b);
                        let sum_lo = *x.sums16.get_unchecked(r * nb + b);
                        let bc = |v: usize| {
                            _mm512_set1_epi32((a.add(4 * v) as *const i32).read_unaligned())
                        };
                        let mut s1 = _mm512_set1_epi32(-off * sum_lo);
                        let mut s2 = _mm512_set1_epi32(-off * (sum - sum_lo));
                        for v in 0..4 {
                            s1 = _mm512_dpbusd_epi32(s1, wv[v], bc(v));
                            s2 = _mm512_dpbusd_epi32(s2, wv[v + 4], bc(v + 4));
                        }
                        let dav = _mm512_set1_ps(da);
                        if halves {
                            *fi = _mm512_fmadd_ps(f32s(s1), _mm512_mul_ps(sc1, dav), *fi);
                            *fi = _mm512_fmadd_ps(f32s(s2), _mm512_mul_ps(sc2, dav), *fi);
                            if kind == Kind::Q2K {
                                *fi =
                                    _mm512_fnmadd_ps(mn1, _mm512_set1_ps(da * sum_lo as f32), *fi);
                                *fi = _mm512_fnmadd_ps(
                                    mn2,
                                    _mm512_set1_ps(da * (sum - sum_lo) as f32),
                                    *fi,
                                );
                            }
                        } else {
                            let d = _mm512_add_epi32(s1, s2);
                            *fi = _mm512_fmadd_ps(f32s(d), _mm512_mul_ps(sc1, dav), *fi);
                            *fi = _mm512_fnmadd_ps(sc2, _mm512_set1_ps(da * sum as f32), *fi);
                        }
                    }
                }
            }
            for (i, fi) in f.iter().enumerate().take(n_rows) {
                _mm512_storeu_ps(acc[i].as_mut_ptr(), *fi);
            }
        }
    }
}
