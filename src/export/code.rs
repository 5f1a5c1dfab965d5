//! The programming-language targets: C++ (`rocksdb::Options` fields, written against the API of
//! RocksDB 7.8 and later), RocksJava setters, rust-rocksdb methods and grocksdb setters. The
//! language bindings' method names are listed here option by option (checked against
//! rust-rocksdb 0.25, the grocksdb sources and RocksJava's `Options` and
//! `BlockBasedTableConfig`); an option without a method is not expressible, never guessed.

use std::fmt::Write as _;

use super::{
    Change, Format, Group, Placed, Plan, Statement, Target, filter_policy, float_literal, group_of,
    has, lines,
};
use crate::options::spec::Storage;
use crate::options::value::{OptionType, Value};

pub struct Cpp;
pub struct Java;
pub struct Rust;
pub struct Go;

/// C++ spelling of an enum value, by option.
fn cpp_enum(key: &str, v: &str) -> Option<String> {
    let ns = match key {
        "compression"
        | "bottommost_compression"
        | "blob_compression_type"
        | "wal_compression"
        | "compaction_style"
        | "compaction_pri"
        | "table.checksum" => "rocksdb::",
        "wal_recovery_mode" => "rocksdb::WALRecoveryMode::",
        "table.index_type" | "table.data_block_index_type" => "rocksdb::BlockBasedTableOptions::",
        "table.index_shortening" => "rocksdb::BlockBasedTableOptions::IndexShorteningMode::",
        "table.prepopulate_block_cache" => {
            "rocksdb::BlockBasedTableOptions::PrepopulateBlockCache::"
        }
        _ => return None,
    };
    Some(format!("{ns}{v}"))
}

impl Target for Cpp {
    fn format(&self) -> Format {
        Format::Cpp
    }

    fn comment_marker(&self) -> &'static str {
        "//"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if let Some(policy) = filter_policy(c, plan) {
            return Some(match policy {
                None => vec![],
                Some((_, bits)) if bits <= 0.0 => vec![Statement::new(
                    Group::Table,
                    "table_options.filter_policy.reset();",
                )],
                Some((kind, bits)) => {
                    let f = if kind == "ribbon" {
                        "NewRibbonFilterPolicy"
                    } else {
                        "NewBloomFilterPolicy"
                    };
                    vec![Statement::new(
                        Group::Table,
                        format!(
                            "table_options.filter_policy.reset(rocksdb::{f}({}));",
                            float_literal(bits)
                        ),
                    )]
                }
            });
        }
        let code = match (c.key(), c.entry.spec.storage) {
            ("table.block_cache_size", _) => format!(
                "table_options.block_cache = rocksdb::NewLRUCache({});",
                c.int()
            ),
            ("memtable_factory", _) => format!(
                "options.memtable_factory.reset(new rocksdb::{}());",
                c.text()
            ),
            (_, Storage::Field { parent, field }) => {
                format!("options.{parent}.{field} = {};", cpp_value(c)?)
            }
            (_, Storage::Plain) => {
                let object = if c.key().starts_with("table.") {
                    "table_options"
                } else {
                    "options"
                };
                format!("{object}.{} = {};", c.raw_key(), cpp_value(c)?)
            }
            _ => return None,
        };
        Some(vec![Statement::new(group_of(c.scope()), code)])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("#include <rocksdb/cache.h>\n#include <rocksdb/filter_policy.h>\n");
        out.push_str("#include <rocksdb/memtablerep.h>\n#include <rocksdb/options.h>\n");
        out.push_str("#include <rocksdb/table.h>\n\n");
        out.push_str(missing);
        if !missing.is_empty() {
            out.push('\n');
        }
        out.push_str("// Apply the tuned options on top of the caller's options.\n");
        out.push_str("inline void ApplyTunedOptions(rocksdb::Options& options) {\n");
        out.push_str(&lines(placed, Group::Db, "  ", "//", true));
        out.push_str(&lines(placed, Group::Cf, "  ", "//", true));
        if has(placed, Group::Table) {
            out.push_str(
                "  // Block-based table options (this replaces the table factory's options).\n",
            );
            out.push_str("  rocksdb::BlockBasedTableOptions table_options;\n");
            out.push_str(&lines(placed, Group::Table, "  ", "//", true));
            out.push_str(
                "  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table_options));\n",
            );
        }
        out.push_str("}\n");
        out
    }
}

fn cpp_value(c: &Change) -> Option<String> {
    Some(match (c.ty(), &c.tuned) {
        (OptionType::Enum { .. }, Value::Str(s)) => cpp_enum(c.key(), s)?,
        (OptionType::Bool, _) => c.flag().to_string(),
        (OptionType::Double { .. }, _) => float_literal(c.float()),
        (OptionType::Int { .. } | OptionType::Size { .. }, _) => c.int().to_string(),
        _ => return None,
    })
}

