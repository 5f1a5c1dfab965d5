//! The benchmark seam: `BenchEngine::measure(config, workload) -> Measurement`, with its two
//! engines: the in-process harness (run in an isolated worker process) and an external
//! `db_bench`. The scratch folders runs happen in are [`super::rundir`]'s (re-exported here);
//! repeated runs are [`super::sample`]'s.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use super::db_bench;
use super::measure::{Measurement, dir_size};
use super::mixgraph::MixGraph;
use super::worker::{Limits, RunFailure, run_isolated, watch};
use super::workload::{Kind, Workload};
use crate::options::{OptionsDoc, rocks};

pub use super::rundir::{RUN_DIR_PREFIX, run_dir, sweep_stale};

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
        // The WAL and LOG stay in the run folder, never in the deployment's own folders.
        rocks::without_deployment_paths(&compat)
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
            confinement: None,
        })
    }
}
