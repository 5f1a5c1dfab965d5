//! Attention in the own forward pass: the per-layer KV cache ([`KvCache`], one buffer per
//! layer that grows by doubling and is cut back by moving its length) and causal attention of
//! new query rows over it, computed directly (no repeat of the KV heads, no mask tensors).

use anyhow::Result;

use super::config::Config;
use super::ops::exp_in_place;
use crate::llm::kernels;

/// One layer's keys and values, `[kv_head][position][head_dim]` so each head's keys are
/// contiguous; capacity grows by doubling, and cutting back only moves the length.
#[derive(Default)]
pub(super) struct KvCache {
    heads: usize,
    hd: usize,
    cap: usize,
    pub(super) len: usize,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl KvCache {
    pub(super) fn new(heads: usize, hd: usize) -> KvCache {
        KvCache {
            heads,
            hd,
            ..KvCache::default()
        }
    }

    /// Append `m` positions; `k` and `v` are `[position][kv_head][head_dim]`.
    pub(super) fn append(&mut self, k: &[f32], v: &[f32], m: usize) {
        let (heads, hd) = (self.heads, self.hd);
        if self.len + m > self.cap {
            let cap = (self.len + m).max(2 * self.cap).max(256);
            let mut nk = vec![0f32; heads * cap * hd];
            let mut nv = vec![0f32; heads * cap * hd];
            for h in 0..heads {
                let (from, to) = (h * self.cap * hd, h * cap * hd);
                nk[to..to + self.len * hd].copy_from_slice(&self.k[from..from + self.len * hd]);
                nv[to..to + self.len * hd].copy_from_slice(&self.v[from..from + self.len * hd]);
            }
            (self.k, self.v, self.cap) = (nk, nv, cap);
        }
        for i in 0..m {
            for h in 0..heads {
                let src = (i * heads + h) * hd;
                let dst = (h * self.cap + self.len + i) * hd;
                self.k[dst..dst + hd].copy_from_slice(&k[src..src + hd]);
                self.v[dst..dst + hd].copy_from_slice(&v[src..src + hd]);
            }
        }
        self.len += m;
    }

    /// The keys and values of head `h`, `len × head_dim` each.
    fn head(&self, h: usize) -> (&[f32], &[f32]) {
        let at = h * self.cap * self.hd;
        let n = self.len * self.hd;
        (&self.k[at..at + n], &self.v[at..at + n])
    }
}

/// Causal attention of `m` new query rows (positions `pos..pos + m`) over the cache, written to
/// `out` (`m × heads·head_dim`). Per KV head and block of query rows, the query heads sharing
/// that KV head go together: scores and weighted values are two matrix products (the `gemm`
/// crate, reading the cache in place), with the causal mask and the softmax in between. The
/// (KV head, block) items are split over the kernels' worker pool.
pub(super) fn attention(
    cfg: &Config,
    q: &[f32],
    cache: &KvCache,
    m: usize,
    pos: usize,
    window: Option<usize>,
    out: &mut Vec<f32>,
) -> Result<()> {
    const BLOCK_ROWS: usize = 128;
    let (hd, heads, group) = (cfg.head_dim, cfg.heads, cfg.heads / cfg.kv_heads);
    let scale = cfg.attn_scale;
    out.resize(m * heads * hd, 0.0);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let blocks = m.div_ceil(BLOCK_ROWS);
    let item = |it: usize, qg: &mut Vec<f32>, scores: &mut Vec<f32>, o: &mut Vec<f32>| {
        let (kvh, b) = (it / blocks, it % blocks);
        let start = b * BLOCK_ROWS;
        let rows = BLOCK_ROWS.min(m - start);
        let n = rows * group;
        // Keys visible to the block's last row.
        let ctx = pos + start + rows;
        let (keys, values) = cache.head(kvh);
        qg.clear();
        for i in start..start + rows {
            let at = (i * heads + kvh * group) * hd;
            qg.extend_from_slice(&q[at..at + group * hd]);
        }
        scores.resize(n * ctx, 0.0);
        o.resize(n * hd, 0.0);
        // SAFETY: every matrix is described by its own buffer's dimensions and strides:
        // qg n×hd, the keys ctx×hd read transposed, scores n×ctx, values ctx×hd, o n×hd.
        unsafe {
            gemm::gemm(
                n,
                ctx,
                hd,
                scores.as_mut_ptr(),
                1,
                ctx as isize,
                false,
                qg.as_ptr(),
                1,
                hd as isize,
                keys.as_ptr(),
                hd as isize,
                1,
                0.0,
                scale,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for (r, row) in scores.chunks_exact_mut(ctx).enumerate() {
            let visible = pos + start + r / group + 1;
            // A sliding layer's query sees the last `window` positions, itself included.
            let first = window.map_or(0, |w| visible.saturating_sub(w));
            let (before, row) = row.split_at_mut(first);
            before.fill(0.0);
            let (row, hidden) = row.split_at_mut(visible - first);
            let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            for s in row.iter_mut() {
                *s -= max;
            }
            exp_in_place(row);
            let inv = 1.0 / row.iter().sum::<f32>();
            for s in row.iter_mut() {
                *s *= inv;
            }
            hidden.fill(0.0);
        }
        // SAFETY: as above.
        unsafe {
            gemm::gemm(
                n,
                hd,
                ctx,
                o.as_mut_ptr(),
                1,
                hd as isize,
                false,
                scores.as_ptr(),
                1,
                ctx as isize,
                values.as_ptr(),
                1,
                hd as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
        for i in 0..rows {
            let at = ((start + i) * heads + kvh * group) * hd;
            // SAFETY: the rows of this block and the heads of this KV head are this item's.
            let dst = unsafe { std::slice::from_raw_parts_mut(out_ptr.at(at), group * hd) };
            dst.copy_from_slice(&o[i * group * hd..(i + 1) * group * hd]);
        }
    };
    let items = cfg.kv_heads * blocks;
    let run = |range: std::ops::Range<usize>| {
        let (mut qg, mut scores, mut o) = (Vec::new(), Vec::new(), Vec::new());
        for it in range {
            item(it, &mut qg, &mut scores, &mut o);
        }
    };
    if items == 1 || (pos + m) * m * heads * hd < 1 << 14 {
        run(0..items);
    } else {
        kernels::pool::run_chunked(items, run);
    }
    Ok(())
}

struct OutPtr(*mut f32);
// SAFETY: written only at disjoint offsets, one work item each.
unsafe impl Sync for OutPtr {}
unsafe impl Send for OutPtr {}

impl OutPtr {
    /// The pointer `offset` values in (a method, so closures capture the whole wrapper).
    ///
    /// # Safety
    /// `offset` must be inside the buffer.
    unsafe fn at(&self, offset: usize) -> *mut f32 {
        // SAFETY: upheld by the caller.
        unsafe { self.0.add(offset) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_cache_grows_keeps_heads_apart_and_cuts_back() {
        let (heads, hd) = (2, 4);
        let mut c = KvCache::new(heads, hd);
        // Position p, head h, element e holds p*100 + h*10 + e; values are negated.
        let rows = |from: usize, m: usize| -> Vec<f32> {
            (from..from + m)
                .flat_map(|p| {
                    (0..heads)
                        .flat_map(move |h| (0..hd).map(move |e| (p * 100 + h * 10 + e) as f32))
                })
                .collect()
        };
        for (from, m) in [(0, 3), (3, 300), (303, 1)] {
            let k = rows(from, m);
            let v: Vec<f32> = k.iter().map(|x| -x).collect();
            c.append(&k, &v, m);
        }
        assert_eq!(c.len, 304);
        for h in 0..heads {
            let (k, v) = c.head(h);
            for p in [0, 2, 3, 150, 302, 303] {
                assert_eq!(k[p * hd + 1], (p * 100 + h * 10 + 1) as f32);
                assert_eq!(v[p * hd + 3], -((p * 100 + h * 10 + 3) as f32));
            }
        }
        c.len = 10;
        c.append(&rows(500, 1), &rows(500, 1), 1);
        assert_eq!(c.head(1).0[10 * hd], (500 * 100 + 10) as f32);
        assert_eq!(c.head(1).0.len(), 11 * hd);
    }
}