/// RocksJava setters: catalog key → setter (on `Options`, or on `BlockBasedTableConfig` for
/// `table.*`).
const JAVA: &[(&str, &str)] = &[
    ("max_background_jobs", "setMaxBackgroundJobs"),
    ("max_background_compactions", "setMaxBackgroundCompactions"),
    ("max_background_flushes", "setMaxBackgroundFlushes"),
    ("max_subcompactions", "setMaxSubcompactions"),
    ("bytes_per_sync", "setBytesPerSync"),
    ("wal_bytes_per_sync", "setWalBytesPerSync"),
    ("strict_bytes_per_sync", "setStrictBytesPerSync"),
    ("use_direct_reads", "setUseDirectReads"),
    (
        "use_direct_io_for_flush_and_compaction",
        "setUseDirectIoForFlushAndCompaction",
    ),
    ("allow_mmap_reads", "setAllowMmapReads"),
    ("allow_mmap_writes", "setAllowMmapWrites"),
    ("compaction_readahead_size", "setCompactionReadaheadSize"),
    (
        "writable_file_max_buffer_size",
        "setWritableFileMaxBufferSize",
    ),
    ("advise_random_on_open", "setAdviseRandomOnOpen"),
    ("max_open_files", "setMaxOpenFiles"),
    ("max_file_opening_threads", "setMaxFileOpeningThreads"),
    ("table_cache_numshardbits", "setTableCacheNumshardbits"),
    ("skip_stats_update_on_db_open", "setSkipStatsUpdateOnDbOpen"),
    ("max_total_wal_size", "setMaxTotalWalSize"),
    ("recycle_log_file_num", "setRecycleLogFileNum"),
    ("db_write_buffer_size", "setDbWriteBufferSize"),
    ("delayed_write_rate", "setDelayedWriteRate"),
    ("enable_pipelined_write", "setEnablePipelinedWrite"),
    (
        "allow_concurrent_memtable_write",
        "setAllowConcurrentMemtableWrite",
    ),
    (
        "enable_write_thread_adaptive_yield",
        "setEnableWriteThreadAdaptiveYield",
    ),
    ("use_adaptive_mutex", "setUseAdaptiveMutex"),
    ("unordered_write", "setUnorderedWrite"),
    ("manual_wal_flush", "setManualWalFlush"),
    ("avoid_flush_during_shutdown", "setAvoidFlushDuringShutdown"),
    ("avoid_flush_during_recovery", "setAvoidFlushDuringRecovery"),
    ("paranoid_checks", "setParanoidChecks"),
    ("wal_recovery_mode", "setWalRecoveryMode"),
    ("use_fsync", "setUseFsync"),
    ("stats_dump_period_sec", "setStatsDumpPeriodSec"),
    ("write_buffer_size", "setWriteBufferSize"),
    ("max_write_buffer_number", "setMaxWriteBufferNumber"),
    (
        "min_write_buffer_number_to_merge",
        "setMinWriteBufferNumberToMerge",
    ),
    (
        "memtable_prefix_bloom_size_ratio",
        "setMemtablePrefixBloomSizeRatio",
    ),
    (
        "memtable_whole_key_filtering",
        "setMemtableWholeKeyFiltering",
    ),
    ("memtable_huge_page_size", "setMemtableHugePageSize"),
    ("arena_block_size", "setArenaBlockSize"),
    ("inplace_update_support", "setInplaceUpdateSupport"),
    (
        "level0_file_num_compaction_trigger",
        "setLevel0FileNumCompactionTrigger",
    ),
    (
        "level0_slowdown_writes_trigger",
        "setLevel0SlowdownWritesTrigger",
    ),
    ("level0_stop_writes_trigger", "setLevel0StopWritesTrigger"),
    ("max_bytes_for_level_base", "setMaxBytesForLevelBase"),
    (
        "max_bytes_for_level_multiplier",
        "setMaxBytesForLevelMultiplier",
    ),
    ("target_file_size_base", "setTargetFileSizeBase"),
    ("target_file_size_multiplier", "setTargetFileSizeMultiplier"),
    ("num_levels", "setNumLevels"),
    (
        "level_compaction_dynamic_level_bytes",
        "setLevelCompactionDynamicLevelBytes",
    ),
    ("compaction_style", "setCompactionStyle"),
    ("compaction_pri", "setCompactionPriority"),
    ("max_compaction_bytes", "setMaxCompactionBytes"),
    (
        "soft_pending_compaction_bytes_limit",
        "setSoftPendingCompactionBytesLimit",
    ),
    (
        "hard_pending_compaction_bytes_limit",
        "setHardPendingCompactionBytesLimit",
    ),
    ("disable_auto_compactions", "setDisableAutoCompactions"),
    ("optimize_filters_for_hits", "setOptimizeFiltersForHits"),
    (
        "max_sequential_skip_in_iterations",
        "setMaxSequentialSkipInIterations",
    ),
    ("paranoid_file_checks", "setParanoidFileChecks"),
    ("report_bg_io_stats", "setReportBgIoStats"),
    ("force_consistency_checks", "setForceConsistencyChecks"),
    ("bloom_locality", "setBloomLocality"),
    ("compression", "setCompressionType"),
    ("bottommost_compression", "setBottommostCompressionType"),
    ("enable_blob_files", "setEnableBlobFiles"),
    ("min_blob_size", "setMinBlobSize"),
    ("blob_file_size", "setBlobFileSize"),
    ("blob_compression_type", "setBlobCompressionType"),
    (
        "enable_blob_garbage_collection",
        "setEnableBlobGarbageCollection",
    ),
    (
        "blob_garbage_collection_age_cutoff",
        "setBlobGarbageCollectionAgeCutoff",
    ),
    ("blob_file_starting_level", "setBlobFileStartingLevel"),
    ("table.block_size", "setBlockSize"),
    ("table.block_size_deviation", "setBlockSizeDeviation"),
    ("table.block_restart_interval", "setBlockRestartInterval"),
    (
        "table.index_block_restart_interval",
        "setIndexBlockRestartInterval",
    ),
    ("table.use_delta_encoding", "setUseDeltaEncoding"),
    ("table.index_type", "setIndexType"),
    ("table.partition_filters", "setPartitionFilters"),
    ("table.metadata_block_size", "setMetadataBlockSize"),
    ("table.data_block_index_type", "setDataBlockIndexType"),
    (
        "table.data_block_hash_table_util_ratio",
        "setDataBlockHashTableUtilRatio",
    ),
    ("table.index_shortening", "setIndexShortening"),
    (
        "table.enable_index_compression",
        "setEnableIndexCompression",
    ),
    ("table.block_align", "setBlockAlign"),
    ("table.format_version", "setFormatVersion"),
    ("table.checksum", "setChecksumType"),
    ("table.no_block_cache", "setNoBlockCache"),
    (
        "table.cache_index_and_filter_blocks",
        "setCacheIndexAndFilterBlocks",
    ),
    (
        "table.cache_index_and_filter_blocks_with_high_priority",
        "setCacheIndexAndFilterBlocksWithHighPriority",
    ),
    (
        "table.pin_l0_filter_and_index_blocks_in_cache",
        "setPinL0FilterAndIndexBlocksInCache",
    ),
    (
        "table.pin_top_level_index_and_filter",
        "setPinTopLevelIndexAndFilter",
    ),
    ("table.whole_key_filtering", "setWholeKeyFiltering"),
    (
        "table.optimize_filters_for_memory",
        "setOptimizeFiltersForMemory",
    ),
];

