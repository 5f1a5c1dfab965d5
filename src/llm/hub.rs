//! Finding model files without a network: a path, a store named by prefix (`ollama:`,
//! `lmstudio:`, `hf:`), a name from the manifest (models/manifest.json, compiled in) looked up in
//! the models folder and the Hugging Face cache, or any other name looked up in Ollama's store,
//! LM Studio's folder and the Hugging Face cache together (one match is used, several are an
//! error naming each; see [`Hub::resolve`]). When nothing is found, the error lists every place
//! searched and how to place the files on an air-gapped machine. [`Hub::pull`] downloads what is
//! missing into the Hugging Face cache (through [`crate::http`]) unless the network is off
//! (`--offline`, `HF_HUB_OFFLINE=1`), and [`Hub::find`] is resolve-then-pull, used by every
//! `--model`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::Deserialize;

use super::files::ModelFiles;
use super::stores::{self, OllamaName};

const MANIFEST: &str = include_str!("../../models/manifest.json");

/// One quantization of a manifest model.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestFile {
    pub file: String,
    pub size_mb: Option<u64>,
    pub sha256: Option<String>,
}

/// A known-good model.
#[derive(Debug, Clone, Deserialize)]
pub struct ManifestEntry {
    pub name: String,
    pub family: String,
    pub repo: String,
    /// The original (safetensors) repo, whose tokenizer.json is used for a cross-check when it
    /// is in the cache. Optional: GGUF files carry their own tokenizer.
    #[serde(default)]
    pub tokenizer_repo: Option<String>,
    pub default_quant: String,
    pub files: BTreeMap<String, ManifestFile>,
}

#[derive(Debug, Deserialize)]
struct ManifestDoc {
    models: Vec<ManifestEntry>,
}

/// The compiled-in manifest.
pub fn manifest() -> Vec<ManifestEntry> {
    serde_json::from_str::<ManifestDoc>(MANIFEST)
        .map(|d| d.models)
        .unwrap_or_default()
}

/// Where models are looked for.
#[derive(Debug, Clone)]
pub struct Hub {
    /// The Hugging Face hub cache (`.../huggingface/hub`).
    pub hf_cache: PathBuf,
    /// A folder of `NAME/` model folders.
    pub models_dir: PathBuf,
    /// Where downloads come from (`HF_ENDPOINT`, default https://huggingface.co).
    pub endpoint: String,
    /// Ollama's stores (see [`stores::ollama_roots`]).
    pub ollama: Vec<PathBuf>,
    /// LM Studio's model folders (see [`stores::lmstudio_roots`]).
    pub lmstudio: Vec<PathBuf>,
}

