//! The AVX-512 (F/BW/VNNI) kernel of the 32-column types: one `vpdpbusd` adds 4 products for
//! each of the 16 rows of a tile at once; Q5's fifth bits go back in with a masked byte add.
//! (The K-quants' AVX-512 kernel is in `kquants`, the F16/BF16 one in `float`.)

#![cfg(target_arch = "x86_64")]

use super::{BLOCK, Kind, QuantRows, ROWS, TILE};
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
                        hi = _mm512_mask_add_epi8(hi, masks.add(1).read_unaligned(), hi, sixteen);
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
