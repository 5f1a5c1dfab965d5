//! The calibrator's rules, each on a proposal that needs it, checked against the linked RocksDB.

use lsmtune::options::{
    self, CalibrateOptions, Calibrated, Calibrator, Config, Rule, calibrate::estimate_memory,
    rocks, value::Value,
};

fn cal(budget: u64, allow_unsafe: bool) -> Calibrator<'static> {
    Calibrator::new(
        options::catalog().unwrap(),
        CalibrateOptions {
            memory_budget: budget,
            allow_unsafe,
            max_changes: 16,
        },
    )
}

fn base(c: &Calibrator) -> Config {
    c.prepare_base(rocks::linked_defaults().unwrap().clone())
        .unwrap()
        .0
}

fn run(text: &str) -> Calibrated {
    let c = cal(8 << 30, false);
    let b = base(&c);
    c.calibrate_text(&b, text)
}

fn rules(r: &Calibrated, key: &str) -> Vec<Rule> {
    r.corrections
        .iter()
        .filter(|c| c.key == key)
        .map(|c| c.rule)
        .collect()
}

fn int(r: &Calibrated, key: &str) -> i64 {
    r.config.int(options::catalog().unwrap(), key)
}

#[test]
fn exact_schema_proposal_needs_no_correction() {
    let r = run(
        r#"{"reasoning":"bigger memtables","changes":{"write_buffer_size":134217728,"max_write_buffer_number":4,"table.block_size":16384,"compression":"kZSTD","table.filter_bits_per_key":10}}"#,
    );
    assert!(r.corrections.is_empty(), "{:#?}", r.corrections);
    assert_eq!(r.changes.len(), 5);
    assert_eq!(r.reasoning.as_deref(), Some("bigger memtables"));
    assert_eq!(int(&r, "table.block_size"), 16384);
    rocks::validate(&r.config).unwrap();
}

#[test]
fn unknown_keys_are_dropped_with_a_suggestion_and_aliases_map() {
    let r = run(
        "compresion=lz4\ncompression_type=zstd\nfoo_bar_baz=1\ncache_size=1G\nstats_persist_period_sec=10",
    );
    let typo = r
        .corrections
        .iter()
        .find(|c| c.key == "compresion")
        .unwrap();
    assert_eq!(typo.rule, Rule::UnknownKey);
    assert!(typo.reason.contains("`compression`"), "{}", typo.reason);
    assert!(rules(&r, "compression").contains(&Rule::Alias));
    assert_eq!(r.changes["compression"], Value::Str("kZSTD".into()));
    assert_eq!(r.changes["table.block_cache_size"], Value::Int(1 << 30));
    let unknown = r
        .corrections
        .iter()
        .find(|c| c.key == "foo_bar_baz")
        .unwrap();
    assert_eq!(unknown.rule, Rule::UnknownKey);
    let nt = r
        .corrections
        .iter()
        .find(|c| c.key == "stats_persist_period_sec")
        .unwrap();
    assert_eq!(nt.rule, Rule::NotTunable);
}

