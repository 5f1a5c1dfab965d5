//! Models other tools downloaded: a fake Ollama store and a fake LM Studio folder built in a
//! temp folder around the generated test model. Every `--model` spelling resolves offline, the
//! CLI chats with `ollama:tiny:latest`, `models list` shows each store with a verdict, and an
//! ambiguous name, a manifest naming a missing blob, and files lsmtune cannot run are clear.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{self, Value};
use lsmtune::llm::hub::Hub;

/// The temp folder and the paths inside it.
struct Fake {
    _dir: tempfile::TempDir,
    root: PathBuf,
    gguf: PathBuf,
    ollama: PathBuf,
    lmstudio: PathBuf,
    hf: PathBuf,
}

fn digest_hex(bytes: &[u8]) -> String {
    // Any 64 hex digits do for the store's layout; derive them from the content so two
    // different files never share a blob.
    use std::hash::{Hash, Hasher};
    let mut out = String::new();
    for salt in 0..4u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut h);
        bytes.hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

/// Put `gguf` into the Ollama store at `root` as `HOST/NAMESPACE/MODEL:TAG`.
fn ollama_add(root: &Path, host: &str, ns: &str, model: &str, tag: &str, gguf: &Path) -> String {
    let bytes = std::fs::read(gguf).unwrap();
    let hex = digest_hex(&bytes);
    std::fs::create_dir_all(root.join("blobs")).unwrap();
    std::fs::write(root.join("blobs").join(format!("sha256-{hex}")), &bytes).unwrap();
    ollama_manifest(root, host, ns, model, tag, &hex);
    hex
}

fn ollama_manifest(root: &Path, host: &str, ns: &str, model: &str, tag: &str, hex: &str) {
    let dir = root.join("manifests").join(host).join(ns).join(model);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000", "size": 10},
        "layers": [
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "size": 5},
            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{hex}"), "size": 1}
        ]
    });
    std::fs::write(dir.join(tag), manifest.to_string()).unwrap();
}

/// A GGUF holding only metadata (enough for `models list`'s verdicts).
fn metadata_gguf(path: &Path, md: &[(&str, Value)]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::fs::File::create(path).unwrap();
    let refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (*k, v)).collect();
    gguf_file::write(&mut f, &refs, &[]).unwrap();
}

/// The tiny model's GGUF with one metadata edit (tensors kept).
fn rewrite_gguf(src: &Path, dst: &Path, edit: impl FnOnce(&mut HashMap<String, Value>)) {
    let mut f = std::fs::File::open(src).unwrap();
    let mut content = gguf_file::Content::read(&mut f).unwrap();
    let names: Vec<String> = content.tensor_infos.keys().cloned().collect();
    let tensors: Vec<(String, candle_core::quantized::QTensor)> = names
        .iter()
        .map(|n| {
            let t = content
                .tensor(&mut f, n, &candle_core::Device::Cpu)
                .unwrap();
            (n.clone(), t)
        })
        .collect();
    edit(&mut content.metadata);
    let md: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let ts: Vec<(&str, &candle_core::quantized::QTensor)> =
        tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    gguf_file::write(&mut std::fs::File::create(dst).unwrap(), &md, &ts).unwrap();
}

