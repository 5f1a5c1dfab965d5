//! The local backend: a GGUF model run on the CPU (lsmtune's own forward pass, or candle's),
//! its tokenizer (the GGUF's own vocabulary, or tokenizer.json), its chat template
//! (tokenizer_config.json, chat_template.jinja, GGUF metadata, or the family's built-in), sampling (temperature, top-p, seed, repeat penalty, stop strings, max tokens), an
//! optional token constraint, and the KV cache kept across turns: a turn whose prompt extends
//! what the cache already holds prefills only the new tokens.
//!
//! Families (GGUF): qwen2, qwen3, llama (and mistral, which GGUF files also call llama), phi3,
//! gemma3.
//! Safetensors (with config.json): qwen2, llama.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use candle_core::quantized::gguf_file;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::{
    llama, quantized_gemma3, quantized_llama, quantized_phi3, quantized_qwen2, quantized_qwen3,
    qwen2,
};
use std::sync::Arc;

use super::sampling::Sampler;
use super::template::{self, ChatTemplate};
use super::tokenizer::{HfTokenizer, TextTokenizer, cross_check};
use super::transformer::Transformer;
use super::vocab::{END_OF_TURN_TEXTS, Vocab};
use super::{Completion, Finish, GenParams, Llm, Message, TokenConstraint};

/// How the weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// One `.gguf` file (quantized or not).
    Gguf,
    /// A folder of `*.safetensors` with the model's `config.json`.
    Safetensors,
}

/// Where the files of a local model are.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// The `.gguf` file, or the folder holding `*.safetensors` and `config.json`.
    pub weights: PathBuf,
    pub format: WeightFormat,
    /// `tokenizer.json` beside the weights: required for safetensors; for a GGUF optional (the
    /// file's own vocabulary is used, and checked against it).
    pub tokenizer: Option<PathBuf>,
    pub tokenizer_config: Option<PathBuf>,
    /// `chat_template.jinja` beside the weights (newer Hugging Face repos ship the template so).
    pub chat_template: Option<PathBuf>,
}

impl ModelFiles {
    /// A GGUF file alone (its tokenizer and template come from its metadata).
    pub fn gguf(weights: PathBuf) -> ModelFiles {
        ModelFiles {
            weights,
            format: WeightFormat::Gguf,
            tokenizer: None,
            tokenizer_config: None,
            chat_template: None,
        }
    }
}

impl ModelFiles {
    /// Resolve `--model` given as a GGUF file, a folder holding one GGUF, or a folder of
    /// safetensors with config.json and tokenizer.json. A GGUF needs nothing beside it; a
    /// tokenizer.json, tokenizer_config.json or chat_template.jinja beside it are used when
    /// present. The error lists what was looked for.
    pub fn resolve(spec: &Path) -> Result<ModelFiles> {
        let (dir, weights, format) = if spec.is_file() {
            let dir = spec.parent().unwrap_or(Path::new(".")).to_path_buf();
            (dir, spec.to_path_buf(), WeightFormat::Gguf)
        } else if spec.is_dir()
            && spec.join("config.json").is_file()
            && !safetensors_in(spec)?.is_empty()
        {
            (
                spec.to_path_buf(),
                spec.to_path_buf(),
                WeightFormat::Safetensors,
            )
        } else if spec.is_dir() {
            let mut ggufs: Vec<PathBuf> = std::fs::read_dir(spec)?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
                // A vision projector beside the model is not a language model.
                .filter(|p| {
                    !p.file_name()
                        .is_some_and(|n| super::stores::is_projector(&n.to_string_lossy()))
                })
                .collect();
            ggufs.sort();
            match ggufs.len() {
                0 => bail!(
                    "no model in {} (looked for <dir>/*.gguf, or <dir>/*.safetensors with <dir>/config.json and <dir>/tokenizer.json)",
                    spec.display()
                ),
                1 => (spec.to_path_buf(), ggufs.remove(0), WeightFormat::Gguf),
                _ => bail!(
                    "{} holds several .gguf files; name one: {}",
                    spec.display(),
                    ggufs
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }
        } else {
            bail!(
                "model `{}` not found: pass a .gguf file, a folder holding one, or a folder of safetensors with config.json and tokenizer.json",
                spec.display()
            );
        };
        let tokenizer = dir.join("tokenizer.json");
        if format == WeightFormat::Safetensors && !tokenizer.is_file() {
            bail!(
                "{} has no tokenizer.json ({}); copy the model's tokenizer.json there",
                weights.display(),
                tokenizer.display()
            );
        }
        let config = dir.join("tokenizer_config.json");
        let jinja = dir.join("chat_template.jinja");
        Ok(ModelFiles {
            weights,
            format,
            tokenizer: tokenizer.is_file().then_some(tokenizer),
            tokenizer_config: config.is_file().then_some(config),
            chat_template: jinja.is_file().then_some(jinja),
        })
    }
}

/// The `*.safetensors` files of a folder, sorted.
fn safetensors_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}

