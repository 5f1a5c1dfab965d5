//! `best_so_far.svg`, a compare's plot: one panel per workload (small multiples on one shared
//! log-scale axis; workloads whose gains differ twofold are never pooled), one line per
//! proposer, and the legend in a band below the panels.
//!
//! Every line is made of same-run ratios only, as a tune's `throughput.svg` is: per seed, the
//! kept steps' measured effects multiplied (each kept candidate against the best of its own
//! interleaved rounds), then per iteration the geometric mean over seeds. Each line ends at the
//! final check, the geometric mean over seeds of tuned / start measured side by side: the
//! number `results.md` reports, so the plot's order at the end is the table's. (Dividing each
//! candidate's ops/s by the shared baseline, measured at another time under other load, ordered
//! the proposers the other way round from the table.)

use std::path::Path;

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{Row, objective_of};
use crate::chart::{self, Entry, Mark};
use crate::tune::objective::Metric;

/// One proposer's line in a workload's panel.
#[derive(Debug, Clone)]
pub struct Line {
    /// The table's proposer label, the legend's short name for it, and its place among the
    /// proposers (its colour in every panel).
    pub proposer: String,
    pub name: String,
    pub index: usize,
    /// Per iteration (0 = the start): the geometric mean over seeds of the kept steps' effects
    /// multiplied (a tune that stopped early stays at its last level).
    pub steps: Vec<f64>,
    /// Each seed's final check (tuned / start on the objective; 1 when the start was kept).
    pub finals: Vec<f64>,
    /// Their geometric mean, where the line ends: the table's tuned / start.
    pub last: f64,
}

/// A workload's panel.
#[derive(Debug, Clone)]
pub struct Panel {
    pub workload: String,
    pub lines: Vec<Line>,
}

fn geomean(v: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x.max(1e-9).ln(), n + 1));
    if n == 0 { 1.0 } else { (sum / n as f64).exp() }
}

/// The panels of `rows`: a workload each, in the rows' order, with a line for every proposer that
/// finished a tune there; every line as long as the longest tune.
pub fn panels(rows: &[Row]) -> Vec<Panel> {
    let labels: Vec<String> = unique(rows.iter().map(|r| r.proposer.clone()));
    let names = short_names(&labels);
    let len = rows
        .iter()
        .flat_map(|r| r.steps.iter().map(Vec::len))
        .max()
        .unwrap_or(1);
    unique(rows.iter().map(|r| r.workload.clone()))
        .into_iter()
        .map(|workload| Panel {
            lines: rows
                .iter()
                .filter(|r| r.workload == workload && r.seeds > 0 && !r.steps.is_empty())
                .map(|r| {
                    let index = labels.iter().position(|l| *l == r.proposer).unwrap_or(0);
                    let at = |s: &Vec<f64>, k: usize| s.get(k).or(s.last()).copied().unwrap_or(1.0);
                    let finals: Vec<f64> = r.gains.iter().map(|g| 1.0 + g).collect();
                    Line {
                        proposer: r.proposer.clone(),
                        name: names[index].clone(),
                        index,
                        steps: (0..len)
                            .map(|k| geomean(r.steps.iter().map(|s| at(s, k))))
                            .collect(),
                        last: geomean(finals.iter().copied()),
                        finals,
                    }
                })
                .collect(),
            workload,
        })
        .collect()
}

