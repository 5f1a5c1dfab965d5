//! The tuning loop end to end on small workloads: with the expert proposer, with the tiny
//! random-weight model under the grammar (local backend), with a proposer that fails and a
//! fallback that takes over, and a run killed mid-way then resumed with nothing lost or re-run.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use lsmtune::tune::journal::{self, Decision, Record};

use common::BIN;

fn tune(out: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = crate::common::command();
    cmd.arg("tune")
        .args(common::SMALL)
        .arg("--out")
        .arg(out)
        .args(extra);
    // No model anywhere, no endpoint: `auto` must fall to the expert.
    common::no_model_anywhere(&mut cmd, &out.with_extension("empty"))
        .output()
        .unwrap()
}

fn iterations(records: &[Record]) -> Vec<journal::Iteration> {
    records
        .iter()
        .filter_map(|r| match r {
            Record::Iteration(it) => Some((**it).clone()),
            _ => None,
        })
        .collect()
}

fn check_outputs(out: &Path) {
    for f in [
        "OPTIONS-tuned.ini",
        "OPTIONS-base.ini",
        "report.md",
        "report.json",
        "throughput.svg",
        "journal.jsonl",
    ] {
        assert!(out.join(f).is_file(), "{f} missing in {}", out.display());
    }
    // RocksDB's own verdict on the tuned file.
    let o = crate::common::command()
        .args(["options", "validate"])
        .arg(out.join("OPTIONS-tuned.ini"))
        .output()
        .unwrap();
    common::assert_ok(&o);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert!(report["iterations"].as_array().is_some());
    let svg = std::fs::read_to_string(out.join("throughput.svg")).unwrap();
    assert!(
        svg.starts_with("<svg")
            && svg.contains("candidate / best, same rounds")
            && svg.contains("kept steps multiplied"),
        "{svg}"
    );
}

#[test]
fn auto_without_model_or_endpoint_tunes_with_the_expert() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = tune(
        &out,
        &["--workload", "readrandom", "--iterations", "3", "--json"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("using the built-in expert rules"), "{err}");
    // --json: the report on stdout, the summary on stderr.
    let report: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert!(report["changes"].is_array(), "{report}");
    assert!(err.contains("stopped: ") && err.contains("wrote "), "{err}");
    check_outputs(&out);
    let records = journal::load(&out).unwrap();
    assert!(matches!(records.first(), Some(Record::Start { .. })));
    assert!(matches!(records.last(), Some(Record::End { .. })));
    let its = iterations(&records);
    assert!(!its.is_empty() && its.len() <= 3);
    // The expert's first move for point reads without a filter is the bloom filter.
    assert!(
        its[0].changes.contains_key("table.filter_bits_per_key"),
        "{:?}",
        its[0].changes
    );
    for it in &its {
        assert_eq!(it.invalid, 0);
        assert!(it.decision != Decision::Failed, "{:?}", it.failure);
        // Measured, unless the rule book had nothing left to try for this small workload.
        assert!(
            (it.best.is_some() && it.candidate.is_some())
                || it.decision == Decision::NoChange && it.changes.is_empty(),
            "{it:?}"
        );
    }
    assert!(its[0].best.is_some() && its[0].candidate.is_some());
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## Iterations") && md.contains("expert"),
        "{md}"
    );
    // A second tune into the same folder is refused (use --resume).
    let o = tune(&out, &["--iterations", "1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--resume"));
}

