//! The AVX2 (no AVX-512) kernels: the same tiles and integer arithmetic as the AVX-512 ones,
//! each 16-row tile taken as two halves of 8 rows (one 256-bit vector holds 8 rows × 4 bytes).
//! `vpmaddubsw` multiplies unsigned weights by signed activations and adds pairs into 16 bits,
//! several of those are added while the sum cannot overflow (the weights' range bounds it), and
//! `vpmaddwd` by ones widens to one 32-bit sum per row, as `vpdpbusd` gives directly. Q8_0
//! weights (up to 255 unsigned, which could overflow the pair sum) are turned back to signed
//! and multiplied as `|w|·(a·sign w)`, llama.cpp's trick. The high-bit masks are expanded to
//! bytes with a shuffle and a compare.

#![cfg(target_arch = "x86_64")]

use std::arch::x86_64::*;

use super::kquants::{SUPER, crumbs, head, offset, sub, tile_super};
use super::{BLOCK, Kind, QuantRows, ROWS, TILE};

/// Bytes where bit `i` of `m` is set become 0xFF, the others 0.
#[inline]
#[target_feature(enable = "avx2")]
fn expand(m: u32) -> __m256i {
    let v = _mm256_set1_epi32(m as i32);
    let shuf = _mm256_setr_epi8(
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
        3, 3,
    );
    let bits = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    let b = _mm256_and_si256(_mm256_shuffle_epi8(v, shuf), bits);
    _mm256_cmpeq_epi8(b, bits)
}

/// The 32 mask bits of half `h` (rows `8h..8h + 8`) of a 64-bit tile mask at `p`.
///
/// # Safety
/// `p` must point to 8 readable bytes.
#[inline]
unsafe fn half_mask(p: *const u64, h: usize) -> u32 {
    // SAFETY: the caller's promise.
    unsafe { (p.read_unaligned() >> (32 * h)) as u32 }
}

/// Add `add` to the bytes of `w` whose mask bit is set.
#[inline]
#[target_feature(enable = "avx2")]
fn mask_add(w: __m256i, m: u32, add: __m256i) -> __m256i {
    _mm256_add_epi8(w, _mm256_and_si256(expand(m), add))
}

/// Broadcast the 4 activation bytes at `a`.
///
/// # Safety
/// `a` must point to 4 readable bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn bc(a: *const u8) -> __m256i {
    // SAFETY: the caller's promise.
    unsafe { _mm256_set1_epi32((a as *const i32).read_unaligned()) }
}

/// 16-bit pair sums of unsigned weights times signed activations.
#[inline]
#[target_feature(enable = "avx2")]
fn pairs(w: __m256i, a: __m256i) -> __m256i {
    _mm256_maddubs_epi16(w, a)
}

/// Widen 16-bit sums to one 32-bit sum per row (4 bytes).
#[inline]
#[target_feature(enable = "avx2")]
fn widen(p: __m256i) -> __m256i {
    _mm256_madd_epi16(p, _mm256_set1_epi16(1))
}

/// The 8 rows' f16 values of half `h` at `p` as f32.
///
/// # Safety
/// `p` must point to 32 readable bytes (16 f16).
#[inline]
#[target_feature(enable = "avx2,f16c")]
unsafe fn halves_f16(p: *const u8, h: usize) -> __m256 {
    // SAFETY: the caller's promise.
    unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.add(16 * h) as *const __m128i)) }
}