/// `wal_dir` and `db_log_dir` are RocksDB options (deployment paths RocksDB leaves out of its
/// OPTIONS files): dropped as options lsmtune does not tune, never as unknown to RocksDB.
#[test]
fn deployment_paths_are_options_lsmtune_does_not_tune() {
    let r = run(r#"{"changes": {"wal_dir": "/ssd/wal", "DBOptions.db_log_dir": "/var/log/db"}}"#);
    for key in ["wal_dir", "DBOptions.db_log_dir"] {
        let c = r.corrections.iter().find(|c| c.key == key).unwrap();
        assert_eq!(c.rule, Rule::NotTunable, "{key}: {}", c.reason);
        assert!(!c.reason.contains("not an option"), "{}", c.reason);
    }
    assert!(r.changes.is_empty(), "{:?}", r.changes);
}

#[test]
fn keys_with_case_and_section_prefixes_resolve() {
    let r = run(
        r#"{"changes": {"Table.Block_Size": "32KB", "DBOptions.max_background_jobs": "4", "block_based_table_factory.cache_index_and_filter_blocks": "yes"}}"#,
    );
    assert_eq!(int(&r, "table.block_size"), 32 << 10);
    assert_eq!(int(&r, "max_background_jobs"), 4);
    assert_eq!(
        r.changes["table.cache_index_and_filter_blocks"],
        Value::Bool(true)
    );
    assert!(rules(&r, "table.block_size").contains(&Rule::Key));
    assert!(rules(&r, "table.block_size").contains(&Rule::Type));
}

#[test]
fn units_coercion_clamping_and_unparsable() {
    let r = run(
        "write_buffer_size = 1<<27\nmax_background_jobs: 1000\ntable.block_size=tiny\nmax_bytes_for_level_multiplier=\"8\"\nlevel0_file_num_compaction_trigger = 4 files is fine",
    );
    assert_eq!(int(&r, "write_buffer_size"), 1 << 27);
    assert_eq!(int(&r, "max_background_jobs"), 64);
    assert!(rules(&r, "max_background_jobs").contains(&Rule::Range));
    assert_eq!(rules(&r, "table.block_size"), vec![Rule::Unparsable]);
    assert!(!r.changes.contains_key("table.block_size"));
    assert_eq!(
        r.changes["max_bytes_for_level_multiplier"],
        Value::Double(8.0)
    );
    // Default trigger is 4 already: the leading word is read, and it is no change.
    assert!(rules(&r, "level0_file_num_compaction_trigger").contains(&Rule::NoChange));
}

#[test]
fn l0_triggers_are_ordered() {
    let r = run("level0_file_num_compaction_trigger=30");
    let (t, s, p) = (
        int(&r, "level0_file_num_compaction_trigger"),
        int(&r, "level0_slowdown_writes_trigger"),
        int(&r, "level0_stop_writes_trigger"),
    );
    assert_eq!(t, 30);
    assert!(t < s && s < p, "{t} {s} {p}");
    assert_eq!(
        (s, p),
        (37, 46),
        "gaps of a quarter keep a stop from coming with the trigger"
    );
    assert!(rules(&r, "level0_slowdown_writes_trigger").contains(&Rule::Dependency));

    // The slowdown side set on purpose: the trigger comes down under it.
    let r = run("level0_slowdown_writes_trigger=2\nlevel0_stop_writes_trigger=3");
    assert!(int(&r, "level0_file_num_compaction_trigger") < 2);
}

#[test]
fn memtable_merge_soft_hard_and_level_base() {
    let r = run("min_write_buffer_number_to_merge=3");
    assert!(int(&r, "max_write_buffer_number") > 3);
    let r =
        run("soft_pending_compaction_bytes_limit=500G\nhard_pending_compaction_bytes_limit=100G");
    assert!(
        int(&r, "soft_pending_compaction_bytes_limit")
            <= int(&r, "hard_pending_compaction_bytes_limit")
    );
    let r = run(
        "write_buffer_size=256MB\nlevel0_file_num_compaction_trigger=8\nmax_bytes_for_level_base=16MB",
    );
    let l0 = 256i64 << 20 << 3;
    assert_eq!(int(&r, "max_bytes_for_level_base"), l0);
    assert!(rules(&r, "max_bytes_for_level_base").contains(&Rule::Dependency));
}

#[test]
fn conflicts_dbopen_would_refuse_are_repaired_by_rules() {
    let r = run("allow_mmap_reads=true\nuse_direct_reads=true");
    let mmap = r
        .config
        .flag(options::catalog().unwrap(), "allow_mmap_reads");
    let direct = r
        .config
        .flag(options::catalog().unwrap(), "use_direct_reads");
    assert!(!(mmap && direct));
    let r = run("memtable_factory=VectorRepFactory");
    assert!(!r.config.flag(
        options::catalog().unwrap(),
        "allow_concurrent_memtable_write"
    ));
    let r = run("table.block_align=true");
    assert!(
        !r.config
            .flag(options::catalog().unwrap(), "table.block_align")
    );
    let r = run("table.partition_filters=true\ntable.filter_bits_per_key=10");
    assert_eq!(
        r.config
            .text(options::catalog().unwrap(), "table.index_type"),
        "kTwoLevelIndexSearch"
    );
    rocks::validate(&r.config).unwrap();
}

#[test]
fn unsafe_options_need_the_flag() {
    let text = "paranoid_checks=false\nunordered_write=true\ncompaction_style=fifo\nmanual_wal_flush=true\ndisable_auto_compactions=true";
    let r = run(text);
    for key in [
        "paranoid_checks",
        "unordered_write",
        "compaction_style",
        "manual_wal_flush",
        "disable_auto_compactions",
    ] {
        assert_eq!(rules(&r, key).last(), Some(&Rule::Unsafe), "{key}");
        assert!(!r.changes.contains_key(key), "{key}");
    }
    // Safe values of the same keys pass.
    let r = run("compaction_style=universal\nparanoid_checks=true");
    assert_eq!(
        r.changes["compaction_style"],
        Value::Str("kCompactionStyleUniversal".into())
    );

    let c = cal(8 << 30, true);
    let b = base(&c);
    let r = c.calibrate_text(&b, "paranoid_checks=false\nunordered_write=true");
    assert_eq!(r.changes["paranoid_checks"], Value::Bool(false));
    assert_eq!(r.changes["unordered_write"], Value::Bool(true));
}

#[test]
fn memory_budget_scales_down_cache_then_memtables() {
    let c = cal(1 << 30, false);
    let b = base(&c);
    let cat = options::catalog().unwrap();
    let r = c.calibrate_text(
        &b,
        "table.block_cache_size=4G\nwrite_buffer_size=256MB\nmax_write_buffer_number=4",
    );
    let est = estimate_memory(cat, &r.config);
    assert!(est.total <= 1 << 30, "{est:?}");
    assert!(rules(&r, "table.block_cache_size").contains(&Rule::MemoryBudget));
    assert_eq!(
        int(&r, "write_buffer_size"),
        256 << 20,
        "memtable size is the last resort"
    );

    let r = c.calibrate_text(
        &b,
        "table.block_cache_size=64MB\nwrite_buffer_size=1G\nmax_write_buffer_number=8",
    );
    let est = estimate_memory(cat, &r.config);
    assert!(est.total <= 1 << 30, "{est:?}");
    assert!(rules(&r, "max_write_buffer_number").contains(&Rule::MemoryBudget));
}

#[test]
fn the_budget_still_holds_when_rocksdb_refuses_the_change_that_saved_memory() {
    // Found by the property test: no_block_cache made room for 22 memtables' worth of
    // max_write_buffer_number; RocksDB then refused no_block_cache (this base caches index and
    // filter blocks), the block cache came back, and the total went over the budget.
    let c = cal(1088 << 20, false);
    let cat = options::catalog().unwrap();
    let doc = options::OptionsDoc::read(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/options/rocksdb-tuning-suggestions.ini"
    )))
    .unwrap();
    let b = c.prepare_base(doc).unwrap().0;
    let r = c.calibrate_text(&b, "write_buffer_number=22\nTABLE.NO_BLOCK_CACHE=true");
    assert!(rules(&r, "table.no_block_cache").contains(&Rule::RocksdbRejected));
    let est = estimate_memory(cat, &r.config);
    assert!(est.total <= 1088 << 20, "{est:?}");
    assert!(est.block_cache > 0, "{est:?}");
}

