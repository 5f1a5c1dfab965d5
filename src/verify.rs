//! Does a tuned configuration's gain hold at production scale? A tune measures a data set that
//! fits in the page cache; production holds 100-10,000x more. Verification measures the tuned
//! configuration and its start side by side at a larger scale (more keys and operations:
//! `--scale 10x`; or a data size: `--dataset-size`), optionally in a worker held below the data
//! (`--worker-memory`) so reads go to the device, interleaved and paired as a tune's final check
//! is, and says whether the gain the tune measured grows, holds, shrinks, is not confirmed, or
//! reverses, with intervals.

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::bench::stats::{Comparison, Summary, Verdict};
use crate::bench::{BenchEngine, Measurement, Sample, Workload};
use crate::options::ini::OptionsDoc;
use crate::tune::objective::Goal;

/// How much larger than the tune the verification runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Scale {
    /// The tune's keys and operations times this.
    Factor(f64),
    /// Keys sized so the data (keys x (key + value size)) is about this many bytes.
    DataBytes(u64),
}

impl Scale {
    /// `10x`, `10`, `2.5x`: a factor of at least 1 (a scale-down verifies nothing).
    pub fn parse_factor(text: &str) -> Result<Scale, String> {
        let t = text.trim();
        let n: f64 = t
            .strip_suffix(['x', 'X'])
            .unwrap_or(t)
            .parse()
            .map_err(|_| format!("`{text}` is not a scale: write it as 10x (or 2.5x)"))?;
        if !(1.0..=100_000.0).contains(&n) {
            return Err(format!(
                "a scale of {n} is outside 1x..100000x (verification runs larger than the tune)"
            ));
        }
        Ok(Scale::Factor(n))
    }

    /// The workload at this scale.
    pub fn apply(self, w: &Workload) -> Result<Workload> {
        if w.trace.is_some() {
            bail!("a trace replay cannot be scaled: it replays the keys it recorded");
        }
        let mut out = w.clone();
        match self {
            Scale::Factor(f) => {
                out.num = ((w.num as f64) * f).round().max(1.0) as u64;
                out.ops = w.ops.map(|o| ((o as f64) * f).round().max(1.0) as u64);
            }
            Scale::DataBytes(bytes) => {
                let per_key = (w.key_size + w.value_size).max(1) as u64;
                out.num = (bytes / per_key).max(1);
                // Operations grow with the key space, as they do when --num is larger.
                out.ops = w
                    .ops
                    .map(|o| ((o as f64) * out.num as f64 / w.num.max(1) as f64).round() as u64);
            }
        }
        Ok(out)
    }

    pub fn describe(self, tuned: &Workload) -> String {
        match self {
            Scale::Factor(f) => format!(
                "{f}x the tune's keys ({} -> {})",
                tuned.num,
                ((tuned.num as f64) * f).round() as u64
            ),
            Scale::DataBytes(b) => format!(
                "data of {} (the tune had {})",
                crate::options::value::human_bytes(b as i64),
                crate::options::value::human_bytes(tuned.data_bytes() as i64)
            ),
        }
    }
}

/// What happened to the tune's gain at scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Better than the start, and the whole interval above the tune's estimate.
    Grows,
    /// Better than the start, the tune's estimate inside the interval (or no tune to compare).
    Holds,
    /// Better than the start, but the whole interval below the tune's estimate.
    Shrinks,
    /// No significant difference from the start at scale.
    NotConfirmed,
    /// Significantly worse than the start at scale: do not ship it.
    Reverses,
    /// Runs of the tuned configuration failed at scale where the start's did not (killed at a
    /// memory limit, timed out): whatever the comparison of the runs that finished says, it does
    /// not run there as it is.
    TunedFails,
    /// Too many runs failed to compare.
    Failed,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Grows => "the gain grows at scale",
            Outcome::Holds => "the gain holds at scale",
            Outcome::Shrinks => "the gain shrinks at scale",
            Outcome::NotConfirmed => "the gain is not confirmed at scale",
            Outcome::Reverses => "the gain reverses at scale: the tuned configuration is worse",
            Outcome::TunedFails => {
                "the tuned configuration fails at scale where the start does not: do not ship it as it is"
            }
            Outcome::Failed => "could not be compared: runs failed",
        })
    }
}

/// Judge the comparison at scale against the tune's own (None: no tune to compare with).
pub fn outcome(at_scale: Option<&Comparison>, tuned: Option<&Comparison>) -> Outcome {
    let Some(c) = at_scale else {
        return Outcome::Failed;
    };
    match c.verdict {
        Verdict::Worse => Outcome::Reverses,
        Verdict::NoSignificantDifference => Outcome::NotConfirmed,
        Verdict::Better => match tuned {
            Some(t) if c.effect_high < t.effect => Outcome::Shrinks,
            Some(t) if c.effect_low > t.effect => Outcome::Grows,
            _ => Outcome::Holds,
        },
    }
}

