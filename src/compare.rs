//! Compare mode for researchers: proposers × workloads × seeds, each a normal (resumable) tune
//! with the same workload definition, seeds and budgets, sharing one baseline measurement per
//! workload. This module holds the layout of a compare folder, the aggregation of finished
//! tunes into one table (Markdown, CSV, JSON), and (in [`plot`]) one plot: per workload, the
//! best so far vs iteration from same-run ratios, ending where the table does.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::bench::stats::Summary;
pub use crate::tune::backend::ProposerSpec;
use crate::tune::journal::{self, Decision, Record};
use crate::tune::objective::Metric;

pub mod plot;
pub mod shard;
pub use plot::plot;

/// A proposer of a compare run: the spec, and for model proposers the hint level it is asked
/// with (`--hints`) and whether a value search refines its kept choices (`--search`), both
/// ablation switches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub spec: ProposerSpec,
    pub hints: Option<crate::tune::prompt::HintLevel>,
    pub search: bool,
}

impl Variant {
    /// Every proposer × hint level × search switch (both apply to model proposers only).
    pub fn expand(
        specs: &[ProposerSpec],
        hints: &[crate::tune::prompt::HintLevel],
        searches: &[bool],
    ) -> Vec<Variant> {
        let mut out = Vec::new();
        for s in specs {
            if s.is_model() {
                for h in hints {
                    for search in searches {
                        out.push(Variant {
                            spec: s.clone(),
                            hints: Some(*h),
                            search: *search,
                        });
                    }
                }
            } else {
                out.push(Variant {
                    spec: s.clone(),
                    hints: None,
                    search: false,
                });
            }
        }
        out
    }

    /// `local:M [hints=none]`, `local:M [hints=knowledge, search]`, `expert`.
    pub fn label(&self) -> String {
        match (self.hints, self.search) {
            (Some(h), false) => format!("{} [hints={}]", self.spec.label(), h.name()),
            (Some(h), true) => format!("{} [hints={}, search]", self.spec.label(), h.name()),
            (None, _) => self.spec.label(),
        }
    }

    /// A folder name.
    pub fn slug(&self) -> String {
        match (self.hints, self.search) {
            (Some(h), false) => format!("{}_hints-{}", self.spec.slug(), h.name()),
            (Some(h), true) => format!("{}_hints-{}_search", self.spec.slug(), h.name()),
            (None, _) => self.spec.slug(),
        }
    }
}

/// The file that marks a folder as a compare's own: written before anything else goes in.
pub const MARKER: &str = ".lsmtune-compare";

/// The marker's first line (what tells it from a user's file of the same name).
const MARKER_TEXT: &str = "lsmtune compare folder";

/// Everything a compare writes at the top of its folder.
const TOP: &[&str] = &[
    crate::tune::lock::FILE,
    MARKER,
    "runs",
    "baselines",
    "results.md",
    "results.csv",
    "results.json",
    "best_so_far.svg",
    shard::FILE,
];

/// Whether `out` is an earlier compare's folder, which a rerun resumes: it carries the marker
/// of lsmtune's making, or (made by an lsmtune from before the marker) holds nothing but a
/// compare's names, a real `baselines/` folder and at least one tune's journal under `runs/`.
/// Links never count ([`crate::runfolder`]).
pub fn is_compare_folder(out: &Path) -> bool {
    use crate::runfolder::{is_dir, is_file};
    if crate::runfolder::read(&out.join(MARKER))
        .is_ok_and(|b| b.starts_with(MARKER_TEXT.as_bytes()))
    {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(out) else {
        return false;
    };
    let only_ours = entries.flatten().all(|e| {
        let name = e.file_name();
        TOP.iter().any(|t| name == *t) && (is_file(&e.path()) || is_dir(&e.path()))
    });
    let subdirs = |d: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| is_dir(p))
                    .collect()
            })
            .unwrap_or_default()
    };
    let journal = subdirs(&out.join("runs"))
        .iter()
        .flat_map(|w| subdirs(w))
        .flat_map(|p| subdirs(&p))
        .any(|seed| is_file(&seed.join(journal::FILE)));
    only_ours && is_dir(&out.join("runs")) && is_dir(&out.join("baselines")) && journal
}

