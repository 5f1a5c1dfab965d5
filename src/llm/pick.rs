//! Which model `--backend auto` takes when none is named: one the user already has, in any
//! store `inventory` reads (the manifest's, the Hugging Face cache, Ollama's store, LM Studio's
//! folder, the models folder), chosen in this order:
//!
//! 1. only models lsmtune can run, that fit in half the machine's memory, and that are
//!    instruction-tuned (a base model answers a tuning prompt with more prompt);
//! 2. a family measured to tune well here first (Qwen2.5: its 0.5B coder instruct tied the
//!    expert in BENCHMARKS.md), then other families we know run and follow the grammar
//!    (Llama 3, Qwen3, Gemma 3, Phi, Mistral), then unknown families, and last the ones measured
//!    to tune poorly or too small to (SmolLM2-135M: 1.31x, below random draws);
//! 3. within a rank, the smallest: on a CPU every iteration's proposal is paid in seconds per
//!    billion parameters, and the measured family's smallest already tunes as well as its rules.
//!
//! Everything is decided from names and GGUF metadata (no weights loaded), and the choice comes
//! with a sentence saying why, which the tune prints and `models list` marks.

use super::inventory::{Entry, Section};

/// How much a family's tuning is known, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Standing {
    /// Measured to tune well on this project's benchmarks.
    Measured,
    /// A family lsmtune runs and whose instruct models follow the grammar, not yet measured.
    Known,
    /// A runnable instruct model of a family we know nothing about.
    Unknown,
    /// Measured to tune poorly, or too small to (under 0.3B parameters).
    Weak,
}

struct Family {
    /// Lower-case substrings of the model's name, any of which names the family.
    needles: &'static [&'static str],
    name: &'static str,
    standing: Standing,
    /// Why it stands where it does.
    evidence: &'static str,
}

const FAMILIES: &[Family] = &[
    Family {
        needles: &["smollm"],
        name: "SmolLM",
        standing: Standing::Weak,
        evidence: "SmolLM2-135M-Instruct reached 1.31x over 4 workloads, below random draws (BENCHMARKS.md)",
    },
    Family {
        needles: &["qwen2.5", "qwen2_5", "qwen-2.5"],
        name: "Qwen2.5",
        standing: Standing::Measured,
        evidence: "Qwen2.5-Coder-0.5B-Instruct tied the expert rules, 1.63x against 1.61x over 4 workloads x 3 seeds (BENCHMARKS.md)",
    },
    Family {
        needles: &["qwen3"],
        name: "Qwen3",
        standing: Standing::Known,
        evidence: "runs here; its tuning is not measured yet",
    },
    Family {
        needles: &["llama-3", "llama3", "llama 3"],
        name: "Llama 3",
        standing: Standing::Known,
        evidence: "runs here (models/manifest.json); its tuning is not measured yet",
    },
    Family {
        needles: &["gemma-3", "gemma3", "gemma 3"],
        name: "Gemma 3",
        standing: Standing::Known,
        evidence: "runs here; its tuning is not measured yet",
    },
    Family {
        needles: &["phi-3", "phi3", "phi-4", "phi4"],
        name: "Phi",
        standing: Standing::Known,
        evidence: "runs here; its tuning is not measured yet",
    },
    Family {
        needles: &["mistral", "ministral"],
        name: "Mistral",
        standing: Standing::Known,
        evidence: "runs here; its tuning is not measured yet",
    },
];

/// Below this many parameters a model of an unknown family counts as too small to tune.
const SMALLEST_USEFUL: f64 = 0.3e9;

/// What auto would make of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub standing: Standing,
    /// The family's name, when known.
    pub family: Option<&'static str>,
    /// Parameters, from the name (`0.5B`, `135M`) or else the file size and quantization.
    pub params: f64,
    /// Why the family stands where it does.
    pub evidence: String,
}

/// The model auto takes and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// What to pass to `--model`.
    pub name: String,
    pub why: String,
}

/// Everything that names the model, lower-cased: the store's name, the file name, the GGUF's.
fn haystack(e: &Entry) -> String {
    let mut s = e.name.clone();
    if let Some(f) = e.path.as_ref().and_then(|p| p.file_name()) {
        s.push(' ');
        s.push_str(&f.to_string_lossy());
    }
    if let Some(l) = &e.label {
        s.push(' ');
        s.push_str(l);
    }
    s.to_lowercase().replace(".gguf", " ")
}

/// The name's words: split at separators, keeping dots (`qwen2.5`, `0.5b`).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
}

