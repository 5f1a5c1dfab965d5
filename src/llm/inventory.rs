//! What models this machine holds, store by store (manifest models, the Hugging Face cache,
//! Ollama's store, LM Studio's folder, the models folder), each under the name `--model` takes,
//! with its architecture, quantization and size, and whether lsmtune can run it and if not why
//! (unsupported architecture, unknown pre-tokenizer, unreadable tensor type, not a GGUF...).
//! Only file metadata is read: no weights are loaded and nothing touches the network.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::Value;
use serde::Serialize;

use super::arch::Arch;
use super::files::{ModelFiles, WeightFormat};
use super::hub::{Hub, manifest};
use super::stores;
use super::vocab::Vocab;

/// One model as a store holds it.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// What to pass to `--model`.
    pub name: String,
    /// The weights (a GGUF file, or a safetensors folder); None when not present.
    pub path: Option<PathBuf>,
    pub arch: Option<String>,
    /// `Q4_K_M`, `Q8_0`, `F16`... (GGUF `general.file_type`, else the commonest tensor type).
    pub quant: Option<String>,
    pub size_bytes: Option<u64>,
    /// The model's own name (GGUF `general.name` and `general.finetune`, e.g. `Qwen2.5 Coder
    /// 0.5B Instruct`), when the file says.
    pub label: Option<String>,
    pub runnable: bool,
    /// Why lsmtune cannot run it (None when it can).
    pub why_not: Option<String>,
    /// The model `--backend auto` takes when no model is named (see `pick`).
    pub auto_pick: bool,
}

impl Entry {
    fn missing(name: String, why: String) -> Entry {
        Entry {
            name,
            path: None,
            arch: None,
            quant: None,
            size_bytes: None,
            label: None,
            runnable: false,
            why_not: Some(why),
            auto_pick: false,
        }
    }
}

/// One store and what it holds.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    /// `manifest`, `hf-cache`, `ollama`, `lmstudio`, `models-folder`.
    pub store: &'static str,
    /// A sentence saying what the store is.
    pub title: String,
    /// The folders looked in.
    pub locations: Vec<PathBuf>,
    pub models: Vec<Entry>,
}

/// What a GGUF's metadata says.
#[derive(Debug, Clone, Default)]
pub struct GgufFacts {
    pub arch: Option<String>,
    pub quant: Option<String>,
    /// A vision projector (`general.architecture = clip`), not a language model.
    pub projector: bool,
    /// `general.name`, with `general.finetune` when the name does not already carry it.
    pub label: Option<String>,
    /// Why it cannot run (None when it can).
    pub problem: Option<String>,
}

/// llama.cpp's `llama_ftype` (`general.file_type`) names.
fn file_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        _ => return None,
    })
}

/// ggml tensor type names candle cannot read (ggml.h's numbering).
fn unreadable_tensor_type(t: u32) -> String {
    match t {
        16 => "IQ2_XXS",
        17 => "IQ2_XS",
        18 => "IQ3_XXS",
        19 => "IQ1_S",
        20 => "IQ4_NL",
        21 => "IQ3_S",
        22 => "IQ2_S",
        23 => "IQ4_XS",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        29 => "IQ1_M",
        34 => "TQ1_0",
        35 => "TQ2_0",
        39 => "MXFP4",
        _ => return format!("ggml type {t}"),
    }
    .to_string()
}

fn meta_string(m: &HashMap<String, Value>, key: &str) -> Option<String> {
    m.get(key).and_then(|v| v.to_string().ok().cloned())
}

fn meta_u32(m: &HashMap<String, Value>, key: &str) -> Option<u32> {
    m.get(key).and_then(|v| match v {
        Value::U8(x) => Some(*x as u32),
        Value::U16(x) => Some(*x as u32),
        Value::U32(x) => Some(*x),
        Value::I32(x) => u32::try_from(*x).ok(),
        Value::U64(x) => u32::try_from(*x).ok(),
        Value::I64(x) => u32::try_from(*x).ok(),
        _ => None,
    })
}

