//! Grammar-constrained decoding on random-weight models the project writes itself: whatever the
//! weights, every proposal decoded under the proposal grammar parses, names only catalog keys
//! with values of the right type and range, and ends by itself; the same model without the
//! grammar writes garbage. Also: the committed schema is not stale.

use crate::common;

use std::path::{Path, PathBuf};

use crate::common::testmodel::{Arch, Shape, write_gguf};
use candle_core::quantized::GgmlDType;
use lsmtune::grammar::Grammar;
use lsmtune::grammar::schema::{self, SchemaOptions};
use lsmtune::llm::files::ModelFiles;
use lsmtune::llm::local::LocalModel;
use lsmtune::llm::{Finish, GenParams, Message};
use lsmtune::options::{self, CalibrateOptions, Calibrator, Config, Rule};
use rayon::prelude::*;

const WRONG: &[Rule] = &[
    Rule::UnknownKey,
    Rule::NotTunable,
    Rule::Type,
    Rule::Unparsable,
    Rule::Range,
    Rule::Unsafe,
    Rule::TooMany,
];

fn model(arch: Arch, seed: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let gguf = write_gguf(
        &dir.path().join("m"),
        arch,
        Shape::TINY,
        seed,
        GgmlDType::Q8_0,
    )
    .unwrap();
    (dir, gguf)
}

fn load(gguf: &Path) -> LocalModel {
    LocalModel::load(&ModelFiles::resolve(gguf).unwrap()).unwrap()
}

fn messages() -> Vec<Message> {
    vec![
        Message::system("You tune RocksDB. Answer with JSON."),
        Message::user("Workload: fillrandom. Propose changes."),
    ]
}

fn calibrator(opts: &SchemaOptions) -> Calibrator<'static> {
    Calibrator::new(
        options::catalog().unwrap(),
        CalibrateOptions {
            memory_budget: 4 << 30,
            allow_unsafe: opts.allow_unsafe,
            max_changes: opts.max_changes,
        },
    )
}

/// Run `seeds` generations under the grammar on one model per rayon thread; check each.
fn constrained_runs(gguf: &Path, opts: SchemaOptions, seeds: std::ops::Range<u64>) -> usize {
    let catalog = options::catalog().unwrap();
    let base = Config::new(options::rocks::linked_defaults().unwrap().clone());
    let schema = schema::proposal_schema(catalog, &opts);
    let allowed: std::collections::HashSet<&str> = schema::proposable_keys(catalog, &opts)
        .into_iter()
        .collect();
    let seeds: Vec<u64> = seeds.collect();
    let chunks: Vec<Vec<u64>> = seeds
        .chunks(seeds.len().div_ceil(2))
        .map(|c| c.to_vec())
        .collect();
    chunks
        .into_par_iter()
        .map(|chunk| {
            let mut m = load(gguf);
            let grammar = Grammar::json_schema(m.tokenizer(), m.eos_tokens(), &schema).unwrap();
            let cal = calibrator(&opts);
            let mut changes = 0;
            for seed in chunk {
                let params = GenParams {
                    seed,
                    temperature: 1.0,
                    max_tokens: 2048,
                    ..GenParams::default()
                };
                let p = lsmtune::tune::ask::ask(
                    &mut m,
                    Some(&grammar),
                    &messages(),
                    &params,
                    &mut |_| {},
                )
                .unwrap();
                let text = &p.completion.text;
                assert_eq!(p.completion.finish, Finish::Eos, "seed {seed}: {text}");
                // Valid JSON of the schema's shape.
                let v: serde_json::Value = serde_json::from_str(text)
                    .unwrap_or_else(|e| panic!("seed {seed}: not JSON ({e}): {text}"));
                let reasoning = v["reasoning"]
                    .as_str()
                    .unwrap_or_else(|| panic!("seed {seed}: {text}"));
                assert!(
                    reasoning.chars().count() <= opts.reasoning_chars,
                    "seed {seed}"
                );
                let items = v["changes"]
                    .as_array()
                    .unwrap_or_else(|| panic!("seed {seed}: {text}"));
                assert!(
                    !items.is_empty() && items.len() <= opts.max_changes,
                    "seed {seed}: {text}"
                );
                for item in items {
                    let (k, _) = item.as_object().unwrap().iter().next().unwrap();
                    assert!(
                        allowed.contains(k.as_str()),
                        "seed {seed}: {k} not proposable"
                    );
                }
                // The calibrator reads every entry and corrects no key, type or range.
                assert_eq!(p.raw.entries.len(), items.len(), "seed {seed}: {text}");
                let c = cal.calibrate(&base, &p.raw);
                let wrong: Vec<String> = c
                    .corrections
                    .iter()
                    .filter(|c| WRONG.contains(&c.rule))
                    .map(|c| c.to_string())
                    .collect();
                assert!(wrong.is_empty(), "seed {seed}: {text}\n{wrong:?}");
                let mask = p.mask_stats().unwrap();
                assert!(mask.masks > 0 && mask.forced_tokens > 0, "{mask:?}");
                changes += c.changes.len();
            }
            changes
        })
        .sum()
}