#[test]
fn arena_blocks_stay_within_an_eighth_of_the_memtable() {
    let r = run("arena_block_size=256320300");
    assert_eq!(int(&r, "arena_block_size"), (64 << 20) / 8);
    assert!(rules(&r, "arena_block_size").contains(&Rule::Dependency));
    let r = run("write_buffer_size=16MB\narena_block_size=1MB");
    assert_eq!(int(&r, "arena_block_size"), 1 << 20, "within the cap: kept");
    let r = run("write_buffer_size=4MB\narena_block_size=4MB");
    assert_eq!(int(&r, "arena_block_size"), 512 << 10);
}

#[test]
fn duplicates_too_many_and_no_change() {
    let r = run("max_background_jobs=4\nmax_background_jobs=6");
    assert_eq!(int(&r, "max_background_jobs"), 6);
    assert!(rules(&r, "max_background_jobs").contains(&Rule::Duplicate));

    let c = Calibrator::new(
        options::catalog().unwrap(),
        CalibrateOptions {
            memory_budget: 8 << 30,
            allow_unsafe: false,
            max_changes: 2,
        },
    );
    let b = base(&c);
    let r = c.calibrate_text(
        &b,
        "max_background_jobs=4\nmax_subcompactions=2\ntable.block_size=8192",
    );
    assert_eq!(rules(&r, "table.block_size"), vec![Rule::TooMany]);
    assert_eq!(r.changes.len(), 2);

    let default_jobs = int(&run(""), "max_background_jobs");
    let r = run(&format!("max_background_jobs={default_jobs}"));
    assert_eq!(rules(&r, "max_background_jobs"), vec![Rule::NoChange]);
    assert!(r.changes.is_empty());
}

#[test]
fn compression_change_clears_a_per_level_list() {
    let c = cal(8 << 30, false);
    let mut doc = rocks::linked_defaults().unwrap().clone();
    doc.set(
        &options::spec::Scope::Cf.section(),
        "compression_per_level",
        "kNoCompression:kSnappyCompression:kSnappyCompression",
    );
    let (b, _) = c.prepare_base(doc).unwrap();
    let r = c.calibrate_text(&b, "compression=kZSTD");
    assert!(rules(&r, "compression_per_level").contains(&Rule::Dependency));
    assert_eq!(
        r.config
            .doc
            .get(&options::spec::Scope::Cf.section(), "compression_per_level"),
        Some("")
    );
}

#[test]
fn a_whole_options_file_is_a_proposal() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/options/good_options.ini"
    ))
    .unwrap();
    let c = Calibrator::new(
        options::catalog().unwrap(),
        CalibrateOptions {
            memory_budget: 8 << 30,
            allow_unsafe: false,
            max_changes: 1000,
        },
    );
    let b = base(&c);
    let r = c.calibrate_text(&b, &text);
    assert_eq!(r.format, "options-file");
    assert_eq!(int(&r, "max_background_jobs"), 12);
    assert_eq!(int(&r, "write_buffer_size"), 134217728);
    // Non-tunable keys in the file are reported, not silently taken.
    assert!(r.corrections.iter().any(|c| c.rule == Rule::NotTunable));
    rocks::validate(&r.config).unwrap();
}
