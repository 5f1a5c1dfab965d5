//! lsmtune's own forward pass for GGUF decoder models of the Llama family (qwen2, qwen3,
//! llama/mistral, phi3) and Gemma 3 (sliding-window layers with their own rotary base, norms
//! after attention and feed-forward, GELU, scaled embeddings), built for the tuning loop's shape of work: one growing conversation,
//! prefilled in batches and decoded one token at a time.
//!
//! Matrices of every common GGUF type (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K, F16, BF16) run
//! on the repacked kernels of [`super::kernels`] (AVX-512 or AVX2, picked at run time); F32
//! matrices, rarer types, and every type on a CPU without AVX2 (or with `LSMTUNE_NO_SIMD=1`) go
//! through candle's `QMatMul`. The KV cache is one
//! preallocated buffer per layer that can be cut back to any position, attention is computed
//! directly (no repeat of the KV heads, no mask tensors), and every activation buffer is reused
//! between calls. candle-transformers' models remain available as a reference
//! (`LSMTUNE_LOCAL_RUNTIME=candle`) and the tests check both give the same logits.

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{Device, Module, Tensor};

use super::kernels::{self, Kind, PackedMatrix, QuantRows};

/// A weight matrix `n × k` and the way it is multiplied.
enum Linear {
    /// Repacked for the own kernels.
    Packed(PackedMatrix),
    /// Anything else, through candle.
    Candle { mm: QMatMul, n: usize, k: usize },
}

impl Linear {
    fn from_qtensor(q: QTensor, name: &str) -> Result<Linear> {
        let (n, k) = q
            .shape()
            .dims2()
            .map_err(|e| anyhow!("{name} is not a matrix: {e}"))?;
        if let Some(kind) = Kind::of(q.dtype())
            && kernels::simd_available()
            && k.is_multiple_of(kind.granule())
        {
            let raw = q.data()?;
            return Ok(Linear::Packed(
                PackedMatrix::pack(kind, &raw, n, k).with_context(|| name.to_string())?,
            ));
        }
        Ok(Linear::Candle {
            mm: QMatMul::from_qtensor(q)?,
            n,
            k,
        })
    }

    fn rows(&self) -> usize {
        match self {
            Linear::Packed(p) => p.rows(),
            Linear::Candle { n, .. } => *n,
        }
    }

    fn cols(&self) -> usize {
        match self {
            Linear::Packed(p) => p.cols(),
            Linear::Candle { k, .. } => *k,
        }
    }

    /// `out = x · Wᵀ` for `m` rows of `x`; `xq` is `x` already quantized.
    fn forward(&self, x: &[f32], xq: &QuantRows, m: usize, out: &mut Vec<f32>) -> Result<()> {
        out.resize(m * self.rows(), 0.0);
        match self {
            Linear::Packed(p) => kernels::matmul(p, x, xq, out),
            Linear::Candle { mm, k, .. } => {
                let t = Tensor::from_slice(x, (m, *k), &Device::Cpu)?;
                let y = mm.forward(&t)?.flatten_all()?.to_vec1::<f32>()?;
                out.copy_from_slice(&y);
            }
        }
        Ok(())
    }
}

/// The token embedding table.
enum Embedding {
    /// Shares the packed matrix with the output layer, or is packed on its own.
    Packed(PackedMatrix),
    Dense {
        table: Vec<f32>,
        width: usize,
    },
}

impl Embedding {
    fn row(&self, token: usize, out: &mut [f32]) -> Result<()> {
        match self {
            Embedding::Packed(p) => {
                if token >= p.rows() {
                    bail!("token {token} is outside the {}-token vocabulary", p.rows());
                }
                p.dequantize_row(token, out);
            }
            Embedding::Dense { table, width } => {
                let row = table
                    .get(token * width..(token + 1) * width)
                    .ok_or_else(|| anyhow!("token {token} is outside the vocabulary"))?;
                out.copy_from_slice(row);
            }
        }
        Ok(())
    }
}

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

struct Layer {
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
    cache: KvCache,
}

