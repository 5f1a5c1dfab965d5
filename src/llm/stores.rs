//! Models other tools already downloaded, found where those tools keep them, with no network:
//! Ollama's store and LM Studio's models folder.
//!
//! - **Ollama** (`OLLAMA_MODELS`, else `~/.ollama/models`, and on Linux the service's
//!   `/usr/share/ollama/.ollama/models`): a model `HOST/NAMESPACE/NAME:TAG` has a manifest at
//!   `manifests/HOST/NAMESPACE/NAME/TAG` (JSON, OCI-style) whose layer of media type
//!   `application/vnd.ollama.image.model` names a digest `sha256:HEX`; the weights are the blob
//!   `blobs/sha256-HEX`, a GGUF. Names are written as Ollama prints them: `qwen2.5:0.5b` for
//!   `registry.ollama.ai/library/qwen2.5:0.5b`, `NAMESPACE/NAME:TAG` for other namespaces of the
//!   default registry, the full `HOST/NAMESPACE/NAME:TAG` otherwise (`hf.co/ORG/REPO:QUANT`).
//!   The tag defaults to `latest`.
//! - **LM Studio** (`LMSTUDIO_MODELS`, else `~/.lmstudio/models` or the home named by
//!   `~/.lmstudio-home-pointer`, and the older `~/.cache/lm-studio/models`):
//!   `PUBLISHER/REPO/*.gguf`. Vision projectors (`mmproj*.gguf`) are not language models and are
//!   skipped.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};

/// Ollama's default registry and namespace, left out of names as Ollama does.
pub const OLLAMA_REGISTRY: &str = "registry.ollama.ai";
pub const OLLAMA_NAMESPACE: &str = "library";
const OLLAMA_MODEL_LAYER: &str = "application/vnd.ollama.image.model";

fn env_path(key: &str) -> Option<PathBuf> {
    std::env::var_os(key)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Where Ollama keeps models: `OLLAMA_MODELS` alone when set, else `~/.ollama/models` and (on
/// Linux, where the installer runs Ollama as its own user) `/usr/share/ollama/.ollama/models`.
pub fn ollama_roots() -> Vec<PathBuf> {
    if let Some(dir) = env_path("OLLAMA_MODELS") {
        return vec![dir];
    }
    let mut roots = Vec::new();
    if let Some(home) = env_path("HOME") {
        roots.push(home.join(".ollama/models"));
    }
    if cfg!(target_os = "linux") {
        roots.push(PathBuf::from("/usr/share/ollama/.ollama/models"));
    }
    roots
}

/// Where LM Studio keeps models: `LMSTUDIO_MODELS` alone when set, else the `models` folder of
/// LM Studio's home (`~/.lmstudio`, or the folder `~/.lmstudio-home-pointer` names), then the
/// older `~/.cache/lm-studio/models`.
pub fn lmstudio_roots() -> Vec<PathBuf> {
    if let Some(dir) = env_path("LMSTUDIO_MODELS") {
        return vec![dir];
    }
    let Some(home) = env_path("HOME") else {
        return Vec::new();
    };
    let mut roots = Vec::new();
    if let Ok(pointer) = std::fs::read_to_string(home.join(".lmstudio-home-pointer")) {
        let p = PathBuf::from(pointer.trim());
        if !pointer.trim().is_empty() {
            roots.push(p.join("models"));
        }
    }
    for dir in [
        home.join(".lmstudio/models"),
        home.join(".cache/lm-studio/models"),
    ] {
        if !roots.contains(&dir) {
            roots.push(dir);
        }
    }
    roots
}

/// An Ollama model name, all four parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaName {
    pub host: String,
    pub namespace: String,
    pub model: String,
    pub tag: String,
}

impl OllamaName {
    /// `[HOST/][NAMESPACE/]NAME[:TAG]`; None when the text cannot be an Ollama name.
    pub fn parse(text: &str) -> Option<OllamaName> {
        let text = text.trim();
        // The tag follows the last colon after the last slash (a host may carry a port).
        let last_slash = text.rfind('/').map_or(0, |i| i + 1);
        let (path, tag) = match text[last_slash..].rfind(':') {
            Some(i) => (&text[..last_slash + i], &text[last_slash + i + 1..]),
            None => (text, "latest"),
        };
        let parts: Vec<&str> = path.split('/').collect();
        let (host, namespace, model) = match parts.as_slice() {
            [m] => (OLLAMA_REGISTRY, OLLAMA_NAMESPACE, *m),
            [n, m] => (OLLAMA_REGISTRY, *n, *m),
            [h, n, m] => (*h, *n, *m),
            _ => return None,
        };
        let part_ok = |s: &str| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        };
        let host_ok = !host.is_empty()
            && !host.starts_with('.')
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if !(host_ok && part_ok(namespace) && part_ok(model) && part_ok(tag)) {
            return None;
        }
        Some(OllamaName {
            host: host.into(),
            namespace: namespace.into(),
            model: model.into(),
            tag: tag.into(),
        })
    }

    /// The name as Ollama prints it (default registry and namespace left out).
    pub fn short(&self) -> String {
        match (
            self.host.as_str() == OLLAMA_REGISTRY,
            self.namespace.as_str() == OLLAMA_NAMESPACE,
        ) {
            (true, true) => format!("{}:{}", self.model, self.tag),
            (true, false) => format!("{}/{}:{}", self.namespace, self.model, self.tag),
            _ => format!(
                "{}/{}/{}:{}",
                self.host, self.namespace, self.model, self.tag
            ),
        }
    }

    fn manifest_in(&self, root: &Path) -> PathBuf {
        root.join("manifests")
            .join(&self.host)
            .join(&self.namespace)
            .join(&self.model)
            .join(&self.tag)
    }

    fn same_ignoring_case(&self, other: &OllamaName) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.namespace.eq_ignore_ascii_case(&other.namespace)
            && self.model.eq_ignore_ascii_case(&other.model)
            && self.tag.eq_ignore_ascii_case(&other.tag)
    }
}

