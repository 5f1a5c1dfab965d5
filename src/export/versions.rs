//! `--rocksdb-version`: which exported options an older RocksDB knows. The table below says in
//! which release each catalog option (or value) appeared, from RocksDB's HISTORY.md; options
//! not listed are older than 6.0, the oldest version lsmtune answers for. The check runs
//! [`crate::options::compat::downgrade`] (the loop `options downgrade` runs against a real
//! db_bench) with the table standing in for the older library, and an option it would drop is
//! an error naming the option, the release that added it and the version asked for: an export
//! for that version must not pretend the tune holds without it.

use anyhow::{Result, bail};

use super::Plan;
use crate::options::OptionsDoc;
use crate::options::access::{read_typed, same_value, write_typed};
use crate::options::spec::Storage;

/// The oldest version the table answers for.
pub const OLDEST: (u32, u32) = (6, 0);

/// (catalog key, a value when only that value is newer, the release that added it).
const ADDED: &[(&str, Option<&str>, (u32, u32))] = &[
    ("avoid_unnecessary_blocking_io", None, (6, 1)),
    ("strict_bytes_per_sync", None, (6, 2)),
    ("unordered_write", None, (6, 3)),
    ("max_write_batch_group_size_bytes", None, (6, 5)),
    ("max_write_buffer_size_to_maintain", None, (6, 5)),
    ("skip_checking_sst_file_sizes_on_db_open", None, (6, 8)),
    ("table.optimize_filters_for_memory", None, (6, 12)),
    ("enable_blob_files", None, (6, 18)),
    ("min_blob_size", None, (6, 18)),
    ("blob_file_size", None, (6, 18)),
    ("blob_compression_type", None, (6, 18)),
    ("enable_blob_garbage_collection", None, (6, 18)),
    ("blob_garbage_collection_age_cutoff", None, (6, 18)),
    ("table.max_auto_readahead_size", None, (6, 19)),
    ("table.prepopulate_block_cache", None, (6, 22)),
    ("table.filter_type", Some("ribbon"), (6, 22)),
    ("table.checksum", Some("kXXH3"), (6, 27)),
    // Streaming WAL compression: in 7.0 (work in progress there; production-ready from 9.0).
    ("wal_compression", None, (7, 0)),
    ("table.initial_auto_readahead_size", None, (7, 2)),
    ("blob_file_starting_level", None, (7, 4)),
    ("compaction_pri", Some("kRoundRobin"), (7, 5)),
    ("table.num_file_reads_for_auto_readahead", None, (7, 7)),
    ("level_compaction_dynamic_file_size", None, (7, 8)),
    ("table.format_version", Some("5"), (6, 6)),
    ("table.format_version", Some("6"), (8, 6)),
    ("table.format_version", Some("7"), (10, 4)),
];

/// `7.8`, `7.8.3` or `v7.8` → (7, 8).
pub fn parse_version(s: &str) -> Result<(u32, u32)> {
    let t = s.trim().trim_start_matches(['v', 'V']);
    let mut parts = t.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().map_or(Some(0), |p| p.parse::<u32>().ok());
    let rest_ok = parts.all(|p| p.parse::<u32>().is_ok());
    match (major, minor, rest_ok) {
        (Some(a), Some(b), true) => Ok((a, b)),
        _ => bail!(
            "--rocksdb-version `{}` is not a RocksDB version (write it like 7.8 or 8.11.4)",
            crate::input::clip_to(s, 40)
        ),
    }
}

/// The release that added `key` set to `value`, when the table knows it is 6.0 or newer.
pub fn added_in(key: &str, value: &str) -> Option<(u32, u32)> {
    ADDED
        .iter()
        .filter(|(k, v, _)| *k == key && v.is_none_or(|v| v == value))
        .map(|(_, _, ver)| *ver)
        .max()
}

/// Refuse options RocksDB `version` does not know; on success the plan remembers the version.
pub fn check(plan: &mut Plan, version: &str) -> Result<()> {
    let asked = parse_version(version)?;
    if asked < OLDEST {
        bail!(
            "--rocksdb-version {version}: lsmtune knows when options appeared from RocksDB {}.{} on; \
             export for {}.{} or newer",
            OLDEST.0,
            OLDEST.1,
            OLDEST.0,
            OLDEST.1
        );
    }
    // The changes as a document, offered to a stand-in for the older RocksDB that refuses the
    // first setting it does not know, as a real one would.
    let mut doc = OptionsDoc::default();
    for c in &plan.changes {
        write_typed(&mut doc, &c.entry.spec, &c.tuned);
    }
    let too_new = |d: &OptionsDoc| -> std::result::Result<(), String> {
        for c in &plan.changes {
            let Some(added) = added_in(c.key(), &c.text()) else {
                continue;
            };
            let present = read_typed(d, &c.entry.spec).is_some_and(|v| same_value(&v, &c.tuned));
            if added > asked && present {
                let name = match c.entry.spec.storage {
                    Storage::Field { parent, field } => format!("{parent}.{field}"),
                    _ => crate::options::access::storage_key(&c.entry.spec).to_string(),
                };
                return Err(format!("Invalid argument: Could not find option: {name}"));
            }
        }
        Ok(())
    };
    let result = crate::options::compat::downgrade(&doc, too_new, plan.changes.len() + 1)?;
    if !result.dropped.is_empty() {
        let named: Vec<String> = plan
            .changes
            .iter()
            .filter_map(|c| {
                let added = added_in(c.key(), &c.text())?;
                (added > asked)
                    .then(|| format!("{} (RocksDB {}.{} added it)", c.setting(), added.0, added.1))
            })
            .collect();
        bail!(
            "RocksDB {version} does not know {} exported option(s): {}; export for a newer \
             --rocksdb-version, or tune without them",
            named.len(),
            named.join(", ")
        );
    }
    plan.rocksdb_version = Some(version.trim().to_string());
    Ok(())
}
