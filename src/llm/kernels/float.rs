//! F16 and BF16 matrices: kept as 16-bit values (as compact as the file), in tiles of 16 rows
//! stored column by column (`2 × 16` bytes per column: the 16 rows' values), converted to f32
//! as they are loaded and multiplied with the f32 activations (not the quantized ones), so the
//! result is exact up to the summation order. One 32-byte load and conversion (`vcvtph2ps`,
//! or a 16-bit shift for BF16) serves every activation row of the chunk.

use half::{bf16, f16};

use super::{Kind, ROWS, TILE};

/// Repack `n × k` 16-bit values (F16 and BF16 alike: only the bits move).
pub fn pack(raw: &[u8], n: usize, k: usize) -> super::Tiles {
    let mut data = super::Tiles::zeroed(n.div_ceil(TILE) * TILE * k * 2);
    for row in 0..n {
        let (t, r) = (row / TILE, row % TILE);
        let tile = &mut data[t * TILE * k * 2..][..TILE * k * 2];
        for c in 0..k {
            let at = (c * TILE + r) * 2;
            tile[at..at + 2].copy_from_slice(&raw[(row * k + c) * 2..][..2]);
        }
    }
    data
}

fn value(kind: Kind, tile: &[u8], r: usize, c: usize) -> f32 {
    let at = (c * TILE + r) * 2;
    let bits = u16::from_le_bytes([tile[at], tile[at + 1]]);
    if kind == Kind::BF16 {
        bf16::from_bits(bits).to_f32()
    } else {
        f16::from_bits(bits).to_f32()
    }
}

/// Row `r` of a tile, converted.
pub fn dequantize_row(kind: Kind, tile: &[u8], r: usize, out: &mut [f32]) {
    for (c, o) in out.iter_mut().enumerate() {
        *o = value(kind, tile, r, c);
    }
}

/// One tile against the activation rows `x` (`rows × k`, at most `ROWS`), portably.
pub fn scalar_tile(kind: Kind, tile: &[u8], k: usize, x: &[f32], acc: &mut [[f32; TILE]; ROWS]) {
    for (i, xr) in x.chunks_exact(k).enumerate() {
        for (r, acc) in acc[i].iter_mut().enumerate() {
            *acc = (0..k).map(|c| value(kind, tile, r, c) * xr[c]).sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// One tile with AVX-512: 16 rows per vector. Enough independent accumulators to hide the FMA
/// latency: 8 (over columns) for a single activation row, 2 per row otherwise.
///
/// # Safety
/// The CPU must support avx512f, f16c and fma; `tile` holds `16 × k` values, `x` whole rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,f16c,fma")]
pub unsafe fn avx512_tile(
    kind: Kind,
    tile: &[u8],
    k: usize,
    x: &[f32],
    acc: &mut [[f32; TILE]; ROWS],
) {
    // SAFETY: column `c` of the tile is the 32 bytes at `32c`, and `x` holds `n_rows × k`.
    unsafe {
        let n_rows = x.len() / k;
        let p = tile.as_ptr();
        let load = |c: usize| {
            let v = _mm256_loadu_si256(p.add(32 * c) as *const __m256i);
            if kind == Kind::BF16 {
                _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16))
            } else {
                _mm512_cvtph_ps(v)
            }
        };
        let xp = x.as_ptr();
        if n_rows == 1 {
            const U: usize = 8;
            let mut f = [_mm512_setzero_ps(); U];
            let mut c = 0;
            while c + U <= k {
                for (u, fu) in f.iter_mut().enumerate() {
                    *fu = _mm512_fmadd_ps(load(c + u), _mm512_set1_ps(*xp.add(c + u)), *fu);
                }
                c += U;
            }
            while c < k {
                f[0] = _mm512_fmadd_ps(load(c), _mm512_set1_ps(*xp.add(c)), f[0]);
                c += 1;
            }
            let s = _mm512_add_ps(
                _mm512_add_ps(_mm512_add_ps(f[0], f[1]), _mm512_add_ps(f[2], f[3])),
                _mm512_add_ps(_mm512_add_ps(f[4], f[5]), _mm512_add_ps(f[6], f[7])),
            );
            _mm512_storeu_ps(acc[0].as_mut_ptr(), s);
            return;
        }
        let mut f = [[_mm512_setzero_ps(); 2]; ROWS];
        let mut c = 0;
        while c + 2 <= k {
            let (w0, w1) = (load(c), load(c + 1));
            for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                let xr = xp.add(i * k + c);
                fi[0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(*xr), fi[0]);
                fi[1] = _mm512_fmadd_ps(w1, _mm512_set1_ps(*xr.add(1)), fi[1]);
            }
            c += 2;
        }
        if c < k {
            let w0 = load(c);
            for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                fi[0] = _mm512_fmadd_ps(w0, _mm512_set1_ps(*xp.add(i * k + c)), fi[0]);
            }
        }
        for (i, fi) in f.iter().enumerate().take(n_rows) {
            _mm512_storeu_ps(acc[i].as_mut_ptr(), _mm512_add_ps(fi[0], fi[1]));
        }
    }
}

