//! A model's dimensions and conventions, read from its GGUF metadata (`{arch}.*` keys) and
//! checked against the tensors present before anything is sized from them: head counts and
//! sizes, rotary frequencies (base, Llama 3.1 / LongRoPE factors, linear scaling) and the
//! per-architecture choices (NEOX rotary pairs; Gemma 3's GELU, scaled embeddings and
//! sliding-window layers with their own rotary base).

use anyhow::{Result, anyhow, bail};
use candle_core::quantized::gguf_file;

use super::linear::vector;

/// Dimensions and conventions read from the GGUF metadata.
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub(super) hidden: usize,
    pub(super) heads: usize,
    pub(super) kv_heads: usize,
    pub(super) head_dim: usize,
    pub(super) rope_dim: usize,
    /// NEOX rotary pairs (i, i + d/2) rather than interleaved (2i, 2i + 1).
    pub(super) neox: bool,
    pub(super) eps: f32,
    /// Inverse frequencies of the rotary pairs.
    pub(super) inv_freq: Vec<f32>,
    /// Multiplies cos and sin (LongRoPE's attention factor; 1 otherwise).
    pub(super) rope_scale: f32,
    /// Multiplies the attention scores (1/sqrt(head_dim)).
    pub(super) attn_scale: f32,
    /// Multiplies the token embeddings (Gemma: sqrt(hidden); 1 otherwise).
    pub(super) embed_scale: f32,
    /// GELU (tanh approximation) instead of SiLU in the gated feed-forward (Gemma).
    pub(super) gelu: bool,
    /// Sliding-window attention of some layers (Gemma 3): how many positions a query sees,
    /// itself included, and the inverse rotary frequencies of those layers.
    pub(super) window: Option<usize>,
    pub(super) local_inv_freq: Vec<f32>,
}

/// What [`Config::read`] gives besides the configuration.
pub(super) struct Layout {
    /// Layers (`block_count`, checked against the tensors present).
    pub(super) blocks: usize,
    /// Gemma 3: every `pattern`-th layer attends globally, the others within the window.
    pub(super) pattern: usize,
}

impl Config {
    /// The configuration of `arch` from a
    /// parsed GGUF; `file` is read for the rotary frequency factors.
    pub(super) fn read(
        arch: crate::llm::arch::Arch,
        ct: &gguf_file::Content,
        file: &mut std::fs::File,
    ) -> Result<(Config, Layout)> {
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
        let gemma = arch == crate::llm::arch::Arch::Gemma3;
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
            neox: arch.rope_neox(),
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
        Ok((cfg, Layout { blocks, pattern }))
    }
}