/// Mark `out` as a compare's folder ([`MARKER`]).
pub fn mark(out: &Path) -> Result<()> {
    crate::runfolder::write(
        &out.join(MARKER),
        format!(
            "{MARKER_TEXT}: each tune under runs/, the shared baselines under baselines/; the \
             same compare command resumes it\n"
        )
        .as_bytes(),
    )
}

/// Where one tune of a compare lives.
pub fn run_dir(out: &Path, workload: &str, proposer: &Variant, seed: u64) -> PathBuf {
    out.join("runs")
        .join(workload)
        .join(proposer.slug())
        .join(format!("seed-{seed}"))
}

/// Where the shared baseline of a workload is kept.
pub fn baseline_file(out: &Path, workload: &str) -> PathBuf {
    out.join("baselines").join(format!("{workload}.json"))
}

/// Where a workload's best-known configuration, measured against the start, is kept.
pub fn best_known_file(out: &Path, workload: &str) -> PathBuf {
    out.join("runs").join(workload).join("best-known.json")
}

/// A best-known configuration measured against the start in a compare run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct BestKnown {
    /// The OPTIONS file it came from.
    pub file: String,
    pub start: journal::Sample,
    pub known: journal::Sample,
    pub comparison: Option<crate::bench::stats::Comparison>,
}

impl BestKnown {
    /// Its gain over the start (known / start on the objective), 1 when not measured.
    pub fn ratio(&self) -> f64 {
        self.comparison.map_or(1.0, |c| 1.0 + c.effect)
    }
}

/// The best-known configuration measured in this compare for a workload, if any.
pub fn best_known(out: &Path, workload: &str) -> Result<Option<BestKnown>> {
    let path = best_known_file(out, workload);
    let Some(bytes) = crate::runfolder::read_if_exists(&path)? else {
        return Ok(None);
    };
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
        anyhow::anyhow!("{} is damaged: {e}", path.display())
    })?))
}

/// What a shared baseline was measured with: a rerun whose workload (a workload file edited,
/// `--num` changed), repeats or memory budget differ must not reuse it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredWith {
    pub workload: crate::bench::Workload,
    pub repeats: usize,
    pub memory_budget: u64,
}

impl MeasuredWith {
    /// What the baseline of a tune with these settings is measured with.
    pub fn of(s: &journal::Settings) -> MeasuredWith {
        MeasuredWith {
            workload: s.workload.clone(),
            repeats: s.repeats,
            memory_budget: s.memory_budget,
        }
    }
}

/// A stored baseline: the measurement and what it was measured with (files written before that
/// was stored hold the bare measurement).
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum StoredBaseline {
    Described {
        measured_with: MeasuredWith,
        sample: journal::Sample,
    },
    Bare(journal::Sample),
}

/// The baseline stored at `path` (never read through a link): None when there is none yet;
/// what it was measured with, when the file says.
pub fn read_baseline(path: &Path) -> Result<Option<(journal::Sample, Option<MeasuredWith>)>> {
    let Some(bytes) = crate::runfolder::read_if_exists(path)? else {
        return Ok(None);
    };
    let stored: StoredBaseline = serde_json::from_slice(&bytes)
        .map_err(|e| anyhow::anyhow!("{} is damaged: {e}", path.display()))?;
    Ok(Some(match stored {
        StoredBaseline::Described {
            measured_with,
            sample,
        } => (sample, Some(measured_with)),
        StoredBaseline::Bare(sample) => (sample, None),
    }))
}

/// Store a baseline with what it was measured with.
pub fn write_baseline(path: &Path, with: &MeasuredWith, sample: &journal::Sample) -> Result<()> {
    let stored = StoredBaseline::Described {
        measured_with: with.clone(),
        sample: sample.clone(),
    };
    crate::runfolder::write(path, &serde_json::to_vec(&stored)?)
}

