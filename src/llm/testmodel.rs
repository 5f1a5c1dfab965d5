//! Tiny deterministic random-weight models, written by the project itself so the real loading
//! and generation code is tested with no download: a byte-level BPE tokenizer trained offline
//! (tokenizer.json with ChatML, Llama 3 and Phi-3 special tokens) on the caller's text plus fixed
//! lines of JSON, numbers and chat words, and Qwen2-, Llama-, Qwen3- or Phi-3-shaped weights
//! written as GGUF (quantized matrices, F32 norms and biases, the metadata llama.cpp's and
//! candle's loaders read) or as safetensors (qwen2, llama).
//!
//! Not on the library's main path: only `models make-test-model` and the tests use it, and it is
//! compiled with the cargo feature `test-models` (on by default). It knows nothing of RocksDB's
//! options: what the tokenizer should learn besides its fixed lines is passed in.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{Device, Tensor};
use tokenizers::models::TrainerWrapper;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer};

use crate::rng::Rng;

/// Dimensions of a generated model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    pub hidden: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub layers: usize,
    pub intermediate: usize,
    /// Target vocabulary of the trained tokenizer (special tokens included).
    pub vocab: usize,
    pub context: usize,
    /// Share the embedding matrix as the output layer (no `output.weight`), as Qwen2.5-0.5B does.
    pub tie_embeddings: bool,
}

impl Shape {
    /// The dimensions of Qwen2.5-0.5B (151,936-token vocabulary), for speed measurements.
    pub const QWEN2_5_0_5B: Shape = Shape {
        hidden: 896,
        heads: 14,
        kv_heads: 2,
        layers: 24,
        intermediate: 4864,
        vocab: 151_936,
        context: 32_768,
        tie_embeddings: true,
    };

    /// The dimensions of Qwen2.5-1.5B: rows are multiples of 256, so K-quants apply throughout
    /// (the Q4_K_M files users download for 1.5B and larger models).
    pub const QWEN2_5_1_5B: Shape = Shape {
        hidden: 1536,
        heads: 12,
        kv_heads: 2,
        layers: 28,
        intermediate: 8960,
        vocab: 151_936,
        context: 32_768,
        tie_embeddings: true,
    };

    /// Small enough to load and generate in milliseconds.
    pub const TINY: Shape = Shape {
        hidden: 64,
        heads: 4,
        kv_heads: 2,
        layers: 2,
        intermediate: 128,
        vocab: 1024,
        context: 4096,
        tie_embeddings: false,
    };
}

pub const SPECIAL_TOKENS: [&str; 11] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|end|>",
];

pub use super::arch::Arch;

/// The architectures test models are generated for (qwen2, llama, qwen3, phi3); the others
/// are an error naming them.
pub fn generated(arch: Arch) -> Result<Arch, String> {
    match arch {
        Arch::Qwen2 | Arch::Llama | Arch::Qwen3 | Arch::Phi3 => Ok(arch),
        Arch::Mistral | Arch::Gemma3 => Err(format!(
            "--arch {arch}: test models come as qwen2, llama, qwen3 or phi3"
        )),
    }
}

/// Text the tokenizer learns from: the caller's `words` (lines of the domain's vocabulary, e.g.
/// option names and meanings), then numbers, a JSON proposal and chat words.
fn corpus(words: &[String]) -> Vec<String> {
    let mut lines = words.to_vec();
    for n in [
        0u64,
        1,
        2,
        4,
        8,
        10,
        16,
        32,
        64,
        128,
        256,
        1024,
        4096,
        65536,
        1 << 20,
        1 << 26,
        1 << 30,
    ] {
        lines.push(format!("\"value\": {n}, \"bytes\": {n}, true, false, null"));
    }
    lines.push("{\"reasoning\": \"The workload is write heavy, so larger memtables reduce flushes.\", \"changes\": {}}".into());
    lines.push(
        "system user assistant You are a RocksDB tuning expert. Propose option changes as JSON."
            .into(),
    );
    lines.push(
        "throughput ops/s latency p99 write amplification stall compaction cache hit rate".into(),
    );
    lines
}