fn lookup(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, m)| *m)
}

/// The short name of a compression (`kZSTD` → `zstd`) as the products' configs spell it.
pub(crate) fn compression_short(v: &str) -> Option<&'static str> {
    Some(match v {
        "kNoCompression" => "no",
        "kSnappyCompression" => "snappy",
        "kZlibCompression" => "zlib",
        "kBZip2Compression" => "bzip2",
        "kLZ4Compression" => "lz4",
        "kLZ4HCCompression" => "lz4hc",
        "kZSTD" => "zstd",
        _ => return None,
    })
}

fn java_enum(key: &str, v: &str) -> Option<String> {
    let (class, name) = match key {
        "compression" | "bottommost_compression" | "blob_compression_type" => (
            "CompressionType",
            match v {
                "kDisableCompressionOption" => "DISABLE_COMPRESSION_OPTION",
                "kBZip2Compression" => "BZLIB2_COMPRESSION",
                other => {
                    return Some(format!(
                        "CompressionType.{}_COMPRESSION",
                        compression_short(other)?.to_ascii_uppercase()
                    ));
                }
            },
        ),
        "compaction_style" => (
            "CompactionStyle",
            match v {
                "kCompactionStyleLevel" => "LEVEL",
                "kCompactionStyleUniversal" => "UNIVERSAL",
                "kCompactionStyleFIFO" => "FIFO",
                _ => return None,
            },
        ),
        "compaction_pri" => ("CompactionPriority", v.strip_prefix('k')?),
        "wal_recovery_mode" => ("WALRecoveryMode", v.strip_prefix('k')?),
        "table.index_type" => ("IndexType", v),
        "table.data_block_index_type" => ("DataBlockIndexType", v),
        "table.checksum" => ("ChecksumType", v),
        "table.index_shortening" => ("IndexShorteningMode", v),
        _ => return None,
    };
    Some(format!("{class}.{name}"))
}

impl Target for Java {
    fn format(&self) -> Format {
        Format::Java
    }

