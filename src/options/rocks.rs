//! The one place that talks to the linked RocksDB about options: its defaults, its verdict on a
//! key or a whole OPTIONS file, and opening a database from an OPTIONS file exactly as a user's
//! program would (`LoadLatestOptions` + `DB::Open` with the column families it lists).
//!
//! Scratch databases live in folders this module creates (under /dev/shm when it is writable,
//! because validation opens many tiny databases and tmpfs makes their fsyncs free) and removes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use rocksdb::{Cache, DB, Env, Options};

use super::config::Config;
use super::ini::{OptionsDoc, SectionKind, unescape};
use super::spec::Scope;
use super::value::parse_number;

/// Block cache capacity RocksDB uses when nothing else is said (read from the linked library at
/// start-up; this is only the fallback if that read fails).
const FALLBACK_BLOCK_CACHE: usize = 32 << 20;

/// A folder for short-lived scratch databases, removed when dropped.
pub fn scratch_dir(purpose: &str) -> Result<tempfile::TempDir> {
    scratch_dir_in(purpose, memory_base())
}

/// A scratch folder on the ordinary temporary file system (for checks that depend on the file
/// system, such as O_DIRECT, which older kernels' tmpfs refuses).
pub fn scratch_dir_on_disk(purpose: &str) -> Result<tempfile::TempDir> {
    scratch_dir_in(purpose, &std::env::temp_dir())
}

fn scratch_dir_in(purpose: &str, base: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(&format!("lsmtune-{purpose}-"))
        .tempdir_in(base)
        .with_context(|| format!("cannot create a scratch folder in {}", base.display()))
}

fn memory_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let usable = shm.is_dir()
            && tempfile::Builder::new()
                .prefix("lsmtune-probe-")
                .tempdir_in(shm)
                .is_ok();
        if usable {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// The newest `OPTIONS-NNNNNN` file in a database folder.
fn latest_options_file(dir: &Path) -> Result<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if let Some(num) = name
            .strip_prefix("OPTIONS-")
            .and_then(|n| n.parse::<u64>().ok())
            && best.as_ref().is_none_or(|(b, _)| num > *b)
        {
            best = Some((num, entry.path()));
        }
    }
    best.map(|(_, p)| p)
        .ok_or_else(|| anyhow!("RocksDB wrote no OPTIONS file in {}", dir.display()))
}

/// The OPTIONS file the linked RocksDB writes for a database opened with default options, with
/// the block cache capacity it actually uses added as `block_cache=<bytes>` (RocksDB parses that
/// key but never writes it). Computed once per process.
pub fn linked_defaults() -> Result<&'static OptionsDoc> {
    static DEFAULTS: OnceLock<std::result::Result<OptionsDoc, String>> = OnceLock::new();
    DEFAULTS
        .get_or_init(|| read_linked_defaults().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow!("cannot read the linked RocksDB's defaults: {e}"))
}

fn read_linked_defaults() -> Result<OptionsDoc> {
    let dir = scratch_dir("defaults")?;
    let capacity = {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let db = DB::open(&opts, dir.path()).map_err(|e| anyhow!("{e}"))?;
        db.property_int_value(rocksdb::properties::BLOCK_CACHE_CAPACITY)
            .ok()
            .flatten()
            .unwrap_or(FALLBACK_BLOCK_CACHE as u64)
    };
    let text = std::fs::read_to_string(latest_options_file(dir.path())?)?;
    let mut doc = OptionsDoc::parse(&text).map_err(|e| anyhow!("{e}"))?;
    doc.set(
        &Scope::Table.section(),
        "block_cache",
        &capacity.to_string(),
    );
    Ok(doc)
}

/// Does the linked RocksDB accept `key=value` in this section? Checks one option in isolation
/// through RocksDB's own string parser. `Err` carries RocksDB's message.
pub fn check_key(scope: Scope, key: &str, value: &str) -> std::result::Result<(), String> {
    let value = unescape(value);
    let value = if value.contains([';', '{', '}', '=']) && !value.starts_with('{') {
        format!("{{{value}}}")
    } else {
        value
    };
    let text = match scope {
        Scope::Db | Scope::Cf => format!("{key}={value}"),
        Scope::Table => format!("block_based_table_factory={{{key}={value}}}"),
    };
    let mut base = Options::default();
    base.get_options_from_string(&text)
        .map(|_| ())
        .map_err(|e| e.into_string())
}

/// The block cache capacity a document asks for (default CF), or RocksDB's default.
pub fn block_cache_capacity(doc: &OptionsDoc) -> usize {
    doc.get(&Scope::Table.section(), "block_cache")
        .and_then(|v| {
            let v = unescape(v);
            let text = match super::access::parse_struct(&v) {
                Some(fields) => fields.into_iter().find(|(k, _)| k == "capacity")?.1,
                None => v,
            };
            parse_number(&text).map(|(n, _)| n as usize)
        })
        .unwrap_or_else(|| {
            linked_defaults()
                .ok()
                .and_then(|d| d.get(&Scope::Table.section(), "block_cache"))
                .and_then(|v| v.parse().ok())
                .unwrap_or(FALLBACK_BLOCK_CACHE)
        })
}

