//! Q4_K and Q6_K matrices (the bulk of the Q4_K_M files users download for 1.5B and larger
//! models) in the same 16-row tiles as the other kernels, kept as compact as in the file.
//!
//! One tile-superblock covers 16 rows × 256 columns:
//! - Q4_K (4.625 bits per value, the file has 4.5): the rows' f16 `d` and `dmin`, then per
//!   32-column sub-block the rows' 6-bit scales and mins (one byte each) and the 4-bit values in
//!   the Q4_0 group layout. `w = d·sc·q − dmin·m`, so a row's sub-block dot product is
//!   `d·sc·Σ q·a − dmin·m·Σ a`: the VNNI sum needs no offset and the activation sums carry the
//!   mins.
//! - Q6_K (6.56 bits per value, as in the file): the rows' f16 `d`, then per 32-column
//!   sub-block the two 16-column signed scales, the low 4 bits in the Q4_0 group layout, and
//!   the two high bits as four 64-bit masks per group (put back with masked byte adds).
//!   Values are `q − 32`, corrected with the activation sums of each 16-column half.

use half::f16;

use super::{BLOCK, QuantRows, ROWS, TILE};

/// Columns per superblock.
pub const SUPER: usize = 256;
/// Sub-blocks (of 32 columns) per superblock.
const SUBS: usize = SUPER / BLOCK;

/// Bytes of one GGUF block.
pub const Q4K_BLOCK: usize = 2 + 2 + 12 + SUPER / 2;
pub const Q6K_BLOCK: usize = SUPER / 2 + SUPER / 4 + SUPER / 16 + 2;

/// Bytes of one packed sub-block and tile-superblock.
const Q4K_SUB: usize = 2 * TILE + TILE * BLOCK / 2;
pub const Q4K_TILE_SUPER: usize = 4 * TILE + SUBS * Q4K_SUB;
const Q6K_SUB: usize = 2 * TILE + TILE * BLOCK / 2 + 4 * 32;
pub const Q6K_TILE_SUPER: usize = 2 * TILE + SUBS * Q6K_SUB;

/// ggml's 6-bit scale and min of sub-block `j` of a Q4_K block.
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

/// The values (0..15), scales and mins of a Q4_K block.
fn decode_q4k(b: &[u8]) -> ([u8; SUPER], [u8; SUBS], [u8; SUBS]) {
    let (scales, qs) = (&b[4..16], &b[16..]);
    let mut q = [0u8; SUPER];
    let (mut sc, mut mn) = ([0u8; SUBS], [0u8; SUBS]);
    for c in 0..4 {
        for l in 0..32 {
            q[64 * c + l] = qs[32 * c + l] & 0x0F;
            q[64 * c + 32 + l] = qs[32 * c + l] >> 4;
        }
    }
    for j in 0..SUBS {
        (sc[j], mn[j]) = scale_min(j, scales);
    }
    (q, sc, mn)
}

/// The values (0..63), 16 scales and `d` of a Q6_K block.
fn decode_q6k(b: &[u8]) -> ([u8; SUPER], [i8; 16]) {
    let (ql, qh, scales) = (&b[..128], &b[128..192], &b[192..208]);
    let mut q = [0u8; SUPER];
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
    let mut sc = [0i8; 16];
    for (s, b) in sc.iter_mut().zip(scales) {
        *s = *b as i8;
    }
    (q, sc)
}

