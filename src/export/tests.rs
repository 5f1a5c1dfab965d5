//! Golden files per format (regenerate with LSMTUNE_BLESS=1), and each output checked by its
//! consumer: the Rust file compiles here and opens a database, the TOML parses, the conf files
//! parse line by line, and the C++ file compiles against Debian's librocksdb-dev and runs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/export")
}

fn fixture_plan() -> Plan {
    let mut plan = load(&Inputs {
        run: Some(fixture_dir().join("run")),
        ..Inputs::default()
    })
    .unwrap();
    // Golden files must not depend on where the checkout lives.
    plan.source = "tests/fixtures/export/run".into();
    plan
}

fn golden_path(format: Format) -> PathBuf {
    fixture_dir()
        .join("golden")
        .join(format!("tuned.{}", format.extension()))
}

fn golden(format: Format) -> String {
    std::fs::read_to_string(golden_path(format)).unwrap()
}

#[test]
fn export_golden_files_match_byte_for_byte() {
    let plan = fixture_plan();
    let bless = std::env::var("LSMTUNE_BLESS").is_ok_and(|v| v == "1");
    let mut stale = Vec::new();
    for format in Format::ALL {
        let text = render(format, &plan).text;
        let path = golden_path(format);
        if bless {
            std::fs::write(&path, &text).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != text {
            stale.push(format!(
                "{}:\n--- want\n{want}\n--- got\n{text}",
                path.display()
            ));
        }
    }
    assert!(
        stale.is_empty(),
        "golden files differ (if the change is intended, regenerate them with \
         LSMTUNE_BLESS=1 cargo test --release --lib -- export_golden):\n{}",
        stale.join("\n")
    );
}

#[test]
fn export_fixture_covers_what_the_goldens_promise() {
    let plan = fixture_plan();
    let keys: Vec<&str> = plan.changes.iter().map(|c| c.key()).collect();
    for k in [
        "max_background_jobs",
        "enable_pipelined_write",
        "write_buffer_size",
        "compression",
        "table.block_cache_size",
        "table.filter_bits_per_key",
        "table.data_block_index_type",
        "table.block_size_deviation",
    ] {
        assert!(keys.contains(&k), "{k} not among {keys:?}");
    }
    // Gains come from the kept iteration that set each option; none without one.
    let wbs = plan.change("write_buffer_size").unwrap().gain.unwrap();
    assert_eq!(wbs.iteration, 2);
    assert_eq!(
        wbs.describe(),
        "kept at iteration 2: +12.4% [+8.1%, +16.7%]"
    );
    assert!(plan.change("max_background_jobs").unwrap().gain.is_none());
    // An option a target cannot express is listed, in the file and for stderr.
    for format in [Format::Rust, Format::Tikv, Format::Kvrocks] {
        let r = render(format, &plan);
        assert!(
            r.not_expressible
                .contains(&"table.block_size_deviation=5".to_string()),
            "{format:?}: {:?}",
            r.not_expressible
        );
        assert!(
            r.text.contains("table.block_size_deviation=5"),
            "{}",
            r.text
        );
    }
    assert!(render(Format::Cpp, &plan).not_expressible.is_empty());
}

#[test]
fn export_without_a_report_has_no_gain_comments() {
    let dir = fixture_dir().join("run");
    let plan = load(&Inputs {
        tuned: Some(dir.join("OPTIONS-tuned.ini")),
        base: Some(dir.join("OPTIONS-base.ini")),
        run: None,
    })
    .unwrap();
    let text = render(Format::Cpp, &plan).text;
    assert!(!text.contains("kept at iteration"), "{text}");
    assert!(
        text.contains("options.write_buffer_size = 134217728;"),
        "{text}"
    );
}

#[test]
fn export_version_limits_refuse_newer_options() {
    let mut plan = fixture_plan();
    versions::check(&mut plan, "7.8").unwrap();
    assert_eq!(plan.rocksdb_version.as_deref(), Some("7.8"));
    let catalog = crate::options::catalog().unwrap();
    let base = OptionsDoc::parse("[CFOptions \"default\"]\n").unwrap();
    let tuned =
        OptionsDoc::parse("[CFOptions \"default\"]\n blob_file_starting_level=1\n").unwrap();
    let mut p = plan_for(catalog, &tuned, &base);
    let err = versions::check(&mut p, "7.2").unwrap_err().to_string();
    assert!(
        err.contains("blob_file_starting_level=1") && err.contains("7.4") && err.contains("7.2"),
        "{err}"
    );
    versions::check(&mut p, "7.4.1").unwrap();
    assert!(versions::check(&mut p, "5.18").is_err());
    assert!(versions::check(&mut p, "seven").is_err());
    assert_eq!(versions::added_in("table.checksum", "kXXH3"), Some((6, 27)));
    assert_eq!(versions::added_in("table.checksum", "kCRC32c"), None);
}

fn plan_for(catalog: &'static Catalog, tuned: &OptionsDoc, base: &OptionsDoc) -> Plan {
    plan(catalog, tuned, base, &BTreeMap::new(), "test")
}

#[test]
fn export_unknown_format_names_the_known_ones() {
    let err = Format::parse("xml").unwrap_err().to_string();
    assert!(err.contains("`xml`") && err.contains("tikv"), "{err}");
    assert_eq!(Format::parse("C++").unwrap(), Format::Cpp);
}

#[test]
fn export_tikv_output_parses_as_toml() {
    let text = golden(Format::Tikv);
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let cf = &doc["rocksdb"]["defaultcf"];
    assert_eq!(cf["write-buffer-size"].as_str(), Some("128MB"));
    assert_eq!(cf["block-size"].as_str(), Some("16KB"));
    assert_eq!(cf["bloom-filter-bits-per-key"].as_integer(), Some(10));
    assert_eq!(cf["max-write-buffer-number"].as_integer(), Some(4));
    assert_eq!(
        cf["compression-per-level"].as_array().unwrap()[0].as_str(),
        Some("zstd")
    );
    assert_eq!(doc["rocksdb"]["max-background-jobs"].as_integer(), Some(4));
    assert_eq!(
        doc["rocksdb"]["enable-pipelined-write"].as_bool(),
        Some(true)
    );
    assert_eq!(
        doc["storage"]["block-cache"]["capacity"].as_str(),
        Some("256MB")
    );
}

/// Non-comment lines of a conf file, split at the first `sep`.
fn conf_lines(text: &str, sep: char) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .map(|l| {
            let (k, v) = l
                .split_once(sep)
                .unwrap_or_else(|| panic!("not `key{sep}value`: {l}"));
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn export_kvrocks_and_myrocks_outputs_parse() {
    let kv: BTreeMap<_, _> = conf_lines(&golden(Format::Kvrocks), ' ')
        .into_iter()
        .collect();
    assert_eq!(kv["rocksdb.write_buffer_size"], "128");
    assert_eq!(kv["rocksdb.block_cache_size"], "256");
    assert_eq!(kv["rocksdb.compression"], "zstd");
    assert_eq!(kv["rocksdb.enable_pipelined_write"], "yes");
    assert!(kv.keys().all(|k| k.starts_with("rocksdb.")), "{kv:?}");

    let text = golden(Format::Myrocks);
    assert!(text.contains("\n[mysqld]\n"), "{text}");
    let my: BTreeMap<_, _> = conf_lines(&text, '=').into_iter().collect();
    assert_eq!(my["rocksdb_max_background_jobs"], "4");
    assert_eq!(my["rocksdb_block_cache_size"], "268435456");
    // The column family string parses as RocksDB's option string: key=value;... with the table
    // options in braces.
    let cf = &my["rocksdb_default_cf_options"];
    let fields = crate::options::access::parse_struct(&format!("{{{cf}}}")).unwrap();
    let get = |k: &str| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    assert_eq!(get("write_buffer_size").as_deref(), Some("134217728"));
    assert_eq!(get("compression").as_deref(), Some("kZSTD"));
    let table =
        crate::options::access::parse_struct(&get("block_based_table_factory").unwrap()).unwrap();
    assert!(
        table.contains(&("block_size".into(), "16384".into())),
        "{table:?}"
    );
    assert!(
        table.contains(&("filter_policy".into(), "bloomfilter:10:false".into())),
        "{table:?}"
    );
}

#[test]
fn export_ini_fragment_parses_and_carries_the_changes() {
    let doc = OptionsDoc::parse(&golden(Format::Ini)).unwrap();
    let catalog = crate::options::catalog().unwrap();
    let base = crate::options::rocks::linked_defaults().unwrap();
    let mut merged = base.clone();
    for s in &doc.sections {
        for (k, v) in &s.entries {
            merged.set(&s.kind, k, v);
        }
    }
    let plan = fixture_plan();
    let cfg = Config::new(merged);
    for c in &plan.changes {
        let entry = catalog.get(c.key()).unwrap();
        assert!(
            crate::options::access::same_value(&cfg.get(entry), &c.tuned),
            "{}",
            c.key()
        );
    }
}

/// The golden Rust file, compiled against the rust-rocksdb this crate links.
mod compiled_rust {
    include!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/export/golden/tuned.rs"
    ));
}

#[test]
fn export_rust_output_compiles_and_opens_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    compiled_rust::apply_tuned_options(&mut opts);
    {
        let db = rocksdb::DB::open(&opts, dir.path()).unwrap();
        db.put(b"k", b"v").unwrap();
        assert_eq!(db.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
    }
    // RocksDB's own OPTIONS file shows the exported values.
    let path = crate::options::ini::latest_options(dir.path()).unwrap();
    let written = OptionsDoc::read(&path).unwrap();
    let cfg = Config::new(written);
    let catalog = crate::options::catalog().unwrap();
    let plan = fixture_plan();
    let rust = render(Format::Rust, &plan);
    for c in &plan.changes {
        // RocksDB never writes the block cache's capacity into its OPTIONS file.
        if rust.not_expressible.contains(&c.setting()) || c.key() == "table.block_cache_size" {
            continue;
        }
        if c.key() == "table.filter_bits_per_key" {
            // RocksDB writes the policy's id (`bloomfilter`), not its bits.
            let raw = cfg
                .doc
                .get(&Scope::Table.section(), "filter_policy")
                .unwrap_or_default();
            assert!(raw.contains("bloomfilter"), "{raw}");
            continue;
        }
        let got = cfg.get(catalog.get(c.key()).unwrap());
        assert!(
            crate::options::access::same_value(&got, &c.tuned),
            "{}: RocksDB has {got}, exported {}",
            c.key(),
            c.tuned
        );
    }
}

const CPP_MAIN: &str = r#"
#include <cstdio>
#include <string>
#include <rocksdb/db.h>
#include "tuned.cc"

int main(int argc, char** argv) {
  rocksdb::Options options;
  options.create_if_missing = true;
  ApplyTunedOptions(options);
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, argv[1], &db);
  if (!s.ok()) { std::fprintf(stderr, "%s\n", s.ToString().c_str()); return 1; }
  rocksdb::Options o = db->GetOptions();
  std::printf("max_background_jobs=%d\n", o.max_background_jobs);
  std::printf("enable_pipelined_write=%d\n", (int)o.enable_pipelined_write);
  std::printf("bytes_per_sync=%llu\n", (unsigned long long)o.bytes_per_sync);
  std::printf("write_buffer_size=%zu\n", o.write_buffer_size);
  std::printf("max_write_buffer_number=%d\n", o.max_write_buffer_number);
  std::printf("compression=%d\n", (int)o.compression);
  std::printf("level0_file_num_compaction_trigger=%d\n", o.level0_file_num_compaction_trigger);
  auto* t = o.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  std::printf("block_size=%zu\n", t->block_size);
  std::printf("block_cache=%zu\n", t->block_cache->GetCapacity());
  std::printf("filter=%s\n", t->filter_policy ? t->filter_policy->Name() : "none");
  std::printf("cache_index_and_filter_blocks=%d\n", (int)t->cache_index_and_filter_blocks);
  std::printf("data_block_index_type=%d\n", (int)t->data_block_index_type);
  std::printf("block_size_deviation=%d\n", t->block_size_deviation);
  delete db;
  return 0;
}
"#;