/// [`outcome`], overruled when the tuned configuration's runs failed more often than the
/// start's: a configuration that is killed at the memory limit is not a gain to ship.
pub fn outcome_of_runs(
    at_scale: Option<&Comparison>,
    tuned: Option<&Comparison>,
    start_failures: usize,
    tuned_failures: usize,
) -> Outcome {
    if tuned_failures > start_failures {
        Outcome::TunedFails
    } else {
        outcome(at_scale, tuned)
    }
}

/// What to verify and how.
pub struct Plan<'a> {
    pub engine: &'a dyn BenchEngine,
    /// The tune's workload, and the one at scale.
    pub tuned_workload: Workload,
    pub workload: Workload,
    pub scale: String,
    /// Interleaved rounds (each measures both configurations).
    pub rounds: usize,
    pub min_effect: f64,
    pub goal: Goal,
    pub seed: u64,
    pub work_dir: Option<std::path::PathBuf>,
    pub worker_memory: Option<u64>,
    /// The tune's final check, when verifying a tune's folder.
    pub tune_comparison: Option<Comparison>,
}

/// The verification's result, as `verify --json` writes it and a tune's report shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verification {
    pub workload: Workload,
    pub tuned_workload: Workload,
    pub scale: String,
    pub data_bytes: u64,
    pub worker_memory: Option<u64>,
    /// How the runs' memory was confined, as the worker reported it.
    pub confinement: Option<String>,
    pub rounds: usize,
    pub objective: String,
    pub start_ops: Option<Summary>,
    pub tuned_ops: Option<Summary>,
    pub start_p99_us: Option<f64>,
    pub tuned_p99_us: Option<f64>,
    pub comparison: Option<Comparison>,
    pub tune_comparison: Option<Comparison>,
    pub outcome: Outcome,
    pub failures: Vec<String>,
    pub elapsed_seconds: f64,
}

/// Measure `start` and `tuned` side by side at the plan's scale; `on_repeat(label, round,
/// ops/s)` after each run.
pub fn run(
    plan: &Plan,
    start: &OptionsDoc,
    tuned: &OptionsDoc,
    on_repeat: &mut dyn FnMut(&str, usize, Option<f64>),
) -> Verification {
    let began = std::time::Instant::now();
    let labels = ["start", "tuned"];
    let mut samples = crate::bench::measure_interleaved(
        plan.engine,
        &plan.workload,
        plan.work_dir.as_deref(),
        &[start, tuned],
        plan.rounds,
        plan.seed,
        &mut |i, r, outcome: &Result<Measurement, crate::bench::RunFailure>| {
            on_repeat(labels[i], r, outcome.as_ref().ok().map(|m| m.ops_per_sec))
        },
    );
    let b: Sample = samples.pop().unwrap_or_default();
    let a: Sample = samples.pop().unwrap_or_default();
    let comparison = crate::tune::judge(&a, &b, plan.min_effect, &plan.goal);
    let failures = a
        .failures
        .iter()
        .map(|f| format!("start: {f}"))
        .chain(b.failures.iter().map(|f| format!("tuned: {f}")))
        .collect();
    Verification {
        workload: plan.workload.clone(),
        tuned_workload: plan.tuned_workload.clone(),
        scale: plan.scale.clone(),
        data_bytes: plan.workload.data_bytes(),
        worker_memory: plan.worker_memory,
        confinement: a
            .runs
            .iter()
            .chain(&b.runs)
            .find_map(|m| m.confinement.clone()),
        rounds: plan.rounds,
        objective: plan.goal.objective.to_string(),
        start_ops: Summary::of(&a.ops_per_sec),
        tuned_ops: Summary::of(&b.ops_per_sec),
        start_p99_us: a.p99_us,
        tuned_p99_us: b.p99_us,
        outcome: outcome_of_runs(
            comparison.as_ref(),
            plan.tune_comparison.as_ref(),
            a.failures.len(),
            b.failures.len(),
        ),
        comparison,
        tune_comparison: plan.tune_comparison,
        failures,
        elapsed_seconds: began.elapsed().as_secs_f64(),
    }
}

fn pct(c: &Comparison) -> String {
    format!(
        "{:+.1}% ({:+.1}% to {:+.1}%)",
        c.effect * 100.0,
        c.effect_low * 100.0,
        c.effect_high * 100.0
    )
}

fn ops(s: &Option<Summary>) -> String {
    s.as_ref()
        .map_or("-".into(), |s| format!("{:.0} ± {:.0}", s.mean, s.ci95))
}

/// The verdict in a few lines (what `verify` prints).
pub fn text(v: &Verification) -> String {
    let mut t = format!("{}\n", v.outcome);
    if let Some(c) = &v.comparison {
        t.push_str(&format!(
            "  at scale, tuned vs start, {}: {} [{}]\n",
            v.objective,
            pct(c),
            c.verdict
        ));
    }
    if let Some(c) = &v.tune_comparison {
        t.push_str(&format!("  in the tune:                {}\n", pct(c)));
    }
    t.push_str(&format!(
        "  start {} ops/s, tuned {} ops/s; {} rounds, {}, {:.0} s\n",
        ops(&v.start_ops),
        ops(&v.tuned_ops),
        v.rounds,
        v.scale,
        v.elapsed_seconds
    ));
    if let Some(how) = &v.confinement {
        t.push_str(&format!("  memory: {how}\n"));
    }
    for f in &v.failures {
        t.push_str(&format!("  failed run: {f}\n"));
    }
    t
}

