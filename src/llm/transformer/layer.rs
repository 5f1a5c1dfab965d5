//! One decoder layer of the own forward pass: the architectures' variations (separate or fused
//! q/k/v and gate/up matrices, Qwen2's q/k/v biases, Qwen3's and Gemma 3's per-head norms of q
//! and k, Gemma's norms after attention and feed-forward, sliding-window layers), its loading
//! from `blk.N.*` tensors with the shapes checked, and its forward step over the shared
//! activation buffers.

use anyhow::{Result, bail};
use candle_core::quantized::gguf_file;

use super::Scratch;
use super::attention::{KvCache, attention};
use super::config::Config;
use super::linear::{Linear, linear, vector};
use super::ops::{add_rows, gelu, rms_norm, rms_norm_in_place, rope, silu};

/// Where q, k and v come from.
enum Qkv {
    Separate {
        q: Linear,
        k: Linear,
        v: Linear,
    },
    /// Phi-3: one matrix, rows q then k then v.
    Fused(Linear),
}

/// Where the gate and up projections come from.
enum GateUp {
    Separate {
        gate: Linear,
        up: Linear,
    },
    /// Phi-3: one matrix, rows gate then up.
    Fused(Linear),
}

pub(super) struct Layer {
    attn_norm: Vec<f32>,
    qkv: Qkv,
    /// Qwen2 biases of q, k, v.
    bias: Option<[Vec<f32>; 3]>,
    /// Qwen3 / Gemma 3 per-head norms of q and k.
    qk_norm: Option<[Vec<f32>; 2]>,
    /// Gemma's norms of the attention output and of the feed-forward output, before each is
    /// added to the residual stream.
    post_norms: Option<[Vec<f32>; 2]>,
    /// Attends within the sliding window (Gemma 3's local layers).
    sliding: bool,
    out: Linear,
    ffn_norm: Vec<f32>,
    gate_up: GateUp,
    down: Linear,
    pub(super) cache: KvCache,
}

impl Layer {
    /// Layer `i` (tensors `blk.{i}.*`); `sliding`: it attends within the window.
    pub(super) fn load(
        ct: &gguf_file::Content,
        file: &mut std::fs::File,
        cfg: &Config,
        i: usize,
        sliding: bool,
    ) -> Result<Layer> {
        let p = format!("blk.{i}");
        let has = |t: &str| ct.tensor_infos.contains_key(&format!("{p}.{t}"));
        let qkv = if has("attn_qkv.weight") {
            Qkv::Fused(linear(ct, file, &format!("{p}.attn_qkv.weight"))?)
        } else {
            Qkv::Separate {
                q: linear(ct, file, &format!("{p}.attn_q.weight"))?,
                k: linear(ct, file, &format!("{p}.attn_k.weight"))?,
                v: linear(ct, file, &format!("{p}.attn_v.weight"))?,
            }
        };
        let bias = if has("attn_q.bias") {
            Some([
                vector(ct, file, &format!("{p}.attn_q.bias"))?,
                vector(ct, file, &format!("{p}.attn_k.bias"))?,
                vector(ct, file, &format!("{p}.attn_v.bias"))?,
            ])
        } else {
            None
        };
        let qk_norm = if has("attn_q_norm.weight") {
            Some([
                vector(ct, file, &format!("{p}.attn_q_norm.weight"))?,
                vector(ct, file, &format!("{p}.attn_k_norm.weight"))?,
            ])
        } else {
            None
        };
        let gate_up = if has("ffn_gate.weight") {
            GateUp::Separate {
                gate: linear(ct, file, &format!("{p}.ffn_gate.weight"))?,
                up: linear(ct, file, &format!("{p}.ffn_up.weight"))?,
            }
        } else {
            GateUp::Fused(linear(ct, file, &format!("{p}.ffn_up.weight"))?)
        };
        let post_norms = if has("post_attention_norm.weight") {
            Some([
                vector(ct, file, &format!("{p}.post_attention_norm.weight"))?,
                vector(ct, file, &format!("{p}.post_ffw_norm.weight"))?,
            ])
        } else {
            None
        };
        let layer = Layer {
            attn_norm: vector(ct, file, &format!("{p}.attn_norm.weight"))?,
            qkv,
            bias,
            qk_norm,
            post_norms,
            sliding,
            out: linear(ct, file, &format!("{p}.attn_output.weight"))?,
            ffn_norm: vector(ct, file, &format!("{p}.ffn_norm.weight"))?,
            gate_up,
            down: linear(ct, file, &format!("{p}.ffn_down.weight"))?,
            cache: KvCache::new(cfg.kv_heads, cfg.head_dim),
        };
        layer.check(cfg, &p)?;
        Ok(layer)
    }