/// The weights of one supported family and format.
enum Weights {
    /// Full-precision Qwen2 from safetensors.
    Qwen2Full(qwen2::ModelForCausalLM),
    /// Full-precision Llama from safetensors; its KV cache lives outside the model.
    LlamaFull {
        model: llama::Llama,
        cache: llama::Cache,
        config: llama::Config,
    },
    /// GGUF families through lsmtune's own forward pass (the default).
    Own(Box<Transformer>),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Llama(quantized_llama::ModelWeights),
    Phi3(quantized_phi3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

/// Which code runs GGUF models: lsmtune's own forward pass and kernels, or candle-transformers'
/// models (kept as the reference; `LSMTUNE_LOCAL_RUNTIME=candle`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Lsmtune,
    Candle,
}

impl Runtime {
    /// From `LSMTUNE_LOCAL_RUNTIME` (`lsmtune`, the default, or `candle`).
    pub fn from_env() -> Result<Runtime> {
        match std::env::var("LSMTUNE_LOCAL_RUNTIME").as_deref() {
            Err(_) | Ok("") | Ok("lsmtune") => Ok(Runtime::Lsmtune),
            Ok("candle") => Ok(Runtime::Candle),
            Ok(other) => bail!("LSMTUNE_LOCAL_RUNTIME={other}: expected lsmtune or candle"),
        }
    }
}

/// Architectures (`general.architecture`) this backend runs.
pub const SUPPORTED_ARCHS: &[&str] = &["qwen2", "qwen3", "llama", "mistral", "phi3", "gemma3"];

impl Weights {
    fn load(
        arch: &str,
        content: gguf_file::Content,
        file: &mut std::fs::File,
        device: &Device,
    ) -> Result<Weights> {
        if Runtime::from_env()? == Runtime::Lsmtune {
            return Ok(Weights::Own(Box::new(Transformer::load(
                arch, &content, file,
            )?)));
        }
        Ok(match arch {
            "qwen2" => Weights::Qwen2(quantized_qwen2::ModelWeights::from_gguf(
                content, file, device,
            )?),
            "qwen3" => Weights::Qwen3(quantized_qwen3::ModelWeights::from_gguf(
                content, file, device,
            )?),
            "phi3" => Weights::Phi3(quantized_phi3::ModelWeights::from_gguf(
                false, content, file, device,
            )?),
            "gemma3" => Weights::Gemma3(quantized_gemma3::ModelWeights::from_gguf(
                content, file, device,
            )?),
            _ => Weights::Llama(quantized_llama::ModelWeights::from_gguf(
                content, file, device,
            )?),
        })
    }

    /// Run `tokens` at positions `pos..`; the logits after the last one.
    fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if let Weights::Own(m) = self {
            return m.forward(tokens, pos);
        }
        let x = &Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = match self {
            Weights::Own(_) => unreachable!("handled above"),
            Weights::Qwen2Full(m) => m.forward(x, pos),
            Weights::LlamaFull { model, cache, .. } => model.forward(x, pos, cache),
            Weights::Qwen2(m) => m.forward(x, pos),
            Weights::Qwen3(m) => m.forward(x, pos),
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Phi3(m) => m.forward(x, pos),
            Weights::Gemma3(m) => m.forward(x, pos),
        }?;
        // (batch, vocab) from the GGUF families, (batch, 1, vocab) from safetensors ones.
        Ok(logits
            .flatten_all()?
            .to_dtype(DType::F32)?
            .to_vec1::<f32>()?)
    }