    fn comment_marker(&self) -> &'static str {
        "//"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if let Some(policy) = filter_policy(c, plan) {
            return match policy {
                None => Some(vec![]),
                // RocksJava has no Ribbon filter class.
                Some((kind, _)) if kind == "ribbon" => None,
                Some((_, bits)) if bits <= 0.0 => None,
                Some((_, bits)) => Some(vec![Statement::new(
                    Group::Table,
                    format!(
                        "tableConfig.setFilterPolicy(new BloomFilter({}));",
                        float_literal(bits)
                    ),
                )]),
            };
        }
        if c.key() == "table.block_cache_size" {
            return Some(vec![Statement::new(
                Group::Table,
                format!("tableConfig.setBlockCache(new LRUCache({}L));", c.int()),
            )]);
        }
        let setter = lookup(JAVA, c.key())?;
        let value = match (c.ty(), &c.tuned) {
            (OptionType::Enum { .. }, Value::Str(s)) => java_enum(c.key(), s)?,
            (OptionType::Bool, _) => c.flag().to_string(),
            (OptionType::Double { .. }, _) => float_literal(c.float()),
            (OptionType::Size { .. }, _) => format!("{}L", c.int()),
            (OptionType::Int { .. }, _) if c.int() > i32::MAX as i64 => format!("{}L", c.int()),
            (OptionType::Int { .. }, _) => c.int().to_string(),
            _ => return None,
        };
        let object = if c.key().starts_with("table.") {
            "tableConfig"
        } else {
            "options"
        };
        Some(vec![Statement::new(
            group_of(c.scope()),
            format!("{object}.{setter}({value});"),
        )])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("import org.rocksdb.*;\n\n");
        out.push_str(missing);
        if !missing.is_empty() {
            out.push('\n');
        }
        out.push_str("public final class TunedOptions {\n");
        out.push_str("  private TunedOptions() {}\n\n");
        out.push_str("  /** Apply the tuned options on top of the caller's options. */\n");
        out.push_str("  public static void apply(final Options options) {\n");
        out.push_str(&lines(placed, Group::Db, "    ", "//", true));
        out.push_str(&lines(placed, Group::Cf, "    ", "//", true));
        if has(placed, Group::Table) {
            out.push_str(
                "    // Block-based table options (this replaces the table format config).\n",
            );
            out.push_str(
                "    final BlockBasedTableConfig tableConfig = new BlockBasedTableConfig();\n",
            );
            out.push_str(&lines(placed, Group::Table, "    ", "//", true));
            out.push_str("    options.setTableFormatConfig(tableConfig);\n");
        }
        out.push_str("  }\n}\n");
        out
    }
}