/// Options loaded from an OPTIONS document by RocksDB's own loader.
pub struct LoadedOptions {
    pub db: Options,
    pub cfs: Vec<rocksdb::ColumnFamilyDescriptor>,
    /// Kept alive as long as the options that point at it.
    pub cache: Cache,
}

/// Load a document through `LoadLatestOptions`, strictly (unknown keys are errors), with a block
/// cache of the capacity the document asks for, as a user's program passes its own cache.
pub fn load(doc: &OptionsDoc) -> std::result::Result<LoadedOptions, String> {
    let dir = scratch_dir("load").map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("OPTIONS-000001"),
        doc.render("validation copy written by lsmtune"),
    )
    .map_err(|e| e.to_string())?;
    load_file_dir(dir.path(), block_cache_capacity(doc))
}

fn load_file_dir(dir: &Path, cache_bytes: usize) -> std::result::Result<LoadedOptions, String> {
    let cache = Cache::new_lru_cache(cache_bytes);
    let env = Env::new().map_err(|e| e.into_string())?;
    let (db, cfs) =
        Options::load_latest(dir, env, false, cache.clone()).map_err(|e| e.into_string())?;
    Ok(LoadedOptions { db, cfs, cache })
}

/// Open (creating) a database at `path` from a document, as a user's program would.
pub fn open(doc: &OptionsDoc, path: &Path) -> std::result::Result<(DB, LoadedOptions), String> {
    open_with(doc, path, false)
}

/// `open`, optionally with RocksDB statistics collection switched on (for benchmarks).
pub fn open_with(
    doc: &OptionsDoc,
    path: &Path,
    statistics: bool,
) -> std::result::Result<(DB, LoadedOptions), String> {
    let mut loaded = load(doc)?;
    if statistics {
        loaded.db.enable_statistics();
    }
    loaded.db.create_if_missing(true);
    loaded.db.create_missing_column_families(true);
    let cfs = std::mem::take(&mut loaded.cfs);
    let db = DB::open_cf_descriptors(&loaded.db, path, cfs).map_err(|e| e.into_string())?;
    Ok((db, loaded))
}

/// Does the linked RocksDB load this document and open a fresh database from it? This is the
/// last word on validity: it also catches conflicts only `DB::Open` checks.
pub fn check_open(doc: &OptionsDoc) -> std::result::Result<(), String> {
    let direct_io = ["use_direct_reads", "use_direct_io_for_flush_and_compaction"]
        .iter()
        .any(|k| doc.get(&SectionKind::Db, k) == Some("true"));
    let dir = if direct_io {
        scratch_dir_on_disk("open")
    } else {
        scratch_dir("open")
    }
    .map_err(|e| e.to_string())?;
    let (db, _loaded) = open(doc, &dir.path().join("db"))?;
    drop(db);
    Ok(())
}

/// The same as `check_open`, for a configuration.
pub fn validate(config: &Config) -> std::result::Result<(), String> {
    check_open(&config.doc)
}

/// Section names RocksDB's loader understands.
pub fn known_section(kind: &SectionKind) -> bool {
    !matches!(kind, SectionKind::Other(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_come_from_the_linked_library() {
        let d = linked_defaults().unwrap();
        let v = d.rocksdb_version().unwrap();
        assert!(v.starts_with("11."), "linked RocksDB {v}");
        assert!(d.get(&SectionKind::Db, "max_background_jobs").is_some());
        assert!(d.get(&Scope::Table.section(), "block_cache").is_some());
    }

    #[test]
    fn check_key_uses_rocksdbs_parser() {
        assert!(check_key(Scope::Db, "max_background_jobs", "4").is_ok());
        assert!(check_key(Scope::Cf, "write_buffer_size", "67108864").is_ok());
        assert!(check_key(Scope::Table, "block_size", "16384").is_ok());
        assert!(check_key(Scope::Table, "filter_policy", "bloomfilter:10:false").is_ok());
        assert!(check_key(Scope::Table, "block_cache", "1073741824").is_ok());
        assert!(check_key(Scope::Db, "no_such_option", "1").is_err());
        assert!(check_key(Scope::Cf, "compression", "kBrotli").is_err());
        assert!(check_key(Scope::Cf, "write_buffer_size", "lots").is_err());
    }

    #[test]
    fn defaults_load_and_open() {
        let d = linked_defaults().unwrap();
        check_open(d).unwrap();
        let mut bad = d.clone();
        bad.set(&SectionKind::Db, "no_such_option", "1");
        assert!(check_open(&bad).unwrap_err().contains("no_such_option"));
        let mut conflict = d.clone();
        conflict.set(&SectionKind::Db, "allow_mmap_reads", "true");
        conflict.set(&SectionKind::Db, "use_direct_reads", "true");
        assert!(load(&conflict).is_ok(), "the loader alone accepts it");
        assert!(check_open(&conflict).is_err(), "DB::Open refuses it");
    }
}
