//! `lsmtune verify` and `tune --verify-scale`: the tuned configuration and its start side by
//! side at a larger scale, and the errors for inputs it cannot verify.

use crate::common;

/// An OPTIONS file from the defaults with `proposal` (`key=value` lines) applied.
fn options_file(dir: &std::path::Path, name: &str, proposal: &str) -> std::path::PathBuf {
    let text = dir.join(format!("{name}.txt"));
    std::fs::write(&text, proposal).unwrap();
    let file = dir.join(format!("OPTIONS-{name}.ini"));
    let o = crate::common::command()
        .args(["options", "calibrate", "--out"])
        .arg(&file)
        .arg(&text)
        .output()
        .unwrap();
    common::assert_ok(&o);
    file
}

/// A small, quick tune that verifies itself at twice the keys: the expert on readrandom from a
/// start with 1 MiB memtables, so 100,000 keys of 100 bytes spread over many files and its first
/// move, a bloom filter, is worth +100% or more (measured +126% and +163% beside a benchmark
/// on 2 cores): kept, so there is a tuned configuration to verify.
#[test]
fn a_tune_verifies_its_gain_at_scale_and_verify_reads_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let base = options_file(dir.path(), "small-memtables", "write_buffer_size=1MB\n");
    let mut cmd = crate::common::command();
    cmd.args([
        "tune",
        "--workload",
        "readrandom",
        "--backend",
        "expert",
        "--num",
        "100000",
        "--value-size",
        "100",
        "--repeats",
        "2",
        "--confirm",
        "1",
        "--iterations",
        "1",
        "--verify-scale",
        "2x",
        "--base",
    ])
    .arg(&base)
    .arg("--out")
    .arg(&out);
    let o = common::no_model_anywhere(&mut cmd, &dir.path().join("empty"))
        .output()
        .unwrap();
    common::assert_ok(&o);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let records = lsmtune::tune::journal::load(&out).unwrap();
    let Some(lsmtune::tune::journal::Record::End {
        comparison,
        kept_base,
        ..
    }) = records.last()
    else {
        panic!("no end record: {said}");
    };
    let Some(tc) = comparison.filter(|_| !*kept_base) else {
        // Nothing kept (possible on a busy machine): nothing to verify, and it says so, here
        // and in `verify --run` (the mechanics are covered by the test below either way).
        assert!(said.contains("verify at scale: skipped"), "{said}");
        assert!(!out.join("verify.json").exists());
        let o = crate::common::command()
            .args(["verify", "--run"])
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("the tune kept its start"));
        return;
    };
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("verify.json")).unwrap()).unwrap();
    // Twice the tune's keys and operations, 3 rounds (the tune's 2 repeats + 1 to confirm).
    assert_eq!(v["workload"]["num"], 200_000, "{v:#}");
    assert_eq!(v["tuned_workload"]["num"], 100_000, "{v:#}");
    assert_eq!(v["rounds"], 3);
    assert_eq!(v["data_bytes"], 200_000 * 116);
    // The tune's own final check travels with the verdict it is compared with.
    assert_eq!(v["tune_comparison"]["effect"], tc.effect);
    let outcome = v["outcome"].as_str().unwrap();
    assert!(
        [
            "grows",
            "holds",
            "shrinks",
            "not-confirmed",
            "reverses",
            "failed",
            "tuned-fails"
        ]
        .contains(&outcome),
        "{outcome}"
    );
    assert!(
        v["start_ops"]["n"] == 3 && v["tuned_ops"]["n"] == 3,
        "{v:#}"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("## At scale\n\n**the ")
            && md.contains("2x the tune's keys (100000 -> 200000)"),
        "{md}"
    );
    assert!(
        said.contains("verifying at scale") && said.contains("verify.json"),
        "{said}"
    );
    // Resuming the finished tune rewrites report.md from the journal and keeps the section.
    let o = crate::common::command()
        .args(["tune", "--resume"])
        .arg(&out)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert_eq!(again.matches("## At scale").count(), 1, "{again}");
    assert!(
        again.ends_with(&md[md.find("## At scale").unwrap()..]),
        "{again}"
    );

    // verify --run reads the same folder: its workload scaled, its check to compare with.
    let o = crate::common::command()
        .args([
            "verify", "--scale", "1.5x", "--rounds", "2", "--json", "--run",
        ])
        .arg(&out)
        .output()
        .unwrap();
    common::assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["workload"]["num"], 150_000, "{v:#}");
    assert_eq!(v["rounds"], 2);
    assert_eq!(v["tune_comparison"]["effect"], tc.effect);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("at scale, tuned vs start"), "{err}");

    // Flags that would change the tune's workload are refused with --run.
    let o = crate::common::command()
        .args(["verify", "--num", "5", "--run"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("with --run the workload is the tune's"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Two OPTIONS files at twice a small workload's keys: the scaled workload, the rounds, both
/// sides measured and judged, with no tune to compare with.
#[test]
fn verify_measures_two_files_side_by_side_at_scale() {
    let dir = tempfile::tempdir().unwrap();
    let tuned = options_file(dir.path(), "filter", "table.filter_bits_per_key=10\n");
    let o = crate::common::command()
        .args([
            "verify",
            "--tuned",
            tuned.to_str().unwrap(),
            "--workload",
            "readrandom",
            "--num",
            "20000",
            "--value-size",
            "100",
            "--scale",
            "2x",
            "--rounds",
            "2",
            "--json",
        ])
        .output()
        .unwrap();
    common::assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
    assert_eq!(v["workload"]["num"], 40_000, "{v:#}");
    assert_eq!(v["tuned_workload"]["num"], 20_000, "{v:#}");
    assert_eq!(v["rounds"], 2);
    assert!(v["tune_comparison"].is_null(), "{v:#}");
    assert!(
        v["start_ops"]["n"] == 2 && v["tuned_ops"]["n"] == 2,
        "both sides measured every round: {v:#}"
    );
    assert!(v["comparison"]["effect"].is_number(), "{v:#}");
    let outcome = v["outcome"].as_str().unwrap();
    // With no tune to compare with, better is "holds", never "grows" or "shrinks".
    assert!(
        ["holds", "not-confirmed", "reverses"].contains(&outcome),
        "{outcome}"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("2x the tune's keys (20000 -> 40000)") && err.contains("round 2/2 tuned"),
        "{err}"
    );
}

#[test]
fn what_verify_cannot_verify_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ini");
    std::fs::write(&bad, "this is not an options file\n[[[\n").unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let not_a_tune = empty.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["verify"], "say what to verify"),
        (
            vec!["verify", "--tuned", bad.to_str().unwrap()],
            "--workload is needed",
        ),
        (
            vec![
                "verify",
                "--tuned",
                bad.to_str().unwrap(),
                "--workload",
                "readrandom",
            ],
            "is not an OPTIONS file",
        ),
        (vec!["verify", "--run", not_a_tune], "journal"),
        (
            vec!["verify", "--run", not_a_tune, "--scale", "0.5x"],
            "outside 1x..100000x",
        ),
        (
            vec!["verify", "--run", not_a_tune, "--scale", "big"],
            "not a scale",
        ),
    ];
    for (args, want) in cases {
        let o = crate::common::command().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: wanted `{want}` in: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
