//! Property test: 10,000 generated hostile proposals (mangled and unknown keys, absurd values,
//! every syntax the calibrator reads, random bases from the real fixtures, random budgets). For
//! each: no panic; every change is a catalog key with an in-range value that is safe unless
//! unsafe options were allowed; the memory estimate fits the budget (or says why it cannot); and
//! the written OPTIONS file, read back from disk by RocksDB's loader, opens a database that takes
//! a write and a read (in RocksDB's in-memory Env, or on disk when the file asks for direct I/O
//! or mmap, as the calibrator's own check does; every tenth case also on a real file system, so
//! the in-memory Env is not the only judge of its own verdict).
//!
//! Case count: `LSMTUNE_PROPTEST_CASES` (default 10000).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

use lsmtune::options::{
    self, CalibrateOptions, Calibrator, Config, OptionsDoc, Rule, calibrate::estimate_memory,
    catalog::Catalog, rocks, value::OptionType,
};
use proptest::prelude::*;

fn catalog() -> &'static Catalog {
    options::catalog().unwrap()
}

/// Prepared bases: the linked defaults and every fixture.
fn bases() -> &'static Vec<Config> {
    static BASES: OnceLock<Vec<Config>> = OnceLock::new();
    BASES.get_or_init(|| {
        let cal = Calibrator::new(catalog(), CalibrateOptions::default());
        let mut docs = vec![rocks::linked_defaults().unwrap().clone()];
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/options");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            docs.push(OptionsDoc::read(&f).unwrap());
        }
        docs.into_iter()
            .map(|d| cal.prepare_base(d).unwrap().0)
            .collect()
    })
}

fn keys() -> Vec<&'static str> {
    catalog().entries.iter().map(|e| e.spec.key).collect()
}

const ALIASES: &[&str] = &[
    "compression_type",
    "cache_size",
    "bloom_bits",
    "block_cache",
    "write_buffer_number",
    "open_files",
    "universal_size_ratio",
    "compression_level",
    "l0_stop_writes_trigger",
];
const NOT_TUNABLE: &[&str] = &[
    "create_if_missing",
    "wal_dir",
    "db_log_dir",
    "comparator",
    "merge_operator",
    "table_factory",
    "env",
    "statistics",
    "listeners",
    "WAL_ttl_seconds",
    "prefix_extractor",
    "compaction_filter",
];

fn key_strategy() -> impl Strategy<Value = String> {
    let ks = keys();
    let n = ks.len();
    prop_oneof![
        4 => (0..n).prop_map(move |i| keys()[i].to_string()),
        2 => (0..n, 0..6usize).prop_map(|(i, m)| {
            let k = keys()[i];
            match m {
                0 => k.to_uppercase(),
                1 => format!("DBOptions.{k}"),
                2 => format!("block_based_table_factory.{}", k.trim_start_matches("table.")),
                3 => k.replace('_', "-"),
                4 => format!("--{k}"),
                _ => format!("`{k}`"),
            }
        }),
        1 => proptest::sample::select(ALIASES).prop_map(str::to_string),
        1 => proptest::sample::select(NOT_TUNABLE).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_.]{0,30}",
        1 => any::<String>(),
    ]
}

#[derive(Debug, Clone)]
enum V {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
}

