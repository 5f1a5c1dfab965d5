//! Workloads from the user's world, end to end: a trace RocksDB itself wrote (db_bench
//! --trace_file) read query for query and replayed in a worker; a database RocksDB wrote,
//! characterized from its files without a byte of it changing; workload files and mixgraph run
//! in-process and through db_bench; bad inputs end with a clear error and exit 2.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime};

use lsmtune::bench::{
    self, BenchEngine, Kind, Workload, engine::run_dir, livedb, trace, workload_file,
};
use lsmtune::options::rocks;

use crate::common::{assert_ok, db_bench, inprocess};

/// `( Gets:N Puts:M Seek:K, ...` from db_bench's mixgraph report.
fn mixgraph_counts(out: &str) -> (u64, u64, u64) {
    let field = |name: &str| -> u64 {
        let at = out
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in:\n{out}"))
            + name.len();
        out[at..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap()
    };
    (field("Gets:"), field("Puts:"), field("Seek:"))
}

/// Run db_bench with `args` on a database in `dir`, tracing its queries into `file`.
fn trace_with_db_bench(
    db_bench: &Path,
    dir: &Path,
    file: &Path,
    args: &[&str],
) -> std::process::Output {
    let o = Command::new(db_bench)
        .arg(format!("--db={}", dir.join("db").display()))
        .arg(format!("--trace_file={}", file.display()))
        .args(args)
        .output()
        .unwrap();
    assert_ok(&o);
    o
}

#[test]
fn a_trace_rocksdb_wrote_is_read_query_for_query_and_replayed() {
    let Some(db_bench) = db_bench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mix.trace");
    let o = trace_with_db_bench(
        &db_bench,
        dir.path(),
        &file,
        &[
            "--benchmarks=mixgraph",
            "--num=2000",
            "--reads=3000",
            "--threads=1",
            "--mix_get_ratio=0.6",
            "--mix_put_ratio=0.3",
            "--mix_seek_ratio=0.1",
            "--key_size=16",
            "--mix_max_value_size=200",
        ],
    );
    let (gets, puts, seeks) = mixgraph_counts(&String::from_utf8_lossy(&o.stdout));
    assert_eq!(gets + puts + seeks, 3000);

    let t = trace::read(&file).unwrap();
    assert_eq!(t.trace_version, "0.2");
    let s = trace::analyze(&t);
    let count = |k: &str| s.ops.iter().find(|(n, _)| n == k).map_or(0, |(_, c)| *c);
    assert_eq!(
        (count("get"), count("put"), count("seek")),
        (gets, puts, seeks),
        "{s:?}"
    );
    assert_eq!(s.key_bytes_max, 16);
    assert!(s.value_bytes_max >= 10 && s.value_bytes_max <= 200, "{s:?}");

    // The CLI says the same and writes a workload file that loads.
    let toml = dir.path().join("mix.toml");
    let o = crate::common::command()
        .args(["workload", "analyze"])
        .arg(&file)
        .arg("--out")
        .arg(&toml)
        .output()
        .unwrap();
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    let get_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("get "))
        .unwrap();
    assert!(get_line.contains(&gets.to_string()), "{text}");
    let w = workload_file::load(&toml).unwrap().workload;
    let m = w.mix.as_ref().unwrap();
    assert_eq!(
        (m.ops.get, m.ops.put, m.ops.seek),
        (gets as f64, puts as f64, seeks as f64)
    );

    // Replayed in a worker: every query once.
    let w = Workload::from_trace(&file, 0.0).unwrap();
    assert_eq!(w.kind, Kind::Trace);
    let run = run_dir(None).unwrap();
    let m = inprocess()
        .measure(rocks::linked_defaults().unwrap(), &w, run.path())
        .unwrap();
    assert_eq!(m.ops, 3000);
    let (found, reads) = m.reads_found.unwrap();
    assert_eq!(reads, gets);
    assert!(found > 0, "the keys the trace reads were loaded first");
}

fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let md = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (md.len(), md.modified().unwrap()),
            )
        })
        .collect()
}

