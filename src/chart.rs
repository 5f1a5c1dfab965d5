//! What lsmtune's plots share (a tune's `throughput.svg`, a compare's `best_so_far.svg`): the
//! labels of a log-scale ratio axis, picked from a ladder of ratios a person reads at a glance
//! (0.5x, 1x, 1.5x, 2x, 3x), the labels of an iteration axis that ends at the final check, a
//! palette that stays readable on white, and a legend drawn in a band of its own, beside the
//! data instead of over it.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

/// An axis labelled, and gridded, at the given values only: no minor grid between them.
pub struct Ticks<R> {
    inner: R,
    at: Vec<f64>,
}

/// `range` (`0.0..9.0`, `(0.5..3.0).log_scale()`) labelled at `at` alone.
pub fn ticks<R: AsRangedCoord<Value = f64>>(range: R, at: Vec<f64>) -> Ticks<R::CoordDescType> {
    Ticks {
        inner: range.into(),
        at,
    }
}

impl<R: Ranged<ValueType = f64>> Ranged for Ticks<R> {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.at.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.inner.range()
    }

    fn axis_pixel_range(&self, limit: (i32, i32)) -> Range<i32> {
        self.inner.axis_pixel_range(limit)
    }
}

/// The ratios a log axis may be labelled with, the roundest first: a ratio is taken when it is
/// far enough from every one taken before it.
const LADDER: &[f64] = &[
    1.0, 2.0, 0.5, 10.0, 5.0, 0.1, 0.25, 20.0, // the roundest
    1.5, 3.0, 0.75, 4.0, 8.0, 0.2, 15.0, // then these
    1.25, 0.8, 2.5, 1.1, 0.9, // and near 1x when the range is narrow
];

/// The fewest pixels between two labels of a ratio axis.
const MIN_GAP: f64 = 30.0;

/// The ratios to label a log axis from `lo` to `hi` (a range holding 1) that is `pixels` tall:
/// 1x, then the ladder's ratios inside the range, roundest first, each at least [`MIN_GAP`]
/// pixels from every label taken (a wide range gets 0.5x, 2x, 3x; a narrow one 0.9x, 1.1x,
/// 1.25x as well).
pub fn ratio_ticks(lo: f64, hi: f64, pixels: u32) -> Vec<f64> {
    let span = (hi / lo).ln().max(1e-9);
    let px = |a: f64, b: f64| (b / a).ln().abs() / span * f64::from(pixels);
    let mut ticks: Vec<f64> = Vec::new();
    // Not on the axis' very ends, where a label crowds the other axis' (1x always).
    let inside = |v: f64| v == 1.0 || (px(lo, v) >= MIN_GAP / 2.0 && px(v, hi) >= MIN_GAP / 2.0);
    for &v in LADDER {
        if v >= lo && v <= hi && inside(v) && ticks.iter().all(|&t| px(t, v) >= MIN_GAP) {
            ticks.push(v);
        }
    }
    ticks.sort_by(f64::total_cmp);
    ticks
}

/// A ratio as its axis label: `0.5x`, `1x`, `1.25x`.
pub fn ratio_label(v: f64) -> String {
    let s = format!("{v:.2}");
    format!("{}x", s.trim_end_matches('0').trim_end_matches('.'))
}

/// The iterations to label on an axis from 0 to `last` (the final check's place, one past the
/// last iteration) that is `pixels` wide: every one, or every second, fifth, tenth... when
/// labels would crowd, always with 0 and `last`.
pub fn iteration_ticks(last: usize, pixels: u32) -> Vec<f64> {
    let fit = (f64::from(pixels) / 44.0).max(2.0) as usize;
    let step = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]
        .into_iter()
        .find(|s| last / s < fit)
        .unwrap_or(last.max(1));
    let mut ticks: Vec<f64> = (0..last)
        .step_by(step)
        .filter(|&i| i == 0 || last - i >= step.div_ceil(2))
        .map(|i| i as f64)
        .collect();
    ticks.push(last as f64);
    ticks
}

/// Distinct colours that read on white (Tableau 10; no yellow), one per line.
pub fn color(i: usize) -> RGBColor {
    const TABLEAU: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    TABLEAU[i % TABLEAU.len()]
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A line.
    Line,
    /// A dot.
    Dot,
    /// A dot with a vertical whisker (a point with its interval).
    Whisker,
    /// A line ending in a dot.
    LineDot,
}

