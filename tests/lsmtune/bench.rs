//! The benchmark harness end to end on small workloads: every workload runs in a worker process
//! and reports sane numbers; injected faults come back typed; run folders are removed; the
//! db_bench engine measures the same workload; the `bench` command works for a user.

use std::path::PathBuf;
use std::time::Duration;

use lsmtune::bench::{
    self, BenchEngine, Kind, Limits, RunFailure, Workload, engine::run_dir, worker::Fault,
};
use lsmtune::options::rocks;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lsmtune"))
}

use crate::common::limits;

fn small(kind: Kind) -> Workload {
    let mut w = Workload::new(kind);
    w.num = 3000;
    w.threads = 2;
    w
}

use crate::common::inprocess;

#[test]
fn every_workload_runs_in_a_worker_and_reports() {
    let engine = inprocess();
    let doc = rocks::linked_defaults().unwrap();
    for kind in bench::workload::ALL_KINDS {
        let w = small(*kind);
        let dir = run_dir(None).unwrap();
        let m = engine
            .measure(doc, &w, dir.path())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(m.engine, "inprocess");
        assert!(m.ops > 0 && m.ops_per_sec > 0.0, "{kind}: {m:?}");
        assert_eq!(m.ops, 2 * 3000, "{kind}: two threads x num ops");
        assert!(
            m.latency_us.p50 > 0.0 && m.latency_us.p50 <= m.latency_us.p99,
            "{kind}"
        );
        assert!(m.latency_us.p99 <= m.latency_us.max, "{kind}");
        assert!(m.size_on_disk > 0, "{kind}");
        assert!(m.peak_rss_bytes.unwrap() > 1 << 20, "{kind}");
        let c = m.counters.expect("in-process runs read RocksDB counters");
        match kind {
            Kind::ReadRandom | Kind::YcsbC => {
                let (found, reads) = m.reads_found.unwrap();
                assert_eq!(reads, 6000, "{kind}");
                assert!(found > 0, "{kind}");
                assert!(m.fill_seconds > 0.0, "{kind}");
            }
            Kind::FillRandom | Kind::FillSeq => {
                assert!(c.user_bytes_written > 3000 * 100, "{kind}: {c:?}");
                assert_eq!(m.reads_found, None);
            }
            _ => {}
        }
    }
}

#[test]
fn ycsb_loads_every_key_so_reads_find_them() {
    let engine = inprocess();
    let dir = run_dir(None).unwrap();
    let m = engine
        .measure(
            rocks::linked_defaults().unwrap(),
            &small(Kind::YcsbC),
            dir.path(),
        )
        .unwrap();
    let (found, reads) = m.reads_found.unwrap();
    assert_eq!(found, reads, "YCSB's load phase inserts all records");
}

#[test]
fn injected_faults_come_back_typed() {
    let doc = rocks::linked_defaults().unwrap();
    let w = small(Kind::FillRandom);
    let run = |fault, limits| {
        let dir = run_dir(None).unwrap();
        bench::worker::run_isolated(&exe(), doc, &w, dir.path(), limits, Some(fault), None)
    };
    match run(Fault::Abort, limits()) {
        Err(RunFailure::Crash { how, .. }) => assert!(how.contains("signal 6"), "{how}"),
        other => panic!("abort: {other:?}"),
    }
    let quick = Limits {
        timeout: Duration::from_secs(2),
        memory: 4 << 30,
        cage: None,
        drop_caches: false,
    };
    assert!(matches!(
        run(Fault::Hang, quick),
        Err(RunFailure::Timeout { seconds: 2.0 })
    ));
    let tight = Limits {
        timeout: Duration::from_secs(60),
        memory: 256 << 20,
        cage: None,
        drop_caches: false,
    };
    // The fault fills twice the limit and stops there: over the limit whenever the parent
    // looks, and no further however late that is (it once grew until stopped: gigabytes when
    // the parent was descheduled).
    match run(Fault::Alloc, tight) {
        Err(RunFailure::OutOfMemory { rss, limit }) => {
            assert!(
                rss > limit && rss < 3 * limit,
                "{rss} bytes for a {limit}-byte limit"
            )
        }
        other => panic!("alloc: {other:?}"),
    }
    match run(Fault::Error, limits()) {
        Err(RunFailure::Error { message }) => assert!(message.contains("injected")),
        other => panic!("error: {other:?}"),
    }
}