#[test]
fn the_tiny_local_model_tunes_under_the_grammar() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model(dir.path());
    let out = dir.path().join("run");
    let o = tune(
        &out,
        &[
            "--workload",
            "fillrandom",
            "--backend",
            "local",
            "--model",
            model.to_str().unwrap(),
            "--iterations",
            "2",
            "--patience",
            "5",
            "--max-tokens",
            "300",
        ],
    );
    common::assert_ok(&o);
    check_outputs(&out);
    let its = iterations(&journal::load(&out).unwrap());
    assert_eq!(its.len(), 2);
    for it in &its {
        assert!(it.proposer.starts_with("local:qwen2"), "{}", it.proposer);
        let llm = it.llm.as_ref().unwrap();
        assert!(
            llm.prompt_tokens > 100 && llm.completion_tokens > 0,
            "{llm:?}"
        );
        assert_eq!(
            it.invalid, 0,
            "grammar let an invalid entry through: {:?}",
            it.corrections
        );
        assert!(
            it.reply
                .as_deref()
                .is_some_and(|r| r.starts_with("{\"reasoning\": "))
        );
        // What the grammar cost is journaled.
        let mask = it.mask.expect("mask statistics journaled");
        assert!(
            mask.masks > 0 && mask.p50_us <= mask.p99_us,
            "{mask:?} for {llm:?}"
        );
    }
    // Each turn states the tune: the second carries what the first tried (unless the first
    // changed nothing), and reuses the KV cache for the prefix turns share.
    let second = its[1].prompt.as_deref().unwrap();
    assert!(second.contains("Measured now:"), "{second}");
    if !its[0].changes.is_empty() {
        assert!(second.contains("Tried so far"), "{second}");
    }
    assert!(its[1].llm.as_ref().unwrap().cached_tokens > 100);
    assert!(out.join("prompts/iter-001-prompt.txt").is_file());
    assert!(out.join("prompts/iter-002-reply.txt").is_file());
}