/// A report section (markdown) for a tune's report.md.
pub fn markdown(v: &Verification) -> String {
    let w = &v.workload;
    let mut m = format!(
        "\n## At scale\n\n**{}.** {}: {} keys of {} + {} bytes ({} of data), {} threads{}, {} interleaved rounds.\n\n",
        v.outcome,
        v.scale,
        w.num,
        w.key_size,
        w.value_size,
        crate::options::value::human_bytes(v.data_bytes as i64),
        w.threads,
        v.confinement
            .as_ref()
            .map(|c| format!(", memory: {c}"))
            .unwrap_or_default(),
        v.rounds
    );
    m.push_str("| | start | tuned | tuned vs start (95% interval) |\n|---|---|---|---|\n");
    let row = |name: &str, c: &Option<Comparison>, a: String, b: String| {
        format!(
            "| {name} | {a} | {b} | {} |\n",
            c.as_ref().map_or("-".into(), pct)
        )
    };
    m.push_str(&row(
        "in the tune",
        &v.tune_comparison,
        String::new(),
        String::new(),
    ));
    m.push_str(&row(
        "at scale",
        &v.comparison,
        format!("{} ops/s", ops(&v.start_ops)),
        format!("{} ops/s", ops(&v.tuned_ops)),
    ));
    if let (Some(a), Some(b)) = (v.start_p99_us, v.tuned_p99_us) {
        m.push_str(&format!(
            "\np99 at scale: {a:.1} µs (start), {b:.1} µs (tuned).\n"
        ));
    }
    for f in &v.failures {
        m.push_str(&format!("\nFailed run: {f}\n"));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(effect: f64, low: f64, high: f64, verdict: Verdict) -> Comparison {
        Comparison {
            verdict,
            effect,
            effect_low: low,
            effect_high: high,
            p_value: 0.01,
            df: 4.0,
        }
    }

    #[test]
    fn the_outcome_compares_the_interval_at_scale_with_the_tunes_estimate() {
        let tune = c(0.50, 0.40, 0.60, Verdict::Better);
        let at = |e, l, h, v| outcome(Some(&c(e, l, h, v)), Some(&tune));
        assert_eq!(at(0.45, 0.30, 0.60, Verdict::Better), Outcome::Holds);
        assert_eq!(at(0.20, 0.10, 0.30, Verdict::Better), Outcome::Shrinks);
        assert_eq!(at(1.50, 1.00, 2.00, Verdict::Better), Outcome::Grows);
        assert_eq!(
            at(0.05, -0.10, 0.20, Verdict::NoSignificantDifference),
            Outcome::NotConfirmed
        );
        assert_eq!(at(-0.30, -0.40, -0.20, Verdict::Worse), Outcome::Reverses);
        assert_eq!(outcome(None, Some(&tune)), Outcome::Failed);
        // Without a tune to compare with, better is "holds".
        assert_eq!(
            outcome(Some(&c(0.2, 0.1, 0.3, Verdict::Better)), None),
            Outcome::Holds
        );
    }

    #[test]
    fn tuned_runs_that_fail_where_the_start_does_not_overrule_the_comparison() {
        let better = c(1.0, 0.5, 1.5, Verdict::Better);
        assert_eq!(
            outcome_of_runs(Some(&better), None, 0, 2),
            Outcome::TunedFails
        );
        assert_eq!(outcome_of_runs(Some(&better), None, 2, 2), Outcome::Holds);
        assert_eq!(outcome_of_runs(None, None, 4, 0), Outcome::Failed);
    }

    #[test]
    fn a_scale_multiplies_keys_and_operations_or_sizes_the_data() {
        let mut w = Workload::new(crate::bench::Kind::ReadRandom);
        w.num = 300_000;
        w.key_size = 16;
        w.value_size = 400;
        w.ops = Some(50_000);
        let s = Scale::parse_factor("10x").unwrap().apply(&w).unwrap();
        assert_eq!((s.num, s.ops), (3_000_000, Some(500_000)));
        assert_eq!(Scale::parse_factor("2.5").unwrap(), Scale::Factor(2.5));
        for bad in ["0.5x", "ten", "0x", "-3x"] {
            assert!(Scale::parse_factor(bad).is_err(), "{bad}");
        }
        let s = Scale::DataBytes(416 << 20).apply(&w).unwrap();
        assert_eq!(s.num, (416u64 << 20) / 416);
        assert_eq!(s.data_bytes(), (416u64 << 20) / 416 * 416);
    }
}