/// Whether the model was tuned to follow instructions. Ollama's library tags are chat models
/// unless they say `base` or `text`; elsewhere the name says `instruct`, `chat` or `it` (Gemma).
pub fn is_instruct(e: &Entry) -> bool {
    let hay = haystack(e);
    let mut instruct = false;
    for w in words(&hay) {
        match w {
            "base" | "text" | "pretrain" | "pt" => return false,
            "it" | "chat" => instruct = true,
            _ if w.contains("instruct") => instruct = true,
            _ => {}
        }
    }
    instruct || e.name.starts_with("ollama:")
}

/// Parameters named in the model's name (`0.5b`, `135m`, `7b`, `1.5b`).
fn params_from_name(hay: &str) -> Option<f64> {
    words(hay).find_map(|w| {
        let (num, scale) = if let Some(n) = w.strip_suffix('b') {
            (n, 1e9)
        } else if let Some(n) = w.strip_suffix('m') {
            (n, 1e6)
        } else {
            return None;
        };
        let n: f64 = num.parse().ok()?;
        (n > 0.0).then_some(n * scale)
    })
}

/// Bits per weight of a quantization, roughly, for sizing a model from its file.
fn bits_per_weight(quant: Option<&str>) -> f64 {
    let q = quant.unwrap_or_default().to_ascii_uppercase();
    match q.as_str() {
        "F32" => 32.0,
        "F16" | "BF16" => 16.0,
        "Q8_0" => 8.5,
        "Q6_K" => 6.6,
        "Q5_0" | "Q5_1" | "Q5_K_S" | "Q5_K_M" => 5.7,
        "Q4_0" | "Q4_1" | "Q4_K_S" | "Q4_K_M" | "IQ4_NL" | "IQ4_XS" => 4.8,
        "Q3_K_S" | "Q3_K_M" | "Q3_K_L" => 3.9,
        "Q2_K" => 3.0,
        _ => 5.0,
    }
}

/// Judge one model, or say why auto would never take it. `memory`: the machine's, in bytes.
pub fn judge(e: &Entry, memory: u64) -> Result<Judgement, String> {
    if !e.runnable {
        return Err("lsmtune cannot run it".into());
    }
    let size = e.size_bytes.unwrap_or(0);
    if size > memory / 2 {
        return Err(format!(
            "its {} MiB do not fit in half of this machine's {} MiB",
            size >> 20,
            memory >> 20
        ));
    }
    if !is_instruct(e) {
        return Err("a base model, not instruction-tuned".into());
    }
    let hay = haystack(e);
    let params = params_from_name(&hay)
        .unwrap_or_else(|| size as f64 * 8.0 / bits_per_weight(e.quant.as_deref()));
    let family = FAMILIES
        .iter()
        .find(|f| f.needles.iter().any(|n| hay.contains(n)));
    let (mut standing, mut evidence) = match family {
        Some(f) => (f.standing, f.evidence.to_string()),
        None => (
            Standing::Unknown,
            "a family whose tuning is not measured".to_string(),
        ),
    };
    if params < SMALLEST_USEFUL && standing != Standing::Weak {
        standing = Standing::Weak;
        evidence = format!(
            "{:.0}M parameters: models this small tuned poorly (SmolLM2-135M, BENCHMARKS.md)",
            params / 1e6
        );
    }
    Ok(Judgement {
        standing,
        family: family.map(|f| f.name),
        params,
        evidence,
    })
}

/// `0.5B`, `7B`, `1.5B`, `135M`: as model names write sizes.
fn describe(params: f64) -> String {
    let b = params / 1e9;
    if b < 0.45 {
        format!("{:.0}M", params / 1e6)
    } else if (b - b.round()).abs() < 0.05 {
        format!("{:.0}B", b)
    } else {
        format!("{b:.1}B")
    }
}