#[test]
fn export_cpp_output_compiles_and_runs_against_librocksdb() {
    let required = std::env::var("LSMTUNE_REQUIRE_LIBROCKSDB").is_ok_and(|v| v == "1");
    let have = Path::new("/usr/include/rocksdb/options.h").exists()
        && std::process::Command::new("g++")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            !required,
            "LSMTUNE_REQUIRE_LIBROCKSDB=1 but g++ or /usr/include/rocksdb/options.h is missing \
             (apt-get install g++ librocksdb-dev)"
        );
        eprintln!(
            "skipped: the C++ export compile test needs g++ and librocksdb-dev \
             (apt-get install g++ librocksdb-dev; LSMTUNE_REQUIRE_LIBROCKSDB=1 makes this a failure)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tuned.cc"), golden(Format::Cpp)).unwrap();
    std::fs::write(dir.path().join("main.cc"), CPP_MAIN).unwrap();
    let bin = dir.path().join("main");
    let out = std::process::Command::new("g++")
        .args(["-std=c++17", "-O0", "-o"])
        .arg(&bin)
        .arg(dir.path().join("main.cc"))
        .args(["-lrocksdb", "-lpthread"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "g++ failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::process::Command::new(&bin)
        .arg(dir.path().join("db"))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "the program failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let got: BTreeMap<String, String> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let want = [
        ("max_background_jobs", "4"),
        ("enable_pipelined_write", "1"),
        ("bytes_per_sync", "1048576"),
        ("write_buffer_size", "134217728"),
        ("max_write_buffer_number", "4"),
        ("compression", "7"), // kZSTD
        ("level0_file_num_compaction_trigger", "8"),
        ("block_size", "16384"),
        ("block_cache", "268435456"),
        ("filter", "bloomfilter"), // 7.x's name of the built-in Bloom filter
        ("cache_index_and_filter_blocks", "1"),
        ("data_block_index_type", "1"), // kDataBlockBinaryAndHash
        ("block_size_deviation", "5"),
    ];
    for (k, v) in want {
        assert_eq!(got.get(k).map(String::as_str), Some(v), "{k}: {got:?}");
    }
}