/// Write the low 4 bits of one row's 32 values into the Q4_0 group layout at `nib`.
fn put_nibbles(nib: &mut [u8], r: usize, q: &[u8]) {
    for g in 0..BLOCK / 8 {
        for j in 0..4 {
            nib[g * TILE * 4 + r * 4 + j] =
                (q[8 * g + j] & 0x0F) | ((q[8 * g + j + 4] & 0x0F) << 4);
        }
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

fn or_u64_at(b: &mut [u8], at: usize, v: u64) {
    let v = u64_at(b, at) | v;
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Repack `n × k` blocks of `block` bytes into tile-superblocks of `tile_super` bytes: `put`
/// writes one source block as row `r` of its tile-superblock.
fn pack(
    raw: &[u8],
    n: usize,
    k: usize,
    block: usize,
    tile_super: usize,
    put: impl Fn(&[u8], &mut [u8], usize),
) -> Vec<u8> {
    let ns = k / SUPER;
    let mut data = vec![0u8; n.div_ceil(TILE) * ns * tile_super];
    for row in 0..n {
        let (t, r) = (row / TILE, row % TILE);
        for s in 0..ns {
            let src = &raw[(row * ns + s) * block..][..block];
            put(src, &mut data[(t * ns + s) * tile_super..][..tile_super], r);
        }
    }
    data
}

/// Repack `n × k` Q4_K blocks; `k` is a multiple of 256 and the size was checked.
pub fn pack_q4k(raw: &[u8], n: usize, k: usize) -> Vec<u8> {
    pack(raw, n, k, Q4K_BLOCK, Q4K_TILE_SUPER, |src, dst, r| {
        dst[2 * r..2 * r + 2].copy_from_slice(&src[0..2]);
        dst[2 * TILE + 2 * r..2 * TILE + 2 * r + 2].copy_from_slice(&src[2..4]);
        let (q, sc, mn) = decode_q4k(src);
        for j in 0..SUBS {
            let sub = &mut dst[4 * TILE + j * Q4K_SUB..][..Q4K_SUB];
            sub[r] = sc[j];
            sub[TILE + r] = mn[j];
            put_nibbles(&mut sub[2 * TILE..], r, &q[BLOCK * j..BLOCK * (j + 1)]);
        }
    })
}

/// Repack `n × k` Q6_K blocks; `k` is a multiple of 256 and the size was checked.
pub fn pack_q6k(raw: &[u8], n: usize, k: usize) -> Vec<u8> {
    pack(raw, n, k, Q6K_BLOCK, Q6K_TILE_SUPER, |src, dst, r| {
        dst[2 * r..2 * r + 2].copy_from_slice(&src[208..210]);
        let (q, sc) = decode_q6k(src);
        for j in 0..SUBS {
            let sub = &mut dst[2 * TILE + j * Q6K_SUB..][..Q6K_SUB];
            sub[r] = sc[2 * j] as u8;
            sub[TILE + r] = sc[2 * j + 1] as u8;
            let q = &q[BLOCK * j..BLOCK * (j + 1)];
            put_nibbles(&mut sub[2 * TILE..], r, q);
            let masks = 2 * TILE + TILE * BLOCK / 2;
            for g in 0..BLOCK / 8 {
                for jj in 0..4 {
                    let bit = r * 4 + jj;
                    let (lo, hi) = (q[8 * g + jj] as u64, q[8 * g + jj + 4] as u64);
                    let at = masks + g * 32;
                    or_u64_at(sub, at, ((lo >> 4) & 1) << bit);
                    or_u64_at(sub, at + 8, ((hi >> 4) & 1) << bit);
                    or_u64_at(sub, at + 16, ((lo >> 5) & 1) << bit);
                    or_u64_at(sub, at + 24, ((hi >> 5) & 1) << bit);
                }
            }
        }
    })
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Value `i` (0..32) of row `r` in a packed sub-block: the low 4 bits from the nibbles, plus
/// the Q6_K high bits when `masks` is given.
fn value(sub: &[u8], r: usize, i: usize, six: bool) -> u32 {
    let (g, j, high) = (i / 8, i % 4, (i % 8) >= 4);
    let byte = sub[2 * TILE + g * TILE * 4 + r * 4 + j];
    let mut v = if high { byte >> 4 } else { byte & 0x0F } as u32;
    if six {
        let at = 2 * TILE + TILE * BLOCK / 2 + g * 32 + if high { 8 } else { 0 };
        let bit = r * 4 + j;
        v |= (((u64_at(sub, at) >> bit) & 1) << 4) as u32;
        v |= (((u64_at(sub, at + 16) >> bit) & 1) << 5) as u32;
    }
    v
}

/// Row `r` of a tile's superblocks dequantized into `out` (`k` values).
pub fn dequantize_row(six: bool, tile: &[u8], k: usize, r: usize, out: &mut [f32]) {
    for s in 0..k / SUPER {
        if six {
            let sb = &tile[s * Q6K_TILE_SUPER..][..Q6K_TILE_SUPER];
            let d = f16_at(sb, 2 * r);
            for j in 0..SUBS {
                let sub = &sb[2 * TILE + j * Q6K_SUB..][..Q6K_SUB];
                for i in 0..BLOCK {
                    let sc = sub[if i < 16 { r } else { TILE + r }] as i8 as f32;
                    out[s * SUPER + j * BLOCK + i] =
                        d * sc * (value(sub, r, i, true) as f32 - 32.0);
                }
            }
        } else {
            let sb = &tile[s * Q4K_TILE_SUPER..][..Q4K_TILE_SUPER];
            let (d, dmin) = (f16_at(sb, 2 * r), f16_at(sb, 2 * TILE + 2 * r));
            for j in 0..SUBS {
                let sub = &sb[4 * TILE + j * Q4K_SUB..][..Q4K_SUB];
                let (sc, mn) = (sub[r] as f32, sub[TILE + r] as f32);
                for i in 0..BLOCK {
                    out[s * SUPER + j * BLOCK + i] =
                        d * sc * value(sub, r, i, false) as f32 - dmin * mn;
                }
            }
        }
    }
}

/// One tile against up to `ROWS` activation rows, portably (the reference for the SIMD one).
pub fn scalar_tile(
    six: bool,
    tile: &[u8],
    k: usize,
    x: &QuantRows,
    rows: std::ops::Range<usize>,
    acc: &mut [[f32; TILE]; ROWS],
) {
    let nb = k / BLOCK;
    for s in 0..k / SUPER {
        let sb = if six {
            &tile[s * Q6K_TILE_SUPER..][..Q6K_TILE_SUPER]
        } else {
            &tile[s * Q4K_TILE_SUPER..][..Q4K_TILE_SUPER]
        };
        for j in 0..SUBS {
            let blk = s * SUBS + j;
            for (i, xr) in rows.clone().enumerate() {
                let a = &x.qs[xr * k + blk * BLOCK..][..BLOCK];
                let (da, sum) = (x.d[xr * nb + blk], x.sums[xr * nb + blk]);
                let sum_lo = x.sums16[xr * nb + blk];
                for (r, acc) in acc[i].iter_mut().enumerate() {
                    if six {
                        let sub = &sb[2 * TILE + j * Q6K_SUB..][..Q6K_SUB];
                        let d = f16_at(sb, 2 * r);
                        let (mut d1, mut d2) = (-32 * sum_lo, -32 * (sum - sum_lo));
                        for (ii, a) in a.iter().enumerate() {
                            let p = value(sub, r, ii, true) as i32 * *a as i32;
                            if ii < 16 { d1 += p } else { d2 += p }
                        }
                        let (s1, s2) = (sub[r] as i8 as f32, sub[TILE + r] as i8 as f32);
                        *acc += da * d * (d1 as f32 * s1 + d2 as f32 * s2);
                    } else {
                        let sub = &sb[4 * TILE + j * Q4K_SUB..][..Q4K_SUB];
                        let (d, dmin) = (f16_at(sb, 2 * r), f16_at(sb, 2 * TILE + 2 * r));
                        let dot: i32 = a
                            .iter()
                            .enumerate()
                            .map(|(ii, a)| value(sub, r, ii, false) as i32 * *a as i32)
                            .sum();
                        *acc += da
                            * (d * sub[r] as f32 * dot as f32
                                - dmin * sub[TILE + r] as f32 * sum as f32);
                    }
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
    /// The CPU must support avx512f, avx512bw and avx512vnni; `tile` holds `k / 256`
    /// superblocks of the kind.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
    pub unsafe fn tile(
        six: bool,
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
            let (c16, c32) = (_mm512_set1_epi8(16), _mm512_set1_epi8(32));
            let sb_bytes = if six { Q6K_TILE_SUPER } else { Q4K_TILE_SUPER };
            for s in 0..k / SUPER {
                let sb = tile.as_ptr().add(s * sb_bytes);
                let dv = _mm512_cvtph_ps(_mm256_loadu_si256(sb as *const __m256i));
                let dminv = if six {
                    _mm512_setzero_ps()
                } else {
                    _mm512_cvtph_ps(_mm256_loadu_si256(sb.add(2 * TILE) as *const __m256i))
                };
                for j in 0..SUBS {
                    let blk = s * SUBS + j;
                    let sub = if six {
                        sb.add(2 * TILE + j * Q6K_SUB)
                    } else {
                        sb.add(4 * TILE + j * Q4K_SUB)
                    };
                    let bytes = |at: usize| _mm_loadu_si128(sub.add(at) as *const __m128i);
                    let (sc1, sc2) = if six {
                        (
                            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes(0))), dv),
                            _mm512_mul_ps(
                                _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes(TILE))),
                                dv,
                            ),
                        )
                    } else {
                        (
                            _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes(0))), dv),
                            _mm512_mul_ps(
                                _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes(TILE))),
                                dminv,
                            ),
                        )
                    };
                    let nib = sub.add(2 * TILE);
                    let masks = nib.add(TILE * BLOCK / 2) as *const u64;
                    let mut wv = [_mm512_setzero_si512(); 8];
                    for g in 0..4 {
                        let v = _mm512_loadu_si512(nib.add(g * 64) as *const __m512i);
                        let mut lo = _mm512_and_si512(v, low);
                        let mut hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
                        if six {
                            let m = masks.add(4 * g);
                            lo = _mm512_mask_add_epi8(lo, m.read_unaligned(), lo, c16);
                            hi = _mm512_mask_add_epi8(hi, m.add(1).read_unaligned(), hi, c16);
                            lo = _mm512_mask_add_epi8(lo, m.add(2).read_unaligned(), lo, c32);
                            hi = _mm512_mask_add_epi8(hi, m.add(3).read_unaligned(), hi, c32);
                        }
                        wv[2 * g] = lo;
                        wv[2 * g + 1] = hi;
                    }
                    for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                        let r = r0 + i;
                        let a = x.qs.as_ptr().add(r * k + blk * BLOCK) as *const u8;
                        let da = *x.d.get_unchecked(r * nb + blk);
                        let sum = *x.sums.get_unchecked(r * nb + blk);
                        let bc = |at: usize| {
                            _mm512_set1_epi32((a.add(at) as *const i32).read_unaligned())
                        };
                        if six {
                            let sum_lo = *x.sums16.get_unchecked(r * nb + blk);
                            let mut s1 = _mm512_set1_epi32(-32 * sum_lo);
                            let mut s2 = _mm512_set1_epi32(-32 * (sum - sum_lo));
                            s1 = _mm512_dpbusd_epi32(s1, wv[0], bc(0));
                            s1 = _mm512_dpbusd_epi32(s1, wv[1], bc(4));
                            s1 = _mm512_dpbusd_epi32(s1, wv[2], bc(8));
                            s1 = _mm512_dpbusd_epi32(s1, wv[3], bc(12));
                            s2 = _mm512_dpbusd_epi32(s2, wv[4], bc(16));
                            s2 = _mm512_dpbusd_epi32(s2, wv[5], bc(20));
                            s2 = _mm512_dpbusd_epi32(s2, wv[6], bc(24));
                            s2 = _mm512_dpbusd_epi32(s2, wv[7], bc(28));
                            let dav = _mm512_set1_ps(da);
                            *fi = _mm512_fmadd_ps(
                                _mm512_cvtepi32_ps(s1),
                                _mm512_mul_ps(sc1, dav),
                                *fi,
                            );
                            *fi = _mm512_fmadd_ps(
                                _mm512_cvtepi32_ps(s2),
                                _mm512_mul_ps(sc2, dav),
                                *fi,
                            );
                        } else {
                            let mut d = _mm512_setzero_si512();
                            for g in 0..4 {
                                d = _mm512_dpbusd_epi32(d, wv[2 * g], bc(8 * g));
                                d = _mm512_dpbusd_epi32(d, wv[2 * g + 1], bc(8 * g + 4));
                            }
                            *fi = _mm512_fmadd_ps(
                                _mm512_cvtepi32_ps(d),
                                _mm512_mul_ps(sc1, _mm512_set1_ps(da)),
                                *fi,
                            );
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