/// The first line of an error chain, shortened for a table.
fn short(e: &anyhow::Error) -> String {
    let text = format!("{e:#}");
    let line = text.lines().next().unwrap_or_default();
    let mut s: String = line.chars().take(240).collect();
    if line.chars().count() > 240 {
        s.push_str("...");
    }
    s
}

/// Read a GGUF's metadata (not its weights) and judge whether lsmtune can run it.
/// `tokenizer_json`: a tokenizer.json sits beside the file (it stands in for an unusable
/// vocabulary in the metadata, as when loading).
pub fn inspect_gguf(path: &Path, tokenizer_json: bool) -> GgufFacts {
    let mut facts = GgufFacts::default();
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            facts.problem = Some(format!("cannot open: {e}"));
            return facts;
        }
    };
    let mut magic = [0u8; 4];
    if file.read_exact(&mut magic).is_err() || &magic != b"GGUF" {
        facts.problem = Some("not a GGUF file".into());
        return facts;
    }
    let content = match std::fs::File::open(path)
        .map_err(anyhow::Error::from)
        .and_then(|mut f| super::files::read_gguf(&mut f))
    {
        Ok(c) => c,
        Err(e) => {
            let text = e.to_string();
            facts.problem = Some(
                match text
                    .strip_prefix("unknown dtype for tensor ")
                    .and_then(|n| n.trim().parse::<u32>().ok())
                {
                    Some(t) => {
                        let name = unreadable_tensor_type(t);
                        facts.quant = Some(name.clone());
                        format!(
                            "tensor type {name} is not supported (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 and Q2_K..Q6_K are)"
                        )
                    }
                    None => format!("unreadable GGUF: {}", short(&e)),
                },
            );
            return facts;
        }
    };
    let m = &content.metadata;
    let arch = meta_string(m, "general.architecture").unwrap_or_default();
    facts.projector = arch == "clip"
        || matches!(
            meta_string(m, "general.type").as_deref(),
            Some("mmproj" | "projector")
        );
    facts.arch = (!arch.is_empty()).then(|| arch.clone());
    facts.label =
        meta_string(m, "general.name").map(|name| match meta_string(m, "general.finetune") {
            Some(f) if !name.to_lowercase().contains(&f.to_lowercase()) => format!("{name} {f}"),
            _ => name,
        });
    facts.quant = meta_u32(m, "general.file_type")
        .and_then(file_type_name)
        .map(str::to_string)
        .or_else(|| {
            // The type holding most of the weights.
            let mut by_type: HashMap<String, usize> = HashMap::new();
            for t in content.tensor_infos.values() {
                if t.shape.rank() >= 2 {
                    *by_type.entry(format!("{:?}", t.ggml_dtype)).or_default() +=
                        t.shape.elem_count();
                }
            }
            by_type
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(t, _)| match t.strip_suffix('K') {
                    // candle writes Q4K for ggml's Q4_K.
                    Some(head) if !t.contains('_') => format!("{head}_K"),
                    _ => t,
                })
        });
    facts.problem = if arch.is_empty() {
        Some("no general.architecture: not a model lsmtune knows".into())
    } else if let Err(e) = arch.parse::<Arch>() {
        Some(e)
    } else if meta_u32(m, "split.count").is_some_and(|n| n > 1) {
        Some(format!(
            "split into {} files; merge them into one (llama-gguf-split --merge)",
            meta_u32(m, "split.count").unwrap_or(0)
        ))
    } else if !Vocab::present(m) {
        (!tokenizer_json)
            .then(|| "carries no tokenizer and has no tokenizer.json beside it".to_string())
    } else {
        match Vocab::from_gguf(m) {
            Ok(v) if v.end_of_generation.is_empty() && !tokenizer_json => {
                Some("its vocabulary has no end-of-turn token".into())
            }
            Ok(_) => None,
            Err(_) if tokenizer_json => None,
            Err(e) => Some(format!("tokenizer: {}", short(&e))),
        }
    };
    facts
}

