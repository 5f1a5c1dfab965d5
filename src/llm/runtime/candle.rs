//! candle-transformers' models as a [`Runtime`]: safetensors checkpoints (qwen2, llama; read
//! from `config.json` and memory-mapped shards, checked before anything is sized from them) and
//! the GGUF families (`LSMTUNE_LOCAL_RUNTIME=candle`, the reference the own forward pass is
//! checked against). What candle needs worked around lives here: a Llama loader that panics on a
//! malformed checkpoint, Qwen3's two caches, models that reset their cache themselves, and
//! caches that cannot be cut back.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{
    llama, quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
    qwen2,
};

use super::Runtime;
use crate::llm::arch::Arch;
use crate::llm::files::safetensors_in;

/// The candle model of one supported family and format.
pub enum Candle {
    /// Full-precision Qwen2 from safetensors.
    Qwen2Full(qwen2::ModelForCausalLM),
    /// Full-precision Llama from safetensors; its KV cache lives outside the model.
    LlamaFull {
        model: llama::Llama,
        cache: llama::Cache,
        config: llama::Config,
    },
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Llama(quantized_llama::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

/// Load `arch` from a GGUF onto candle-transformers' quantized models (Mistral is Llama-shaped
/// and goes to its Llama).
pub fn load_gguf(
    arch: Arch,
    content: gguf_file::Content,
    file: &mut std::fs::File,
) -> Result<Box<dyn Runtime>> {
    let device = &Device::Cpu;
    Ok(Box::new(match arch {
        Arch::Qwen2 => Candle::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
            content, file, device,
        )?),
        Arch::Qwen3 => Candle::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
            content, file, device,
        )?),
        Arch::Phi3 => Candle::Phi3(quantized_phi3::ModelWeights::from_gguf(
            false, content, file, device,
        )?),
        Arch::Gemma3 => Candle::Gemma3(quantized_gemma3::ModelWeights::from_gguf(
            content, file, device,
        )?),
        Arch::Llama | Arch::Mistral => Candle::Llama(quantized_llama::ModelWeights::from_gguf(
            content, file, device,
        )?),
    }))
}

impl Candle {
    /// One forward call of the candle model.
    fn step(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        let x = &Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Candle::Qwen2Full(m) => m.forward(x, pos),
            Candle::LlamaFull { model, cache, .. } => model.forward(x, pos, cache),
            Candle::Qwen2(m) => m.forward(x, pos),
            Candle::Qwen3(m) => m.forward(x, pos),
            Candle::Llama(m) => m.forward(x, pos),
            Candle::Phi3(m) => m.forward(x, pos),
            Candle::Gemma3(m) => m.forward(x, pos),
        }?;
        // (batch, vocab) from the GGUF families, (batch, 1, vocab) from safetensors ones.
        Ok(logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }
}

impl Runtime for Candle {
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        // candle 0.11's quantized Qwen3 keeps two caches on the CPU: one-token steps append
        // only to the decode cache, so a multi-token step after them attends to a cache missing
        // those tokens. Past the first prefill, feed Qwen3 one token at a time.
        if matches!(self, Candle::Qwen3(_)) && pos > 0 && tokens.len() > 1 {
            let mut logits = Vec::new();
            for (i, &t) in tokens.iter().enumerate() {
                logits = self.step(&[t], pos + i)?;
            }
            return Ok(logits);
        }
        self.step(tokens, pos)
    }

    /// candle's caches only grow or start over.
    fn truncate(&mut self, _len: usize) -> bool {
        false
    }

    fn clear(&mut self) -> Result<()> {
        match self {
            Candle::LlamaFull { cache, config, .. } => {
                *cache = llama::Cache::new(true, DType::F32, config, &Device::Cpu)?;
            }
            Candle::Qwen2Full(m) => m.clear_kv_cache(),
            Candle::Qwen2(m) => m.clear_kv_cache(),
            Candle::Qwen3(m) => m.clear_kv_cache(),
            Candle::Llama(m) => m.clear_kv_cache(),
            // Phi-3 and Gemma 3 reset their own caches when fed at position 0.
            Candle::Phi3(_) | Candle::Gemma3(_) => {}
        }
        Ok(())
    }
}

/// Load the safetensors checkpoint in folder `dir`: `config.json` names the family (qwen2,
/// llama); returns it with the model.
pub fn load_safetensors(dir: &Path) -> Result<(Arch, Box<dyn Runtime>)> {
    let device = &Device::Cpu;
    let config_path = dir.join("config.json");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("cannot read {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", config_path.display()))?;
    let arch: Arch = config["model_type"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e| anyhow!("{}: {e}", config_path.display()))?;
    if !arch.safetensors_supported() {
        bail!(
            "{}: safetensors models of type `{arch}` are not supported yet (supported: qwen2, llama, mistral; use a GGUF for the others)",
            dir.display()
        );
    }
    check_shape(&config).with_context(|| format!("{}", config_path.display()))?;
    let shards = safetensors_in(dir)?;
    for shard in &shards {
        check_safetensors_size(shard)?;
    }
    // SAFETY: the files are memory-mapped read-only; lsmtune does not modify them while loaded,
    // and each was checked to hold all the data its header describes (a file cut short would
    // otherwise end the process with SIGBUS when a missing page is touched). Another program
    // cutting one short during the load is turned into an error line and exit 2 by
    // `while_mapped`; the maps are gone once the model is built (the weights are copied to f32).
    let where_ = dir.display().to_string();
    crate::interrupt::while_mapped(&where_, || {
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards, DType::F32, device)? };
        build_safetensors(arch, config, &config_path, vb, &where_, device)
    })
    .map(|(arch, model)| (arch, Box::new(model) as Box<dyn Runtime>))
}

