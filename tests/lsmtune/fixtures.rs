//! Every real OPTIONS file in tests/fixtures/options (RocksDB 4.3 to 8.8, kvrocks, NebulaGraph,
//! db_bench) reads, survives CRLF, becomes a base RocksDB 11 opens, and is written back as a file
//! RocksDB's own loader reads from disk.

use std::path::PathBuf;

use lsmtune::options::{
    self, CalibrateOptions, Calibrator, OptionsDoc, Rule, ini::SectionKind, rocks,
};

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/options");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/options exists")
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 9,
        "expected the nine shared fixtures, found {}",
        files.len()
    );
    files
}

fn calibrator() -> Calibrator<'static> {
    Calibrator::new(
        options::catalog().unwrap(),
        CalibrateOptions {
            memory_budget: 8 << 30,
            allow_unsafe: false,
            max_changes: 16,
        },
    )
}

#[test]
fn every_fixture_parses_with_its_sections() {
    for path in fixtures() {
        let doc = OptionsDoc::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        assert!(doc.rocksdb_version().is_some(), "{name}: no version");
        assert!(
            doc.section(&SectionKind::Db).is_some(),
            "{name}: no DBOptions"
        );
        assert!(
            doc.column_families().contains(&"default"),
            "{name}: no default CF"
        );
        let entries: usize = doc.sections.iter().map(|s| s.entries.len()).sum();
        assert!(entries >= 10, "{name}: only {entries} entries");
    }
}

#[test]
fn crlf_copies_parse_identically() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(
            OptionsDoc::parse(&crlf).unwrap(),
            OptionsDoc::parse(&text).unwrap(),
            "{}",
            path.display()
        );
    }
}

#[test]
fn every_fixture_becomes_a_base_rocksdb_opens_from_disk() {
    let cal = calibrator();
    for path in fixtures() {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let doc = OptionsDoc::read(&path).unwrap();
        let (base, corrections) = cal
            .prepare_base(doc.clone())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        // Only keys RocksDB refuses are dropped, each with a correction naming it.
        for c in &corrections {
            assert_eq!(c.rule, Rule::RocksdbRejected, "{name}: {c}");
        }
        let kept: usize = base.doc.sections.iter().map(|s| s.entries.len()).sum();
        let had: usize = doc.sections.iter().map(|s| s.entries.len()).sum();
        assert!(
            kept + corrections.len() >= had,
            "{name}: entries lost without a note"
        );

        // Written to disk, read back by RocksDB's loader, a database opens from it.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("OPTIONS-tuned.ini");
        base.doc.write(&file, "fixture test").unwrap();
        let reread = OptionsDoc::read(&file).unwrap();
        let (db, _opts) =
            rocks::open(&reread, &dir.path().join("db")).unwrap_or_else(|e| panic!("{name}: {e}"));
        db.put(b"k", b"v").unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        // Column families of the file exist in the opened database.
        for cf in reread.column_families() {
            if cf != "default" {
                assert!(db.cf_handle(cf).is_some(), "{name}: cf {cf} missing");
            }
        }
    }
}

#[test]
fn old_files_keep_their_tuned_values() {
    let cal = calibrator();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/options/rocksdb_option_file_example.ini");
    let (base, _) = cal.prepare_base(OptionsDoc::read(&path).unwrap()).unwrap();
    let cat = options::catalog().unwrap();
    // RocksDB 4.3's file sets these; 11.x still understands them.
    assert_eq!(base.int(cat, "max_background_compactions"), 16);
    assert_eq!(base.int(cat, "write_buffer_size"), 134217728);
    assert_eq!(base.int(cat, "table.block_size"), 8192);
    assert_eq!(base.int(cat, "num_levels"), 6);
}

#[test]
fn good_and_bad_fixtures_differ_where_expected() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/options");
    let good = options::Config::new(OptionsDoc::read(&dir.join("good_options.ini")).unwrap());
    let bad = options::Config::new(OptionsDoc::read(&dir.join("bad_options.ini")).unwrap());
    let diff = good.diff(&bad, options::catalog().unwrap());
    for key in [
        "max_background_jobs",
        "write_buffer_size",
        "max_open_files",
        "level0_file_num_compaction_trigger",
        "hard_pending_compaction_bytes_limit",
    ] {
        assert!(diff.contains_key(key), "{key} missing from {diff:?}");
    }
    assert!(!diff.contains_key("compression"));
}