fn value_strategy() -> impl Strategy<Value = V> {
    let enums: Vec<&'static str> = catalog()
        .entries
        .iter()
        .filter_map(|e| match &e.spec.ty {
            OptionType::Enum { values } => Some(*values),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    prop_oneof![
        2 => any::<i64>().prop_map(V::Int),
        3 => (-10i64..5000).prop_map(V::Int),
        1 => any::<f64>().prop_map(V::Float),
        2 => (0u32..5000, proptest::sample::select(&["KB", "MB", "G", "GiB", "T", "k", "", " bytes", "mb", "PB"][..]))
            .prop_map(|(n, u)| V::Text(format!("{n}{u}"))),
        1 => (0u32..80).prop_map(|s| V::Text(format!("1<<{s}"))),
        1 => proptest::sample::select(&["true", "false", "yes", "no", "on", "off", "1", "0", "TRUE", "maybe"][..])
            .prop_map(|s| V::Text(s.to_string())),
        1 => any::<bool>().prop_map(V::Bool),
        2 => proptest::sample::select(enums).prop_map(|s| V::Text(s.to_string())),
        1 => proptest::sample::select(&["lz4", "zstd", "none", "universal", "fifo", "ribbon", "bloom", "kBrotli"][..])
            .prop_map(|s| V::Text(s.to_string())),
        1 => "[ -~]{0,40}".prop_map(V::Text),
        1 => Just(V::Text("{a=1;b={c=2}}".into())),
        1 => Just(V::Text("NaN".into())),
    ]
}

fn json_value(v: &V) -> serde_json::Value {
    match v {
        V::Int(i) => serde_json::json!(i),
        V::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        V::Text(s) => serde_json::json!(s),
        V::Bool(b) => serde_json::json!(b),
    }
}

fn text_value(v: &V) -> String {
    match v {
        V::Int(i) => i.to_string(),
        V::Float(f) => f.to_string(),
        V::Text(s) => s.replace(['\n', '\r'], " "),
        V::Bool(b) => b.to_string(),
    }
}

fn render(entries: &[(String, V)], format: u8) -> String {
    match format {
        0 => {
            let mut m = serde_json::Map::new();
            for (k, v) in entries {
                m.insert(k.clone(), json_value(v));
            }
            serde_json::json!({"reasoning": "generated", "changes": m}).to_string()
        }
        1 => {
            let mut m = serde_json::Map::new();
            for (k, v) in entries {
                m.insert(k.clone(), json_value(v));
            }
            format!(
                "Sure, here is the config:\n```json\n{}\n```\nHope it helps!",
                serde_json::Value::Object(m)
            )
        }
        2 => entries
            .iter()
            .map(|(k, v)| format!("{k}={}\n", text_value(v)))
            .collect(),
        3 => entries
            .iter()
            .map(|(k, v)| format!("- {k}: {} (because reasons)\n", text_value(v)))
            .collect(),
        _ => {
            let mut s = String::from("[Version]\n  rocksdb_version=9.9.9\n[DBOptions]\n");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i == entries.len() / 2 {
                    s.push_str("[CFOptions \"default\"]\n");
                }
                let k = k.replace(['[', ']', '=', '\n', '\r', '#'], "_");
                let k = if k.trim().is_empty() {
                    "x".to_string()
                } else {
                    k
                };
                s.push_str(&format!("  {k}={}\n", text_value(v).replace('#', "")));
            }
            s.push_str("[TableOptions/BlockBasedTable \"default\"]\n");
            s
        }
    }
}

/// Cases run so far (every tenth also opens on disk).
static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// How long one open, write and read may take before it counts as a hang. In-memory it takes
/// milliseconds; this only has to tell "slow on a busy machine" from "never".
const HANG: std::time::Duration = std::time::Duration::from_secs(300);

/// Run `use_db` (open a calibrated config, write, read) on its own thread and wait for it.
///
/// A config that deadlocks RocksDB (one did: unordered writes with a manually flushed WAL) leaves
/// that thread stuck on a mutex inside RocksDB forever. Then this prints the calibrated file and
/// the proposal and ends the test process with a failure, instead of blocking CI until its
/// timeout. It does not return a case failure: shrinking would re-run the hang many times.
fn within_deadline(
    rendered: &str,
    text: &str,
    use_db: impl FnOnce() -> Result<Option<Vec<u8>>, String> + Send + 'static,
) -> Result<Option<Vec<u8>>, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(use_db());
    });
    match rx.recv_timeout(HANG) {
        Ok(got) => got,
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            Err("opening the calibrated config panicked (see above)".into())
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            // Straight to stderr: the test harness captures `eprintln!`, and exiting drops that.
            let _ = writeln!(
                std::io::stderr(),
                "HANG: RocksDB did not finish opening, writing and reading a calibrated config \
                 within {HANG:?}; the calibrator let a deadlocking combination through.\n\
                 calibrated OPTIONS:\n{rendered}\nproposal:\n{text}"
            );
            std::process::exit(1);
        }
    }
}

