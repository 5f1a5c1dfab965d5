//! The `lsmtune options ...` commands as a user runs them: outputs, exit codes, and bad input that
//! must end in a clear error (exit 2), never a panic (101).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::lsmtune;

fn with_stdin(args: &[&str], input: &str) -> Output {
    use std::io::Write;
    let mut child = crate::common::command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/options")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

#[test]
fn show_lists_the_catalog_with_defaults() {
    let o = lsmtune(&["options", "show"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("tunable options of RocksDB 11."), "{out}");
    for key in [
        "write_buffer_size",
        "table.block_size",
        "table.filter_bits_per_key",
        "compression",
    ] {
        assert!(out.contains(key), "{key} missing");
    }
    let o = lsmtune(&["options", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().unwrap().len() >= 80);
}

#[test]
fn json_means_the_same_in_every_command_and_never_eats_the_next_argument() {
    // `--json FILE` is `--json` (stdout) and a positional FILE: the file is read, not written.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("OPTIONS.ini");
    std::fs::copy(fixture("good_options.ini"), &file).unwrap();
    let before = std::fs::read(&file).unwrap();
    let o = lsmtune(&["options", "show", "--json", file.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v.as_array()
            .unwrap()
            .iter()
            .any(|r| r["key"] == "write_buffer_size")
    );
    assert_eq!(std::fs::read(&file).unwrap(), before);
    // `--json=FILE` writes the same JSON there and prints the text as usual.
    let out = dir.path().join("v.json");
    let o = lsmtune(&[
        "options",
        "validate",
        file.to_str().unwrap(),
        &format!("--json={}", out.display()),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["valid"], true);
    assert!(serde_json::from_slice::<serde_json::Value>(&o.stdout).is_err());
    // Every command with a result has it (the parse is what is checked here).
    for cmd in [
        &["tune", "--help"][..],
        &["compare", "--help"],
        &["models", "list", "--help"],
        &["propose", "--help"],
        &["bench", "--help"],
        &["llm", "bench", "--help"],
        &["options", "diff", "--help"],
    ] {
        let o = lsmtune(cmd);
        assert!(
            text(&o).contains("--json[=<FILE>]"),
            "{cmd:?}: {}",
            text(&o)
        );
    }
    let o = lsmtune(&["options", "show", "--category", "filter"]);
    assert!(text(&o).contains("table.filter_type"));
    let o = lsmtune(&["options", "show", "--category", "nonsense"]);
    assert_eq!(code(&o), 2);
}

/// The old `--json FILE` form is refused by the parser (FILE is an unexpected argument), with a
/// tip toward `--json=FILE`.
#[test]
fn json_with_a_separate_file_points_to_the_equals_form() {
    let o = lsmtune(&["bench", "--workload", "fillrandom", "--json", "run.json"]);
    assert_eq!(code(&o), 2);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("unexpected argument") && err.contains("--json=run.json"),
        "{err}"
    );
    // Other unexpected arguments get no such tip.
    let o = lsmtune(&["bench", "--workload", "fillrandom", "run.json"]);
    assert_eq!(code(&o), 2);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("--json="));
}

#[test]
fn show_annotates_a_file_and_flags_unknown_keys() {
    let o = lsmtune(&[
        "options",
        "show",
        &fixture("rocksdb_option_file_example.ini"),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("written by RocksDB 4.3.0"), "{out}");
    assert!(
        out.contains("# Size of one memtable"),
        "meanings shown: {out}"
    );

    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("odd.ini");
    let text_in = std::fs::read_to_string(fixture("rocksdb_default_options.ini"))
        .unwrap()
        .replace("[DBOptions]", "[DBOptions]\n  made_up_option=7");
    std::fs::write(&odd, text_in).unwrap();
    let o = lsmtune(&["options", "show", odd.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("made_up_option=7  <- unknown to RocksDB"),
        "{out}"
    );
}

#[test]
fn validate_exit_codes() {
    let o = lsmtune(&[
        "options",
        "validate",
        &fixture("rocksdb_default_options.ini"),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("valid for RocksDB"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.ini");
    std::fs::write(
        &bad,
        "[Version]\n rocksdb_version=11.8.1\n[DBOptions]\n max_background_jobs=lots\n not_an_option=1\n[CFOptions \"default\"]\n[TableOptions/BlockBasedTable \"default\"]\n",
    )
    .unwrap();
    let o = lsmtune(&["options", "validate", bad.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("max_background_jobs") && out.contains("not_an_option"),
        "{out}"
    );

    let o = lsmtune(&["options", "validate", "/no/such/file"]);
    assert_eq!(code(&o), 2);
    assert!(
        text(&o).contains("/no/such/file: No such file"),
        "{}",
        text(&o)
    );
}

#[test]
fn diff_names_changed_tunables() {
    let o = lsmtune(&[
        "options",
        "diff",
        &fixture("good_options.ini"),
        &fixture("bad_options.ini"),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("max_background_jobs: 12 -> 1"), "{out}");
    assert!(
        out.contains("write_buffer_size: 128 MiB -> 16 MiB"),
        "{out}"
    );
}

#[test]
fn calibrate_writes_a_loadable_file_and_prints_corrections() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("OPTIONS-tuned.ini");
    let o = with_stdin(
        &[
            "options",
            "calibrate",
            "-",
            "--out",
            out.to_str().unwrap(),
            "--memory-budget",
            "2G",
        ],
        "Here you go:\n{\"changes\": {\"write_buffer_size\": \"128MB\", \"compression_type\": \"zstd\", \"level0_file_num_compaction_trigger\": 40, \"paranoid_checks\": false}}",
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    let printed = text(&o);
    for want in [
        "[alias]",
        "[type]",
        "[dependency]",
        "[unsafe]",
        "write_buffer_size = 128 MiB",
    ] {
        assert!(printed.contains(want), "{want} missing in:\n{printed}");
    }
    // RocksDB's own loader reads the written file from disk.
    let doc = lsmtune::options::OptionsDoc::read(&out).unwrap();
    let db_dir = dir.path().join("db");
    let (db, _) = lsmtune::options::rocks::open(&doc, &db_dir).unwrap();
    drop(db);

    let o = lsmtune(&[
        "options",
        "calibrate",
        &fixture("good_options.ini"),
        "--base",
        &fixture("bad_options.ini"),
        "--out",
        dir.path().join("x.ini").to_str().unwrap(),
        "--json",
        "--max-changes",
        "100",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["changes"]["max_background_jobs"], 12);
}

#[test]
fn db_bench_loads_the_calibrated_file_when_available() {
    // CI installs rocksdb-tools and sets LSMTUNE_REQUIRE_DB_BENCH=1, so there this runs.
    let Some(db_bench) = crate::common::db_bench() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("OPTIONS-tuned.ini");
    let o = with_stdin(
        &["options", "calibrate", "-", "--out", out.to_str().unwrap()],
        "write_buffer_size=32MB\nmax_background_jobs=4\ntable.block_size=16KB",
    );
    assert_eq!(code(&o), 0, "{}", text(&o));
    // db_bench 7.8.3 refuses keys RocksDB 11 writes: downgrade drops exactly those.
    let compat = dir.path().join("OPTIONS-db_bench.ini");
    let o = lsmtune(&[
        "options",
        "downgrade",
        out.to_str().unwrap(),
        "--out",
        compat.to_str().unwrap(),
        "--db-bench",
        db_bench.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("dropped"), "{}", text(&o));
    let doc = lsmtune::options::OptionsDoc::read(&compat).unwrap();
    let table = lsmtune::options::spec::Scope::Table.section();
    assert_eq!(
        doc.get(&table, "block_size"),
        Some("16384"),
        "tuned values survive"
    );
    let run = Command::new(db_bench)
        .args([
            "--benchmarks=fillseq",
            "--num=1000",
            &format!("--db={}", dir.path().join("db").display()),
            &format!("--options_file={}", compat.display()),
        ])
        .output()
        .unwrap();
    let printed = text(&run);
    assert!(run.status.success(), "{printed}");
    assert!(printed.contains("fillseq"), "{printed}");
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, [0u8, 159, 146, 150, 255, 0, 1]).unwrap();
    let out = dir.path().join("o.ini");
    let out = out.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["options", "show", garbage.to_str().unwrap()],
        vec!["options", "validate", garbage.to_str().unwrap()],
        vec!["options", "diff", "/nope", "/nope2"],
        vec!["options", "calibrate", "/nope", "--out", out],
        vec![
            "options",
            "calibrate",
            "-",
            "--out",
            out,
            "--memory-budget",
            "lots",
        ],
        vec![
            "options",
            "calibrate",
            "-",
            "--out",
            out,
            "--base",
            garbage.to_str().unwrap(),
        ],
        vec!["options", "calibrate", "-", "--out", "/no/such/dir/o.ini"],
        vec!["options", "frobnicate"],
    ];
    for args in cases {
        let o = lsmtune(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}");
    }
    // A binary proposal is no error: nothing usable in it, nothing changed.
    let o = lsmtune(&[
        "options",
        "calibrate",
        garbage.to_str().unwrap(),
        "--out",
        out,
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("no change"));
}

#[test]
fn help_teaches() {
    let o = lsmtune(&["options", "calibrate", "--help"]);
    assert_eq!(code(&o), 0);
    let out = text(&o);
    assert!(
        out.contains("--memory-budget") && out.contains("Example"),
        "{out}"
    );
}

#[test]
fn a_reader_that_stops_early_is_not_a_crash() {
    // `lsmtune grammar schema | head -c 0`: the reader closes the pipe before lsmtune writes.
    let mut child = crate::common::command()
        .args(["grammar", "schema"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("internal error"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// `--out` writes into what the user named: a new file gets 0666 under the umask (not a
/// temporary file's 0600), an existing file keeps its mode, a symbolic link is followed (the
/// file it names changes, the link stays a link), and a FIFO is written through, never replaced
/// by a regular file (the same holds for /dev/null, which this test does not touch).
#[test]
fn out_writes_into_what_the_user_named() {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let out = |p: &Path| {
        let o = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "umask 022; exec '{}' options defaults --out '{}'",
                env!("CARGO_BIN_EXE_lsmtune"),
                p.display()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", text(&o));
    };
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;

    let fresh = dir.path().join("fresh.ini");
    out(&fresh);
    assert_eq!(mode(&fresh), 0o644);
    assert!(
        std::fs::read_to_string(&fresh)
            .unwrap()
            .contains("[DBOptions]")
    );

    let kept = dir.path().join("kept.ini");
    std::fs::write(&kept, "old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    out(&kept);
    assert_eq!(mode(&kept), 0o640);
    assert!(
        std::fs::read_to_string(&kept)
            .unwrap()
            .contains("[DBOptions]")
    );

    let real = dir.path().join("elsewhere").join("real.ini");
    std::fs::create_dir(real.parent().unwrap()).unwrap();
    std::fs::write(&real, "old").unwrap();
    let link = dir.path().join("link.ini");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    out(&link);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .contains("[DBOptions]")
    );
    let dangling = dir.path().join("dangling.ini");
    std::os::unix::fs::symlink("made-by-link.ini", &dangling).unwrap();
    out(&dangling);
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(dir.path().join("made-by-link.ini").is_file());

    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    out(&fifo);
    assert!(reader.join().unwrap().contains("[DBOptions]"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

    // A folder is refused with a message, not replaced.
    let o = lsmtune(&["options", "defaults", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("folder"), "{}", text(&o));
    // No temporary files are left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".lsmtune-") || n.starts_with(".tmp"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Numeric flags are checked when parsed, the same way in every command: out-of-range counts
/// (once a capacity overflow or an abort), NaN or infinite numbers (once accepted and later
/// written into the journal) and zero threads (once silently one) are usage errors, exit 2.
#[test]
fn numeric_flags_are_checked_at_parse_time_everywhere() {
    for args in [
        &["compare", "--seeds", "18446744073709551615", "--out", "x"][..],
        &["compare", "--seeds", "4294967296", "--out", "x"],
        &["compare", "--seeds", "0", "--out", "x"],
        &["tune", "--min-effect", "NaN"],
        &["tune", "--min-effect", "inf"],
        &["tune", "--threads", "0"],
        &["tune", "--temperature=-1"],
        &["tune", "--iterations", "0"],
        &["bench", "--threads", "0"],
        &["bench", "--min-effect", "NaN"],
        &["bench", "--compression-ratio", "0"],
        &["bench", "--readwritepercent", "101"],
        &["propose", "--n", "0"],
        &["propose", "--temperature", "nan"],
    ] {
        let o = lsmtune(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("out of range") || t.contains("not a") || t.contains("must be"),
            "{args:?}: {t}"
        );
        assert!(!t.contains("panicked"), "{args:?}: {t}");
    }
}

/// A repeated section is refused by `options diff` (RocksDB refuses it too), and a file of many
/// unknown keys validates in bounded time: past 1000 refusals the rest are counted, not each
/// handed to RocksDB, and no line is echoed whole.
#[test]
fn huge_or_repeated_options_files_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.ini");
    let o = lsmtune(&["options", "defaults", "--out", good.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let mut twice = std::fs::read_to_string(&good).unwrap();
    twice.push_str("[CFOptions \"default\"]\n  write_buffer_size=1048576\n");
    let twice_path = dir.path().join("twice.ini");
    std::fs::write(&twice_path, &twice).unwrap();
    let o = lsmtune(&[
        "options",
        "diff",
        good.to_str().unwrap(),
        twice_path.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("second time"), "{}", text(&o));

    let mut keys = format!("  {}=1\n", "k".repeat(100_000));
    for i in 0..200_000 {
        keys.push_str(&format!("  no_such_option_{i}=1\n"));
    }
    let many = std::fs::read_to_string(&good).unwrap().replacen(
        "[DBOptions]\n",
        &format!("[DBOptions]\n{keys}"),
        1,
    );
    let path = dir.path().join("many.ini");
    std::fs::write(&path, many).unwrap();
    let o = lsmtune(&["options", "validate", path.to_str().unwrap()]);
    assert_eq!(
        code(&o),
        1,
        "{}",
        text(&o).chars().take(2000).collect::<String>()
    );
    assert!(text(&o).contains("not checked one by one"));
    assert!(
        text(&o).len() < 1_000_000,
        "{} bytes of output",
        text(&o).len()
    );
}

/// A db_bench that hangs (here a script that sleeps) is stopped at --timeout, with a message,
/// in `options downgrade` and in `bench --engine db_bench`; lsmtune never hangs with it.
#[test]
fn a_hanging_db_bench_is_stopped_at_the_timeout() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("db_bench");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 600\n").unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let good = dir.path().join("good.ini");
    let o = lsmtune(&["options", "defaults", "--out", good.to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let t = std::time::Instant::now();
    let o = lsmtune(&[
        "options",
        "downgrade",
        good.to_str().unwrap(),
        "--out",
        dir.path().join("old.ini").to_str().unwrap(),
        "--db-bench",
        fake.to_str().unwrap(),
        "--timeout",
        "1s",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("no answer within"), "{}", text(&o));
    let o = lsmtune(&[
        "bench",
        "--workload",
        "fillrandom",
        "--engine",
        "db_bench",
        "--db-bench",
        fake.to_str().unwrap(),
        "--timeout",
        "1s",
        "--repeats",
        "1",
    ]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("no answer within"), "{}", text(&o));
    // Not a timing target: a guard that neither command waited for the 600 s sleep.
    assert!(t.elapsed().as_secs() < 300);
}

/// In a command list, each command whose help keeps its line breaks (for its examples) shows a
/// one-line summary: a summary broken over the source's lines wrapped into ragged fragments.
#[test]
fn command_lists_show_one_line_summaries() {
    for (parent, commands) in [
        (&[][..], &["tune", "compare", "bench", "propose"][..]),
        (&["models"], &["list", "pull", "make-test-model"]),
        (&["llm"], &["bench", "turns"]),
        (&["workload"], &["analyze", "from-db"]),
        (&["grammar"], &["schema"]),
        (&["options"], &["show", "downgrade"]),
    ] {
        let mut args: Vec<&str> = parent.to_vec();
        args.push("--help");
        let help = text(&lsmtune(&args));
        let lines: Vec<&str> = help.lines().collect();
        for cmd in commands {
            let at = lines
                .iter()
                .position(|l| l.starts_with(&format!("  {cmd} ")))
                .unwrap_or_else(|| panic!("{parent:?}: no {cmd} in\n{help}"));
            let next = lines.get(at + 1).copied().unwrap_or("");
            assert!(
                next.is_empty() || next.starts_with("  ") && !next.starts_with("   "),
                "{parent:?} {cmd}: the summary runs on: {:?} / {next:?}",
                lines[at]
            );
        }
    }
}

#[test]
fn help_examples_keep_one_command_per_line() {
    for cmd in [
        &["tune", "--help"][..],
        &["compare", "--help"],
        &["bench", "--help"],
        &["propose", "--help"],
        &["options", "show", "--help"],
        &["options", "calibrate", "--help"],
        &["models", "pull", "--help"],
        &["models", "list", "--help"],
        &["grammar", "schema", "--help"],
        &["llm", "bench", "--help"],
    ] {
        let o = lsmtune(cmd);
        let help = text(&o);
        let examples: Vec<&str> = help
            .lines()
            .filter(|l| l.trim_start().starts_with("lsmtune ") || l.contains("lsmtune "))
            .filter(|l| l.matches("lsmtune ").count() > 1)
            .collect();
        assert!(
            examples.is_empty(),
            "{cmd:?}: examples run together: {examples:?}"
        );
        assert!(
            help.contains("\n  lsmtune ") || help.contains("\n  echo "),
            "{cmd:?}: no example on its own line:\n{help}"
        );
    }
}
