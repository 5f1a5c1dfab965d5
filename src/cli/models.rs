//! `lsmtune models ...`: the models on this machine store by store, downloads into the Hugging
//! Face cache, and tiny test models for trying the pipeline without a real one.

use anyhow::Result;
use clap::Subcommand;

use super::args::Json;
use crate::options::value::human_bytes;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Show every model on this machine, store by store, and whether lsmtune can run it.
    ///
    /// The stores: the known models (models/manifest.json), the Hugging Face cache
    /// (HF_HUB_CACHE / HF_HOME), Ollama's store (OLLAMA_MODELS, else ~/.ollama/models), LM
    /// Studio's folder (LMSTUDIO_MODELS, else ~/.lmstudio/models and ~/.cache/lm-studio/models)
    /// and the models folder (LSMTUNE_MODELS_DIR, default ./models). Each model is shown under
    /// the name `--model` takes, with its architecture, quantization, size, and whether
    /// lsmtune can run it (and if not, why: an unsupported architecture, a tokenizer it does
    /// not know, not a GGUF...). Reads file metadata only; never touches the network.
    ///
    /// The model `--backend auto` takes when no --model is given is marked `*`, with why: a
    /// runnable instruct model that fits in memory, of a family measured to tune well first
    /// (Qwen2.5), then a known family, the smallest of its rank.
    ///
    /// Examples:
    ///   lsmtune models list
    ///   lsmtune models list --json | jq '.[] | .models[] | select(.runnable) | .name'
    ///   lsmtune llm chat --model ollama:qwen2.5:0.5b --prompt "Tune RocksDB"
    #[command(verbatim_doc_comment)]
    List {
        #[command(flatten)]
        json: Json,
    },
    /// Download a model into the Hugging Face cache, with a progress bar.
    ///
    /// The cache is HF_HUB_CACHE / HF_HOME; the endpoint HF_ENDPOINT; the token HF_TOKEN for
    /// gated repos. Files already cached are not fetched again. What lands is what
    /// `--model SPEC` then finds with no network.
    ///
    /// SPEC is a manifest name (`qwen2.5-0.5b-instruct`, `qwen2.5-0.5b-instruct:q8_0`; see
    /// `models list`), `ORG/REPO:FILE.gguf` (plus that repo's tokenizer.json), or `ORG/REPO`
    /// for a safetensors checkpoint (config, tokenizer, weights and shards).
    ///
    /// Examples:
    ///   lsmtune models pull qwen2.5-0.5b-instruct
    ///   lsmtune models pull Qwen/Qwen2.5-0.5B-Instruct
    #[command(verbatim_doc_comment)]
    Pull {
        spec: String,
        /// Never touch the network (also HF_HUB_OFFLINE=1): only report what is cached.
        #[arg(long)]
        offline: bool,
    },
    /// Write a tiny deterministic random-weight model for tests and offline trials.
    ///
    /// A GGUF (or safetensors) file plus a tokenizer.json trained here: it exercises the real
    /// loading and generation code.
    ///
    /// Example:
    ///   lsmtune models make-test-model --arch qwen2 --out /tmp/tiny
    ///   lsmtune llm chat --model /tmp/tiny --prompt "Tune RocksDB"
    #[command(verbatim_doc_comment)]
    #[cfg(feature = "test-models")]
    MakeTestModel {
        /// Architecture: qwen2 or llama.
        #[arg(long, default_value = "qwen2")]
        arch: String,
        /// Folder to create (must not exist or be empty).
        #[arg(long)]
        out: std::path::PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Weight format of the matrices: q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k,
        /// q6_k, f16, bf16 or f32 (tensors whose rows do not fit a K-quant's 256-wide blocks fall
        /// back as llama.cpp's quantizer does: q2_k/q3_k to q4_0, q4_k to q5_0, q5_k to q5_1,
        /// q6_k to q8_0), or q4_k_m: llama.cpp's
        /// recipe (Q4_K, Q6_K for the output, attn_v and ffn_down in some layers; Q5_0 and Q8_0
        /// where rows do not fit, as in a real Qwen2.5-0.5B Q4_K_M file).
        #[arg(long, default_value = "q8_0")]
        dtype: String,
        /// Dimensions: `tiny` (tests), `qwen2.5-0.5b` or `qwen2.5-1.5b` (real sizes and the
        /// 151,936-token vocabulary, for speed measurements; 0.5B is about 500 MB at q8_0,
        /// 1.5B about 1 GB at q4_k_m).
        #[arg(long, default_value = "tiny")]
        shape: String,
        /// gguf, or safetensors (full precision with config.json).
        #[arg(long, default_value = "gguf")]
        format: String,
    },
}

pub fn run(cmd: ModelsCommand) -> Result<()> {
    match cmd {
        ModelsCommand::List { json } => {
            let hub = crate::llm::hub::Hub::from_env();
            let mut sections = crate::llm::inventory::take_stock(&hub);
            let pick = crate::llm::pick::choose(&mut sections, crate::sysinfo::total_memory());
            if json.emit(&sections)? {
                return Ok(());
            }
            print_stock(&sections);
            println!();
            match pick {
                Ok(p) => println!("--backend auto picks (*): {}, {}", p.name, p.why),
                Err(why) => println!("--backend auto picks none: {why}"),
            }
            Ok(())
        }
        ModelsCommand::Pull { spec, offline } => {
            let hub = crate::llm::hub::Hub::from_env();
            let files = if offline || crate::http::offline_from_env() {
                hub.resolve(&spec)
                    .map_err(|e| anyhow::anyhow!("{e}\n(offline: nothing was downloaded)"))?
            } else {
                hub.pull(&spec)?
            };
            println!("weights:   {}", files.weights.display());
            match &files.tokenizer {
                Some(t) => println!("tokenizer: {}", t.display()),
                None => println!("tokenizer: in the GGUF's metadata"),
            }
            if let Some(c) = &files.tokenizer_config {
                println!("template:  {}", c.display());
            }
            Ok(())
        }
        #[cfg(feature = "test-models")]
        ModelsCommand::MakeTestModel {
            arch,
            out,
            seed,
            dtype,
            shape,
            format,
        } => make_test_model(&arch, &out, seed, &dtype, &shape, &format),
    }
}

