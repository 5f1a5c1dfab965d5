//! What a finished tune leaves for people: `report.md` (machine, workload, per-iteration table,
//! final gain with its interval, the diff against the start with the reasoning behind each
//! change), `report.json` (the same, for programs), `throughput.svg` (per-iteration throughput
//! with intervals and the best so far), and every prompt and reply under `prompts/`. The loop
//! assembles it from what it journaled as it ends; all of it can also be rebuilt from
//! `journal.jsonl` at any time.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Result, bail};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use serde::Serialize;

use super::journal::{self, Decision, Iteration, Record, Sample, Settings};
use crate::bench::stats::{Comparison, Summary};
use crate::chart;
use crate::options::Config;
use crate::sysinfo::Facts;
use crate::tune::objective::{Check, Constraint, METRICS, Metric};
use crate::tune::prompt::model_reasoning_limit;

/// The report's data.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub settings: Settings,
    pub facts: Facts,
    pub rocksdb: String,
    pub proposer: String,
    pub proposer_reason: String,
    pub base_notes: Vec<String>,
    pub baseline: Option<Summary>,
    pub iterations: Vec<Iteration>,
    pub end_reason: String,
    pub final_start: Option<Summary>,
    pub final_best: Option<Summary>,
    pub final_comparison: Option<Comparison>,
    pub kept_start: bool,
    pub elapsed_seconds: f64,
    /// Tuned value per changed option, with where it came from.
    pub changes: Vec<ChangeNote>,
    pub totals: Totals,
    /// Every metric of the final check, start vs tuned (means over the runs), and each
    /// constraint checked on the tuned configuration's runs.
    pub metrics: Vec<MetricRow>,
    pub constraints: Vec<(Constraint, Check)>,
    /// How the runs' memory was confined (the baseline's first run), when it was.
    pub confinement: Option<String>,
    /// The warm start from the history (None: none was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub past: Option<crate::history::Warm>,
}

/// One metric, start vs tuned, from the final interleaved check.
#[derive(Debug, Clone, Serialize)]
pub struct MetricRow {
    pub metric: Metric,
    pub start: Option<f64>,
    pub tuned: Option<f64>,
}

/// The objective's mean at the final check (ops/s with its interval for throughput).
fn objective_value(
    r: &Report,
    side: impl Fn(&MetricRow) -> Option<f64>,
    ops_summary: &Option<Summary>,
) -> String {
    let m = r.settings.goal.objective;
    if m == Metric::Throughput {
        return format!("{} ops/s", ops(ops_summary));
    }
    let v = r.metrics.iter().find(|row| row.metric == m).and_then(side);
    show_metric(m, v)
}

fn show_metric(metric: Metric, v: Option<f64>) -> String {
    v.map_or("-".into(), |v| metric.show(v))
}

/// One option the tuned file changes.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeNote {
    pub key: String,
    pub start: String,
    pub tuned: String,
    /// The iteration that set it, and the proposer's reasoning then.
    pub iteration: Option<usize>,
    pub reasoning: Option<String>,
}

/// Sums over the run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    pub bench_seconds: f64,
    pub llm_seconds: f64,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub proposed_entries: usize,
    pub invalid_entries: usize,
    pub corrections: usize,
    pub failures: usize,
    pub accepted: usize,
}

fn summary(s: &Sample) -> Option<Summary> {
    Summary::of(&s.ops_per_sec)
}

/// A model's reasoning as the report shows it: one that fills the grammar's length limit was cut
/// there (the model had more to say), and says so with an ellipsis.
fn mark_cut(reasoning: &str, limit: usize) -> String {
    if limit > 0 && reasoning.chars().count() >= limit {
        format!("{}…", reasoning.trim_end())
    } else {
        reasoning.to_string()
    }
}

/// Rebuild the report from the journal and files in `out` (a finished run asked to resume, a
/// report to redo); the loop builds its own with [`assemble`] as it ends.
pub fn build(out: &Path) -> Result<Report> {
    build_from(&journal::load(out)?, out)
}