/// rust-rocksdb 0.25 methods: catalog key → method (on `Options`, or on `BlockBasedOptions` for
/// `table.*`).
const RUST: &[(&str, &str)] = &[
    ("max_background_jobs", "set_max_background_jobs"),
    (
        "max_background_compactions",
        "set_max_background_compactions",
    ),
    ("max_background_flushes", "set_max_background_flushes"),
    ("max_subcompactions", "set_max_subcompactions"),
    ("bytes_per_sync", "set_bytes_per_sync"),
    ("use_direct_reads", "set_use_direct_reads"),
    (
        "use_direct_io_for_flush_and_compaction",
        "set_use_direct_io_for_flush_and_compaction",
    ),
    ("allow_mmap_reads", "set_allow_mmap_reads"),
    ("allow_mmap_writes", "set_allow_mmap_writes"),
    ("compaction_readahead_size", "set_compaction_readahead_size"),
    (
        "writable_file_max_buffer_size",
        "set_writable_file_max_buffer_size",
    ),
    ("advise_random_on_open", "set_advise_random_on_open"),
    ("max_open_files", "set_max_open_files"),
    ("max_file_opening_threads", "set_max_file_opening_threads"),
    ("table_cache_numshardbits", "set_table_cache_num_shard_bits"),
    (
        "skip_stats_update_on_db_open",
        "set_skip_stats_update_on_db_open",
    ),
    ("wal_bytes_per_sync", "set_wal_bytes_per_sync"),
    ("max_total_wal_size", "set_max_total_wal_size"),
    ("wal_compression", "set_wal_compression_type"),
    ("recycle_log_file_num", "set_recycle_log_file_num"),
    ("db_write_buffer_size", "set_db_write_buffer_size"),
    ("enable_pipelined_write", "set_enable_pipelined_write"),
    (
        "allow_concurrent_memtable_write",
        "set_allow_concurrent_memtable_write",
    ),
    (
        "enable_write_thread_adaptive_yield",
        "set_enable_write_thread_adaptive_yield",
    ),
    ("use_adaptive_mutex", "set_use_adaptive_mutex"),
    ("unordered_write", "set_unordered_write"),
    ("manual_wal_flush", "set_manual_wal_flush"),
    ("paranoid_checks", "set_paranoid_checks"),
    ("wal_recovery_mode", "set_wal_recovery_mode"),
    ("use_fsync", "set_use_fsync"),
    ("stats_dump_period_sec", "set_stats_dump_period_sec"),
    ("dump_malloc_stats", "set_dump_malloc_stats"),
    (
        "avoid_unnecessary_blocking_io",
        "set_avoid_unnecessary_blocking_io",
    ),
    ("write_buffer_size", "set_write_buffer_size"),
    ("max_write_buffer_number", "set_max_write_buffer_number"),
    (
        "min_write_buffer_number_to_merge",
        "set_min_write_buffer_number_to_merge",
    ),
    (
        "max_write_buffer_size_to_maintain",
        "set_max_write_buffer_size_to_maintain",
    ),
    (
        "memtable_prefix_bloom_size_ratio",
        "set_memtable_prefix_bloom_ratio",
    ),
    (
        "memtable_whole_key_filtering",
        "set_memtable_whole_key_filtering",
    ),
    ("memtable_huge_page_size", "set_memtable_huge_page_size"),
    ("arena_block_size", "set_arena_block_size"),
    ("inplace_update_support", "set_inplace_update_support"),
    (
        "level0_file_num_compaction_trigger",
        "set_level_zero_file_num_compaction_trigger",
    ),
    (
        "level0_slowdown_writes_trigger",
        "set_level_zero_slowdown_writes_trigger",
    ),
    (
        "level0_stop_writes_trigger",
        "set_level_zero_stop_writes_trigger",
    ),
    ("max_bytes_for_level_base", "set_max_bytes_for_level_base"),
    (
        "max_bytes_for_level_multiplier",
        "set_max_bytes_for_level_multiplier",
    ),
    ("target_file_size_base", "set_target_file_size_base"),
    (
        "target_file_size_multiplier",
        "set_target_file_size_multiplier",
    ),
    ("num_levels", "set_num_levels"),
    (
        "level_compaction_dynamic_level_bytes",
        "set_level_compaction_dynamic_level_bytes",
    ),
    ("compaction_style", "set_compaction_style"),
    ("compaction_pri", "set_compaction_pri"),
    ("max_compaction_bytes", "set_max_compaction_bytes"),
    (
        "soft_pending_compaction_bytes_limit",
        "set_soft_pending_compaction_bytes_limit",
    ),
    (
        "hard_pending_compaction_bytes_limit",
        "set_hard_pending_compaction_bytes_limit",
    ),
    ("disable_auto_compactions", "set_disable_auto_compactions"),
    ("optimize_filters_for_hits", "set_optimize_filters_for_hits"),
    (
        "max_sequential_skip_in_iterations",
        "set_max_sequential_skip_in_iterations",
    ),
    ("report_bg_io_stats", "set_report_bg_io_stats"),
    ("bloom_locality", "set_bloom_locality"),
    ("compression", "set_compression_type"),
    ("bottommost_compression", "set_bottommost_compression_type"),
    ("enable_blob_files", "set_enable_blob_files"),
    ("min_blob_size", "set_min_blob_size"),
    ("blob_file_size", "set_blob_file_size"),
    ("blob_compression_type", "set_blob_compression_type"),
    ("enable_blob_garbage_collection", "set_enable_blob_gc"),
    (
        "blob_garbage_collection_age_cutoff",
        "set_blob_gc_age_cutoff",
    ),
    ("table.block_size", "set_block_size"),
    ("table.block_restart_interval", "set_block_restart_interval"),
    (
        "table.index_block_restart_interval",
        "set_index_block_restart_interval",
    ),
    ("table.index_type", "set_index_type"),
    ("table.partition_filters", "set_partition_filters"),
    ("table.metadata_block_size", "set_metadata_block_size"),
    ("table.data_block_index_type", "set_data_block_index_type"),
    (
        "table.data_block_hash_table_util_ratio",
        "set_data_block_hash_ratio",
    ),
    ("table.format_version", "set_format_version"),
    ("table.checksum", "set_checksum_type"),
    (
        "table.cache_index_and_filter_blocks",
        "set_cache_index_and_filter_blocks",
    ),
    (
        "table.cache_index_and_filter_blocks_with_high_priority",
        "set_cache_index_and_filter_blocks_with_high_priority",
    ),
    (
        "table.pin_l0_filter_and_index_blocks_in_cache",
        "set_pin_l0_filter_and_index_blocks_in_cache",
    ),
    (
        "table.pin_top_level_index_and_filter",
        "set_pin_top_level_index_and_filter",
    ),
    ("table.whole_key_filtering", "set_whole_key_filtering"),
    (
        "table.optimize_filters_for_memory",
        "set_optimize_filters_for_memory",
    ),
];

fn rust_enum(key: &str, v: &str) -> Option<String> {
    let (ty, name) = match key {
        "compression" | "bottommost_compression" | "blob_compression_type" | "wal_compression" => (
            "DBCompressionType",
            match v {
                "kNoCompression" => "None",
                "kSnappyCompression" => "Snappy",
                "kZlibCompression" => "Zlib",
                "kBZip2Compression" => "Bz2",
                "kLZ4Compression" => "Lz4",
                "kLZ4HCCompression" => "Lz4hc",
                "kZSTD" => "Zstd",
                _ => return None,
            },
        ),
        "compaction_style" => (
            "DBCompactionStyle",
            match v {
                "kCompactionStyleLevel" => "Level",
                "kCompactionStyleUniversal" => "Universal",
                "kCompactionStyleFIFO" => "Fifo",
                _ => return None,
            },
        ),
        "compaction_pri" => ("CompactionPri", v.strip_prefix('k')?),
        "wal_recovery_mode" => (
            "DBRecoveryMode",
            match v {
                "kTolerateCorruptedTailRecords" => "TolerateCorruptedTailRecords",
                "kAbsoluteConsistency" => "AbsoluteConsistency",
                "kPointInTimeRecovery" => "PointInTime",
                "kSkipAnyCorruptedRecords" => "SkipAnyCorruptedRecord",
                _ => return None,
            },
        ),
        "table.index_type" => (
            "BlockBasedIndexType",
            match v {
                "kBinarySearch" => "BinarySearch",
                "kTwoLevelIndexSearch" => "TwoLevelIndexSearch",
                _ => return None,
            },
        ),
        "table.data_block_index_type" => (
            "DataBlockIndexType",
            match v {
                "kDataBlockBinarySearch" => "BinarySearch",
                "kDataBlockBinaryAndHash" => "BinaryAndHash",
                _ => return None,
            },
        ),
        "table.checksum" => (
            "ChecksumType",
            match v {
                "kNoChecksum" => "NoChecksum",
                "kCRC32c" => "CRC32c",
                "kxxHash" => "XXHash",
                "kxxHash64" => "XXHash64",
                "kXXH3" => "XXH3",
                _ => return None,
            },
        ),
        _ => return None,
    };
    Some(format!("rocksdb::{ty}::{name}"))
}

