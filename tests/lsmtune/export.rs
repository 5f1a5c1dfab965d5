//! `lsmtune export` from the command line: output on stdout or --out, and bad inputs as exit 2
//! with a message naming what is wrong.

use std::path::PathBuf;

fn run_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export/run")
}

fn export(args: &[&str]) -> (i32, String, String) {
    let out = crate::common::command()
        .arg("export")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().expect("exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn export_run_folder_to_stdout_and_out_file() {
    let dir = run_dir();
    let (code, out, err) = export(&["--run", dir.to_str().unwrap(), "--format", "tikv"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("write-buffer-size = \"128MB\""), "{out}");
    assert!(out.contains("kept at iteration 2"), "{out}");
    // What TiKV cannot express is said on stderr too.
    assert!(
        err.contains("not expressible in tikv: table.block_size_deviation=5"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("tuned.cc");
    let (code, _, err) = export(&[
        dir.join("OPTIONS-tuned.ini").to_str().unwrap(),
        "--format",
        "cpp",
        "--rocksdb-version",
        "7.8",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("ApplyTunedOptions") && text.contains("RocksDB 7.8"),
        "{text}"
    );
}

#[test]
fn export_bad_inputs_exit_2_naming_them() {
    let dir = run_dir();
    let tuned = dir.join("OPTIONS-tuned.ini");
    let tuned = tuned.to_str().unwrap();
    let (code, _, err) = export(&[tuned, "--format", "xml"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("xml") && err.contains("tikv"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("OPTIONS-bad.ini");
    std::fs::write(&bad, "[DBOptions]\n this line has no equals sign\n").unwrap();
    let (code, _, err) = export(&[bad.to_str().unwrap(), "--format", "cpp"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("OPTIONS-bad.ini") && err.contains("line 2"),
        "{err}"
    );

    let newer = tmp.path().join("OPTIONS-newer.ini");
    std::fs::write(
        &newer,
        "[CFOptions \"default\"]\n blob_file_starting_level=2\n",
    )
    .unwrap();
    let (code, _, err) = export(&[
        newer.to_str().unwrap(),
        "--format",
        "java",
        "--rocksdb-version",
        "7.2",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("blob_file_starting_level") && err.contains("7.2") && err.contains("7.4"),
        "{err}"
    );
}

/// `tune --export rust,tikv` leaves export.rs and export.toml in the run folder, each the same as
/// `lsmtune export --run` gives, and report.md ends with them.
#[test]
fn a_tune_exports_what_it_changed_into_its_folder_and_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = crate::common::command()
        .args(["tune", "--backend", "expert", "--workload", "readrandom"])
        .args(["--num", "5000", "--value-size", "100", "--iterations", "2"])
        .args(["--repeats", "2", "--confirm", "0", "--export", "rust,tikv"])
        .arg("--work-dir")
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(0), "{said}");
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for (format, file) in [("rust", "export.rs"), ("tikv", "export.toml")] {
        let written = std::fs::read_to_string(out.join(file)).unwrap();
        assert!(said.contains(file), "{said}");
        let (code, fresh, err) = export(&["--run", out.to_str().unwrap(), "--format", format]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(written, fresh);
        assert!(
            report.contains(&format!("## Export: {format}")) && report.contains(&written),
            "{report}"
        );
    }
    // Resuming the finished tune rewrites report.md from the journal and keeps the sections,
    // once each; a format asked for again is exported again, not appended twice.
    let o = crate::common::command()
        .args(["tune", "--resume"])
        .arg(&out)
        .args(["--export", "tikv"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let again = std::fs::read_to_string(out.join("report.md")).unwrap();
    for format in ["rust", "tikv"] {
        assert_eq!(
            again.matches(&format!("## Export: {format}")).count(),
            1,
            "{again}"
        );
    }
}