#[test]
fn a_config_rocksdb_refuses_is_a_typed_error() {
    let mut doc = rocks::linked_defaults().unwrap().clone();
    doc.set(
        &lsmtune::options::ini::SectionKind::Db,
        "allow_mmap_reads",
        "true",
    );
    doc.set(
        &lsmtune::options::ini::SectionKind::Db,
        "use_direct_reads",
        "true",
    );
    let dir = run_dir(None).unwrap();
    match inprocess().measure(&doc, &small(Kind::FillRandom), dir.path()) {
        Err(RunFailure::Error { message }) => assert!(message.contains("refused"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn run_folders_are_removed_and_the_parent_kept() {
    let parent = tempfile::tempdir().unwrap();
    let run = bench::run_repeats(
        &inprocess(),
        rocks::linked_defaults().unwrap(),
        &small(Kind::FillRandom),
        2,
        Some(parent.path()),
        |_, _| {},
    );
    assert_eq!(run.measurements.len(), 2);
    let s = run.ops_per_sec.unwrap();
    assert_eq!(s.n, 2);
    assert!(s.ci95.is_finite() && s.ci95 >= 0.0);
    // Seeds differ per repeat.
    assert_ne!(
        run.measurements[0].workload.seed,
        run.measurements[1].workload.seed
    );
    assert!(parent.path().is_dir());
    assert_eq!(std::fs::read_dir(parent.path()).unwrap().count(), 0);
}

#[test]
fn db_bench_engine_measures_the_same_workloads() {
    let Some(path) = crate::common::db_bench() else {
        return;
    };
    let engine = bench::DbBench::new(path, limits()).unwrap();
    assert!(engine.name().starts_with("db_bench "));
    let doc = rocks::linked_defaults().unwrap();
    for kind in [Kind::FillRandom, Kind::ReadRandom] {
        let dir = run_dir(None).unwrap();
        let m = engine
            .measure(doc, &small(kind), dir.path())
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(m.ops, 6000, "{kind}");
        assert!(
            m.ops_per_sec > 0.0 && m.latency_us.p99 > 0.0,
            "{kind}: {m:?}"
        );
        if kind == Kind::ReadRandom {
            assert!(m.reads_found.is_some());
        }
    }
    let dir = run_dir(None).unwrap();
    match engine.measure(doc, &small(Kind::YcsbA), dir.path()) {
        Err(RunFailure::Error { message }) => assert!(message.contains("--engine inprocess")),
        other => panic!("{other:?}"),
    }
}

use crate::common::lsmtune;

#[test]
fn bench_command_for_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let json_arg = format!("--json={}", json.display());
    let o = lsmtune(&[
        "-v",
        "bench",
        "--workload",
        "readrandom",
        "--num",
        "2000",
        "--threads",
        "2",
        "--repeats",
        "2",
        &json_arg,
        "--work-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    // --json=FILE: the text as usual on stdout; -v: each worker's debug lines on stderr.
    assert!(
        stdout.contains("throughput:") && stdout.contains("95% CI"),
        "{stdout}"
    );
    assert!(
        stderr.contains("debug lsmtune::bench::worker: worker ") && stderr.contains("wrote "),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["measurements"].as_array().unwrap().len(), 2);
    assert_eq!(v["workload"]["kind"], "readrandom");
    // Only run.json is left in the work dir.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");

    // A second run compared with the first (Welch): one of the three verdicts is printed.
    let o = lsmtune(&[
        "bench",
        "--workload",
        "readrandom",
        "--num",
        "2000",
        "--threads",
        "2",
        "--repeats",
        "2",
        "--baseline",
        json.to_str().unwrap(),
        "--json",
        "-q",
    ]);
    let (stdout, out) = (
        String::from_utf8_lossy(&o.stdout).to_string(),
        String::from_utf8_lossy(&o.stderr).to_string(),
    );
    assert_eq!(o.status.code(), Some(0), "{out}");
    // Bare --json: only the JSON on stdout, the text on stderr; -q: no notes, no debug.
    let v: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["measurements"].as_array().unwrap().len(), 2);
    assert!(!out.contains("debug ") && !out.contains("wrote "), "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("vs baseline: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        ["better (", "no significant difference (", "worse ("]
            .iter()
            .any(|v| line.contains(v)),
        "{line}"
    );
    let not_json = dir.path().join("not.json");
    std::fs::write(&not_json, "{}").unwrap();
    let o = lsmtune(&[
        "bench",
        "--workload",
        "readrandom",
        "--baseline",
        not_json.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));

    for bad in [
        vec!["bench", "--workload", "nosuch"],
        vec!["bench", "--workload", "readrandom", "--threads", "0"],
        vec![
            "bench",
            "--workload",
            "readrandom",
            "--work-dir",
            "/no/such/dir",
        ],
        vec!["bench", "--workload", "readrandom", "--timeout", "soon"],
    ] {
        let o = lsmtune(&bad);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
    }
}