/// One layer's keys and values, `[kv_head][position][head_dim]` so each head's keys are
/// contiguous; capacity grows by doubling, and cutting back only moves the length.
#[derive(Default)]
struct KvCache {
    heads: usize,
    hd: usize,
    cap: usize,
    len: usize,
    k: Vec<f32>,
    v: Vec<f32>,
}

impl KvCache {
    fn new(heads: usize, hd: usize) -> KvCache {
        KvCache {
            heads,
            hd,
            ..KvCache::default()
        }
    }

    /// Append `m` positions; `k` and `v` are `[position][kv_head][head_dim]`.
    fn append(&mut self, k: &[f32], v: &[f32], m: usize) {
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

/// Dimensions and conventions read from the GGUF metadata.
#[derive(Debug, Clone)]
struct Config {
    hidden: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    rope_dim: usize,
    /// NEOX rotary pairs (i, i + d/2) rather than interleaved (2i, 2i + 1).
    neox: bool,
    eps: f32,
    /// Inverse frequencies of the rotary pairs.
    inv_freq: Vec<f32>,
    /// Multiplies cos and sin (LongRoPE's attention factor; 1 otherwise).
    rope_scale: f32,
    /// Multiplies the attention scores (1/sqrt(head_dim)).
    attn_scale: f32,
    /// Multiplies the token embeddings (Gemma: sqrt(hidden); 1 otherwise).
    embed_scale: f32,
    /// GELU (tanh approximation) instead of SiLU in the gated feed-forward (Gemma).
    gelu: bool,
    /// Sliding-window attention of some layers (Gemma 3): how many positions a query sees,
    /// itself included, and the inverse rotary frequencies of those layers.
    window: Option<usize>,
    local_inv_freq: Vec<f32>,
}

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

fn vector(ct: &gguf_file::Content, file: &mut std::fs::File, name: &str) -> Result<Vec<f32>> {
    Ok(ct
        .tensor(file, name, &Device::Cpu)
        .map_err(|e| anyhow!("{name}: {e}"))?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?)
}

fn linear(ct: &gguf_file::Content, file: &mut std::fs::File, name: &str) -> Result<Linear> {
    let q = ct
        .tensor(file, name, &Device::Cpu)
        .map_err(|e| anyhow!("{name}: {e}"))?;
    Linear::from_qtensor(q, name)
}

impl Transformer {
    /// Load `arch` (one of qwen2, qwen3, llama, mistral, phi3) from a parsed GGUF.
    pub fn load(arch: &str, ct: &gguf_file::Content, file: &mut std::fs::File) -> Result<Self> {
        let md = |key: &str| ct.metadata.get(&format!("{arch}.{key}"));
        let int = |key: &str| -> Result<Option<usize>> {
            md(key)
                .map(|v| v.to_u32().map(|v| v as usize))
                .transpose()
                .map_err(|e| anyhow!("{arch}.{key}: {e}"))
        };
        let need = |key: &str| -> Result<usize> {
            int(key)?.ok_or_else(|| anyhow!("the GGUF metadata has no {arch}.{key}"))
        };
        let hidden = need("embedding_length")?;
        let heads = need("attention.head_count")?;
        let kv_heads = int("attention.head_count_kv")?.unwrap_or(heads);
        let blocks = need("block_count")?;
        // The metadata is checked against the tensors actually present before anything is
        // sized from it: a crafted block_count of 2^32-1 once aborted on allocation.
        let present = (0..blocks.min(4096))
            .take_while(|i| {
                ct.tensor_infos
                    .contains_key(&format!("blk.{i}.attn_norm.weight"))
            })
            .count();
        if blocks == 0 || present != blocks {
            bail!(
                "the GGUF metadata says {arch}.block_count = {blocks}, but the file holds tensors for {present} blocks"
            );
        }
        if hidden == 0 || hidden > 1 << 16 || heads > 1024 {
            bail!(
                "implausible model shape in the GGUF metadata: hidden size {hidden}, {heads} heads"
            );
        }
        let head_dim = int("attention.key_length")?.unwrap_or(hidden / heads.max(1));
        let rope_dim = int("rope.dimension_count")?.unwrap_or(head_dim);
        if heads == 0
            || kv_heads == 0
            || heads % kv_heads != 0
            || rope_dim > head_dim
            || head_dim > 256
        {
            bail!(
                "unsupported attention shape: {heads} heads, {kv_heads} KV heads, head size {head_dim}, rotary size {rope_dim}"
            );
        }
        let eps = md("attention.layer_norm_rms_epsilon")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1e-5);
        let base = md("rope.freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        // Per-pair frequency divisors, as llama.cpp applies them: Llama 3.1+ (`rope_freqs`) and
        // Phi-3.5's LongRoPE (`rope_factors_short`, the set for contexts within the original
        // training length; the long set is not switched to), whose cos and sin are also scaled
        // by `rope.scaling.attn_factor`.
        let factors = ["rope_freqs.weight", "rope_factors_short.weight"]
            .into_iter()
            .find(|n| ct.tensor_infos.contains_key(*n))
            .map(|n| vector(ct, file, n))
            .transpose()?;
        let rope_scale = md("rope.scaling.attn_factor")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(1.0);
        // Linear RoPE scaling (`rope.scaling.factor`), as llama.cpp applies it to every
        // architecture (Gemma 3's global layers at 4B and up).
        let linear_scaling = md("rope.scaling.type")
            .and_then(|v| v.to_string().ok().cloned())
            .is_none_or(|t| t == "linear");
        let scaling = md("rope.scaling.factor")
            .and_then(|v| v.to_f32().ok())
            .filter(|f| linear_scaling && *f > 0.0)
            .unwrap_or(1.0);
        let freqs = |base: f32, scaling: f32| -> Vec<f32> {
            (0..rope_dim / 2)
                .map(|i| {
                    let f = 1f32 / base.powf((2 * i) as f32 / rope_dim as f32);
                    f / factors
                        .as_ref()
                        .and_then(|v| v.get(i))
                        .copied()
                        .unwrap_or(1.0)
                        / scaling
                })
                .collect()
        };
        let gemma = arch == "gemma3";
        // Gemma 3: local layers see a window of positions and rotate with their own base.
        let window = if gemma {
            int("attention.sliding_window")?
        } else {
            None
        };
        let local_base = md("rope.local_freq_base")
            .and_then(|v| v.to_f32().ok())
            .unwrap_or(10_000.0);
        let cfg = Config {
            hidden,
            heads,
            kv_heads,
            head_dim,
            rope_dim,
            neox: matches!(arch, "qwen2" | "qwen3" | "phi3" | "gemma3"),
            eps,
            inv_freq: freqs(base, scaling),
            rope_scale,
            attn_scale: 1.0 / (head_dim as f32).sqrt(),
            embed_scale: if gemma { (hidden as f32).sqrt() } else { 1.0 },
            gelu: gemma,
            local_inv_freq: if window.is_some() {
                freqs(local_base, 1.0)
            } else {
                Vec::new()
            },
            window,
        };
        // Which layers slide: all but every `pattern`-th (llama.cpp's default of 6).
        let pattern = int("attention.sliding_window_pattern")?.unwrap_or(6).max(1);

        let embd = ct
            .tensor(file, "token_embd.weight", &Device::Cpu)
            .map_err(|e| anyhow!("token_embd.weight: {e}"))?;
        let tied = !ct.tensor_infos.contains_key("output.weight");
        let packable = Kind::of(embd.dtype()).is_some_and(|k| hidden.is_multiple_of(k.granule()))
            && kernels::simd_available();
        let (embed, output) = if packable {
            let Linear::Packed(p) = Linear::from_qtensor(embd, "token_embd.weight")? else {
                unreachable!("a packable table is packed")
            };
            let output = if tied {
                None
            } else {
                Some(linear(ct, file, "output.weight")?)
            };
            (Embedding::Packed(p), output)
        } else {
            let table = embd
                .dequantize(&Device::Cpu)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            let output = if tied {
                Linear::from_qtensor(embd, "token_embd.weight")?
            } else {
                linear(ct, file, "output.weight")?
            };
            (
                Embedding::Dense {
                    table,
                    width: hidden,
                },
                Some(output),
            )
        };
        let norm = vector(ct, file, "output_norm.weight")?;

        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
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
                sliding: cfg.window.is_some() && i % pattern < pattern - 1,
                out: linear(ct, file, &format!("{p}.attn_output.weight"))?,
                ffn_norm: vector(ct, file, &format!("{p}.ffn_norm.weight"))?,
                gate_up,
                down: linear(ct, file, &format!("{p}.ffn_down.weight"))?,
                cache: KvCache::new(kv_heads, head_dim),
            };
            layer.check(&cfg, &p)?;
            layers.push(layer);
        }
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

impl Layer {
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

    fn forward(&mut self, cfg: &Config, s: &mut Scratch, m: usize, pos: usize) -> Result<()> {
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

fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    for ((o, v), w) in out.iter_mut().zip(x).zip(w) {
        *o = v * r * w;
    }
}

fn rms_norm_in_place(x: &mut [f32], w: &[f32], eps: f32) {
    let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let r = 1.0 / (ms + eps).sqrt();
    for (v, w) in x.iter_mut().zip(w) {
        *v = *v * r * w;
    }
}

/// cos and sin (times `scale`) of every rotary pair with inverse frequencies `inv_freq` at
/// positions `pos..pos + m`, into `cos` and `sin`.
fn rotary(
    inv_freq: &[f32],
    scale: f32,
    pos: usize,
    m: usize,
    cos: &mut Vec<f32>,
    sin: &mut Vec<f32>,
) {
    cos.clear();
    sin.clear();
    for p in pos..pos + m {
        for f in inv_freq {
            let a = p as f32 * f;
            cos.push(a.cos() * scale);
            sin.push(a.sin() * scale);
        }
    }
}

/// GELU, tanh approximation (as ggml computes it).
fn gelu(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

fn rope(cfg: &Config, head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = cfg.rope_dim / 2;
    for i in 0..half {
        let (a, b) = if cfg.neox {
            (i, i + half)
        } else {
            (2 * i, 2 * i + 1)
        };
        let (x0, x1) = (head[a], head[b]);
        head[a] = x0 * cos[i] - x1 * sin[i];
        head[b] = x0 * sin[i] + x1 * cos[i];
    }
}

/// `e^x` for every value (all ≤ 0 here, after the max is subtracted), written so the compiler
/// vectorizes it: `x = n·ln 2 + y` with `n` an integer and `|y| ≤ ln 2 / 2`, `2^n` built in the
/// exponent bits and `e^y` from its Taylor series to degree 7 (relative error below 1e-6).
fn exp_in_place(xs: &mut [f32]) {
    for out in xs.iter_mut() {
        let x = out.max(-87.0);
        let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
        // x - n·ln 2 with ln 2 split in two (Cody-Waite), so large |x| keeps its precision.
        let y = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
        let p = 1.0
            + y * (1.0
                + y * (0.5
                    + y * (1.0 / 6.0
                        + y * (1.0 / 24.0
                            + y * (1.0 / 120.0 + y * (1.0 / 720.0 + y * (1.0 / 5040.0)))))));
        *out = p * f32::from_bits(((n as i32 + 127) << 23) as u32);
    }
}

/// Causal attention of `m` new query rows (positions `pos..pos + m`) over the cache, written to
/// `out` (`m × heads·head_dim`). Per KV head and block of query rows, the query heads sharing
/// that KV head go together: scores and weighted values are two matrix products (the `gemm`
/// crate, reading the cache in place), with the causal mask and the softmax in between. The
/// (KV head, block) items are split over candle's thread pool.
fn attention(
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
    fn fast_exp_is_within_1e6_of_libm() {
        let xs: Vec<f32> = (0..=100_000)
            .map(|i| -90.0 * i as f32 / 100_000.0)
            .collect();
        let mut ys = xs.clone();
        exp_in_place(&mut ys);
        for (x, y) in xs.iter().zip(&ys) {
            let e = x.max(-87.0).exp();
            assert!((y - e).abs() <= 1e-6 * e, "exp({x}) = {y}, libm {e}");
        }
    }

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
