//! The option specs: every option lsmtune may change, with its section, type and range, one-line
//! meaning, safety class and how RocksDB stores it. This is knowledge typed in here; defaults are
//! not (the catalog reads them from the linked RocksDB).

use serde::Serialize;

use super::ini::SectionKind;
use super::value::{OptionType, Value};

/// Which section of an OPTIONS file an option lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `[DBOptions]`
    Db,
    /// `[CFOptions "default"]`
    Cf,
    /// `[TableOptions/BlockBasedTable "default"]`; catalog keys carry a `table.` prefix.
    Table,
}

impl Scope {
    /// The scope of the catalog's options a section holds: only the default column family and
    /// its block-based table are tuned.
    pub fn tuned(kind: &SectionKind) -> Option<Scope> {
        match kind {
            SectionKind::Cf(name) if name != "default" => None,
            SectionKind::Table { cf, .. } if cf != "default" => None,
            _ => Scope::parsed_as(kind),
        }
    }

    /// The scope RocksDB's option parser reads a section's keys as (any column family); `None`
    /// for `[Version]`, other table factories and sections RocksDB does not know.
    pub fn parsed_as(kind: &SectionKind) -> Option<Scope> {
        match kind {
            SectionKind::Db => Some(Scope::Db),
            SectionKind::Cf(_) => Some(Scope::Cf),
            SectionKind::Table { factory, .. } if factory == "BlockBasedTable" => {
                Some(Scope::Table)
            }
            _ => None,
        }
    }

    /// The section of the default column family that holds this scope.
    pub fn section(self) -> SectionKind {
        match self {
            Scope::Db => SectionKind::Db,
            Scope::Cf => SectionKind::Cf("default".into()),
            Scope::Table => SectionKind::Table {
                factory: "BlockBasedTable".into(),
                cf: "default".into(),
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scope::Db => "DBOptions",
            Scope::Cf => "CFOptions",
            Scope::Table => "BlockBasedTable",
        }
    }
}

/// Whether changing an option can change durability or semantics.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Safety {
    Safe,
    /// Any change is unsafe.
    Unsafe,
    /// These values (RocksDB spelling) are unsafe; others are fine.
    UnsafeValues(&'static [&'static str]),
}

impl Safety {
    /// Is setting `value` unsafe?
    pub fn is_unsafe(&self, value: &Value) -> bool {
        match self {
            Safety::Safe => false,
            Safety::Unsafe => true,
            Safety::UnsafeValues(vals) => vals.contains(&value.to_string().as_str()),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Safety::Safe => "safe".into(),
            Safety::Unsafe => "unsafe".into(),
            Safety::UnsafeValues(v) => format!("unsafe when {}", v.join("|")),
        }
    }
}

/// Where in the file the value is stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// A plain `key=value` line whose key is the catalog key without its `table.` prefix.
    Plain,
    /// A field of a nested struct value: `parent={field=value;...}`.
    Field {
        parent: &'static str,
        field: &'static str,
    },
    /// The capacity of `block_cache` (RocksDB parses `block_cache=<bytes>` but never writes it).
    BlockCacheCapacity,
    /// The bits-per-key part of `filter_policy=bloomfilter:<bits>:false`.
    FilterBits,
    /// The kind part of `filter_policy` (`bloom` or `ribbon`).
    FilterKind,
}

/// Broad area, for grouping in prompts and displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Memtable,
    Compaction,
    Flush,
    Threads,
    Io,
    Wal,
    WritePath,
    Compression,
    Table,
    Cache,
    Filter,
    Blob,
    Misc,
}

/// One tunable option as typed in (without its default).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptionSpec {
    pub key: &'static str,
    pub scope: Scope,
    #[serde(flatten)]
    pub ty: OptionType,
    pub category: Category,
    pub safety: Safety,
    pub storage: Storage,
    pub meaning: &'static str,
}

pub const COMPRESSIONS: &[&str] = &[
    "kNoCompression",
    "kSnappyCompression",
    "kZlibCompression",
    "kBZip2Compression",
    "kLZ4Compression",
    "kLZ4HCCompression",
    "kZSTD",
];

