//! lsmtune's own forward pass for GGUF decoder models of the Llama family (qwen2, qwen3,
//! llama/mistral, phi3) and Gemma 3 (sliding-window layers with their own rotary base, norms
//! after attention and feed-forward, GELU, scaled embeddings), built for the tuning loop's shape
//! of work: one growing conversation, prefilled in batches and decoded one token at a time.
//!
//! Matrices of every common GGUF type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, F16, BF16) run
//! on the repacked kernels of [`super::kernels`] (AVX-512 or AVX2, picked at run time); F32
//! matrices, rarer types, and every type on a CPU without AVX2 (or with `LSMTUNE_NO_SIMD=1`) go
//! through candle's `QMatMul` (`linear`). The KV cache is one buffer per layer, grown by
//! doubling, that can be cut back to any position; attention is computed directly (no repeat of
//! the KV heads, no mask tensors; `attention`), and every activation buffer is reused between
//! calls. `config` reads the shape and per-architecture conventions from the metadata, `layer`
//! loads and runs one decoder layer, `ops` holds the element-wise steps. It runs behind
//! [`super::runtime::Runtime`]; candle-transformers' models remain available there as a
//! reference (`LSMTUNE_LOCAL_RUNTIME=candle`) and the tests check both give the same logits.

mod attention;
mod config;
mod layer;
mod linear;
mod ops;

use anyhow::{Result, bail};
use candle_core::quantized::gguf_file;

use self::config::Config;
use self::layer::Layer;
use self::linear::{Embedding, Linear, embedding_and_output, vector};
use self::ops::{rms_norm, rotary};
use super::kernels::{self, QuantRows};

/// Reusable activation buffers.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    hq: QuantRows,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    qkv: Vec<f32>,
    attn: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    gu: Vec<f32>,
    /// cos and sin of every rotary pair at each new position (`m × pairs`), shared by layers;
    /// and those of the sliding-window layers' frequencies.
    cos: Vec<f32>,
    sin: Vec<f32>,
    cos_local: Vec<f32>,
    sin_local: Vec<f32>,
}

/// A loaded model with its KV cache.
pub struct Transformer {
    cfg: Config,
    embed: Embedding,
    layers: Vec<Layer>,
    norm: Vec<f32>,
    /// `None`: the output layer is the packed embedding table (tied weights).
    output: Option<Linear>,
    /// Positions held in the KV cache.
    len: usize,
    scratch: Scratch,
}

impl Transformer {
    /// Load `arch` (one of qwen2, qwen3, llama, mistral, phi3, gemma3) from a parsed GGUF.
    pub fn load(
        arch: crate::llm::arch::Arch,
        ct: &gguf_file::Content,
        file: &mut std::fs::File,
    ) -> Result<Self> {
        let (cfg, layout) = Config::read(arch, ct, file)?;
        let (embed, output) = embedding_and_output(ct, file, cfg.hidden)?;
        let norm = vector(ct, file, "output_norm.weight")?;
        let pattern = layout.pattern;
        let layers = (0..layout.blocks)
            .map(|i| {
                let sliding = cfg.window.is_some() && i % pattern < pattern - 1;
                Layer::load(ct, file, &cfg, i, sliding)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Transformer {
            cfg,
            embed,
            layers,
            norm,
            output,
            len: 0,
            scratch: Scratch::default(),
        })
    }

    /// Positions held in the KV cache.
    pub fn cached(&self) -> usize {
        self.len
    }

    /// Drop the KV cache.
    pub fn clear(&mut self) {
        self.truncate(0);
    }

    /// Cut the KV cache back to its first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        for l in &mut self.layers {
            l.cache.len = self.len;
        }
    }

    /// Run `tokens` at positions `pos..`, after cutting the cache back to `pos`; returns the
    /// logits after the last token.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if tokens.is_empty() {
            bail!("nothing to run: no tokens");
        }
        if pos > self.len {
            bail!("position {pos} is past the {} cached positions", self.len);
        }
        self.truncate(pos);
        let cfg = &self.cfg;
        let (m, d) = (tokens.len(), cfg.hidden);
        let s = &mut self.scratch;
        s.x.resize(m * d, 0.0);
        for (i, &t) in tokens.iter().enumerate() {
            self.embed.row(t as usize, &mut s.x[i * d..(i + 1) * d])?;
        }
        if cfg.embed_scale != 1.0 {
            for v in &mut s.x {
                *v *= cfg.embed_scale;
            }
        }
        rotary(
            &cfg.inv_freq,
            cfg.rope_scale,
            pos,
            m,
            &mut s.cos,
            &mut s.sin,
        );
        if !cfg.local_inv_freq.is_empty() {
            rotary(
                &cfg.local_inv_freq,
                1.0,
                pos,
                m,
                &mut s.cos_local,
                &mut s.sin_local,
            );
        }
        for layer in &mut self.layers {
            layer.forward(cfg, s, m, pos)?;
        }
        self.len = pos + m;
        // Only the last position's logits are needed.
        let last = &s.x[(m - 1) * d..m * d];
        s.h.resize(d, 0.0);
        rms_norm(last, &self.norm, cfg.eps, &mut s.h);
        s.hq.quantize(&s.h, 1, d);
        let mut logits = Vec::new();
        match &self.output {
            Some(out) => out.forward(&s.h, &s.hq, 1, &mut logits)?,
            None => {
                let Embedding::Packed(p) = &self.embed else {
                    unreachable!("tied output without a packed table")
                };
                logits.resize(p.rows(), 0.0);
                kernels::matmul(p, &s.h, &s.hq, &mut logits);
            }
        }
        Ok(logits)
    }
}