    /// Check the matrix shapes against the configuration, so a malformed file is an error here
    /// rather than a panic in the kernels.
    fn check(&self, cfg: &Config, name: &str) -> Result<()> {
        let (d, q, kv) = (
            cfg.hidden,
            cfg.heads * cfg.head_dim,
            cfg.kv_heads * cfg.head_dim,
        );
        let mut shapes: Vec<(&str, &Linear, usize, usize)> = match &self.qkv {
            Qkv::Separate { q: wq, k, v } => {
                vec![
                    ("attn_q", wq, q, d),
                    ("attn_k", k, kv, d),
                    ("attn_v", v, kv, d),
                ]
            }
            Qkv::Fused(w) => vec![("attn_qkv", w, q + 2 * kv, d)],
        };
        shapes.push(("attn_output", &self.out, d, q));
        let ff = self.down.cols();
        match &self.gate_up {
            GateUp::Separate { gate, up } => {
                shapes.push(("ffn_gate", gate, ff, d));
                shapes.push(("ffn_up", up, ff, d));
            }
            GateUp::Fused(w) => shapes.push(("ffn_up", w, 2 * ff, d)),
        }
        shapes.push(("ffn_down", &self.down, d, ff));
        for (what, w, n, k) in shapes {
            if w.rows() != n || w.cols() != k {
                bail!(
                    "{name}.{what} is {}x{}, expected {n}x{k}",
                    w.rows(),
                    w.cols()
                );
            }
        }
        let norms_ok = self.attn_norm.len() == d
            && self.ffn_norm.len() == d
            && self
                .bias
                .as_ref()
                .is_none_or(|[bq, bk, bv]| bq.len() == q && bk.len() == kv && bv.len() == kv)
            && self
                .qk_norm
                .as_ref()
                .is_none_or(|[a, b]| a.len() == cfg.head_dim && b.len() == cfg.head_dim)
            && self
                .post_norms
                .as_ref()
                .is_none_or(|[a, b]| a.len() == d && b.len() == d);
        if !norms_ok {
            bail!("{name}: a norm or bias vector has the wrong length");
        }
        Ok(())
    }

