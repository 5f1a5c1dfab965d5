//! Exporting a tune to where users deploy it: the options a tuned OPTIONS file changes against
//! its base, written in a target's own names, types and units (C++ `rocksdb::Options`, RocksJava,
//! rust-rocksdb, grocksdb, TiKV's TOML, kvrocks.conf, MyRocks' my.cnf, or an OPTIONS fragment).
//!
//! The pipeline: [`plan`] takes the catalog options that differ (typed through the catalog, so a
//! size is a number of bytes and an enum a RocksDB spelling), attaches to each the measured gain
//! of the kept iteration that set it (from a run's `report.json`, see [`gains_from_report`]), and
//! [`versions::check`] refuses options too new for `--rocksdb-version`. Each format is a
//! [`Target`] (in `code` for the programming languages, in `config` for the products' config
//! files): it writes one statement per change or says it cannot; [`render`] assembles the file,
//! with a comment per statement naming its gain, and lists every option the target cannot
//! express in a comment block (and in [`Rendered::not_expressible`] for standard error), so
//! nothing is dropped silently.

mod code;
mod config;
pub mod versions;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::options::catalog::{Catalog, CatalogEntry};
use crate::options::spec::Scope;
use crate::options::value::{OptionType, Value};
use crate::options::{Config, OptionsDoc};

/// The formats `lsmtune export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cpp,
    Java,
    Rust,
    Go,
    Tikv,
    Kvrocks,
    Myrocks,
    Ini,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Cpp,
        Format::Java,
        Format::Rust,
        Format::Go,
        Format::Tikv,
        Format::Kvrocks,
        Format::Myrocks,
        Format::Ini,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Cpp => "cpp",
            Format::Java => "java",
            Format::Rust => "rust",
            Format::Go => "go",
            Format::Tikv => "tikv",
            Format::Kvrocks => "kvrocks",
            Format::Myrocks => "myrocks",
            Format::Ini => "ini",
        }
    }

    /// The file extension of an exported file (`export.<ext>` in a run folder).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Cpp => "cc",
            Format::Java => "java",
            Format::Rust => "rs",
            Format::Go => "go",
            Format::Tikv => "toml",
            Format::Kvrocks => "conf",
            Format::Myrocks => "cnf",
            Format::Ini => "ini",
        }
    }

    /// Parse a format name; the error lists the known ones.
    pub fn parse(s: &str) -> Result<Format> {
        let lower = s.trim().to_ascii_lowercase();
        let alias = match lower.as_str() {
            "c++" | "cxx" | "cc" => "cpp",
            "rocksjava" => "java",
            "rust-rocksdb" | "rs" => "rust",
            "grocksdb" | "golang" => "go",
            "options" => "ini",
            other => other,
        };
        Format::ALL
            .into_iter()
            .find(|f| f.name() == alias)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown export format `{}`; formats: {}",
                    crate::input::clip_to(s, 40),
                    Format::ALL.map(Format::name).join(", ")
                )
            })
    }

    fn target(self) -> &'static dyn Target {
        match self {
            Format::Cpp => &code::Cpp,
            Format::Java => &code::Java,
            Format::Rust => &code::Rust,
            Format::Go => &code::Go,
            Format::Tikv => &config::Tikv,
            Format::Kvrocks => &config::Kvrocks,
            Format::Myrocks => &config::Myrocks,
            Format::Ini => &config::Ini,
        }
    }
}

/// The measured gain of the kept iteration that set an option.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gain {
    pub iteration: usize,
    /// Candidate mean / best mean - 1, with its 95% interval.
    pub effect: f64,
    pub low: f64,
    pub high: f64,
}

impl Gain {
    /// `kept at iteration 3: +12.4% [+8.1%, +16.7%]`.
    pub fn describe(&self) -> String {
        let pct = |v: f64| format!("{:+.1}%", v * 100.0);
        format!(
            "kept at iteration {}: {} [{}, {}]",
            self.iteration,
            pct(self.effect),
            pct(self.low),
            pct(self.high)
        )
    }
}

/// One catalog option the tuned file changes.
#[derive(Debug, Clone)]
pub struct Change {
    pub entry: &'static CatalogEntry,
    pub tuned: Value,
    pub base: Value,
    pub gain: Option<Gain>,
}

