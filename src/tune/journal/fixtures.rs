//! Journals made up for unit tests: settings, a start record with a baseline, iterations with a
//! measured effect, an end record with the final check. What the report and compare tests
//! build their plots and tables from, without running a tune.

use super::{Decision, Iteration, Record, Sample, Settings};
use crate::bench::Workload;
use crate::bench::stats::{Comparison, Verdict};
use crate::sysinfo::Facts;

/// Small settings of a readrandom tune with the expert.
pub fn settings() -> Settings {
    Settings {
        workload: Workload::new(crate::bench::Kind::ReadRandom),
        base_file: None,
        iterations: 2,
        time_budget_secs: None,
        repeats: 2,
        confirm_repeats: 1,
        min_effect: 0.03,
        patience: 3,
        memory_budget: 1 << 30,
        allow_unsafe: false,
        max_changes: 6,
        reasoning_chars: 400,
        backend: "expert".into(),
        model: None,
        seed: 1,
        hints: super::HintLevel::Knowledge,
        samples: 0,
        refine: true,
        goal: Default::default(),
        max_rounds: 8,
        search: false,
        search_method: Default::default(),
    }
}

/// Two runs at about `ops` ops/s.
pub fn sample(ops: f64) -> Sample {
    Sample {
        ops_per_sec: vec![ops, ops * 1.01],
        ..Sample::default()
    }
}

/// A comparison measuring `effect` (candidate / best - 1), its interval 4 points either way.
pub fn comparison(effect: f64) -> Comparison {
    Comparison {
        verdict: if effect > 0.03 {
            Verdict::Better
        } else {
            Verdict::NoSignificantDifference
        },
        effect,
        effect_low: effect - 0.04,
        effect_high: effect + 0.04,
        p_value: 0.01,
        df: 3.0,
    }
}

/// The start of a tune by `proposer` with `settings`, its baseline measured at `baseline` ops/s.
pub fn start(settings: Settings, proposer: &str, baseline: f64) -> Record {
    Record::Start {
        version: "0".into(),
        settings: Box::new(settings),
        facts: Facts::gather(std::path::Path::new("/"), "11.8.1"),
        rocksdb: "11.8.1".into(),
        base_notes: Vec::new(),
        baseline: sample(baseline),
        proposer: proposer.into(),
        proposer_reason: "a test".into(),
        past: None,
    }
}

/// Iteration `n`: a candidate measured at `candidate` ops/s, `effect` against the best of its
/// rounds, kept or not.
pub fn iteration(n: usize, candidate: f64, effect: f64, kept: bool) -> Iteration {
    Iteration {
        constraints: Vec::new(),
        iteration: n,
        proposer: "expert".into(),
        prompt: None,
        reply: None,
        llm: None,
        reasoning: None,
        proposed: 1,
        invalid: 0,
        changes: [("max_background_jobs".to_string(), format!("{}", n + 2))].into(),
        changes_from: Default::default(),
        corrections: Vec::new(),
        candidate_file: None,
        best: Some(sample(candidate / (1.0 + effect))),
        candidate: Some(sample(candidate)),
        comparison: Some(comparison(effect)),
        decision: if kept {
            Decision::Accepted
        } else {
            Decision::Rejected
        },
        failure: None,
        bench_seconds: 20.0,
        llm_seconds: 0.0,
        elapsed: 20.0 * n as f64,
        best_ops: candidate,
        notes: Vec::new(),
        replies: Default::default(),
        rounds: 3,
        stopped: None,
        failure_kind: None,
        mask: None,
    }
}

/// The end: the final check measured `effect` (tuned / start - 1); the start kept or not.
pub fn end(effect: f64, kept_base: bool) -> Record {
    Record::End {
        reason: "iteration budget spent".into(),
        final_base: sample(100_000.0),
        final_best: sample(100_000.0 * (1.0 + effect)),
        comparison: Some(comparison(effect)),
        kept_base,
        elapsed: 100.0,
    }
}
