//! Repeated measurements of a configuration: the one [`Sample`] type that `bench`, the tuner
//! (its journal) and compare's shared baselines use, and the one loop that measures
//! configurations interleaved over rounds, each repeat in a fresh folder with its own seed.
//!
//! A sample keeps every successful repeat's whole [`Measurement`] (throughput, latency
//! percentiles, RocksDB counters and diagnostics such as write amplification and stalls, size on
//! disk, CPU, memory), so an objective other than throughput can pick its metric; the ops/s
//! series and the averaged diagnostics and latencies stay alongside, as older journals hold only
//! those.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::engine::BenchEngine;
use super::measure::{Diagnostics, Measurement};
use super::rundir::run_dir;
use super::stats::Summary;
use super::worker::RunFailure;
use super::workload::Workload;
use crate::options::OptionsDoc;

/// A repeat that produced no measurement: the typed failure, or the text journals written
/// before failures were typed hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Failure {
    Typed(RunFailure),
    Text(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Typed(r) => r.fmt(f),
            Failure::Text(t) => f.write_str(t),
        }
    }
}

/// One configuration measured on one workload, over repeats.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Sample {
    /// ops/s of each successful repeat, in order (what comparisons judge).
    pub ops_per_sec: Vec<f64>,
    /// Diagnostics averaged over the repeats.
    pub diagnostics: Option<Diagnostics>,
    /// Mean p99 and p50 latency over the repeats, in microseconds.
    pub p99_us: Option<f64>,
    #[serde(default)]
    pub p50_us: Option<f64>,
    /// Repeats that failed.
    pub failures: Vec<Failure>,
    /// Each successful repeat's whole measurement, in the order of `ops_per_sec` (journals
    /// written before they were kept hold none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<Measurement>,
}

impl Sample {
    /// Add one repeat's outcome (the averages are brought up to date by [`Self::summarize`]).
    pub fn push(&mut self, outcome: Result<Measurement, RunFailure>) {
        match outcome {
            Ok(m) => {
                self.ops_per_sec.push(m.ops_per_sec);
                self.runs.push(m);
            }
            Err(f) => self.failures.push(Failure::Typed(f)),
        }
    }

    /// Recompute the averaged diagnostics and latencies from the runs.
    pub fn summarize(&mut self) {
        let diags: Vec<Diagnostics> = self.runs.iter().filter_map(|m| m.diagnostics).collect();
        let p99s: Vec<f64> = self.runs.iter().map(|m| m.latency_us.p99).collect();
        let p50s: Vec<f64> = self.runs.iter().map(|m| m.latency_us.p50).collect();
        self.diagnostics = merge_diagnostics(&diags);
        self.p99_us = (!p99s.is_empty()).then(|| mean(&p99s));
        self.p50_us = (!p50s.is_empty()).then(|| mean(&p50s));
    }

    /// Append another sample's repeats (more rounds of the same configuration); the averages
    /// are left as they were.
    pub fn extend(&mut self, more: Sample) {
        self.ops_per_sec.extend(more.ops_per_sec);
        self.failures.extend(more.failures);
        self.runs.extend(more.runs);
    }

    /// Mean ops/s (0 with no successful repeat).
    pub fn mean_ops(&self) -> f64 {
        mean(&self.ops_per_sec)
    }