pub const BOTTOMMOST_COMPRESSIONS: &[&str] = &[
    "kDisableCompressionOption",
    "kNoCompression",
    "kSnappyCompression",
    "kZlibCompression",
    "kBZip2Compression",
    "kLZ4Compression",
    "kLZ4HCCompression",
    "kZSTD",
];

const KIB: i64 = 1 << 10;
const MIB: i64 = 1 << 20;
const GIB: i64 = 1 << 30;
const TIB: i64 = 1 << 40;

const fn int(min: i64, max: i64) -> OptionType {
    OptionType::Int { min, max }
}
const fn size(min: i64, max: i64) -> OptionType {
    OptionType::Size { min, max }
}
const fn double(min: f64, max: f64) -> OptionType {
    OptionType::Double { min, max }
}
const fn one_of(values: &'static [&'static str]) -> OptionType {
    OptionType::Enum { values }
}
const BOOL: OptionType = OptionType::Bool;

const fn spec(
    key: &'static str,
    scope: Scope,
    ty: OptionType,
    category: Category,
    meaning: &'static str,
) -> OptionSpec {
    OptionSpec {
        key,
        scope,
        ty,
        category,
        safety: Safety::Safe,
        storage: Storage::Plain,
        meaning,
    }
}

const fn unsafe_when(mut s: OptionSpec, values: &'static [&'static str]) -> OptionSpec {
    s.safety = Safety::UnsafeValues(values);
    s
}

const fn stored(mut s: OptionSpec, storage: Storage) -> OptionSpec {
    s.storage = storage;
    s
}

use Category as C;
use Scope::{Cf, Db, Table};