impl Change {
    pub fn key(&self) -> &'static str {
        self.entry.spec.key
    }

    /// The option's name inside its section (`table.block_size` → `block_size`).
    pub fn raw_key(&self) -> &'static str {
        crate::options::spec::raw_key_of(self.key())
    }

    pub fn scope(&self) -> Scope {
        self.entry.spec.scope
    }

    pub fn ty(&self) -> &OptionType {
        &self.entry.spec.ty
    }

    /// `key=value` in RocksDB's spelling, for the lists of what a target cannot express.
    pub fn setting(&self) -> String {
        match &self.tuned {
            Value::Double(_) => format!(
                "{}={}",
                self.key(),
                crate::options::value::show(self.ty(), &self.tuned)
            ),
            v => format!("{}={v}", self.key()),
        }
    }

    pub fn int(&self) -> i64 {
        self.tuned
            .as_i64()
            .or_else(|| self.tuned.as_f64().map(|f| f as i64))
            .unwrap_or(0)
    }

    pub fn float(&self) -> f64 {
        self.tuned.as_f64().unwrap_or(0.0)
    }

    pub fn flag(&self) -> bool {
        self.tuned.as_bool().unwrap_or(false)
    }

    pub fn text(&self) -> String {
        self.tuned.to_string()
    }
}

/// What to export: the changes, and the tuned configuration they came from (a target that
/// writes a combined setting, such as a filter policy from its kind and bits, reads the rest).
#[derive(Debug, Clone)]
pub struct Plan {
    pub changes: Vec<Change>,
    pub tuned: Config,
    /// The RocksDB version the output is limited to, when one was asked for.
    pub rocksdb_version: Option<String>,
    /// Where the plan came from, for the header comment.
    pub source: String,
}

impl Plan {
    pub fn change(&self, key: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.key() == key)
    }

    /// The tuned configuration's value of any catalog option.
    pub fn tuned_value(&self, key: &str) -> Option<Value> {
        let catalog = crate::options::catalog().ok()?;
        Some(self.tuned.get(catalog.get(key)?))
    }
}

/// Every catalog option whose value differs between `tuned` and `base`, in catalog order, with
/// the gain that set it when `gains` knows it.
pub fn plan(
    catalog: &'static Catalog,
    tuned: &OptionsDoc,
    base: &OptionsDoc,
    gains: &BTreeMap<String, Gain>,
    source: &str,
) -> Plan {
    let tuned_cfg = Config::new(tuned.clone());
    let diff = tuned_cfg.diff(&Config::new(base.clone()), catalog);
    let changes = catalog
        .entries
        .iter()
        .filter_map(|entry| {
            let (t, b) = diff.get(entry.spec.key)?;
            Some(Change {
                entry,
                tuned: t.clone(),
                base: b.clone(),
                gain: gains.get(entry.spec.key).copied(),
            })
        })
        .collect();
    Plan {
        changes,
        tuned: tuned_cfg,
        rocksdb_version: None,
        source: source.to_string(),
    }
}

#[derive(Deserialize)]
struct ReportView {
    #[serde(default)]
    iterations: Vec<IterationView>,
    #[serde(default)]
    changes: Vec<ChangeView>,
}

#[derive(Deserialize)]
struct IterationView {
    iteration: usize,
    #[serde(default)]
    comparison: Option<ComparisonView>,
}

#[derive(Deserialize)]
struct ComparisonView {
    effect: f64,
    effect_low: f64,
    effect_high: f64,
}

#[derive(Deserialize)]
struct ChangeView {
    key: String,
    #[serde(default)]
    iteration: Option<usize>,
}

/// The gain behind each changed option of a run, from its `report.json`: the report names the
/// kept iteration that set each option (`changes[].iteration`), and that iteration's
/// comparison with the best so far is the gain. Options no iteration set get none.
pub fn gains_from_report(json: &str) -> Result<BTreeMap<String, Gain>> {
    let report: ReportView = serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("report.json is not a report lsmtune wrote: {e}"))?;
    let mut out = BTreeMap::new();
    for c in report.changes {
        let Some(n) = c.iteration else { continue };
        let Some(cmp) = report
            .iterations
            .iter()
            .find(|it| it.iteration == n)
            .and_then(|it| it.comparison.as_ref())
        else {
            continue;
        };
        out.insert(
            c.key,
            Gain {
                iteration: n,
                effect: cmp.effect,
                low: cmp.effect_low,
                high: cmp.effect_high,
            },
        );
    }
    Ok(out)
}

