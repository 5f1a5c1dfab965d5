//! `lsmtune options ...`: the option catalog of the linked RocksDB, and OPTIONS files shown,
//! validated, compared, calibrated from a proposal, and downgraded for an older db_bench.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::CheckFailed;
use super::args::{CalibrateArgs, Json, parse_duration};
use crate::options::{
    self, Calibrator, Config, OptionsDoc, calibrate,
    catalog::Catalog,
    config::raw_diff,
    rocks,
    value::{human_bytes, show},
};

#[derive(Debug, Subcommand)]
pub enum OptionsCommand {
    /// Show the catalog of tunable options, or an OPTIONS file annotated.
    ///
    /// Without FILE, the catalog; with one, its options with their defaults and meanings.
    ///
    /// Examples:
    ///   lsmtune options show
    ///   lsmtune options show --category compaction
    ///   lsmtune options show /path/to/OPTIONS-000005
    #[command(verbatim_doc_comment)]
    Show {
        /// An OPTIONS file to annotate.
        file: Option<PathBuf>,
        /// Only this category (memtable, compaction, flush, threads, io, wal, write_path,
        /// compression, table, cache, filter, blob, misc).
        #[arg(long)]
        category: Option<String>,
        #[command(flatten)]
        json: Json,
    },
    /// Check an OPTIONS file the way the linked RocksDB will load it, plus lsmtune's ranges and
    /// dependency rules. Exit 0 when RocksDB accepts it, 1 when it does not (or with --strict,
    /// on any warning), 2 when the file cannot be read.
    Validate {
        file: PathBuf,
        /// Treat warnings (out of lsmtune's ranges, dependency rules) as failures.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        json: Json,
    },
    /// Show what differs between two OPTIONS files: tunable options with their meanings first,
    /// then every other key.
    Diff {
        a: PathBuf,
        b: PathBuf,
        #[command(flatten)]
        json: Json,
    },
    /// Calibrate a raw proposal into an OPTIONS file RocksDB accepts, printing each correction.
    ///
    /// PROPOSAL is a file (or - for stdin) holding a JSON object such as
    /// {"changes": {"write_buffer_size": "128MB", "compression": "lz4"}}, `key=value` lines,
    /// or a whole OPTIONS file. The changes are applied on top of --base (default: the linked
    /// RocksDB's defaults).
    ///
    /// Example:
    ///   echo 'write_buffer_size=128MB' | lsmtune options calibrate - --out OPTIONS-tuned.ini
    #[command(verbatim_doc_comment)]
    Calibrate {
        /// The proposal: a file path, or - for standard input.
        proposal: String,
        /// Where to write the calibrated OPTIONS file.
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        calib: CalibrateArgs,
        #[command(flatten)]
        json: Json,
    },
    /// Make an OPTIONS file loadable by an older RocksDB's db_bench.
    ///
    /// Older versions (e.g. Debian's 7.8.3) refuse keys newer versions write: this asks
    /// db_bench, drops each key it names, and repeats.
    ///
    /// Example:
    ///   lsmtune options downgrade OPTIONS-tuned.ini --out OPTIONS-db_bench.ini
    ///   db_bench --options_file=OPTIONS-db_bench.ini --benchmarks=readrandom ...
    #[command(verbatim_doc_comment)]
    Downgrade {
        file: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// The db_bench binary (default: db_bench on PATH).
        #[arg(long)]
        db_bench: Option<PathBuf>,
        /// Stop when one db_bench probe takes longer than this (e.g. 30s, 2m).
        #[arg(long, value_parser = parse_duration, default_value = "60s")]
        timeout: std::time::Duration,
    },
    /// Write the linked RocksDB's default OPTIONS file.
    Defaults {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: OptionsCommand) -> Result<()> {
    refuse_overwriting_inputs(&cmd)?;
    let catalog = options::catalog()?;
    match cmd {
        OptionsCommand::Show {
            file,
            category,
            json,
        } => match file {
            None => show_catalog(catalog, category.as_deref(), json),
            Some(path) => show_file(catalog, &path, json),
        },
        OptionsCommand::Validate { file, strict, json } => validate(catalog, &file, strict, json),
        OptionsCommand::Diff { a, b, json } => diff(catalog, &a, &b, json),
        OptionsCommand::Calibrate {
            proposal,
            out,
            calib,
            json,
        } => calibrate_cmd(catalog, &proposal, &out, &calib, json),
        OptionsCommand::Downgrade {
            file,
            out,
            db_bench,
            timeout,
        } => {
            let bin = crate::bench::db_bench::locate(db_bench.as_deref())?;
            let doc = OptionsDoc::read(&file)?;
            let result = crate::bench::db_bench::downgrade(&bin, &doc, timeout)?;
            for d in &result.dropped {
                println!("dropped {d}");
            }
            result.doc.write(
                &out,
                &format!(
                    "{} made loadable by {} (lsmtune options downgrade); {} setting(s) dropped",
                    file.display(),
                    bin.display(),
                    result.dropped.len()
                ),
            )?;
            println!(
                "wrote {} ({} setting(s) dropped; {} loads it)",
                out.display(),
                result.dropped.len(),
                bin.display()
            );
            Ok(())
        }
        OptionsCommand::Defaults { out } => {
            let doc = rocks::linked_defaults()?;
            doc.write(
                &out,
                &format!(
                    "RocksDB {} defaults, written by lsmtune {}",
                    catalog.rocksdb_version,
                    env!("CARGO_PKG_VERSION")
                ),
            )?;
            println!("wrote {}", out.display());
            Ok(())
        }
    }
}

fn category_name(c: options::spec::Category) -> String {
    serde_json::to_value(c)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn show_catalog(catalog: &Catalog, category: Option<&str>, json: Json) -> Result<()> {
    let entries: Vec<_> = catalog
        .entries
        .iter()
        .filter(|e| category.is_none_or(|c| category_name(e.spec.category) == c))
        .collect();
    if entries.is_empty() {
        bail!(
            "no option in category `{}`; categories: memtable, compaction, flush, threads, io, wal, write_path, compression, table, cache, filter, blob, misc",
            category.unwrap_or_default()
        );
    }
    if json.emit(&entries)? {
        return Ok(());
    }
    println!(
        "{} tunable options of RocksDB {} (defaults read from the linked library)\n",
        entries.len(),
        catalog.rocksdb_version
    );
    println!(
        "{:<48} {:<11} {:<14} {:<28} meaning",
        "key", "section", "default", "type"
    );
    for e in entries {
        let safety = match e.spec.safety {
            options::spec::Safety::Safe => String::new(),
            s => format!(" [{}]", s.describe()),
        };
        let ty = e.spec.ty.describe();
        let ty = if ty.len() > 28 {
            format!("{}...", &ty[..25])
        } else {
            ty
        };
        println!(
            "{:<48} {:<11} {:<14} {:<28} {}{}",
            e.spec.key,
            e.spec.scope.name(),
            show(&e.spec.ty, &e.default),
            ty,
            e.spec.meaning,
            safety
        );
    }
    if !catalog.missing.is_empty() {
        println!(
            "\nnot in this RocksDB (left out): {}",
            catalog.missing.join(", ")
        );
    }
    Ok(())
}

fn show_file(catalog: &Catalog, path: &Path, json: Json) -> Result<()> {
    let doc = OptionsDoc::read(path)?;
    let mut rows = Vec::new();
    for section in &doc.sections {
        let scope = options::spec::Scope::tuned(&section.kind);
        let check_scope = options::spec::Scope::parsed_as(&section.kind);
        for (k, v) in &section.entries {
            let entry = scope.and_then(|s| catalog.by_raw(s, k));
            let known = match check_scope {
                Some(s) => rocks::check_key(s, k, v).is_ok(),
                None => true,
            };
            rows.push(serde_json::json!({
                "section": section.kind.header(),
                "key": k,
                "value": v,
                "tunable": entry.is_some(),
                "known_to_rocksdb": known,
                "default": entry.map(|e| e.default.to_string()),
                "meaning": entry.map(|e| e.spec.meaning),
            }));
        }
    }
    if json.emit(&rows)? {
        return Ok(());
    }
    println!(
        "{}: written by RocksDB {}, read against RocksDB {}",
        path.display(),
        doc.rocksdb_version().unwrap_or("(no version)"),
        catalog.rocksdb_version
    );
    let mut current = String::new();
    let mut unknown = 0;
    for r in &rows {
        let section = r["section"].as_str().unwrap_or_default();
        if section != current {
            println!("\n[{section}]");
            current = section.to_string();
        }
        let value = r["value"].as_str().unwrap_or_default();
        let key = r["key"].as_str().unwrap_or_default();
        let mark = if !r["known_to_rocksdb"].as_bool().unwrap_or(true) {
            unknown += 1;
            format!("  <- unknown to RocksDB {}", catalog.rocksdb_version)
        } else if let Some(d) = r["default"].as_str() {
            let differs = d != value
                && !matches!((d.parse::<f64>(), value.parse::<f64>()), (Ok(a), Ok(b)) if a == b);
            format!(
                "  # {}{}",
                r["meaning"].as_str().unwrap_or_default(),
                if differs {
                    format!(" (default {d})")
                } else {
                    String::new()
                }
            )
        } else {
            String::new()
        };
        println!("  {key}={value}{mark}");
    }
    if unknown > 0 {
        println!(
            "\n{unknown} key(s) unknown to RocksDB {}: kept when reading; `options calibrate --base` drops them with a note.",
            catalog.rocksdb_version
        );
    }
    Ok(())
}

fn validate(catalog: &Catalog, path: &Path, strict: bool, json: Json) -> Result<()> {
    let doc = OptionsDoc::read(path)?;
    let findings = calibrate::validate(catalog, &doc);
    let errors = findings.iter().filter(|f| f.level == "error").count();
    let warnings = findings.len() - errors;
    let skip_text = json.emit(&serde_json::json!({
        "file": path,
        "rocksdb_version": catalog.rocksdb_version,
        "valid": errors == 0,
        "findings": findings,
    }))?;
    if !skip_text {
        for f in &findings {
            let place = match (f.section.is_empty(), f.key.is_empty()) {
                (true, true) => String::new(),
                (true, false) => format!("{}: ", f.key),
                (false, true) => format!("[{}]: ", f.section),
                (false, false) => format!("[{}] {}: ", f.section, f.key),
            };
            println!("{}: {place}{}", f.level, f.message);
        }
        if errors == 0 {
            println!(
                "{}: valid for RocksDB {} ({warnings} warning(s))",
                path.display(),
                catalog.rocksdb_version
            );
        } else {
            println!(
                "{}: NOT valid for RocksDB {}: {errors} error(s), {warnings} warning(s)",
                path.display(),
                catalog.rocksdb_version
            );
        }
    }
    if errors > 0 || (strict && warnings > 0) {
        return Err(CheckFailed.into());
    }
    Ok(())
}

fn diff(catalog: &Catalog, a: &Path, b: &Path, json: Json) -> Result<()> {
    let da = OptionsDoc::read(a)?;
    let db = OptionsDoc::read(b)?;
    let tuned = Config::new(da.clone()).diff(&Config::new(db.clone()), catalog);
    let raw = raw_diff(&da, &db);
    let tuned_json: Vec<_> = tuned
        .iter()
        .map(|(k, (l, r))| serde_json::json!({"key": k, "a": l, "b": r}))
        .collect();
    if json.emit(&serde_json::json!({"tunable": tuned_json, "raw": raw}))? {
        return Ok(());
    }
    println!("a = {}\nb = {}\n", a.display(), b.display());
    if tuned.is_empty() {
        println!(
            "tunable options: no difference (defaults of RocksDB {} fill in what a file leaves out)",
            catalog.rocksdb_version
        );
    } else {
        println!(
            "tunable options ({} differ; missing keys count as RocksDB {} defaults):",
            tuned.len(),
            catalog.rocksdb_version
        );
        for (k, (l, r)) in &tuned {
            let e = catalog.get(k).expect("diff keys come from the catalog");
            println!(
                "  {k}: {} -> {}    # {}",
                show(&e.spec.ty, l),
                show(&e.spec.ty, r),
                e.spec.meaning
            );
        }
    }
    if !raw.is_empty() {
        println!("\nevery key that differs, as written ({}):", raw.len());
        for d in &raw {
            println!(
                "  [{}] {}: {} -> {}",
                d.section,
                d.key,
                d.left.as_deref().unwrap_or("(absent)"),
                d.right.as_deref().unwrap_or("(absent)")
            );
        }
    }
    Ok(())
}

/// No output of a command (`--out`, `--json=FILE`) may be one of its input files.
fn refuse_overwriting_inputs(cmd: &OptionsCommand) -> Result<()> {
    use super::args::refuse_input_as_output;
    match cmd {
        OptionsCommand::Show {
            file: Some(file),
            json,
            ..
        }
        | OptionsCommand::Validate { file, json, .. } => json.refuse_inputs(&[file]),
        OptionsCommand::Diff { a, b, json } => json.refuse_inputs(&[a, b]),
        OptionsCommand::Calibrate {
            proposal,
            out,
            calib,
            json,
        } => {
            let mut inputs: Vec<&Path> = calib.base.iter().map(|p| p.as_path()).collect();
            if proposal != "-" {
                inputs.push(Path::new(proposal));
            }
            refuse_input_as_output("--out", out, &inputs)?;
            json.refuse_inputs(&inputs)
        }
        OptionsCommand::Downgrade { file, out, .. } => {
            refuse_input_as_output("--out", out, &[file])
        }
        OptionsCommand::Show { file: None, .. } | OptionsCommand::Defaults { .. } => Ok(()),
    }
}

fn read_proposal(source: &str) -> Result<String> {
    if source == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the proposal from standard input")?;
        return Ok(s);
    }
    let bytes = crate::input::read(Path::new(source), "proposal", crate::input::SMALL_FILE_MAX)
        .map_err(|e| anyhow::anyhow!(e))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn calibrate_cmd(
    catalog: &Catalog,
    source: &str,
    out: &Path,
    args: &CalibrateArgs,
    json: Json,
) -> Result<()> {
    let text = read_proposal(source)?;
    let calibrator = Calibrator::new(catalog, args.options());
    let (base, base_corrections) = args.base(&calibrator)?;
    let result = calibrator.calibrate_text(&base, &text);
    let header = format!(
        "Calibrated by lsmtune {} for RocksDB {}\nbase: {}\nproposal: {}",
        env!("CARGO_PKG_VERSION"),
        catalog.rocksdb_version,
        args.base
            .as_ref()
            .map_or("RocksDB defaults".into(), |p| p.display().to_string()),
        source
    );
    result.config.doc.write(out, &header)?;
    let memory = calibrate::estimate_memory(catalog, &result.config);
    if json.emit(&serde_json::json!({
        "out": out,
        "format": result.format,
        "reasoning": result.reasoning,
        "changes": result.changes,
        "corrections": result.corrections,
        "base_corrections": base_corrections,
        "memory_estimate": memory,
    }))? {
        return Ok(());
    }
    for c in &base_corrections {
        println!("base: {c}");
    }
    println!(
        "read {} entr{} from the proposal (as {})",
        result.proposed,
        if result.proposed == 1 { "y" } else { "ies" },
        result.format
    );
    if result.corrections.is_empty() {
        println!("no corrections");
    } else {
        println!("{} correction(s):", result.corrections.len());
        for c in &result.corrections {
            println!("  {c}");
        }
    }
    if result.changes.is_empty() {
        println!("no change to the base");
    } else {
        println!("{} change(s) to the base:", result.changes.len());
        for (k, v) in &result.changes {
            let e = catalog.get(k).expect("changes are catalog keys");
            println!("  {k} = {}", show(&e.spec.ty, v));
        }
    }
    println!(
        "memory estimate: {} (block cache {}, memtables {})",
        human_bytes(memory.total as i64),
        human_bytes(memory.block_cache as i64),
        human_bytes(memory.memtables as i64)
    );
    println!(
        "wrote {} (RocksDB {} opens it)",
        out.display(),
        catalog.rocksdb_version
    );
    Ok(())
}