    pub(super) fn forward(
        &mut self,
        cfg: &Config,
        s: &mut Scratch,
        m: usize,
        pos: usize,
    ) -> Result<()> {
        let d = cfg.hidden;
        let (qw, kvw) = (cfg.heads * cfg.head_dim, cfg.kv_heads * cfg.head_dim);
        s.h.resize(m * d, 0.0);
        for i in 0..m {
            rms_norm(
                &s.x[i * d..(i + 1) * d],
                &self.attn_norm,
                cfg.eps,
                &mut s.h[i * d..(i + 1) * d],
            );
        }
        s.hq.quantize(&s.h, m, d);
        match &self.qkv {
            Qkv::Separate { q, k, v } => {
                q.forward(&s.h, &s.hq, m, &mut s.q)?;
                k.forward(&s.h, &s.hq, m, &mut s.k)?;
                v.forward(&s.h, &s.hq, m, &mut s.v)?;
            }
            Qkv::Fused(w) => {
                w.forward(&s.h, &s.hq, m, &mut s.qkv)?;
                let width = qw + 2 * kvw;
                s.q.clear();
                s.k.clear();
                s.v.clear();
                for row in s.qkv.chunks_exact(width) {
                    s.q.extend_from_slice(&row[..qw]);
                    s.k.extend_from_slice(&row[qw..qw + kvw]);
                    s.v.extend_from_slice(&row[qw + kvw..]);
                }
            }
        }
        if let Some([bq, bk, bv]) = &self.bias {
            add_rows(&mut s.q, bq);
            add_rows(&mut s.k, bk);
            add_rows(&mut s.v, bv);
        }
        if let Some([nq, nk]) = &self.qk_norm {
            for head in s.q.chunks_exact_mut(cfg.head_dim) {
                rms_norm_in_place(head, nq, cfg.eps);
            }
            for head in s.k.chunks_exact_mut(cfg.head_dim) {
                rms_norm_in_place(head, nk, cfg.eps);
            }
        }
        let (all_cos, all_sin) = if self.sliding {
            (&s.cos_local, &s.sin_local)
        } else {
            (&s.cos, &s.sin)
        };
        for i in 0..m {
            let pairs = cfg.inv_freq.len();
            let (cos, sin) = (
                &all_cos[i * pairs..(i + 1) * pairs],
                &all_sin[i * pairs..(i + 1) * pairs],
            );
            for head in s.q[i * qw..(i + 1) * qw].chunks_exact_mut(cfg.head_dim) {
                rope(cfg, head, cos, sin);
            }
            for head in s.k[i * kvw..(i + 1) * kvw].chunks_exact_mut(cfg.head_dim) {
                rope(cfg, head, cos, sin);
            }
        }
        self.cache.append(&s.k, &s.v, m);
        let window = if self.sliding { cfg.window } else { None };
        attention(cfg, &s.q, &self.cache, m, pos, window, &mut s.attn)?;
        s.hq.quantize(&s.attn, m, qw);
        self.out.forward(&s.attn, &s.hq, m, &mut s.o)?;
        if let Some([after_attn, _]) = &self.post_norms {
            for row in s.o.chunks_exact_mut(d) {
                rms_norm_in_place(row, after_attn, cfg.eps);
            }
        }
        for (x, o) in s.x.iter_mut().zip(&s.o) {
            *x += o;
        }

        for i in 0..m {
            rms_norm(
                &s.x[i * d..(i + 1) * d],
                &self.ffn_norm,
                cfg.eps,
                &mut s.h[i * d..(i + 1) * d],
            );
        }
        s.hq.quantize(&s.h, m, d);
        let ff = self.down.cols();
        let act: fn(f32) -> f32 = if cfg.gelu { gelu } else { silu };
        match &self.gate_up {
            GateUp::Separate { gate, up } => {
                gate.forward(&s.h, &s.hq, m, &mut s.gate)?;
                up.forward(&s.h, &s.hq, m, &mut s.up)?;
                for (g, u) in s.gate.iter_mut().zip(&s.up) {
                    *g = act(*g) * u;
                }
            }
            GateUp::Fused(w) => {
                w.forward(&s.h, &s.hq, m, &mut s.gu)?;
                s.gate.clear();
                for row in s.gu.chunks_exact(2 * ff) {
                    let (g, u) = row.split_at(ff);
                    s.gate.extend(g.iter().zip(u).map(|(g, u)| act(*g) * u));
                }
            }
        }
        s.hq.quantize(&s.gate, m, ff);
        self.down.forward(&s.gate, &s.hq, m, &mut s.o)?;
        if let Some([_, after_ffn]) = &self.post_norms {
            for row in s.o.chunks_exact_mut(d) {
                rms_norm_in_place(row, after_ffn, cfg.eps);
            }
        }
        for (x, o) in s.x.iter_mut().zip(&s.o) {
            *x += o;
        }
        Ok(())
    }
}
