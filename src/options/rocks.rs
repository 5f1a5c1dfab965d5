//! The one place that talks to the linked RocksDB about options: its defaults, its verdict on a
//! key or a whole OPTIONS file, and opening a database from an OPTIONS file exactly as a user's
//! program would (`LoadLatestOptions` + `DB::Open` with the column families it lists).
//!
//! Checks open their scratch databases in RocksDB's in-memory Env (on disk only when direct I/O
//! or mmap is asked for); the small files around them live in folders this module creates (under
//! /dev/shm when it is writable) and removes.

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
pub fn scratch_dir(purpose: &str) -> Result<crate::scratch::Dir> {
    scratch_dir_in(purpose, memory_base())
}

/// A scratch folder on the ordinary temporary file system (for checks that depend on the file
/// system, such as O_DIRECT, which older kernels' tmpfs refuses).
pub fn scratch_dir_on_disk(purpose: &str) -> Result<crate::scratch::Dir> {
    scratch_dir_in(purpose, &std::env::temp_dir())
}

/// What lsmtune makes scratch folders for outside a run folder, each named
/// `lsmtune-PURPOSE-...`: the only names [`sweep_scratch`] looks at.
const SCRATCH_PURPOSES: [&str; 6] = [
    "open",
    "load",
    "defaults",
    "probe",
    "db-bench-run",
    "db-bench-probe",
];

fn scratch_dir_in(purpose: &str, base: &Path) -> Result<crate::scratch::Dir> {
    crate::scratch::make(base, &format!("lsmtune-{purpose}-"))
        .with_context(|| format!("cannot create a scratch folder in {}", base.display()))
}

/// Remove the scratch folders of processes killed outright before they could (in /dev/shm and
/// the temp folder; only [`SCRATCH_PURPOSES`]' names, and only folders whose owner is provably
/// dead, see [`crate::scratch::sweep`]). Returns what went.
pub fn sweep_scratch() -> Vec<PathBuf> {
    let tmp = std::env::temp_dir();
    let mut parents = vec![memory_base()];
    if tmp != memory_base() {
        parents.push(&tmp);
    }
    let prefixes = SCRATCH_PURPOSES.map(|p| format!("lsmtune-{p}-"));
    let prefixes: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    parents
        .into_iter()
        .flat_map(|parent| crate::scratch::sweep(parent, &prefixes))
        .collect()
}

fn memory_base() -> &'static Path {
    static BASE: OnceLock<PathBuf> = OnceLock::new();
    BASE.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        let usable = shm.is_dir() && crate::scratch::make(shm, "lsmtune-probe-").is_ok();
        if usable {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    })
}

