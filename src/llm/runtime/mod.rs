//! The seam between model runtimes: whatever computes a model's logits sits behind
//! [`Runtime`] (forward a batch of tokens at a position, with a KV cache that can be cleared and,
//! where the runtime allows, cut back). [`own`] adapts lsmtune's own forward pass
//! ([`super::transformer`] on [`super::kernels`]), the default for GGUF files; [`candle`] holds
//! candle-transformers' models (safetensors checkpoints, and GGUF files with
//! `LSMTUNE_LOCAL_RUNTIME=candle`, kept as the reference) and the workarounds they need.
//! The local backend ([`super::local`]) only generates on top of this trait.

use anyhow::{Result, bail};

pub mod candle;
pub mod own;

/// A model's forward pass with its KV cache.
pub trait Runtime: Send {
    /// Run `tokens` at positions `pos..pos + tokens.len()`, `pos` being the number of positions
    /// the cache holds; returns the logits after the last token.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>>;
    /// Cut the KV cache back to its first `len` positions, when this runtime can; false when it
    /// cannot (the caller then clears the cache and prefills again).
    fn truncate(&mut self, len: usize) -> bool;
    /// Drop the KV cache.
    fn clear(&mut self) -> Result<()>;
}

/// Which code runs GGUF models: lsmtune's own forward pass and kernels, or candle-transformers'
/// models (kept as the reference; `LSMTUNE_LOCAL_RUNTIME=candle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgufRuntime {
    Lsmtune,
    Candle,
}

impl GgufRuntime {
    /// From `LSMTUNE_LOCAL_RUNTIME` (`lsmtune`, the default, or `candle`).
    pub fn from_env() -> Result<GgufRuntime> {
        match std::env::var("LSMTUNE_LOCAL_RUNTIME").as_deref() {
            Err(_) | Ok("") | Ok("lsmtune") => Ok(GgufRuntime::Lsmtune),
            Ok("candle") => Ok(GgufRuntime::Candle),
            Ok(other) => bail!("LSMTUNE_LOCAL_RUNTIME={other}: expected lsmtune or candle"),
        }
    }
}