/// Choose among every store's models, mark the choice (`Entry::auto_pick`), and say why.
/// None when no model qualifies; the reason then lists what was passed over.
pub fn choose(sections: &mut [Section], memory: u64) -> Result<Pick, String> {
    let mut best: Option<((Standing, f64), usize, usize, Judgement)> = None;
    let mut seen_paths = Vec::new();
    let mut skipped: Vec<String> = Vec::new();
    let mut eligible = 0usize;
    for (si, s) in sections.iter().enumerate() {
        for (mi, e) in s.models.iter().enumerate() {
            // The same file under two stores' names (the manifest's and the HF cache's).
            if let Some(p) = &e.path {
                if seen_paths.contains(p) {
                    continue;
                }
                seen_paths.push(p.clone());
            } else {
                continue;
            }
            match judge(e, memory) {
                Ok(j) => {
                    eligible += 1;
                    let key = (j.standing, j.params);
                    if best
                        .as_ref()
                        .is_none_or(|(k, ..)| key.partial_cmp(k) == Some(std::cmp::Ordering::Less))
                    {
                        best = Some((key, si, mi, j));
                    }
                }
                Err(why) => skipped.push(format!("{}: {why}", e.name)),
            }
        }
    }
    let Some((_, si, mi, j)) = best else {
        return Err(if skipped.is_empty() {
            "no local model found in any store (see `lsmtune models list`)".into()
        } else {
            format!(
                "no local model qualifies ({}; see `lsmtune models list`)",
                skipped.join("; ")
            )
        });
    };
    let entry = &mut sections[si].models[mi];
    entry.auto_pick = true;
    let rank = match j.standing {
        Standing::Measured => "of a family measured to tune well",
        Standing::Known => "of a known family",
        Standing::Unknown => "of an unknown family",
        Standing::Weak => "the only kind left, one measured to tune poorly",
    };
    let family = j.family.map(|f| format!(" ({f})")).unwrap_or_default();
    let others = eligible - 1;
    let why = format!(
        "the smallest instruct model {rank}{family}, {} parameters: {}{}{}",
        describe(j.params),
        j.evidence,
        if others > 0 {
            format!("; {others} other runnable instruct model(s) ranked below it")
        } else {
            String::new()
        },
        if skipped.is_empty() {
            String::new()
        } else {
            format!("; {} model(s) passed over", skipped.len())
        },
    );
    Ok(Pick {
        name: entry.name.clone(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn entry(name: &str, file: &str, size_mb: u64, quant: &str) -> Entry {
        Entry {
            name: name.into(),
            path: Some(PathBuf::from(format!("/store/{name}/{file}"))),
            arch: Some("qwen2".into()),
            quant: Some(quant.into()),
            size_bytes: Some(size_mb << 20),
            label: None,
            runnable: true,
            why_not: None,
            auto_pick: false,
        }
    }

    fn section(models: Vec<Entry>) -> Vec<Section> {
        vec![Section {
            store: "lmstudio",
            title: "test".into(),
            locations: vec![],
            models,
        }]
    }

    const GIB: u64 = 1 << 30;

    #[test]
    fn instruct_base_and_ollama_names_are_told_apart() {
        let e = |n: &str, f: &str| entry(n, f, 400, "Q4_K_M");
        assert!(is_instruct(&e(
            "lmstudio:Qwen/Qwen2.5-0.5B-Instruct-GGUF",
            "qwen2.5-0.5b-instruct-q4_k_m.gguf"
        )));
        assert!(!is_instruct(&e(
            "lmstudio:Qwen/Qwen2.5-0.5B-GGUF",
            "qwen2.5-0.5b-q4_k_m.gguf"
        )));
        assert!(is_instruct(&e(
            "lmstudio:ggml-org/gemma-3-270m-it-GGUF",
            "gemma-3-270m-it-Q4_K_M.gguf"
        )));
        assert!(is_instruct(&e("ollama:qwen2.5:0.5b", "sha256-ab")));
        assert!(!is_instruct(&e("ollama:llama2:7b-text", "sha256-ab")));
        assert!(!is_instruct(&e("ollama:qwen2.5:0.5b-base", "sha256-ab")));
        // A base model whose GGUF says so, behind a neutral file name.
        let mut m = e("/models/m", "m.gguf");
        m.label = Some("Qwen2.5 0.5B Instruct".into());
        assert!(is_instruct(&m));
    }

    #[test]
    fn parameters_come_from_the_name_else_the_file() {
        let j = judge(
            &entry(
                "a",
                "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                491,
                "Q4_K_M",
            ),
            24 * GIB,
        )
        .unwrap();
        assert_eq!(j.params, 0.5e9);
        assert_eq!(j.standing, Standing::Measured);
        let j = judge(
            &entry("b", "SmolLM2-135M-Instruct.Q4_1.gguf", 86, "Q4_1"),
            24 * GIB,
        )
        .unwrap();
        assert_eq!((j.params, j.standing), (135e6, Standing::Weak));
        // No size in the name: 4 GiB at ~4.8 bits per weight is about 7B.
        let j = judge(
            &entry("c", "mystery-instruct.gguf", 4096, "Q4_K_M"),
            24 * GIB,
        )
        .unwrap();
        assert!((6.5e9..7.5e9).contains(&j.params), "{}", j.params);
        assert_eq!(j.standing, Standing::Unknown);
        // An unknown family this small is judged too small to tune.
        let j = judge(&entry("d", "tiny-chat-50m.gguf", 30, "Q8_0"), 24 * GIB).unwrap();
        assert_eq!(j.standing, Standing::Weak);
    }

    #[test]
    fn the_smallest_measured_family_wins_and_is_marked() {
        let mut s = section(vec![
            entry("smol", "SmolLM2-135M-Instruct.Q4_1.gguf", 86, "Q4_1"),
            entry("qwen7", "Qwen2.5-7B-Instruct-Q4_K_M.gguf", 4460, "Q4_K_M"),
            entry("qwenbase", "qwen2.5-0.5b-q4_k_m.gguf", 380, "Q4_K_M"),
            entry("llama1", "Llama-3.2-1B-Instruct-Q4_K_M.gguf", 770, "Q4_K_M"),
            entry(
                "qwen05",
                "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                491,
                "Q4_K_M",
            ),
            entry(
                "qwen15",
                "qwen2.5-1.5b-instruct-q4_k_m.gguf",
                1100,
                "Q4_K_M",
            ),
        ]);
        let pick = choose(&mut s, 24 * GIB).unwrap();
        assert_eq!(pick.name, "qwen05", "{pick:?}");
        assert!(pick.why.contains("measured to tune well"), "{}", pick.why);
        assert!(pick.why.contains("0.5B"), "{}", pick.why);
        assert_eq!(
            [7e9, 1.5e9, 135e6].map(describe),
            ["7B", "1.5B", "135M"].map(String::from)
        );
        let marked: Vec<&str> = s[0]
            .models
            .iter()
            .filter(|m| m.auto_pick)
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(marked, ["qwen05"]);
    }

    #[test]
    fn a_known_family_beats_an_unknown_one_and_a_weak_one_is_the_last_resort() {
        let mut s = section(vec![
            entry("smol", "SmolLM2-135M-Instruct.Q4_1.gguf", 86, "Q4_1"),
            entry("mystery", "mystery-0.5b-instruct.gguf", 400, "Q4_K_M"),
            entry("llama1", "Llama-3.2-1B-Instruct-Q4_K_M.gguf", 770, "Q4_K_M"),
        ]);
        assert_eq!(choose(&mut s, 24 * GIB).unwrap().name, "llama1");
        let mut s = section(vec![entry(
            "smol",
            "SmolLM2-135M-Instruct.Q4_1.gguf",
            86,
            "Q4_1",
        )]);
        let pick = choose(&mut s, 24 * GIB).unwrap();
        assert!(pick.why.contains("measured to tune poorly"), "{}", pick.why);
    }

    #[test]
    fn nothing_runnable_fitting_or_instruct_means_no_pick_and_says_why() {
        let mut broken = entry("broken", "qwen2.5-0.5b-instruct.gguf", 400, "Q4_K_M");
        broken.runnable = false;
        let mut s = section(vec![
            broken,
            entry("huge", "Qwen2.5-72B-Instruct-Q4_K_M.gguf", 47_000, "Q4_K_M"),
            entry("base", "qwen2.5-0.5b-q4_k_m.gguf", 380, "Q4_K_M"),
        ]);
        let why = choose(&mut s, 24 * GIB).unwrap_err();
        for part in [
            "broken: lsmtune cannot run it",
            "huge: its 47000 MiB do not fit",
            "base: a base model",
        ] {
            assert!(why.contains(part), "{why}");
        }
        assert!(s[0].models.iter().all(|m| !m.auto_pick));
        assert!(
            choose(&mut section(vec![]), GIB)
                .unwrap_err()
                .contains("no local model found")
        );
    }

    #[test]
    fn the_same_file_in_two_stores_counts_once() {
        let a = entry("qwen2.5-0.5b-instruct:q4_k_m", "q.gguf", 400, "Q4_K_M");
        let mut b = a.clone();
        b.name = "Qwen/Qwen2.5-0.5B-Instruct-GGUF:q.gguf".into();
        let mut s = section(vec![a, b]);
        let pick = choose(&mut s, 24 * GIB).unwrap();
        assert_eq!(pick.name, "qwen2.5-0.5b-instruct:q4_k_m");
        assert!(!pick.why.contains("other runnable"), "{}", pick.why);
    }
}
