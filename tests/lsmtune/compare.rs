//! `lsmtune compare` with the tiny random-weight model, the expert and the random proposer on a
//! small workload: one table (Markdown, CSV, JSON) and one plot, one shared baseline, and a
//! second run of the same command that resumes (skips every finished tune).

use crate::common;

use std::process::Command;

use common::BIN;

#[test]
fn compare_three_proposers_then_resume() {
    let dir = tempfile::tempdir().unwrap();
    let model = common::tiny_model(dir.path());
    let out = dir.path().join("cmp");
    let proposers = format!("local:{},expert,random", model.display());
    let run = || {
        Command::new(BIN)
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
    let shared: serde_json::Value = serde_json::from_str(&shared).unwrap();
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

    // Again: everything is finished, nothing runs, the results are the same.
    let before = std::fs::read_to_string(out.join("results.json")).unwrap();
    let t = std::time::Instant::now();
    let o = run();
    assert_eq!(o.status.code(), Some(0));
    assert!(t.elapsed().as_secs() < 20);
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
        let o = Command::new(BIN)
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