/// [`build`] from a journal already read.
pub fn build_from(records: &[Record], out: &Path) -> Result<Report> {
    let Some(start) = records
        .first()
        .filter(|r| matches!(r, Record::Start { .. }))
    else {
        bail!("{}: no start record", out.display());
    };
    let iterations: Vec<Iteration> = records
        .iter()
        .filter_map(|r| match r {
            Record::Iteration(it) => Some((**it).clone()),
            _ => None,
        })
        .collect();
    let end = records.iter().find(|r| matches!(r, Record::End { .. }));
    let (start_doc, tuned_doc) = (
        crate::runfolder::read_options(&out.join(super::BASE_FILE)),
        crate::runfolder::read_options(&out.join(super::TUNED_FILE)),
    );
    let docs = match (start_doc, tuned_doc) {
        (Ok(a), Ok(b)) => Some((Config::new(a), Config::new(b))),
        _ => None,
    };
    assemble(start, iterations, end, docs.as_ref().map(|(a, b)| (a, b)))
}

/// The report of a tune: its start record, its iterations, its end record (None: not
/// finished), and the starting and tuned configurations (for the table of changes).
pub fn assemble(
    start: &Record,
    iterations: Vec<Iteration>,
    end: Option<&Record>,
    docs: Option<(&Config, &Config)>,
) -> Result<Report> {
    let Record::Start {
        settings,
        facts,
        rocksdb,
        base_notes,
        baseline,
        proposer,
        proposer_reason,
        past,
        ..
    } = start.clone()
    else {
        bail!("a report starts from a start record");
    };
    let (mut metrics, mut constraints) = (Vec::new(), Vec::new());
    if let Some(Record::End {
        final_base,
        final_best,
        kept_base,
        ..
    }) = end
    {
        let tuned = if *kept_base { final_base } else { final_best };
        metrics = METRICS
            .iter()
            .map(|&metric| MetricRow {
                metric,
                start: metric.mean(final_base),
                tuned: metric.mean(tuned),
            })
            .collect();
        constraints = settings.goal.checks(&tuned.runs.iter().collect::<Vec<_>>());
    }
    let end = end.and_then(|r| match r {
        Record::End {
            reason,
            final_base,
            final_best,
            comparison,
            kept_base,
            elapsed,
        } => Some((
            reason.clone(),
            summary(final_base),
            summary(final_best),
            *comparison,
            *kept_base,
            *elapsed,
        )),
        _ => None,
    });
    let (end_reason, final_start, final_best, final_comparison, kept_start, elapsed) = end
        .unwrap_or_else(|| {
            (
                "not finished".into(),
                None,
                None,
                None,
                false,
                iterations.last().map_or(0.0, |i| i.elapsed),
            )
        });
    let mut totals = Totals::default();
    for it in &iterations {
        totals.bench_seconds += it.bench_seconds;
        totals.llm_seconds += it.llm_seconds;
        if let Some(l) = &it.llm {
            totals.prompt_tokens += l.prompt_tokens;
            totals.completion_tokens += l.completion_tokens;
        }
        totals.proposed_entries += it.proposed;
        totals.invalid_entries += it.invalid;
        totals.corrections += it.corrections.len();
        totals.failures += usize::from(it.decision == Decision::Failed);
        totals.accepted += usize::from(it.decision == Decision::Accepted);
    }
    // Diff of the tuned file against the start, with the reasoning of the iteration that set
    // each value.
    let catalog = crate::options::catalog()?;
    let mut changes = Vec::new();
    if let Some((a, b)) = docs {
        for (key, (tuned, start)) in b.diff(a, catalog) {
            let origin = iterations
                .iter()
                .rev()
                .find(|it| it.decision == Decision::Accepted && it.changes.contains_key(&key));
            changes.push(ChangeNote {
                key,
                start: start.to_string(),
                tuned: tuned.to_string(),
                iteration: origin.map(|it| it.iteration),
                reasoning: origin.and_then(|it| {
                    let r = it.reasoning.as_deref()?;
                    // A model's reasoning is bounded by the proposal grammar; other
                    // proposers' is whole.
                    Some(match it.llm {
                        Some(_) => mark_cut(r, model_reasoning_limit(settings.reasoning_chars)),
                        None => r.to_string(),
                    })
                }),
            });
        }
    }
    Ok(Report {
        settings: *settings,
        facts,
        rocksdb,
        proposer,
        proposer_reason,
        base_notes,
        baseline: summary(&baseline),
        iterations,
        end_reason,
        final_start,
        final_best,
        final_comparison,
        kept_start,
        elapsed_seconds: elapsed,
        changes,
        totals,
        metrics,
        constraints,
        confinement: baseline.runs.first().and_then(|m| m.confinement.clone()),
        past,
    })
}