#[test]
fn a_killed_tune_resumes_without_losing_or_rerunning_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = crate::common::command()
        .arg("tune")
        .args(common::SMALL)
        .args([
            "--workload",
            "fillrandom",
            "--backend",
            "random",
            "--iterations",
            "5",
        ])
        .args(["--patience", "9"])
        .arg("--out")
        .arg(&out)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once the first iteration is journaled: stopped (SIGSTOP) the moment one is seen,
    // so it runs no further between that look and the kill.
    let t = Instant::now();
    loop {
        let n = journal::load(&out)
            .map(|r| iterations(&r).len())
            .unwrap_or(0);
        if n >= 1 {
            // SAFETY: a signal to our own child, not yet reaped.
            unsafe { libc::kill(child.id() as i32, libc::SIGSTOP) };
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the tune ended ({status}) before an iteration was journaled");
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "no iteration journaled"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = std::fs::read_to_string(out.join(journal::FILE)).unwrap();
    let done_before = iterations(&journal::load(&out).unwrap()).len();
    assert!(done_before < 5, "{done_before} iterations before the kill");
    assert!(!before.contains("\"record\":\"end\""));

    let o = crate::common::command()
        .args(["tune", "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let after = std::fs::read_to_string(out.join(journal::FILE)).unwrap();
    // Everything journaled before the kill is kept as it was...
    let complete: String = before
        .lines()
        .filter(|l| serde_json::from_str::<Record>(l).is_ok())
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(after.starts_with(&complete), "journal rewritten");
    // ...and each iteration ran exactly once.
    let its = iterations(&journal::load(&out).unwrap());
    let numbers: Vec<usize> = its.iter().map(|i| i.iteration).collect();
    assert_eq!(numbers, (1..=5).collect::<Vec<_>>());
    assert!(matches!(
        journal::load(&out).unwrap().last(),
        Some(Record::End { .. })
    ));
    check_outputs(&out);
    // Resuming a finished run changes nothing.
    let o = crate::common::command()
        .args(["tune", "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(out.join(journal::FILE)).unwrap(),
        after
    );
}

/// A proposer that always fails, as a local model that runs out of memory would.
struct Broken;
impl lsmtune::tune::proposer::Proposer for Broken {
    fn name(&self) -> String {
        "local:broken".into()
    }
    fn propose(
        &mut self,
        _ctx: &lsmtune::tune::proposer::Context,
        _on_text: &mut dyn FnMut(&str),
    ) -> anyhow::Result<lsmtune::tune::proposer::Proposal> {
        anyhow::bail!("out of memory while loading weights")
    }
}

fn tuner_settings(iterations: usize) -> journal::Settings {
    let mut w = lsmtune::bench::Workload::new(lsmtune::bench::Kind::FillRandom);
    w.num = 10_000;
    journal::Settings {
        goal: Default::default(),
        workload: w,
        base_file: None,
        iterations,
        time_budget_secs: None,
        repeats: 2,
        confirm_repeats: 0,
        min_effect: 0.03,
        patience: 9,
        memory_budget: 2 << 30,
        allow_unsafe: false,
        max_changes: 4,
        reasoning_chars: 100,
        backend: "local".into(),
        model: None,
        seed: 1,
        hints: Default::default(),
        samples: 1,
        refine: true,
        max_rounds: 0,
        search: false,
        search_method: Default::default(),
    }
}

fn engine() -> lsmtune::bench::InProcess {
    lsmtune::bench::InProcess {
        exe: PathBuf::from(BIN),
        limits: lsmtune::bench::Limits {
            timeout: Duration::from_secs(120),
            memory: 4 << 30,
            cage: None,
            drop_caches: false,
        },
        live_ops: Arc::new(AtomicU64::new(0)),
    }
}

#[test]
fn a_failing_proposer_hands_over_to_the_fallback_and_says_so() {
    use lsmtune::tune::{Quiet, Tuner, expert::ExpertProposer, proposer::Fallback};
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let tuner = Tuner {
        past: None,
        settings: tuner_settings(2),
        out: dir.path().join("run"),
        engine: &engine,
        work_dir: None,
        progress: &Quiet,
        proposer_reason: "test".into(),
        baseline: None,
    };
    let mut p = Fallback::new(Box::new(Broken), Some(Box::new(ExpertProposer)));
    tuner.start(&mut p).unwrap();
    let its = iterations(&journal::load(&dir.path().join("run")).unwrap());
    assert_eq!(its.len(), 2);
    assert_eq!(its[0].proposer, "expert");
    assert!(
        its[0]
            .notes
            .iter()
            .any(|n| n.contains("fell back from local:broken") && n.contains("out of memory")),
        "{:?}",
        its[0].notes
    );
    // Without a fallback the failure is recorded and the loop goes on (no panic, no abort).
    let dir = tempfile::tempdir().unwrap();
    let tuner = Tuner {
        past: None,
        out: dir.path().join("run"),
        ..tuner
    };
    tuner.start(&mut Broken).unwrap();
    let its = iterations(&journal::load(&dir.path().join("run")).unwrap());
    // Every iteration ran (patience 9 > 2) and each recorded the failure.
    assert_eq!(its.len(), 2, "{its:?}");
    assert!(its.iter().all(|i| i.decision == Decision::Failed
        && i.failure.as_deref().unwrap().contains("out of memory")));
    // Nothing was kept: the tuned file is the start.
    let a = std::fs::read_to_string(dir.path().join("run/OPTIONS-base.ini")).unwrap();
    let b = std::fs::read_to_string(dir.path().join("run/OPTIONS-tuned.ini")).unwrap();
    let body = |s: &str| {
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(body(&a), body(&b));
}

/// One writer per run folder: while another process holds `--out` (here the test itself, through
/// the same lock a tune takes), `tune` and `tune --resume` stop at once, name the holder and
/// touch nothing; once it lets go, the tune runs.
#[test]
fn a_run_folder_in_use_is_refused_and_names_its_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let refused = |o: &std::process::Output| {
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("in use by another lsmtune run"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
    };
    let held = lsmtune::tune::lock::RunLock::acquire(&out).unwrap();
    refused(&tune(&out, &["--iterations", "1", "--backend", "expert"]));
    assert!(!out.join(journal::FILE).exists());
    drop(held);
    let o = tune(&out, &["--iterations", "1", "--backend", "expert"]);
    common::assert_ok(&o);
    let before = std::fs::read(out.join(journal::FILE)).unwrap();
    let _held = lsmtune::tune::lock::RunLock::acquire(&out).unwrap();
    let o = crate::common::command()
        .args(["tune", "--quiet", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    refused(&o);
    assert_eq!(std::fs::read(out.join(journal::FILE)).unwrap(), before);
}

/// Worker processes whose command line names a spec under `work`.
fn workers_under(work: &Path) -> Vec<u32> {
    let needle = work.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("__worker") && c.contains(&needle)
            })
        })
        .collect()
}

/// The pid of the tune (not a worker) whose command line names `work`, while it runs: a tune
/// that has ended is a zombie with an empty command line until it is reaped, or gone.
fn tune_using(work: &Path) -> Option<u32> {
    let needle = work.to_string_lossy().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let args: Vec<String> = c
                    .split(|b| *b == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                args.iter().any(|a| a == "tune")
                    && args.contains(&needle)
                    && !args.iter().any(|a| a == "__worker")
            }) && !matches!(state(*pid), None | Some('Z' | 'X'))
        })
}

