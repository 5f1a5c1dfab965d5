//! Isolation of a benchmark run in a worker process (this same binary, hidden `__worker`
//! subcommand): a crash, abort, hang or runaway memory of RocksDB comes back as a typed
//! `RunFailure` with the error text, and never takes down the caller.
//!
//! The parent writes a `RunSpec` as JSON, starts the worker, polls it (wall-clock timeout, RSS
//! read from /proc against the memory limit), reads progress lines from its stdout for the live
//! display, and reads the `Measurement` the worker wrote as JSON.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::inprocess::{self, Progress};
use super::measure::Measurement;
use super::workload::Workload;
use crate::options::OptionsDoc;

/// Faults a worker can be told to inject, for testing the isolation (never used otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// `abort()` at once.
    Abort,
    /// Sleep forever.
    Hang,
    /// Fill memory to twice the parent's memory limit ([`RunSpec::memory_limit`]), then sleep:
    /// over the limit whenever the parent looks, however late that is on a busy machine, and
    /// never more than that (growing until stopped took gigabytes when the parent was slow).
    Alloc,
    /// Fail with an error.
    Error,
}

/// What a worker is asked to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub options_file: PathBuf,
    pub workload: Workload,
    pub db_dir: PathBuf,
    pub result_file: PathBuf,
    #[serde(default)]
    pub fault: Option<Fault>,
    /// The resident memory, in bytes, past which the parent stops the worker
    /// ([`Limits::memory`]); an injected [`Fault::Alloc`] grows to twice this.
    #[serde(default)]
    pub memory_limit: u64,
}

/// Limits on a worker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub timeout: Duration,
    /// Kill the worker when its resident memory exceeds this many bytes.
    pub memory: u64,
    /// Confine the worker to this much memory, page cache included (a memory cgroup, see
    /// `memlimit`), so data larger than it reads from the device; an error when no cgroup
    /// can be made.
    pub cage: Option<u64>,
    /// Drop the page cache before each run (root only; an error otherwise).
    pub drop_caches: bool,
}

/// Why a run produced no measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunFailure {
    #[error("RocksDB or the workload failed: {message}")]
    Error { message: String },
    #[error("the worker crashed ({how}); last output: {stderr}")]
    Crash { how: String, stderr: String },
    #[error(
        "the run did not finish within {} and was stopped",
        super::workload_file::human_duration(std::time::Duration::from_secs_f64(seconds.max(0.0)))
    )]
    Timeout { seconds: f64 },
    #[error("the worker used {rss} bytes, over the memory limit of {limit} bytes, and was stopped")]
    OutOfMemory { rss: u64, limit: u64 },
    #[error("could not run the worker: {message}")]
    Spawn { message: String },
    #[error("stopped: {0}")]
    Interrupted(crate::interrupt::Interrupted),
}

/// Result of a worker, as written to its result file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum WorkerOutcome {
    Ok { measurement: Box<Measurement> },
    Failed { message: String },
}

/// Whether an executable's file name is the lsmtune binary's (`lsmtune`, `lsmtune.exe`), and
/// not merely starts like it: the integration-test binary is `lsmtune-<hash>`, and it cannot
/// run workers.
fn is_lsmtune_binary(file_name: &str) -> bool {
    file_name == "lsmtune" || file_name == "lsmtune.exe"
}

/// The executable that runs workers: `LSMTUNE_WORKER_EXE`, or this binary when it is lsmtune.
pub fn worker_exe() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("LSMTUNE_WORKER_EXE") {
        return Ok(PathBuf::from(p));
    }
    let me = std::env::current_exe().context("cannot find the running executable")?;
    let name = me
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if is_lsmtune_binary(&name) {
        Ok(me)
    } else {
        bail!("benchmark workers run the lsmtune binary; set LSMTUNE_WORKER_EXE to its path")
    }
}