/// One tile with AVX2: each column's 32 bytes as two halves of 8 rows, converted and multiplied
/// in the same pass (each cache line read once). 8 independent accumulators: 4 columns × 2
/// halves for a single activation row, 2 halves per row otherwise.
///
/// # Safety
/// The CPU must support avx2, f16c and fma; `tile` holds `16 × k` values, `x` whole rows.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,f16c,fma")]
pub unsafe fn avx2_tile(
    kind: Kind,
    tile: &[u8],
    k: usize,
    x: &[f32],
    acc: &mut [[f32; TILE]; ROWS],
) {
    // SAFETY: as above; half `h` of column `c` is the 16 bytes at `32c + 16h`.
    unsafe {
        let n_rows = x.len() / k;
        let p = tile.as_ptr();
        let load = |c: usize, h: usize| {
            let v = _mm_loadu_si128(p.add(32 * c + 16 * h) as *const __m128i);
            if kind == Kind::BF16 {
                _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16))
            } else {
                _mm256_cvtph_ps(v)
            }
        };
        let xp = x.as_ptr();
        if n_rows == 1 {
            const U: usize = 4;
            let mut f = [[_mm256_setzero_ps(); U]; 2];
            let mut c = 0;
            while c + U <= k {
                let [f0, f1] = &mut f;
                for (u, (a, b)) in f0.iter_mut().zip(f1.iter_mut()).enumerate() {
                    let xv = _mm256_set1_ps(*xp.add(c + u));
                    *a = _mm256_fmadd_ps(load(c + u, 0), xv, *a);
                    *b = _mm256_fmadd_ps(load(c + u, 1), xv, *b);
                }
                c += U;
            }
            while c < k {
                let xv = _mm256_set1_ps(*xp.add(c));
                f[0][0] = _mm256_fmadd_ps(load(c, 0), xv, f[0][0]);
                f[1][0] = _mm256_fmadd_ps(load(c, 1), xv, f[1][0]);
                c += 1;
            }
            for (h, fh) in f.iter().enumerate() {
                let s = _mm256_add_ps(_mm256_add_ps(fh[0], fh[1]), _mm256_add_ps(fh[2], fh[3]));
                _mm256_storeu_ps(acc[0].as_mut_ptr().add(8 * h), s);
            }
            return;
        }
        let mut f = [[_mm256_setzero_ps(); 2]; ROWS];
        for c in 0..k {
            let (w0, w1) = (load(c, 0), load(c, 1));
            for (i, fi) in f.iter_mut().enumerate().take(n_rows) {
                let xv = _mm256_set1_ps(*xp.add(i * k + c));
                fi[0] = _mm256_fmadd_ps(w0, xv, fi[0]);
                fi[1] = _mm256_fmadd_ps(w1, xv, fi[1]);
            }
        }
        for (i, fi) in f.iter().enumerate().take(n_rows) {
            _mm256_storeu_ps(acc[i].as_mut_ptr(), fi[0]);
            _mm256_storeu_ps(acc[i].as_mut_ptr().add(8), fi[1]);
        }
    }
}
