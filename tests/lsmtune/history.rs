//! The tuning memory end to end on small workloads: a finished tune records itself in the
//! history and `history list|show|export|import|add` read and share it; the next tune of a
//! similar workload starts from what the nearest past tune kept (its first candidate, the
//! report's History section), a dissimilar workload and `--no-history` start cold, and a
//! corrupt history is a warning the tune goes past.

use std::path::Path;
use std::process::Output;

use lsmtune::tune::journal::{self, Record};

use crate::common;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// lsmtune with the history at `history`.
fn with_history(history: &Path, args: &[&str]) -> Output {
    common::command()
        .args(args)
        .arg("--history")
        .arg(history)
        .output()
        .unwrap()
}

/// A one-iteration tune of `workload` into `out` with `backend`, recording into `history`.
fn tune(history: &Path, out: &Path, workload: &str, backend: &str) -> Output {
    let o = with_history(
        history,
        &[
            &[
                "tune",
                "--backend",
                backend,
                "--workload",
                workload,
                "--iterations",
                "1",
            ],
            common::SMALL,
            &["--out", out.to_str().unwrap()],
        ]
        .concat(),
    );
    common::assert_ok(&o);
    o
}

fn start_past(out: &Path) -> Option<lsmtune::history::Warm> {
    match journal::load(out).unwrap().into_iter().next() {
        Some(Record::Start { past, .. }) => past,
        _ => panic!("no start record in {}", out.display()),
    }
}

fn first_iteration(out: &Path) -> journal::Iteration {
    journal::load(out)
        .unwrap()
        .into_iter()
        .find_map(|r| match r {
            Record::Iteration(it) => Some(*it),
            _ => None,
        })
        .expect("an iteration")
}