/// The candle model of a safetensors checkpoint from its (mapped) weights.
fn build_safetensors(
    arch: Arch,
    config: serde_json::Value,
    config_path: &Path,
    vb: VarBuilder,
    where_: &str,
    device: &Device,
) -> Result<(Arch, Candle)> {
    if arch == Arch::Qwen2 {
        let cfg: qwen2::Config = serde_json::from_value(config)
            .with_context(|| format!("{} is not a Qwen2 config", config_path.display()))?;
        let model =
            qwen2::ModelForCausalLM::new(&cfg, vb).map_err(|e| anyhow!("loading {where_}: {e}"))?;
        return Ok((arch, Candle::Qwen2Full(model)));
    }
    let cfg: llama::LlamaConfig = serde_json::from_value(config)
        .with_context(|| format!("{} is not a Llama config", config_path.display()))?;
    let cfg = cfg.into_config(false);
    // candle's Llama::load unwraps per-layer loads: turn a panic on a malformed checkpoint into
    // an error instead of taking the caller down.
    let model = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        llama::Llama::load(vb, &cfg)
    }))
    .map_err(|_| anyhow!("loading {where_}: a layer is missing or malformed"))?
    .map_err(|e| anyhow!("loading {where_}: {e}"))?;
    let cache = llama::Cache::new(true, DType::F32, &cfg, device)?;
    Ok((
        arch,
        Candle::LlamaFull {
            model,
            cache,
            config: cfg,
        },
    ))
}

/// A config.json's shape, checked before anything is sized from it: zero heads once divided
/// by zero, a huge layer count aborted on allocation.
fn check_shape(config: &serde_json::Value) -> Result<()> {
    let n = |k: &str| config[k].as_u64();
    let (Some(hidden), Some(heads), Some(layers)) = (
        n("hidden_size"),
        n("num_attention_heads"),
        n("num_hidden_layers"),
    ) else {
        bail!("needs hidden_size, num_attention_heads and num_hidden_layers as whole numbers");
    };
    let kv = n("num_key_value_heads").unwrap_or(heads);
    if heads == 0
        || kv == 0
        || heads % kv != 0
        || hidden == 0
        || hidden % heads != 0
        || hidden > 1 << 16
        || layers == 0
        || layers > 1024
        || n("vocab_size").is_some_and(|v| v == 0 || v > 1 << 22)
    {
        bail!(
            "implausible model shape: hidden_size {hidden}, {heads} attention heads, {kv} KV heads, {layers} layers"
        );
    }
    Ok(())
}

/// A safetensors file must hold every byte its header points at.
fn check_safetensors_size(path: &Path) -> Result<()> {
    use std::io::Read;
    let bad = |why: String| {
        anyhow!(
            "{} is not a complete safetensors file: {why}",
            path.display()
        )
    };
    let mut f =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|e| bad(e.to_string()))?;
    let header_len = u64::from_le_bytes(len);
    if header_len > (100 << 20) || 8 + header_len > size {
        return Err(bad(format!(
            "a header of {header_len} bytes in a file of {size}"
        )));
    }
    let mut header = vec![0u8; header_len as usize];
    f.read_exact(&mut header).map_err(|e| bad(e.to_string()))?;
    let header: serde_json::Value =
        serde_json::from_slice(&header).map_err(|e| bad(format!("header: {e}")))?;
    let end = header
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, t)| t["data_offsets"][1].as_u64())
        .max()
        .unwrap_or(0);
    // `end` is the file's word: an offset near 2^64 must not wrap the sum to a small one.
    let tensors_end = (8 + header_len).saturating_add(end);
    if tensors_end > size {
        return Err(bad(format!(
            "its tensors end at byte {tensors_end} but the file has {size}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_offset_near_2_to_the_64_does_not_wrap_past_the_size_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("model.safetensors");
        let header = format!(
            r#"{{"w":{{"dtype":"F32","shape":[1],"data_offsets":[0,{}]}}}}"#,
            u64::MAX - 8
        );
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header.as_bytes());
        bytes.extend([0u8; 4]);
        std::fs::write(&p, &bytes).unwrap();
        let e = super::check_safetensors_size(&p).unwrap_err().to_string();
        assert!(e.contains("not a complete safetensors file"), "{e}");
    }
}
