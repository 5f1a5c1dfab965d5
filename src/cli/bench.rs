//! `lsmtune bench`: measure one configuration on one workload, a line per repeat, then the mean
//! with its interval, RocksDB's diagnostics, and the verdict against a baseline run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::args::{Json, count, fraction, say};
use super::note_swept;
use super::progress::Spinner;
use crate::bench::workload_file::Source;
use crate::bench::{self, BenchEngine, BenchRun, Workload};
use crate::options::{self, CalibrateOptions, Calibrator, OptionsDoc, rocks, value::human_bytes};

/// Which engine measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    /// The in-process harness (RocksDB linked into lsmtune), isolated per run.
    Inprocess,
    /// An external db_bench binary (`--db-bench PATH`, default: on PATH).
    #[value(name = "db_bench")]
    DbBench,
}

/// Flags of `lsmtune bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The workload: fillseq, fillrandom, overwrite, readrandom, readrandomwriterandom,
    /// readwhilewriting, seekrandom, updaterandom, ycsb-a ... ycsb-f, mixgraph; a workload file
    /// (.toml, .json, YCSB properties; see docs/workloads); or trace:FILE to replay a RocksDB
    /// trace.
    #[arg(long, value_parser = |s: &str| s.parse::<crate::bench::workload_file::Source>())]
    pub workload: crate::bench::workload_file::Source,
    /// OPTIONS file to measure, or a RocksDB database folder (its newest OPTIONS-NNNNNN;
    /// the database is never opened). Default: the linked RocksDB's defaults.
    #[arg(long)]
    pub options: Option<PathBuf>,
    /// Measurements to take (each in a fresh database).
    #[arg(long, value_parser = count::<usize, 1, 10000>, default_value_t = 3)]
    pub repeats: usize,
    #[arg(long, value_enum, default_value_t = EngineChoice::Inprocess)]
    pub engine: EngineChoice,
    /// The db_bench binary for --engine db_bench.
    #[arg(long)]
    pub db_bench: Option<PathBuf>,
    #[command(flatten)]
    pub json: Json,
    /// Compare against a previous run (a `--json` file): better / no significant difference /
    /// worse, with the effect and its 95% interval (Welch's t-test).
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// Smallest relative effect called a difference (0.02 = 2%).
    #[arg(long, allow_hyphen_values = true, value_parser = fraction, default_value_t = 0.02)]
    pub min_effect: f64,
    #[command(flatten)]
    pub shape: super::args::WorkloadFlags,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Folder in which run folders are created and removed (default: the temp folder).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Stop a run that takes longer than this.
    #[arg(long = "run-timeout", visible_alias = "timeout", value_parser = super::args::run_timeout, default_value = "10m")]
    pub timeout: std::time::Duration,
    /// Stop a run whose memory exceeds this: a size (8G) or a share of memory (75%).
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget, default_value = "75%")]
    pub memory_limit: u64,
    /// Confine each benchmark worker to this much memory, page cache included (a memory
    /// cgroup: v2 where delegated, else v1; needs root or a delegated cgroup, else an error that
    /// says why), so a data set larger than it really reads from the device (see
    /// --dataset-size). The report states what applied.
    #[arg(long, value_parser = crate::sysinfo::parse_memory_budget)]
    pub worker_memory: Option<u64>,
    /// Drop the page cache before each run, so each starts cold (root only).
    #[arg(long)]
    pub drop_caches: bool,
}

impl BenchArgs {
    pub fn workload(&self) -> Result<crate::bench::Workload> {
        let mut w = self.shape.build(
            &self.workload,
            &super::args::SizeDefaults {
                num: 100_000,
                value_size: 100,
                threads: 1,
            },
        )?;
        w.seed = self.seed;
        Ok(w)
    }
}

fn fmt_opt(v: Option<f64>, scale: f64, unit: &str) -> String {
    v.map_or("-".into(), |x| format!("{:.1}{unit}", x * scale))
}

