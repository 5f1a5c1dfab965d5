//! The configuration-file targets: TiKV's TOML (`[rocksdb]`, `[rocksdb.defaultcf]`,
//! `[storage.block-cache]`, sizes as "128MB"), kvrocks.conf `rocksdb.*` lines (some sizes in MB),
//! MyRocks' my.cnf (`rocksdb_*` server variables and one `rocksdb_default_cf_options` string),
//! and an OPTIONS-file fragment. The products' key names are listed here option by option; an
//! option without a known key is not expressible rather than given an invented name.

use std::fmt::Write as _;

use super::code::compression_short;
use super::{Change, Format, Group, Placed, Plan, Statement, Target, filter_policy, lines};
use crate::options::access::storage_key;
use crate::options::spec::{Scope, Storage};
use crate::options::value::{OptionType, Value};

pub struct Tikv;
pub struct Kvrocks;
pub struct Myrocks;
pub struct Ini;

/// TiKV keys: catalog key → key in `[rocksdb]` (DB options) or `[rocksdb.defaultcf]`.
const TIKV: &[(&str, &str)] = &[
    ("max_background_jobs", "max-background-jobs"),
    ("max_background_flushes", "max-background-flushes"),
    ("max_subcompactions", "max-sub-compactions"),
    ("max_open_files", "max-open-files"),
    ("max_total_wal_size", "max-total-wal-size"),
    ("bytes_per_sync", "bytes-per-sync"),
    ("wal_bytes_per_sync", "wal-bytes-per-sync"),
    ("compaction_readahead_size", "compaction-readahead-size"),
    (
        "writable_file_max_buffer_size",
        "writable-file-max-buffer-size",
    ),
    (
        "use_direct_io_for_flush_and_compaction",
        "use-direct-io-for-flush-and-compaction",
    ),
    ("enable_pipelined_write", "enable-pipelined-write"),
    ("unordered_write", "enable-unordered-write"),
    ("write_buffer_size", "write-buffer-size"),
    ("max_write_buffer_number", "max-write-buffer-number"),
    (
        "min_write_buffer_number_to_merge",
        "min-write-buffer-number-to-merge",
    ),
    ("max_bytes_for_level_base", "max-bytes-for-level-base"),
    (
        "max_bytes_for_level_multiplier",
        "max-bytes-for-level-multiplier",
    ),
    ("target_file_size_base", "target-file-size-base"),
    (
        "level0_file_num_compaction_trigger",
        "level0-file-num-compaction-trigger",
    ),
    (
        "level0_slowdown_writes_trigger",
        "level0-slowdown-writes-trigger",
    ),
    ("level0_stop_writes_trigger", "level0-stop-writes-trigger"),
    ("max_compaction_bytes", "max-compaction-bytes"),
    (
        "level_compaction_dynamic_level_bytes",
        "dynamic-level-bytes",
    ),
    ("num_levels", "num-levels"),
    ("disable_auto_compactions", "disable-auto-compactions"),
    (
        "soft_pending_compaction_bytes_limit",
        "soft-pending-compaction-bytes-limit",
    ),
    (
        "hard_pending_compaction_bytes_limit",
        "hard-pending-compaction-bytes-limit",
    ),
    ("optimize_filters_for_hits", "optimize-filters-for-hits"),
    ("table.block_size", "block-size"),
    (
        "table.cache_index_and_filter_blocks",
        "cache-index-and-filter-blocks",
    ),
    (
        "table.pin_l0_filter_and_index_blocks_in_cache",
        "pin-l0-filter-and-index-blocks",
    ),
    ("table.whole_key_filtering", "whole-key-filtering"),
    ("table.format_version", "format-version"),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, m)| *m)
}

/// A size as TiKV writes it: `"128MB"` (binary units), `"1000B"` when no unit divides it.
pub(crate) fn tikv_size(bytes: i64) -> String {
    for (unit, size) in [
        ("TB", 1i64 << 40),
        ("GB", 1 << 30),
        ("MB", 1 << 20),
        ("KB", 1 << 10),
    ] {
        if bytes >= size && bytes % size == 0 {
            return format!("\"{}{unit}\"", bytes / size);
        }
    }
    format!("\"{bytes}B\"")
}

impl Target for Tikv {
    fn format(&self) -> Format {
        Format::Tikv
    }