/// Train the tokenizer on `words` plus its fixed lines (JSON, numbers, chat words) and save it
/// as `tokenizer.json` in `dir`.
pub fn write_tokenizer(dir: &Path, vocab: usize, words: &[String]) -> Result<PathBuf> {
    let specials: Vec<AddedToken> = SPECIAL_TOKENS
        .iter()
        .map(|t| AddedToken::from(t.to_string(), true))
        .collect();
    let trainer = BpeTrainerBuilder::new()
        .vocab_size(vocab)
        .min_frequency(1)
        .show_progress(false)
        .special_tokens(specials)
        .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
        .build();
    let mut trainer = TrainerWrapper::from(trainer);
    let mut tokenizer = Tokenizer::new(BPE::default());
    tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let text = corpus(words);
    tokenizer
        .train(&mut trainer, text.iter())
        .map_err(|e| anyhow::anyhow!("training the test tokenizer: {e}"))?;
    let path = dir.join("tokenizer.json");
    tokenizer
        .save(&path, false)
        .map_err(|e| anyhow::anyhow!("saving {}: {e}", path.display()))?;
    Ok(path)
}

/// Grow a trained byte-level BPE tokenizer to `target` tokens with synthetic words: pseudo-random
/// syllable words in four casings, with and without a leading space, plus numbers and JSON
/// punctuation runs. The set is prefix-closed, and each new token merges its longest proper
/// prefix with its last symbol, so the result is a valid BPE (deterministic: no randomness
/// beyond a fixed-seed generator).
fn extend_vocabulary(path: &Path, target: usize) -> Result<()> {
    use std::collections::HashSet;
    let mut json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let vocab = json["model"]["vocab"]
        .as_object()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("{}: no BPE vocab", path.display()))?;
    let added = json["added_tokens"].as_array().map_or(0, |a| a.len());
    let mut next_id = vocab
        .values()
        .filter_map(|v| v.as_u64())
        .max()
        .map_or(0, |m| m as usize + 1)
        .max(added);
    let mut known: HashSet<String> = vocab.keys().cloned().collect();
    let mut new_tokens: Vec<String> = Vec::new();
    let add = |word: &str, known: &mut HashSet<String>, new_tokens: &mut Vec<String>| {
        let chars: Vec<char> = word.chars().collect();
        for end in 2..=chars.len() {
            let t: String = chars[..end].iter().collect();
            if known.insert(t.clone()) {
                new_tokens.push(t);
            }
        }
    };
    let onsets = [
        "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
        "st", "tr", "ch", "sh", "th", "pl", "gr", "br", "cl", "sp", "qu", "",
    ];
    let vowels = ["a", "e", "i", "o", "u", "ea", "ou", "io", "ai", "y"];
    let codas = [
        "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck", "x",
    ];
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut rand = move |n: usize| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as usize) % n
    };
    // Numbers and punctuation first, as real vocabularies have them.
    for n in 0..1000 {
        add(&n.to_string(), &mut known, &mut new_tokens);
        add(&format!("Ġ{n}"), &mut known, &mut new_tokens);
    }
    for p in [
        "\",\"",
        "\":Ġ\"",
        "\"}]",
        "\"},Ġ{\"",
        "{\"",
        "}}",
        "__",
        "::",
        "==",
        "()",
    ] {
        add(p, &mut known, &mut new_tokens);
    }
    let room = target.saturating_sub(next_id);
    while new_tokens.len() < room {
        let syllables = 1 + rand(4);
        let mut w = String::new();
        for _ in 0..syllables {
            w.push_str(onsets[rand(onsets.len())]);
            w.push_str(vowels[rand(vowels.len())]);
            w.push_str(codas[rand(codas.len())]);
        }
        let cap: String = w
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
            .collect();
        for form in [
            w.clone(),
            format!("Ġ{w}"),
            cap.clone(),
            format!("Ġ{cap}"),
            format!("_{w}"),
        ] {
            add(&form, &mut known, &mut new_tokens);
        }
    }
    new_tokens.truncate(room);
    // Shorter first, so a token's prefix always merges before it.
    new_tokens.sort_by_key(|t| t.chars().count());
    let vocab_obj = json["model"]["vocab"]
        .as_object_mut()
        .expect("checked above");
    let mut merges = Vec::with_capacity(new_tokens.len());
    for t in &new_tokens {
        vocab_obj.insert(t.clone(), serde_json::json!(next_id));
        next_id += 1;
        let split = t.char_indices().last().map_or(0, |(i, _)| i);
        merges.push(serde_json::json!([&t[..split], &t[split..]]));
    }
    let list = json["model"]["merges"]
        .as_array_mut()
        .ok_or_else(|| anyhow::anyhow!("{}: no BPE merges", path.display()))?;
    // Merges stored as "a b" strings in older files: keep the file's form.
    let as_strings = list.first().is_some_and(|m| m.is_string());
    for m in merges {
        if as_strings {
            let a = m[0].as_str().unwrap_or_default();
            let b = m[1].as_str().unwrap_or_default();
            list.push(serde_json::json!(format!("{a} {b}")));
        } else {
            list.push(m);
        }
    }
    std::fs::write(path, serde_json::to_vec(&json)?)?;
    Ok(())
}