fn ops(s: &Option<Summary>) -> String {
    s.map(|s| format!("{:.0} ± {:.0}", s.mean, s.ci95))
        .unwrap_or_else(|| "-".into())
}

/// The Markdown report.
/// How candidates were measured, in one sentence.
fn measuring(s: &Settings) -> String {
    if s.max_rounds == 0 {
        // Journals from before the sequential design.
        return format!(
            "{} repeat(s) per measurement, interleaved with the best so far; gains confirmed \
             with {} more.",
            s.repeats, s.confirm_repeats
        );
    }
    format!(
        "Each candidate is measured in rounds interleaved with the best so far and judged at \
         {} rounds, then {} and at most {} when promising (a group-sequential design, 2.5% \
         one-sided over all looks); a first round clearly worse than the best stops it.",
        s.repeats,
        s.repeats + s.confirm_repeats,
        s.max_rounds.max(s.repeats + s.confirm_repeats)
    )
}

pub fn markdown(r: &Report) -> String {
    let mut m = String::new();
    md_header(&mut m, r);
    md_result(&mut m, r);
    md_changes(&mut m, r);
    md_iterations(&mut m, r);
    md_totals_and_notes(&mut m, r);
    m
}

/// The workload, objective, proposer and machine.
fn md_header(m: &mut String, r: &Report) {
    let w = &r.settings.workload;
    let _ = writeln!(m, "# lsmtune report\n");
    let _ = writeln!(
        m,
        "Workload **{}** ({}): {} keys, {} + {} bytes, {} thread(s). {}\n",
        w.label(),
        w.describe(),
        w.num,
        w.key_size,
        w.value_size,
        w.threads,
        measuring(&r.settings)
    );
    let _ = writeln!(m, "Objective: {}.\n", r.settings.goal.describe());
    if let Some(how) = &r.confinement {
        let _ = writeln!(m, "Memory of each benchmark run: {how}.\n");
    }
    let _ = writeln!(m, "Proposer: **{}** ({})\n", r.proposer, r.proposer_reason);
    let _ = writeln!(
        m,
        "A model proposer is told: `--hints {}`; replies per turn: {}; value refinement: {}; \
         value search of its kept choices: {}.\n",
        r.settings.hints.name(),
        match r.settings.samples {
            0 => "3 (local) or 1 (endpoint)".to_string(),
            n => n.to_string(),
        },
        if r.settings.refine { "on" } else { "off" },
        if r.settings.search {
            r.settings.search_method.name()
        } else {
            "off"
        }
    );
    let _ = writeln!(m, "## Machine\n\n```\n{}\n```\n", r.facts.describe());
    if let Some(w) = &r.past {
        m.push_str(&crate::history::similar::report_section(w));
    }
}

