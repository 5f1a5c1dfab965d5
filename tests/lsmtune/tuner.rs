//! The tuning loop's decisions, fast: a fake benchmark engine whose throughput is a known
//! function of the configuration (deterministic, about 1% noise), scripted proposers and a fake
//! language model. Covers the state prompt and its pieces, never measuring one configuration
//! twice (replies that repeat one are dropped and the proposer asked again), the choice among
//! sampled replies, and value refinement after a kept change.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use lsmtune::bench::measure::{Diagnostics, Latency, Measurement};
use lsmtune::bench::{BenchEngine, Kind, RunFailure, Workload};
use lsmtune::llm::{Completion, Finish, GenParams, Llm, Message, TokenConstraint};
use lsmtune::options::{Config, OptionsDoc};
use lsmtune::tune::journal::{self, Decision, Iteration, Record, Settings};
use lsmtune::tune::prompt::HintLevel;
use lsmtune::tune::proposer::{Context, LlmProposer, Proposal, Proposer, Reply};
use lsmtune::tune::{Quiet, Tuner};

const MIB: f64 = (1 << 20) as f64;

/// Throughput as a function of the configuration: a filter and a big enough cache help point
/// reads; writes are fastest with 16 MiB memtables and 20% faster pipelined. Counts runs per
/// configuration.
pub(crate) struct FakeEngine {
    pub(crate) runs: Mutex<BTreeMap<String, usize>>,
    /// bytes_per_sync > 0 costs 10% throughput and cuts p99 to 40% (a latency trade-off).
    pub(crate) tradeoff: bool,
    /// Relative noise of each run on its own (independent between the two configurations of a
    /// round, so pairs do not cancel it): uniform, this wide either way; 0 for none.
    pub(crate) noise: f64,
}

impl FakeEngine {
    pub(crate) fn new() -> FakeEngine {
        FakeEngine {
            runs: Mutex::new(BTreeMap::new()),
            tradeoff: false,
            noise: 0.0,
        }
    }
    /// Configurations measured more than twice per iteration would show as > 5 runs.
    fn runs(&self) -> BTreeMap<String, usize> {
        self.runs.lock().unwrap().clone()
    }
}

impl BenchEngine for FakeEngine {
    fn name(&self) -> String {
        "fake".into()
    }