/// The GGUF `tokenizer.ggml.*` keys (gpt2-style BPE), so llama.cpp can load the file too.
fn tokenizer_metadata(
    tok: &Tokenizer,
    path: &Path,
    vocab: usize,
) -> Result<Vec<(String, gguf_file::Value)>> {
    use gguf_file::Value as V;
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
    let merges: Vec<V> = json["model"]["merges"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|p| match p {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Array(a) => Some(
                        a.iter()
                            .filter_map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    _ => None,
                })
                .map(V::String)
                .collect()
        })
        .unwrap_or_default();
    let mut tokens = Vec::with_capacity(vocab);
    let mut types = Vec::with_capacity(vocab);
    for id in 0..vocab as u32 {
        match tok.id_to_token(id) {
            Some(t) => {
                let special = SPECIAL_TOKENS.contains(&t.as_str());
                tokens.push(V::String(t));
                types.push(V::I32(if special { 3 } else { 1 }));
            }
            None => {
                tokens.push(V::String(format!("[PAD{id}]")));
                types.push(V::I32(5));
            }
        }
    }
    let id = |t: &str| tok.token_to_id(t).map(V::U32);
    let mut out = vec![
        ("tokenizer.ggml.model".to_string(), V::String("gpt2".into())),
        ("tokenizer.ggml.pre".to_string(), V::String("gpt-2".into())),
        ("tokenizer.ggml.tokens".to_string(), V::Array(tokens)),
        ("tokenizer.ggml.token_type".to_string(), V::Array(types)),
        ("tokenizer.ggml.merges".to_string(), V::Array(merges)),
    ];
    if let Some(eos) = id("<|im_end|>") {
        out.push(("tokenizer.ggml.eos_token_id".into(), eos));
    }
    if let Some(bos) = id("<|endoftext|>") {
        out.push(("tokenizer.ggml.bos_token_id".into(), bos.clone()));
        out.push(("tokenizer.ggml.padding_token_id".into(), bos));
    }
    Ok(out)
}