/// The final check, every metric at it, the constraints, and why the tune stopped.
fn md_result(m: &mut String, r: &Report) {
    let _ = writeln!(m, "## Result\n");
    match (&r.final_comparison, r.kept_start) {
        (Some(c), false) => {
            let _ = writeln!(
                m,
                "Tuned vs start, measured side by side at the end, on the objective ({}): \
                 **{:+.1}%** (95% interval {:+.1}% to {:+.1}%, {}): {} vs {}.\n",
                r.settings.goal.objective,
                c.effect * 100.0,
                c.effect_low * 100.0,
                c.effect_high * 100.0,
                c.verdict,
                objective_value(r, |row| row.tuned, &r.final_best),
                objective_value(r, |row| row.start, &r.final_start)
            );
        }
        (Some(c), true) => {
            let _ = writeln!(
                m,
                "The best candidate was **not** confirmed against the start at the end ({:+.1}%, \
                 {}): `OPTIONS-tuned.ini` is the starting configuration.\n",
                c.effect * 100.0,
                c.verdict
            );
        }
        _ => {
            let _ = writeln!(
                m,
                "No candidate beat the start: `OPTIONS-tuned.ini` is the starting configuration \
                 ({} ops/s).\n",
                ops(&r.baseline)
            );
        }
    }
    if r.metrics.iter().any(|row| row.start.is_some()) {
        let _ = writeln!(
            m,
            "Every metric at the final check (means over its runs):\n\n| metric | start | \
             tuned |\n|---|---|---|"
        );
        for row in &r.metrics {
            let _ = writeln!(
                m,
                "| {}{} | {} | {} |",
                row.metric,
                if row.metric == r.settings.goal.objective {
                    " (objective)"
                } else {
                    ""
                },
                show_metric(row.metric, row.start),
                show_metric(row.metric, row.tuned)
            );
        }
        let _ = writeln!(m);
    }
    for (c, check) in &r.constraints {
        let verdict = match check {
            Check::Met { low, high } => format!(
                "met (95% interval {} to {})",
                c.metric.show(*low),
                c.metric.show(*high)
            ),
            Check::Violated { low, high } => format!(
                "**violated** ({} to {})",
                c.metric.show(*low),
                c.metric.show(*high)
            ),
            Check::Unclear { low, high } => format!(
                "unclear ({} to {} straddles the limit)",
                c.metric.show(*low),
                c.metric.show(*high)
            ),
            Check::Unmeasured => "not measured by this engine".into(),
        };
        let _ = writeln!(m, "Constraint {}: {verdict}.\n", c.describe());
    }
    let _ = writeln!(
        m,
        "Stopped: {}. {} iteration(s) in {:.0} s (benchmarks {:.0} s, proposals {:.0} s).\n",
        r.end_reason,
        r.iterations.len(),
        r.elapsed_seconds,
        r.totals.bench_seconds,
        r.totals.llm_seconds
    );
}

/// The options OPTIONS-tuned.ini changes, with the iteration and reasoning of each.
fn md_changes(m: &mut String, r: &Report) {
    if !r.changes.is_empty() {
        let _ = writeln!(m, "## Changes in OPTIONS-tuned.ini\n");
        let _ = writeln!(
            m,
            "| option | start | tuned | from | why |\n|---|---|---|---|---|"
        );
        for c in &r.changes {
            let _ = writeln!(
                m,
                "| `{}` | {} | {} | {} | {} |",
                c.key,
                c.start,
                c.tuned,
                c.iteration
                    .map(|i| format!("iteration {i}"))
                    .unwrap_or_else(|| "-".into()),
                c.reasoning
                    .as_deref()
                    .unwrap_or("-")
                    .replace('|', "/")
                    .replace('\n', " ")
            );
        }
        let _ = writeln!(m);
    }
}