impl Target for Rust {
    fn format(&self) -> Format {
        Format::Rust
    }

    fn comment_marker(&self) -> &'static str {
        "//"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if let Some(policy) = filter_policy(c, plan) {
            return match policy {
                None => Some(vec![]),
                Some((_, bits)) if bits <= 0.0 => None,
                Some((kind, bits)) => Some(vec![Statement::new(
                    Group::Table,
                    if kind == "ribbon" {
                        format!("table.set_ribbon_filter({});", float_literal(bits))
                    } else {
                        format!("table.set_bloom_filter({}, false);", float_literal(bits))
                    },
                )]),
            };
        }
        if c.key() == "table.block_cache_size" {
            return Some(vec![Statement::new(
                Group::Table,
                format!(
                    "table.set_block_cache(&rocksdb::Cache::new_lru_cache({}));",
                    c.int()
                ),
            )]);
        }
        let method = lookup(RUST, c.key())?;
        let value = match (c.ty(), &c.tuned) {
            (OptionType::Enum { .. }, Value::Str(s)) => rust_enum(c.key(), s)?,
            (OptionType::Bool, _) => c.flag().to_string(),
            (OptionType::Double { .. }, _) => float_literal(c.float()),
            (OptionType::Int { .. } | OptionType::Size { .. }, _) => c.int().to_string(),
            _ => return None,
        };
        let object = if c.key().starts_with("table.") {
            "table"
        } else {
            "opts"
        };
        Some(vec![Statement::new(
            group_of(c.scope()),
            format!("{object}.{method}({value});"),
        )])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str(missing);
        if !missing.is_empty() {
            out.push('\n');
        }
        out.push_str("/// Apply the tuned options on top of the caller's options.\n");
        out.push_str("pub fn apply_tuned_options(opts: &mut rocksdb::Options) {\n");
        out.push_str(&lines(placed, Group::Db, "    ", "//", true));
        out.push_str(&lines(placed, Group::Cf, "    ", "//", true));
        if has(placed, Group::Table) {
            out.push_str(
                "    // Block-based table options (this replaces the table factory's options).\n",
            );
            out.push_str("    let mut table = rocksdb::BlockBasedOptions::default();\n");
            out.push_str(&lines(placed, Group::Table, "    ", "//", true));
            out.push_str("    opts.set_block_based_table_factory(&table);\n");
        }
        out.push_str("}\n");
        out
    }
}