/// The distinct values, in the order they first come.
fn unique(values: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// A proposer label ([`super::Variant::label`]) split into its spec and its bracketed parts
/// (`hints=knowledge`, `search`).
fn split_label(label: &str) -> (&str, Vec<&str>) {
    match label.strip_suffix(']').and_then(|l| l.rsplit_once(" [")) {
        Some((spec, parts)) => (spec, parts.split(", ").collect()),
        None => (label, Vec::new()),
    }
}

/// A model spec's model name: a file's stem or a folder's last part for a local path
/// (`qwen2.5-coder-0.5b-instruct-q4_k_m` for `local:/root/.cache/.../qwen2.5-coder-0.5b-instruct-q4_k_m.gguf`),
/// the model alone for an endpoint or server; other proposers (expert, random, search:tpe,
/// a bare ollama) as they are.
fn model_name(spec: &str) -> String {
    let Some((_, model)) = ["local:", "openai:", "ollama:", "lmstudio:"]
        .iter()
        .find_map(|p| spec.strip_prefix(p).map(|m| (p, m)))
    else {
        return spec.to_string();
    };
    let last = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model);
    let lower = last.to_ascii_lowercase();
    match [".gguf", ".safetensors"]
        .iter()
        .find(|e| lower.ends_with(*e))
    {
        Some(ext) if last.len() > ext.len() => last[..last.len() - ext.len()].to_string(),
        _ => last.to_string(),
    }
}

/// The legend's names for proposer labels: each model's name alone ([`model_name`]); with its
/// backend (`ollama:qwen2.5`) when another spec has a model of that name, whole when that is not
/// enough either; then the hint level and the search switch only where they tell two rows of
/// one spec apart (`qwen2.5-0.5b [hints=none]`, `qwen2.5-0.5b [hints=knowledge, search]`).
pub fn short_names(labels: &[String]) -> Vec<String> {
    let split: Vec<(&str, Vec<&str>)> = labels.iter().map(|l| split_label(l)).collect();
    let models: Vec<String> = split.iter().map(|(spec, _)| model_name(spec)).collect();
    let backend = |i: usize| split[i].0.split_once(':').map_or("", |(b, _)| b);
    let n = labels.len();
    (0..n)
        .map(|i| {
            let other = |j: usize| split[j].0 != split[i].0 && models[j] == models[i];
            let base = if !(0..n).any(other) {
                models[i].clone()
            } else if !(0..n).any(|j| other(j) && backend(j) == backend(i)) {
                format!("{}:{}", backend(i), models[i])
            } else {
                split[i].0.to_string()
            };
            let part = |j: usize, key: &str| -> &str {
                let parts = &split[j].1;
                match key {
                    "hints" => parts
                        .iter()
                        .find(|p| p.starts_with("hints="))
                        .map_or("", |p| p),
                    _ => parts.iter().find(|p| **p == "search").map_or("", |p| p),
                }
            };
            let shown: Vec<&str> = ["hints", "search"]
                .into_iter()
                .filter(|k| (0..n).any(|j| split[j].0 == split[i].0 && part(j, k) != part(i, k)))
                .map(|k| part(i, k))
                .filter(|p| !p.is_empty())
                .collect();
            if shown.is_empty() {
                base
            } else {
                format!("{base} [{}]", shown.join(", "))
            }
        })
        .collect()
}

/// Per workload, best so far vs iteration, from same-run ratios, ending at the final check
/// (the module's description).
pub fn plot(rows: &[Row], path: &Path) -> Result<()> {
    let mut svg = String::new();
    draw(rows, &mut svg)?;
    crate::runfolder::write(path, svg.as_bytes())
}

/// The figure's width, a panel's height, and the title's.
const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 340;
const TITLE_HEIGHT: u32 = 56;

/// Where a figure's panels go: (columns, rows).
fn grid(panels: usize) -> (usize, usize) {
    let cols = if panels <= 1 { 1 } else { 2 };
    (cols, panels.max(1).div_ceil(cols))
}

/// The legend: a line per proposer, and what the dots at the end are.
fn legend_entries(panels: &[Panel]) -> Vec<Entry> {
    let mut lines: Vec<&Line> = panels.iter().flat_map(|p| p.lines.iter()).collect();
    lines.sort_by_key(|l| l.index);
    lines.dedup_by_key(|l| l.index);
    let mut entries: Vec<Entry> = lines
        .iter()
        .map(|l| Entry {
            label: l.name.clone(),
            color: chart::color(l.index),
            mark: Mark::LineDot,
        })
        .collect();
    entries.push(Entry {
        label:
            "final check, tuned / start: mean over seeds as in results.md (small dots: each seed)"
                .into(),
        color: RGBColor(90, 90, 90),
        mark: Mark::Dot,
    });
    entries
}