/// Memory a process holds that only it can give back: anonymous plus shared-memory pages
/// (RssAnon + RssShmem). VmRSS also counts mapped file pages, which the kernel drops under
/// pressure; with `allow_mmap_reads` they are the database itself, and counting them killed
/// healthy runs as "out of memory". VmRSS only where the split is not reported.
fn rss_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    rss_from_status(&text)
}

fn rss_from_status(text: &str) -> Option<u64> {
    let kb = |key: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(key))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    match (kb("RssAnon:"), kb("RssShmem:")) {
        (Some(a), s) => Some((a + s.unwrap_or(0)) * 1024),
        (None, _) => kb("VmRSS:").map(|v| v * 1024),
    }
}

fn tail(path: &Path, max: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let text = text.trim();
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    text[start..].to_string()
}

/// Wait for a child under limits: kill it past the timeout or over the memory limit.
/// Returns its exit status and the peak RSS seen.
pub fn watch(
    child: &mut std::process::Child,
    limits: Limits,
) -> std::result::Result<(std::process::ExitStatus, u64), RunFailure> {
    let pid = child.id();
    let start = Instant::now();
    let mut peak = 0;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok((status, peak)),
            Ok(None) => {}
            Err(e) => {
                return Err(RunFailure::Spawn {
                    message: e.to_string(),
                });
            }
        }
        if let Some(i) = crate::interrupt::requested() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunFailure::Interrupted(i));
        }
        if start.elapsed() > limits.timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RunFailure::Timeout {
                seconds: limits.timeout.as_secs_f64(),
            });
        }
        if let Some(rss) = rss_of(pid) {
            peak = peak.max(rss);
            if rss > limits.memory {
                let _ = child.kill();
                let _ = child.wait();
                return Err(RunFailure::OutOfMemory {
                    rss,
                    limit: limits.memory,
                });
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Run one workload in a worker process. `work` is a folder the caller owns; the worker's
/// database, spec and logs go there.
pub fn run_isolated(
    exe: &Path,
    doc: &OptionsDoc,
    workload: &Workload,
    work: &Path,
    limits: Limits,
    fault: Option<Fault>,
    live_ops: Option<Arc<AtomicU64>>,
) -> std::result::Result<Measurement, RunFailure> {
    let spawn_err = |e: &dyn std::fmt::Display| RunFailure::Spawn {
        message: e.to_string(),
    };
    let options_file = work.join("OPTIONS-candidate.ini");
    doc.write(&options_file, "candidate under benchmark (lsmtune)")
        .map_err(|e| spawn_err(&e))?;
    let spec = RunSpec {
        options_file,
        workload: workload.clone(),
        db_dir: work.join("db"),
        result_file: work.join("result.json"),
        fault,
        memory_limit: limits.memory,
    };
    let spec_file = work.join("spec.json");
    std::fs::write(
        &spec_file,
        serde_json::to_vec(&spec).map_err(|e| spawn_err(&e))?,
    )
    .map_err(|e| spawn_err(&e))?;
    let stderr_file = work.join("worker.stderr");
    let stderr = std::fs::File::create(&stderr_file).map_err(|e| spawn_err(&e))?;
    if limits.drop_caches {
        super::memlimit::drop_page_cache().map_err(|e| spawn_err(&e))?;
    }
    let cage = match limits.cage {
        Some(bytes) => Some(super::memlimit::Cage::new(bytes).map_err(|e| spawn_err(&e))?),
        None => None,
    };
    let mut cmd = Command::new(exe);
    if let Some(c) = &cage {
        c.confine(&mut cmd);
    }
    // The worker watches its parent itself (`watch_parent`) and leaves, removing its run
    // folder, once the parent is gone. A stopped worker (Ctrl-Z stops the whole foreground
    // group) could not notice: the kernel wakes it with SIGCONT when the thread that starts it
    // (and waits for it, below) ends, however it ends.
    on_parent_death(&mut cmd, libc::SIGCONT);
    let mut child = cmd
        .arg("__worker")
        .arg(&spec_file)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| spawn_err(&format!("{}: {e}", exe.display())))?;
    if let Some(stdout) = child.stdout.take() {
        let live = live_ops.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                if let (Some(live), Some(n)) = (&live, line.strip_prefix("progress "))
                    && let Ok(n) = n.trim().parse()
                {
                    live.store(n, Ordering::Relaxed);
                }
            }
        });
    }
    tracing::debug!(
        "worker {} started for {} ({})",
        child.id(),
        spec.workload.kind,
        work.display()
    );
    let started = std::time::Instant::now();
    let (status, peak) = watch(&mut child, limits)?;
    tracing::debug!(
        "worker {} ended ({status}) after {:.1} s, peak memory {}",
        child.id(),
        started.elapsed().as_secs_f64(),
        crate::options::value::human_bytes(peak as i64)
    );
    let outcome = std::fs::read(&spec.result_file)
        .ok()
        .and_then(|b| serde_json::from_slice::<WorkerOutcome>(&b).ok());
    match (status.success(), outcome) {
        (true, Some(WorkerOutcome::Ok { mut measurement })) => {
            let mut how: Vec<String> = cage.iter().map(|c| c.describe()).collect();
            if let Some(c) = &cage
                && let Some(peak) = c.peak()
            {
                how.push(format!("the worker peaked at {} MiB there", peak >> 20));
            }
            if limits.drop_caches {
                how.push("page cache dropped before the run".into());
            }
            measurement.confinement = (!how.is_empty()).then(|| how.join("; "));
            Ok(*measurement)
        }
        (_, Some(WorkerOutcome::Failed { message })) => Err(RunFailure::Error { message }),
        (_, _) => {
            use std::os::unix::process::ExitStatusExt;
            // Killed inside its cgroup at the limit: the kernel's OOM killer, not a crash.
            if let Some(c) = &cage
                && status.signal() == Some(9)
                && let Some(peak) = c.peak().filter(|p| p + (1 << 20) >= c.limit)
            {
                return Err(RunFailure::OutOfMemory {
                    rss: peak,
                    limit: c.limit,
                });
            }
            let how = match (status.code(), status.signal()) {
                (_, Some(sig)) => format!("killed by signal {sig}"),
                (Some(code), _) => format!("exit code {code} without a result"),
                _ => "unknown".into(),
            };
            Err(RunFailure::Crash {
                how,
                stderr: tail(&stderr_file, 2000),
            })
        }
    }
}

