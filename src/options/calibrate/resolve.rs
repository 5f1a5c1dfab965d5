//! Key resolution: what option of the catalog a proposal's key names. Keys spelled with other
//! case, dashes or a section prefix (`cf_options.`, `table.`...), known aliases (db_bench flag
//! names, common misnamings), real RocksDB options lsmtune does not tune, and unknown keys with
//! the nearest known one as a hint.

use super::correction::Rule;
use crate::options::catalog::{Catalog, CatalogEntry};
use crate::options::rocks;
use crate::options::spec::{Scope, raw_key_of};

/// Explicit aliases: db_bench flag names and common misnamings.
const ALIASES: &[(&str, &str)] = &[
    ("compression_type", "compression"),
    ("bottommost_compression_type", "bottommost_compression"),
    ("cache_size", "table.block_cache_size"),
    ("block_cache", "table.block_cache_size"),
    ("block_cache_capacity", "table.block_cache_size"),
    ("lru_cache_size", "table.block_cache_size"),
    ("bloom_bits", "table.filter_bits_per_key"),
    ("bloom_bits_per_key", "table.filter_bits_per_key"),
    ("bits_per_key", "table.filter_bits_per_key"),
    ("filter_bits", "table.filter_bits_per_key"),
    ("bloom_filter_bits", "table.filter_bits_per_key"),
    ("filter_policy_bits", "table.filter_bits_per_key"),
    ("write_buffer_number", "max_write_buffer_number"),
    ("max_write_buffers", "max_write_buffer_number"),
    ("memtable_size", "write_buffer_size"),
    ("background_jobs", "max_background_jobs"),
    ("subcompactions", "max_subcompactions"),
    ("open_files", "max_open_files"),
    (
        "l0_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "level0_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "l0_file_num_compaction_trigger",
        "level0_file_num_compaction_trigger",
    ),
    (
        "l0_slowdown_writes_trigger",
        "level0_slowdown_writes_trigger",
    ),
    ("l0_stop_writes_trigger", "level0_stop_writes_trigger"),
    ("target_file_size", "target_file_size_base"),
    ("max_bytes_for_level", "max_bytes_for_level_base"),
    ("level_multiplier", "max_bytes_for_level_multiplier"),
    (
        "memtable_bloom_size_ratio",
        "memtable_prefix_bloom_size_ratio",
    ),
    (
        "universal_size_ratio",
        "compaction_options_universal.size_ratio",
    ),
    (
        "universal_min_merge_width",
        "compaction_options_universal.min_merge_width",
    ),
    (
        "universal_max_merge_width",
        "compaction_options_universal.max_merge_width",
    ),
    (
        "universal_max_size_amplification_percent",
        "compaction_options_universal.max_size_amplification_percent",
    ),
    ("compression_level", "compression_opts.level"),
    (
        "compression_max_dict_bytes",
        "compression_opts.max_dict_bytes",
    ),
    ("filter_type", "table.filter_type"),
    ("use_ribbon_filter", "table.filter_type"),
    ("mmap_read", "allow_mmap_reads"),
    ("mmap_write", "allow_mmap_writes"),
];

/// Prefixes that name a section (or nothing) in front of a key.
const PREFIXES: &[(&str, Option<Scope>)] = &[
    ("rocksdb.", None),
    ("options.", None),
    ("dboptions.", Some(Scope::Db)),
    ("db_options.", Some(Scope::Db)),
    ("db.", Some(Scope::Db)),
    ("cfoptions.", Some(Scope::Cf)),
    ("cf_options.", Some(Scope::Cf)),
    ("columnfamilyoptions.", Some(Scope::Cf)),
    ("column_family_options.", Some(Scope::Cf)),
    ("cf.", Some(Scope::Cf)),
    ("default.", Some(Scope::Cf)),
    ("tableoptions/blockbasedtable.", Some(Scope::Table)),
    ("tableoptions.", Some(Scope::Table)),
    ("table_options.", Some(Scope::Table)),
    ("blockbasedtable.", Some(Scope::Table)),
    ("blockbasedtableoptions.", Some(Scope::Table)),
    ("block_based_table_factory.", Some(Scope::Table)),
    ("block_based_table_options.", Some(Scope::Table)),
    ("bbto.", Some(Scope::Table)),
    ("table.", Some(Scope::Table)),
];

/// What a proposal's key names.
pub(super) enum Resolution<'c> {
    Found(&'c CatalogEntry, Option<Rule>),
    NotTunable,
    Unknown(Option<&'static str>),
}

/// Resolve `raw_key` (given in `scope`, when the proposal named a section) against the catalog.
pub(super) fn resolve<'c>(cat: &'c Catalog, raw_key: &str, scope: Option<Scope>) -> Resolution<'c> {
    let trimmed = raw_key
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '`' || c == '*')
        .trim_start_matches('-')
        .trim();
    if let Some(e) = cat.get(trimmed) {
        let renamed = (trimmed != raw_key).then_some(Rule::Key);
        return Resolution::Found(e, renamed);
    }
    let mut k = trimmed.to_ascii_lowercase().replace(['-', ' '], "_");
    let mut scope = scope;
    while let Some((p, s)) = PREFIXES.iter().find(|(p, _)| k.starts_with(p)) {
        k = k[p.len()..].to_string();
        scope = s.or(scope);
    }
    let mut candidates = Vec::new();
    if scope == Some(Scope::Table) {
        candidates.push(format!("table.{k}"));
    }
    candidates.push(k.clone());
    candidates.push(format!("table.{k}"));
    for c in &candidates {
        if let Some(e) = cat.get(c) {
            return Resolution::Found(e, Some(Rule::Key));
        }
    }
    if let Some((_, to)) = ALIASES.iter().find(|(a, _)| *a == k)
        && let Some(e) = cat.get(to)
    {
        return Resolution::Found(e, Some(Rule::Alias));
    }
    // A real option of the linked RocksDB, just not one we tune? (The deployment paths are
    // options RocksDB does not write into an OPTIONS file, so its defaults do not list them.)
    if rocks::DEPLOYMENT_PATHS.contains(&k.as_str()) {
        return Resolution::NotTunable;
    }
    if let Ok(defaults) = rocks::linked_defaults()
        && defaults
            .sections
            .iter()
            .any(|s| s.get(&k).is_some() || s.get(trimmed).is_some())
    {
        return Resolution::NotTunable;
    }
    let best = cat
        .entries
        .iter()
        .map(|e| {
            let key = e.spec.key;
            let score =
                strsim::jaro_winkler(&k, key).max(strsim::jaro_winkler(&k, raw_key_of(key)));
            (score, key)
        })
        .max_by(|a, b| a.0.total_cmp(&b.0));
    Resolution::Unknown(best.filter(|(s, _)| *s >= 0.85).map(|(_, k)| k))
}