impl Hub {
    /// `HF_HUB_CACHE`, else `HF_HOME/hub`, else `~/.cache/huggingface/hub`; models folder
    /// `LSMTUNE_MODELS_DIR`, else `./models`.
    pub fn from_env() -> Hub {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let hf_cache = env("HF_HUB_CACHE")
            .or_else(|| env("HF_HOME").map(|h| h.join("hub")))
            .or_else(|| env("HOME").map(|h| h.join(".cache/huggingface/hub")))
            .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
        let models_dir = env("LSMTUNE_MODELS_DIR").unwrap_or_else(|| PathBuf::from("models"));
        Hub {
            hf_cache,
            models_dir,
            endpoint: crate::http::hf_endpoint(),
            ollama: stores::ollama_roots(),
            lmstudio: stores::lmstudio_roots(),
        }
    }

    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.hf_cache
            .join(format!("models--{}", repo.replace('/', "--")))
    }

    /// Snapshot folders of a cached repo: the one `refs/main` names first, then the others.
    pub fn snapshots(&self, repo: &str) -> Vec<PathBuf> {
        let dir = self.repo_dir(repo);
        let mut out = Vec::new();
        if let Ok(rev) = std::fs::read_to_string(dir.join("refs/main")) {
            out.push(dir.join("snapshots").join(rev.trim()));
        }
        if let Ok(entries) = std::fs::read_dir(dir.join("snapshots")) {
            let mut others: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            others.sort();
            for p in others {
                if !out.contains(&p) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// A file of a repo in the Hugging Face cache.
    pub fn cached_file(&self, repo: &str, file: &str) -> Option<PathBuf> {
        self.snapshots(repo)
            .into_iter()
            .map(|s| s.join(file))
            .find(|p| p.is_file())
    }

    /// A GGUF (or safetensors snapshot) of `ORG/REPO[:FILE]` in the Hugging Face cache.
    fn hf_candidate(&self, name: &str, variant: Option<&str>) -> Option<ModelFiles> {
        if !name.contains('/') {
            return None;
        }
        for snap in &self.snapshots(name) {
            let candidate = match variant {
                Some(file) => snap.join(file),
                None => snap.clone(),
            };
            if candidate.exists()
                && let Ok(files) = ModelFiles::resolve(&candidate)
            {
                return Some(files);
            }
        }
        None
    }

    /// An Ollama model by name: None when the name is not in the store, else its GGUF blob or
    /// the error saying what is wrong with the manifest or blob.
    fn ollama_candidate(&self, name: &str) -> Option<(String, Result<ModelFiles>)> {
        let name = OllamaName::parse(name)?;
        let model = stores::ollama_find(&self.ollama, &name)?;
        Some((
            format!("ollama:{}", model.name.short()),
            model.weights().map(ModelFiles::gguf),
        ))
    }

    fn roots(dirs: &[PathBuf]) -> String {
        if dirs.is_empty() {
            return "(no folder: HOME is not set)".into();
        }
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Resolve `--model` with no network. The first rule that applies decides:
    ///
    /// 1. an existing path: a `.gguf` file or a folder (see [`ModelFiles::resolve`]);
    /// 2. a store named by prefix, searched alone: `ollama:[HOST/][NAMESPACE/]NAME[:TAG]`,
    ///    `lmstudio:PUBLISHER/REPO[/FILE.gguf]`, `hf:ORG/REPO[:FILE]`;
    /// 3. a manifest name `NAME[:QUANT]` (models/manifest.json): the models folder, then the
    ///    Hugging Face cache;
    /// 4. anything else is looked up in Ollama's store (as an Ollama name), LM Studio's folder
    ///    (`PUBLISHER/REPO[/FILE]`) and the Hugging Face cache (`ORG/REPO[:FILE]`) together: one
    ///    match is used; several are an error listing each with its prefix.
    pub fn resolve(&self, spec: &str) -> Result<ModelFiles> {
        let path = Path::new(spec);
        if path.exists() {
            return ModelFiles::resolve(path);
        }
        if let Some(rest) = spec.strip_prefix("ollama:") {
            if OllamaName::parse(rest).is_none() {
                bail!(
                    "`{rest}` is not an Ollama model name: use ollama:NAME[:TAG], ollama:NAMESPACE/NAME[:TAG] or ollama:HOST/NAMESPACE/NAME[:TAG]"
                );
            }
            if let Some((_, found)) = self.ollama_candidate(rest) {
                return found;
            }
            let present: Vec<String> = stores::ollama_models(&self.ollama)
                .iter()
                .map(|m| format!("ollama:{}", m.name.short()))
                .collect();
            bail!(
                "model `{spec}` is not in Ollama's store (searched {}; set OLLAMA_MODELS if it is elsewhere). {}",
                Self::roots(&self.ollama),
                if present.is_empty() {
                    "The store holds no model.".to_string()
                } else {
                    format!("The store holds: {}", present.join(", "))
                }
            );
        }
        if let Some(rest) = spec.strip_prefix("lmstudio:") {
            if let Some(p) = stores::lmstudio_find(&self.lmstudio, rest)? {
                return ModelFiles::resolve(&p);
            }
            bail!(
                "model `{spec}` is not in LM Studio's folder (searched {}; set LMSTUDIO_MODELS if it is elsewhere). Use lmstudio:PUBLISHER/REPO or lmstudio:PUBLISHER/REPO/FILE.gguf; `lsmtune models list` shows what is there",
                Self::roots(&self.lmstudio)
            );
        }
        if let Some(rest) = spec.strip_prefix("hf:") {
            let (name, variant) = split_spec(rest);
            if let Some(files) = self.hf_candidate(name, variant) {
                return Ok(files);
            }
            bail!(
                "model `{spec}` not found in the Hugging Face cache ({}/snapshots/*)",
                self.repo_dir(name).display()
            );
        }
        let mut searched: Vec<String> = vec![format!("{spec} as a path")];
        let (name, variant) = split_spec(spec);
        if let Some((entry, quant, mf)) = manifest_pick(name, variant)? {
            // 1. models/NAME/ holding the GGUF (anything beside it is used too).
            let local = self.models_dir.join(&entry.name);
            searched.push(format!("{}", local.join(&mf.file).display()));
            if local.join(&mf.file).is_file() {
                return ModelFiles::resolve(&local.join(&mf.file));
            }
            // 2. the Hugging Face cache: the GGUF repo (plus the original repo's tokenizer
            // files when they are cached, for the cross-check and its template).
            searched.push(format!(
                "{}/snapshots/*/{}",
                self.repo_dir(&entry.repo).display(),
                mf.file
            ));
            if let Some(gguf) = self.cached_file(&entry.repo, &mf.file) {
                let mut files = ModelFiles::resolve(&gguf)?;
                if let Some(repo) = &entry.tokenizer_repo {
                    if files.tokenizer.is_none() {
                        files.tokenizer = self.cached_file(repo, "tokenizer.json");
                    }
                    if files.tokenizer_config.is_none() {
                        files.tokenizer_config = self.cached_file(repo, "tokenizer_config.json");
                    }
                }
                return Ok(files);
            }
            bail!(
                "model {name}:{quant} not found. Searched:\n  {}\nOn an air-gapped machine, copy {} (from {}) into {}/, or into the Hugging Face cache layout under {}.",
                searched.join("\n  "),
                mf.file,
                entry.repo,
                local.display(),
                self.hf_cache.display()
            );
        }
        // Every store at once: Ollama, LM Studio, the Hugging Face cache.
        let mut found: Vec<(String, Result<ModelFiles>)> = Vec::new();
        found.extend(self.ollama_candidate(spec));
        match stores::lmstudio_find(&self.lmstudio, spec) {
            Ok(Some(p)) => found.push((format!("lmstudio:{spec}"), ModelFiles::resolve(&p))),
            Ok(None) => {}
            Err(e) => found.push((format!("lmstudio:{spec}"), Err(e))),
        }
        if let Some(files) = self.hf_candidate(name, variant) {
            found.push((format!("hf:{spec}"), Ok(files)));
        }
        // One file reached two ways (a symlink into another store) is one model.
        let mut seen: Vec<PathBuf> = Vec::new();
        found.retain(|(_, r)| match r {
            Ok(f) => {
                let key = std::fs::canonicalize(&f.weights).unwrap_or_else(|_| f.weights.clone());
                let new = !seen.contains(&key);
                seen.push(key);
                new
            }
            Err(_) => true,
        });
        match found.len() {
            0 => {}
            1 => return found.remove(0).1,
            n => bail!(
                "`{spec}` is ambiguous: {n} models match. Name one with its store's prefix:\n  {}",
                found
                    .iter()
                    .map(|(label, r)| match r {
                        Ok(f) => format!("{label}  ({})", f.weights.display()),
                        Err(e) => format!("{label}  (cannot be used: {e})"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }
        if name.contains('/') {
            searched.push(format!("{}/snapshots/*", self.repo_dir(name).display()));
        }
        searched.push(format!(
            "Ollama's store ({}) as an Ollama name",
            Self::roots(&self.ollama)
        ));
        searched.push(format!(
            "LM Studio's folder ({}) as PUBLISHER/REPO[/FILE]",
            Self::roots(&self.lmstudio)
        ));
        bail!(
            "model `{spec}` not found. Searched:\n  {}\nKnown names: {}. Pass a .gguf file, a folder, NAME[:QUANT], ollama:NAME[:TAG], lmstudio:PUBLISHER/REPO[/FILE], or ORG/REPO[:FILE] present in the Hugging Face cache ({}); `lsmtune models list` shows every model found.",
            searched.join("\n  "),
            manifest()
                .iter()
                .map(|e| e.name.clone())
                .collect::<Vec<_>>()
                .join(", "),
            self.hf_cache.display()
        )
    }

    /// Resolve `spec` locally; when it is not present and `offline` is false, download it into
    /// the Hugging Face cache and resolve again. With `offline` the error says what to place where.
    pub fn find(&self, spec: &str, offline: bool) -> Result<ModelFiles> {
        match self.resolve(spec) {
            Ok(f) => Ok(f),
            Err(e) if offline || Path::new(spec).exists() || !pullable(spec) => Err(e),
            Err(local) => self.pull(spec).map_err(|net| {
                anyhow::anyhow!(
                    "{local}\n\nDownloading failed too: {net}\n(Set HF_HUB_OFFLINE=1 or pass --offline to never try the network.)"
                )
            }),
        }
    }

    /// Download `NAME[:QUANT]` (manifest) or `ORG/REPO[:FILE]` into the Hugging Face cache
    /// (files already cached are not fetched again) and return the resolved model.
    ///
    /// - `NAME[:QUANT]`: the GGUF from the entry's repo (it carries its own tokenizer).
    /// - `ORG/REPO:FILE.gguf`: that file, plus tokenizer.json / tokenizer_config.json of the
    ///   same repo when it has them.
    /// - `ORG/REPO` (a safetensors checkpoint): config.json, tokenizer files, and
    ///   model.safetensors or every shard listed in model.safetensors.index.json.
    pub fn pull(&self, spec: &str) -> Result<ModelFiles> {
        use crate::http::{DownloadError, hf_download};
        let optional = |repo: &str, file: &str| -> Result<Option<PathBuf>> {
            match hf_download(&self.endpoint, &self.hf_cache, repo, file) {
                Ok(p) => Ok(Some(p)),
                Err(DownloadError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.into()),
            }
        };
        let spec = spec.strip_prefix("hf:").unwrap_or(spec);
        let (name, variant) = split_spec(spec);
        if let Some((entry, _quant, mf)) = manifest_pick(name, variant)? {
            hf_download(&self.endpoint, &self.hf_cache, &entry.repo, &mf.file)?;
            return self.resolve(spec);
        }
        if !name.contains('/') {
            bail!(
                "`{spec}` is neither a known model name ({}) nor ORG/REPO[:FILE]",
                manifest()
                    .iter()
                    .map(|e| e.name.clone())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        match variant {
            Some(file) => {
                let weights = hf_download(&self.endpoint, &self.hf_cache, name, file)?;
                if file.ends_with(".gguf") {
                    // A GGUF carries its tokenizer; a tokenizer.json in the repo is used for a
                    // cross-check when there is one.
                    optional(name, "tokenizer.json")?;
                } else {
                    hf_download(&self.endpoint, &self.hf_cache, name, "tokenizer.json")?;
                }
                optional(name, "tokenizer_config.json")?;
                ModelFiles::resolve(&weights)
            }
            None => {
                let config = hf_download(&self.endpoint, &self.hf_cache, name, "config.json")?;
                hf_download(&self.endpoint, &self.hf_cache, name, "tokenizer.json")?;
                optional(name, "tokenizer_config.json")?;
                if optional(name, "model.safetensors")?.is_none() {
                    let index = hf_download(
                        &self.endpoint,
                        &self.hf_cache,
                        name,
                        "model.safetensors.index.json",
                    )?;
                    for shard in safetensors_shards(&index)? {
                        hf_download(&self.endpoint, &self.hf_cache, name, &shard)?;
                    }
                }
                let snapshot = config.parent().unwrap_or(Path::new(".")).to_path_buf();
                ModelFiles::resolve(&snapshot)
            }
        }
    }

    /// Every manifest model and quantization, with where it was found (or not).
    pub fn list(&self) -> Vec<(String, Option<ModelFiles>)> {
        let mut out = Vec::new();
        for e in manifest() {
            for quant in e.files.keys() {
                let spec = format!("{}:{quant}", e.name);
                out.push((spec.clone(), self.resolve(&spec).ok()));
            }
        }
        if let Ok(dirs) = std::fs::read_dir(&self.models_dir) {
            let mut dirs: Vec<PathBuf> = dirs
                .flatten()
                .map(|d| d.path())
                .filter(|p| p.is_dir())
                .collect();
            dirs.sort();
            for d in dirs {
                if let Ok(files) = ModelFiles::resolve(&d) {
                    out.push((d.display().to_string(), Some(files)));
                }
            }
        }
        out
    }
}

/// `NAME[:VARIANT]` split at the first colon.
fn split_spec(spec: &str) -> (&str, Option<&str>) {
    match spec.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    }
}

/// The manifest entry called `name` and its quantization `variant` (default: the entry's), or
/// None when no entry has that name; an unknown quantization is an error listing the known.
fn manifest_pick(
    name: &str,
    variant: Option<&str>,
) -> Result<Option<(ManifestEntry, String, ManifestFile)>> {
    let Some(entry) = manifest().into_iter().find(|e| e.name == name) else {
        return Ok(None);
    };
    let quant = variant.unwrap_or(&entry.default_quant).to_ascii_lowercase();
    let Some(mf) = entry.files.get(&quant).cloned() else {
        bail!(
            "{name} has no quantization `{quant}`; known: {}",
            entry.files.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    };
    Ok(Some((entry, quant, mf)))
}

/// Whether `spec` names something the hub could have: a manifest name or `[hf:]ORG/REPO[:FILE]`
/// (never `ollama:` or `lmstudio:`, which are only read where those tools put them).
fn pullable(spec: &str) -> bool {
    let (name, _) = split_spec(spec.strip_prefix("hf:").unwrap_or(spec));
    manifest().iter().any(|e| e.name == name)
        || (name.matches('/').count() == 1 && !name.starts_with(['/', '.']))
}

/// The distinct shard file names of a `model.safetensors.index.json`.
fn safetensors_shards(index: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", index.display()))?;
    let map = v
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| anyhow::anyhow!("{}: no weight_map", index.display()))?;
    let mut shards: Vec<String> = map
        .values()
        .filter_map(|f| f.as_str().map(str::to_string))
        .collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_parses_and_every_entry_is_complete() {
        let m = manifest();
        assert!(m.len() >= 2);
        for e in &m {
            assert!(e.files.contains_key(&e.default_quant), "{}", e.name);
            assert!(
                e.repo.contains('/') && e.tokenizer_repo.as_deref().is_none_or(|r| r.contains('/')),
                "{}",
                e.name
            );
            assert!(
                e.family.parse::<crate::llm::arch::Arch>().is_ok(),
                "{}",
                e.name
            );
            for f in e.files.values() {
                assert!(f.file.ends_with(".gguf"), "{}", e.name);
            }
        }
    }
}
