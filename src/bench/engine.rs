//! The benchmark seam: `BenchEngine::measure(config, workload) -> Measurement`, with two
//! engines — the in-process harness (run in an isolated worker process) and an external
//! `db_bench` — the scratch folders runs happen in, and `bench`'s document of repeated runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::db_bench;
use super::measure::{Measurement, dir_size};
use super::mixgraph::MixGraph;
use super::sample::{Failure, Sample, measure_interleaved};
use super::stats::Summary;
use super::worker::{Limits, RunFailure, run_isolated, watch};
use super::workload::{Kind, Workload};
use crate::options::{OptionsDoc, rocks};

/// Something that measures a configuration on a workload.
pub trait BenchEngine {
    /// `inprocess` or `db_bench <version>`.
    fn name(&self) -> String;
    /// One run in `work`, a fresh folder the caller owns.
    fn measure(
        &self,
        doc: &OptionsDoc,
        workload: &Workload,
        work: &Path,
    ) -> Result<Measurement, RunFailure>;
}

/// The in-process harness, each run in a worker process.
pub struct InProcess {
    pub exe: PathBuf,
    pub limits: Limits,
    /// Live operation count of the running measurement, for progress displays.
    pub live_ops: Arc<AtomicU64>,
}

impl BenchEngine for InProcess {
    fn name(&self) -> String {
        "inprocess".into()
    }

    fn measure(
        &self,
        doc: &OptionsDoc,
        w: &Workload,
        work: &Path,
    ) -> Result<Measurement, RunFailure> {
        run_isolated(
            &self.exe,
            doc,
            w,
            work,
            self.limits,
            None,
            Some(self.live_ops.clone()),
        )
    }
}

/// An external db_bench binary. Files are downgraded once per configuration to what its
/// RocksDB version loads.
pub struct DbBench {
    pub path: PathBuf,
    pub version: String,
    pub limits: Limits,
    downgraded: Mutex<Vec<(OptionsDoc, OptionsDoc, Vec<String>)>>,
}

impl DbBench {
    pub fn new(path: PathBuf, limits: Limits) -> anyhow::Result<DbBench> {
        let version = db_bench::version(&path, db_bench::PROBE_TIMEOUT.min(limits.timeout))?;
        Ok(DbBench {
            path,
            version,
            limits,
            downgraded: Mutex::new(Vec::new()),
        })
    }

    /// The copy of `doc` this db_bench loads, and what was dropped to get it.
    pub fn compatible(&self, doc: &OptionsDoc) -> anyhow::Result<(OptionsDoc, Vec<String>)> {
        let mut cache = self.downgraded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, d, dropped)) = cache.iter().find(|(o, _, _)| o == doc) {
            return Ok((d.clone(), dropped.clone()));
        }
        let result = db_bench::downgrade(
            &self.path,
            doc,
            db_bench::PROBE_TIMEOUT.min(self.limits.timeout),
        )?;
        cache.push((doc.clone(), result.doc.clone(), result.dropped.clone()));
        Ok((result.doc, result.dropped))
    }

    fn run(&self, args: &[String], work: &Path, tag: &str) -> Result<(String, u64), RunFailure> {
        let out_file = work.join(format!("db_bench-{tag}.out"));
        let stdout = std::fs::File::create(&out_file).map_err(|e| RunFailure::Spawn {
            message: e.to_string(),
        })?;
        let stderr = stdout.try_clone().map_err(|e| RunFailure::Spawn {
            message: e.to_string(),
        })?;
        let mut cmd = Command::new(&self.path);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        super::worker::die_with_parent(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| RunFailure::Spawn {
            message: format!("{}: {e}", self.path.display()),
        })?;
        tracing::debug!("db_bench {} started: {}", child.id(), args.join(" "));
        let (status, peak) = watch(&mut child, self.limits)?;
        tracing::debug!("db_bench {} ended ({status})", child.id());
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if !status.success() {
            let last: Vec<&str> = text.lines().rev().take(5).collect();
            let msg = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
            return Err(RunFailure::Error {
                message: format!("db_bench failed ({status}): {msg}"),
            });
        }
        Ok((text, peak))
    }
}