/// One tile of a 32-column type against up to `ROWS` activation rows with AVX2.
///
/// # Safety
/// The CPU must support avx2, fma and f16c; `tile` holds `k / 32` tile-blocks of the kind.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn tile(
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
        let tb_bytes = kind.tile_block_bytes();
        let head = kind.head_bytes();
        let (min, fifth) = (kind.has_min(), kind.has_fifth());
        // Q8_0 is multiplied signed: no offset.
        let off = if kind == Kind::Q8_0 { 0 } else { kind.offset() };
        let base = tile.as_ptr();
        let n_rows = rows.len();
        let r0 = rows.start;
        let low = _mm256_set1_epi8(0x0F);
        let sixteen = _mm256_set1_epi8(16);
        let flip = _mm256_set1_epi8(-128);
        // Both halves of each tile-block in turn, so each cache line of the tile is read once.
        let mut acc2 = [[_mm256_setzero_ps(); ROWS]; 2];
        for b in 0..nb {
            for (h, f) in acc2.iter_mut().enumerate() {
                let tb = base.add(b * tb_bytes);
                let dw = halves_f16(tb, h);
                let mw = if min {
                    halves_f16(tb.add(2 * TILE), h)
                } else {
                    _mm256_setzero_ps()
                };
                let qs = tb.add(head);
                // Vector `v` multiplies activation bytes `4v..4v + 4`.
                let mut wv = [_mm256_setzero_si256(); 8];
                if kind == Kind::Q8_0 {
                    for (g, v) in wv.iter_mut().enumerate() {
                        let u = _mm256_loadu_si256(qs.add(g * 64 + 32 * h) as *const __m256i);
                        *v = _mm256_xor_si256(u, flip);
                    }
                } else {
                    for g in 0..4 {
                        let v = _mm256_loadu_si256(qs.add(g * 64 + 32 * h) as *const __m256i);
                        let mut lo = _mm256_and_si256(v, low);
                        let mut hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                        if fifth {
                            let masks = qs.add(TILE * BLOCK / 2 + g * 16) as *const u64;
                            lo = mask_add(lo, half_mask(masks, h), sixteen);
                            hi = mask_add(hi, half_mask(masks.add(1), h), sixteen);
                        }
                        wv[2 * g] = lo;
                        wv[2 * g + 1] = hi;
                    }
                }
                let abs = if kind == Kind::Q8_0 {
                    let mut abs = [_mm256_setzero_si256(); 8];
                    for (a, w) in abs.iter_mut().zip(&wv) {
                        *a = _mm256_abs_epi8(*w);
                    }
                    abs
                } else {
                    wv
                };
                for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                    let r = r0 + i;
                    let a = x.qs.as_ptr().add(r * k + b * BLOCK) as *const u8;
                    let sum = *x.sums.get_unchecked(r * nb + b);
                    let mut s = _mm256_set1_epi32(-off * sum);
                    match kind {
                        Kind::Q8_0 => {
                            for v in 0..8 {
                                let av = _mm256_sign_epi8(bc(a.add(4 * v)), wv[v]);
                                s = _mm256_add_epi32(s, widen(pairs(abs[v], av)));
                            }
                        }
                        Kind::Q4_0 | Kind::Q4_1 => {
                            // Values up to 15: all 16 pair sums of the block fit 16 bits.
                            let mut p = pairs(wv[0], bc(a));
                            for (v, w) in wv.iter().enumerate().skip(1) {
                                p = _mm256_add_epi16(p, pairs(*w, bc(a.add(4 * v))));
                            }
                            s = _mm256_add_epi32(s, widen(p));
                        }
                        _ => {
                            // Values up to 31: four pair sums at a time.
                            for q in 0..2 {
                                let mut p = pairs(wv[4 * q], bc(a.add(16 * q)));
                                for v in 1..4 {
                                    let v = 4 * q + v;
                                    p = _mm256_add_epi16(p, pairs(wv[v], bc(a.add(4 * v))));
                                }
                                s = _mm256_add_epi32(s, widen(p));
                            }
                        }
                    }
                    let da = *x.d.get_unchecked(r * nb + b);
                    let scale = _mm256_mul_ps(dw, _mm256_set1_ps(da));
                    *fi = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, *fi);
                    if min {
                        *fi = _mm256_fmadd_ps(mw, _mm256_set1_ps(da * sum as f32), *fi);
                    }
                }
            }
        }
        for (h, f) in acc2.iter().enumerate() {
            for i in 0..n_rows {
                _mm256_storeu_ps(acc[i].as_mut_ptr().add(8 * h), f[i]);
            }
        }
    }
}