impl BenchArgs {
    /// The workload, after the checks before anything runs: --json=FILE is none of the files
    /// this reads, --work-dir exists and has room for the database.
    fn checked_workload(&self) -> Result<Workload> {
        let mut inputs: Vec<&std::path::Path> = (self.options.iter())
            .chain(self.baseline.iter())
            .map(|p| p.as_path())
            .collect();
        if let Source::File(p) | Source::Trace(p) = &self.workload {
            inputs.push(p);
        }
        self.json.refuse_inputs(&inputs)?;
        let workload = self.workload()?;
        if self.repeats == 0 {
            bail!("--repeats must be at least 1");
        }
        if let Some(dir) = &self.work_dir
            && !dir.is_dir()
        {
            bail!("--work-dir {} is not an existing folder", dir.display());
        }
        crate::sysinfo::check_room(self.work_dir.as_deref(), &workload)
            .map_err(|e| anyhow::anyhow!(e))?;
        note_swept(self.work_dir.as_deref());
        Ok(workload)
    }

    /// The --baseline run, if given.
    fn read_baseline(&self) -> Result<Option<BenchRun>> {
        let Some(path) = &self.baseline else {
            return Ok(None);
        };
        let bytes = crate::input::read(path, "--baseline", crate::input::SMALL_FILE_MAX)
            .map_err(|e| anyhow::anyhow!(e))?;
        Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "--baseline {} is not a `lsmtune bench --json` file",
                path.display()
            )
        })?))
    }

    /// The configuration measured: --options prepared as a base (its notes logged), else the
    /// linked RocksDB's defaults.
    fn document(&self) -> Result<OptionsDoc> {
        let Some(path) = &self.options else {
            return Ok(rocks::linked_defaults()?.clone());
        };
        let calibrator = Calibrator::new(options::catalog()?, CalibrateOptions::default());
        let (config, notes) = calibrator
            .prepare_base(OptionsDoc::read(&options::ini::options_file(
                "--options",
                path,
            )?)?)
            .with_context(|| format!("--options {}", path.display()))?;
        for n in notes {
            tracing::warn!("{n}");
        }
        Ok(config.doc)
    }

    /// The engine --engine names, with the run limits; db_bench says which of `doc`'s settings
    /// it does not know. The in-process engine counts operations into `live`.
    fn engine(&self, doc: &OptionsDoc, live: &Arc<AtomicU64>) -> Result<Box<dyn BenchEngine>> {
        let limits = bench::Limits {
            timeout: self.timeout,
            memory: self.memory_limit,
            cage: self.worker_memory,
            drop_caches: self.drop_caches,
        };
        if self.engine == EngineChoice::Inprocess {
            return Ok(Box::new(bench::InProcess {
                exe: bench::worker::worker_exe()?,
                limits,
                live_ops: live.clone(),
            }));
        }
        let path = bench::db_bench::locate(self.db_bench.as_deref())?;
        let engine = bench::DbBench::new(path, limits)?;
        let (_, dropped) = engine.compatible(doc)?;
        if !dropped.is_empty() {
            let shown: Vec<&str> = dropped.iter().take(6).map(String::as_str).collect();
            tracing::warn!(
                "{} setting(s) db_bench {} does not know are left out ({}{}); `lsmtune options downgrade` lists them all",
                dropped.len(),
                engine.version,
                shown.join(", "),
                if dropped.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            );
        }
        Ok(Box::new(engine))
    }
}

/// The repeats, a line per repeat under a spinner showing the live operation count.
fn measure(
    engine: &dyn BenchEngine,
    doc: &OptionsDoc,
    workload: &Workload,
    args: &BenchArgs,
    live: &Arc<AtomicU64>,
) -> BenchRun {
    let repeat_no = Arc::new(AtomicU64::new(1));
    let mut spinner = {
        let (repeat_no, repeats) = (repeat_no.clone(), args.repeats);
        Spinner::new(super::log::quiet()).run(live.clone(), move |ops, rate| {
            format!(
                "repeat {}/{repeats}: {ops} ops ({rate:.0} ops/s)",
                repeat_no.load(Ordering::Relaxed)
            )
        })
    };
    let bar = spinner.bar.clone();
    let run = bench::run_repeats(
        engine,
        doc,
        workload,
        args.repeats,
        args.work_dir.as_deref(),
        |i, outcome| {
            match outcome {
                Ok(m) => bar.println(format!(
                    "  repeat {}: {:.0} ops/s, {:.1} MiB/s, p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us",
                    i + 1,
                    m.ops_per_sec,
                    m.mb_per_sec,
                    m.latency_us.p50,
                    m.latency_us.p99,
                    m.latency_us.p999
                )),
                Err(f) => bar.println(format!("  repeat {}: FAILED: {f}", i + 1)),
            }
            live.store(0, Ordering::Relaxed);
            repeat_no.store(i as u64 + 2, Ordering::Relaxed);
        },
    );
    spinner.stop();
    run
}