/// One row per iteration: changes, corrections, measurements, effect and decision.
fn md_iterations(m: &mut String, r: &Report) {
    let _ = writeln!(m, "## Iterations\n");
    let _ = writeln!(
        m,
        "Start: {} ops/s. The effect is on the objective ({}); the candidate's other metrics are \
         means over its runs.\n\n| # | changes (calibrated) | corrections | candidate ops/s | \
         best ops/s (same run) | candidate p99 | p99.9 | write-amp | space-amp | effect (95% \
         CI) | decision |\n|---|---|---|---|---|---|---|---|---|---|---|",
        ops(&r.baseline),
        r.settings.goal.objective
    );
    for it in &r.iterations {
        let changes = if it.changes.is_empty() {
            "-".to_string()
        } else {
            it.changes
                .iter()
                .map(|(k, v)| format!("`{k}`={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let effect = it
            .comparison
            .map(|c| {
                format!(
                    "{:+.1}% ({:+.1}..{:+.1})",
                    c.effect * 100.0,
                    c.effect_low * 100.0,
                    c.effect_high * 100.0
                )
            })
            .unwrap_or_else(|| "-".into());
        let decision = match (it.decision, &it.failure) {
            (Decision::Failed, Some(f)) => format!("failed: {}", f.replace('|', "/")),
            (d, _) => format!("{d:?}").to_ascii_lowercase(),
        };
        let decision = match (it.rounds, it.stopped) {
            (0, _) => decision,
            (n, Some(stop)) => format!("{decision} after {n} round(s): {}", stop.describe()),
            (n, None) => format!("{decision} after {n} round(s)"),
        };
        let cand = |metric| show_metric(metric, it.candidate.as_ref().and_then(|c| metric.mean(c)));
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            it.iteration,
            changes,
            it.corrections.len(),
            ops(&it.candidate.as_ref().and_then(summary)),
            ops(&it.best.as_ref().and_then(summary)),
            cand(Metric::P99),
            cand(Metric::P999),
            cand(Metric::WriteAmp),
            cand(Metric::SpaceAmp),
            effect,
            decision
        );
    }
}

/// What the proposals carried, the notes, the corrections to the start, and the files.
fn md_totals_and_notes(m: &mut String, r: &Report) {
    let t = &r.totals;
    let _ = writeln!(
        m,
        "\nProposals carried {} entries, {} of them invalid before calibration (key, type, range \
         or safety); {} corrections in all; {} failed iteration(s). Model tokens: {} prompt, {} \
         completion.\n",
        t.proposed_entries,
        t.invalid_entries,
        t.corrections,
        t.failures,
        t.prompt_tokens,
        t.completion_tokens
    );
    let notes: Vec<String> = r
        .iterations
        .iter()
        .flat_map(|it| {
            it.llm
                .iter()
                .flat_map(|l| l.notices.iter())
                .chain(it.notes.iter())
                .map(move |n| format!("iteration {}: {n}", it.iteration))
        })
        .collect();
    if !notes.is_empty() {
        let _ = writeln!(m, "## Notes\n");
        for n in &notes {
            let _ = writeln!(m, "- {n}");
        }
        let _ = writeln!(m);
    }
    if !r.base_notes.is_empty() {
        let _ = writeln!(m, "## Corrections to the starting file\n");
        for n in &r.base_notes {
            let _ = writeln!(m, "- {n}");
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(
        m,
        "Files: `OPTIONS-tuned.ini` (loadable by RocksDB; for an older db_bench, `lsmtune options \
         downgrade`), `throughput.svg`, `report.json`, `journal.jsonl`, `candidates/`, `prompts/`."
    );
}

/// What each decision used: per iteration, the candidate's objective (throughput, or the
/// reciprocal of a latency or an amplification) relative to the best so
/// far measured in the same interleaved rounds (the ratio and its 95% interval, kept ones in
/// green), the start-relative gain the kept steps add up to, and the final side-by-side check of
/// the tuned file against the start, its value written beside it. Ratios, not absolute ops/s:
/// runs at different times drift on a shared machine, and a "best so far" line from other
/// rounds sat 40% above the best measured beside the candidate. Absolute numbers stay in the
/// report's table. The ratio axis is labelled at readable ratios ([`crate::chart`]), and the
/// legend sits in a band below the plot, never over the data.
pub fn plot(r: &Report, path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(r, &mut svg)?;
    crate::runfolder::write(path, svg.as_bytes())
}

/// What [`draw`] plots, on a log scale bounded so one wild interval on a contended machine does
/// not flatten the rest (whiskers past the bounds are clipped).
struct Series {
    /// Per measured iteration: (x, ratio, low, high, kept).
    points: Vec<(f64, f64, f64, f64, bool)>,
    /// The kept steps multiplied, per iteration (0 = the start).
    gain: Vec<(f64, f64)>,
    /// The final check: (x, ratio, low, high), and its ratio unclipped.
    fin: Option<((f64, f64, f64, f64), f64)>,
    /// Iterations, and the ratio range.
    n: usize,
    lo: f64,
    hi: f64,
}

fn series(r: &Report) -> Series {
    let mut points: Vec<(f64, f64, f64, f64, bool)> = Vec::new();
    let mut gain_path: Vec<(f64, f64)> = vec![(0.0, 1.0)];
    let mut gain = 1.0;
    for it in &r.iterations {
        let x = it.iteration as f64;
        if let Some(c) = &it.comparison {
            let kept = it.decision == Decision::Accepted;
            points.push((
                x,
                1.0 + c.effect,
                1.0 + c.effect_low,
                1.0 + c.effect_high,
                kept,
            ));
            if kept {
                gain *= 1.0 + c.effect;
            }
        }
        gain_path.push((x, gain));
    }
    let n = r.iterations.len().max(1);
    let fin = r.final_comparison.as_ref().map(|c| {
        (
            n as f64 + 1.0,
            1.0 + c.effect,
            1.0 + c.effect_low,
            1.0 + c.effect_high,
        )
    });
    let all = points
        .iter()
        .flat_map(|p| [p.2, p.3])
        .chain(gain_path.iter().map(|g| g.1))
        .chain(fin.iter().flat_map(|f| [f.2, f.3]))
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = ((lo * 0.9).clamp(0.1, 0.8), (hi * 1.1).clamp(1.25, 10.0));
    let clip = |v: f64| v.clamp(lo, hi);
    Series {
        points: points
            .into_iter()
            .map(|(x, y, l, h, k)| (x, clip(y), clip(l), clip(h), k))
            .collect(),
        gain: gain_path.into_iter().map(|(x, g)| (x, clip(g))).collect(),
        fin: fin.map(|(x, y, l, h)| ((x, clip(y), clip(l), clip(h)), y)),
        n,
        lo,
        hi,
    }
}

/// The plot's size: the chart above, the legend's band below it.
const WIDTH: u32 = 900;
const CHART_HEIGHT: u32 = 460;

/// The colours of candidates measured and kept.
const KEPT: RGBColor = RGBColor(0, 140, 60);
const CANDIDATE: RGBColor = RGBColor(30, 90, 220);

/// The legend: what each mark of the plot is.
fn legend_entries(s: &Series) -> Vec<chart::Entry> {
    let entry = |label: &str, color, mark| chart::Entry {
        label: label.into(),
        color,
        mark,
    };
    let mut entries = vec![
        entry(
            "candidate / best, same rounds (95% CI)",
            CANDIDATE,
            chart::Mark::Whisker,
        ),
        entry("kept", KEPT, chart::Mark::Whisker),
        entry("kept steps multiplied (vs start)", RED, chart::Mark::Line),
    ];
    if s.fin.is_some() {
        entries.push(entry(
            "final: tuned / start, side by side (95% CI)",
            BLACK,
            chart::Mark::Whisker,
        ));
    }
    entries
}

/// [`plot`]'s drawing, as SVG text into `svg`.
fn draw(r: &Report, svg: &mut String) -> Result<()> {
    let s = series(r);
    let entries = legend_entries(&s);
    let height = CHART_HEIGHT + chart::legend_height(&entries, WIDTH - 80);
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (upper, lower) = root.split_vertically(CHART_HEIGHT);
    let (n, fin_x) = (s.n, s.n as f64 + 1.0);
    // Room right of the final check for its value (about 50 pixels of some 780).
    let room = 50.0 * (fin_x + 1.0) / 730.0;
    let per_px = (fin_x + 1.0 + room) / 780.0;
    let mut chart = ChartBuilder::on(&upper)
        .caption(
            format!(
                "{}: each candidate against the best of its rounds ({})",
                r.settings.workload.label(),
                r.proposer.split(" (").next().unwrap_or(&r.proposer)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            chart::ticks(
                -0.5f64..fin_x + 0.5 + room,
                chart::iteration_ticks(n + 1, 780),
            ),
            chart::ticks(
                (s.lo..s.hi).log_scale(),
                chart::ratio_ticks(s.lo, s.hi, CHART_HEIGHT - 110),
            ),
        )?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| {
            if (*x - fin_x).abs() < 0.01 {
                "final".to_string()
            } else {
                format!("{x:.0}")
            }
        })
        .y_label_formatter(&|y| chart::ratio_label(*y))
        .x_desc("iteration")
        .y_desc(match r.settings.goal.objective {
            Metric::Throughput => "throughput ratio".to_string(),
            m => format!("{m} ratio (higher is better)"),
        })
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, 1.0), (fin_x + 0.5 + room, 1.0)],
        BLACK.mix(0.45).stroke_width(1),
    ))?;
    for (kept, color) in [(false, CANDIDATE), (true, KEPT)] {
        let sel: Vec<_> = s.points.iter().filter(|p| p.4 == kept).collect();
        chart.draw_series(
            sel.iter()
                .map(|&&(x, y, l, h, _)| ErrorBar::new_vertical(x, l, y, h, color.filled(), 8)),
        )?;
        chart.draw_series(
            sel.iter()
                .map(|&&(x, y, _, _, _)| Circle::new((x, y), 4, color.filled())),
        )?;
    }
    chart.draw_series(LineSeries::new(s.gain.iter().copied(), RED.stroke_width(2)))?;
    if let Some(((x, y, l, h), ratio)) = s.fin {
        chart.draw_series([ErrorBar::new_vertical(x, l, y, h, BLACK.filled(), 10)])?;
        chart.draw_series([Circle::new((x, y), 5, BLACK.filled())])?;
        let style = ("sans-serif", 15)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Left, VPos::Center));
        chart.draw_series([Text::new(
            format!("{ratio:.2}x"),
            (x + 10.0 * per_px, y),
            style,
        )])?;
    }
    chart::legend(&lower.margin(0, 0, 70, 10), &entries)?;
    root.present()?;
    Ok(())
}