/// [`plot`]'s drawing, as SVG text into `svg`.
fn draw(rows: &[Row], svg: &mut String) -> Result<()> {
    let panels = panels(rows);
    let entries = legend_entries(&panels);
    let (cols, grid_rows) = grid(panels.len());
    let legend_height = chart::legend_height(&entries, WIDTH);
    let height = TITLE_HEIGHT + grid_rows as u32 * PANEL_HEIGHT + legend_height;
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, rest) = root.split_vertically(TITLE_HEIGHT);
    let (body, legend) = rest.split_vertically(grid_rows as u32 * PANEL_HEIGHT);
    let centered = |size| {
        ("sans-serif", size)
            .into_font()
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Top,
            ))
    };
    let objective = objective_of(rows);
    title.draw_text(
        "Best so far vs iteration, per workload",
        &centered(20),
        (WIDTH as i32 / 2, 6),
    )?;
    title.draw_text(
        &match objective {
            Metric::Throughput => "kept steps' same-run gains multiplied, then the final check"
                .to_string(),
            m => format!("on {m} (start / tuned, higher is better): kept steps' same-run gains multiplied, then the final check"),
        },
        &centered(14),
        (WIDTH as i32 / 2, 32),
    )?;
    if panels.is_empty() {
        body.draw_text("no finished tune", &centered(16), (WIDTH as i32 / 2, 40))?;
    }
    let (lo, hi) = y_range(&panels);
    let y_desc = match objective {
        Metric::Throughput => "throughput, tuned / start".to_string(),
        m => format!("{m}, start / tuned"),
    };
    for (area, panel) in body.split_evenly((grid_rows, cols)).iter().zip(&panels) {
        draw_panel(area, panel, (lo, hi), &y_desc)?;
    }
    chart::legend(&legend.margin(0, 0, 60, 10), &entries)?;
    root.present()?;
    Ok(())
}

/// The ratio range every panel shares: every point and final check, with 1x, a little room,
/// at most 0.1x to 20x.
fn y_range(panels: &[Panel]) -> (f64, f64) {
    let all = panels
        .iter()
        .flat_map(|p| p.lines.iter())
        .flat_map(|l| l.steps.iter().chain(&l.finals).copied())
        .filter(|v| v.is_finite());
    let (lo, hi) = all.fold((1.0f64, 1.0f64), |(a, b), v| (a.min(v), b.max(v)));
    ((lo * 0.92).clamp(0.1, 0.9), (hi * 1.08).clamp(1.15, 20.0))
}