    /// The failures in words, `; `-separated.
    pub fn failure_text(&self) -> String {
        self.failures
            .iter()
            .map(Failure::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Average diagnostics over several measurements.
pub fn merge_diagnostics(ds: &[Diagnostics]) -> Option<Diagnostics> {
    if ds.is_empty() {
        return None;
    }
    let avg = |f: &dyn Fn(&Diagnostics) -> Option<f64>| {
        let v: Vec<f64> = ds.iter().filter_map(f).collect();
        (!v.is_empty()).then(|| mean(&v))
    };
    Some(Diagnostics {
        stall_share: avg(&|d| d.stall_share),
        write_amplification: avg(&|d| d.write_amplification),
        block_cache_hit_rate: avg(&|d| d.block_cache_hit_rate),
        bloom_usefulness: avg(&|d| d.bloom_usefulness),
        bloom_false_positive_rate: avg(&|d| d.bloom_false_positive_rate),
        l0_files: (ds.iter().map(|d| d.l0_files).sum::<u64>() as f64 / ds.len() as f64).round()
            as u64,
        // The cause most runs reported.
        stall_cause: {
            let mut causes: Vec<_> = ds.iter().filter_map(|d| d.stall_cause).collect();
            causes.sort_by_key(|c| *c as u8);
            causes
                .chunk_by(|a, b| a == b)
                .max_by_key(|run| run.len())
                .map(|run| run[0])
        },
        compaction_cpu_share: avg(&|d| d.compaction_cpu_share),
    })
}

/// One run of `workload` in a fresh folder made (and removed) under `parent`.
pub fn measure_fresh(
    engine: &dyn BenchEngine,
    doc: &OptionsDoc,
    workload: &Workload,
    parent: Option<&Path>,
) -> Result<Measurement, RunFailure> {
    match run_dir(parent) {
        Ok(dir) => engine.measure(doc, workload, dir.path()),
        Err(e) => Err(RunFailure::Spawn {
            message: format!("cannot create a run folder: {e}"),
        }),
    }
}

/// Called after each repeat with the config's index, the round and the outcome.
pub type OnRepeat<'a> = dyn FnMut(usize, usize, &Result<Measurement, RunFailure>) + 'a;

/// Measure `configs` in turn on `workload`, `rounds` times (a, b, a, b, ...), each repeat in a
/// fresh folder under `parent` (None: the temp folder) with seed `seed + round`; one sample per
/// config. `on_repeat(config, round, outcome)` is called after each repeat. Stops early when a
/// stop (Ctrl-C, SIGTERM) was asked for.
pub fn measure_interleaved(
    engine: &dyn BenchEngine,
    workload: &Workload,
    parent: Option<&Path>,
    configs: &[&OptionsDoc],
    rounds: usize,
    seed: u64,
    on_repeat: &mut OnRepeat,
) -> Vec<Sample> {
    let mut samples = vec![Sample::default(); configs.len()];
    'rounds: for r in 0..rounds {
        for (i, doc) in configs.iter().enumerate() {
            if crate::interrupt::requested().is_some() {
                break 'rounds;
            }
            let mut w = workload.clone();
            w.seed = seed.wrapping_add(r as u64);
            let outcome = measure_fresh(engine, doc, &w, parent);
            on_repeat(i, r, &outcome);
            samples[i].push(outcome);
        }
    }
    for s in &mut samples {
        s.summarize();
    }
    samples
}

/// A workload measured `repeats` times, as `bench --json` writes it (and `--baseline` reads it):
/// a [`Sample`]'s repeats with the engine and workload they ran on and the ops/s summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRun {
    pub engine: String,
    pub workload: Workload,
    pub measurements: Vec<Measurement>,
    pub failures: Vec<Failure>,
    /// ops/s over the successful repeats.
    pub ops_per_sec: Option<Summary>,
}

impl BenchRun {
    /// The document of `sample`, measured by `engine` on `workload`.
    pub fn new(engine: String, workload: Workload, sample: Sample) -> BenchRun {
        BenchRun {
            engine,
            workload,
            ops_per_sec: Summary::of(&sample.ops_per_sec),
            measurements: sample.runs,
            failures: sample.failures,
        }
    }

    pub fn throughputs(&self) -> Vec<f64> {
        self.measurements.iter().map(|m| m.ops_per_sec).collect()
    }
}

/// Measure `repeats` times ([`measure_interleaved`] with one configuration), each repeat in a
/// fresh folder with seed `seed + repeat`. `on_repeat(i, outcome)` is called after each.
pub fn run_repeats(
    engine: &dyn BenchEngine,
    doc: &OptionsDoc,
    workload: &Workload,
    repeats: usize,
    parent: Option<&Path>,
    mut on_repeat: impl FnMut(usize, &Result<Measurement, RunFailure>),
) -> BenchRun {
    let sample = measure_interleaved(
        engine,
        workload,
        parent,
        &[doc],
        repeats,
        workload.seed,
        &mut |_, r, outcome| on_repeat(r, outcome),
    )
    .pop()
    .unwrap_or_default();
    BenchRun::new(engine.name(), workload.clone(), sample)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_journal_samples_still_read_and_new_ones_keep_every_run() {
        // A sample as journals before typed failures and per-run metrics wrote it.
        let old = r#"{"ops_per_sec": [1.0, 2.0], "diagnostics": null, "p99_us": 3.0,
            "failures": ["the run did not finish within 5 s and was stopped"]}"#;
        let s: Sample = serde_json::from_str(old).unwrap();
        assert_eq!(s.ops_per_sec, [1.0, 2.0]);
        assert_eq!(s.p50_us, None);
        assert!(s.runs.is_empty());
        assert_eq!(
            s.failure_text(),
            "the run did not finish within 5 s and was stopped"
        );
        // A typed failure reads back typed, with the same words.
        let mut t = Sample::default();
        t.push(Err(RunFailure::Timeout { seconds: 5.0 }));
        let back: Sample = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
        assert_eq!(back, t);
        assert!(matches!(back.failures[0], Failure::Typed(_)));
        assert_eq!(back.failure_text(), s.failure_text());
        // No runs: the field is left out, as before.
        assert!(!serde_json::to_string(&t).unwrap().contains("runs"));
    }
}