/// What every writer does first: check the shape, create `dir`, train and load the tokenizer.
/// Returns the tokenizer, its path, and the model vocabulary size.
fn prepare(dir: &Path, shape: Shape, words: &[String]) -> Result<(Tokenizer, PathBuf, usize)> {
    if shape.heads == 0
        || shape.kv_heads == 0
        || !shape.hidden.is_multiple_of(shape.heads)
        || !shape.heads.is_multiple_of(shape.kv_heads)
    {
        bail!("hidden must divide by heads and heads by kv_heads");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // The tokenizer learns what the small corpus supports; the model's vocabulary may be larger
    // (ids past the tokenizer's are padding tokens, as in real checkpoints).
    let tok_path = write_tokenizer(dir, shape.vocab.min(4096), words)?;
    if shape.vocab > 8192 {
        // A real-sized vocabulary, so that per-token costs that scale with it (logits, the
        // grammar's token trie) are measured at their real size.
        extend_vocabulary(&tok_path, shape.vocab - 293)?;
    }
    let tok = Tokenizer::from_file(&tok_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let vocab = tok.get_vocab_size(true).max(shape.vocab);
    Ok((tok, tok_path, vocab))
}

fn random(rng: &mut Rng, shape: &[usize], scale: f32) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    // Sum of two uniforms: a cheap, deterministic bell shape in [-scale, scale].
    let data: Vec<f32> = (0..n)
        .map(|_| ((rng.unit() + rng.unit()) as f32 - 1.0) * scale)
        .collect();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

/// How the matrices of a generated GGUF are quantized.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Quant {
    /// One type for every matrix; rows that do not fit a K-quant's 256-wide blocks fall back as
    /// llama.cpp's quantizer does (Q2_K and Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to
    /// Q8_0; a 32-wide type that does not fit to F16).
    Uniform(GgmlDType),
    /// llama.cpp's Q4_K_M recipe: Q4_K, with Q6_K for the output layer and for attn_v and
    /// ffn_down in the layers it gives more bits; rows that do not fit 256-wide blocks fall back
    /// as llama.cpp does (Q4_K to Q5_0, Q6_K to Q8_0), which is what a real Qwen2.5-0.5B
    /// Q4_K_M file holds.
    Q4KM,
}

impl From<GgmlDType> for Quant {
    fn from(d: GgmlDType) -> Quant {
        Quant::Uniform(d)
    }
}

impl Quant {
    /// The type of matrix `name` (rows of `row` values) in a model of `layers` layers; `tied`:
    /// the embedding table is also the output layer.
    fn pick(self, name: &str, row: usize, layers: usize, tied: bool) -> GgmlDType {
        let fits = |d: GgmlDType| row.is_multiple_of(d.block_size());
        match self {
            Quant::Uniform(d) if fits(d) => d,
            Quant::Uniform(d) => match d {
                GgmlDType::Q2K | GgmlDType::Q3K => GgmlDType::Q4_0,
                GgmlDType::Q4K => GgmlDType::Q5_0,
                GgmlDType::Q5K => GgmlDType::Q5_1,
                GgmlDType::Q6K => GgmlDType::Q8_0,
                _ => GgmlDType::F16,
            },
            Quant::Q4KM => {
                let layer = name
                    .strip_prefix("blk.")
                    .and_then(|r| r.split('.').next())
                    .and_then(|n| n.parse::<usize>().ok());
                // llama.cpp's use_more_bits: the first and last eighth, and every third between.
                let more_bits =
                    |i: usize| i < layers / 8 || i >= 7 * layers / 8 || (i - layers / 8) % 3 == 2;
                let output = name == "output.weight" || (tied && name == "token_embd.weight");
                let more = (name.contains("attn_v.") || name.contains("ffn_down."))
                    && layer.is_some_and(more_bits);
                let want = if output || more {
                    GgmlDType::Q6K
                } else {
                    GgmlDType::Q4K
                };
                match want {
                    d if fits(d) => d,
                    GgmlDType::Q6K => GgmlDType::Q8_0,
                    _ => GgmlDType::Q5_0,
                }
            }
        }
    }
}

/// Write a random-weight GGUF (`model.gguf`) of `arch` and its tokenizer (trained on `words`,
/// see [`write_tokenizer`]) into `dir`. Deterministic for a given seed and words.
pub fn write_gguf(
    dir: &Path,
    arch: Arch,
    shape: Shape,
    seed: u64,
    quant: impl Into<Quant>,
    words: &[String],
) -> Result<PathBuf> {
    generated(arch).map_err(|e| anyhow::anyhow!(e))?;
    let quant = quant.into();
    let tied = shape.tie_embeddings && arch != Arch::Phi3;
    // Stands for "the recipe's type" in the calls below; vectors are always F32.
    let dtype = GgmlDType::Q8_0;
    let (tok, tok_path, vocab) = prepare(dir, shape, words)?;
    let (h, i) = (shape.hidden, shape.intermediate);
    let kv = shape.kv_heads * (h / shape.heads);
    let mut rng = Rng::new(seed);
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, t: Tensor, dt: GgmlDType| -> Result<()> {
        // K-quants need rows that are multiples of 256 (Qwen2.5-0.5B's 896 is not); like real
        // mixed-precision GGUFs, such tensors fall back (see Quant).
        let row = t.dims().last().copied().unwrap_or(1);
        let dt = if dt == GgmlDType::F32 || t.rank() == 1 {
            GgmlDType::F32
        } else {
            quant.pick(&name, row, shape.layers, tied)
        };
        tensors.push((name, QTensor::quantize(&t, dt)?));
        Ok(())
    };
    add(
        "token_embd.weight".into(),
        random(&mut rng, &[vocab, h], 0.5)?,
        dtype,
    )?;
    add(
        "output_norm.weight".into(),
        Tensor::ones(h, candle_core::DType::F32, &Device::Cpu)?,
        GgmlDType::F32,
    )?;
    // candle's Phi-3 loader always reads output.weight.
    if !shape.tie_embeddings || arch == Arch::Phi3 {
        add(
            "output.weight".into(),
            random(&mut rng, &[vocab, h], 0.5)?,
            dtype,
        )?;
    }
    for l in 0..shape.layers {
        let p = format!("blk.{l}");
        if arch == Arch::Phi3 {
            add(
                format!("{p}.attn_qkv.weight"),
                random(&mut rng, &[h + 2 * kv, h], 0.2)?,
                dtype,
            )?;
        } else {
            add(
                format!("{p}.attn_q.weight"),
                random(&mut rng, &[h, h], 0.2)?,
                dtype,
            )?;
            add(
                format!("{p}.attn_k.weight"),
                random(&mut rng, &[kv, h], 0.2)?,
                dtype,
            )?;
            add(
                format!("{p}.attn_v.weight"),
                random(&mut rng, &[kv, h], 0.2)?,
                dtype,
            )?;
        }
        if arch == Arch::Qwen3 {
            let head_dim = h / shape.heads;
            for n in ["attn_q_norm", "attn_k_norm"] {
                add(
                    format!("{p}.{n}.weight"),
                    Tensor::ones(head_dim, candle_core::DType::F32, &Device::Cpu)?,
                    GgmlDType::F32,
                )?;
            }
        }
        if arch == Arch::Qwen2 {
            add(
                format!("{p}.attn_q.bias"),
                random(&mut rng, &[h], 0.02)?,
                GgmlDType::F32,
            )?;
            add(
                format!("{p}.attn_k.bias"),
                random(&mut rng, &[kv], 0.02)?,
                GgmlDType::F32,
            )?;
            add(
                format!("{p}.attn_v.bias"),
                random(&mut rng, &[kv], 0.02)?,
                GgmlDType::F32,
            )?;
        }
        add(
            format!("{p}.attn_output.weight"),
            random(&mut rng, &[h, h], 0.2)?,
            dtype,
        )?;
        if arch == Arch::Phi3 {
            // gate and up, fused: [2 * intermediate, hidden].
            add(
                format!("{p}.ffn_up.weight"),
                random(&mut rng, &[2 * i, h], 0.2)?,
                dtype,
            )?;
        } else {
            add(
                format!("{p}.ffn_gate.weight"),
                random(&mut rng, &[i, h], 0.2)?,
                dtype,
            )?;
            add(
                format!("{p}.ffn_up.weight"),
                random(&mut rng, &[i, h], 0.2)?,
                dtype,
            )?;
        }
        add(
            format!("{p}.ffn_down.weight"),
            random(&mut rng, &[h, i], 0.2)?,
            dtype,
        )?;
        add(
            format!("{p}.attn_norm.weight"),
            Tensor::ones(h, candle_core::DType::F32, &Device::Cpu)?,
            GgmlDType::F32,
        )?;
        add(
            format!("{p}.ffn_norm.weight"),
            Tensor::ones(h, candle_core::DType::F32, &Device::Cpu)?,
            GgmlDType::F32,
        )?;
    }
    use gguf_file::Value as V;
    let u32v = |v: usize| V::U32(v as u32);
    let a = arch.name();
    let key = |k: &str| format!("{a}.{k}");
    let template = super::template::builtin(arch);
    let metadata: Vec<(String, V)> = vec![
        ("general.architecture".into(), V::String(a.into())),
        (
            "general.name".into(),
            V::String(format!("lsmtune-test-{a}")),
        ),
        (key("attention.head_count"), u32v(shape.heads)),
        (key("attention.head_count_kv"), u32v(shape.kv_heads)),
        (key("embedding_length"), u32v(h)),
        (key("feed_forward_length"), u32v(i)),
        (key("context_length"), u32v(shape.context)),
        (key("block_count"), u32v(shape.layers)),
        (key("rope.dimension_count"), u32v(h / shape.heads)),
        (key("attention.layer_norm_rms_epsilon"), V::F32(1e-6)),
        // Phi-3 files carry the 10,000 base its reference code assumes; Qwen uses 1,000,000.
        (
            key("rope.freq_base"),
            V::F32(if arch == Arch::Phi3 {
                10_000.0
            } else {
                1_000_000.0
            }),
        ),
        ("tokenizer.chat_template".into(), V::String(template.into())),
    ];
    let mut metadata = metadata;
    if arch == Arch::Qwen3 {
        metadata.push((key("attention.key_length"), u32v(h / shape.heads)));
        metadata.push((key("attention.value_length"), u32v(h / shape.heads)));
    }
    metadata.extend(tokenizer_metadata(&tok, &tok_path, vocab)?);
    let path = dir.join("model.gguf");
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?,
    );
    let md: Vec<(&str, &V)> = metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let ts: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut file, &md, &ts)?;
    use std::io::Write;
    file.flush()?;
    Ok(path)
}