/// Ollama: tiny:latest, acme/tiny:q8, hf.co/org/tiny-GGUF:Q8_0, broken:latest (blob missing),
/// acme/dup:latest. LM Studio: acme/tiny-GGUF (the model + a projector), acme/two-GGUF (two
/// models), acme/dup. Hugging Face cache: acme/dup.
fn fake() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let gguf = common::tiny_model(&root).join("model.gguf");
    let ollama = root.join("ollama-models");
    ollama_add(
        &ollama,
        "registry.ollama.ai",
        "library",
        "tiny",
        "latest",
        &gguf,
    );
    ollama_add(&ollama, "registry.ollama.ai", "acme", "tiny", "q8", &gguf);
    ollama_add(&ollama, "hf.co", "org", "tiny-GGUF", "Q8_0", &gguf);
    ollama_add(
        &ollama,
        "registry.ollama.ai",
        "acme",
        "dup",
        "latest",
        &gguf,
    );
    ollama_manifest(
        &ollama,
        "registry.ollama.ai",
        "library",
        "broken",
        "latest",
        &"ab".repeat(32),
    );
    let lmstudio = root.join("lmstudio-models");
    let tiny = lmstudio.join("acme/tiny-GGUF");
    std::fs::create_dir_all(&tiny).unwrap();
    std::fs::copy(&gguf, tiny.join("tiny-q8_0.gguf")).unwrap();
    metadata_gguf(
        &tiny.join("mmproj-tiny-f16.gguf"),
        &[("general.architecture", Value::String("clip".into()))],
    );
    let two = lmstudio.join("acme/two-GGUF");
    std::fs::create_dir_all(&two).unwrap();
    std::fs::copy(&gguf, two.join("two-a.gguf")).unwrap();
    std::fs::copy(&gguf, two.join("two-b.gguf")).unwrap();
    std::fs::create_dir_all(lmstudio.join("acme/dup")).unwrap();
    std::fs::copy(&gguf, lmstudio.join("acme/dup/dup.gguf")).unwrap();
    let hf = root.join("hf/hub");
    let snap = hf.join("models--acme--dup/snapshots/abc123");
    std::fs::create_dir_all(&snap).unwrap();
    std::fs::create_dir_all(hf.join("models--acme--dup/refs")).unwrap();
    std::fs::write(hf.join("models--acme--dup/refs/main"), "abc123").unwrap();
    std::fs::copy(&gguf, snap.join("dup.gguf")).unwrap();
    Fake {
        _dir: dir,
        root,
        gguf,
        ollama,
        lmstudio,
        hf,
    }
}

fn hub(f: &Fake) -> Hub {
    Hub {
        hf_cache: f.hf.clone(),
        models_dir: f.root.join("no-models-dir"),
        endpoint: "http://127.0.0.1:9".into(),
        ollama: vec![f.ollama.clone()],
        lmstudio: vec![f.lmstudio.clone()],
    }
}

#[test]
fn every_spec_form_resolves_offline_and_bad_ones_say_why() {
    let f = fake();
    let hub = hub(&f);
    let weights = |spec: &str| {
        hub.resolve(spec)
            .unwrap_or_else(|e| panic!("{spec}: {e:#}"))
            .weights
    };
    let blob = weights("ollama:tiny:latest");
    assert!(
        blob.starts_with(f.ollama.join("blobs")),
        "{}",
        blob.display()
    );
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        std::fs::read(&f.gguf).unwrap()
    );
    // The tag defaults to latest; names ignore case; other namespaces and hosts.
    assert_eq!(weights("ollama:tiny"), blob);
    assert_eq!(weights("ollama:Tiny:LATEST"), blob);
    assert_eq!(weights("ollama:acme/tiny:q8"), blob);
    assert_eq!(weights("ollama:hf.co/org/tiny-GGUF:Q8_0"), blob);
    // Plain names, unambiguous.
    assert_eq!(weights("tiny:latest"), blob);
    assert_eq!(weights("tiny"), blob);
    assert_eq!(weights("hf.co/org/tiny-GGUF:Q8_0"), blob);
    // LM Studio: the one language model of a folder (the projector beside it is skipped), or a
    // named file; plain PUBLISHER/REPO when only LM Studio has it.
    let lm = f.lmstudio.join("acme/tiny-GGUF/tiny-q8_0.gguf");
    assert_eq!(weights("lmstudio:acme/tiny-GGUF"), lm);
    assert_eq!(weights("lmstudio:acme/tiny-GGUF/tiny-q8_0.gguf"), lm);
    assert_eq!(weights("acme/tiny-GGUF"), lm);
    assert_eq!(
        weights("lmstudio:acme/two-GGUF/two-b.gguf"),
        f.lmstudio.join("acme/two-GGUF/two-b.gguf")
    );
    // The Hugging Face cache by prefix; a path still wins over everything.
    assert_eq!(
        weights("hf:acme/dup"),
        f.hf.join("models--acme--dup/snapshots/abc123/dup.gguf")
    );
    assert_eq!(weights(f.gguf.to_str().unwrap()), f.gguf);

    let err = |spec: &str| format!("{:#}", hub.resolve(spec).unwrap_err());
    // Two models in one LM Studio folder: name one.
    let e = err("lmstudio:acme/two-GGUF");
    assert!(
        e.contains("several") && e.contains("lmstudio:acme/two-GGUF/two-a.gguf"),
        "{e}"
    );
    // A plain name three stores answer to: every candidate, spelled with its prefix.
    let e = err("acme/dup");
    assert!(e.contains("ambiguous"), "{e}");
    for c in ["ollama:acme/dup:latest", "lmstudio:acme/dup", "hf:acme/dup"] {
        assert!(e.contains(c), "{c} missing in: {e}");
    }
    // A manifest naming a blob that is not there.
    let e = err("ollama:broken");
    assert!(
        e.contains("missing")
            && e.contains("ollama pull broken:latest")
            && e.contains("sha256-abab"),
        "{e}"
    );
    // Not in the store: what the store holds instead.
    let e = err("ollama:nope:1b");
    assert!(
        e.contains("not in Ollama's store") && e.contains("ollama:tiny:latest"),
        "{e}"
    );
    let e = err("ollama:../../etc/passwd");
    assert!(e.contains("not an Ollama model name"), "{e}");
    // Nothing anywhere: every store searched is named.
    let e = err("no-such-model:7b");
    assert!(
        e.contains("Ollama's store")
            && e.contains("LM Studio's folder")
            && e.contains("models list"),
        "{e}"
    );
    // A manifest model that is not downloaded keeps its own error (it is pulled, not looked up
    // in other stores).
    let e = err("qwen2.5-0.5b-instruct");
    assert!(e.contains("air-gapped"), "{e}");
}