/// db_bench's name for a workload, if it runs it.
fn db_bench_name(kind: Kind) -> Option<&'static str> {
    match kind {
        Kind::FillSeq
        | Kind::FillRandom
        | Kind::Overwrite
        | Kind::ReadRandom
        | Kind::ReadRandomWriteRandom
        | Kind::ReadWhileWriting
        | Kind::SeekRandom
        | Kind::UpdateRandom
        | Kind::MixGraph => Some(kind.name()),
        _ => None,
    }
}

impl BenchEngine for DbBench {
    fn name(&self) -> String {
        format!("db_bench {}", self.version)
    }

    fn measure(
        &self,
        doc: &OptionsDoc,
        w: &Workload,
        work: &Path,
    ) -> Result<Measurement, RunFailure> {
        let Some(name) = db_bench_name(w.kind) else {
            return Err(RunFailure::Error {
                message: format!(
                    "the db_bench engine does not run {}; use --engine inprocess",
                    w.label()
                ),
            });
        };
        let mixgraph = match (&w.mix, w.kind) {
            (Some(m), Kind::MixGraph) => Some(MixGraph::from_mix(m).ok_or_else(|| {
                RunFailure::Error {
                    message: "this mixgraph cannot be expressed in db_bench's flags; use \
                              --engine inprocess"
                        .into(),
                }
            })?),
            _ => None,
        };
        let (compat, _) = self.compatible(doc).map_err(|e| RunFailure::Error {
            message: format!("{e:#}"),
        })?;
        let options_file = work.join("OPTIONS-db_bench.ini");
        compat
            .write(&options_file, "candidate for db_bench (lsmtune)")
            .map_err(|e| RunFailure::Spawn {
                message: e.to_string(),
            })?;
        let db = work.join("db");
        let common = vec![
            format!("--db={}", db.display()),
            format!("--options_file={}", options_file.display()),
            // db_bench hands its own cache to the options loader: size it as the file asks.
            format!("--cache_size={}", rocks::block_cache_capacity(doc)),
            format!("--num={}", w.num),
            format!("--key_size={}", w.key_size),
            format!("--value_size={}", w.value_size),
            format!("--compression_ratio={}", w.compression_ratio),
            format!("--seed={}", w.seed.max(1)),
        ];
        let mut fill_seconds = 0.0;
        if w.needs_fill() {
            let mut args = common.clone();
            args.extend([
                String::from("--benchmarks=fillrandom"),
                String::from("--threads=1"),
            ]);
            let start = std::time::Instant::now();
            self.run(&args, work, "fill")?;
            fill_seconds = start.elapsed().as_secs_f64();
        }
        let mut args = common;
        args.extend([
            format!("--benchmarks={name}"),
            format!("--threads={}", w.threads),
            format!("--use_existing_db={}", u8::from(w.needs_fill())),
            String::from("--histogram=1"),
            format!("--readwritepercent={}", w.readwritepercent),
            format!("--seek_nexts={}", w.seek_nexts),
        ]);
        if let Some(g) = &mixgraph {
            args.extend(g.flags());
        }
        if let Some(ops) = w.ops {
            args.push(format!("--reads={ops}"));
            args.push(format!("--writes={ops}"));
        }
        if let Some(d) = w.duration {
            args.push(format!("--duration={}", d.as_secs().max(1)));
        }
        let (text, peak) = self.run(&args, work, "measure")?;
        let report = db_bench::parse_report(&text, name).ok_or_else(|| RunFailure::Error {
            message: format!("db_bench printed no result line for {name}"),
        })?;
        Ok(Measurement {
            engine: self.name(),
            workload: w.clone(),
            ops: report.ops,
            seconds: report.seconds,
            ops_per_sec: report.ops_per_sec,
            mb_per_sec: report.mb_per_sec.unwrap_or(
                report.ops_per_sec * (w.key_size + w.value_size) as f64 / (1 << 20) as f64,
            ),
            latency_us: report.latency.unwrap_or_default(),
            reads_found: report.found,
            counters: None,
            diagnostics: None,
            size_on_disk: dir_size(&db),
            cpu_seconds: None,
            peak_rss_bytes: (peak > 0).then_some(peak),
            fill_seconds,
        })
    }
}

