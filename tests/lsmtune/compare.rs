//! `lsmtune compare` with the tiny random-weight model, the expert and the random proposer on a
//! small workload: one table (Markdown, CSV, JSON) and one plot, one shared baseline, and a
//! second run of the same command that resumes (skips every finished tune).

use crate::common;

#[test]
fn compare_three_proposers_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model(dir.path());
    let out = dir.path().join("cmp");
    let proposers = format!("local:{},expert,random", model.display());
    let run = || {
        crate::common::command()
            .args(["compare", "--proposers", &proposers])
            .args([
                "--workloads",
                "fillrandom",
                "--seeds",
                "2",
                "--iterations",
                "2",
            ])
            .args(["--num", "10000", "--value-size", "100", "--repeats", "2"])
            .args([
                "--confirm",
                "1",
                "--max-tokens",
                "200",
                "--quiet",
                "--offline",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    let o = run();
    common::assert_ok(&o);
    // Even --quiet prints a line per iteration run (proposers x seeds x iterations): what the
    // second run must not print.
    let iteration_lines = |o: &std::process::Output| -> Vec<String> {
        String::from_utf8_lossy(&o.stderr)
            .lines()
            .filter(|l| l.starts_with("iteration "))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(iteration_lines(&o).len(), 3 * 2 * 2, "{o:?}");
    for f in [
        "results.md",
        "results.csv",
        "results.json",
        "best_so_far.svg",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    assert!(out.join("baselines/fillrandom.json").is_file());
    let rows: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        assert_eq!(r["seeds"], 2, "{r}");
        assert_eq!(r["iterations"], 2.0, "{r}");
        assert_eq!(r["curves"].as_array().unwrap().len(), 2);
        assert!(r["gain_low"].as_f64().unwrap() <= r["gain_high"].as_f64().unwrap());
    }
    let local = rows
        .iter()
        .find(|r| r["proposer"].as_str().unwrap().starts_with("local:"))
        .unwrap();
    assert!(local["prompt_tokens"].as_u64().unwrap() > 0);
    assert!(local["llm_seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(
        local["invalid_rate"], 0.0,
        "the grammar admits no invalid entry"
    );
    let expert = rows.iter().find(|r| r["proposer"] == "expert").unwrap();
    assert_eq!(expert["prompt_tokens"], 0);
    // Every tune started from the one shared baseline.
    let shared = std::fs::read_to_string(out.join("baselines/fillrandom.json")).unwrap();
    let shared = serde_json::from_str::<serde_json::Value>(&shared).unwrap()["sample"].clone();
    assert!(shared["ops_per_sec"].is_array(), "{shared}");
    let mut journals = 0;
    for entry in walk(&out.join("runs")) {
        if entry.ends_with("journal.jsonl") {
            journals += 1;
            let first = std::fs::read_to_string(&entry).unwrap();
            let start: serde_json::Value =
                serde_json::from_str(first.lines().next().unwrap()).unwrap();
            assert_eq!(start["baseline"], shared);
        }
    }
    assert_eq!(journals, 6);
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4);

    // Again: everything is finished, nothing runs (no iteration printed, not a byte of any
    // tune's folder or of the baseline rewritten), the results are the same.
    let before = std::fs::read_to_string(out.join("results.json")).unwrap();
    let files = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut all: Vec<_> = walk(dir)
            .into_iter()
            .map(|p| {
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect();
        all.sort();
        all
    };
    let (runs, baselines) = (files(&out.join("runs")), files(&out.join("baselines")));
    let o = run();
    common::assert_ok(&o);
    assert_eq!(
        iteration_lines(&o),
        Vec::<String>::new(),
        "something re-ran"
    );
    assert!(files(&out.join("runs")) == runs, "a tune's files changed");
    assert!(
        files(&out.join("baselines")) == baselines,
        "the baseline changed"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("results.json")).unwrap(),
        before
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// A folder that merely has a `runs/` (or `baselines/`) sub-folder is not an earlier compare:
/// the user's results.md and results.csv in it are not overwritten without --force.
#[test]
fn a_folder_with_a_runs_subfolder_is_not_taken_for_a_compare() {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["runs", "baselines"] {
        let out = dir.path().join(sub);
        std::fs::create_dir_all(out.join(sub)).unwrap();
        std::fs::write(out.join("results.md"), "my results").unwrap();
        std::fs::write(out.join("results.csv"), "my,table").unwrap();
        let o = crate::common::command()
            .args([
                "compare",
                "--proposers",
                "random",
                "--workloads",
                "fillrandom",
            ])
            .args(["--seeds", "1", "--iterations", "1", "--num", "3000"])
            .args([
                "--value-size",
                "100",
                "--repeats",
                "2",
                "--confirm",
                "0",
                "--quiet",
            ])
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("not an lsmtune run folder") && err.contains("results.md"),
            "{err}"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("results.md")).unwrap(),
            "my results"
        );
        assert_eq!(
            std::fs::read_to_string(out.join("results.csv")).unwrap(),
            "my,table"
        );
    }
}

/// A small workload file: gets and puts over `num` keys.
fn workload_file(path: &std::path::Path, num: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let text = format!(
        "num = {num}\nthreads = 1\nops_per_thread = 2000\nvalue_size = 100\n[ops]\nget = 80\nput = 20\n"
    );
    std::fs::write(path, text).unwrap();
}

/// Two workloads that would share a label (two files named x.toml; `readrandom` and a file
/// readrandom.properties) are refused, naming both.
#[test]
fn workloads_that_share_a_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a/x.toml"), dir.path().join("b/x.toml"));
    workload_file(&a, 3000);
    workload_file(&b, 4000);
    let props = dir.path().join("readrandom.properties");
    std::fs::write(
        &props,
        "recordcount=1000\noperationcount=1000\nreadproportion=1\n",
    )
    .unwrap();
    for list in [
        format!("{},{}", a.display(), b.display()),
        format!("readrandom,{}", props.display()),
    ] {
        let o = crate::common::command()
            .args(["compare", "--proposers", "expert", "--workloads", &list])
            .arg("--out")
            .arg(dir.path().join("cmp"))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        let first = list.split(',').next().unwrap();
        assert!(
            err.contains("would both be named") && err.contains(first),
            "{err}"
        );
        assert!(!dir.path().join("cmp").exists());
    }
}

/// A rerun whose settings differ from what the folder holds (--num changed, the workload file
/// edited) is refused, naming the difference, instead of printing the old results; --force
/// starts those over and keeps the old ones aside.
#[test]
fn a_rerun_with_other_settings_is_refused_or_started_over() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.toml");
    workload_file(&file, 3000);
    let out = dir.path().join("cmp");
    let run = |extra: &[&str]| {
        crate::common::command()
            .args(["compare", "--proposers", "expert", "--workloads"])
            .arg(&file)
            .args(["--seeds", "1", "--iterations", "1", "--repeats", "2"])
            .args(["--confirm", "0", "--quiet"])
            .args(extra)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap()
    };
    common::assert_ok(&run(&[]));
    let seed = out.join("runs/svc/expert/seed-1");
    let before = std::fs::read(seed.join("journal.jsonl")).unwrap();
    // The same command again resumes (nothing differs).
    common::assert_ok(&run(&[]));
    let o = run(&["--num", "4000"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("other settings") && err.contains("workload.num: 3000 then, 4000 now"),
        "{err}"
    );
    workload_file(&file, 3500);
    let o = run(&[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("workload.num: 3000 then, 3500 now"), "{err}");
    assert_eq!(std::fs::read(seed.join("journal.jsonl")).unwrap(), before);
    // --force: done again with the edited file, the old tune and baseline kept aside.
    common::assert_ok(&run(&["--force"]));
    let records = lsmtune::tune::journal::load(&seed).unwrap();
    let Some(lsmtune::tune::journal::Record::Start { settings, .. }) = records.first() else {
        panic!("no start record");
    };
    assert_eq!(settings.workload.num, 3500);
    let aside: Vec<String> = std::fs::read_dir(seed.parent().unwrap())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("seed-1.stale-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let old = seed.parent().unwrap().join(&aside[0]).join("journal.jsonl");
    assert_eq!(std::fs::read(old).unwrap(), before);
    assert!(
        std::fs::read_dir(out.join("baselines"))
            .unwrap()
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("svc.json.stale-"))
    );
}

/// A compare split in two shards (one by `--shard 0/2`, one by a Slurm array's environment
/// under `--shard auto`), each an ordinary compare folder with its part of the matrix, merged
/// into one table of the same tunes; and what merge refuses.
#[test]
fn shards_run_their_part_and_merge_into_one_table() {
    let dir = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, shard: &str, num: &str, env: &[(&str, &str)]| {
        let mut cmd = crate::common::command();
        cmd.args(["compare", "--proposers", "expert,random"])
            .args([
                "--workloads",
                "readrandom",
                "--seeds",
                "2",
                "--iterations",
                "1",
            ])
            .args(["--num", num, "--value-size", "100", "--repeats", "2"])
            .args(["--confirm", "1", "--quiet", "--shard", shard, "--out"])
            .arg(out)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("JOB_COMPLETION_INDEX");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let (s0, s1) = (dir.path().join("shard-0"), dir.path().join("shard-1"));
    common::assert_ok(&run(&s0, "0/2", "10000", &[]));
    common::assert_ok(&run(
        &s1,
        "auto",
        "10000",
        &[
            ("SLURM_ARRAY_TASK_ID", "2"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    ));
    let manifest = |d: &std::path::Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(d.join("shard.json")).unwrap()).unwrap()
    };
    let (m0, m1) = (manifest(&s0), manifest(&s1));
    assert_eq!(
        (m0["shard"]["index"].clone(), m1["shard"]["index"].clone()),
        (0.into(), 1.into())
    );
    // Every tune in exactly one shard, and only there.
    let tasks = m0["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "2 proposers x 1 workload x 2 seeds");
    assert_eq!(m0["tasks"], m1["tasks"], "both shards split alike");
    let mut journals = Vec::new();
    for t in tasks {
        let (task, shard) = (&t[0], t[1].as_u64().unwrap());
        let rel = format!(
            "runs/readrandom/{}/seed-{}",
            task["proposer"].as_str().unwrap(),
            task["seed"]
        );
        let (own, other) = if shard == 0 { (&s0, &s1) } else { (&s1, &s0) };
        assert!(
            own.join(&rel).join("journal.jsonl").is_file(),
            "{rel} in shard {shard}"
        );
        assert!(!other.join(&rel).exists(), "{rel} also in the other shard");
        let bytes = std::fs::read(own.join(&rel).join("journal.jsonl")).unwrap();
        journals.push((rel, bytes));
    }
    assert!(
        tasks.iter().any(|t| t[1] == 0) && tasks.iter().any(|t| t[1] == 1),
        "both shards have work: {tasks:?}"
    );

    let merged = dir.path().join("merged");
    let o = crate::common::command()
        .args(["compare", "merge", "--json"])
        .arg(&merged)
        .arg(&s0)
        .arg(&s1)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    for r in rows {
        assert_eq!(r["seeds"], 2, "every seed of {} merged: {r}", r["proposer"]);
    }
    // The merged tunes are the shards' tunes, byte for byte.
    for (rel, bytes) in &journals {
        assert_eq!(
            &std::fs::read(merged.join(rel).join("journal.jsonl")).unwrap(),
            bytes,
            "{rel}"
        );
    }
    let md = std::fs::read_to_string(merged.join("results.md")).unwrap();
    assert!(md.contains("Merged from 2 shards"), "{md}");
    assert!(merged.join("best_so_far.svg").is_file());

    // Refused: a shard missing, a folder that is no shard, a shard of other settings.
    let refused = |args: &[&std::path::Path], want: &str| {
        let o = crate::common::command()
            .args(["compare", "merge"])
            .arg(dir.path().join("m2"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(want), "wanted `{want}`: {err}");
    };
    refused(&[&s0], "shard(s) 1/2 missing");
    refused(&[&s0, dir.path()], "not a shard of a compare");
    let other = dir.path().join("other-1");
    common::assert_ok(&run(&other, "1/2", "12000", &[]));
    refused(&[&s0, &other], "with different settings: workload.num");
    // A shard's folder holds that shard only.
    let o = run(&s0, "1/2", "10000", &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("give each shard its own --out"));
}