fn lsmtune<S: AsRef<std::ffi::OsStr>>(f: &Fake, home: &Path, args: &[S]) -> std::process::Output {
    crate::common::command()
        .args(args)
        .env("HOME", home)
        .env("HF_HUB_CACHE", &f.hf)
        .env("HF_HUB_OFFLINE", "1")
        .env("LSMTUNE_MODELS_DIR", f.root.join("no-models-dir"))
        .env_remove("OLLAMA_MODELS")
        .env_remove("LMSTUDIO_MODELS")
        .env_remove("HF_HOME")
        .output()
        .unwrap()
}

#[test]
fn llm_chat_answers_from_the_ollama_store_found_by_env_or_home() {
    let f = fake();
    let chat = |model: &str| {
        [
            "llm",
            "chat",
            "--model",
            model,
            "--prompt",
            "Tune RocksDB",
            "--max-tokens",
            "4",
            "--temperature",
            "0",
        ]
        .map(str::to_string)
    };
    // OLLAMA_MODELS names the store.
    let empty_home = f.root.join("empty-home");
    std::fs::create_dir_all(&empty_home).unwrap();
    let o = crate::common::command()
        .args(chat("ollama:tiny:latest"))
        .env("OLLAMA_MODELS", &f.ollama)
        .env("HOME", &empty_home)
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    common::assert_ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("blobs") && err.contains("reply 4 tokens"),
        "{err}"
    );
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());

    // No OLLAMA_MODELS: ~/.ollama/models and ~/.lmstudio/models of HOME.
    let home = f.root.join("home");
    std::fs::create_dir_all(home.join(".ollama")).unwrap();
    std::fs::create_dir_all(home.join(".lmstudio")).unwrap();
    copy_dir(&f.ollama, &home.join(".ollama/models"));
    copy_dir(&f.lmstudio, &home.join(".lmstudio/models"));
    let o = lsmtune(&f, &home, &chat("tiny"));
    common::assert_ok(&o);
    let o = lsmtune(&f, &home, &chat("lmstudio:acme/tiny-GGUF"));
    common::assert_ok(&o);
    // An ambiguous plain name: exit 2 and the candidates.
    let o = lsmtune(&f, &home, &chat("acme/dup"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ambiguous") && err.contains("ollama:acme/dup:latest"),
        "{err}"
    );
    // A manifest naming a missing blob: exit 2, what to do.
    let o = lsmtune(&f, &home, &chat("ollama:broken"));
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("ollama pull broken:latest"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn models_list_shows_every_store_with_a_verdict() {
    let f = fake();
    // Files lsmtune cannot run, beside the runnable ones.
    let bad = f.lmstudio.join("acme/bad-GGUF");
    metadata_gguf(
        &bad.join("mamba.gguf"),
        &[("general.architecture", Value::String("mamba".into()))],
    );
    std::fs::write(bad.join("junk.gguf"), b"this is not a gguf file at all").unwrap();
    rewrite_gguf(&f.gguf, &bad.join("weird-pre.gguf"), |m| {
        m.insert(
            "tokenizer.ggml.pre".into(),
            Value::String("no-such-pre".into()),
        );
        m.insert("general.file_type".into(), Value::U32(15));
    });
    // candle divides by general.alignment: 0 once panicked and took the whole list down.
    metadata_gguf(
        &bad.join("align0.gguf"),
        &[
            ("general.architecture", Value::String("llama".into())),
            ("general.alignment", Value::U32(0)),
        ],
    );
    // A projector whose name does not say so is recognised by its architecture.
    metadata_gguf(
        &bad.join("vision.gguf"),
        &[("general.architecture", Value::String("clip".into()))],
    );
    let home = f.root.join("home-list");
    std::fs::create_dir_all(&home).unwrap();
    let o = crate::common::command()
        .args(["models", "list", "--json"])
        .env("OLLAMA_MODELS", &f.ollama)
        .env("LMSTUDIO_MODELS", &f.lmstudio)
        .env("HF_HUB_CACHE", &f.hf)
        .env("HOME", &home)
        .env("LSMTUNE_MODELS_DIR", f.root.join("no-models-dir"))
        .output()
        .unwrap();
    common::assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let stores: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store"].as_str().unwrap())
        .collect();
    assert_eq!(
        stores,
        [
            "manifest",
            "hf-cache",
            "ollama",
            "lmstudio",
            "models-folder"
        ]
    );
    let model = |name: &str| -> serde_json::Value {
        v.as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["models"].as_array().unwrap().iter())
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {v:#}"))
            .clone()
    };
    for name in [
        "ollama:tiny:latest",
        "ollama:acme/tiny:q8",
        "ollama:hf.co/org/tiny-GGUF:Q8_0",
        "lmstudio:acme/tiny-GGUF/tiny-q8_0.gguf",
        "acme/dup:dup.gguf",
    ] {
        let m = model(name);
        assert_eq!(m["runnable"], true, "{m}");
        assert_eq!(m["arch"], "qwen2", "{m}");
        assert_eq!(m["quant"], "Q8_0", "{m}");
        assert!(m["size_bytes"].as_u64().unwrap() > 100_000, "{m}");
    }
    let why = |name: &str| {
        let m = model(name);
        assert_eq!(m["runnable"], false, "{m}");
        m["why_not"].as_str().unwrap().to_string()
    };
    assert!(why("ollama:broken:latest").contains("missing"));
    assert!(
        why("lmstudio:acme/bad-GGUF/mamba.gguf").contains("architecture `mamba` is not supported")
    );
    assert!(why("lmstudio:acme/bad-GGUF/junk.gguf").contains("not a GGUF"));
    let w = why("lmstudio:acme/bad-GGUF/align0.gguf");
    assert!(w.contains("general.alignment is 0"), "{w}");
    let w = why("lmstudio:acme/bad-GGUF/weird-pre.gguf");
    assert!(
        w.contains("no-such-pre") && w.contains("pre-tokenizer"),
        "{w}"
    );
    assert_eq!(
        model("lmstudio:acme/bad-GGUF/weird-pre.gguf")["quant"],
        "Q4_K_M"
    );
    assert!(why("qwen2.5-0.5b-instruct:q8_0").contains("models pull"));
    // Projectors are not listed, by name or by architecture.
    let text = o.stdout.clone();
    let text = String::from_utf8_lossy(&text);
    assert!(
        !text.contains("mmproj") && !text.contains("vision.gguf"),
        "{text}"
    );

    // The text form: one table per store, the names as --model takes them.
    let o = crate::common::command()
        .args(["models", "list"])
        .env("OLLAMA_MODELS", &f.ollama)
        .env("LMSTUDIO_MODELS", &f.lmstudio)
        .env("HF_HUB_CACHE", &f.hf)
        .env("HOME", &home)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Ollama's store"), "{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("ollama:tiny:latest"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains("qwen2") && line.contains("Q8_0") && line.ends_with("yes"),
        "{line}"
    );
    assert!(text.contains("no: architecture `mamba`"), "{text}");
}

/// `--backend auto` with no --model takes the model the user already has that suits tuning
/// best: here the smallest Qwen2.5 instruct model, over a 7B one of the same family, a base
/// model, a SmolLM2 (measured to tune poorly) and the fake's nameless test models; `models list`
/// marks the same one, and a tune says which it took and why.
#[test]
fn auto_picks_the_smallest_instruct_model_of_a_measured_family_from_the_stores() {
    let f = fake();
    let put = |rel: &str| {
        let p = f.lmstudio.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::copy(&f.gguf, &p).unwrap();
    };
    put("lmstudio-community/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf");
    put("Qwen/Qwen2.5-7B-Instruct-GGUF/qwen2.5-7b-instruct-q4_k_m.gguf");
    put("Qwen/Qwen2.5-0.5B-GGUF/qwen2.5-0.5b-q4_k_m.gguf");
    put("bartowski/SmolLM2-135M-Instruct-GGUF/SmolLM2-135M-Instruct-Q4_1.gguf");
    // A GGUF dropped straight into the models folder is seen too (a 1.5B of the same family:
    // listed, ranked below the 0.5B).
    let models_dir = f.root.join("models-dir");
    std::fs::create_dir_all(&models_dir).unwrap();
    let loose = models_dir.join("qwen2.5-1.5b-instruct-q4_k_m.gguf");
    std::fs::copy(&f.gguf, &loose).unwrap();
    let picked =
        "lmstudio:lmstudio-community/Qwen2.5-0.5B-Instruct-GGUF/Qwen2.5-0.5B-Instruct-Q4_K_M.gguf";
    let home = f.root.join("home-auto");
    std::fs::create_dir_all(&home).unwrap();
    let run = |args: &[&str]| {
        crate::common::command()
            .args(args)
            .env("OLLAMA_MODELS", &f.ollama)
            .env("LMSTUDIO_MODELS", &f.lmstudio)
            .env("HF_HUB_CACHE", &f.hf)
            .env("HF_HUB_OFFLINE", "1")
            .env("HOME", &home)
            .env("LSMTUNE_MODELS_DIR", &models_dir)
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap()
    };

    let o = run(&["models", "list", "--json"]);
    common::assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let marked: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["models"].as_array().unwrap().iter())
        .filter(|m| m["auto_pick"] == true)
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(marked, [picked], "{v:#}");
    let folder: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["store"] == "models-folder")
        .flat_map(|s| s["models"].as_array().unwrap().iter())
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(folder, [loose.to_str().unwrap()], "{v:#}");

    let o = run(&["models", "list"]);
    common::assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.starts_with("* "), "{line}");
    assert!(
        text.contains(&format!("--backend auto picks (*): {picked}"))
            && text.contains("measured to tune well"),
        "{text}"
    );

    // The tune takes it and says why.
    let out = f.root.join("run");
    let o = run(&[
        &["tune", "--workload", "fillrandom"],
        crate::common::SMALL,
        &[
            "--iterations",
            "1",
            "--max-tokens",
            "200",
            "--out",
            out.to_str().unwrap(),
        ],
    ]
    .concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!("auto: picked the local model {picked}"))
            && err.contains("of a family measured to tune well (Qwen2.5), 0.5B parameters"),
        "{err}"
    );
    let records = lsmtune::tune::journal::load(&out).unwrap();
    let proposer = records.iter().find_map(|r| match r {
        lsmtune::tune::journal::Record::Iteration(it) => Some(it.proposer.clone()),
        _ => None,
    });
    assert!(
        proposer.as_deref().is_some_and(|p| p.starts_with("local:")),
        "{proposer:?}"
    );
}