/// Wait (at most a minute) until the LOG of the open database at `db` holds a statistics dump
/// counting `reads` keys read and `writes` written: RocksDB writes one every
/// `stats_dump_period_sec`, and its LOG reaches the file when RocksDB flushes it.
fn wait_for_statistics(db: &Path, reads: u64, writes: u64) {
    let t = std::time::Instant::now();
    loop {
        let f = livedb::inspect(db).unwrap();
        let stat = |name: &str| f.statistics.get(name).copied();
        let seen = (
            stat("rocksdb.number.keys.read"),
            stat("rocksdb.number.keys.written"),
        );
        if seen == (Some(reads), Some(writes)) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "no statistics dump with {reads} reads and {writes} writes in a minute; the last \
             one: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_live_database_is_characterized_without_a_byte_changing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.enable_statistics();
        opts.set_stats_dump_period_sec(1);
        opts.set_max_write_buffer_number(5);
        let db = rocksdb::DB::open(&opts, &path).unwrap();
        for i in 0..5000u32 {
            db.put(format!("key{i:013}"), vec![b'v'; 100]).unwrap();
        }
        db.flush().unwrap();
        for i in 0..3000u32 {
            assert!(db.get(format!("key{i:013}")).unwrap().is_some());
        }
        // RocksDB dumps its statistics every second and flushes its LOG when it likes: wait
        // until a dump taken after every read is in the file, then close the database.
        wait_for_statistics(&path, 3000, 5000);
    }
    let before = snapshot(&path);
    let f = livedb::inspect(&path).unwrap();
    assert_eq!(
        snapshot(&path),
        before,
        "from-db must not change the database"
    );
    assert!(f.options_file.is_some());
    assert_eq!((f.live_files, f.entries, f.keys()), (1, 5000, 5000));
    assert_eq!(f.key_size().unwrap().round(), 16.0);
    assert_eq!(f.value_size().unwrap().round(), 100.0);
    let ops = f.ops().expect("statistics were on");
    assert_eq!((ops.get, ops.put), (3000.0, 5000.0));

    let out = dir.path().join("mine.toml");
    let o = crate::common::command()
        .args(["workload", "from-db"])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(snapshot(&path), before);
    let w = workload_file::load(&out).unwrap().workload;
    assert_eq!((w.num, w.key_size, w.value_size), (5000, 16, 100));

    let label = w.label();
    let workload = out.clone();

    // A tune starts from the database's own newest OPTIONS file, and still changes nothing; it
    // announces the workload file by its name.
    let out = dir.path().join("tuned");
    let o = crate::common::command()
        .args(["tune", "--backend", "expert", "--workload"])
        .arg(&workload)
        .args(["--num", "2000"])
        .args([
            "--iterations",
            "1",
            "--repeats",
            "2",
            "--confirm",
            "0",
            "--base",
        ])
        .arg(&path)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("tuning {label} (")), "{err}");
    assert_eq!(snapshot(&path), before);
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    let options = f
        .options_file
        .as_ref()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(journal.contains(&options), "the start names {options}");

    // `options calibrate --base DB` and `bench --options DB` read the same newest OPTIONS file
    // (the database's 5 write buffers show), and change nothing either.
    let calibrated = dir.path().join("calibrated.ini");
    let proposal = dir.path().join("proposal.txt");
    std::fs::write(&proposal, "max_background_jobs=4\n").unwrap();
    let o = crate::common::command()
        .args(["options", "calibrate"])
        .arg(&proposal)
        .arg("--base")
        .arg(&path)
        .arg("--out")
        .arg(&calibrated)
        .output()
        .unwrap();
    assert_ok(&o);
    let text = std::fs::read_to_string(&calibrated).unwrap();
    assert!(text.contains("max_write_buffer_number=5"), "{text}");
    let o = crate::common::command()
        .args([
            "bench",
            "--workload",
            "readrandom",
            "--num",
            "1000",
            "--repeats",
            "1",
        ])
        .arg("--options")
        .arg(&path)
        .output()
        .unwrap();
    assert_ok(&o);
    assert_eq!(snapshot(&path), before);

    // Not a database: a clear error and exit 2.
    for bad in [dir.path().to_path_buf(), dir.path().join("missing")] {
        let o = crate::common::command()
            .args(["workload", "from-db"])
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("not a RocksDB database") || err.contains("not a folder"),
            "{err}"
        );
    }
}

fn example(name: &str) -> Workload {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/workloads")
        .join(name);
    workload_file::load(&path).unwrap().workload
}