/// The inputs of an export: the tuned file, the base (`None`: the linked RocksDB's defaults, or
/// the run folder's `OPTIONS-base.ini`) and a run folder (its OPTIONS files when the files are
/// not named, and its `report.json` for the gains).
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    pub tuned: Option<PathBuf>,
    pub base: Option<PathBuf>,
    pub run: Option<PathBuf>,
}

/// Read the inputs and plan the export; errors name the file that is missing or does not parse.
pub fn load(inputs: &Inputs) -> Result<Plan> {
    let catalog = crate::options::catalog()?;
    let run_file = |name: &str| inputs.run.as_ref().map(|d| d.join(name));
    let tuned_path = match (&inputs.tuned, run_file(crate::tune::TUNED_FILE)) {
        (Some(p), _) => p.clone(),
        (None, Some(p)) => p,
        (None, None) => bail!("name the tuned OPTIONS file, or a run folder with --run DIR"),
    };
    let tuned = match &inputs.tuned {
        Some(p) => OptionsDoc::read(p)?,
        None => crate::runfolder::read_options(&tuned_path)?,
    };
    let (base, base_name) = match (&inputs.base, run_file(crate::tune::BASE_FILE)) {
        (Some(p), _) => (OptionsDoc::read(p)?, p.display().to_string()),
        (None, Some(p)) => (crate::runfolder::read_options(&p)?, p.display().to_string()),
        (None, None) => (
            crate::options::rocks::linked_defaults()?.clone(),
            format!("RocksDB {} defaults", catalog.rocksdb_version),
        ),
    };
    let gains = match run_file("report.json") {
        Some(p) => match crate::runfolder::read_if_exists(&p)? {
            Some(bytes) => gains_from_report(&String::from_utf8_lossy(&bytes))
                .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?,
            None => BTreeMap::new(),
        },
        None => BTreeMap::new(),
    };
    let source = format!("{} against {base_name}", tuned_path.display());
    Ok(plan(catalog, &tuned, &base, &gains, &source))
}

/// Plan, limit to `version` when given, and render.
pub fn export(inputs: &Inputs, format: Format, version: Option<&str>) -> Result<Rendered> {
    let mut plan = load(inputs)?;
    if let Some(v) = version {
        versions::check(&mut plan, v)?;
    }
    Ok(render(format, &plan))
}

/// The name of the exported file in a run folder: `export.<ext>`.
pub fn run_file_name(format: Format) -> String {
    format!("export.{}", format.extension())
}

/// Which object of the target a statement configures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Group {
    /// DB-wide options (`[DBOptions]`, TiKV's `[rocksdb]`, MyRocks' server variables).
    Db,
    /// Column family options.
    Cf,
    /// Block-based table options.
    Table,
    /// A shared block cache configured apart (TiKV's `[storage.block-cache]`).
    Cache,
}

/// One statement a target writes for a change.
#[derive(Debug, Clone)]
pub struct Statement {
    pub group: Group,
    pub code: String,
}

impl Statement {
    pub fn new(group: Group, code: impl Into<String>) -> Statement {
        Statement {
            group,
            code: code.into(),
        }
    }
}

/// A statement with the comment it carries.
#[derive(Debug, Clone)]
pub struct Placed {
    pub statement: Statement,
    pub comment: Option<String>,
}

/// One output format.
pub trait Target: Sync {
    fn format(&self) -> Format;

    /// The statements expressing `change` (empty when another change's statement already covers
    /// it), or `None` when the target cannot express it.
    fn express(&self, change: &Change, plan: &Plan) -> Option<Vec<Statement>>;

    /// The line comment marker (`//` or `#`).
    fn comment_marker(&self) -> &'static str;

    /// Assemble the file from the placed statements; `header` (comment lines, marker included)
    /// and `missing` (the comment block of what cannot be expressed, marker included, possibly
    /// empty) go where the format allows comments.
    fn assemble(&self, plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String;
}

/// An exported file, and what it could not express.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub text: String,
    /// `key=value` of each change the target cannot express.
    pub not_expressible: Vec<String>,
}