/// One tile of a K-quant against up to `ROWS` activation rows with AVX2.
///
/// # Safety
/// The CPU must support avx2, fma and f16c; `tile` holds `k / 256` superblocks of the kind.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn ktile(
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
        let low = _mm256_set1_epi8(0x0F);
        let three = _mm256_set1_epi8(3);
        let (c4, c16, c32) = (
            _mm256_set1_epi8(4),
            _mm256_set1_epi8(16),
            _mm256_set1_epi8(32),
        );
        let (ts, sb, hd) = (tile_super(kind), sub(kind), head(kind));
        let off = offset(kind);
        let halves = matches!(kind, Kind::Q2K | Kind::Q3K | Kind::Q6K);
        let vals_bytes = if crumbs(kind) {
            TILE * BLOCK / 4
        } else {
            TILE * BLOCK / 2
        };
        let m4 = _mm256_set1_epi32(0x0F);
        // Both halves of each sub-block in turn, so each cache line of the tile is read once.
        let mut acc2 = [[_mm256_setzero_ps(); ROWS]; 2];
        for s in 0..k / SUPER {
            let blk = tile.as_ptr().add(s * ts);
            for j in 0..kquants_subs() {
                for (h, f) in acc2.iter_mut().enumerate() {
                    let dv = halves_f16(blk, h);
                    let dminv = if hd == 4 * TILE {
                        halves_f16(blk.add(2 * TILE), h)
                    } else {
                        _mm256_setzero_ps()
                    };
                    let b = s * kquants_subs() + j;
                    let sub = blk.add(hd + j * sb);
                    let bytes = |at: usize| _mm_loadl_epi64(sub.add(at + 8 * h) as *const __m128i);
                    let f32s = |v: __m256i| _mm256_cvtepi32_ps(v);
                    let (mut mn1, mut mn2) = (_mm256_setzero_ps(), _mm256_setzero_ps());
                    let (sc1, sc2) = match kind {
                        Kind::Q4K | Kind::Q5K => (
                            _mm256_mul_ps(f32s(_mm256_cvtepu8_epi32(bytes(0))), dv),
                            _mm256_mul_ps(f32s(_mm256_cvtepu8_epi32(bytes(TILE))), dminv),
                        ),
                        Kind::Q6K | Kind::Q3K => (
                            _mm256_mul_ps(f32s(_mm256_cvtepi8_epi32(bytes(0))), dv),
                            _mm256_mul_ps(f32s(_mm256_cvtepi8_epi32(bytes(TILE))), dv),
                        ),
                        _ => {
                            let (a, b) = (
                                _mm256_cvtepu8_epi32(bytes(0)),
                                _mm256_cvtepu8_epi32(bytes(TILE)),
                            );
                            mn1 = _mm256_mul_ps(f32s(_mm256_srli_epi32(a, 4)), dminv);
                            mn2 = _mm256_mul_ps(f32s(_mm256_srli_epi32(b, 4)), dminv);
                            (
                                _mm256_mul_ps(f32s(_mm256_and_si256(a, m4)), dv),
                                _mm256_mul_ps(f32s(_mm256_and_si256(b, m4)), dv),
                            )
                        }
                    };
                    let vals = sub.add(2 * TILE);
                    let mk = vals.add(vals_bytes) as *const u64;
                    let load =
                        |g: usize| _mm256_loadu_si256(vals.add(g * 64 + 32 * h) as *const __m256i);
                    let mut wv = [_mm256_setzero_si256(); 8];
                    if crumbs(kind) {
                        for g in 0..2 {
                            let v = load(g);
                            let planes = [
                                v,
                                _mm256_srli_epi16(v, 2),
                                _mm256_srli_epi16(v, 4),
                                _mm256_srli_epi16(v, 6),
                            ];
                            for (sh, p) in planes.into_iter().enumerate() {
                                let c = 4 * g + sh;
                                let mut w = _mm256_and_si256(p, three);
                                if kind == Kind::Q3K {
                                    w = mask_add(w, half_mask(mk.add(c), h), c4);
                                }
                                wv[c] = w;
                            }
                        }
                    } else {
                        for g in 0..4 {
                            let v = load(g);
                            let mut lo = _mm256_and_si256(v, low);
                            let mut hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                            match kind {
                                Kind::Q5K => {
                                    let m = mk.add(2 * g);
                                    lo = mask_add(lo, half_mask(m, h), c16);
                                    hi = mask_add(hi, half_mask(m.add(1), h), c16);
                                }
                                Kind::Q6K => {
                                    let m = mk.add(4 * g);
                                    lo = mask_add(lo, half_mask(m, h), c16);
                                    hi = mask_add(hi, half_mask(m.add(1), h), c16);
                                    lo = mask_add(lo, half_mask(m.add(2), h), c32);
                                    hi = mask_add(hi, half_mask(m.add(3), h), c32);
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
                        // The integer sums of the two 16-column halves.
                        let half_sum = |q: usize| {
                            let p = |v: usize| pairs(wv[4 * q + v], bc(a.add(16 * q + 4 * v)));
                            if kind == Kind::Q6K {
                                // Values up to 63: two pair sums at a time.
                                _mm256_add_epi32(
                                    widen(_mm256_add_epi16(p(0), p(1))),
                                    widen(_mm256_add_epi16(p(2), p(3))),
                                )
                            } else {
                                widen(_mm256_add_epi16(
                                    _mm256_add_epi16(p(0), p(1)),
                                    _mm256_add_epi16(p(2), p(3)),
                                ))
                            }
                        };
                        let s1 = _mm256_add_epi32(_mm256_set1_epi32(-off * sum_lo), half_sum(0));
                        let s2 =
                            _mm256_add_epi32(_mm256_set1_epi32(-off * (sum - sum_lo)), half_sum(1));
                        let dav = _mm256_set1_ps(da);
                        if halves {
                            *fi = _mm256_fmadd_ps(f32s(s1), _mm256_mul_ps(sc1, dav), *fi);
                            *fi = _mm256_fmadd_ps(f32s(s2), _mm256_mul_ps(sc2, dav), *fi);
                            if kind == Kind::Q2K {
                                *fi =
                                    _mm256_fnmadd_ps(mn1, _mm256_set1_ps(da * sum_lo as f32), *fi);
                                *fi = _mm256_fnmadd_ps(
                                    mn2,
                                    _mm256_set1_ps(da * (sum - sum_lo) as f32),
                                    *fi,
                                );
                            }
                        } else {
                            let d = _mm256_add_epi32(s1, s2);
                            *fi = _mm256_fmadd_ps(f32s(d), _mm256_mul_ps(sc1, dav), *fi);
                            *fi = _mm256_fnmadd_ps(sc2, _mm256_set1_ps(da * sum as f32), *fi);
                        }
                    }
                }
            }
        }
        for (h, f) in acc2.iter().enumerate() {
            for i in 0..n_rows {
                _mm256_storeu_ps(acc[i].as_mut_ptr().add(8 * h), f[i]);
            }
        }
    }
}

const fn kquants_subs() -> usize {
    SUPER / BLOCK
}