/// What the products would refuse to load is listed as not expressible, never written: TiKV's
/// integer multiplier and bits per key, its fixed 7-level compression list, kvrocks' ranges;
/// kvrocks compresses from level 0 as RocksDB's `compression` does.
#[test]
fn export_never_writes_what_the_product_refuses_to_load() {
    let catalog = crate::options::catalog().unwrap();
    let base = OptionsDoc::parse("[DBOptions]\n[CFOptions \"default\"]\n").unwrap();
    let tuned = OptionsDoc::parse(
        "[DBOptions]\n max_background_jobs=40\n[CFOptions \"default\"]\n \
         max_bytes_for_level_multiplier=10.5\n num_levels=4\n compression=kZSTD\n\
         [TableOptions/BlockBasedTable \"default\"]\n \
         filter_policy=bloomfilter:9.5:false\n",
    )
    .unwrap();
    let plan = plan_for(catalog, &tuned, &base);
    let tikv = render(Format::Tikv, &plan);
    let doc: toml::Table = toml::from_str(&tikv.text).unwrap();
    let cf = &doc["rocksdb"]["defaultcf"];
    assert_eq!(cf["compression-per-level"].as_array().unwrap().len(), 7);
    assert!(
        cf.get("max-bytes-for-level-multiplier").is_none(),
        "{}",
        tikv.text
    );
    assert!(
        cf.get("bloom-filter-bits-per-key").is_none(),
        "{}",
        tikv.text
    );
    for key in [
        "max_bytes_for_level_multiplier=10.5",
        "table.filter_bits_per_key",
    ] {
        assert!(
            tikv.not_expressible.iter().any(|n| n.starts_with(key)),
            "{key}: {:?}",
            tikv.not_expressible
        );
    }
    let kv = render(Format::Kvrocks, &plan);
    assert!(
        !kv.text.contains("rocksdb.max_background_jobs 40"),
        "{}",
        kv.text
    );
    assert!(
        kv.not_expressible
            .iter()
            .any(|n| n.starts_with("max_background_jobs")),
        "{:?}",
        kv.not_expressible
    );
    assert!(
        kv.text.contains("rocksdb.compression_start_level 0"),
        "{}",
        kv.text
    );
}