/// Write a random-weight safetensors checkpoint of `arch` (`model.safetensors` with Hugging Face
/// tensor names, `config.json`, `tokenizer.json` trained on `words`, `tokenizer_config.json`)
/// into `dir`. Deterministic for a seed and words.
pub fn write_safetensors(
    dir: &Path,
    arch: Arch,
    shape: Shape,
    seed: u64,
    words: &[String],
) -> Result<PathBuf> {
    if !matches!(arch, Arch::Qwen2 | Arch::Llama) {
        bail!(
            "safetensors test models come as qwen2 or llama ({} is GGUF only here)",
            arch.name()
        );
    }
    let (tok, _, vocab) = prepare(dir, shape, words)?;
    let (h, i) = (shape.hidden, shape.intermediate);
    let kv = shape.kv_heads * (h / shape.heads);
    let mut rng = Rng::new(seed);
    let ones = |n: usize| Tensor::ones(n, candle_core::DType::F32, &Device::Cpu);
    let mut t: std::collections::HashMap<String, Tensor> = std::collections::HashMap::new();
    t.insert(
        "model.embed_tokens.weight".into(),
        random(&mut rng, &[vocab, h], 0.5)?,
    );
    t.insert("model.norm.weight".into(), ones(h)?);
    if !shape.tie_embeddings {
        t.insert("lm_head.weight".into(), random(&mut rng, &[vocab, h], 0.5)?);
    }
    for l in 0..shape.layers {
        let p = format!("model.layers.{l}");
        let mut put = |name: &str, dims: &[usize], scale: f32| -> Result<()> {
            t.insert(format!("{p}.{name}"), random(&mut rng, dims, scale)?);
            Ok(())
        };
        put("self_attn.q_proj.weight", &[h, h], 0.2)?;
        put("self_attn.k_proj.weight", &[kv, h], 0.2)?;
        put("self_attn.v_proj.weight", &[kv, h], 0.2)?;
        if arch == Arch::Qwen2 {
            put("self_attn.q_proj.bias", &[h], 0.02)?;
            put("self_attn.k_proj.bias", &[kv], 0.02)?;
            put("self_attn.v_proj.bias", &[kv], 0.02)?;
        }
        put("self_attn.o_proj.weight", &[h, h], 0.2)?;
        put("mlp.gate_proj.weight", &[i, h], 0.2)?;
        put("mlp.up_proj.weight", &[i, h], 0.2)?;
        put("mlp.down_proj.weight", &[h, i], 0.2)?;
        t.insert(format!("{p}.input_layernorm.weight"), ones(h)?);
        t.insert(format!("{p}.post_attention_layernorm.weight"), ones(h)?);
    }
    candle_core::safetensors::save(&t, dir.join("model.safetensors"))?;
    let (architecture, template) = match arch {
        Arch::Qwen2 => ("Qwen2ForCausalLM", super::template::CHATML),
        _ => ("LlamaForCausalLM", super::template::LLAMA3),
    };
    let config = serde_json::json!({
        "architectures": [architecture],
        "model_type": arch.name(),
        "bos_token_id": tok.token_to_id("<|begin_of_text|>"),
        "eos_token_id": tok.token_to_id("<|eot_id|>"),
        "vocab_size": vocab,
        "hidden_size": h,
        "intermediate_size": i,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads,
        "max_position_embeddings": shape.context,
        "sliding_window": shape.context,
        "max_window_layers": shape.layers,
        "tie_word_embeddings": shape.tie_embeddings,
        "rope_theta": 1_000_000.0,
        "rms_norm_eps": 1e-6,
        "use_sliding_window": false,
        "hidden_act": "silu",
        "torch_dtype": "float32"
    });
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
    let (bos, eos) = match arch {
        Arch::Qwen2 => ("", "<|im_end|>"),
        _ => ("<|begin_of_text|>", "<|eot_id|>"),
    };
    let tok_config = serde_json::json!({
        "chat_template": template,
        "bos_token": bos,
        "eos_token": eos
    });
    std::fs::write(
        dir.join("tokenizer_config.json"),
        serde_json::to_vec_pretty(&tok_config)?,
    )?;
    Ok(dir.to_path_buf())
}