/// Facts of a safetensors folder (config.json's model_type and torch_dtype).
fn inspect_safetensors(dir: &Path) -> GgufFacts {
    let mut facts = GgufFacts::default();
    let config: Option<serde_json::Value> = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let Some(config) = config else {
        facts.problem = Some("config.json is missing or not JSON".into());
        return facts;
    };
    let arch = config["model_type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    facts.quant = config["torch_dtype"]
        .as_str()
        .or(config["dtype"].as_str())
        .map(|d| d.to_ascii_uppercase().replace("FLOAT", "F"));
    facts.problem = if !arch
        .parse::<Arch>()
        .is_ok_and(|a| a.safetensors_supported())
    {
        Some(format!(
            "safetensors models of type {arch} are not supported (qwen2, llama are; use a GGUF)"
        ))
    } else if !dir.join("tokenizer.json").is_file() {
        Some("no tokenizer.json beside config.json".into())
    } else {
        None
    };
    facts.arch = (!arch.is_empty()).then_some(arch);
    facts
}

/// Size of a file, or of the top-level files of a folder.
fn size_of(path: &Path) -> Option<u64> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return Some(meta.len());
    }
    Some(
        std::fs::read_dir(path)
            .ok()?
            .flatten()
            .filter_map(|e| std::fs::metadata(e.path()).ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
    )
}

/// An entry for resolved files; None for a vision projector.
fn entry_for(name: String, files: &ModelFiles) -> Option<Entry> {
    let facts = match files.format {
        WeightFormat::Gguf => inspect_gguf(&files.weights, files.tokenizer.is_some()),
        WeightFormat::Safetensors => inspect_safetensors(&files.weights),
    };
    if facts.projector {
        return None;
    }
    Some(Entry {
        name,
        path: Some(files.weights.clone()),
        arch: facts.arch,
        quant: facts.quant,
        size_bytes: size_of(&files.weights),
        label: facts.label,
        runnable: facts.problem.is_none(),
        why_not: facts.problem,
        auto_pick: false,
    })
}

/// `.gguf` files under `dir`, at most `depth` folders down, as paths relative to `dir`.
fn ggufs_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if p.is_dir() && depth > 0 && !name.starts_with('.') {
            out.extend(
                ggufs_under(&p, depth - 1)
                    .into_iter()
                    .map(|q| PathBuf::from(&name).join(q)),
            );
        } else if p.is_file() && name.ends_with(".gguf") && !stores::is_projector(&name) {
            out.push(PathBuf::from(name));
        }
    }
    out
}

/// The Hugging Face cache: `ORG/REPO:FILE` per GGUF of each cached repo (the snapshot `refs/main`
/// names first), `ORG/REPO` for a safetensors snapshot.
fn hf_cache(hub: &Hub) -> Vec<Entry> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(&hub.hf_cache) else {
        return out;
    };
    let mut repos: Vec<String> = dirs
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            let rest = n.strip_prefix("models--")?;
            let (org, repo) = rest.split_once("--")?;
            Some(format!("{org}/{repo}"))
        })
        .collect();
    repos.sort();
    for repo in repos {
        let mut seen: Vec<String> = Vec::new();
        for snap in hub.snapshots(&repo) {
            for rel in ggufs_under(&snap, 2) {
                let rel_text = rel.to_string_lossy().replace('\\', "/");
                if seen.contains(&rel_text) {
                    continue;
                }
                seen.push(rel_text.clone());
                let files = ModelFiles::resolve(&snap.join(&rel))
                    .unwrap_or_else(|_| ModelFiles::gguf(snap.join(&rel)));
                out.extend(entry_for(format!("{repo}:{rel_text}"), &files));
            }
            let safetensors = std::fs::read_dir(&snap)
                .map(|d| {
                    d.flatten()
                        .any(|e| e.path().extension().is_some_and(|x| x == "safetensors"))
                })
                .unwrap_or(false);
            if safetensors && snap.join("config.json").is_file() && !seen.contains(&repo) {
                seen.push(repo.clone());
                if let Ok(files) = ModelFiles::resolve(&snap) {
                    out.extend(entry_for(repo.clone(), &files));
                } else {
                    let facts = inspect_safetensors(&snap);
                    out.push(Entry {
                        name: repo.clone(),
                        path: Some(snap.clone()),
                        arch: facts.arch,
                        quant: facts.quant,
                        size_bytes: size_of(&snap),
                        label: None,
                        runnable: false,
                        why_not: facts.problem.or(Some("incomplete snapshot".into())),
                        auto_pick: false,
                    });
                }
            }
        }
    }
    out
}