    fn comment_marker(&self) -> &'static str {
        "#"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if let Some(policy) = filter_policy(c, plan) {
            return match policy {
                None => Some(vec![]),
                Some((_, bits)) if bits <= 0.0 => {
                    Some(vec![Statement::new(Group::Cf, "use-bloom-filter = false")])
                }
                Some((kind, _)) if kind == "ribbon" => None,
                // TiKV reads bits per key as an integer: 9.5 is not expressible, not rounded.
                Some((_, bits)) if bits.fract() != 0.0 => None,
                Some((_, bits)) => Some(vec![
                    Statement::new(Group::Cf, "use-bloom-filter = true"),
                    Statement::new(Group::Cf, "block-based-bloom-filter = false"),
                    Statement::new(
                        Group::Cf,
                        format!("bloom-filter-bits-per-key = {}", bits.round() as i64),
                    ),
                ]),
            };
        }
        match c.key() {
            "table.block_cache_size" => {
                return Some(vec![Statement::new(
                    Group::Cache,
                    format!("capacity = {}", tikv_size(c.int())),
                )]);
            }
            "compression" | "bottommost_compression" => {
                let name = compression_short(&c.text())?;
                let code = if c.key() == "compression" {
                    // RocksDB's `compression` applies to every level: TiKV lists exactly 7
                    // (a fixed array; fewer leaves the rest uncompressed, more is an error).
                    let list = vec![format!("\"{name}\""); 7].join(", ");
                    format!("compression-per-level = [{list}]")
                } else {
                    format!("bottommost-level-compression = \"{name}\"")
                };
                return Some(vec![Statement::new(Group::Cf, code)]);
            }
            _ => {}
        }
        let key = lookup(TIKV, c.key())?;
        let value = match (c.ty(), &c.tuned) {
            (OptionType::Bool, _) => c.flag().to_string(),
            // TiKV's multiplier is an integer field: a float there fails to load.
            (OptionType::Double { .. }, _) if c.key() == "max_bytes_for_level_multiplier" => {
                if c.float().fract() != 0.0 {
                    return None;
                }
                (c.float() as i64).to_string()
            }
            (OptionType::Double { .. }, _) => super::float_literal(c.float()),
            (OptionType::Size { .. }, _) => tikv_size(c.int()),
            (OptionType::Int { .. }, _) => c.int().to_string(),
            _ => return None,
        };
        let group = if c.scope() == Scope::Db {
            Group::Db
        } else {
            Group::Cf
        };
        Some(vec![Statement::new(group, format!("{key} = {value}"))])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("# Merge into tikv.toml (TiKV's names and size strings).\n");
        out.push_str(missing);
        for (group, section) in [
            (Group::Db, "[rocksdb]"),
            (Group::Cf, "[rocksdb.defaultcf]"),
            (Group::Cache, "[storage.block-cache]"),
        ] {
            if super::has(placed, group) {
                let _ = writeln!(out, "\n{section}");
                out.push_str(&lines(placed, group, "", "#", true));
            }
        }
        out
    }
}

/// kvrocks.conf keys: catalog key → (key, unit: 1 for plain values, 1 MiB where kvrocks reads
/// megabytes).
const KVROCKS: &[(&str, &str, i64)] = &[
    ("max_open_files", "rocksdb.max_open_files", 1),
    ("max_background_jobs", "rocksdb.max_background_jobs", 1),
    ("max_subcompactions", "rocksdb.max_subcompactions", 1),
    ("max_total_wal_size", "rocksdb.max_total_wal_size", 1 << 20),
    (
        "enable_pipelined_write",
        "rocksdb.enable_pipelined_write",
        1,
    ),
    ("write_buffer_size", "rocksdb.write_buffer_size", 1 << 20),
    (
        "max_write_buffer_number",
        "rocksdb.max_write_buffer_number",
        1,
    ),
    (
        "target_file_size_base",
        "rocksdb.target_file_size_base",
        1 << 20,
    ),
    (
        "level0_file_num_compaction_trigger",
        "rocksdb.level0_file_num_compaction_trigger",
        1,
    ),
    (
        "level0_slowdown_writes_trigger",
        "rocksdb.level0_slowdown_writes_trigger",
        1,
    ),
    (
        "level0_stop_writes_trigger",
        "rocksdb.level0_stop_writes_trigger",
        1,
    ),
    (
        "level_compaction_dynamic_level_bytes",
        "rocksdb.level_compaction_dynamic_level_bytes",
        1,
    ),
    (
        "max_bytes_for_level_base",
        "rocksdb.max_bytes_for_level_base",
        1,
    ),
    (
        "max_bytes_for_level_multiplier",
        "rocksdb.max_bytes_for_level_multiplier",
        1,
    ),
    ("compression", "rocksdb.compression", 1),
    ("table.block_size", "rocksdb.block_size", 1),
    (
        "table.cache_index_and_filter_blocks",
        "rocksdb.cache_index_and_filter_blocks",
        1,
    ),
    (
        "table.block_cache_size",
        "rocksdb.block_cache_size",
        1 << 20,
    ),
];