#[test]
fn a_finished_tune_is_recorded_listed_shown_exported_and_imported() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("state/history.sqlite");
    let run = dir.path().join("run");
    let o = tune(&h, &run, "readrandom", "expert");
    assert!(text(&o).contains("recorded in the history"), "{}", text(&o));
    // The first tune read an empty history: its report says none was similar.
    let past = start_past(&run).expect("the history was read");
    assert_eq!((past.considered, past.neighbours.len()), (0, 0));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("## History") && report.contains("None was similar"),
        "{report}"
    );

    let o = with_history(&h, &["history", "list"]);
    common::assert_ok(&o);
    assert!(
        text(&o).contains("1 past tune(s)") && text(&o).contains("readrandom"),
        "{}",
        text(&o)
    );
    let o = with_history(&h, &["history", "list", "--json"]);
    let tunes: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let id = tunes[0]["id"].as_str().unwrap().to_string();
    assert_eq!(tunes[0]["workload"]["reads"], 1.0);
    assert_eq!(tunes[0]["steps"].as_array().unwrap().len(), 1, "{tunes}");
    let o = with_history(&h, &["history", "show", &id[..6]]);
    common::assert_ok(&o);
    assert!(
        text(&o).contains("measured:") && text(&o).contains(&id),
        "{}",
        text(&o)
    );
    let o = with_history(&h, &["history", "show", "zzzz"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // Recording the same folder again adds nothing.
    let o = with_history(&h, &["history", "add", run.to_str().unwrap()]);
    assert!(text(&o).contains("already there"), "{}", text(&o));

    // Export, then import into another history: once, then nothing new.
    let jsonl = dir.path().join("fleet.jsonl");
    common::assert_ok(&with_history(
        &h,
        &["history", "export", "--out", jsonl.to_str().unwrap()],
    ));
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 1);
    let h2 = dir.path().join("other.sqlite");
    let o = with_history(&h2, &["history", "import", jsonl.to_str().unwrap()]);
    assert!(text(&o).contains("imported 1 tune(s)"), "{}", text(&o));
    let o = with_history(&h2, &["history", "import", jsonl.to_str().unwrap()]);
    assert!(
        text(&o).contains("imported 0 tune(s)") && text(&o).contains("1 already there"),
        "{}",
        text(&o)
    );
    // A file of something else: every line named, and an error.
    let junk = dir.path().join("junk.jsonl");
    std::fs::write(&junk, "{\"a\": 1}\nnot json\n").unwrap();
    let o = with_history(&h2, &["history", "import", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("junk.jsonl line 1: not a tune") && text(&o).contains("line 2"),
        "{}",
        text(&o)
    );
}

/// The next tune of a similar workload tries what the nearest past tune kept first; a
/// dissimilar one and `--no-history` start cold. The past tune's result is made up (exported,
/// edited, imported) so what it kept is known, whatever this machine measures.
#[test]
fn a_similar_tune_starts_from_what_the_nearest_kept_and_a_dissimilar_one_cold() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("history.sqlite");
    tune(&h, &dir.path().join("first"), "readrandom", "expert");
    let o = with_history(&h, &["history", "export"]);
    let mut past: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    past["id"] = "feedface00000001".into();
    past["outcome"] =
        serde_json::json!({"effect": 1.5, "low": 0.9, "high": 2.2, "kept_start": false});
    past["best"] = serde_json::json!({"table.block_size": "8192", "write_buffer_size": "33554432"});
    let edited = dir.path().join("edited.jsonl");
    std::fs::write(&edited, format!("{past}\n")).unwrap();
    let warm = dir.path().join("warm.sqlite");
    common::assert_ok(&with_history(
        &warm,
        &["history", "import", edited.to_str().unwrap()],
    ));

    // readrandomwriterandom (90% reads) is near readrandom: distance 0.2.
    // Each backend from a copy of it, so neither sees the other's tune.
    for backend in ["expert", "search"] {
        let out = dir.path().join(format!("rrwr-{backend}"));
        let copy = dir.path().join(format!("warm-{backend}.sqlite"));
        std::fs::copy(&warm, &copy).unwrap();
        tune(&copy, &out, "readrandomwriterandom", backend);
        let w = start_past(&out).unwrap();
        assert_eq!(w.neighbours.len(), 1, "{w:?}");
        assert!(
            (w.neighbours[0].similarity.distance - 0.2).abs() < 1e-9,
            "{w:?}"
        );
        let it = first_iteration(&out);
        assert!(
            it.reasoning
                .as_deref()
                .unwrap_or("")
                .starts_with("history: the kept changes"),
            "{backend}: {it:?}"
        );
        assert_eq!(
            it.changes.get("table.block_size").map(String::as_str),
            Some("8192")
        );
        let report = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            report.contains("| feedface00000001") && report.contains("distance 0.20: its mix"),
            "{report}"
        );
    }

    // fillrandom is far from readrandom: no neighbour, no history candidate.
    let cold = dir.path().join("fill");
    tune(&warm, &cold, "fillrandom", "expert");
    assert!(start_past(&cold).unwrap().neighbours.is_empty());
    assert!(
        !first_iteration(&cold)
            .reasoning
            .unwrap_or_default()
            .starts_with("history")
    );

    // --no-history: nothing read, nothing recorded.
    let before = with_history(&warm, &["history", "list", "--json"]);
    let off = dir.path().join("off");
    let o = common::command()
        .args([
            "tune",
            "--backend",
            "expert",
            "--workload",
            "readrandomwriterandom",
            "--iterations",
            "1",
            "--no-history",
        ])
        .args(common::SMALL)
        .arg("--out")
        .arg(&off)
        .env("LSMTUNE_HISTORY", &warm)
        .output()
        .unwrap();
    common::assert_ok(&o);
    assert!(start_past(&off).is_none());
    assert!(
        !first_iteration(&off)
            .reasoning
            .unwrap_or_default()
            .starts_with("history")
    );
    assert_eq!(
        with_history(&warm, &["history", "list", "--json"]).stdout,
        before.stdout
    );
}

#[test]
fn a_corrupt_history_is_a_warning_and_the_tune_goes_on_cold() {
    let dir = tempfile::tempdir().unwrap();
    let h = dir.path().join("history.sqlite");
    std::fs::write(&h, vec![0x5a; 8192]).unwrap();
    let out = dir.path().join("run");
    let o = tune(&h, &out, "readrandom", "expert");
    let t = text(&o);
    assert!(
        t.contains("the history could not be read, so this tune starts cold"),
        "{t}"
    );
    assert!(t.contains("could not be recorded in the history"), "{t}");
    let w = start_past(&out).unwrap();
    assert!(w.neighbours.is_empty() && !w.warnings.is_empty(), "{w:?}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("Warning: the history could not be read"),
        "{report}"
    );
    // The file is left as it was: never overwritten.
    assert_eq!(std::fs::read(&h).unwrap(), vec![0x5a; 8192]);
}