/// One legend entry.
#[derive(Debug, Clone)]
pub struct Entry {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

/// The legend's font size.
pub const LEGEND_FONT: u32 = 15;
const ROW: u32 = LEGEND_FONT + 9;
const PAD: u32 = 8;
const SWATCH: u32 = 42;

/// About how wide `text` is at `size` pixels in a sans-serif font, rather more than less (DejaVu
/// Sans averages some 0.4 of the size over ordinary text; plotters' own guess for the SVG
/// backend is narrower).
pub fn text_width(text: &str, size: u32) -> u32 {
    (text.chars().count() as f64 * f64::from(size) * 0.5).ceil() as u32
}

/// How many columns the legend takes in a band `width` wide.
fn columns(entries: &[Entry], width: u32) -> usize {
    let widest = entries
        .iter()
        .map(|e| SWATCH + text_width(&e.label, LEGEND_FONT) + 2 * PAD)
        .max()
        .unwrap_or(1);
    ((width.saturating_sub(2 * PAD) / widest.max(1)) as usize).clamp(1, entries.len().max(1))
}

/// The height of a legend band `width` wide holding `entries`.
pub fn legend_height(entries: &[Entry], width: u32) -> u32 {
    let rows = entries.len().div_ceil(columns(entries, width)) as u32;
    rows * ROW + 3 * PAD
}

/// Draw `entries` into `area`, a band of its own below (or beside) the plots, in as many columns
/// as fit; a label too long for its column is cut with an ellipsis.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[Entry],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (width, _) = area.dim_in_pixel();
    let cols = columns(entries, width);
    let col_width = (width - 2 * PAD) / cols as u32;
    let style = ("sans-serif", LEGEND_FONT).into_font().color(&BLACK).pos(
        plotters::style::text_anchor::Pos::new(
            plotters::style::text_anchor::HPos::Left,
            plotters::style::text_anchor::VPos::Center,
        ),
    );
    for (i, e) in entries.iter().enumerate() {
        let (col, row) = ((i % cols) as u32, (i / cols) as u32);
        let x = (PAD + col * col_width) as i32;
        let y = (PAD + row * ROW + ROW / 2) as i32;
        let mid = x + SWATCH as i32 / 2;
        let c = e.color;
        match e.mark {
            Mark::Line | Mark::LineDot => {
                area.draw(&PathElement::new(
                    vec![(x + 2, y), (x + SWATCH as i32 - 12, y)],
                    c.stroke_width(3),
                ))?;
                if e.mark == Mark::LineDot {
                    area.draw(&Circle::new((x + SWATCH as i32 - 12, y), 4, c.filled()))?;
                }
            }
            Mark::Dot => area.draw(&Circle::new((mid, y), 4, c.filled()))?,
            Mark::Whisker => {
                area.draw(&PathElement::new(
                    vec![(mid, y - 8), (mid, y + 8)],
                    c.stroke_width(2),
                ))?;
                area.draw(&Circle::new((mid, y), 4, c.filled()))?;
            }
        }
        let room = col_width.saturating_sub(SWATCH + PAD) as usize;
        let fit = room * 10 / (LEGEND_FONT as usize * 5);
        let label = if e.label.chars().count() > fit && fit > 1 {
            format!("{}…", e.label.chars().take(fit - 1).collect::<String>())
        } else {
            e.label.clone()
        };
        area.draw_text(&label, &style, (x + SWATCH as i32, y))?;
    }
    Ok(())
}

/// Rendering plots to PNG in tests, to check what a person would see (resvg, a dev-dependency):
/// the image is written under the test's folder and, when `LSMTUNE_PLOT_DIR` is set, there too.
#[cfg(test)]
pub(crate) mod png {
    use std::path::Path;

    use resvg::tiny_skia::Pixmap;