/// One row of the result table: a proposer on a workload, over its seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub proposer: String,
    pub workload: String,
    pub seeds: usize,
    /// Final gain over the baseline (tuned/start - 1) per seed, from each tune's final
    /// interleaved comparison (0 when the start was kept).
    pub gains: Vec<f64>,
    /// Mean gain and its 95% interval over seeds (the single tune's interval with one seed).
    pub gain_mean: f64,
    pub gain_low: f64,
    pub gain_high: f64,
    /// Iterations until the best reached 95% of its final level (mean over seeds).
    pub iterations_to_95: f64,
    pub iterations: f64,
    pub bench_seconds: f64,
    pub llm_seconds: f64,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Share of proposed entries (over every reply) that needed a key/type/range/safety
    /// correction.
    pub invalid_rate: Option<f64>,
    /// Share of proposed entries that set an option to the value it had.
    pub noop_rate: Option<f64>,
    /// Share of replies whose configuration had been measured already.
    pub repeat_rate: Option<f64>,
    /// Replies the proposer gave (models sample several per turn).
    pub replies: usize,
    pub corrections: usize,
    pub failures: usize,
    /// The objective the tunes were judged on (what `gains` and `curves` measure).
    pub objective: Metric,
    /// The best so far relative to the baseline on the objective (above 1 is better; for a
    /// latency, start / best), per iteration (0 = start), per seed: each kept candidate's
    /// measurement divided by the shared baseline's, measured at another time (what
    /// `iterations_to_95` is counted on; the plot uses `steps`).
    pub curves: Vec<Vec<f64>>,
    /// Per seed, per iteration (0 = start): the kept steps' same-run effects multiplied (each
    /// kept candidate against the best of its own interleaved rounds), the gain a tune's
    /// `throughput.svg` draws; `best_so_far.svg` plots these, ending at the final checks.
    pub steps: Vec<Vec<f64>>,
    /// Seconds into the tune when the best first reached 95% of its final level (mean over
    /// seeds; the shared baseline not counted).
    pub seconds_to_95: f64,
    /// The workload's best-known gain measured in this compare (`--best-known`), and this
    /// row's geometric-mean gain as a share of it on a log scale: log gain / log best-known.
    pub best_known: Option<f64>,
    pub share_of_best: Option<f64>,
    /// What the proposal grammar cost over every journaled iteration: masks and forced tokens
    /// summed, p50 the mask-weighted mean of the iterations' p50s, p99 the largest p99 (None:
    /// nothing decoded under the grammar).
    pub mask: Option<crate::tune::ask::MaskStats>,
}

impl Row {
    /// Record the workload's best-known configuration's gain, and this row's share of it.
    pub fn set_best_known(&mut self, known: Option<&BestKnown>) {
        self.best_known = known.map(BestKnown::ratio);
        self.share_of_best = self
            .best_known
            .filter(|k| *k > 1.0)
            .map(|k| (1.0 + self.gain_mean).max(1e-9).ln() / k.ln());
    }
}