#[test]
fn workload_files_run_in_a_worker() {
    let engine = inprocess();
    let doc = rocks::linked_defaults().unwrap();
    // Deletes of the newest keys: some reads miss.
    let mut w = example("job-queue.toml");
    (w.num, w.ops, w.threads) = (3000, Some(2000), 2);
    let run = run_dir(None).unwrap();
    let m = engine.measure(doc, &w, run.path()).unwrap();
    assert_eq!(m.ops, 4000);
    let (found, reads) = m.reads_found.unwrap();
    assert!(reads > 0 && found < reads, "{found} of {reads}");

    // A target rate is held: never more than 1,500 ops/s over the measured time, whatever the
    // machine could do (each thread's first operation is due at the start, hence + threads).
    // How far below the rate a run stays depends on how busy the machine is: not checked.
    let mut w = example("session-cache.json");
    w.num = 3000;
    w.duration = Some(Duration::from_secs(1));
    w.mix.as_mut().unwrap().rate = Some(bench::mix::Rate::Fixed(1500.0));
    let run = run_dir(None).unwrap();
    let m = engine.measure(doc, &w, run.path()).unwrap();
    let most = 1500.0 * m.seconds * 1.1 + w.threads as f64;
    assert!(
        m.ops > 0 && m.ops as f64 <= most,
        "{} ops in {:.3} s at 1500/s over {} threads (at most {most:.0})",
        m.ops,
        m.seconds,
        w.threads
    );
}

#[test]
fn mixgraph_runs_through_db_bench_with_its_flags() {
    let Some(path) = db_bench() else { return };
    let engine = bench::DbBench::new(path, inprocess().limits).unwrap();
    let mut w = Workload::new(Kind::MixGraph);
    (w.num, w.threads) = (3000, 2);
    let run = run_dir(None).unwrap();
    let m = engine
        .measure(rocks::linked_defaults().unwrap(), &w, run.path())
        .unwrap();
    assert_eq!(m.ops, 6000);
    assert!(m.ops_per_sec > 0.0 && m.latency_us.p99 > 0.0);
    // A file's mix is not db_bench's: said so, not run.
    let e = engine
        .measure(
            rocks::linked_defaults().unwrap(),
            &example("job-queue.toml"),
            run.path(),
        )
        .unwrap_err();
    assert!(e.to_string().contains("--engine inprocess"), "{e}");
}

#[test]
fn a_cut_trace_or_a_bad_file_is_named_with_exit_2() {
    let Some(db_bench) = db_bench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.trace");
    trace_with_db_bench(
        &db_bench,
        dir.path(),
        &file,
        &["--benchmarks=fillrandom", "--num=300"],
    );
    let bytes = std::fs::read(&file).unwrap();
    let cut = dir.path().join("cut.trace");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[ops]\nget = 1\n[keys]\ndist = \"zipfian\"\ntheta = 3\n",
    )
    .unwrap();
    for (args, want) in [
        (
            vec!["workload", "analyze", cut.to_str().unwrap()],
            "cut short at byte",
        ),
        (
            vec!["workload", "check", bad.to_str().unwrap()],
            "keys.theta",
        ),
    ] {
        let o = crate::common::command().args(&args).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want) && !err.contains("panicked"), "{err}");
    }
}

/// No command writes over its input: `workload analyze T --out T` (also through a link, and
/// `--json=T`), `options calibrate P --out P`, `options downgrade F --out F`, `compare` and
/// `propose` with `--json=` a workload trace, `tune --base DB --json=DB/...`; and `workload
/// from-db DB --out DB/OPTIONS-...` (or any file in DB) is refused: from-db never writes into
/// the database folder. Each input is left byte for byte.
#[test]
fn an_output_that_is_the_input_is_refused() {
    let Some(db_bench) = db_bench() else { return };
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("t.trace");
    trace_with_db_bench(
        &db_bench,
        dir.path(),
        &t,
        &["--benchmarks=fillrandom", "--num=300"],
    );
    let trace_bytes = std::fs::read(&t).unwrap();
    let link = dir.path().join("link.trace");
    std::os::unix::fs::symlink(&t, &link).unwrap();
    let json_t = format!("--json={}", t.display());
    let proposal = dir.path().join("p.txt");
    std::fs::write(&proposal, "write_buffer_size=128MB\n").unwrap();
    let db = dir.path().join("db");
    let options = livedb::latest_options(&db).unwrap();
    let options_bytes = std::fs::read(&options).unwrap();
    let (ts, ls, ps, os) = (
        t.to_str().unwrap(),
        link.to_str().unwrap(),
        proposal.to_str().unwrap(),
        options.to_str().unwrap(),
    );
    let in_db = db.join("mine.toml");
    let trace_src = format!("trace:{ts}", ts = t.display());
    let json_in_db = format!("--json={}", db.join("report.json").display());
    let elsewhere = dir.path().join("elsewhere");
    let es = elsewhere.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "compare",
                "--proposers",
                "expert",
                "--workloads",
                &trace_src,
                "--out",
                es,
                &json_t,
            ],
            "is the input",
        ),
        (
            vec![
                "propose",
                "--model",
                "/nonexistent/model.gguf",
                "--workload",
                &trace_src,
                &json_t,
                "--no-measure",
            ],
            "is the input",
        ),
        (
            vec![
                "tune",
                "--backend",
                "expert",
                "--base",
                db.to_str().unwrap(),
                &json_in_db,
                "--out",
                es,
            ],
            "inside the database folder",
        ),
        (vec!["workload", "analyze", ts, "--out", ts], "is the input"),
        (vec!["workload", "analyze", ts, "--out", ls], "is the input"),
        (vec!["workload", "analyze", ls, &json_t], "is the input"),
        (
            vec!["options", "calibrate", ps, "--out", ps],
            "is the input",
        ),
        (
            vec!["options", "downgrade", os, "--out", os],
            "is the input",
        ),
        (
            vec!["workload", "from-db", db.to_str().unwrap(), "--out", os],
            "inside the database folder",
        ),
        (
            vec![
                "workload",
                "from-db",
                db.to_str().unwrap(),
                "--out",
                in_db.to_str().unwrap(),
            ],
            "inside the database folder",
        ),
    ];
    for (args, want) in cases {
        let o = crate::common::command().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(std::fs::read(&t).unwrap(), trace_bytes);
    assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    assert_eq!(
        std::fs::read_to_string(&proposal).unwrap(),
        "write_buffer_size=128MB\n"
    );
    assert_eq!(std::fs::read(&options).unwrap(), options_bytes);
    assert!(!in_db.exists() && !db.join("report.json").exists());
    assert!(!elsewhere.exists());
}