/// The newest `OPTIONS-NNNNNN` file in a database folder.
fn latest_options_file(dir: &Path) -> Result<PathBuf> {
    super::ini::latest_options(dir)
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

/// Options naming where a deployment keeps files outside the database folder: the WAL and the
/// info log. They stay in the document (the tuned file is the user's), but no database lsmtune
/// opens for a check or a benchmark may use them: a check would create them, or refuse a
/// production WAL folder that holds logs; a benchmark would write into them.
pub const DEPLOYMENT_PATHS: [&str; 2] = ["wal_dir", "db_log_dir"];

/// The document with [`DEPLOYMENT_PATHS`] emptied (RocksDB then keeps the WAL and the LOG in
/// the database folder), as every scratch and benchmark database is opened.
pub fn without_deployment_paths(doc: &OptionsDoc) -> OptionsDoc {
    let mut doc = doc.clone();
    for key in DEPLOYMENT_PATHS {
        if doc
            .get(&SectionKind::Db, key)
            .is_some_and(|v| !v.is_empty())
        {
            doc.set(&SectionKind::Db, key, "");
        }
    }
    doc
}

/// Load a document through `LoadLatestOptions`, strictly (unknown keys are errors), with a block
/// cache of the capacity the document asks for, as a user's program passes its own cache.
/// Deployment paths are emptied ([`without_deployment_paths`]): whatever opens these options
/// keeps every file in its own folder.
pub fn load(doc: &OptionsDoc) -> std::result::Result<LoadedOptions, String> {
    let dir = scratch_dir("load").map_err(|e| e.to_string())?;
    std::fs::write(
        dir.path().join("OPTIONS-000001"),
        without_deployment_paths(doc).render("validation copy written by lsmtune"),
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
    let db = create(&mut loaded, path)?;
    Ok((db, loaded))
}

/// Open (creating) the database at `path` with loaded options and the column families they
/// list, as a user's program would.
fn create(loaded: &mut LoadedOptions, path: &Path) -> std::result::Result<DB, String> {
    loaded.db.create_if_missing(true);
    loaded.db.create_missing_column_families(true);
    let cfs = std::mem::take(&mut loaded.cfs);
    DB::open_cf_descriptors(&loaded.db, path, cfs).map_err(|e| e.into_string())
}

/// Does the linked RocksDB load this document and open a fresh database from it? This is the
/// last word on validity: it also catches conflicts only `DB::Open` checks.
pub fn check_open(doc: &OptionsDoc) -> std::result::Result<(), String> {
    let scratch = open_scratch(doc)?;
    drop(scratch);
    Ok(())
}

/// A fresh database opened from a document for a check, with what it needs kept alive; the
/// database closes (and its folder goes) when this is dropped.
pub struct ScratchDb {
    /// Declared first so it closes before the options, cache and folder it uses (private, so
    /// it cannot be moved out and outlive them).
    db: DB,
    _loaded: LoadedOptions,
    /// Where the data lives: in RocksDB's in-memory Env, or on disk for direct I/O and mmap.
    pub medium: Medium,
    /// The real folder of a database on disk (none for one in memory).
    _dir: Option<crate::scratch::Dir>,
}

impl ScratchDb {
    /// The open database.
    pub fn db(&self) -> &DB {
        &self.db
    }
}

/// Where a scratch database keeps its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// RocksDB's in-memory Env: no file system, so no fsync and no preallocation. On tmpfs a
    /// WAL preallocated to 1.1 x write_buffer_size is real memory zeroed and freed on every
    /// check, which made a check of a large-memtable config cost tens of milliseconds.
    Memory,
    /// The ordinary temporary folder, for configurations that ask for direct I/O or mmap:
    /// whether they work is a property of the file system, so only a real one can answer it.
    Disk,
}

/// Options whose success depends on the file system (O_DIRECT, mmap): with any of them on, a
/// check opens on disk. RocksDB's in-memory Env imitates both (it refuses a database with
/// mmap reads that a real file system opens).
const FILE_SYSTEM_OPTIONS: [&str; 4] = [
    "use_direct_reads",
    "use_direct_io_for_flush_and_compaction",
    "allow_mmap_reads",
    "allow_mmap_writes",
];

/// Open (creating) a database from a document where a check needs it: in memory unless the
/// document asks for direct I/O or mmap. What `DB::Open` checks of the options is the same
/// whatever the Env; what depends on the file system (direct I/O, mmap) opens on disk, and the
/// deployment's own folders are never used ([`without_deployment_paths`]).
pub fn open_scratch(doc: &OptionsDoc) -> std::result::Result<ScratchDb, String> {
    // RocksDB reads "true" and "1" as true.
    let on = |k: &&str| {
        doc.get(&SectionKind::Db, k)
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true") || v.trim() == "1")
    };
    let medium = if FILE_SYSTEM_OPTIONS.iter().any(on) {
        Medium::Disk
    } else {
        Medium::Memory
    };
    let mut loaded = load(doc)?;
    // rust-rocksdb creates the database folder on the real file system before it opens: an
    // in-memory database is opened at a folder that exists already (the memory base; its files
    // are the Env's own), so nothing real is made for it.
    let (dir, path) = match medium {
        Medium::Disk => {
            let dir = scratch_dir_on_disk("open").map_err(|e| e.to_string())?;
            let path = dir.path().join("db");
            (Some(dir), path)
        }
        Medium::Memory => {
            let env = Env::mem_env().map_err(|e| e.into_string())?;
            loaded.db.set_env(&env);
            (None, memory_base().to_path_buf())
        }
    };
    let db = create(&mut loaded, &path)?;
    Ok(ScratchDb {
        db,
        _loaded: loaded,
        medium,
        _dir: dir,
    })
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

    /// A check in RocksDB's in-memory Env must say what a real file system says: on the linked
    /// defaults, every fixture (old versions, other products, a file RocksDB refuses), and
    /// combinations `DB::Open` refuses.
    #[test]
    fn memory_checks_agree_with_a_real_file_system() {
        let defaults = linked_defaults().unwrap().clone();
        let mut docs = vec![("defaults".to_string(), defaults.clone())];
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/options");
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            docs.push((f.display().to_string(), OptionsDoc::read(&f).unwrap()));
        }
        let with = |pairs: &[(SectionKind, &str, &str)]| {
            let mut d = defaults.clone();
            for (kind, k, v) in pairs {
                d.set(kind, k, v);
            }
            d
        };
        let db = SectionKind::Db;
        let table = Scope::Table.section();
        docs.extend([
            (
                "unordered + pipelined writes".to_string(),
                with(&[
                    (db.clone(), "unordered_write", "true"),
                    (db.clone(), "enable_pipelined_write", "true"),
                ]),
            ),
            (
                "block_align with compression".to_string(),
                with(&[(table.clone(), "block_align", "true")]),
            ),
            (
                "mmap reads with direct reads".to_string(),
                with(&[
                    (db.clone(), "allow_mmap_reads", "true"),
                    (db.clone(), "use_direct_reads", "true"),
                ]),
            ),
            (
                "mmap reads".to_string(),
                with(&[(db.clone(), "allow_mmap_reads", "true")]),
            ),
            (
                "large memtables".to_string(),
                with(&[(Scope::Cf.section(), "write_buffer_size", "1073741824")]),
            ),
        ]);
        let (mut opened, mut refused, mut in_memory) = (0, 0, 0);
        for (name, doc) in &docs {
            let checked = open_scratch(doc).map(|s| s.medium);
            let dir = scratch_dir_on_disk("agree").unwrap();
            let on_disk = open(doc, &dir.path().join("db")).map(|(db, _)| drop(db));
            assert_eq!(
                checked.is_ok(),
                on_disk.is_ok(),
                "{name}: check {checked:?}, disk {on_disk:?}"
            );
            match checked {
                Ok(Medium::Memory) => {
                    opened += 1;
                    in_memory += 1;
                }
                Ok(Medium::Disk) => opened += 1,
                Err(_) => refused += 1,
            }
        }
        assert!(
            opened >= 5 && refused >= 3 && in_memory >= 5,
            "{opened} {refused} {in_memory}"
        );
    }

    /// A base from a production database names its WAL and LOG folders: no check and no
    /// benchmark database may create, refuse or write into them, in memory or on disk.
    #[test]
    fn no_database_lsmtune_opens_touches_the_deployment_paths() {
        let outside = tempfile::tempdir().unwrap();
        let wal = outside.path().join("wal");
        std::fs::create_dir(&wal).unwrap();
        std::fs::write(wal.join("000001.log"), b"production WAL").unwrap();
        let log = outside.path().join("missing").join("log");
        let mut doc = linked_defaults().unwrap().clone();
        doc.set(&SectionKind::Db, "wal_dir", &wal.display().to_string());
        doc.set(&SectionKind::Db, "db_log_dir", &log.display().to_string());
        check_open(&doc).unwrap();
        let mut direct = doc.clone();
        direct.set(&SectionKind::Db, "use_direct_reads", "1");
        assert_eq!(open_scratch(&direct).unwrap().medium, Medium::Disk);
        let bench = scratch_dir_on_disk("bench-test").unwrap();
        let (db, _) = open_with(&doc, &bench.path().join("db"), true).unwrap();
        db.put(b"k", b"v").unwrap();
        drop(db);
        let wal_files: Vec<_> = std::fs::read_dir(&wal)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(wal_files, ["000001.log"]);
        assert_eq!(
            std::fs::read(wal.join("000001.log")).unwrap(),
            b"production WAL"
        );
        assert!(!outside.path().join("missing").exists());
        // The document itself keeps them: the tuned file is the user's.
        assert_eq!(
            doc.get(&SectionKind::Db, "wal_dir"),
            Some(wal.display().to_string().as_str())
        );
    }

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