/// Every store and what it holds. Reads metadata only; never the network.
pub fn take_stock(hub: &Hub) -> Vec<Section> {
    let mut sections = Vec::new();

    let mut models = Vec::new();
    for e in manifest() {
        for quant in e.files.keys() {
            let spec = format!("{}:{quant}", e.name);
            match hub.resolve(&spec) {
                Ok(files) => models.extend(entry_for(spec, &files)),
                Err(_) => models.push(Entry::missing(
                    spec.clone(),
                    format!("not downloaded (lsmtune models pull {spec})"),
                )),
            }
        }
    }
    sections.push(Section {
        store: "manifest",
        title: "Known models (models/manifest.json), looked for in the models folder and the Hugging Face cache".into(),
        locations: vec![hub.models_dir.clone(), hub.hf_cache.clone()],
        models,
    });

    sections.push(Section {
        store: "hf-cache",
        title: "Hugging Face cache".into(),
        locations: vec![hub.hf_cache.clone()],
        models: hf_cache(hub),
    });

    let mut models = Vec::new();
    for m in stores::ollama_models(&hub.ollama) {
        let name = format!("ollama:{}", m.name.short());
        match m.weights() {
            Ok(blob) => models.extend(entry_for(name, &ModelFiles::gguf(blob))),
            Err(e) => models.push(Entry::missing(name, short(&e))),
        }
    }
    sections.push(Section {
        store: "ollama",
        title: "Ollama's store (OLLAMA_MODELS)".into(),
        locations: hub.ollama.clone(),
        models,
    });

    let mut models = Vec::new();
    for m in stores::lmstudio_models(&hub.lmstudio) {
        let files =
            ModelFiles::resolve(&m.path).unwrap_or_else(|_| ModelFiles::gguf(m.path.clone()));
        models.extend(entry_for(format!("lmstudio:{}", m.name()), &files));
    }
    sections.push(Section {
        store: "lmstudio",
        title: "LM Studio's models folder (LMSTUDIO_MODELS)".into(),
        locations: hub.lmstudio.clone(),
        models,
    });

    let mut models = Vec::new();
    // GGUF files dropped straight into the folder, then one folder per model.
    for rel in ggufs_under(&hub.models_dir, 0) {
        let p = hub.models_dir.join(rel);
        if let Ok(files) = ModelFiles::resolve(&p) {
            models.extend(entry_for(p.display().to_string(), &files));
        }
    }
    if let Ok(dirs) = std::fs::read_dir(&hub.models_dir) {
        let mut dirs: Vec<PathBuf> = dirs
            .flatten()
            .map(|d| d.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            if let Ok(files) = ModelFiles::resolve(&d)
                && files.format == WeightFormat::Safetensors
            {
                models.extend(entry_for(d.display().to_string(), &files));
                continue;
            }
            for rel in ggufs_under(&d, 0) {
                let p = d.join(rel);
                if let Ok(files) = ModelFiles::resolve(&p) {
                    models.extend(entry_for(p.display().to_string(), &files));
                }
            }
        }
    }
    sections.push(Section {
        store: "models-folder",
        title: "The models folder (LSMTUNE_MODELS_DIR)".into(),
        locations: vec![hub.models_dir.clone()],
        models,
    });
    sections
}