    /// Render `svg` with the system's fonts (sans-serif: DejaVu Sans, as on Debian) and write
    /// it as `dir/name`; the pixels.
    pub fn render(svg: &str, dir: &Path, name: &str) -> Pixmap {
        let mut opt = resvg::usvg::Options::default();
        opt.fontdb_mut().load_system_fonts();
        opt.fontdb_mut().set_sans_serif_family("DejaVu Sans");
        if opt.fontdb.is_empty() {
            eprintln!("no system fonts: the PNG has shapes and no text");
        }
        let tree = resvg::usvg::Tree::from_str(svg, &opt).expect("the SVG parses");
        let size = tree.size().to_int_size();
        let mut pixmap = Pixmap::new(size.width(), size.height()).expect("a non-empty image");
        resvg::render(
            &tree,
            resvg::tiny_skia::Transform::default(),
            &mut pixmap.as_mut(),
        );
        pixmap.save_png(dir.join(name)).expect("the PNG is written");
        if let Some(out) = std::env::var_os("LSMTUNE_PLOT_DIR") {
            std::fs::create_dir_all(&out).unwrap();
            pixmap
                .save_png(Path::new(&out).join(name))
                .expect("the PNG is written to LSMTUNE_PLOT_DIR");
        }
        pixmap
    }

    /// Every text of a plotters SVG (each `<text>` holds one line, the escaped text).
    pub fn texts(svg: &str) -> Vec<String> {
        svg.split("</text>")
            .filter_map(|chunk| {
                let (_, inner) = chunk.rsplit_once("<text")?;
                let (_, text) = inner.split_once('>')?;
                Some(text.trim().replace("&amp;", "&").replace("&apos;", "'"))
            })
            .collect()
    }

    /// How many pixels of the rectangle from (x0, y0) to (x1, y1) are not white.
    pub fn inked(p: &Pixmap, (x0, y0): (u32, u32), (x1, y1): (u32, u32)) -> usize {
        let mut n = 0;
        for y in y0..y1.min(p.height()) {
            for x in x0..x1.min(p.width()) {
                let c = p.pixel(x, y).expect("inside the image");
                if c.alpha() > 0 && (c.red() < 240 || c.green() < 240 || c.blue() < 240) {
                    n += 1;
                }
            }
        }
        n
    }

    /// How many pixels of the rectangle are of about `color` (each channel within 40).
    pub fn of_color(
        p: &Pixmap,
        (x0, y0): (u32, u32),
        (x1, y1): (u32, u32),
        color: plotters::style::RGBColor,
    ) -> usize {
        let near = |a: u8, b: u8| a.abs_diff(b) < 40;
        let mut n = 0;
        for y in y0..y1.min(p.height()) {
            for x in x0..x1.min(p.width()) {
                let c = p.pixel(x, y).expect("inside the image").demultiply();
                if c.alpha() > 200
                    && near(c.red(), color.0)
                    && near(c.green(), color.1)
                    && near(c.blue(), color.2)
                {
                    n += 1;
                }
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plot_ratio_axes_are_labelled_at_readable_ratios_with_1x() {
        // The plot: a 2.2x gain on a range up to about 2.5x.
        let t = ratio_ticks(0.8, 2.5, 400);
        assert!(
            t.contains(&1.0) && t.contains(&1.5) && t.contains(&2.0),
            "{t:?}"
        );
        assert!(t.iter().all(|v| (0.8..=2.5).contains(v)), "{t:?}");
        let labels: Vec<String> = t.iter().map(|&v| ratio_label(v)).collect();
        assert!(labels.contains(&"1x".to_string()) && labels.contains(&"2x".to_string()));
        // A wide range skips the ratios near 1x; a narrow one has them.
        let wide = ratio_ticks(0.1, 10.0, 400);
        assert_eq!(wide, [0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0]);
        assert!(ratio_ticks(0.8, 1.25, 400).contains(&1.1));
        // Never two labels closer than the gap.
        for w in wide.windows(2) {
            assert!(
                (w[1] / w[0]).ln() / 100f64.ln() * 400.0 >= MIN_GAP,
                "{wide:?}"
            );
        }
        assert_eq!(ratio_label(0.25), "0.25x");
        assert_eq!(ratio_label(1.5), "1.5x");
        assert_eq!(
            iteration_ticks(9, 800),
            (0..=9).map(f64::from).collect::<Vec<_>>()
        );
        let many = iteration_ticks(101, 800);
        assert!(many.len() <= 19 && many[0] == 0.0 && *many.last().unwrap() == 101.0);
    }
}