/// One workload's panel in `area`: its lines on the shared ratio axis, each ending at its final
/// check with the value written beside it.
fn draw_panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    panel: &Panel,
    (lo, hi): (f64, f64),
    y_desc: &str,
) -> Result<()> {
    let n = panel.lines.iter().map(|l| l.steps.len()).max().unwrap_or(1) - 1;
    let fin = (n + 1) as f64;
    let (w, h) = area.dim_in_pixel();
    let (plot_w, plot_h) = (w.saturating_sub(90).max(100), h.saturating_sub(80).max(100));
    // Room right of the final dots for their values (about 50 pixels).
    let room = 50.0 * (fin + 0.6) / f64::from(plot_w.saturating_sub(50).max(50));
    let per_px = (fin + 0.6 + room) / f64::from(plot_w);
    let clip = |v: f64| v.clamp(lo, hi);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.workload, ("sans-serif", 17))
        .margin(8)
        .margin_right(14)
        .x_label_area_size(40)
        .y_label_area_size(62)
        .build_cartesian_2d(
            chart::ticks(
                -0.3..fin + 0.3 + room,
                chart::iteration_ticks(n + 1, plot_w),
            ),
            chart::ticks((lo..hi).log_scale(), chart::ratio_ticks(lo, hi, plot_h)),
        )?;
    chart
        .configure_mesh()
        .x_label_formatter(&|x| {
            if (*x - fin).abs() < 0.01 {
                "final".to_string()
            } else {
                format!("{x:.0}")
            }
        })
        .y_label_formatter(&|y| chart::ratio_label(*y))
        .x_desc("iteration")
        .y_desc(y_desc)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 14))
        .bold_line_style(BLACK.mix(0.12))
        .draw()?;
    chart.draw_series(LineSeries::new(
        [(-0.3, 1.0), (fin + 0.3 + room, 1.0)],
        BLACK.mix(0.45).stroke_width(1),
    ))?;
    for line in &panel.lines {
        let color = chart::color(line.index);
        let points = line
            .steps
            .iter()
            .enumerate()
            .map(|(k, &v)| (k as f64, clip(v)))
            .chain([(fin, clip(line.last))]);
        chart.draw_series(LineSeries::new(points, color.stroke_width(3)))?;
        chart.draw_series(
            line.finals
                .iter()
                .map(|&v| Circle::new((fin, clip(v)), 3, color.stroke_width(1))),
        )?;
        chart.draw_series([Circle::new((fin, clip(line.last)), 6, color.filled())])?;
    }
    // The values beside the final dots, nudged apart where two would overlap.
    let gap = (hi / lo).ln() * 17.0 / f64::from(plot_h);
    let mut ends: Vec<(f64, usize)> = panel
        .lines
        .iter()
        .map(|l| (clip(l.last).ln(), l.index))
        .collect();
    ends.sort_by(|a, b| a.0.total_cmp(&b.0));
    for i in 1..ends.len() {
        if ends[i].0 - ends[i - 1].0 < gap {
            ends[i].0 = ends[i - 1].0 + gap;
        }
    }
    let style =
        ("sans-serif", 14)
            .into_font()
            .color(&BLACK)
            .pos(plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Left,
                plotters::style::text_anchor::VPos::Center,
            ));
    for (y, index) in ends {
        let line = panel
            .lines
            .iter()
            .find(|l| l.index == index)
            .expect("a line");
        chart.draw_series([Text::new(
            format!("{:.2}x", line.last),
            (fin + 10.0 * per_px, y.exp().min(hi)),
            style.clone().color(&chart::color(index)),
        )])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{Variant, markdown, row, run_dir};
    use super::*;
    use crate::tune::backend::ProposerSpec;
    use crate::tune::journal::{self, fixtures as f};
    use crate::tune::prompt::HintLevel;

    /// The compare: two local models and the expert on two workloads, two seeds. Each
    /// tune starts from a baseline measured under more load (so every candidate's ops/s over it
    /// is about twice its same-run gain) and ends with a final check near its kept steps'
    /// product; the models' candidates run faster than the expert's in absolute terms on
    /// fillrandom, and model B's slowest, although B's same-run gains are the largest.
    fn fake_compare(out: &Path) -> (Vec<Variant>, Vec<Row>) {
        let model = |path: &str| Variant {
            spec: ProposerSpec::Local(path.into()),
            hints: Some(HintLevel::Knowledge),
            search: false,
        };
        let proposers = vec![
            model("/root/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
            model(
                "/root/.cache/huggingface/hub/models--Qwen--Qwen2.5-1.5B-Instruct-GGUF/\
                 snapshots/9f0c/qwen2.5-1.5b-instruct-q4_k_m.gguf",
            ),
            Variant {
                spec: ProposerSpec::Expert,
                hints: None,
                search: false,
            },
        ];
        // Per workload, its baseline, and per proposer the kept steps (iteration, candidate
        // ops/s, same-run effect) and the final check's effect.
        type Kept = &'static [(usize, f64, f64)];
        type Plan = (&'static str, f64, [(Kept, f64); 3]);
        let plans: [Plan; 2] = [
            (
                "fillrandom",
                40_000.0,
                [
                    (&[(1, 110e3, 0.2), (3, 118e3, 0.1), (5, 124e3, 0.18)], 0.56),
                    (&[(1, 80e3, 0.4), (2, 90e3, 0.2), (6, 94e3, 0.14)], 0.92),
                    (&[(1, 100e3, 0.3), (3, 125e3, 0.25), (4, 128e3, 0.08)], 0.75),
                ],
            ),
            (
                "readrandom",
                100_000.0,
                [
                    (&[(2, 190e3, 0.25)], 0.24),
                    (&[(1, 150e3, 0.1), (4, 160e3, 0.05)], 0.12),
                    (&[(1, 170e3, 0.2), (2, 180e3, 0.12)], 0.36),
                ],
            ),
        ];
        for (workload, baseline, per_proposer) in plans {
            for (v, (kept, last)) in proposers.iter().zip(per_proposer) {
                for seed in [1u64, 2] {
                    // Seed 2 a little better than seed 1.
                    let wobble = if seed == 1 { 0.97 } else { 1.03 };
                    let dir = run_dir(out, workload, v, seed);
                    std::fs::create_dir_all(&dir).unwrap();
                    let mut s = f::settings();
                    s.seed = seed;
                    s.iterations = 6;
                    journal::append(&dir, &f::start(s, &v.label(), baseline)).unwrap();
                    for n in 1..=6 {
                        let it = match kept.iter().find(|k| k.0 == n) {
                            Some(&(_, ops, effect)) => f::iteration(n, ops, effect * wobble, true),
                            None => f::iteration(n, 60e3, -0.05, false),
                        };
                        journal::append(&dir, &Record::Iteration(Box::new(it))).unwrap();
                    }
                    let fin = (1.0 + last) * wobble - 1.0;
                    journal::append(&dir, &f::end(fin, false)).unwrap();
                }
            }
        }
        let rows = plans
            .iter()
            .flat_map(|(w, _, _)| {
                proposers
                    .iter()
                    .map(|v| row(out, w, v, &[1, 2]).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect();
        (proposers, rows)
    }

    use crate::tune::journal::Record;

    /// Each table row's tuned / start (its gain column), per workload, best first.
    fn table_order(rows: &[Row]) -> Vec<(String, Vec<(String, f64)>)> {
        let mut out: Vec<(String, Vec<(String, f64)>)> = Vec::new();
        for line in markdown(rows).lines().skip(2) {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let gain: f64 = cells[4].split('%').next().unwrap().parse().unwrap();
            let (proposer, workload) = (cells[1].to_string(), cells[2].to_string());
            match out.iter_mut().find(|(w, _)| *w == workload) {
                Some((_, v)) => v.push((proposer, 1.0 + gain / 100.0)),
                None => out.push((workload, vec![(proposer, 1.0 + gain / 100.0)])),
            }
        }
        for (_, v) in &mut out {
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
        }
        out
    }

    /// The compare: the plot ordered the proposers expert, model A, model B at the last
    /// iteration (each kept candidate over a baseline measured under other load, workloads
    /// pooled) while the table's final checks order them B, expert, A. Now each workload's
    /// lines end, in the table's order, at the table's tuned / start.
    #[test]
    fn plot_order_at_the_end_is_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let (_, rows) = fake_compare(&dir.path().join("cmp"));
        let table = table_order(&rows);
        let panels = panels(&rows);
        assert_eq!(panels.len(), 2);
        for (panel, (workload, expected)) in panels.iter().zip(&table) {
            assert_eq!(&panel.workload, workload);
            let mut lines: Vec<&Line> = panel.lines.iter().collect();
            lines.sort_by(|a, b| b.last.total_cmp(&a.last));
            let order: Vec<&str> = lines.iter().map(|l| l.proposer.as_str()).collect();
            let want: Vec<&str> = expected.iter().map(|(p, _)| p.as_str()).collect();
            assert_eq!(order, want, "{workload}");
            for (l, (_, ratio)) in lines.iter().zip(expected) {
                assert!((l.last - ratio).abs() < 6e-4, "{} vs {ratio}", l.last);
                assert_eq!(l.steps.len(), 7, "the start and six iterations");
            }
        }
        // The data holds the contradiction: divided by the shared baseline, the best so far at
        // the last iteration ordered fillrandom's proposers otherwise.
        let old: Vec<&str> = {
            let mut r: Vec<&Row> = rows.iter().filter(|r| r.workload == "fillrandom").collect();
            let last = |r: &Row| r.curves.iter().map(|c| c.last().unwrap().ln()).sum::<f64>();
            r.sort_by(|a, b| last(b).total_cmp(&last(a)));
            r.iter().map(|r| r.proposer.as_str()).collect()
        };
        let want: Vec<&str> = table[0].1.iter().map(|(p, _)| p.as_str()).collect();
        assert_ne!(old, want);
    }

    #[test]
    fn plot_legend_names_are_the_models_names() {
        let labels: Vec<String> = [
            "local:/root/.cache/lsmtune/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf [hints=knowledge]",
            "local:/m/Qwen2.5-1.5B/ [hints=knowledge]",
            "openai:gpt-4o [hints=knowledge]",
            "expert",
            "search:tpe",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            short_names(&labels),
            [
                "qwen2.5-coder-0.5b-instruct-q4_k_m",
                "Qwen2.5-1.5B",
                "gpt-4o",
                "expert",
                "search:tpe"
            ]
        );
        // Hints and search where they tell one model's rows apart, and only those.
        let labels: Vec<String> = [
            "local:/m/q.gguf [hints=none]",
            "local:/m/q.gguf [hints=knowledge]",
            "local:/m/q.gguf [hints=knowledge, search]",
            "ollama:q [hints=knowledge]",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            short_names(&labels),
            [
                "local:q [hints=none]",
                "local:q [hints=knowledge]",
                "local:q [hints=knowledge, search]",
                "ollama:q"
            ]
        );
    }

    #[test]
    fn plot_best_so_far_renders_to_png() {
        use crate::chart::png;
        let dir = tempfile::tempdir().unwrap();
        let (_, rows) = fake_compare(&dir.path().join("cmp"));
        let mut svg = String::new();
        draw(&rows, &mut svg).unwrap();
        // Rendered first: a failing plot is there to look at.
        let p = png::render(&svg, dir.path(), "best_so_far.png");
        std::fs::write(dir.path().join("best_so_far.svg"), &svg).unwrap();
        assert!(!svg.contains("/root/.cache"), "{svg}");
        let texts = png::texts(&svg);
        for label in [
            "1x",
            "1.5x",
            "2x",
            "final",
            "1.92x",
            "qwen2.5-1.5b-instruct-q4_k_m",
        ] {
            assert!(
                texts.iter().any(|t| t == label),
                "no {label} label: {texts:?}"
            );
        }
        let (w, h) = (p.width(), p.height());
        let panels_end = TITLE_HEIGHT + PANEL_HEIGHT;
        assert!(png::inked(&p, (0, 0), (w, TITLE_HEIGHT)) > 200, "the title");
        for i in 0..3 {
            let c = chart::color(i);
            // Each proposer's line in both panels, and its swatch in the legend below them.
            for x in [0, w / 2] {
                let n = png::of_color(&p, (x, TITLE_HEIGHT), (x + w / 2, panels_end), c);
                assert!(n > 100, "proposer {i}: {n} pixels in the panel at {x}");
            }
            let n = png::of_color(&p, (0, panels_end), (w, h), c);
            assert!(n > 20, "proposer {i}: {n} pixels in the legend");
        }
        assert!(
            png::inked(&p, (0, panels_end), (w, h)) > 2000,
            "the legend's text"
        );
        // One workload: one wide panel.
        let mut svg = String::new();
        draw(&rows[..3], &mut svg).unwrap();
        let p = png::render(&svg, dir.path(), "best_so_far-one-workload.png");
        assert_eq!(p.width(), WIDTH);
        let n = png::of_color(&p, (w / 2, TITLE_HEIGHT), (w, panels_end), chart::color(1));
        assert!(
            n > 100,
            "{n} pixels of the second proposer in the right half"
        );
    }
}