/// Write report.md, report.json, throughput.svg and prompts/ of `r` into `out`, every secret
/// ([`crate::http::redact`]) left out. Every file is a run folder's ([`crate::runfolder::write`]:
/// never written through a link).
pub fn write(out: &Path, r: &Report) -> Result<()> {
    use crate::http::redact;
    use crate::runfolder;
    runfolder::write(&out.join("report.md"), redact(&markdown(r)).as_bytes())?;
    let mut json = serde_json::to_value(r)?;
    crate::http::redact_json(&mut json);
    runfolder::write(
        &out.join("report.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    plot(r, &out.join("throughput.svg"))?;
    let prompts = out.join("prompts");
    for it in &r.iterations {
        if it.prompt.is_none() && it.reply.is_none() {
            continue;
        }
        runfolder::ensure_dir(&prompts)?;
        if let Some(p) = &it.prompt {
            runfolder::write(
                &prompts.join(format!("iter-{:03}-prompt.txt", it.iteration)),
                redact(p).as_bytes(),
            )?;
        }
        if let Some(p) = &it.reply {
            runfolder::write(
                &prompts.join(format!("iter-{:03}-reply.txt", it.iteration)),
                redact(p).as_bytes(),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tune with `settings` whose iterations measured `steps` (effect, kept) and whose final
    /// check measured `last`.
    fn tune_of(settings: Settings, steps: &[(f64, bool)], last: f64) -> Report {
        use crate::tune::journal::fixtures as f;
        let start = f::start(
            settings,
            "local:qwen2 (/root/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf)",
            100_000.0,
        );
        let mut ops = 100_000.0;
        let iterations = steps
            .iter()
            .enumerate()
            .map(|(i, &(effect, kept))| {
                let it = f::iteration(i + 1, ops * (1.0 + effect), effect, kept);
                if kept {
                    ops *= 1.0 + effect;
                }
                it
            })
            .collect();
        assemble(&start, iterations, Some(&f::end(last, false)), None).unwrap()
    }

    /// The issue's tune: eight iterations, four kept steps that multiply to about 2.2x, one
    /// wide interval, and a final check at 2.2x.
    fn two_fold_tune() -> Report {
        let steps = [
            (0.35, true),
            (-0.04, false),
            (0.25, true),
            (0.02, false),
            (0.18, true),
            (-0.3, false),
            (0.1, true),
            (0.01, false),
        ];
        tune_of(crate::tune::journal::fixtures::settings(), &steps, 1.2)
    }

    /// The issue's throughput.svg, as a person sees it: the y axis labelled at readable ratios
    /// up to the 2.2x gain, the final value written out, no minor grid, and the legend in its
    /// own band below the data (every series drawn above it, every legend mark below).
    #[test]
    fn plot_throughput_renders_to_png() {
        use crate::chart::png;
        let r = two_fold_tune();
        let mut svg = String::new();
        draw(&r, &mut svg).unwrap();
        // Rendered first: a failing plot is there to look at.
        let dir = tempfile::tempdir().unwrap();
        let p = png::render(&svg, dir.path(), "throughput.png");
        let texts = png::texts(&svg);
        for label in ["1x", "1.5x", "2x", "final", "2.20x", "kept"] {
            assert!(
                texts.iter().any(|t| t == label),
                "no {label} label: {texts:?}"
            );
        }
        assert!(!texts.iter().any(|t| t == "1.00x"));
        // Grid lines at the labels only (a minor grid every tenth of an iteration drew over a
        // hundred).
        let lines = svg.matches("<line").count();
        assert!(lines < 60, "{lines} lines");
        let (w, h) = (p.width(), p.height());
        let (data, legend) = (((0, 0), (w, CHART_HEIGHT)), ((0, CHART_HEIGHT), (w, h)));
        for (color, what) in [
            (RED, "kept steps"),
            (CANDIDATE, "candidates"),
            (KEPT, "kept"),
        ] {
            let n = png::of_color(&p, data.0, data.1, color);
            assert!(n > 60, "{what}: {n} pixels in the plot");
            let n = png::of_color(&p, legend.0, legend.1, color);
            assert!(n > 10, "{what}: {n} pixels in the legend");
        }
        assert!(
            png::inked(&p, legend.0, legend.1) > 2000,
            "the legend's text"
        );
    }

    /// A long tune on a latency, to look at: 60 iterations label every fifth or tenth, the axis
    /// says which way is better.
    #[test]
    fn plot_a_long_latency_tune_renders_to_png() {
        use crate::chart::png;
        let mut settings = crate::tune::journal::fixtures::settings();
        settings.goal.objective = Metric::P99;
        let steps: Vec<(f64, bool)> = (0..60)
            .map(|i| match i % 7 {
                0 => (0.06, true),
                3 => (-0.5, false),
                _ => (-0.02 + 0.01 * (i % 5) as f64, false),
            })
            .collect();
        let r = tune_of(settings, &steps, 0.4);
        let mut svg = String::new();
        draw(&r, &mut svg).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = png::render(&svg, dir.path(), "throughput-long-p99.png");
        let texts = png::texts(&svg);
        let labels = texts.iter().filter(|t| t.parse::<usize>().is_ok()).count();
        assert!(
            (6..=20).contains(&labels),
            "{labels} iteration labels: {texts:?}"
        );
        assert!(
            texts.iter().any(|t| t == "p99 ratio (higher is better)"),
            "{texts:?}"
        );
        assert!(png::inked(&p, (0, CHART_HEIGHT), (p.width(), p.height())) > 2000);
    }

    #[test]
    fn a_reasoning_that_fills_the_grammars_limit_is_marked_cut() {
        let limit = model_reasoning_limit(400);
        assert_eq!(limit, 160);
        let full = "x".repeat(limit);
        assert_eq!(mark_cut(&full, limit), format!("{full}…"));
        let cut_after_space = format!("{} ", "y".repeat(limit - 1));
        assert_eq!(
            mark_cut(&cut_after_space, limit),
            format!("{}…", "y".repeat(limit - 1))
        );
        assert_eq!(mark_cut("short and whole", limit), "short and whole");
        // Multi-byte characters count as one, as the grammar counts them.
        let arrows = "→".repeat(limit - 1);
        assert_eq!(mark_cut(&arrows, limit), arrows);
    }
}