/// Aggregate the finished tunes of `proposer` on `workload`.
pub fn row(out: &Path, workload: &str, proposer: &Variant, seeds: &[u64]) -> Result<Row> {
    let mut r = Row {
        proposer: proposer.label(),
        workload: workload.to_string(),
        seeds: 0,
        gains: Vec::new(),
        gain_mean: 0.0,
        gain_low: 0.0,
        gain_high: 0.0,
        iterations_to_95: 0.0,
        iterations: 0.0,
        bench_seconds: 0.0,
        llm_seconds: 0.0,
        prompt_tokens: 0,
        completion_tokens: 0,
        invalid_rate: None,
        noop_rate: None,
        repeat_rate: None,
        replies: 0,
        corrections: 0,
        failures: 0,
        objective: Metric::Throughput,
        curves: Vec::new(),
        steps: Vec::new(),
        seconds_to_95: 0.0,
        best_known: None,
        share_of_best: None,
        mask: None,
    };
    let (mut proposed, mut invalid, mut noop, mut repeated) = (0usize, 0usize, 0usize, 0usize);
    let mut to95 = Vec::new();
    let mut secs95 = Vec::new();
    let mut its_n = Vec::new();
    let mut single_ci = None;
    for &seed in seeds {
        let dir = run_dir(out, workload, proposer, seed);
        let Ok(records) = journal::load(&dir) else {
            continue;
        };
        let Some(Record::End {
            comparison,
            kept_base,
            ..
        }) = records.last()
        else {
            continue;
        };
        let Some(Record::Start {
            baseline, settings, ..
        }) = records.first()
        else {
            continue;
        };
        let objective = settings.goal.objective;
        r.objective = objective;
        r.seeds += 1;
        let gain = match comparison {
            Some(c) if !kept_base => {
                single_ci = Some((c.effect_low, c.effect_high));
                c.effect
            }
            _ => 0.0,
        };
        r.gains.push(gain);
        let base = Summary::of(&baseline.ops_per_sec)
            .map_or(1.0, |s| s.mean)
            .max(1e-9);
        let mut curve = vec![1.0];
        let mut steps = vec![1.0];
        let mut times = vec![0.0];
        let mut best = 1.0f64;
        let mut n = 0;
        for rec in &records {
            if let Record::Iteration(it) = rec {
                n += 1;
                r.bench_seconds += it.bench_seconds;
                r.llm_seconds += it.llm_seconds;
                if let Some(l) = &it.llm {
                    r.prompt_tokens += l.prompt_tokens;
                    r.completion_tokens += l.completion_tokens;
                }
                if it.replies.replies > 0 {
                    proposed += it.replies.entries;
                    invalid += it.replies.invalid;
                    noop += it.replies.noop;
                    repeated += it.replies.repeated;
                    r.replies += it.replies.replies;
                } else {
                    proposed += it.proposed;
                    invalid += it.invalid;
                }
                r.corrections += it.corrections.len();
                r.failures += usize::from(it.decision == Decision::Failed);
                if let Some(m) = &it.mask {
                    r.mask = Some(with_mask(r.mask, m));
                }
                if it.decision == Decision::Accepted {
                    // The kept candidate on the objective; throughput from `best_ops` when an
                    // older journal kept no candidate sample.
                    let kept = it
                        .candidate
                        .as_ref()
                        .and_then(|c| objective.ratio(c, baseline));
                    let fallback = (objective == Metric::Throughput).then(|| it.best_ops / base);
                    if let Some(v) = kept.or(fallback) {
                        best = best.max(v);
                    }
                }
                if let (Decision::Accepted, Some(c)) = (it.decision, &it.comparison) {
                    let chained = steps.last().copied().unwrap_or(1.0) * (1.0 + c.effect);
                    steps.push(chained.max(1e-9));
                } else {
                    steps.push(steps.last().copied().unwrap_or(1.0));
                }
                curve.push(best);
                times.push(it.elapsed);
            }
        }
        let last = *curve.last().unwrap_or(&1.0);
        let reach = curve
            .iter()
            .position(|&v| v - 1.0 >= 0.95 * (last - 1.0))
            .unwrap_or(0);
        to95.push(reach as f64);
        secs95.push(times.get(reach).copied().unwrap_or(0.0));
        its_n.push(n as f64);
        r.curves.push(curve);
        r.steps.push(steps);
    }
    if r.seeds == 0 {
        return Ok(r);
    }
    // Over seeds, on the logarithms of the ratios like every other interval: the mean is the
    // geometric mean ratio, and the interval cannot reach below -100%.
    let logs: Vec<f64> = r.gains.iter().map(|g| (1.0 + g).max(1e-9).ln()).collect();
    let g = Summary::of(&logs);
    r.gain_mean = g.map_or(0.0, |s| s.mean.exp() - 1.0);
    match (r.seeds, g) {
        (1, _) => {
            let (lo, hi) = single_ci.unwrap_or((r.gain_mean, r.gain_mean));
            r.gain_low = lo;
            r.gain_high = hi;
        }
        (_, Some(s)) => {
            r.gain_low = (s.mean - s.ci95).exp() - 1.0;
            r.gain_high = (s.mean + s.ci95).exp() - 1.0;
        }
        _ => {}
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    r.iterations_to_95 = mean(&to95);
    r.seconds_to_95 = mean(&secs95);
    r.iterations = mean(&its_n);
    r.invalid_rate = (proposed > 0).then(|| invalid as f64 / proposed as f64);
    r.noop_rate = (proposed > 0).then(|| noop as f64 / proposed as f64);
    r.repeat_rate = (r.replies > 0).then(|| repeated as f64 / r.replies as f64);
    Ok(r)
}

/// `acc` with one more iteration's mask statistics taken in (as [`Row::mask`] says).
fn with_mask(
    acc: Option<crate::tune::ask::MaskStats>,
    m: &crate::tune::ask::MaskStats,
) -> crate::tune::ask::MaskStats {
    let Some(a) = acc else {
        return *m;
    };
    let masks = a.masks + m.masks;
    crate::tune::ask::MaskStats {
        masks,
        p50_us: (a.p50_us * a.masks as f64 + m.p50_us * m.masks as f64) / masks.max(1) as f64,
        p99_us: a.p99_us.max(m.p99_us),
        forced_tokens: a.forced_tokens + m.forced_tokens,
    }
}

/// The objective the rows were judged on, from a row with a finished tune (a row whose tunes all
/// failed has read no journal and says nothing).
fn objective_of(rows: &[Row]) -> Metric {
    rows.iter()
        .find(|r| r.seeds > 0)
        .map_or(Metric::Throughput, |r| r.objective)
}

/// The table in Markdown.
pub fn markdown(rows: &[Row]) -> String {
    let mut m = String::new();
    let objective = objective_of(rows);
    let _ = writeln!(
        m,
        "| proposer | workload | seeds | {objective} gain (95% CI) | share of best-known | iterations to 95% | s to 95% | iterations | bench s | LLM s | LLM s / iteration | prompt tok | completion tok | invalid before calibration | no-op | repeated | corrections | failures | grammar mask p50/p99 us | forced tokens |"
    );
    let _ = writeln!(
        m,
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let rate = |x: Option<f64>| {
        x.map(|x| format!("{:.1}%", x * 100.0))
            .unwrap_or_else(|| "-".into())
    };
    for r in rows {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {:+.1}% ({:+.1}..{:+.1}) | {} | {:.1} | {:.0} | {:.1} | {:.0} | {:.0} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.proposer,
            r.workload,
            r.seeds,
            r.gain_mean * 100.0,
            r.gain_low * 100.0,
            r.gain_high * 100.0,
            share(r),
            r.iterations_to_95,
            r.seconds_to_95,
            r.iterations,
            r.bench_seconds,
            r.llm_seconds,
            r.llm_seconds / (r.iterations * r.seeds.max(1) as f64).max(1.0),
            r.prompt_tokens,
            r.completion_tokens,
            rate(r.invalid_rate),
            rate(r.noop_rate),
            rate(r.repeat_rate),
            r.corrections,
            r.failures,
            r.mask
                .map_or("-".into(), |k| format!("{:.0}/{:.0}", k.p50_us, k.p99_us)),
            r.mask.map_or("-".into(), |k| k.forced_tokens.to_string())
        );
    }
    m
}

/// A row's share of the best-known gain, as the table shows it.
fn share(r: &Row) -> String {
    match (r.share_of_best, r.best_known) {
        (Some(s), Some(k)) => format!("{:.0}% of {k:.2}x", s * 100.0),
        (None, Some(k)) => format!("- (best-known {k:.2}x)"),
        _ => "-".into(),
    }
}

/// Per proposer over the workloads: the geometric mean of the rows' gains (each row's own
/// geometric mean over seeds), as a ratio to the expert's where there is an expert row, and
/// the mean share of the best-known.
pub fn summary(rows: &[Row]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for r in rows {
        if !names.contains(&r.proposer.as_str()) {
            names.push(&r.proposer);
        }
    }
    let geo = |name: &str| -> Option<(f64, usize)> {
        let logs: Vec<f64> = rows
            .iter()
            .filter(|r| r.proposer == name && r.seeds > 0)
            .map(|r| (1.0 + r.gain_mean).max(1e-9).ln())
            .collect();
        (!logs.is_empty()).then(|| {
            (
                (logs.iter().sum::<f64>() / logs.len() as f64).exp(),
                logs.len(),
            )
        })
    };
    let expert = geo("expert").map(|(g, _)| g);
    let mut m = String::from(
        "| proposer | geometric mean gain | vs expert | mean share of best-known | workloads |\n|---|---|---|---|---|\n",
    );
    for name in names {
        let Some((g, n)) = geo(name) else {
            continue;
        };
        let shares: Vec<f64> = rows
            .iter()
            .filter(|r| r.proposer == name)
            .filter_map(|r| r.share_of_best)
            .collect();
        let _ = writeln!(
            m,
            "| {name} | {g:.2}x | {} | {} | {n} |",
            expert.map_or("-".into(), |e| format!("{:.2}x", g / e)),
            if shares.is_empty() {
                "-".to_string()
            } else {
                format!(
                    "{:.0}%",
                    100.0 * shares.iter().sum::<f64>() / shares.len() as f64
                )
            }
        );
    }
    m
}

/// The table as CSV.
pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "proposer,workload,seeds,gain_mean,gain_low,gain_high,iterations_to_95,iterations,bench_seconds,llm_seconds,prompt_tokens,completion_tokens,invalid_rate,noop_rate,repeat_rate,corrections,failures,objective,seconds_to_95,best_known,share_of_best,mask_p50_us,mask_p99_us,forced_tokens\n",
    );
    let objective = objective_of(rows);
    for r in rows {
        let _ = writeln!(
            s,
            "{},{},{},{:.4},{:.4},{:.4},{:.2},{:.2},{:.1},{:.1},{},{},{},{},{},{},{},{objective},{:.1},{},{},{},{},{}",
            r.proposer,
            r.workload,
            r.seeds,
            r.gain_mean,
            r.gain_low,
            r.gain_high,
            r.iterations_to_95,
            r.iterations,
            r.bench_seconds,
            r.llm_seconds,
            r.prompt_tokens,
            r.completion_tokens,
            r.invalid_rate
                .map(|x| format!("{x:.4}"))
                .unwrap_or_default(),
            r.noop_rate.map(|x| format!("{x:.4}")).unwrap_or_default(),
            r.repeat_rate.map(|x| format!("{x:.4}")).unwrap_or_default(),
            r.corrections,
            r.failures,
            r.seconds_to_95,
            r.best_known.map(|x| format!("{x:.4}")).unwrap_or_default(),
            r.share_of_best
                .map(|x| format!("{x:.4}"))
                .unwrap_or_default(),
            r.mask
                .map(|k| format!("{:.1}", k.p50_us))
                .unwrap_or_default(),
            r.mask
                .map(|k| format!("{:.1}", k.p99_us))
                .unwrap_or_default(),
            r.mask
                .map(|k| k.forced_tokens.to_string())
                .unwrap_or_default()
        );
    }
    s
}