impl Target for Kvrocks {
    fn format(&self) -> Format {
        Format::Kvrocks
    }

    fn comment_marker(&self) -> &'static str {
        "#"
    }

    fn express(&self, c: &Change, _plan: &Plan) -> Option<Vec<Statement>> {
        let (_, key, unit) = KVROCKS.iter().find(|(k, _, _)| *k == c.key())?;
        // kvrocks refuses to start on a value outside its own range (config.cc's IntField
        // bounds): such a value is not expressible there.
        let within = |lo: i64, hi: i64| (lo..=hi).contains(&(c.int() / unit));
        let fits = match c.key() {
            "max_background_jobs" => within(0, 32),
            "max_subcompactions" => within(0, 16),
            "target_file_size_base" => within(1, 1024),
            "max_bytes_for_level_base" => within(1, i32::MAX as i64),
            _ => true,
        };
        if !fits {
            return None;
        }
        let value = match (c.ty(), &c.tuned) {
            (OptionType::Bool, _) => if c.flag() { "yes" } else { "no" }.to_string(),
            (OptionType::Enum { .. }, Value::Str(s)) if c.key() == "compression" => {
                match compression_short(s)? {
                    "bzip2" | "lz4hc" => return None,
                    name => name.to_string(),
                }
            }
            // kvrocks reads the multiplier as an integer.
            (OptionType::Double { .. }, _) if c.float().fract() == 0.0 => {
                (c.float() as i64).to_string()
            }
            (OptionType::Int { .. } | OptionType::Size { .. }, _) if c.int() % unit == 0 => {
                (c.int() / unit).to_string()
            }
            _ => return None,
        };
        let mut statements = vec![Statement::new(Group::Db, format!("{key} {value}"))];
        if c.key() == "compression" {
            // kvrocks compresses from rocksdb.compression_start_level (2 by default); RocksDB's
            // `compression` covers every level, so start at 0.
            statements.push(Statement::new(
                Group::Db,
                "rocksdb.compression_start_level 0",
            ));
        }
        Some(statements)
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str(
            "# Merge into kvrocks.conf (write_buffer_size, target_file_size_base, max_total_wal_size\n\
             # and block_cache_size are in MB there).\n",
        );
        out.push_str(missing);
        out.push('\n');
        out.push_str(&lines(placed, Group::Db, "", "#", false));
        out
    }
}

/// MyRocks server variables for DB options: catalog key → variable.
const MYROCKS_DB: &[(&str, &str)] = &[
    ("max_background_jobs", "rocksdb_max_background_jobs"),
    ("max_subcompactions", "rocksdb_max_subcompactions"),
    ("max_open_files", "rocksdb_max_open_files"),
    ("max_total_wal_size", "rocksdb_max_total_wal_size"),
    ("bytes_per_sync", "rocksdb_bytes_per_sync"),
    ("wal_bytes_per_sync", "rocksdb_wal_bytes_per_sync"),
    ("use_direct_reads", "rocksdb_use_direct_reads"),
    (
        "use_direct_io_for_flush_and_compaction",
        "rocksdb_use_direct_io_for_flush_and_compaction",
    ),
    (
        "allow_concurrent_memtable_write",
        "rocksdb_allow_concurrent_memtable_write",
    ),
    (
        "enable_write_thread_adaptive_yield",
        "rocksdb_enable_write_thread_adaptive_yield",
    ),
    ("db_write_buffer_size", "rocksdb_db_write_buffer_size"),
    (
        "compaction_readahead_size",
        "rocksdb_compaction_readahead_size",
    ),
    (
        "table_cache_numshardbits",
        "rocksdb_table_cache_numshardbits",
    ),
    ("allow_mmap_reads", "rocksdb_allow_mmap_reads"),
    ("allow_mmap_writes", "rocksdb_allow_mmap_writes"),
    ("advise_random_on_open", "rocksdb_advise_random_on_open"),
    ("use_fsync", "rocksdb_use_fsync"),
    ("paranoid_checks", "rocksdb_paranoid_checks"),
    ("stats_dump_period_sec", "rocksdb_stats_dump_period_sec"),
    ("delayed_write_rate", "rocksdb_delayed_write_rate"),
    ("manual_wal_flush", "rocksdb_manual_wal_flush"),
    ("wal_recovery_mode", "rocksdb_wal_recovery_mode"),
    ("table.block_cache_size", "rocksdb_block_cache_size"),
];