#[test]
fn a_thousand_constrained_generations_are_all_valid_proposals() {
    let (_d, gguf) = model(Arch::Qwen2, 5);
    // Short reasoning keeps 1,000 generations quick; the key/value part is the default schema.
    let opts = SchemaOptions {
        reasoning_chars: 48,
        ..SchemaOptions::default()
    };
    let changes = constrained_runs(&gguf, opts, 0..1000);
    // Random weights still pick real changes (some proposals repeat a current value).
    assert!(changes > 500, "{changes} changes in 1,000 proposals");
}

#[test]
fn the_default_schema_and_other_shapes_hold_too() {
    let (_d, gguf) = model(Arch::Llama, 9);
    constrained_runs(&gguf, SchemaOptions::default(), 0..24);
    let unsafe_few = SchemaOptions {
        max_changes: 2,
        allow_unsafe: true,
        reasoning_chars: 16,
    };
    constrained_runs(&gguf, unsafe_few, 100..140);
}

#[test]
fn without_the_grammar_the_same_model_writes_garbage() {
    let (_d, gguf) = model(Arch::Qwen2, 5);
    let opts = SchemaOptions::default();
    let base = Config::new(options::rocks::linked_defaults().unwrap().clone());
    let cal = calibrator(&opts);
    let mut m = load(&gguf);
    let mut usable = 0;
    for seed in 0..40 {
        let params = GenParams {
            seed,
            temperature: 1.0,
            max_tokens: 200,
            ..GenParams::default()
        };
        let p = lsmtune::tune::ask::ask(&mut m, None, &messages(), &params, &mut |_| {}).unwrap();
        assert!(p.mask.is_none());
        let c = cal.calibrate(&base, &p.raw);
        let clean = c.corrections.iter().all(|c| !WRONG.contains(&c.rule));
        if p.raw.format == "json" && !c.changes.is_empty() && clean {
            usable += 1;
        }
    }
    assert_eq!(
        usable, 0,
        "random weights wrote a valid proposal without the grammar"
    );
}

#[test]
fn the_committed_schema_is_current() {
    let generated = schema::render(&schema::proposal_schema(
        options::catalog().unwrap(),
        &SchemaOptions::default(),
    ));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(schema::COMMITTED_PATH);
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is stale: run `lsmtune grammar schema --write` from the repository root",
        path.display()
    );
    // The schema is valid JSON Schema for strict endpoints: every object closes its properties.
    let v: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(v["additionalProperties"], false);
    for item in v["properties"]["changes"]["items"]["anyOf"]
        .as_array()
        .unwrap()
    {
        assert_eq!(item["additionalProperties"], false);
        assert_eq!(item["required"].as_array().unwrap().len(), 1);
    }
}

#[test]
fn propose_and_grammar_on_the_command_line() {
    let (_d, gguf) = model(Arch::Qwen2, 5);
    let bin = env!("CARGO_BIN_EXE_lsmtune");
    let o = std::process::Command::new(bin)
        .args(["propose", "--model"])
        .arg(gguf.parent().unwrap())
        .args([
            "--workload",
            "readrandom",
            "--n",
            "3",
            "--json",
            "--offline",
        ])
        .output()
        .unwrap();
    common::assert_ok(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    for l in &lines {
        assert!(l["parsed_entries"].as_u64().unwrap() >= 1, "{l}");
        assert!(l["mask"]["masks"].as_u64().unwrap() > 0, "{l}");
        serde_json::from_str::<serde_json::Value>(l["text"].as_str().unwrap()).unwrap();
        for c in l["corrections"].as_array().unwrap() {
            let c = c.as_str().unwrap();
            assert!(
                !c.contains("[unknown_key]") && !c.contains("[type]") && !c.contains("[range]"),
                "{c}"
            );
        }
    }
    // Text mode shows the calibrated changes; bad flags are refused with exit 2.
    let o = std::process::Command::new(bin)
        .args(["propose", "--model"])
        .arg(&gguf)
        .args(["--offline"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&o.stdout).contains("calibrated:"));
    let o = std::process::Command::new(bin)
        .args(["grammar", "schema", "--max-changes", "0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let o = std::process::Command::new(bin)
        .args(["grammar", "schema", "--max-changes", "3"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["properties"]["changes"]["maxItems"], 3);
}