/// A workload measured `repeats` times, as `bench --json` writes it (and `--baseline` reads it):
/// a [`Sample`]'s repeats with the engine and workload they ran on and the ops/s summary.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchRun {
    pub engine: String,
    pub workload: Workload,
    pub measurements: Vec<Measurement>,
    pub failures: Vec<Failure>,
    /// ops/s over the successful repeats.
    pub ops_per_sec: Option<Summary>,
}

impl BenchRun {
    /// The document of `sample`, measured by `engine` on `workload`.
    pub fn new(engine: String, workload: Workload, sample: Sample) -> BenchRun {
        BenchRun {
            engine,
            workload,
            ops_per_sec: Summary::of(&sample.ops_per_sec),
            measurements: sample.runs,
            failures: sample.failures,
        }
    }

    pub fn throughputs(&self) -> Vec<f64> {
        self.measurements.iter().map(|m| m.ops_per_sec).collect()
    }
}

/// Prefix of every scratch folder lsmtune makes for a run.
pub const RUN_DIR_PREFIX: &str = "lsmtune-bench-";
/// The file in a scratch folder that names the process that made it (pid and start time).
pub(super) const OWNER_FILE: &str = "owner";

/// A scratch folder for one run, created by us inside `parent` (or the temp folder) and removed
/// when dropped; never the parent itself. It names its owner (this process) so that, should the
/// owner die before removing it, a later run can prove it stale ([`sweep_stale`]).
pub fn run_dir(parent: Option<&Path>) -> std::io::Result<tempfile::TempDir> {
    let b = {
        let mut b = tempfile::Builder::new();
        b.prefix(RUN_DIR_PREFIX);
        b
    };
    let dir = match parent {
        Some(p) => b.tempdir_in(p),
        None => b.tempdir(),
    }?;
    let me = std::process::id();
    let start = crate::interrupt::start_time(me).unwrap_or(0);
    std::fs::write(dir.path().join(OWNER_FILE), format!("{me} {start}\n"))?;
    Ok(dir)
}

/// Remove the scratch folders under `parent` (or the temp folder) whose owner is dead: a run
/// killed outright (SIGKILL, a crash, a power cut) leaves its 50-75 MB database behind. Only
/// folders with our prefix and an owner file naming a process that no longer runs (or whose pid
/// now belongs to a process started later) are touched. Returns what was removed.
pub fn sweep_stale(parent: Option<&Path>) -> Vec<PathBuf> {
    let parent = parent.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(RUN_DIR_PREFIX)
            || !e.file_type().is_ok_and(|t| t.is_dir())
        {
            continue;
        }
        let Ok(owner) = std::fs::read_to_string(e.path().join(OWNER_FILE)) else {
            continue;
        };
        let mut it = owner.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (Some(Some(pid)), Some(Some(start))) = (it.next(), it.next()) else {
            continue;
        };
        let alive = u32::try_from(pid)
            .ok()
            .and_then(crate::interrupt::start_time)
            .is_some_and(|s| s == start);
        if !alive && std::fs::remove_dir_all(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

/// Measure `repeats` times ([`measure_interleaved`] with one configuration), each repeat in a
/// fresh folder with seed `seed + repeat`. `on_repeat(i, outcome)` is called after each.
pub fn run_repeats(
    engine: &dyn BenchEngine,
    doc: &OptionsDoc,
    workload: &Workload,
    repeats: usize,
    parent: Option<&Path>,
    mut on_repeat: impl FnMut(usize, &Result<Measurement, RunFailure>),
) -> BenchRun {
    let sample = measure_interleaved(
        engine,
        workload,
        parent,
        &[doc],
        repeats,
        workload.seed,
        &mut |_, r, outcome| on_repeat(r, outcome),
    )
    .pop()
    .unwrap_or_default();
    BenchRun::new(engine.name(), workload.clone(), sample)
}