/// Whether `c` is the first change stored in its nested struct (`parent={...}`): the struct is
/// written once, whole, from the tuned file.
fn first_of_parent(c: &Change, plan: &Plan) -> bool {
    let Storage::Field { parent, .. } = c.entry.spec.storage else {
        return true;
    };
    plan.changes
        .iter()
        .find(|o| matches!(o.entry.spec.storage, Storage::Field { parent: p, .. } if p == parent))
        .is_none_or(|o| o.key() == c.key())
}

/// The raw `key=value` an OPTIONS file stores for a change, from the tuned file: virtual
/// options as their storage (`block_cache`, `filter_policy`), fields as their whole struct.
/// `None` for a change another one already writes.
fn raw_setting(c: &Change, plan: &Plan) -> Option<(&'static str, String)> {
    if let Some(None) = filter_policy(c, plan) {
        return None;
    }
    if !first_of_parent(c, plan) {
        return None;
    }
    let key = storage_key(&c.entry.spec);
    let value = plan
        .tuned
        .doc
        .get(&c.scope().section(), key)
        .map(str::to_string)
        .unwrap_or_else(|| c.text());
    Some((key, value))
}

impl Target for Myrocks {
    fn format(&self) -> Format {
        Format::Myrocks
    }

    fn comment_marker(&self) -> &'static str {
        "#"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if c.scope() == Scope::Db || c.key() == "table.block_cache_size" {
            let var = MYROCKS_DB.iter().find(|(k, _)| *k == c.key())?.1;
            let value = match (c.ty(), &c.tuned) {
                (OptionType::Bool, _) => if c.flag() { "ON" } else { "OFF" }.to_string(),
                (OptionType::Enum { values }, Value::Str(s)) if c.key() == "wal_recovery_mode" => {
                    // The variable takes RocksDB's numeric value (the catalog lists them in
                    // order).
                    values.iter().position(|v| v == s)?.to_string()
                }
                (OptionType::Int { .. } | OptionType::Size { .. }, _) => c.int().to_string(),
                _ => return None,
            };
            return Some(vec![Statement::new(Group::Db, format!("{var}={value}"))]);
        }
        let Some((key, value)) = raw_setting(c, plan) else {
            return Some(vec![]);
        };
        Some(vec![Statement::new(
            super::group_of(c.scope()),
            format!("{key}={value}"),
        )])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("# Merge into my.cnf.\n");
        out.push_str(missing);
        out.push_str("\n[mysqld]\n");
        out.push_str(&lines(placed, Group::Db, "", "#", false));
        let cf: Vec<&Placed> = placed
            .iter()
            .filter(|p| matches!(p.statement.group, Group::Cf | Group::Table))
            .collect();
        if !cf.is_empty() {
            out.push_str(
                "# Options of the default column family, in RocksDB's option-string form:\n",
            );
            for p in &cf {
                if let Some(c) = &p.comment {
                    let _ = writeln!(out, "#   {c}");
                }
            }
            let mut parts: Vec<String> = cf
                .iter()
                .filter(|p| p.statement.group == Group::Cf)
                .map(|p| p.statement.code.clone())
                .collect();
            let table: Vec<String> = cf
                .iter()
                .filter(|p| p.statement.group == Group::Table)
                .map(|p| p.statement.code.clone())
                .collect();
            if !table.is_empty() {
                parts.push(format!("block_based_table_factory={{{}}}", table.join(";")));
            }
            let _ = writeln!(out, "rocksdb_default_cf_options={}", parts.join(";"));
        }
        out
    }
}

impl Target for Ini {
    fn format(&self) -> Format {
        Format::Ini
    }

    fn comment_marker(&self) -> &'static str {
        "#"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        let Some((key, value)) = raw_setting(c, plan) else {
            return Some(vec![]);
        };
        Some(vec![Statement::new(
            super::group_of(c.scope()),
            format!("{key}={value}"),
        )])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("# A fragment of an OPTIONS file: merge these keys into their sections.\n");
        out.push_str(missing);
        for group in [Group::Db, Group::Cf, Group::Table] {
            if super::has(placed, group) {
                let scope = match group {
                    Group::Db => Scope::Db,
                    Group::Cf => Scope::Cf,
                    _ => Scope::Table,
                };
                let _ = writeln!(out, "\n[{}]", scope.section().header());
                out.push_str(&lines(placed, group, "  ", "#", false));
            }
        }
        out
    }
}