/// Render `plan` in `format`.
pub fn render(format: Format, plan: &Plan) -> Rendered {
    let target = format.target();
    let marker = target.comment_marker();
    let mut placed = Vec::new();
    let mut not_expressible = Vec::new();
    for change in &plan.changes {
        match target.express(change, plan) {
            // The gain rides on the first statement of the change.
            Some(statements) => {
                placed.extend(statements.into_iter().enumerate().map(|(i, statement)| {
                    Placed {
                        statement,
                        comment: change
                            .gain
                            .filter(|_| i == 0)
                            .map(|g| format!("{}: {}", change.key(), g.describe())),
                    }
                }))
            }
            None => not_expressible.push(change.setting()),
        }
    }
    let mut header = String::new();
    let _ = writeln!(
        header,
        "{marker} Tuned RocksDB options exported by lsmtune {} ({}): {} change(s) from {}.",
        env!("CARGO_PKG_VERSION"),
        format.name(),
        plan.changes.len(),
        plan.source
    );
    if let Some(v) = &plan.rocksdb_version {
        let _ = writeln!(header, "{marker} Limited to what RocksDB {v} knows.");
    }
    if plan.changes.iter().any(|c| c.gain.is_some()) {
        let _ = writeln!(
            header,
            "{marker} Each line names the measured gain (throughput vs the best so far, 95% interval) of the step that kept it."
        );
    }
    let mut missing = String::new();
    if !not_expressible.is_empty() {
        let _ = writeln!(
            missing,
            "{marker} not expressible in {} ({} option(s); set them another way or leave them out):",
            format.name(),
            not_expressible.len()
        );
        for s in &not_expressible {
            let _ = writeln!(missing, "{marker}   {s}");
        }
    }
    Rendered {
        text: target.assemble(plan, &placed, &header, &missing),
        not_expressible,
    }
}

/// The statements of one group, each with its comment: trailing (`code  // comment`) when
/// `trailing`, else on the line before. Every line starts with `indent`.
pub(crate) fn lines(
    placed: &[Placed],
    group: Group,
    indent: &str,
    marker: &str,
    trailing: bool,
) -> String {
    let mut out = String::new();
    for p in placed.iter().filter(|p| p.statement.group == group) {
        match (&p.comment, trailing) {
            (Some(c), true) => {
                let _ = writeln!(out, "{indent}{}  {marker} {c}", p.statement.code);
            }
            (Some(c), false) => {
                let _ = writeln!(out, "{indent}{marker} {c}");
                let _ = writeln!(out, "{indent}{}", p.statement.code);
            }
            (None, _) => {
                let _ = writeln!(out, "{indent}{}", p.statement.code);
            }
        }
    }
    out
}

/// Whether any placed statement belongs to `group`.
pub(crate) fn has(placed: &[Placed], group: Group) -> bool {
    placed.iter().any(|p| p.statement.group == group)
}

/// A double as source code writes it: `10.0`, `0.75`.
pub(crate) fn float_literal(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0');
    if s.ends_with('.') {
        format!("{s}0")
    } else {
        s.to_string()
    }
}

/// The group a catalog scope writes to.
pub(crate) fn group_of(scope: Scope) -> Group {
    match scope {
        Scope::Db => Group::Db,
        Scope::Cf => Group::Cf,
        Scope::Table => Group::Table,
    }
}

/// The filter policy a change of `table.filter_bits_per_key` or `table.filter_type` stands for:
/// `Some((kind, bits))`, written once (by the bits change when both changed). `Some(None)`
/// marks the change as covered by the other one.
pub(crate) fn filter_policy(change: &Change, plan: &Plan) -> Option<Option<(String, f64)>> {
    match change.key() {
        "table.filter_type" if plan.change("table.filter_bits_per_key").is_some() => Some(None),
        "table.filter_type" | "table.filter_bits_per_key" => {
            let kind = plan
                .tuned_value("table.filter_type")
                .map(|v| v.to_string())
                .unwrap_or_else(|| "bloom".into());
            let bits = plan
                .tuned_value("table.filter_bits_per_key")
                .and_then(|v| v.as_f64())
                .unwrap_or(0.0);
            Some(Some((kind, bits)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