/// `models make-test-model`: a random-weight model whose tokenizer learned the catalog's option
/// names and meanings.
#[cfg(feature = "test-models")]
fn make_test_model(
    arch: &str,
    out: &std::path::Path,
    seed: u64,
    dtype: &str,
    shape: &str,
    format: &str,
) -> Result<()> {
    use anyhow::bail;
    use candle_core::quantized::GgmlDType;
    let arch = arch
        .parse::<crate::llm::testmodel::Arch>()
        .and_then(crate::llm::testmodel::generated)
        .map_err(|e| anyhow::anyhow!("--arch: {e}"))?;
    use crate::llm::testmodel::Quant;
    let dtype = match dtype.to_ascii_lowercase().as_str() {
        "q8_0" => Quant::Uniform(GgmlDType::Q8_0),
        "q4_0" => Quant::Uniform(GgmlDType::Q4_0),
        "q4_1" => Quant::Uniform(GgmlDType::Q4_1),
        "q5_0" => Quant::Uniform(GgmlDType::Q5_0),
        "q5_1" => Quant::Uniform(GgmlDType::Q5_1),
        "q2_k" => Quant::Uniform(GgmlDType::Q2K),
        "q3_k" => Quant::Uniform(GgmlDType::Q3K),
        "q4_k" => Quant::Uniform(GgmlDType::Q4K),
        "q5_k" => Quant::Uniform(GgmlDType::Q5K),
        "q6_k" => Quant::Uniform(GgmlDType::Q6K),
        "q4_k_m" => Quant::Q4KM,
        "f16" => Quant::Uniform(GgmlDType::F16),
        "bf16" => Quant::Uniform(GgmlDType::BF16),
        "f32" => Quant::Uniform(GgmlDType::F32),
        other => bail!(
            "--dtype {other}: use q8_0, q4_0, q4_1, q5_0, q5_1, q2_k, q3_k, q4_k, q5_k, q6_k, q4_k_m, f16, bf16 or f32"
        ),
    };
    let shape = match shape {
        "tiny" => crate::llm::testmodel::Shape::TINY,
        "qwen2.5-0.5b" => crate::llm::testmodel::Shape::QWEN2_5_0_5B,
        "qwen2.5-1.5b" => crate::llm::testmodel::Shape::QWEN2_5_1_5B,
        other => bail!("--shape {other}: use tiny, qwen2.5-0.5b or qwen2.5-1.5b"),
    };
    if out.exists()
        && std::fs::read_dir(out)
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        bail!(
            "{} exists and is not empty; name a new folder",
            out.display()
        );
    }
    let words = test_model_words();
    let path = match format {
        "gguf" => crate::llm::testmodel::write_gguf(out, arch, shape, seed, dtype, &words)?,
        "safetensors" => crate::llm::testmodel::write_safetensors(out, arch, shape, seed, &words)?,
        other => bail!("--format {other}: use gguf or safetensors"),
    };
    println!(
        "wrote {} and {}",
        path.display(),
        out.join("tokenizer.json").display()
    );
    Ok(())
}

/// The text a test model's tokenizer learns besides its fixed lines: each option's key with its
/// meaning as JSON, and with its type.
#[cfg(feature = "test-models")]
fn test_model_words() -> Vec<String> {
    let mut lines = Vec::new();
    for s in crate::options::spec::specs() {
        lines.push(format!("{{\"{}\": {}}}", s.key, s.meaning));
        lines.push(format!("{}={}", s.key, s.ty.describe()));
    }
    lines
}

/// `models list` as text: a table per store.
fn print_stock(sections: &[crate::llm::inventory::Section]) {
    for (i, s) in sections.iter().enumerate() {
        if i > 0 {
            println!();
        }
        let places: Vec<String> = s
            .locations
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!("{}: {}", s.title, places.join(", "));
        if s.models.is_empty() {
            println!("  (none)");
            continue;
        }
        let width = s
            .models
            .iter()
            .map(|m| m.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(5);
        println!(
            "  {:<width$}  {:<8}  {:<9}  {:>9}  RUNS",
            "MODEL", "ARCH", "QUANT", "SIZE"
        );
        for m in &s.models {
            let size = m
                .size_bytes
                .map(|b| human_bytes(b as i64))
                .unwrap_or_else(|| "-".into());
            let verdict = match &m.why_not {
                None => "yes".to_string(),
                Some(why) => format!("no: {why}"),
            };
            println!(
                "{} {:<width$}  {:<8}  {:<9}  {:>9}  {verdict}",
                if m.auto_pick { '*' } else { ' ' },
                m.name,
                m.arch.as_deref().unwrap_or("-"),
                m.quant.as_deref().unwrap_or("-"),
                size
            );
        }
    }
}