/// The mean with its interval, and the last run's diagnostics, size, CPU, memory.
fn print_summary(run: &BenchRun, text_to_stderr: bool) {
    if let Some(s) = &run.ops_per_sec {
        say!(
            text_to_stderr,
            "throughput: {:.0} ops/s +- {:.0} (95% CI, {:.1}%), sd {:.0}, n = {}",
            s.mean,
            s.ci95,
            100.0 * s.rel_ci(),
            s.sd,
            s.n
        );
    }
    let Some(m) = run.measurements.last() else {
        return;
    };
    if let Some(d) = &m.diagnostics {
        say!(
            text_to_stderr,
            "last run: stall {}, write amplification {}, block cache hit {}, bloom useful {}, L0 files {}",
            fmt_opt(d.stall_share, 100.0, "%"),
            fmt_opt(d.write_amplification, 1.0, "x"),
            fmt_opt(d.block_cache_hit_rate, 100.0, "%"),
            fmt_opt(d.bloom_usefulness, 100.0, "%"),
            d.l0_files
        );
    }
    say!(
        text_to_stderr,
        "          size on disk {}, CPU {}, peak RSS {}, fill {:.1} s",
        human_bytes(m.size_on_disk as i64),
        m.cpu_seconds.map_or("-".into(), |c| format!("{c:.1} s")),
        m.peak_rss_bytes
            .map_or("-".into(), |r| human_bytes(r as i64)),
        m.fill_seconds
    );
    if let Some(how) = &m.confinement {
        say!(text_to_stderr, "          memory: {how}");
    }
}

/// The verdict against the baseline run.
fn print_verdict(base: &BenchRun, run: &BenchRun, min_effect: f64, text_to_stderr: bool) {
    if base.workload != run.workload || base.engine != run.engine {
        tracing::warn!("the baseline was measured with another workload or engine");
    }
    match bench::stats::compare(&base.throughputs(), &run.throughputs(), min_effect) {
        Some(c) => say!(
            text_to_stderr,
            "vs baseline: {} ({:+.1}% [{:+.1}%, {:+.1}%], p = {:.3})",
            c.verdict,
            100.0 * c.effect,
            100.0 * c.effect_low,
            100.0 * c.effect_high,
            c.p_value
        ),
        None => say!(
            text_to_stderr,
            "vs baseline: needs at least 2 successful repeats on each side"
        ),
    }
}

pub fn run(args: &BenchArgs) -> Result<()> {
    // With `--json` the result goes to stdout as JSON, so the text goes to stderr.
    let text_to_stderr = args.json.stdout();
    let workload = args.checked_workload()?;
    let baseline = args.read_baseline()?;
    let doc = args.document()?;
    let live = Arc::new(AtomicU64::new(0));
    let engine = args.engine(&doc, &live)?;
    say!(
        text_to_stderr,
        "{} on {}: {} keys x ({} + {} bytes), {} thread(s), {} repeat(s)",
        workload.label(),
        engine.name(),
        workload.num,
        workload.key_size,
        workload.value_size,
        workload.threads,
        args.repeats
    );
    let run = measure(engine.as_ref(), &doc, &workload, args, &live);
    print_summary(&run, text_to_stderr);
    if let Some(base) = &baseline {
        print_verdict(base, &run, args.min_effect, text_to_stderr);
    }
    args.json.emit(&run)?;
    if run.measurements.is_empty() {
        bail!(
            "every repeat failed: {}",
            run.failures
                .iter()
                .map(|f| f.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    Ok(())
}