/// One model in Ollama's store.
#[derive(Debug, Clone)]
pub struct OllamaModel {
    pub name: OllamaName,
    /// The store it is in (the folder holding `manifests/` and `blobs/`).
    pub root: PathBuf,
    pub manifest: PathBuf,
}

impl OllamaModel {
    /// The GGUF blob its manifest names, checked to exist. Errors say which file is wrong.
    pub fn weights(&self) -> Result<PathBuf> {
        let name = self.name.short();
        let text = std::fs::read_to_string(&self.manifest)
            .with_context(|| format!("ollama:{name}: cannot read {}", self.manifest.display()))?;
        let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            anyhow!(
                "ollama:{name}: the manifest {} is not JSON ({e})",
                self.manifest.display()
            )
        })?;
        let layers = doc
            .get("layers")
            .and_then(|l| l.as_array())
            .cloned()
            .unwrap_or_default();
        let Some(layer) = layers
            .iter()
            .find(|l| l.get("mediaType").and_then(|m| m.as_str()) == Some(OLLAMA_MODEL_LAYER))
        else {
            bail!(
                "ollama:{name}: the manifest {} has no model layer (mediaType {OLLAMA_MODEL_LAYER}); it is not a language model lsmtune can read",
                self.manifest.display()
            );
        };
        let digest = layer
            .get("digest")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        let Some(hex) = digest
            .strip_prefix("sha256:")
            .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
        else {
            bail!(
                "ollama:{name}: the manifest {} names the model blob `{digest}`, which is not sha256:HEX",
                self.manifest.display()
            );
        };
        let blobs = self.root.join("blobs");
        // Current Ollama writes `sha256-HEX`; versions before 0.1.3x wrote `sha256:HEX`.
        for candidate in [
            blobs.join(format!("sha256-{hex}")),
            blobs.join(format!("sha256:{hex}")),
        ] {
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
        bail!(
            "ollama:{name}: its model blob is missing (an interrupted pull or a pruned store?): run `ollama pull {name}` again. The manifest {} names {digest}; {} does not exist",
            self.manifest.display(),
            blobs.join(format!("sha256-{hex}")).display()
        )
    }
}

/// Every model in the stores under `roots`, sorted by name (the first root wins a duplicate).
pub fn ollama_models(roots: &[PathBuf]) -> Vec<OllamaModel> {
    let mut out: Vec<OllamaModel> = Vec::new();
    let dirs = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let file_name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    for root in roots {
        for host in dirs(&root.join("manifests")).iter().filter(|p| p.is_dir()) {
            for ns in dirs(host).iter().filter(|p| p.is_dir()) {
                for model in dirs(ns).iter().filter(|p| p.is_dir()) {
                    for tag in dirs(model).iter().filter(|p| p.is_file()) {
                        let (Some(h), Some(n), Some(m), Some(t)) = (
                            file_name(host),
                            file_name(ns),
                            file_name(model),
                            file_name(tag),
                        ) else {
                            continue;
                        };
                        let name = OllamaName {
                            host: h,
                            namespace: n,
                            model: m,
                            tag: t,
                        };
                        if !out.iter().any(|o| o.name == name) {
                            out.push(OllamaModel {
                                name,
                                root: root.clone(),
                                manifest: tag.clone(),
                            });
                        }
                    }
                }
            }
        }
    }
    out.sort_by_key(|m| m.name.short());
    out
}

/// The model `name` in the stores under `roots`: the exact manifest path first, then a match
/// ignoring case (Ollama treats names case-insensitively).
pub fn ollama_find(roots: &[PathBuf], name: &OllamaName) -> Option<OllamaModel> {
    for root in roots {
        let manifest = name.manifest_in(root);
        if manifest.is_file() {
            return Some(OllamaModel {
                name: name.clone(),
                root: root.clone(),
                manifest,
            });
        }
    }
    ollama_models(roots)
        .into_iter()
        .find(|m| m.name.same_ignoring_case(name))
}

/// Whether a GGUF file name is a vision projector (not a language model).
pub fn is_projector(file_name: &str) -> bool {
    let n = file_name.to_ascii_lowercase();
    n.contains("mmproj") || n.contains("projector")
}

