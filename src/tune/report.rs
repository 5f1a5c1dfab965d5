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
use serde::Serialize;

use super::journal::{self, Decision, Iteration, Record, Sample, Settings};
use crate::bench::stats::{Comparison, Summary};
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
/// the tuned file against the start. Ratios, not absolute ops/s: runs at different times drift
/// on a shared machine, and a "best so far" line from other rounds sat 40% above the best
/// measured beside the candidate. Absolute numbers stay in the report's table.
pub fn plot(r: &Report, path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(r, &mut svg)?;
    crate::runfolder::write(path, svg.as_bytes())
}

/// [`plot`]'s drawing, as SVG text into `svg`.
fn draw(r: &Report, svg: &mut String) -> Result<()> {
    let root = SVGBackend::with_string(svg, (900, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    // (x, ratio, low, high, kept)
    let mut points: Vec<(f64, f64, f64, f64, bool)> = Vec::new();
    let mut path_gain: Vec<(f64, f64)> = vec![(0.0, 1.0)];
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
        path_gain.push((x, gain));
    }
    let n = r.iterations.len().max(1) as f64;
    let fin = r.final_comparison.as_ref().map(|c| {
        (
            n + 1.0,
            1.0 + c.effect,
            1.0 + c.effect_low,
            1.0 + c.effect_high,
        )
    });
    let all = points
        .iter()
        .flat_map(|p| [p.2, p.3])
        .chain(path_gain.iter().map(|g| g.1))
        .chain(fin.iter().flat_map(|f| [f.2, f.3]))
        .filter(|v| v.is_finite());
    // A log scale (a halving looks like a doubling), bounded so one wild interval on a
    // contended machine does not flatten the rest; whiskers past the bounds are clipped.
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (lo, hi) = ((lo * 0.9).clamp(0.1, 0.8), (hi * 1.1).clamp(1.25, 10.0));
    let clip = |v: f64| v.clamp(lo, hi);
    let points: Vec<_> = points
        .into_iter()
        .map(|(x, y, l, h, k)| (x, clip(y), clip(l), clip(h), k))
        .collect();
    let fin = fin.map(|(x, y, l, h)| (x, clip(y), clip(l), clip(h)));
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: each candidate against the best of its rounds ({})",
                r.settings.workload.label(),
                r.proposer.split(" (").next().unwrap_or(&r.proposer)
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5f64..n + 1.5, (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(r.iterations.len() + 3)
        .x_label_formatter(&|x| {
            if (*x - (n + 1.0)).abs() < 0.01 {
                "final".to_string()
            } else {
                format!("{x:.0}")
            }
        })
        .y_labels(8)
        .y_label_formatter(&|y| format!("{y:.2}x"))
        .x_desc("iteration")
        .y_desc(match r.settings.goal.objective {
            Metric::Throughput => "throughput ratio".to_string(),
            m => format!("{m} ratio, start or best / candidate (higher is better)"),
        })
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.5, 1.0), (n + 1.5, 1.0)],
        BLACK.mix(0.4).stroke_width(1),
    ))?;
    let green = RGBColor(0, 140, 60);
    for (kept, color, label) in [
        (false, BLUE, "candidate / best, same rounds (95% CI)"),
        (true, green, "kept"),
    ] {
        let sel: Vec<_> = points.iter().filter(|p| p.4 == kept).collect();
        chart
            .draw_series(
                sel.iter()
                    .map(|&&(x, y, l, h, _)| ErrorBar::new_vertical(x, l, y, h, color.filled(), 8)),
            )?
            .label(label)
            .legend(move |(x, y)| Circle::new((x, y), 4, color.filled()));
        chart.draw_series(
            sel.iter()
                .map(|&&(x, y, _, _, _)| Circle::new((x, y), 4, color.filled())),
        )?;
    }
    chart
        .draw_series(LineSeries::new(
            path_gain.iter().copied(),
            RED.stroke_width(2),
        ))?
        .label("kept steps multiplied (vs start)")
        .legend(|(x, y)| PathElement::new(vec![(x - 8, y), (x + 8, y)], RED));
    if let Some((x, y, l, h)) = fin {
        chart
            .draw_series([ErrorBar::new_vertical(x, l, y, h, BLACK.filled(), 10)])?
            .label("final: tuned / start, side by side (95% CI)")
            .legend(|(x, y)| Circle::new((x, y), 4, BLACK.filled()));
        chart.draw_series([Circle::new((x, y), 5, BLACK.filled())])?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()?;
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
