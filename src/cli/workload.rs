//! `lsmtune workload analyze|from-db|check`: where a workload file comes from. `analyze` reads a
//! RocksDB query trace, `from-db` reads a live database's OPTIONS and LOG without opening it,
//! and both write an equivalent workload file; `check` reads a workload file (TOML, JSON or YCSB
//! properties) and shows what it will run. No output (`--out`, `--json=FILE`) may be the input,
//! nor lie inside the database folder `from-db` reads.

use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow};
use clap::Subcommand;

use super::args::{Json, refuse_input_as_output, refuse_output_inside, say};
use crate::bench::{livedb, trace, workload_file};
use crate::options::value::human_bytes;

#[derive(Debug, Subcommand)]
pub enum WorkloadCommand {
    /// Summarise a RocksDB query trace; with --out, write the equivalent workload file.
    ///
    /// The trace is the binary file `DB::StartTrace` or `db_bench --trace_file` writes. Shown:
    /// operation mix, key and value sizes, skew, queries per second over time.
    ///
    /// Examples:
    ///   lsmtune workload analyze /var/tmp/service.trace
    ///   lsmtune workload analyze service.trace --out service.toml
    ///   lsmtune tune --workload service.toml
    #[command(verbatim_doc_comment)]
    Analyze {
        trace: PathBuf,
        /// Write the equivalent workload file (TOML) here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        json: Json,
    },
    /// Characterize a live database from its files, without touching it.
    ///
    /// Reads its newest OPTIONS file and its LOG (table properties of live files, the last
    /// statistics and DB stats dumps). Nothing is opened for writing and the database's LOCK
    /// is never taken. With --out, write a workload file; `tune --base DB_DIR` starts from the
    /// database's own OPTIONS.
    ///
    /// Examples:
    ///   lsmtune workload from-db /data/rocksdb
    ///   lsmtune workload from-db /data/rocksdb --out mine.toml
    #[command(verbatim_doc_comment)]
    FromDb {
        db_dir: PathBuf,
        /// Write the workload file (TOML) here.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        json: Json,
    },
    /// Read a workload file and show what it will run (or the error, naming the field).
    ///
    /// Examples:
    ///   lsmtune workload check docs/workloads/feed-service.toml
    ///   lsmtune workload check ycsb/workloads/workloada
    #[command(verbatim_doc_comment)]
    Check {
        file: PathBuf,
        #[command(flatten)]
        json: Json,
    },
}