fn cases() -> u32 {
    std::env::var("LSMTUNE_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_proposals_calibrate_into_configs_rocksdb_opens(
        entries in proptest::collection::vec((key_strategy(), value_strategy()), 0..24),
        format in 0u8..5,
        base_index in 0usize..10,
        budget_mib in 64u64..16384,
        allow_unsafe in proptest::bool::weighted(0.2),
        max_changes in 1usize..24,
    ) {
        let cat = catalog();
        let base = &bases()[base_index % bases().len()];
        let budget = budget_mib << 20;
        let cal = Calibrator::new(cat, CalibrateOptions { memory_budget: budget, allow_unsafe, max_changes });
        let text = render(&entries, format);
        let result = cal.calibrate_text(base, &text);

        for (key, value) in &result.changes {
            let entry = cat.get(key).expect("changes are catalog keys");
            let in_range = match (&entry.spec.ty, value) {
                (OptionType::Int { min, max } | OptionType::Size { min, max }, v) => {
                    v.as_i64().is_some_and(|i| (*min..=*max).contains(&i))
                }
                (OptionType::Double { min, max }, v) => {
                    v.as_f64().is_some_and(|f| f >= *min && f <= *max)
                }
                (OptionType::Enum { values }, v) => values.contains(&v.to_string().as_str()),
                (OptionType::Bool, v) => v.as_bool().is_some(),
            };
            // Memory-budget and dependency corrections stay within ranges too.
            prop_assert!(in_range, "{key}={value} out of range; text:\n{text}");
            if !allow_unsafe {
                prop_assert!(!entry.spec.safety.is_unsafe(value), "unsafe {key}={value} accepted");
            }
        }
        let est = estimate_memory(cat, &result.config);
        let base_est = estimate_memory(cat, base);
        let cannot_fit = result.corrections.iter().any(|c| c.rule == Rule::MemoryBudget && c.to.is_none());
        prop_assert!(est.total <= budget.max(base_est.total) || cannot_fit,
            "memory {} over budget {budget}", est.total);

        // Independently: write to disk, read back, open with RocksDB's loader, use it.
        let dir = tempfile::Builder::new().prefix("lsmtune-proptest-").tempdir_in(
            if std::path::Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" }).unwrap();
        let file = dir.path().join("OPTIONS-calibrated.ini");
        result.config.doc.write(&file, "proptest").unwrap();
        let reread = OptionsDoc::read(&file).unwrap();
        let rendered = reread.render("proptest");
        let doc = reread.clone();
        let got = within_deadline(&rendered, &text, move || {
            let scratch = rocks::open_scratch(&doc)
                .map_err(|e| format!("RocksDB refused a calibrated config: {e}"))?;
            scratch.db().put(b"key", b"value").map_err(|e| e.to_string())?;
            scratch.db().get(b"key").map_err(|e| e.to_string())
        }).map_err(|e| TestCaseError::fail(format!("{e}\ntext:\n{text}")))?;
        prop_assert_eq!(got.as_deref(), Some(&b"value"[..]));
        // Every tenth case also on a real file system, as a user's program opens it: the
        // in-memory Env the checks use must not be the only judge of its own verdict.
        if CASE
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(10)
        {
            let doc = reread.clone();
            let got = within_deadline(&rendered, &text, move || {
                let disk = tempfile::Builder::new().prefix("lsmtune-proptest-disk-").tempdir().unwrap();
                let (db, _opts) = rocks::open(&doc, &disk.path().join("db"))
                    .map_err(|e| format!("RocksDB refused a calibrated config on disk: {e}"))?;
                db.put(b"key", b"value").map_err(|e| e.to_string())?;
                db.get(b"key").map_err(|e| e.to_string())
            }).map_err(|e| TestCaseError::fail(format!("{e}\ntext:\n{text}")))?;
            prop_assert_eq!(got.as_deref(), Some(&b"value"[..]));
        }
    }
}

/// The one combination that hung this test: unordered writes with a manually flushed WAL (and
/// one write queue) open fine and deadlock on the first write. Allowed unsafe options must not
/// let it through: the calibrator turns the manual flush off, and the database takes a write.
#[test]
fn unordered_writes_with_a_manual_wal_flush_take_a_write() {
    let cat = catalog();
    let cal = Calibrator::new(
        cat,
        CalibrateOptions {
            memory_budget: 8 << 30,
            allow_unsafe: true,
            max_changes: 8,
        },
    );
    let result = cal.calibrate_text(
        &bases()[0],
        r#"{"changes": {"unordered_write": true, "manual_wal_flush": true}}"#,
    );
    let changed = |k: &str| result.changes.get(k).map(|v| v.to_string());
    assert_eq!(changed("unordered_write").as_deref(), Some("true"));
    assert!(
        result
            .corrections
            .iter()
            .any(|c| c.key == "manual_wal_flush" && c.rule == Rule::Dependency),
        "{:?}",
        result.corrections
    );
    let doc = result.config.doc.clone();
    let rendered = doc.render("test");
    let got = within_deadline(&rendered, "unordered_write + manual_wal_flush", move || {
        let scratch = rocks::open_scratch(&doc).map_err(|e| e.to_string())?;
        scratch
            .db()
            .put(b"key", b"value")
            .map_err(|e| e.to_string())?;
        scratch.db().get(b"key").map_err(|e| e.to_string())
    })
    .unwrap();
    assert_eq!(got.as_deref(), Some(&b"value"[..]));
}