/// One GGUF in LM Studio's folder.
#[derive(Debug, Clone)]
pub struct LmStudioModel {
    pub publisher: String,
    pub repo: String,
    pub file: String,
    pub path: PathBuf,
}

impl LmStudioModel {
    /// `PUBLISHER/REPO/FILE.gguf`, as `--model lmstudio:...` takes it.
    pub fn name(&self) -> String {
        format!("{}/{}/{}", self.publisher, self.repo, self.file)
    }
}

/// The language-model GGUFs of one `PUBLISHER/REPO` folder, sorted.
fn ggufs_in(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "gguf"))
                .filter_map(|p| {
                    let n = p.file_name()?.to_string_lossy().into_owned();
                    (!is_projector(&n)).then_some((n, p))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every language-model GGUF in LM Studio's folders (`PUBLISHER/REPO/*.gguf`).
pub fn lmstudio_models(roots: &[PathBuf]) -> Vec<LmStudioModel> {
    let mut out: Vec<LmStudioModel> = Vec::new();
    let subdirs = |p: &Path| -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    for root in roots {
        for publisher in subdirs(root) {
            for repo in subdirs(&publisher) {
                for (file, path) in ggufs_in(&repo) {
                    let m = LmStudioModel {
                        publisher: publisher
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        repo: repo
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        file,
                        path,
                    };
                    if !out.iter().any(|o| o.name() == m.name()) {
                        out.push(m);
                    }
                }
            }
        }
    }
    out
}

/// `PUBLISHER/REPO`, `PUBLISHER/REPO/FILE.gguf` or `PUBLISHER/REPO:FILE.gguf` in LM Studio's
/// folders: Ok(None) when there is no such folder or file; an error when the folder holds
/// several GGUFs and none was named (listing them) or holds none.
pub fn lmstudio_find(roots: &[PathBuf], spec: &str) -> Result<Option<PathBuf>> {
    let (folder, file) = match spec.split_once(':') {
        Some((f, file)) => (f, Some(file)),
        None => match spec.matches('/').count() {
            2 => {
                let (f, file) = spec.rsplit_once('/').unwrap_or((spec, ""));
                (f, Some(file))
            }
            _ => (spec, None),
        },
    };
    let parts: Vec<&str> = folder.split('/').collect();
    if parts.len() != 2
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
        || file.is_some_and(|f| f.is_empty() || f.contains(['/', '\\']) || f.starts_with('.'))
    {
        return Ok(None);
    }
    for root in roots {
        let dir = root.join(parts[0]).join(parts[1]);
        if !dir.is_dir() {
            continue;
        }
        if let Some(file) = file {
            let p = dir.join(file);
            if p.is_file() {
                return Ok(Some(p));
            }
            continue;
        }
        let mut ggufs = ggufs_in(&dir);
        match ggufs.len() {
            0 => bail!(
                "lmstudio:{folder}: {} holds no language-model .gguf (vision projectors are skipped)",
                dir.display()
            ),
            1 => return Ok(Some(ggufs.remove(0).1)),
            _ => bail!(
                "lmstudio:{folder} holds several GGUF files; name one:\n  {}",
                ggufs
                    .iter()
                    .map(|(f, _)| format!("lmstudio:{folder}/{f}"))
                    .collect::<Vec<_>>()
                    .join("\n  ")
            ),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ollama_names_parse_as_ollama_writes_them() {
        let n = OllamaName::parse("qwen2.5:0.5b").unwrap();
        assert_eq!(
            (
                n.host.as_str(),
                n.namespace.as_str(),
                n.model.as_str(),
                n.tag.as_str()
            ),
            (OLLAMA_REGISTRY, OLLAMA_NAMESPACE, "qwen2.5", "0.5b")
        );
        assert_eq!(n.short(), "qwen2.5:0.5b");
        assert_eq!(OllamaName::parse("tiny").unwrap().short(), "tiny:latest");
        assert_eq!(
            OllamaName::parse("acme/tiny:q8").unwrap().short(),
            "acme/tiny:q8"
        );
        let hf = OllamaName::parse("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M").unwrap();
        assert_eq!(hf.host, "hf.co");
        assert_eq!(hf.tag, "Q4_K_M");
        assert_eq!(
            hf.short(),
            "hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:Q4_K_M"
        );
        let port = OllamaName::parse("localhost:5000/me/m").unwrap();
        assert_eq!(
            (port.host.as_str(), port.tag.as_str()),
            ("localhost:5000", "latest")
        );
        for bad in [
            "",
            "a/b/c/d",
            "../x",
            "../ns/m",
            "a:",
            "/abs/path.gguf",
            "m.gguf/..:x",
        ] {
            assert!(OllamaName::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn projectors_are_recognised_by_name() {
        assert!(is_projector("mmproj-model-f16.gguf"));
        assert!(is_projector("Qwen2-VL-MMPROJ.gguf"));
        assert!(!is_projector("qwen2.5-0.5b-instruct-q8_0.gguf"));
    }
}
