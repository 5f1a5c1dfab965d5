//! Where the files of a local model are: `--model` given as a GGUF file, a folder holding one,
//! or a folder of safetensors with `config.json`, with the tokenizer and chat-template files
//! found beside the weights.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

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
pub fn safetensors_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    Ok(files)
}