    fn measure(
        &self,
        doc: &OptionsDoc,
        w: &Workload,
        _work: &Path,
    ) -> Result<Measurement, RunFailure> {
        let cat = lsmtune::options::catalog().unwrap();
        let c = Config::new(doc.clone());
        let key = lsmtune::tune::fingerprint(&c, &lsmtune::options::default_config().unwrap(), cat);
        let count = {
            let mut runs = self.runs.lock().unwrap();
            let n = runs.entry(key.clone()).or_default();
            *n += 1;
            *n
        };
        let data = w.num as f64 * (w.key_size + w.value_size) as f64;
        let mut ops = 100_000.0;
        let filter = c.float(cat, "table.filter_bits_per_key") >= 5.0;
        let cache = c.int(cat, "table.block_cache_size") as f64;
        let hit = (cache / data).min(1.0);
        if w.kind.point_reads() {
            if filter {
                ops *= 2.5;
            }
            ops *= 1.0 + 0.6 * hit;
        }
        if w.kind.writes() {
            let wb = c.int(cat, "write_buffer_size") as f64;
            ops *= 1.4 - 0.1 * (wb / (16.0 * MIB)).log2().abs();
            // A switch that pays on writes (a kept bool leaves no value to search).
            if c.flag(cat, "enable_pipelined_write") {
                ops *= 1.2;
            }
        }
        // About 1% noise, deterministic per seed.
        let noise = ((w.seed.wrapping_mul(2654435761) % 1000) as f64 / 1000.0 - 0.5) * 0.02;
        ops *= 1.0 + noise;
        if self.noise > 0.0 {
            // Per run and configuration, deterministic: the configuration and its run count.
            let h = key
                .bytes()
                .fold(count as u64 ^ 0x9E37_79B9_7F4A_7C15, |h, b| {
                    (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
                });
            let u = (h >> 11) as f64 / (1u64 << 53) as f64;
            ops *= 1.0 + (2.0 * u - 1.0) * self.noise;
        }
        let mut p99 = 5e6 / ops;
        if self.tradeoff && c.int(cat, "bytes_per_sync") > 0 {
            ops *= 0.9;
            p99 = 0.4 * 5e6 / ops;
        }
        Ok(Measurement {
            engine: "fake".into(),
            workload: w.clone(),
            ops: (ops * 2.0) as u64,
            seconds: 2.0,
            ops_per_sec: ops,
            mb_per_sec: 0.0,
            latency_us: Latency {
                p50: 1e6 / ops,
                p99,
                ..Latency::default()
            },
            reads_found: None,
            counters: None,
            diagnostics: Some(Diagnostics {
                block_cache_hit_rate: Some(hit * 0.95),
                bloom_usefulness: filter.then_some(0.9),
                stall_share: Some(0.0),
                l0_files: 2,
                ..Diagnostics::default()
            }),
            size_on_disk: 0,
            cpu_seconds: None,
            peak_rss_bytes: None,
            fill_seconds: 0.0,
            confinement: None,
        })
    }
}

pub(crate) fn settings(kind: Kind, iterations: usize, refine: bool) -> Settings {
    let mut w = Workload::new(kind);
    (w.num, w.value_size, w.threads) = (300_000, 400, 2);
    Settings {
        goal: Default::default(),
        workload: w,
        base_file: None,
        iterations,
        time_budget_secs: None,
        repeats: 3,
        confirm_repeats: 2,
        min_effect: 0.03,
        patience: 99,
        memory_budget: 4 << 30,
        allow_unsafe: false,
        max_changes: 6,
        reasoning_chars: 200,
        backend: "test".into(),
        model: None,
        seed: 7,
        hints: HintLevel::Knowledge,
        samples: 1,
        refine,
        max_rounds: 0,
        search: false,
        search_method: Default::default(),
    }
}

pub(crate) fn run(
    s: Settings,
    engine: &FakeEngine,
    proposer: &mut dyn Proposer,
    out: &Path,
) -> Vec<Iteration> {
    let work = tempfile::tempdir().unwrap();
    let t = Tuner {
        past: None,
        settings: s,
        out: out.to_path_buf(),
        engine,
        work_dir: Some(work.path().to_path_buf()),
        progress: &Quiet,
        proposer_reason: "test".into(),
        baseline: None,
    };
    t.start(proposer).unwrap();
    journal::load(out)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r {
            Record::Iteration(it) => Some(*it),
            _ => None,
        })
        .collect()
}

/// Replies with scripted JSON texts, one list per call; records the notes it was given.
pub(crate) struct Scripted {
    pub(crate) calls: Vec<Vec<&'static str>>,
    pub(crate) at: usize,
    pub(crate) notes: Vec<Option<String>>,
}

impl Scripted {
    /// A model whose turn N replies with `calls[N]` (the last one again after the end).
    pub(crate) fn new(calls: Vec<Vec<&'static str>>) -> Scripted {
        Scripted {
            calls,
            at: 0,
            notes: Vec::new(),
        }
    }
}

impl Proposer for Scripted {
    fn name(&self) -> String {
        "scripted".into()
    }
    fn propose(&mut self, ctx: &Context, _t: &mut dyn FnMut(&str)) -> anyhow::Result<Proposal> {
        self.notes.push(ctx.note.map(str::to_string));
        let texts = self.calls[self.at.min(self.calls.len() - 1)].clone();
        self.at += 1;
        let mut p = Proposal::single(Reply::json(texts[0].to_string()));
        p.replies = texts.iter().map(|t| Reply::json(t.to_string())).collect();
        Ok(p)
    }
}