    /// Cut the KV cache back to its first `len` positions, when this runtime can (the own
    /// forward pass); false otherwise.
    fn truncate(&mut self, len: usize) -> bool {
        match self {
            Weights::Own(m) => {
                m.truncate(len);
                true
            }
            _ => false,
        }
    }

    /// Drop the KV cache (Phi-3 resets its own when fed at position 0).
    fn clear(&mut self) -> candle_core::Result<()> {
        match self {
            Weights::LlamaFull { cache, config, .. } => {
                *cache = llama::Cache::new(true, DType::F32, config, &Device::Cpu)?;
            }
            Weights::Own(m) => m.clear(),
            Weights::Qwen2Full(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
            Weights::Qwen3(m) => m.clear_kv_cache(),
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Phi3(_) => {}
            // Resets its own cache when fed at position 0.
            Weights::Gemma3(_) => {}
        }
        Ok(())
    }
}

/// Load a safetensors checkpoint: `config.json` names the family (qwen2, llama).
fn load_safetensors(files: &ModelFiles, device: &Device) -> Result<(String, Weights)> {
    let config_path = files.weights.join("config.json");
    let config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("cannot read {}", config_path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", config_path.display()))?;
    let arch = config["model_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !matches!(arch.as_str(), "qwen2" | "llama" | "mistral") {
        bail!(
            "{}: safetensors models of type `{arch}` are not supported yet (supported: qwen2, llama; use a GGUF for qwen3, phi3)",
            files.weights.display()
        );
    }
    check_shape(&config).with_context(|| format!("{}", config_path.display()))?;
    let shards = safetensors_in(&files.weights)?;
    for shard in &shards {
        check_safetensors_size(shard)?;
    }
    // SAFETY: the files are memory-mapped read-only; lsmtune does not modify them while loaded,
    // and each was checked to hold all the data its header describes (a file cut short would
    // otherwise end the process with SIGBUS when a missing page is touched). Another program
    // cutting one short during the load is turned into an error line and exit 2 by
    // `while_mapped`; the maps are gone once the model is built (the weights are copied to f32).
    let where_ = files.weights.display().to_string();
    crate::interrupt::while_mapped(&where_, || {
        let vb = unsafe { VarBuilder::from_mmaped_safetensors(&shards, DType::F32, device)? };
        build_safetensors(&arch, config, &config_path, vb, &where_, device)
    })
}

/// The candle model of a safetensors checkpoint from its (mapped) weights.
fn build_safetensors(
    arch: &str,
    config: serde_json::Value,
    config_path: &Path,
    vb: VarBuilder,
    where_: &str,
    device: &Device,
) -> Result<(String, Weights)> {
    let arch = arch.to_string();
    if arch == "qwen2" {
        let cfg: qwen2::Config = serde_json::from_value(config)
            .with_context(|| format!("{} is not a Qwen2 config", config_path.display()))?;
        let model =
            qwen2::ModelForCausalLM::new(&cfg, vb).map_err(|e| anyhow!("loading {where_}: {e}"))?;
        return Ok((arch, Weights::Qwen2Full(model)));
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
        Weights::LlamaFull {
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
    if 8 + header_len + end > size {
        return Err(bad(format!(
            "its tensors end at byte {} but the file has {size}",
            8 + header_len + end
        )));
    }
    Ok(())
}

/// The reply as it grows, token by token, decoded incrementally: only the tokens since the
/// last complete character are decoded again at each step (not the whole reply), while
/// tokenizer-level joins (e.g. SentencePiece spaces) still come out right.
#[derive(Default)]
struct Detokenizer {
    tokens: Vec<u32>,
    text: String,
    /// Start of the tokens not yet committed to `text` as whole characters.
    pending_from: usize,
    /// Length of `text` up to the committed tokens.
    committed_len: usize,
    /// What `on_text` has received.
    emitted: usize,
    /// Where a stop string begins, when one ended the turn.
    stop_at: Option<usize>,
}

impl Detokenizer {
    fn push(&mut self, tokenizer: &dyn TextTokenizer, token: u32) -> Result<()> {
        self.tokens.push(token);
        // Decode a little context before the pending tokens so joins are rendered the same
        // as in a whole-reply decode, then keep only what the pending tokens add.
        let ctx = self.pending_from.saturating_sub(4);
        let decode = |ids: &[u32]| tokenizer.decode(ids);
        let before = decode(&self.tokens[ctx..self.pending_from])?;
        let all = decode(&self.tokens[ctx..])?;
        let added = all.strip_prefix(before.as_str()).unwrap_or(&all);
        self.text.truncate(self.committed_len);
        self.text.push_str(added);
        if !added.ends_with('\u{FFFD}') {
            self.pending_from = self.tokens.len();
            self.committed_len = self.text.len();
        }
        Ok(())
    }
}

/// A loaded GGUF model.
pub struct LocalModel {
    name: String,
    model: Weights,
    tokenizer: Arc<dyn TextTokenizer>,
    /// Prepended to a freshly encoded prompt that does not start with it.
    bos: Option<u32>,
    template: ChatTemplate,
    eos: Vec<u32>,
    /// Which tokenizer and template were chosen, and why.
    notes: Vec<String>,
    /// Tokens whose keys/values are in the model's cache, in order.
    cached: Vec<u32>,
    /// The text of the last turn (prompt + reply) and the exact tokens it was, so the next turn
    /// continues from the model's own tokens instead of re-tokenizing its reply.
    history_text: String,
    history_tokens: Vec<u32>,
    /// Keep the KV cache between turns (off = prefill every prompt from scratch).
    pub reuse_kv: bool,
}

/// End-of-turn tokens of the families we know, as spelled in their vocabularies.
const EOS_TOKENS: &[&str] = &[
    "<|im_end|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|end_of_text|>",
    "<|end|>",
    "</s>",
];

fn template_from_config(path: &Path) -> Option<(String, String, String)> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let tmpl = v.get("chat_template")?.as_str()?.to_string();
    let tok = |k: &str| {
        v.get(k)
            .and_then(|t| {
                t.as_str()
                    .map(str::to_string)
                    .or_else(|| t.get("content")?.as_str().map(str::to_string))
            })
            .unwrap_or_default()
    };
    Some((tmpl, tok("bos_token"), tok("eos_token")))
}

/// What a GGUF file gives besides its weights.
struct GgufExtras {
    template: Option<String>,
    /// The vocabulary in its metadata: `None` when it has none, `Err` when it cannot be used.
    vocab: Option<Result<Vocab>>,
}

/// Load a GGUF: its architecture, weights, chat template and vocabulary.
fn load_gguf(files: &ModelFiles, device: &Device) -> Result<(String, Weights, GgufExtras)> {
    let mut file = std::fs::File::open(&files.weights)
        .with_context(|| format!("cannot open {}", files.weights.display()))?;
    let content = gguf_file::Content::read(&mut file)
        .map_err(|e| anyhow!("{} is not a GGUF file: {e}", files.weights.display()))?;
    let arch = content
        .metadata
        .get("general.architecture")
        .and_then(|v| v.to_string().ok().cloned())
        .unwrap_or_default();
    if !SUPPORTED_ARCHS.contains(&arch.as_str()) {
        bail!(
            "{}: architecture `{arch}` is not supported (supported: {})",
            files.weights.display(),
            SUPPORTED_ARCHS.join(", ")
        );
    }
    let template = content
        .metadata
        .get("tokenizer.chat_template")
        .and_then(|v| v.to_string().ok().cloned());
    let vocab = Vocab::present(&content.metadata).then(|| Vocab::from_gguf(&content.metadata));
    let model = Weights::load(&arch, content, &mut file, device)
        .with_context(|| format!("loading {}", files.weights.display()))?;
    Ok((arch, model, GgufExtras { template, vocab }))
}

/// The tokenizer a model runs with: a GGUF's own vocabulary when it has a usable one (checked
/// against a tokenizer.json beside it), else tokenizer.json. Returns it with its end-of-turn
/// tokens, BOS to add, the template's bos/eos texts, and a note saying which was chosen.
struct ChosenTokenizer {
    tokenizer: Arc<dyn TextTokenizer>,
    eos: Vec<u32>,
    bos: Option<u32>,
    bos_text: String,
    eos_text: String,
    note: String,
}

fn choose_tokenizer(files: &ModelFiles, vocab: Option<Result<Vocab>>) -> Result<ChosenTokenizer> {
    let weights = files.weights.display();
    let hf = files.tokenizer.as_deref().map(HfTokenizer::from_file);
    match (vocab, hf) {
        (Some(Ok(v)), hf) => {
            let note = match &hf {
                None => format!("tokenizer: {}", TextTokenizer::describe(&v)),
                Some(Err(e)) => format!(
                    "tokenizer: {}; tokenizer.json beside it cannot be read and is not used: {e}",
                    TextTokenizer::describe(&v)
                ),
                Some(Ok(h)) => match cross_check(&v, h) {
                    Ok(n) => format!(
                        "tokenizer: {} (tokenizer.json beside it agrees on all {n} ids)",
                        TextTokenizer::describe(&v)
                    ),
                    Err(diff) => format!(
                        "tokenizer: {}; tokenizer.json beside it is not used: {diff}",
                        TextTokenizer::describe(&v)
                    ),
                },
            };
            if v.end_of_generation.is_empty() {
                bail!("{weights}: the GGUF vocabulary has no end-of-turn token (no eos id, none of {})", END_OF_TURN_TEXTS.join(", "));
            }
            let text = |id: Option<u32>| {
                id.and_then(|i| v.text(i))
                    .map(str::to_string)
                    .unwrap_or_default()
            };
            let (bos_text, eos_text) = (text(v.bos), text(v.eos));
            Ok(ChosenTokenizer {
                eos: v.end_of_generation.clone(),
                bos: v.bos.filter(|_| v.add_bos),
                bos_text,
                eos_text,
                note,
                tokenizer: Arc::new(v),
            })
        }
        (vocab, Some(h)) => {
            let h = h?;
            let note = match vocab {
                Some(Err(e)) => format!(
                    "tokenizer: {} (the GGUF's own vocabulary cannot be used: {e})",
                    h.describe()
                ),
                _ => format!("tokenizer: {}", h.describe()),
            };
            let eos: Vec<u32> = EOS_TOKENS.iter().filter_map(|t| h.id(t)).collect();
            if eos.is_empty() {
                bail!(
                    "{} has no end-of-turn token ({})",
                    h.path,
                    EOS_TOKENS.join(", ")
                );
            }
            Ok(ChosenTokenizer {
                tokenizer: Arc::new(h),
                eos,
                bos: None,
                bos_text: String::new(),
                eos_text: String::new(),
                note,
            })
        }
        (Some(Err(e)), None) => Err(e.context(format!(
            "{weights}: its tokenizer metadata cannot be used (put the model's tokenizer.json beside it to use that instead)"
        ))),
        (None, None) => bail!(
            "{weights} carries no tokenizer in its metadata and has no tokenizer.json beside it"
        ),
    }
}

impl LocalModel {
    pub fn load(files: &ModelFiles) -> Result<LocalModel> {
        tracing::debug!(
            "loading {:?} weights from {} (tokenizer {:?})",
            files.format,
            files.weights.display(),
            files.tokenizer
        );
        let device = Device::Cpu;
        let (arch, model, extras) = match files.format {
            WeightFormat::Safetensors => {
                let (arch, model) = load_safetensors(files, &device)?;
                (
                    arch,
                    model,
                    GgufExtras {
                        template: None,
                        vocab: None,
                    },
                )
            }
            WeightFormat::Gguf => load_gguf(files, &device)?,
        };
        let chosen = choose_tokenizer(files, extras.vocab)?;
        let mut notes = vec![chosen.note];
        // The template: tokenizer_config.json, chat_template.jinja, the GGUF's own, the
        // family's built-in; rendered with the bos/eos texts of the file it came with.
        let from_config = files
            .tokenizer_config
            .as_deref()
            .and_then(template_from_config);
        let (source, bos, eos_text, origin) = if let Some((t, b, e)) = from_config {
            (t, b, e, "tokenizer_config.json".to_string())
        } else if let Some(path) = &files.chat_template {
            let t = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            (
                t,
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                "chat_template.jinja".to_string(),
            )
        } else if let Some(t) = extras.template {
            (
                t,
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                "the GGUF metadata".to_string(),
            )
        } else {
            (
                template::builtin(&arch)
                    .unwrap_or(template::CHATML)
                    .to_string(),
                chosen.bos_text.clone(),
                chosen.eos_text.clone(),
                format!("built-in for {arch} (the model ships none)"),
            )
        };
        notes.push(format!("chat template: {origin}"));
        let template = ChatTemplate::new(&source, &bos, &eos_text)?;
        Ok(LocalModel {
            name: format!("local:{arch} ({})", files.weights.display()),
            model,
            tokenizer: chosen.tokenizer,
            bos: chosen.bos,
            template,
            eos: chosen.eos,
            notes,
            cached: Vec::new(),
            history_text: String::new(),
            history_tokens: Vec::new(),
            reuse_kv: true,
        })
    }

    /// Which tokenizer and chat template were chosen, one line each.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// The prompt as the model sees it for `messages` (the rendered chat template).
    pub fn render(&self, messages: &[Message]) -> Result<String> {
        self.template.render(messages, true)
    }

    /// Forget the KV cache (the next turn prefills its whole prompt).
    pub fn reset(&mut self) -> Result<()> {
        self.cached.clear();
        self.model.clear()?;
        Ok(())
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Arc<dyn TextTokenizer> {
        &self.tokenizer
    }

    /// The model's end-of-turn tokens.
    pub fn eos_tokens(&self) -> &[u32] {
        &self.eos
    }

    /// Tokens the model's tokenizer makes of a text.
    pub fn count_tokens(&self, text: &str) -> Result<usize> {
        Ok(self.encode(text)?.len())
    }

    /// Tokens of prompt text: special tokens written in it (the template's) are parsed.
    fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// Tokens of a whole prompt: BOS first when the model wants it and the template did not
    /// write it.
    pub fn encode_prompt(&self, prompt: &str) -> Result<Vec<u32>> {
        let mut tokens = self.encode(prompt)?;
        if let Some(bos) = self.bos
            && tokens.first() != Some(&bos)
        {
            tokens.insert(0, bos);
        }
        Ok(tokens)
    }

    /// Tokens of a rendered prompt: the previous turn's exact tokens plus the new suffix when
    /// the prompt continues the previous turn, else a fresh encoding.
    fn prompt_tokens(&self, prompt: &str) -> Result<Vec<u32>> {
        if !self.history_text.is_empty()
            && let Some(suffix) = prompt.strip_prefix(self.history_text.as_str())
        {
            let mut tokens = self.history_tokens.clone();
            tokens.extend(self.encode(suffix)?);
            return Ok(tokens);
        }
        self.encode_prompt(prompt)
    }

    /// Append generated tokens to the reply: stream the new text, and say whether a stop string
    /// ended the turn.
    fn take(
        &self,
        out: &mut Detokenizer,
        tokens: &[u32],
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Option<Finish>> {
        for &t in tokens {
            out.push(self.tokenizer.as_ref(), t)?;
            if !out.text.ends_with('\u{FFFD}')
                && out.text.len() > out.emitted
                && out.text.is_char_boundary(out.emitted)
            {
                on_text(&out.text[out.emitted..]);
                out.emitted = out.text.len();
            }
            if let Some(stop) = params
                .stop
                .iter()
                .find(|s| !s.is_empty() && out.text.ends_with(s.as_str()))
            {
                out.stop_at = Some(out.text.len() - stop.len());
                return Ok(Some(Finish::Stop));
            }
        }
        Ok(None)
    }

    /// Feed tokens at the end of the KV cache (after [`reset`](Self::reset), from position 0);
    /// returns the logits after the last one. For checks against a reference implementation.
    pub fn feed(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        // candle 0.11's quantized Qwen3 keeps two caches on the CPU: one-token steps append
        // only to the decode cache, so a multi-token step after them attends to a cache missing
        // those tokens. Past the first prefill, feed Qwen3 one token at a time.
        if matches!(self.model, Weights::Qwen3(_)) && !self.cached.is_empty() && tokens.len() > 1 {
            let mut logits = Vec::new();
            for &t in tokens {
                logits = self.feed_batch(&[t])?;
            }
            return Ok(logits);
        }
        self.feed_batch(tokens)
    }

    fn feed_batch(&mut self, tokens: &[u32]) -> Result<Vec<f32>> {
        let logits = self.model.forward(tokens, self.cached.len())?;
        self.cached.extend_from_slice(tokens);
        Ok(logits)
    }
}

impl Llm for LocalModel {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn chat(
        &mut self,
        messages: &[Message],
        mut constraint: Option<&mut dyn TokenConstraint>,
        params: &GenParams,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<Completion> {
        let prompt = self.template.render(messages, true)?;
        let tokens = self.prompt_tokens(&prompt)?;
        if tokens.is_empty() {
            bail!("the prompt encodes to no tokens");
        }
        // Reuse the cache when it holds a strict prefix of this prompt; a runtime that can cut
        // its cache back also keeps the longest common prefix (a template that does not
        // reproduce the last reply verbatim, or a new conversation with the same system
        // prompt), leaving at least one token to run.
        let reuse =
            self.reuse_kv && self.cached.len() < tokens.len() && tokens.starts_with(&self.cached);
        if !reuse {
            let common = self
                .cached
                .iter()
                .zip(&tokens)
                .take_while(|(a, b)| a == b)
                .count()
                .min(tokens.len() - 1);
            if self.reuse_kv && common > 0 && self.model.truncate(common) {
                self.cached.truncate(common);
            } else {
                self.reset()?;
            }
        }
        let cached_tokens = self.cached.len();
        let prefill_start = Instant::now();
        let mut logits = self.feed(&tokens[cached_tokens..])?;
        let prefill_seconds = prefill_start.elapsed().as_secs_f64();

        let mut sampler = Sampler::new(params.seed, params.temperature, params.top_p);
        let decode_start = Instant::now();
        let mut out = Detokenizer::default();
        let finish = loop {
            if out.tokens.len() >= params.max_tokens {
                break Finish::Length;
            }
            // Tokens the constraint forces: taken without sampling, fed in one batch.
            if let Some(c) = constraint.as_deref_mut() {
                let mut forced = c.forced()?;
                forced.truncate(params.max_tokens - out.tokens.len());
                if !forced.is_empty() {
                    for &t in &forced {
                        c.consume(t)?;
                    }
                    if let Some(f) = self.take(&mut out, &forced, params, on_text)? {
                        break f;
                    }
                    logits = self.feed(&forced)?;
                    continue;
                }
            }
            if params.repeat_penalty != 1.0 {
                let start = out.tokens.len().saturating_sub(params.repeat_last_n);
                for &t in &out.tokens[start..] {
                    if let Some(l) = logits.get_mut(t as usize) {
                        *l = if *l >= 0.0 {
                            *l / params.repeat_penalty
                        } else {
                            *l * params.repeat_penalty
                        };
                    }
                }
            }
            if let Some(c) = constraint.as_deref_mut() {
                let eos_logits: Vec<(usize, f32)> = self
                    .eos
                    .iter()
                    .filter_map(|&e| logits.get(e as usize).map(|l| (e as usize, *l)))
                    .collect();
                let any = c.restrict(&mut logits)?;
                // End-of-turn exactly when the constraint is satisfied.
                let complete = c.is_complete();
                for &(e, original) in &eos_logits {
                    logits[e] = if complete {
                        original
                    } else {
                        f32::NEG_INFINITY
                    };
                }
                if !any && !complete {
                    break Finish::Constraint;
                }
            }
            let Some(token) = sampler.sample(&logits) else {
                // Nothing finite to choose from: the constraint left no token.
                break Finish::Constraint;
            };
            if self.eos.contains(&token) && !params.ignore_eos {
                break Finish::Eos;
            }
            if let Some(c) = constraint.as_deref_mut() {
                c.consume(token)?;
            }
            if let Some(f) = self.take(&mut out, &[token], params, on_text)? {
                break f;
            }
            logits = self.feed(&[token])?;
        };
        let generated = out.tokens;
        let mut text = out.text;
        let emitted = out.emitted;
        if finish == Finish::Stop {
            // The stop string itself is not part of the reply.
            text.truncate(out.stop_at.unwrap_or(text.len()));
        }
        if text.len() > emitted && text.is_char_boundary(emitted) {
            on_text(&text[emitted..]);
        }
        // Remember this turn's exact tokens, unless a stop string cut the text short of them.
        if finish == Finish::Stop {
            self.history_text.clear();
            self.history_tokens.clear();
        } else {
            self.history_text = format!("{prompt}{text}");
            self.history_tokens = tokens.clone();
            self.history_tokens.extend_from_slice(&generated);
        }
        Ok(Completion {
            text,
            prompt_tokens: tokens.len(),
            cached_tokens,
            completion_tokens: generated.len(),
            prefill_seconds,
            decode_seconds: decode_start.elapsed().as_secs_f64(),
            finish,
        })
    }
}