/// grocksdb setters: catalog key → method (on `*grocksdb.Options`, or on
/// `*grocksdb.BlockBasedTableOptions` for `table.*`).
const GO: &[(&str, &str)] = &[
    ("max_background_jobs", "SetMaxBackgroundJobs"),
    ("max_background_compactions", "SetMaxBackgroundCompactions"),
    ("max_background_flushes", "SetMaxBackgroundFlushes"),
    ("max_subcompactions", "SetMaxSubcompactions"),
    ("bytes_per_sync", "SetBytesPerSync"),
    ("wal_bytes_per_sync", "SetWALBytesPerSync"),
    ("use_direct_reads", "SetUseDirectReads"),
    (
        "use_direct_io_for_flush_and_compaction",
        "SetUseDirectIOForFlushAndCompaction",
    ),
    ("allow_mmap_reads", "SetAllowMmapReads"),
    ("allow_mmap_writes", "SetAllowMmapWrites"),
    (
        "writable_file_max_buffer_size",
        "SetWritableFileMaxBufferSize",
    ),
    ("advise_random_on_open", "SetAdviseRandomOnOpen"),
    ("max_open_files", "SetMaxOpenFiles"),
    ("max_file_opening_threads", "SetMaxFileOpeningThreads"),
    ("table_cache_numshardbits", "SetTableCacheNumshardbits"),
    ("skip_stats_update_on_db_open", "SetSkipStatsUpdateOnDBOpen"),
    ("max_total_wal_size", "SetMaxTotalWalSize"),
    ("wal_compression", "SetWALCompression"),
    ("recycle_log_file_num", "SetRecycleLogFileNum"),
    ("db_write_buffer_size", "SetDbWriteBufferSize"),
    ("enable_pipelined_write", "SetEnablePipelinedWrite"),
    (
        "allow_concurrent_memtable_write",
        "SetAllowConcurrentMemtableWrites",
    ),
    (
        "enable_write_thread_adaptive_yield",
        "SetEnableWriteThreadAdaptiveYield",
    ),
    ("use_adaptive_mutex", "SetUseAdaptiveMutex"),
    ("unordered_write", "SetUnorderedWrite"),
    ("manual_wal_flush", "SetManualWALFlush"),
    ("paranoid_checks", "SetParanoidChecks"),
    ("wal_recovery_mode", "SetWALRecoveryMode"),
    ("use_fsync", "SetUseFsync"),
    ("stats_dump_period_sec", "SetStatsDumpPeriodSec"),
    ("dump_malloc_stats", "SetDumpMallocStats"),
    ("write_buffer_size", "SetWriteBufferSize"),
    ("max_write_buffer_number", "SetMaxWriteBufferNumber"),
    (
        "min_write_buffer_number_to_merge",
        "SetMinWriteBufferNumberToMerge",
    ),
    (
        "max_write_buffer_size_to_maintain",
        "SetMaxWriteBufferSizeToMaintain",
    ),
    (
        "memtable_prefix_bloom_size_ratio",
        "SetMemTablePrefixBloomSizeRatio",
    ),
    (
        "memtable_whole_key_filtering",
        "SetMemtableWholeKeyFiltering",
    ),
    ("memtable_huge_page_size", "SetMemtableHugePageSize"),
    ("arena_block_size", "SetArenaBlockSize"),
    ("inplace_update_support", "SetInplaceUpdateSupport"),
    (
        "level0_file_num_compaction_trigger",
        "SetLevel0FileNumCompactionTrigger",
    ),
    (
        "level0_slowdown_writes_trigger",
        "SetLevel0SlowdownWritesTrigger",
    ),
    ("level0_stop_writes_trigger", "SetLevel0StopWritesTrigger"),
    ("max_bytes_for_level_base", "SetMaxBytesForLevelBase"),
    (
        "max_bytes_for_level_multiplier",
        "SetMaxBytesForLevelMultiplier",
    ),
    ("target_file_size_base", "SetTargetFileSizeBase"),
    ("target_file_size_multiplier", "SetTargetFileSizeMultiplier"),
    ("num_levels", "SetNumLevels"),
    (
        "level_compaction_dynamic_level_bytes",
        "SetLevelCompactionDynamicLevelBytes",
    ),
    ("compaction_style", "SetCompactionStyle"),
    ("compaction_pri", "SetCompactionPri"),
    ("max_compaction_bytes", "SetMaxCompactionBytes"),
    (
        "soft_pending_compaction_bytes_limit",
        "SetSoftPendingCompactionBytesLimit",
    ),
    (
        "hard_pending_compaction_bytes_limit",
        "SetHardPendingCompactionBytesLimit",
    ),
    ("disable_auto_compactions", "SetDisableAutoCompactions"),
    ("optimize_filters_for_hits", "SetOptimizeFiltersForHits"),
    (
        "max_sequential_skip_in_iterations",
        "SetMaxSequentialSkipInIterations",
    ),
    ("bloom_locality", "SetBloomLocality"),
    ("compression", "SetCompression"),
    ("bottommost_compression", "SetBottommostCompression"),
    ("min_blob_size", "SetMinBlobSize"),
    ("blob_file_size", "SetBlobFileSize"),
    ("blob_compression_type", "SetBlobCompressionType"),
    ("blob_garbage_collection_age_cutoff", "SetBlobGCAgeCutoff"),
    ("blob_file_starting_level", "SetBlobFileStartingLevel"),
    ("table.block_size", "SetBlockSize"),
    ("table.block_size_deviation", "SetBlockSizeDeviation"),
    ("table.block_restart_interval", "SetBlockRestartInterval"),
    (
        "table.index_block_restart_interval",
        "SetIndexBlockRestartInterval",
    ),
    ("table.use_delta_encoding", "SetUseDeltaEncoding"),
    ("table.index_type", "SetIndexType"),
    ("table.partition_filters", "SetPartitionFilters"),
    ("table.metadata_block_size", "SetMetadataBlockSize"),
    ("table.data_block_index_type", "SetDataBlockIndexType"),
    (
        "table.data_block_hash_table_util_ratio",
        "SetDataBlockHashRatio",
    ),
    ("table.format_version", "SetFormatVersion"),
    ("table.no_block_cache", "SetNoBlockCache"),
    (
        "table.cache_index_and_filter_blocks",
        "SetCacheIndexAndFilterBlocks",
    ),
    (
        "table.cache_index_and_filter_blocks_with_high_priority",
        "SetCacheIndexAndFilterBlocksWithHighPriority",
    ),
    (
        "table.pin_l0_filter_and_index_blocks_in_cache",
        "SetPinL0FilterAndIndexBlocksInCache",
    ),
    (
        "table.pin_top_level_index_and_filter",
        "SetPinTopLevelIndexAndFilter",
    ),
    ("table.whole_key_filtering", "SetWholeKeyFiltering"),
    (
        "table.optimize_filters_for_memory",
        "SetOptimizeFiltersForMemory",
    ),
];

