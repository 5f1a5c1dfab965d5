//! The 32-column types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1): their tile layout, repacking from the
//! GGUF blocks, reading values back (embedding rows), and the portable scalar kernel the SIMD
//! paths are tested against.
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

use half::f16;

use super::{BLOCK, Kind, QuantRows, ROWS, TILE, Tiles};

/// The little-endian f16 at byte `at`.
fn f16_at(bytes: &[u8], at: usize) -> f16 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]])
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

/// Repack a matrix of a 32-column type from its GGUF bytes.
pub(super) fn pack(kind: Kind, raw: &[u8], n: usize, k: usize) -> Tiles {
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

/// Row `r` of a tile of `k` columns, dequantized into `out`.
pub(super) fn dequantize_row(kind: Kind, tile: &[u8], k: usize, r: usize, out: &mut [f32]) {
    let tbb = kind.tile_block_bytes();
    let off = kind.offset();
    let min = kind.has_min();
    for b in 0..k / BLOCK {
        let tb = &tile[b * tbb..][..tbb];
        let d = f16_at(tb, 2 * r).to_f32();
        let m = if min {
            f16_at(tb, 2 * TILE + 2 * r).to_f32()
        } else {
            0.0
        };
        for (o, v) in out[b * BLOCK..][..BLOCK]
            .iter_mut()
            .zip(stored(kind, tb, r))
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

/// One tile of a 32-column type against up to `ROWS` activation rows, portably: the same
/// integer arithmetic as the SIMD kernels.
pub(super) fn scalar_tile(
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