/// Stop (SIGSTOP) one of the tune's running workers and return its pid: a stopped worker cannot
/// finish by itself, so if it is gone later, something killed it. The tune running with
/// `--work-dir work` must still be running: if it ends first, this fails at once and says so.
fn freeze_a_worker(work: &Path) -> u32 {
    let t = Instant::now();
    loop {
        // The tune is looked for before its workers: a worker seen after the tune was seen
        // running belongs to it, and a tune gone means none will come.
        assert!(
            tune_using(work).is_some(),
            "the tune with --work-dir {} ended before one of its workers could be stopped",
            work.display()
        );
        for pid in workers_under(work) {
            // SAFETY: a signal to a pid we just listed; at worst it has exited (ESRCH).
            if unsafe { libc::kill(pid as i32, libc::SIGSTOP) } == 0 {
                while state(pid) == Some('R') || state(pid) == Some('S') || state(pid) == Some('D')
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                if state(pid) == Some('T') {
                    return pid;
                }
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no worker could be stopped"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether every thread of a process has ended (it is gone, or a zombie nobody reaped yet). The
/// state of its main thread is not enough: a process's main thread shows as a zombie while its
/// other threads still finish their last system calls (a RocksDB thread blocked on a busy disk
/// creates its file after the main thread died), and those can still write into its folders.
fn all_threads_ended(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return true;
    };
    tasks.flatten().all(|t| {
        std::fs::read_to_string(t.path().join("stat")).map_or(true, |stat| {
            stat.rfind(')').is_none_or(|i| {
                matches!(stat[i + 1..].trim_start().chars().next(), Some('Z' | 'X'))
            })
        })
    })
}

/// A process's state letter (R, S, D, T, Z, ...), or None when it is gone.
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].trim_start().chars().next()
}

fn scratch_under(work: &Path) -> Vec<String> {
    std::fs::read_dir(work)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .filter(|n| n.starts_with("lsmtune-bench-"))
        .collect()
}

/// Start a tune that runs long enough to be stopped, and wait until it has journaled its start
/// and is inside a benchmark run of the first iteration (a worker and its scratch folder exist).
#[allow(clippy::zombie_processes)] // returned to the caller, which waits on it
fn tune_until_benchmarking(out: &Path, work: &Path) -> std::process::Child {
    // 60,000 keys: each worker run lasts a few hundred milliseconds, long enough that the
    // signal lands while one is running, short enough that the resume is quick.
    spawn_tune_until_a_worker_runs(out, work, 60_000, true)
}

/// Start a random-proposer fillrandom tune of `num` keys and return once one of its workers is
/// running (and, when `journaled`, once its start record is written, i.e. past the baseline).
fn spawn_tune_until_a_worker_runs(
    out: &Path,
    work: &Path,
    num: usize,
    journaled: bool,
) -> std::process::Child {
    assert_eq!(
        common::SMALL[0],
        "--num",
        "SMALL's first pair is replaced below"
    );
    let mut child = crate::common::command()
        .arg("tune")
        .args(&common::SMALL[2..]) // all but its --num
        .args(["--workload", "fillrandom", "--backend", "random"])
        .args(["--iterations", "2", "--patience", "9", "--num"])
        .arg(num.to_string())
        .arg("--work-dir")
        .arg(work)
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        let started = !journaled || journal::load(out).is_ok_and(|r| !r.is_empty());
        if started && !workers_under(work).is_empty() {
            return child;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let o = child.wait_with_output().unwrap();
            panic!(
                "the tune ended ({status}) before a worker was seen: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        if t.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("never got going");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Ctrl-C (SIGINT) and SIGTERM stop a tune cleanly: the worker is killed, no scratch folder is
/// left, the stop is journaled, the exit code is the shell's 128 + signal, the message says how
/// to continue, and `--resume` finishes the run.
#[test]
fn a_signal_stops_a_tune_cleanly_and_it_resumes() {
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let dir = tempfile::tempdir().unwrap();
        let (out, work) = (dir.path().join("run"), dir.path().join("work"));
        std::fs::create_dir(&work).unwrap();
        let child = tune_until_benchmarking(&out, &work);
        let frozen = freeze_a_worker(&work);
        unsafe { libc::kill(child.id() as i32, sig) };
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(code), "{err}");
        assert!(err.contains("--resume"), "{err}");
        // The stopped worker could not have finished: the tune killed it (and reaped it).
        assert!(
            matches!(state(frozen), None | Some('Z')),
            "worker {frozen} left {:?}",
            state(frozen)
        );
        assert!(workers_under(&work).is_empty());
        assert!(
            scratch_under(&work).is_empty(),
            "{:?}",
            scratch_under(&work)
        );
        let recs = journal::load(&out).unwrap();
        assert!(
            matches!(recs.last(), Some(Record::Interrupted { .. })),
            "{:?}",
            recs.last()
        );
        if sig == libc::SIGINT {
            let o = crate::common::command()
                .args(["tune", "--quiet", "--resume"])
                .arg(&out)
                .output()
                .unwrap();
            common::assert_ok(&o);
            let its = iterations(&journal::load(&out).unwrap());
            let numbers: Vec<usize> = its.iter().map(|i| i.iteration).collect();
            assert_eq!(numbers, [1, 2]);
        }
    }
}

/// Killed outright (SIGKILL runs no handler), a tune's worker still dies within a moment instead
/// of running on under PID 1, and the next run in that work folder removes scratch folders whose
/// owner is provably dead, and only those (the killed worker's own folder is gone by then: it
/// removes it itself when it can, and the sweep takes it when it cannot), validation folders in
/// the temp folder included.
#[test]
fn a_killed_tune_takes_its_worker_along_and_leftovers_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let (out, work) = (dir.path().join("run"), dir.path().join("work"));
    std::fs::create_dir(&work).unwrap();
    // The worker is stopped (SIGSTOP) before its parent is killed, as Ctrl-Z stops it: it
    // cannot finish by itself, so if it goes, its parent's death took it along (the kernel
    // wakes it, and it sees its parent gone).
    let mut child = spawn_tune_until_a_worker_runs(&out, &work, 60_000, false);
    let frozen = freeze_a_worker(&work);
    child.kill().unwrap();
    child.wait().unwrap();
    let t = Instant::now();
    while !all_threads_ended(frozen) {
        assert!(
            t.elapsed() < Duration::from_secs(8),
            "worker {frozen} outlived its parent: {:?}",
            std::fs::read_to_string(format!("/proc/{frozen}/status")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(workers_under(&work).is_empty());
    // Whatever the worker could not remove still names its dead owner (the tune), so the sweep
    // below must take it.
    for name in scratch_under(&work) {
        assert!(
            work.join(&name).join("owner").is_file(),
            "{name} left without an owner file: {:?}",
            std::fs::read_dir(work.join(&name))
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
    }
    // Leftovers as a crash or power cut leaves them: owner dead (a pid that exited), owner
    // alive (this test), and no owner file (not provably ours).
    let exited = Command::new("true").spawn().unwrap();
    let dead_pid = exited.id();
    let mut exited = exited;
    exited.wait().unwrap();
    let mk = |name: &str, owner: Option<String>| {
        let d = work.join(name);
        std::fs::create_dir_all(d.join("db")).unwrap();
        std::fs::write(d.join("db").join("000001.sst"), vec![0u8; 4096]).unwrap();
        if let Some(o) = owner {
            std::fs::write(d.join("owner"), o).unwrap();
        }
    };
    mk("lsmtune-bench-dead", Some(format!("{dead_pid} 1\n")));
    let me = std::process::id();
    let my_start = lsmtune::interrupt::start_time(me).unwrap();
    mk("lsmtune-bench-alive", Some(format!("{me} {my_start}\n")));
    mk("lsmtune-bench-unknown", None);
    // A validation database's folder a process killed outright left in the temp folder.
    let validation = std::env::temp_dir().join(format!("lsmtune-open-test{me}"));
    std::fs::create_dir_all(validation.join("db")).unwrap();
    std::fs::write(validation.join("owner"), format!("{dead_pid} 1\n")).unwrap();
    // The next run in that work folder, whatever it is, sweeps.
    let o = crate::common::command()
        .args([
            "bench",
            "--workload",
            "fillrandom",
            "--num",
            "2000",
            "--repeats",
            "1",
        ])
        .args(["--work-dir"])
        .arg(&work)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lsmtune-bench-dead"), "{err}");
    let mut left = scratch_under(&work);
    left.sort();
    assert_eq!(left, ["lsmtune-bench-alive", "lsmtune-bench-unknown"]);
    // (Another test's run may have swept it first: only its absence is certain.)
    assert!(!validation.exists());
}

/// On a busy machine, a CPU hog at normal priority beside the tune (as another user's job on a
/// shared host), the sequential design still keeps the bloom filter on readrandom, with more
/// rounds when the first look leaves it undecided. Its verdict is a measurement: the filter's
/// gain at this size is +13% to +21% beside a hog, and a share of such tunes ends undecided, so
/// this is not a CI test (it failed once in the full suite, where every other test adds load).
/// `benches/noisy_machine.sh N` runs the same tune N times and counts the keeps (BENCHMARKS.md);
/// run this one with `cargo test --release --test lsmtune -- --ignored cpu_hog`.
#[test]
#[ignore = "a measurement with a chance to miss; benches/noisy_machine.sh counts its rate"]
fn a_tune_beside_a_cpu_hog_still_keeps_the_filter() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // A shell spinning at normal priority; killed (and reaped) however the test ends.
    struct Hog(std::process::Child);
    impl Drop for Hog {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _hog = Hog(Command::new("sh")
        .args(["-c", "while :; do :; done"])
        .spawn()
        .unwrap());
    let o = crate::common::command()
        .args(["tune", "--backend", "expert", "--workload", "readrandom"])
        .args(["--num", "50000", "--value-size", "100", "--iterations", "1"])
        .args(["--repeats", "3", "--confirm", "2", "--max-rounds", "10"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let its = iterations(&journal::load(&out).unwrap());
    assert!(
        its[0].changes.contains_key("table.filter_bits_per_key"),
        "{:?}",
        its[0].changes
    );
    assert_eq!(
        its[0].decision,
        Decision::Accepted,
        "{:?} after {} rounds",
        its[0].comparison,
        its[0].rounds
    );
    let tuned = std::fs::read_to_string(out.join("OPTIONS-tuned.ini")).unwrap();
    assert!(tuned.contains("bloomfilter"), "{tuned}");
}

/// An existing --out holding someone else's files (here a report.md) is refused and left as it
/// was; --force writes into it; compare does the same.
#[test]
fn a_foreign_out_folder_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mine");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("report.md"), "my own notes").unwrap();
    let o = tune(&out, &["--iterations", "1", "--backend", "expert"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not an lsmtune run folder")
            && err.contains("report.md")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        "my own notes"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
    let o = crate::common::command()
        .args([
            "compare",
            "--proposers",
            "expert",
            "--workloads",
            "fillrandom",
            "--quiet",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("not an lsmtune run folder"), "{err}");
    let o = tune(
        &out,
        &["--iterations", "1", "--backend", "expert", "--force"],
    );
    common::assert_ok(&o);
    assert!(out.join(journal::FILE).exists());
}

/// Links inside an --out folder are never followed: a `.lock` linked to a user's file is not
/// truncated (even when the run fails at once on a bad --base), an `OPTIONS-base.ini` link makes
/// the folder foreign, and compare refuses a linked `.lock` too.
#[test]
fn links_inside_an_out_folder_are_never_followed() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("notes.txt");
    std::fs::write(&victim, "my notes").unwrap();
    let out = dir.path().join("shared");
    std::fs::create_dir(&out).unwrap();
    std::os::unix::fs::symlink(&victim, out.join(".lock")).unwrap();
    let missing = dir.path().join("no-such-base.ini");
    let base = ["--base", missing.to_str().unwrap()];
    // Refused as foreign, and with --force by the lock itself.
    for force in [&[][..], &["--force"][..]] {
        let args = [
            &["--iterations", "1", "--backend", "expert"][..],
            &base,
            force,
        ]
        .concat();
        let o = tune(&out, &args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(".lock is a symbolic link") || err.contains(".lock (a symbolic link)"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "my notes");
        let o = crate::common::command()
            .args([
                "compare",
                "--proposers",
                "expert",
                "--workloads",
                "fillrandom",
            ])
            .args(force)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains(".lock is a symbolic link") || err.contains(".lock (a symbolic link)"),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "my notes");
    }

    // A link named like lsmtune's own file is not ours: the folder is foreign.
    let out2 = dir.path().join("shared2");
    std::fs::create_dir(&out2).unwrap();
    std::os::unix::fs::symlink(&victim, out2.join("OPTIONS-base.ini")).unwrap();
    let o = tune(&out2, &["--iterations", "1", "--backend", "expert"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("not an lsmtune run folder")
            && err.contains("OPTIONS-base.ini (a symbolic link)"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "my notes");
}

/// `--resume` trusts nothing in an edited journal: a candidate file outside candidates/ is not
/// read (its first line never printed), and settings the flags refuse (threads 0, key size 0,
/// repeats 0) are an error naming the flag, not a run that "tunes" and exits 0.
#[test]
fn resume_refuses_an_edited_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    common::assert_ok(&tune(&out, &["--iterations", "1", "--backend", "expert"]));
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root:SECRET-HASH:19000:0:99999:7:::\n").unwrap();
    let journal = std::fs::read_to_string(out.join(journal::FILE)).unwrap();
    let mut lines: Vec<serde_json::Value> = journal
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|r: &serde_json::Value| r["record"] != "end")
        .collect();
    let resume = |lines: &[serde_json::Value]| {
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(out.join(journal::FILE), text).unwrap();
        crate::common::command()
            .args(["tune", "--resume"])
            .arg(&out)
            .env("HF_HUB_OFFLINE", "1")
            .output()
            .unwrap()
    };
    let it = lines
        .iter()
        .position(|r| r["record"] == "iteration")
        .unwrap();
    let good = lines.clone();
    lines[it]["candidate_file"] = "../secret".into();
    let o = resume(&lines);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("candidate_file `../secret` is not a file under candidates/"),
        "{err}"
    );
    assert!(!err.contains("SECRET-HASH") && !String::from_utf8_lossy(&o.stdout).contains("SECRET"));
    for (path, named) in [
        (&["workload", "threads"][..], "threads must be"),
        (&["workload", "key_size"][..], "key_size must be"),
        (&["repeats"][..], "--repeats"),
    ] {
        let mut lines = good.clone();
        let mut v = &mut lines[0]["settings"];
        for k in path {
            v = &mut v[*k];
        }
        *v = 0.into();
        let o = resume(&lines);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{named}: {err}");
        assert!(err.contains("not valid") && err.contains(named), "{err}");
    }
}