/// `workload check --json FILE`'s workload (exit 0 required).
fn checked(file: &Path) -> serde_json::Value {
    let o = crate::common::command()
        .args(["workload", "check", "--json"])
        .arg(file)
        .output()
        .unwrap();
    assert_ok(&o);
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn generated_workload_files_are_escaped_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    // A folder name that would inject keys, and a LOG whose sums wrap and whose stall is NaN.
    let evil = "svc\"\nthreads = 64\nload = false\n#";
    let db = dir.path().join(evil);
    std::fs::create_dir(&db).unwrap();
    std::fs::write(db.join("CURRENT"), "MANIFEST-000001\n").unwrap();
    let event = |n: u64| {
        format!(
            "2026/11/30-14:09:29.100 1 EVENT_LOG_v1 {{\"event\": \"table_file_creation\", \
             \"file_number\": {n}, \"table_properties\": {{\"data_size\": {m}, \"num_entries\": \
             {m}, \"num_deletions\": 1, \"raw_key_size\": {m}, \"raw_value_size\": {m}}}}}\n",
            m = u64::MAX
        )
    };
    let log = format!(
        "{}{}** DB Stats **\nUptime(secs): NaN total, 1.0 interval\nCumulative stall: \
         00:00:0.000 H:M:S, NaN percent\n",
        event(7),
        event(9)
    );
    std::fs::write(db.join("LOG"), log).unwrap();
    let out = dir.path().join("from-db.toml");
    let o = crate::common::command()
        .args(["workload", "from-db"])
        .arg(&db)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    for nonsense in ["18446744073709551614", "-2 B", "NaN"] {
        assert!(!text.contains(nonsense), "{nonsense} in:\n{text}");
    }
    let w = checked(&out);
    assert_eq!(w["mix"]["name"], evil, "{w}");
    assert_eq!(
        (w["threads"].as_u64(), w["mix"]["load"].as_bool()),
        (Some(1), Some(true))
    );

    // A trace whose file name would inject keys, and whose path ends a comment.
    let t = dir.path().join("t\"\nthreads = 64\n.trace");
    let mut bytes = Vec::new();
    let mut rec = |ty: u8, payload: &[u8]| {
        bytes.extend(1u64.to_le_bytes());
        bytes.push(ty);
        bytes.extend((payload.len() as u32).to_le_bytes());
        bytes.extend(payload);
    };
    rec(
        1,
        b"feedcafedeadbeef\tTrace Version: 0.2\tRocksDB Version: 7.8\n",
    );
    let mut get = ((1u64 << 2) | (1 << 3)).to_le_bytes().to_vec();
    get.extend(0u32.to_le_bytes());
    get.extend([3, b'k', b'e', b'y']);
    rec(4, &get);
    std::fs::write(&t, &bytes).unwrap();
    let out = dir.path().join("analyzed.toml");
    let o = crate::common::command()
        .args(["workload", "analyze"])
        .arg(&t)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_ok(&o);
    let w = checked(&out);
    assert_eq!(w["mix"]["name"], "t\"\nthreads = 64\n", "{w}");
    assert_eq!(w["threads"].as_u64(), Some(1), "{w}");
}