#[test]
fn a_configuration_is_never_measured_twice_and_repeats_are_asked_again() {
    let filter = r#"{"reasoning": "no filter", "changes": [{"table.filter_bits_per_key": 10}]}"#;
    let noop = r#"{"reasoning": "nothing", "changes": [{"max_background_jobs": 2}]}"#;
    let cache =
        r#"{"reasoning": "cache → 128 MiB", "changes": [{"table.block_cache_size": "128 MiB"}]}"#;
    // 1: the filter, kept. 2: the filter again (now the current value) and a default: no-ops,
    // nothing benchmarked, not asked again. 3: a new value.
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let mut p = Scripted::new(vec![vec![filter], vec![filter, noop], vec![cache]]);
    let its = run(
        settings(Kind::ReadRandom, 3, false),
        &engine,
        &mut p,
        dir.path(),
    );
    assert_eq!(its.len(), 3);
    assert_eq!(
        its[0].decision,
        Decision::Accepted,
        "{:?}",
        its[0].comparison
    );
    assert_eq!(its[1].decision, Decision::NoChange);
    assert!(its[1].candidate.is_none());
    assert_eq!(its[1].replies.noop, 2, "{:?}", its[1].replies);
    assert_eq!(its[1].replies.asks, 1);
    assert!(its[2].changes.contains_key("table.block_cache_size"));

    // A proposer that only repeats a measured configuration: asked three times, the last two
    // with a note saying so, then the iteration is a Repeat and nothing is benchmarked.
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let bits16 = r#"{"reasoning": "x", "changes": [{"table.filter_bits_per_key": 16}]}"#;
    let mut p = Scripted::new(vec![vec![bits16]]);
    let mut s = settings(Kind::ReadRandom, 2, false);
    s.min_effect = 10.0; // nothing is ever kept: the best stays the start
    let its = run(s, &engine, &mut p, dir.path());
    assert_eq!(its[0].decision, Decision::Rejected);
    assert_eq!(its[1].decision, Decision::Repeat, "{:?}", its[1]);
    assert!(its[1].candidate.is_none());
    assert_eq!(its[1].replies.asks, 3);
    assert_eq!(its[1].replies.repeated, 3);
    assert_eq!(p.notes[1], None);
    assert!(
        p.notes[2]
            .as_deref()
            .is_some_and(|n| n.contains("already measured"))
    );
    let runs = engine.runs();
    let bits: Vec<usize> = runs
        .iter()
        .filter(|(k, _)| k.contains("filter_bits"))
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(
        bits,
        [3],
        "the 16-bit configuration ran in one iteration only: {runs:?}"
    );
}