fn go_enum(key: &str, v: &str) -> Option<String> {
    let name = match key {
        "compression" | "bottommost_compression" | "blob_compression_type" | "wal_compression" => {
            match v {
                "kNoCompression" => "NoCompression",
                "kSnappyCompression" => "SnappyCompression",
                "kZlibCompression" => "ZLibCompression",
                "kBZip2Compression" => "Bz2Compression",
                "kLZ4Compression" => "LZ4Compression",
                "kLZ4HCCompression" => "LZ4HCCompression",
                "kZSTD" => "ZSTDCompression",
                _ => return None,
            }
        }
        "compaction_style" => match v {
            "kCompactionStyleLevel" => "LevelCompactionStyle",
            "kCompactionStyleUniversal" => "UniversalCompactionStyle",
            "kCompactionStyleFIFO" => "FIFOCompactionStyle",
            _ => return None,
        },
        "compaction_pri" => {
            return Some(format!("grocksdb.K{}CompactionPri", v.strip_prefix('k')?));
        }
        "wal_recovery_mode" => match v {
            "kTolerateCorruptedTailRecords" => "TolerateCorruptedTailRecordsRecovery",
            "kAbsoluteConsistency" => "AbsoluteConsistencyRecovery",
            "kPointInTimeRecovery" => "PointInTimeRecovery",
            "kSkipAnyCorruptedRecords" => "SkipAnyCorruptedRecordsRecovery",
            _ => return None,
        },
        "table.index_type" => match v {
            "kBinarySearch" => "KBinarySearchIndexType",
            "kTwoLevelIndexSearch" => "KTwoLevelIndexSearchIndexType",
            "kBinarySearchWithFirstKey" => "KBinarySearchWithFirstKey",
            _ => return None,
        },
        "table.data_block_index_type" => match v {
            "kDataBlockBinarySearch" => "KDataBlockIndexTypeBinarySearch",
            "kDataBlockBinaryAndHash" => "KDataBlockIndexTypeBinarySearchAndHash",
            _ => return None,
        },
        _ => return None,
    };
    Some(format!("grocksdb.{name}"))
}

impl Target for Go {
    fn format(&self) -> Format {
        Format::Go
    }

    fn comment_marker(&self) -> &'static str {
        "//"
    }

    fn express(&self, c: &Change, plan: &Plan) -> Option<Vec<Statement>> {
        if let Some(policy) = filter_policy(c, plan) {
            return match policy {
                None => Some(vec![]),
                Some((_, bits)) if bits <= 0.0 => None,
                Some((kind, bits)) => Some(vec![Statement::new(
                    Group::Table,
                    format!(
                        "bbto.SetFilterPolicy(grocksdb.{}({}))",
                        if kind == "ribbon" {
                            "NewRibbonFilterPolicy"
                        } else {
                            "NewBloomFilter"
                        },
                        float_literal(bits)
                    ),
                )]),
            };
        }
        if c.key() == "table.block_cache_size" {
            return Some(vec![Statement::new(
                Group::Table,
                format!("bbto.SetBlockCache(grocksdb.NewLRUCache({}))", c.int()),
            )]);
        }
        let method = lookup(GO, c.key())?;
        let value = match (c.ty(), &c.tuned) {
            (OptionType::Enum { .. }, Value::Str(s)) => go_enum(c.key(), s)?,
            (OptionType::Bool, _) => c.flag().to_string(),
            (OptionType::Double { .. }, _) => float_literal(c.float()),
            (OptionType::Int { .. } | OptionType::Size { .. }, _) => c.int().to_string(),
            _ => return None,
        };
        let object = if c.key().starts_with("table.") {
            "bbto"
        } else {
            "opts"
        };
        Some(vec![Statement::new(
            group_of(c.scope()),
            format!("{object}.{method}({value})"),
        )])
    }

    fn assemble(&self, _plan: &Plan, placed: &[Placed], header: &str, missing: &str) -> String {
        let mut out = String::new();
        out.push_str(header);
        out.push_str("package tuned\n\nimport \"github.com/linxGnu/grocksdb\"\n\n");
        out.push_str(missing);
        if !missing.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "// ApplyTunedOptions applies the tuned options on top of the caller's options."
        );
        out.push_str("func ApplyTunedOptions(opts *grocksdb.Options) {\n");
        out.push_str(&lines(placed, Group::Db, "\t", "//", true));
        out.push_str(&lines(placed, Group::Cf, "\t", "//", true));
        if has(placed, Group::Table) {
            out.push_str(
                "\t// Block-based table options (this replaces the table factory's options).\n",
            );
            out.push_str("\tbbto := grocksdb.NewDefaultBlockBasedTableOptions()\n");
            out.push_str(&lines(placed, Group::Table, "\t", "//", true));
            out.push_str("\topts.SetBlockBasedTableFactory(bbto)\n");
        }
        out.push_str("}\n");
        out
    }
}