pub fn run(cmd: WorkloadCommand) -> Result<()> {
    match cmd {
        WorkloadCommand::Analyze { trace, out, json } => analyze(&trace, out.as_deref(), &json),
        WorkloadCommand::FromDb { db_dir, out, json } => from_db(&db_dir, out.as_deref(), &json),
        WorkloadCommand::Check { file, json } => check(&file, &json),
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("workload")
        .to_string()
}

fn write_out(out: Option<&Path>, text: &str) -> Result<()> {
    if let Some(out) = out {
        crate::options::ini::write_atomic(out, text.as_bytes())?;
        eprintln!("wrote {}", out.display());
    }
    Ok(())
}

fn analyze(path: &Path, out: Option<&Path>, json: &Json) -> Result<()> {
    if let Some(out) = out {
        refuse_input_as_output("--out", out, &[path])?;
    }
    json.refuse_inputs(&[path])?;
    let t = trace::read(path).map_err(|e| anyhow!(e))?;
    let s = trace::analyze(&t);
    let file = trace::workload_file(&s, &stem(path), &path.display().to_string())
        .map_err(|e| anyhow!(e))?;
    write_out(out, &file)?;
    if json.emit(&s)? {
        return Ok(());
    }
    let e = json.stdout();
    say!(
        e,
        "trace {} (format {}, RocksDB {}): {} queries over {:.1} s",
        path.display(),
        t.trace_version,
        t.rocksdb_version,
        s.records,
        s.seconds
    );
    let total: u64 = s.ops.iter().map(|(_, c)| c).sum();
    for (k, c) in &s.ops {
        say!(
            e,
            "  {k:<13} {c:>10}  {:>5.1}%",
            100.0 * *c as f64 / total.max(1) as f64
        );
    }
    say!(
        e,
        "keys: {} distinct, mean {:.1} B (max {}); values written: mean {:.1} B (max {})",
        s.distinct_keys,
        s.key_bytes_mean,
        s.key_bytes_max,
        s.value_bytes_mean,
        s.value_bytes_max
    );
    say!(
        e,
        "skew: the hottest 1% of the keys took {:.1}% of the accesses",
        s.top1pct_share * 100.0
    );
    let qps: Vec<String> = s.qps.iter().map(|q| format!("{q:.0}")).collect();
    say!(e, "queries/s over time: {}", qps.join(" "));
    if s.skipped_records > 0 {
        say!(
            e,
            "{} records of other kinds passed over",
            s.skipped_records
        );
    }
    if out.is_none() {
        say!(e, "\n{file}");
    }
    Ok(())
}

fn from_db(dir: &Path, out: Option<&Path>, json: &Json) -> Result<()> {
    // Nothing is ever written into the database's folder (its OPTIONS files, its LOG, ...).
    if let Some(out) = out {
        refuse_output_inside("--out", out, dir)?;
    }
    if let Some(file) = json.file() {
        refuse_output_inside("--json", file, dir)?;
    }
    let f = livedb::inspect(dir).map_err(|e| anyhow!(e))?;
    let file = livedb::workload_file(&f, &stem(dir), &dir.display().to_string())
        .map_err(|e| anyhow!(e))?;
    write_out(out, &file)?;
    if json.emit(&f)? {
        return Ok(());
    }
    let e = json.stdout();
    say!(e, "database {} (read only; not opened)", dir.display());
    match &f.options_file {
        Some(p) => say!(
            e,
            "options: {} (start a tune from it with --base {})",
            p.display(),
            dir.display()
        ),
        None => say!(e, "options: no OPTIONS file"),
    }
    say!(
        e,
        "data: {} live SST files, {} entries ({} deletions), mean key {} B, mean value {} B, {} \
         of data blocks",
        f.live_files,
        f.entries,
        f.deletions,
        f.key_size().map_or("?".into(), |k| format!("{k:.1}")),
        f.value_size().map_or("?".into(), |v| format!("{v:.1}")),
        human_bytes(f.data_bytes.min(i64::MAX as u64) as i64)
    );
    if let Some(ops) = f.ops() {
        let shares: Vec<String> = ops
            .shares()
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(n, s)| format!("{n} {:.1}%", s * 100.0))
            .collect();
        say!(e, "mix (statistics): {}", shares.join(", "));
    }
    if let Some(u) = f.uptime_secs {
        say!(
            e,
            "uptime {u:.0} s, {} writes, stalled {}% of the time, write amplification {}",
            f.cumulative_writes.map_or("?".into(), |w| w.to_string()),
            f.stall_percent.map_or("?".into(), |s| format!("{s:.1}")),
            f.write_amp.map_or("?".into(), |w| format!("{w:.1}"))
        );
    }
    for g in &f.gaps {
        say!(e, "not known: {g}");
    }
    if out.is_none() {
        say!(e, "\n{file}");
    }
    Ok(())
}

fn check(path: &Path, json: &Json) -> Result<()> {
    json.refuse_inputs(&[path])?;
    let l = workload_file::load(path).map_err(|e| anyhow!(e))?;
    for n in &l.notes {
        tracing::warn!("{n}");
    }
    if json.emit(&l.workload)? {
        return Ok(());
    }
    let w = &l.workload;
    let m = w.mix.as_ref().expect("files load into a mix");
    let e = json.stdout();
    say!(e, "{}: {} keys, {} threads", w.label(), w.num, w.threads);
    let shares: Vec<String> = m
        .ops
        .shares()
        .into_iter()
        .filter(|(_, s)| *s > 0.0)
        .map(|(n, s)| format!("{n} {:.1}%", s * 100.0))
        .collect();
    say!(e, "  operations: {}", shares.join(", "));
    say!(e, "  keys: {:?}", m.keys);
    say!(
        e,
        "  key size: {}",
        m.key_size
            .as_ref()
            .map_or(format!("{} B", w.key_size), |d| format!("{d:?}"))
    );
    say!(
        e,
        "  value size: {}",
        m.value_size
            .as_ref()
            .map_or(format!("{} B", w.value_size), |d| format!(
                "{d:?} (mean ~{} B)",
                w.value_size
            ))
    );
    if m.ops.seek > 0.0 {
        say!(e, "  scan length: {:?}", m.scan_length);
    }
    if let Some(r) = &m.rate {
        say!(e, "  target rate: {r:?}");
    }
    say!(
        e,
        "  {}; measured: {}",
        if m.load {
            "every key is written once first"
        } else {
            "no load phase"
        },
        match (w.duration, w.ops) {
            (Some(d), _) => format!("{} s", d.as_secs_f64()),
            (None, Some(o)) => format!("{o} operations per thread"),
            (None, None) => format!("{} operations per thread", w.num),
        }
    );
    Ok(())
}
