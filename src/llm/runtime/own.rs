//! lsmtune's own forward pass ([`Transformer`]) as a [`Runtime`]: the default for GGUF files.
//! Its KV cache can be cut back to any position, so a new turn keeps the longest common prefix.

use anyhow::Result;
use candle_core::quantized::gguf_file;

use super::Runtime;
use crate::llm::transformer::Transformer;

/// Load `arch` from a parsed GGUF onto the own forward pass.
pub fn load(
    arch: crate::llm::arch::Arch,
    content: &gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<Box<dyn Runtime>> {
    Ok(Box::new(Transformer::load(arch, content, file)?))
}

impl Runtime for Transformer {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        Transformer::forward(self, tokens, pos)
    }

    fn truncate(&mut self, len: usize) -> bool {
        Transformer::truncate(self, len);
        true
    }

    fn clear(&mut self) -> Result<()> {
        Transformer::clear(self);
        Ok(())
    }
}