#[test]
fn a_kept_numeric_change_is_refined_by_measurement() {
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    let mut p = Scripted::new(vec![
        vec![r#"{"reasoning": "smaller memtables", "changes": [{"write_buffer_size": "32 MiB"}]}"#],
        vec![r#"{"reasoning": "pipelining", "changes": [{"enable_pipelined_write": true}]}"#],
    ]);
    let its = run(
        settings(Kind::FillRandom, 4, true),
        &engine,
        &mut p,
        dir.path(),
    );
    let wb = |it: &Iteration| it.changes.get("write_buffer_size").cloned();
    // 64 -> 32 MiB kept (the fake peaks at 16 MiB); refine: 16 MiB kept; refine: 8 MiB not kept
    // (a 2x step: no bisection); then the proposer again.
    assert_eq!(its[0].decision, Decision::Accepted);
    assert_eq!(its[1].proposer, "refine");
    assert_eq!(wb(&its[1]).as_deref(), Some("16777216"));
    assert_eq!(
        its[1].decision,
        Decision::Accepted,
        "{:?}",
        its[1].comparison
    );
    assert_eq!(its[2].proposer, "refine");
    assert_eq!(wb(&its[2]).as_deref(), Some("8388608"));
    assert_eq!(its[2].decision, Decision::Rejected);
    assert_eq!(its[3].proposer, "scripted");
    assert!(its[3].changes.contains_key("enable_pipelined_write"));
    assert_eq!(
        its[1]
            .changes_from
            .get("write_buffer_size")
            .map(String::as_str),
        Some("33554432")
    );
    // Without --refine the proposer is asked every time.
    let dir = tempfile::tempdir().unwrap();
    p.at = 0;
    let its = run(
        settings(Kind::FillRandom, 2, false),
        &FakeEngine::new(),
        &mut p,
        dir.path(),
    );
    assert_eq!(its.len(), 2);
    assert!(its.iter().all(|it| it.proposer == "scripted"));
}

/// A language model that answers from a script and records what it was sent.
struct FakeLlm {
    replies: Vec<&'static str>,
    at: usize,
    seen: std::rc::Rc<RefCell<Vec<Vec<Message>>>>,
}

impl Llm for FakeLlm {
    fn name(&self) -> String {
        "fake-llm".into()
    }
    fn chat(
        &mut self,
        messages: &[Message],
        _c: Option<&mut dyn TokenConstraint>,
        _p: &GenParams,
        _t: &mut dyn FnMut(&str),
    ) -> anyhow::Result<Completion> {
        self.seen.borrow_mut().push(messages.to_vec());
        let text = self.replies[self.at % self.replies.len()].to_string();
        self.at += 1;
        Ok(Completion {
            text,
            prompt_tokens: 500,
            cached_tokens: 100,
            completion_tokens: 20,
            prefill_seconds: 0.1,
            decode_seconds: 0.2,
            finish: Finish::Eos,
        })
    }
}

#[test]
fn a_model_gets_the_state_prompt_and_the_reply_most_samples_agree_on_wins() {
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let a = r#"{"reasoning": "no filter", "changes": [{"table.filter_bits_per_key": 10}]}"#;
    let b = r#"{"reasoning": "cache", "changes": [{"table.block_cache_size": "256 MiB"}]}"#;
    let llm = FakeLlm {
        // Greedy says the cache; the two sampled replies agree on the filter.
        replies: vec![b, a, a],
        at: 0,
        seen: seen.clone(),
    };
    let mut p = LlmProposer::new(
        Box::new(llm),
        None,
        GenParams::default(),
        HintLevel::Knowledge,
        3,
    );
    let dir = tempfile::tempdir().unwrap();
    let its = run(
        settings(Kind::ReadRandom, 1, false),
        &FakeEngine::new(),
        &mut p,
        dir.path(),
    );
    let it = &its[0];
    assert!(
        it.changes.contains_key("table.filter_bits_per_key"),
        "{:?}",
        it.changes
    );
    assert_eq!(it.replies.replies, 3);
    assert_eq!(it.llm.as_ref().unwrap().samples, 3);
    assert!(
        it.notes.iter().any(|n| n.contains("picked reply 2 of 3")),
        "{:?}",
        it.notes
    );
    // The prompt measures before it asks, in plain words, with hints and a focused list.
    let prompt = &seen.borrow()[0][1].content;
    for piece in [
        "Measured now:",
        "ops/s",
        "p99",
        "What the measurements show:",
        "point reads have no filter",
        "Hints (symptom",
        "table.filter_bits_per_key 10",
        "Options you may change",
        "table.filter_bits_per_key (",
        "0 → 6 | 10 | 16",
        "storage measured in the data folder",
    ] {
        assert!(prompt.contains(piece), "missing `{piece}` in:\n{prompt}");
    }
    assert!(!prompt.contains("write_buffer_size"), "{prompt}");
    assert!(prompt.len() < 6000, "{} characters", prompt.len());

    // `none`: no interpretation, no hints; a window of the catalog that moves every turn, so
    // every option is offered within a few turns and none is always on top.
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    let llm = FakeLlm {
        replies: vec![a],
        at: 0,
        seen: seen.clone(),
    };
    let mut p = LlmProposer::new(
        Box::new(llm),
        None,
        GenParams::default(),
        HintLevel::None,
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    run(
        settings(Kind::ReadRandom, 7, false),
        &FakeEngine::new(),
        &mut p,
        dir.path(),
    );
    let seen = seen.borrow();
    let prompt = &seen[0][1].content;
    assert!(prompt.contains("Measured now:"), "{prompt}");
    assert!(!prompt.contains("What the measurements show") && !prompt.contains("Hints"));
    let offered = |prompt: &str| -> Vec<String> {
        let list = prompt.split("Options you may change").nth(1).unwrap();
        list.lines()
            .filter_map(|l| l.strip_prefix("- "))
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    // A window's options without a value left to try (none here) drop out: at most a window.
    let first = offered(prompt);
    assert!(
        (lsmtune::tune::prompt::WINDOW / 2..=lsmtune::tune::prompt::WINDOW).contains(&first.len()),
        "{prompt}"
    );
    let second = offered(&seen[1][1].content);
    assert_ne!(first, second, "the window did not move");
    let catalog = lsmtune::options::catalog().unwrap();
    let proposable = lsmtune::grammar::schema::proposable_keys(
        catalog,
        &lsmtune::grammar::schema::SchemaOptions {
            max_changes: 6,
            allow_unsafe: false,
            reasoning_chars: 200,
        },
    );
    let rounds = proposable.len().div_ceil(lsmtune::tune::prompt::WINDOW);
    assert!(seen.len() >= rounds, "{} prompts", seen.len());
    let mut all: std::collections::BTreeSet<String> = Default::default();
    for m in &seen[..rounds] {
        all.extend(offered(&m[1].content));
    }
    // One round of windows offers (nearly) the whole catalog, not the same top options.
    assert!(
        all.len() * 10 >= proposable.len() * 8,
        "{} of {} options offered in {rounds} turns",
        all.len(),
        proposable.len()
    );
}

#[test]
fn the_prompt_reports_what_was_tried_and_stops_offering_it() {
    let dir = tempfile::tempdir().unwrap();
    let seen = std::rc::Rc::new(RefCell::new(Vec::new()));
    // 6 bits is within what the fake rewards (>= 5) but then 16 is offered, not 6 again...
    let llm = FakeLlm {
        replies: vec![
            r#"{"reasoning": "x", "changes": [{"table.block_size": "16 KiB"}]}"#,
            r#"{"reasoning": "y", "changes": [{"table.filter_bits_per_key": 10}]}"#,
        ],
        at: 0,
        seen: seen.clone(),
    };
    let mut p = LlmProposer::new(
        Box::new(llm),
        None,
        GenParams::default(),
        HintLevel::Knowledge,
        1,
    );
    let its = run(
        settings(Kind::ReadRandom, 2, false),
        &FakeEngine::new(),
        &mut p,
        dir.path(),
    );
    assert_eq!(its[0].decision, Decision::Rejected);
    let second = &seen.borrow()[1][1].content;
    assert!(
        second.contains("Tried so far") && second.contains("table.block_size: 16 KiB → "),
        "{second}"
    );
    assert!(second.contains("not kept"), "{second}");
    // 16 KiB alone did not help: it is no longer offered.
    let line = second
        .lines()
        .find(|l| l.starts_with("- table.block_size ("))
        .unwrap();
    assert!(!line.contains("16 KiB"), "{line}");
    // The reply to the second turn was measured and kept.
    assert_eq!(its[1].decision, Decision::Accepted);
    // And the journal can be summarised with the new fields.
    let _ = Config::new(OptionsDoc::read(&dir.path().join("OPTIONS-tuned.ini")).unwrap());
}

/// A kill (or a full disk) can cut the journal's last line anywhere, even inside a UTF-8
/// character. Whatever the cut, `resume` must load what was acknowledged, write its next record
/// on a line of its own, and finish; the resumed journal loads whole.
#[test]
fn a_journal_cut_anywhere_in_its_last_lines_resumes_and_finishes() {
    let filter =
        r#"{"reasoning": "no filter → add one", "changes": [{"table.filter_bits_per_key": 10}]}"#;
    let cache =
        r#"{"reasoning": "cache → 128 MiB", "changes": [{"table.block_cache_size": "128 MiB"}]}"#;
    let script = || Scripted::new(vec![vec![filter], vec![cache]]);
    let dir = tempfile::tempdir().unwrap();
    let engine = FakeEngine::new();
    run(
        settings(Kind::ReadRandom, 2, false),
        &engine,
        &mut script(),
        dir.path(),
    );
    let path = dir.path().join(journal::FILE);
    let full = std::fs::read(&path).unwrap();
    let ends: Vec<usize> = full
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i + 1)
        .collect();
    assert!(ends.len() >= 4, "start, 2 iterations, end");
    // From the start of the last iteration record to the end of the file. Both lines are long
    // (8-9 KB each), so each is walked byte by byte near its ends, inside every multi-byte
    // UTF-8 character, and with a stride between.
    let last_it = ends[ends.len() - 3];
    let end_rec = ends[ends.len() - 2];
    let mut cuts = std::collections::BTreeSet::new();
    let mut inside_a_character = 0;
    for (from, to) in [(last_it, end_rec), (end_rec, full.len())] {
        cuts.extend((from..to).step_by(29));
        cuts.extend(from..(from + 64).min(to));
        cuts.extend(to.saturating_sub(64).max(from)..to);
        // A UTF-8 continuation byte: cutting before it splits a character.
        let inside = (from..to).filter(|&i| full[i] & 0xC0 == 0x80);
        for i in inside {
            cuts.insert(i);
            inside_a_character += 1;
        }
    }
    assert!(
        inside_a_character > 0,
        "the last lines hold no multi-byte character to cut inside"
    );
    let work = tempfile::tempdir().unwrap();
    for cut in cuts {
        std::fs::write(&path, &full[..cut]).unwrap();
        let t = Tuner {
            past: None,
            settings: settings(Kind::ReadRandom, 2, false),
            out: dir.path().to_path_buf(),
            engine: &engine,
            work_dir: Some(work.path().to_path_buf()),
            progress: &Quiet,
            proposer_reason: "test".into(),
            baseline: None,
        };
        t.resume(&mut script())
            .unwrap_or_else(|e| panic!("cut at byte {cut}: {e:#}"));
        let recs = journal::load(dir.path()).unwrap_or_else(|e| panic!("cut at {cut}: {e:#}"));
        assert!(
            matches!(recs.last(), Some(Record::End { .. })),
            "cut at {cut}"
        );
        let its = recs
            .iter()
            .filter(|r| matches!(r, Record::Iteration(_)))
            .count();
        assert_eq!(its, 2, "cut at {cut}");
        let text = std::fs::read(&path).unwrap();
        assert!(
            // Ends a line, or is untouched (a whole end record that only lost its newline).
            (text.ends_with(b"\n") || text == full[..cut])
                && !text.windows(2).any(|w| w == b"\n\n"),
            "cut at {cut}: {}",
            String::from_utf8_lossy(&text[text.len().saturating_sub(300)..])
        );
    }
}

#[test]
fn the_objective_and_the_constraints_decide_what_is_kept() {
    use lsmtune::tune::objective::{Constraint, Goal, Metric};
    let sync = r#"{"reasoning": "smooth I/O", "changes": [{"bytes_per_sync": 1048576}]}"#;
    let decide = |goal: Goal| {
        let engine = FakeEngine {
            tradeoff: true,
            ..FakeEngine::new()
        };
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(Kind::FillRandom, 1, false);
        s.goal = goal;
        let mut p = Scripted::new(vec![vec![sync]]);
        let its = run(s, &engine, &mut p, dir.path());
        assert_eq!(its.len(), 1);
        let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        (its[0].clone(), report)
    };
    // Throughput: 10% slower, not kept.
    let (it, _) = decide(Goal::default());
    assert_eq!(it.decision, Decision::Rejected);
    // p99: 2.2x shorter, kept; the report says so, with every metric.
    let (it, report) = decide(Goal {
        objective: Metric::P99,
        constraints: vec![],
    });
    assert_eq!(it.decision, Decision::Accepted, "{:?}", it.comparison);
    assert!(it.comparison.unwrap().effect > 1.0);
    assert!(report.contains("Objective: p99"), "{report}");
    assert!(report.contains("| p99 (objective) |"), "{report}");
    // The same gain, but a throughput floor the candidate breaks: not kept.
    let (it, _) = decide(Goal {
        objective: Metric::P99,
        constraints: vec![Constraint::parse(Metric::Throughput, "115000").unwrap()],
    });
    assert_eq!(it.decision, Decision::Rejected);
    assert!(!it.constraints.is_empty() && !it.constraints[0].1.met());
    // Throughput objective, but the start breaks a p99 limit the candidate meets: kept for
    // that alone, although it is slower.
    let (it, report) = decide(Goal {
        objective: Metric::Throughput,
        constraints: vec![Constraint::parse(Metric::P99, "30us").unwrap()],
    });
    assert_eq!(it.decision, Decision::Accepted);
    assert!(it.comparison.unwrap().effect < 0.0);
    assert!(
        report.contains("Constraint p99 <= 30.0 µs: met"),
        "{report}"
    );
}

/// The loop's stopping and keeping rules, each on the fake engine: patience ends a run of
/// iterations without a gain, the time budget ends the tune, a large gain is kept at the first
/// look, and a start that nothing beats is what OPTIONS-tuned.ini holds.
#[test]
fn patience_time_budget_confirmation_and_keeping_the_start() {
    let useless = r#"{"reasoning": "noise", "changes": [{"stats_dump_period_sec": 300}]}"#;
    let other = r#"{"reasoning": "noise", "changes": [{"stats_dump_period_sec": 120}]}"#;
    let third = r#"{"reasoning": "noise", "changes": [{"stats_dump_period_sec": 60}]}"#;
    let script = || Scripted::new(vec![vec![useless], vec![other], vec![third], vec![useless]]);
    let engine = FakeEngine::new();
    // Patience 2: two iterations without a gain end the tune though 8 were allowed.
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(Kind::FillRandom, 8, false);
    s.patience = 2;
    let its = run(s, &engine, &mut script(), dir.path());
    assert_eq!(its.len(), 2);
    assert!(its.iter().all(|i| i.decision == Decision::Rejected));
    let records = journal::load(dir.path()).unwrap();
    let Some(Record::End { reason, .. }) = records.last() else {
        panic!("no end record")
    };
    assert!(reason.contains("converged"), "{reason}");
    // Nothing beat the start: the tuned file is the start.
    let body = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        body(&dir.path().join("OPTIONS-base.ini")),
        body(&dir.path().join("OPTIONS-tuned.ini"))
    );

    // A time budget already spent: the baseline is measured, no iteration starts.
    let dir = tempfile::tempdir().unwrap();
    let mut s = settings(Kind::FillRandom, 8, false);
    s.time_budget_secs = Some(1e-9);
    let its = run(s, &engine, &mut script(), dir.path());
    assert!(
        its.is_empty(),
        "{} iterations ran past the budget",
        its.len()
    );
    let records = journal::load(dir.path()).unwrap();
    let Some(Record::End { reason, .. }) = records.last() else {
        panic!("no end record")
    };
    assert!(reason.contains("time"), "{reason}");

    // A large real gain is significant at the sequential design's first look: kept after
    // --repeats rounds, without the extra rounds an undecided one would get.
    let filter = r#"{"reasoning": "filter", "changes": [{"table.filter_bits_per_key": 10}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let mut p = Scripted::new(vec![vec![filter]]);
    let its = run(
        settings(Kind::ReadRandom, 1, false),
        &engine,
        &mut p,
        dir.path(),
    );
    assert_eq!(its[0].decision, Decision::Accepted);
    let cand = its[0].candidate.as_ref().unwrap();
    assert_eq!(cand.ops_per_sec.len(), 3, "decided at the first look");
    assert_eq!(its[0].rounds, 3);
}

/// Compare's best-so-far curves and its iterations-to-95% follow the tune's objective: a p99
/// tune that halves the tail shows a curve at start p99 / best p99, not at the (lower)
/// throughput ratio; a throughput tune of the same change stays at 1.
#[test]
fn compare_curves_follow_the_objective() {
    use lsmtune::compare::{self, ProposerSpec, Variant};
    use lsmtune::tune::objective::{Goal, Metric};
    let sync = r#"{"reasoning": "smooth I/O", "changes": [{"bytes_per_sync": 1048576}]}"#;
    let variant = Variant {
        spec: ProposerSpec::Expert,
        hints: None,
        search: false,
    };
    let curve = |objective: Metric| {
        let out = tempfile::tempdir().unwrap();
        let dir = compare::run_dir(out.path(), "fillrandom", &variant, 7);
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = settings(Kind::FillRandom, 1, false);
        s.goal = Goal {
            objective,
            constraints: vec![],
        };
        let engine = FakeEngine {
            tradeoff: true,
            ..FakeEngine::new()
        };
        let mut p = Scripted::new(vec![vec![sync]]);
        let its = run(s, &engine, &mut p, &dir);
        let row = compare::row(out.path(), "fillrandom", &variant, &[7]).unwrap();
        assert_eq!(row.seeds, 1);
        assert_eq!(row.objective, objective);
        (its, row)
    };
    let (its, row) = curve(Metric::P99);
    assert_eq!(its[0].decision, Decision::Accepted);
    let c = &row.curves[0];
    assert_eq!(c.len(), 2);
    assert_eq!(c[0], 1.0);
    // The fake engine cuts p99 to 40% (2.5x) and costs 10% of the throughput.
    assert!((2.0..3.0).contains(&c[1]), "{c:?}");
    assert_eq!(row.iterations_to_95, 1.0);
    assert!(row.gain_mean > 1.0, "{}", row.gain_mean);
    // A row whose tunes all failed (no journal) does not relabel the table.
    let failed = compare::Row {
        seeds: 0,
        objective: Metric::Throughput,
        ..row.clone()
    };
    let table = compare::markdown(&[failed.clone(), row.clone()]);
    assert!(table.contains("| p99 gain (95% CI) |"), "{table}");
    // The grammar's cost: "-" where nothing was decoded under it (the expert here), else the
    // row's mask times and forced tokens.
    assert!(
        table.contains("| grammar mask p50/p99 us | forced tokens |"),
        "{table}"
    );
    assert!(
        table.lines().nth(2).unwrap().ends_with("| - | - |"),
        "{table}"
    );
    let masked = compare::Row {
        mask: Some(lsmtune::tune::ask::MaskStats {
            masks: 400,
            p50_us: 25.0,
            p99_us: 50.4,
            forced_tokens: 25,
        }),
        ..row.clone()
    };
    let table = compare::markdown(std::slice::from_ref(&masked));
    assert!(
        table.lines().nth(2).unwrap().ends_with("| 25/50 | 25 |"),
        "{table}"
    );
    assert!(
        compare::csv(&[masked])
            .lines()
            .nth(1)
            .unwrap()
            .ends_with(",25.0,50.4,25"),
        "the CSV has them too"
    );
    let csv = compare::csv(&[failed, row.clone()]);
    assert!(
        csv.lines()
            .skip(1)
            .all(|l| l.split(',').nth(17) == Some("p99")),
        "{csv}"
    );
    let (its, row) = curve(Metric::Throughput);
    assert_eq!(its[0].decision, Decision::Rejected);
    assert_eq!(row.curves[0], [1.0, 1.0]);
    assert_eq!(row.iterations_to_95, 0.0);
}