/// Every option lsmtune knows how to tune, in catalog order.
pub fn specs() -> Vec<OptionSpec> {
    vec![
        // ---- threads and background work
        spec(
            "max_background_jobs",
            Db,
            int(1, 64),
            C::Threads,
            "Threads for flushes and compactions together.",
        ),
        spec(
            "max_background_compactions",
            Db,
            int(-1, 64),
            C::Threads,
            "Legacy cap on concurrent compactions (-1 = derive from max_background_jobs).",
        ),
        spec(
            "max_background_flushes",
            Db,
            int(-1, 64),
            C::Threads,
            "Legacy cap on concurrent flushes (-1 = derive from max_background_jobs).",
        ),
        spec(
            "max_subcompactions",
            Db,
            int(1, 64),
            C::Threads,
            "Threads one compaction job may split into.",
        ),
        // ---- I/O
        spec(
            "bytes_per_sync",
            Db,
            size(0, 64 * MIB),
            C::Io,
            "Sync SST data to disk every this many bytes in the background (0 = off).",
        ),
        spec(
            "strict_bytes_per_sync",
            Db,
            BOOL,
            C::Io,
            "Wait for earlier syncs to finish so dirty data never exceeds bytes_per_sync.",
        ),
        spec(
            "use_direct_reads",
            Db,
            BOOL,
            C::Io,
            "Read SST files with O_DIRECT, bypassing the OS page cache.",
        ),
        spec(
            "use_direct_io_for_flush_and_compaction",
            Db,
            BOOL,
            C::Io,
            "Write and read flush/compaction files with O_DIRECT.",
        ),
        spec(
            "allow_mmap_reads",
            Db,
            BOOL,
            C::Io,
            "Read SST files through mmap.",
        ),
        spec(
            "allow_mmap_writes",
            Db,
            BOOL,
            C::Io,
            "Write files through mmap.",
        ),
        spec(
            "compaction_readahead_size",
            Db,
            size(0, 64 * MIB),
            C::Io,
            "Readahead size for compaction input reads.",
        ),
        spec(
            "writable_file_max_buffer_size",
            Db,
            size(0, 64 * MIB),
            C::Io,
            "Largest buffer a writable file keeps before writing out.",
        ),
        spec(
            "advise_random_on_open",
            Db,
            BOOL,
            C::Io,
            "Hint random access to the OS when opening SST files.",
        ),
        spec(
            "max_open_files",
            Db,
            int(-1, 1_000_000),
            C::Io,
            "SST files kept open in the table cache (-1 = all, no table-cache lookups).",
        ),
        spec(
            "max_file_opening_threads",
            Db,
            int(1, 64),
            C::Io,
            "Threads that open SST files at DB open when max_open_files=-1.",
        ),
        spec(
            "table_cache_numshardbits",
            Db,
            int(0, 10),
            C::Io,
            "Table cache is sharded into 2^n shards to reduce lock contention.",
        ),
        spec(
            "skip_stats_update_on_db_open",
            Db,
            BOOL,
            C::Io,
            "Do not read every SST's properties at open (faster open).",
        ),
        spec(
            "skip_checking_sst_file_sizes_on_db_open",
            Db,
            BOOL,
            C::Io,
            "Do not check every SST file size at open.",
        ),
        // ---- write path and WAL
        spec(
            "wal_bytes_per_sync",
            Db,
            size(0, 64 * MIB),
            C::Wal,
            "Sync the WAL every this many bytes in the background (0 = off).",
        ),
        spec(
            "max_total_wal_size",
            Db,
            size(0, 64 * GIB),
            C::Wal,
            "Force flushes when live WALs exceed this size (0 = 4x the memtable total).",
        ),
        spec(
            "wal_compression",
            Db,
            one_of(&["kNoCompression", "kZSTD"]),
            C::Wal,
            "Compress WAL records.",
        ),
        spec(
            "recycle_log_file_num",
            Db,
            int(0, 64),
            C::Wal,
            "Reuse this many old WAL files instead of creating new ones.",
        ),
        spec(
            "db_write_buffer_size",
            Db,
            size(0, 64 * GIB),
            C::Memtable,
            "Memory cap for memtables across all column families (0 = no cap).",
        ),
        spec(
            "delayed_write_rate",
            Db,
            size(0, 4 * GIB),
            C::WritePath,
            "Write rate (bytes/s) allowed while writes are being slowed down.",
        ),
        spec(
            "enable_pipelined_write",
            Db,
            BOOL,
            C::WritePath,
            "Pipeline WAL writes and memtable inserts of successive write groups.",
        ),
        spec(
            "allow_concurrent_memtable_write",
            Db,
            BOOL,
            C::WritePath,
            "Let several writers insert into the memtable at once (skiplist only).",
        ),
        spec(
            "enable_write_thread_adaptive_yield",
            Db,
            BOOL,
            C::WritePath,
            "Writers spin briefly before blocking on the write mutex.",
        ),
        spec(
            "write_thread_max_yield_usec",
            Db,
            int(0, 10_000),
            C::WritePath,
            "Longest spin of a waiting writer, in microseconds.",
        ),
        spec(
            "write_thread_slow_yield_usec",
            Db,
            int(0, 10_000),
            C::WritePath,
            "A yield longer than this counts as slow and ends spinning.",
        ),
        spec(
            "max_write_batch_group_size_bytes",
            Db,
            size(KIB, 64 * MIB),
            C::WritePath,
            "Largest group of batches the leader writer commits at once.",
        ),
        spec(
            "use_adaptive_mutex",
            Db,
            BOOL,
            C::WritePath,
            "Spin before blocking on the DB mutex.",
        ),
        unsafe_when(
            spec(
                "unordered_write",
                Db,
                BOOL,
                C::WritePath,
                "Skip ordering of memtable writes; breaks snapshot immutability.",
            ),
            &["true"],
        ),
        unsafe_when(
            spec(
                "manual_wal_flush",
                Db,
                BOOL,
                C::Wal,
                "WAL is flushed only on explicit FlushWAL(); data can be lost on crash.",
            ),
            &["true"],
        ),
        unsafe_when(
            spec(
                "avoid_flush_during_shutdown",
                Db,
                BOOL,
                C::Wal,
                "Skip flushing memtables at close; unsafe when the WAL is disabled.",
            ),
            &["true"],
        ),
        spec(
            "avoid_flush_during_recovery",
            Db,
            BOOL,
            C::Wal,
            "Do not flush memtables while replaying the WAL at open.",
        ),
        unsafe_when(
            spec(
                "paranoid_checks",
                Db,
                BOOL,
                C::Misc,
                "Check data aggressively and stop on any corruption.",
            ),
            &["false"],
        ),
        unsafe_when(
            spec(
                "wal_recovery_mode",
                Db,
                one_of(&[
                    "kTolerateCorruptedTailRecords",
                    "kAbsoluteConsistency",
                    "kPointInTimeRecovery",
                    "kSkipAnyCorruptedRecords",
                ]),
                C::Wal,
                "How WAL corruption is handled at recovery.",
            ),
            &["kTolerateCorruptedTailRecords", "kSkipAnyCorruptedRecords"],
        ),
        spec(
            "use_fsync",
            Db,
            BOOL,
            C::Io,
            "Use fsync instead of fdatasync (slower, needed on some file systems).",
        ),
        spec(
            "stats_dump_period_sec",
            Db,
            int(0, 86_400),
            C::Misc,
            "Dump statistics to the info log every this many seconds (0 = never).",
        ),
        spec(
            "enable_thread_tracking",
            Db,
            BOOL,
            C::Misc,
            "Track thread status for GetThreadList() (small overhead).",
        ),
        spec(
            "dump_malloc_stats",
            Db,
            BOOL,
            C::Misc,
            "Include allocator statistics in stats dumps.",
        ),
        spec(
            "avoid_unnecessary_blocking_io",
            Db,
            BOOL,
            C::Io,
            "Move file deletions out of foreground threads.",
        ),
        // ---- memtables
        spec(
            "write_buffer_size",
            Cf,
            size(64 * KIB, 4 * GIB),
            C::Memtable,
            "Size of one memtable before it is switched and flushed.",
        ),
        spec(
            "max_write_buffer_number",
            Cf,
            int(2, 32),
            C::Memtable,
            "Memtables (active + immutable) held before writes stall.",
        ),
        spec(
            "min_write_buffer_number_to_merge",
            Cf,
            int(1, 16),
            C::Flush,
            "Immutable memtables merged into one flush.",
        ),
        spec(
            "max_write_buffer_size_to_maintain",
            Cf,
            size(0, 4 * GIB),
            C::Memtable,
            "History of flushed memtables kept for transaction conflict checks.",
        ),
        spec(
            "memtable_factory",
            Cf,
            one_of(&["SkipListFactory", "VectorRepFactory"]),
            C::Memtable,
            "Memtable data structure (vector: fast bulk load, slow reads).",
        ),
        spec(
            "memtable_prefix_bloom_size_ratio",
            Cf,
            double(0.0, 0.25),
            C::Memtable,
            "Share of write_buffer_size given to a memtable bloom filter.",
        ),
        spec(
            "memtable_whole_key_filtering",
            Cf,
            BOOL,
            C::Memtable,
            "Put whole keys in the memtable bloom filter (needs a ratio > 0).",
        ),
        spec(
            "memtable_huge_page_size",
            Cf,
            size(0, GIB),
            C::Memtable,
            "Allocate memtable arenas from huge pages of this size (0 = off).",
        ),
        spec(
            "arena_block_size",
            Cf,
            size(0, 256 * MIB),
            C::Memtable,
            "Memtable arena allocation unit (0 = write_buffer_size/8).",
        ),
        unsafe_when(
            spec(
                "inplace_update_support",
                Cf,
                BOOL,
                C::Memtable,
                "Update values in place in the memtable; breaks snapshots.",
            ),
            &["true"],
        ),
        // ---- flush and compaction (leveled)
        spec(
            "level0_file_num_compaction_trigger",
            Cf,
            int(1, 256),
            C::Compaction,
            "L0 file count that starts an L0 compaction.",
        ),
        spec(
            "level0_slowdown_writes_trigger",
            Cf,
            int(1, 1024),
            C::Compaction,
            "L0 file count at which writes are slowed.",
        ),
        spec(
            "level0_stop_writes_trigger",
            Cf,
            int(1, 1024),
            C::Compaction,
            "L0 file count at which writes stop.",
        ),
        spec(
            "max_bytes_for_level_base",
            Cf,
            size(MIB, 64 * GIB),
            C::Compaction,
            "Target size of the first level below L0.",
        ),
        spec(
            "max_bytes_for_level_multiplier",
            Cf,
            double(2.0, 100.0),
            C::Compaction,
            "Size ratio between successive levels.",
        ),
        spec(
            "target_file_size_base",
            Cf,
            size(256 * KIB, 4 * GIB),
            C::Compaction,
            "Target SST file size at the first level below L0.",
        ),
        spec(
            "target_file_size_multiplier",
            Cf,
            int(1, 10),
            C::Compaction,
            "Growth of the target file size per level.",
        ),
        spec(
            "num_levels",
            Cf,
            int(2, 12),
            C::Compaction,
            "Number of LSM levels.",
        ),
        spec(
            "level_compaction_dynamic_level_bytes",
            Cf,
            BOOL,
            C::Compaction,
            "Size levels from the last level up (bounds space amplification).",
        ),
        spec(
            "level_compaction_dynamic_file_size",
            Cf,
            BOOL,
            C::Compaction,
            "Cut compaction output files at boundaries of the next level's files.",
        ),
        unsafe_when(
            spec(
                "compaction_style",
                Cf,
                one_of(&[
                    "kCompactionStyleLevel",
                    "kCompactionStyleUniversal",
                    "kCompactionStyleFIFO",
                ]),
                C::Compaction,
                "Leveled, universal (tiered) or FIFO (drops old data) compaction.",
            ),
            &["kCompactionStyleFIFO"],
        ),
        spec(
            "compaction_pri",
            Cf,
            one_of(&[
                "kByCompensatedSize",
                "kOldestLargestSeqFirst",
                "kOldestSmallestSeqFirst",
                "kMinOverlappingRatio",
                "kRoundRobin",
            ]),
            C::Compaction,
            "Which file of a level is compacted first.",
        ),
        spec(
            "max_compaction_bytes",
            Cf,
            size(0, 64 * GIB),
            C::Compaction,
            "Largest total input of one compaction (0 = 25x target_file_size_base).",
        ),
        spec(
            "soft_pending_compaction_bytes_limit",
            Cf,
            size(0, TIB),
            C::Compaction,
            "Pending compaction bytes at which writes slow down (0 = off).",
        ),
        spec(
            "hard_pending_compaction_bytes_limit",
            Cf,
            size(0, TIB),
            C::Compaction,
            "Pending compaction bytes at which writes stop (0 = off).",
        ),
        unsafe_when(
            spec(
                "disable_auto_compactions",
                Cf,
                BOOL,
                C::Compaction,
                "Turn automatic compactions off; writes stop once L0 fills.",
            ),
            &["true"],
        ),
        spec(
            "optimize_filters_for_hits",
            Cf,
            BOOL,
            C::Filter,
            "No filters on the last level (saves memory when lookups mostly hit).",
        ),
        spec(
            "max_sequential_skip_in_iterations",
            Cf,
            int(1, 1024),
            C::Misc,
            "Skipped keys before an iterator reseeks.",
        ),
        spec(
            "paranoid_file_checks",
            Cf,
            BOOL,
            C::Misc,
            "Re-read every new SST file after writing it.",
        ),
        spec(
            "report_bg_io_stats",
            Cf,
            BOOL,
            C::Misc,
            "Measure I/O stats of flushes and compactions.",
        ),
        unsafe_when(
            spec(
                "force_consistency_checks",
                Cf,
                BOOL,
                C::Misc,
                "Check LSM consistency on every version change.",
            ),
            &["false"],
        ),
        spec(
            "bloom_locality",
            Cf,
            int(0, 1),
            C::Filter,
            "Legacy: cache-local probes for plain-table blooms.",
        ),
        // ---- universal compaction
        stored(
            spec(
                "compaction_options_universal.size_ratio",
                Cf,
                int(0, 100),
                C::Compaction,
                "Universal: percent slack when comparing run sizes for merging.",
            ),
            Storage::Field {
                parent: "compaction_options_universal",
                field: "size_ratio",
            },
        ),
        stored(
            spec(
                "compaction_options_universal.min_merge_width",
                Cf,
                int(2, 64),
                C::Compaction,
                "Universal: fewest sorted runs merged at once.",
            ),
            Storage::Field {
                parent: "compaction_options_universal",
                field: "min_merge_width",
            },
        ),
        stored(
            spec(
                "compaction_options_universal.max_merge_width",
                Cf,
                int(2, u32::MAX as i64),
                C::Compaction,
                "Universal: most sorted runs merged at once.",
            ),
            Storage::Field {
                parent: "compaction_options_universal",
                field: "max_merge_width",
            },
        ),
        stored(
            spec(
                "compaction_options_universal.max_size_amplification_percent",
                Cf,
                int(1, 10_000),
                C::Compaction,
                "Universal: space amplification (percent) that forces a full compaction.",
            ),
            Storage::Field {
                parent: "compaction_options_universal",
                field: "max_size_amplification_percent",
            },
        ),
        // ---- compression
        spec(
            "compression",
            Cf,
            one_of(COMPRESSIONS),
            C::Compression,
            "Compression of SST blocks (all levels but the bottommost when that is set).",
        ),
        spec(
            "bottommost_compression",
            Cf,
            one_of(BOTTOMMOST_COMPRESSIONS),
            C::Compression,
            "Compression of the bottommost level (kDisableCompressionOption = same as compression).",
        ),
        spec(
            "sample_for_compression",
            Cf,
            int(0, 1_000_000),
            C::Compression,
            "Sample 1 in N blocks to estimate other algorithms' ratios (0 = off).",
        ),
        stored(
            spec(
                "compression_opts.level",
                Cf,
                int(-32_767, 32_767),
                C::Compression,
                "Compression level (32767 = the library's default).",
            ),
            Storage::Field {
                parent: "compression_opts",
                field: "level",
            },
        ),
        stored(
            spec(
                "compression_opts.max_dict_bytes",
                Cf,
                size(0, MIB),
                C::Compression,
                "Size of a per-file compression dictionary (0 = none).",
            ),
            Storage::Field {
                parent: "compression_opts",
                field: "max_dict_bytes",
            },
        ),
        // ---- blob files (key-value separation)
        spec(
            "enable_blob_files",
            Cf,
            BOOL,
            C::Blob,
            "Store large values in blob files apart from the LSM tree.",
        ),
        spec(
            "min_blob_size",
            Cf,
            size(0, 16 * MIB),
            C::Blob,
            "Values at least this large go to blob files.",
        ),
        spec(
            "blob_file_size",
            Cf,
            size(MIB, 4 * GIB),
            C::Blob,
            "Target size of a blob file.",
        ),
        spec(
            "blob_compression_type",
            Cf,
            one_of(COMPRESSIONS),
            C::Blob,
            "Compression of blob values.",
        ),
        spec(
            "enable_blob_garbage_collection",
            Cf,
            BOOL,
            C::Blob,
            "Relocate live blobs out of old blob files during compaction.",
        ),
        spec(
            "blob_garbage_collection_age_cutoff",
            Cf,
            double(0.0, 1.0),
            C::Blob,
            "Oldest share of blob files considered for garbage collection.",
        ),
        spec(
            "blob_file_starting_level",
            Cf,
            int(0, 10),
            C::Blob,
            "First LSM level whose compactions write blob files.",
        ),
        // ---- block-based table
        spec(
            "table.block_size",
            Table,
            size(KIB, 4 * MIB),
            C::Table,
            "Uncompressed size of a data block.",
        ),
        spec(
            "table.block_size_deviation",
            Table,
            int(0, 100),
            C::Table,
            "Close a block early when within this percent of block_size.",
        ),
        spec(
            "table.block_restart_interval",
            Table,
            int(1, 128),
            C::Table,
            "Keys between restart points for delta encoding in data blocks.",
        ),
        spec(
            "table.index_block_restart_interval",
            Table,
            int(1, 64),
            C::Table,
            "Keys between restart points in index blocks.",
        ),
        spec(
            "table.use_delta_encoding",
            Table,
            BOOL,
            C::Table,
            "Delta-encode keys within a block.",
        ),
        spec(
            "table.index_type",
            Table,
            one_of(&[
                "kBinarySearch",
                "kTwoLevelIndexSearch",
                "kBinarySearchWithFirstKey",
            ]),
            C::Table,
            "Index layout (two-level = partitioned index).",
        ),
        spec(
            "table.partition_filters",
            Table,
            BOOL,
            C::Filter,
            "Partition filters (needs index_type=kTwoLevelIndexSearch).",
        ),
        spec(
            "table.metadata_block_size",
            Table,
            size(KIB, MIB),
            C::Table,
            "Partition size of partitioned indexes and filters.",
        ),
        spec(
            "table.data_block_index_type",
            Table,
            one_of(&["kDataBlockBinarySearch", "kDataBlockBinaryAndHash"]),
            C::Table,
            "Add a hash index to data blocks for point lookups.",
        ),
        spec(
            "table.data_block_hash_table_util_ratio",
            Table,
            double(0.1, 1.0),
            C::Table,
            "Load factor of the data-block hash index.",
        ),
        spec(
            "table.index_shortening",
            Table,
            one_of(&[
                "kNoShortening",
                "kShortenSeparators",
                "kShortenSeparatorsAndSuccessor",
            ]),
            C::Table,
            "How index keys are shortened.",
        ),
        spec(
            "table.enable_index_compression",
            Table,
            BOOL,
            C::Table,
            "Compress index blocks.",
        ),
        spec(
            "table.block_align",
            Table,
            BOOL,
            C::Table,
            "Align data blocks to the page size (needs no compression).",
        ),
        spec(
            "table.format_version",
            Table,
            int(2, 7),
            C::Table,
            "SST format version (newer = better filters and checksums).",
        ),
        unsafe_when(
            spec(
                "table.checksum",
                Table,
                one_of(&["kNoChecksum", "kCRC32c", "kxxHash", "kxxHash64", "kXXH3"]),
                C::Table,
                "Block checksum algorithm.",
            ),
            &["kNoChecksum"],
        ),
        spec(
            "table.max_auto_readahead_size",
            Table,
            size(0, 64 * MIB),
            C::Io,
            "Largest automatic readahead of iterators.",
        ),
        spec(
            "table.initial_auto_readahead_size",
            Table,
            size(0, 64 * MIB),
            C::Io,
            "First automatic readahead of iterators.",
        ),
        spec(
            "table.num_file_reads_for_auto_readahead",
            Table,
            int(0, 16),
            C::Io,
            "Sequential reads of a file before readahead starts.",
        ),
        // ---- block cache
        stored(
            spec(
                "table.block_cache_size",
                Table,
                size(MIB, 256 * GIB),
                C::Cache,
                "Capacity of the LRU block cache for data (and index/filter when cached).",
            ),
            Storage::BlockCacheCapacity,
        ),
        spec(
            "table.no_block_cache",
            Table,
            BOOL,
            C::Cache,
            "Use no block cache at all.",
        ),
        spec(
            "table.cache_index_and_filter_blocks",
            Table,
            BOOL,
            C::Cache,
            "Keep index and filter blocks in the block cache (bounded memory) instead of the heap.",
        ),
        spec(
            "table.cache_index_and_filter_blocks_with_high_priority",
            Table,
            BOOL,
            C::Cache,
            "Give cached index/filter blocks high priority.",
        ),
        spec(
            "table.pin_l0_filter_and_index_blocks_in_cache",
            Table,
            BOOL,
            C::Cache,
            "Pin L0 index/filter blocks in the cache.",
        ),
        spec(
            "table.pin_top_level_index_and_filter",
            Table,
            BOOL,
            C::Cache,
            "Pin the top level of partitioned indexes/filters.",
        ),
        spec(
            "table.prepopulate_block_cache",
            Table,
            one_of(&["kDisable", "kFlushOnly"]),
            C::Cache,
            "Insert freshly flushed blocks into the block cache.",
        ),
        // ---- filters
        stored(
            spec(
                "table.filter_bits_per_key",
                Table,
                double(0.0, 30.0),
                C::Filter,
                "Bits per key of the SST filter (0 = no filter; 10 = ~1% false positives).",
            ),
            Storage::FilterBits,
        ),
        stored(
            spec(
                "table.filter_type",
                Table,
                one_of(&["bloom", "ribbon"]),
                C::Filter,
                "Filter kind: bloom (fast) or ribbon (30% smaller, slower to build).",
            ),
            Storage::FilterKind,
        ),
        spec(
            "table.whole_key_filtering",
            Table,
            BOOL,
            C::Filter,
            "Put whole keys in filters (point lookups).",
        ),
        spec(
            "table.optimize_filters_for_memory",
            Table,
            BOOL,
            C::Filter,
            "Size filters to allocator classes to save memory.",
        ),
    ]
}

/// The key as written in the file section (`table.block_size` → `block_size`).
pub fn raw_key_of(key: &str) -> &str {
    key.strip_prefix("table.").unwrap_or(key)
}