/// Write results.md, results.csv, results.json and best_so_far.svg into `out` (never through a
/// link: [`crate::runfolder::write`]).
pub fn write_results(out: &Path, rows: &[Row]) -> Result<()> {
    use crate::runfolder::write;
    let md = markdown(rows) + "\n" + &summary(rows);
    write(&out.join("results.md"), md.as_bytes())?;
    write(&out.join("results.csv"), csv(rows).as_bytes())?;
    write(
        &out.join("results.json"),
        serde_json::to_string_pretty(rows)?.as_bytes(),
    )?;
    plot(rows, &out.join("best_so_far.svg"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The grammar's cost over a row's iterations: masks and forced tokens summed, p50 weighted
    /// by masks, p99 the worst iteration's.
    #[test]
    fn mask_statistics_add_up_over_iterations() {
        use crate::tune::ask::MaskStats;
        let a = MaskStats {
            masks: 100,
            p50_us: 10.0,
            p99_us: 50.0,
            forced_tokens: 20,
        };
        let b = MaskStats {
            masks: 300,
            p50_us: 30.0,
            p99_us: 40.0,
            forced_tokens: 5,
        };
        assert_eq!(with_mask(None, &a), a);
        assert_eq!(
            with_mask(Some(a), &b),
            MaskStats {
                masks: 400,
                p50_us: 25.0,
                p99_us: 50.0,
                forced_tokens: 25
            }
        );
    }

    /// Only a real compare folder is resumed: a user's folder that merely has a `runs/` or
    /// `baselines/` sub-folder is not one, nor is a linked marker; an older compare's layout
    /// (baselines and run journals, nothing else) and the marker are.
    #[test]
    fn only_a_real_compare_folder_counts_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        std::fs::create_dir(out.join("runs")).unwrap();
        std::fs::write(out.join("results.md"), "my own results").unwrap();
        assert!(!is_compare_folder(out));
        std::fs::create_dir(out.join("baselines")).unwrap();
        assert!(!is_compare_folder(out), "no run journal");
        let seed = out.join("runs/fillrandom/expert/seed-1");
        std::fs::create_dir_all(&seed).unwrap();
        std::fs::write(seed.join(journal::FILE), "{}\n").unwrap();
        assert!(is_compare_folder(out), "an older compare's layout");
        std::fs::write(out.join("notes.txt"), "mine").unwrap();
        assert!(!is_compare_folder(out), "a file a compare does not write");
        std::fs::remove_dir_all(out.join("runs")).unwrap();
        let elsewhere = dir.path().join("notes.txt");
        std::os::unix::fs::symlink(&elsewhere, out.join(MARKER)).unwrap();
        std::fs::write(&elsewhere, MARKER_TEXT).unwrap();
        assert!(!is_compare_folder(out), "a linked marker");
        std::fs::remove_file(out.join(MARKER)).unwrap();
        mark(out).unwrap();
        assert!(is_compare_folder(out));
    }

    #[test]
    fn proposer_specs_parse_and_name_folders() {
        assert_eq!(
            ProposerSpec::parse("local:qwen2.5-0.5b-instruct:q8_0").unwrap(),
            ProposerSpec::Local("qwen2.5-0.5b-instruct:q8_0".into())
        );
        assert_eq!(
            ProposerSpec::parse("openai:gpt-4o").unwrap(),
            ProposerSpec::OpenAi("gpt-4o".into())
        );
        assert_eq!(
            ProposerSpec::parse(" expert").unwrap(),
            ProposerSpec::Expert
        );
        assert!(ProposerSpec::parse("local:").is_err());
        assert_eq!(
            ProposerSpec::parse("ollama:qwen2.5:0.5b").unwrap(),
            ProposerSpec::Ollama("qwen2.5:0.5b".into())
        );
        assert_eq!(
            ProposerSpec::parse("lmstudio").unwrap(),
            ProposerSpec::LmStudio(String::new())
        );
        assert_eq!(
            ProposerSpec::parse("ollama:qwen2.5:0.5b").unwrap().slug(),
            "ollama_qwen2.5_0.5b"
        );
        assert!(ProposerSpec::parse("gpt").is_err());
        assert_eq!(
            ProposerSpec::Local("/m/x.gguf".into()).slug(),
            "local__m_x.gguf"
        );
        use crate::tune::prompt::HintLevel as H;
        let v = Variant::expand(
            &[
                ProposerSpec::Local("m".into()),
                ProposerSpec::Expert,
                ProposerSpec::parse("search:gp").unwrap(),
            ],
            &[H::None, H::Knowledge],
            &[false, true],
        );
        let labels: Vec<String> = v.iter().map(|v| v.label()).collect();
        assert_eq!(
            labels,
            [
                "local:m [hints=none]",
                "local:m [hints=none, search]",
                "local:m [hints=knowledge]",
                "local:m [hints=knowledge, search]",
                "expert",
                "search:gp"
            ]
        );
        assert_eq!(v[0].slug(), "local_m_hints-none");
        assert_eq!(v[3].slug(), "local_m_hints-knowledge_search");
        assert_eq!(ProposerSpec::parse("search").unwrap().label(), "search:tpe");
        assert!(ProposerSpec::parse("search:cma").is_err());
    }
}