/// Make a child process die when this one does, even by SIGKILL (Linux `PR_SET_PDEATHSIG`; the
/// kernel sends it when the thread that started the child ends, so use it only for children
/// waited on by the thread that starts them, as db_bench runs are).
pub fn die_with_parent(cmd: &mut Command) {
    on_parent_death(cmd, libc::SIGKILL);
}

/// Have the kernel send `signal` to a child process when the thread that starts it ends (Linux
/// `PR_SET_PDEATHSIG`; see [`die_with_parent`]).
fn on_parent_death(cmd: &mut Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated after fork.
    unsafe {
        cmd.pre_exec(move || {
            libc::prctl(libc::PR_SET_PDEATHSIG, signal);
            if libc::getppid() != parent {
                // The parent died between fork and prctl.
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

/// The environment variable that tells a worker its parent's pid.
const PARENT_ENV: &str = "LSMTUNE_WORKER_PARENT";

/// Remove a run folder whose owner is gone, while this worker's RocksDB threads may still be
/// writing into it: a few attempts, a moment apart; what cannot be removed keeps its owner file
/// ([`crate::scratch::remove`]), so the next run's sweep ([`super::rundir::sweep_stale`]) takes it.
fn remove_run_dir(w: &Path) {
    for _ in 0..20 {
        if crate::scratch::remove(w) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// In a worker: leave as soon as the process that started it is gone (killed outright, so it
/// could not stop us), removing the scratch folder it made for this run; a worker left running
/// would hold a core at full load under PID 1 with nobody waiting for its result.
fn watch_parent(spec_file: &Path) {
    // The pid the parent passed, not getppid() now: the parent may already be gone.
    let parent = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<libc::pid_t>().ok())
        .unwrap_or_else(|| unsafe { libc::getppid() });
    let work = spec_file
        .parent()
        .filter(|d| {
            d.file_name().is_some_and(|n| {
                n.to_string_lossy()
                    .starts_with(super::rundir::RUN_DIR_PREFIX)
            })
        })
        .map(Path::to_path_buf);
    std::thread::spawn(move || {
        loop {
            if unsafe { libc::getppid() } != parent {
                if let Some(w) = &work {
                    remove_run_dir(w);
                }
                // SAFETY: ends the process without running destructors other threads may race.
                unsafe { libc::_exit(3) };
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
}

/// The worker side: read the spec, run, write the outcome. Returns the process exit code.
pub fn worker_main(spec_file: &Path) -> i32 {
    watch_parent(spec_file);
    let spec: RunSpec = match std::fs::read(spec_file)
        .map_err(|e| anyhow!("{e}"))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| anyhow!("{e}")))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("worker: cannot read spec {}: {e}", spec_file.display());
            return 2;
        }
    };
    let outcome = match run_spec(&spec) {
        Ok(measurement) => WorkerOutcome::Ok {
            measurement: Box::new(measurement),
        },
        Err(e) => WorkerOutcome::Failed {
            message: format!("{e:#}"),
        },
    };
    let ok = matches!(outcome, WorkerOutcome::Ok { .. });
    match serde_json::to_vec(&outcome).map(|b| std::fs::write(&spec.result_file, b)) {
        Ok(Ok(())) => {
            if ok {
                0
            } else {
                1
            }
        }
        _ => {
            eprintln!("worker: cannot write {}", spec.result_file.display());
            2
        }
    }
}

fn run_spec(spec: &RunSpec) -> Result<Measurement> {
    match spec.fault {
        Some(Fault::Abort) => std::process::abort(),
        Some(Fault::Hang) => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        Some(Fault::Alloc) => {
            const CHUNK: u64 = 16 << 20;
            let mut hog: Vec<Vec<u8>> = Vec::new();
            let target = spec.memory_limit.saturating_mul(2);
            // Every byte written, so it is resident; the hog stays alive while this sleeps.
            while (hog.len() as u64).saturating_mul(CHUNK) <= target {
                hog.push(vec![1u8; CHUNK as usize]);
            }
            loop {
                std::hint::black_box(&hog);
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        Some(Fault::Error) => bail!("injected failure"),
        None => {}
    }
    let doc = OptionsDoc::read(&spec.options_file)?;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reporter = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            while !done.load(Ordering::Relaxed) {
                let n = progress.ops.load(Ordering::Relaxed);
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "progress {n}");
                let _ = out.flush();
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let result = inprocess::run(&doc, &spec.workload, &spec.db_dir, &progress);
    done.store(true, Ordering::Relaxed);
    let _ = reporter.join();
    result
}

#[cfg(test)]
mod rss_tests {
    #[test]
    fn mapped_file_pages_do_not_count() {
        let status = "VmRSS:\t 900000 kB\nRssAnon:\t  100000 kB\nRssFile:\t  790000 kB\nRssShmem:\t   10000 kB\n";
        assert_eq!(super::rss_from_status(status), Some(110_000 * 1024));
        assert_eq!(super::rss_from_status("VmRSS:\t 5 kB\n"), Some(5 * 1024));
    }
}

#[cfg(test)]
mod exe_tests {
    #[test]
    fn only_the_lsmtune_binary_runs_workers() {
        assert!(super::is_lsmtune_binary("lsmtune"));
        assert!(super::is_lsmtune_binary("lsmtune.exe"));
        // The merged integration-test binary, and look-alikes.
        assert!(!super::is_lsmtune_binary("lsmtune-3f2a9c1d0b7e6a54"));
        assert!(!super::is_lsmtune_binary("lsmtune_old"));
        assert!(!super::is_lsmtune_binary("my-lsmtune"));
    }
}
