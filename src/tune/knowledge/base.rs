//! The tuning knowledge base: each hint names a symptom (when it applies, from the workload,
//! the measurements and the current configuration), the options to move, the direction, why,
//! typical values and where the advice comes from. Data, read by [`super::hints`]: for a model's
//! prompt, and by the expert proposer, which applies the hints in weight order.

use super::*;

/// A hint's weight on a workload whose operations are at least half writes, with the
/// measurement it comes from.
pub struct Reweight {
    pub id: &'static str,
    pub weight: u32,
    pub source: &'static str,
}

/// On a mix that writes at least half the time, the write path before the reads: measured on
/// ycsb-a (50% updates, zipfian, the data in the page cache), where the filter and the cache
/// (weights 90 and 85, fired by a 46% block-cache hit rate) took the rule book's first
/// iterations and measured within noise, while pipelining and compression carried the gain. A
/// measured stall (the stall hints, 90) still comes first.
pub static WRITE_HEAVY: &[Reweight] = &[
    Reweight {
        id: "cpu.compression",
        weight: 89,
        source: "BENCHMARKS.md, why ycsb-a has headroom: LZ4 back cost 20% [8, 34] of the best-known file, the read options 10% [-8, 32] (not significant); listed first because the 0.5B model starts from compression whatever the order and adds the next hint beside it (the hint order experiment: fillrandom +40%, +42% with compression first, 1.15x with pipelining first)",
    },
    Reweight {
        id: "write.pipelined",
        weight: 87,
        source: "BENCHMARKS.md, why ycsb-a has headroom: pipelined writes off cost 14% [7, 21] of the best-known file; fillrandom: the model kept pipelined writes on both seeds (+28%, +40%)",
    },
    Reweight {
        id: "read.filter",
        weight: 70,
        source: "BENCHMARKS.md, why ycsb-a has headroom: the read options (filter, cache, blocks, index) put back cost 10% [-8, 32] of the best-known file, not significant; the rule book's filter and cache steps measured within 10% there",
    },
    Reweight {
        id: "read.cache",
        weight: 65,
        source: "BENCHMARKS.md, why ycsb-a has headroom: the read options put back cost 10% [-8, 32], not significant, at a 46% block-cache hit rate (the data in the page cache: a miss is a copy, not a device read)",
    },
];

/// The knowledge base.
pub static HINTS: &[Hint] = &[
    Hint {
        id: "read.filter",
        applies: |s| {
            (s.workload.point_reads() && s.float("table.filter_bits_per_key") < 1.0)
                .then(|| "point reads without a filter".to_string())
        },
        options: &[
            ("table.filter_bits_per_key", Direction::Up),
            ("table.filter_type", Direction::To("bloom")),
        ],
        suggest: |_| {
            vec![
                ("table.filter_bits_per_key", Value::Double(10.0)),
                ("table.filter_type", Value::Str("bloom".into())),
            ]
        },
        brief: "skips files that cannot hold the key",
        why: "without a filter every lookup reads a data block from each file that may hold the key; a bloom filter answers 'not here' for about 99% of those with 10 bits per key",
        typical: |_| "10 bits per key".into(),
        source: "RocksDB wiki, RocksDB Bloom Filter; BENCHMARKS.md: readrandom about 2.5x here",
        caveat: None,
        weight: 90,
    },
    Hint {
        id: "read.cache",
        applies: |s| {
            let hit = s.d().block_cache_hit_rate.unwrap_or(0.0);
            let k = &s.workload;
            ((k.point_reads() || k.scans())
                && hit < 0.99
                && s.int("table.block_cache_size") < s.data_bytes() * 2
                && s.int("table.block_cache_size") < s.memory_budget as i64 / 2)
                .then(|| format!("block cache hit rate {}", pct(hit)))
        },
        options: &[("table.block_cache_size", Direction::Up)],
        suggest: |s| {
            // Twice the data (the index and filter blocks are cached too), a power of two, at
            // most half the budget.
            let cur = s.int("table.block_cache_size");
            let cap = (s.memory_budget as i64 / 2).max(8 * MIB);
            let want = ((2 * s.data_bytes()).max(MIB) as u64).next_power_of_two() as i64;
            vec![(
                "table.block_cache_size",
                Value::Int(want.max(cur * 2).min(cap)),
            )]
        },
        brief: "serves repeated blocks from memory",
        why: "blocks found in the cache cost a memory lookup, blocks not found a file read and a decompression; a cache that holds the working set serves most reads from memory",
        typical: |s| format!("about twice the data, {}", human_bytes(2 * s.data_bytes())),
        source: "RocksDB Tuning Guide, block cache; BENCHMARKS.md: readrandom +60% here with a cache of twice the data",
        caveat: Some(
            "size it to the memory the service really has (--memory-budget), not the machine's: off the page cache, at 10x the data in a worker held to a quarter of it, a 256 MiB cache plus memtables was killed at the limit in 2 of 4 runs and the tune's +236% shrank to +107% (BENCHMARKS.md, at scale)",
        ),
        weight: 85,
    },
    Hint {
        id: "write.stall.l0",
        applies: |s| {
            (s.workload.writes()
                && s.stalls() >= 0.005
                && s.d().stall_cause == Some(StallCause::L0Files))
            .then(|| {
                format!(
                    "writes stalled {} of the time on L0 file count",
                    pct(s.stalls())
                )
            })
        },
        options: &[
            ("level0_slowdown_writes_trigger", Direction::Up),
            ("level0_stop_writes_trigger", Direction::Up),
            ("max_background_jobs", Direction::Up),
        ],
        suggest: |s| {
            let slow = (s.int("level0_slowdown_writes_trigger") * 3 / 2).max(32);
            let stop = (s.int("level0_stop_writes_trigger") * 3 / 2)
                .max(48)
                .max(slow + 16);
            vec![
                ("level0_slowdown_writes_trigger", Value::Int(slow)),
                ("level0_stop_writes_trigger", Value::Int(stop)),
            ]
        },
        brief: "lets bursts through while compaction catches up",
        why: "writes slow down once L0 holds level0_slowdown_writes_trigger files; later triggers let bursts through while compaction catches up, more background jobs compact sooner",
        typical: |_| "slowdown 30-40, stop 50-64".into(),
        source: "RocksDB wiki, Write Stalls",
        caveat: None,
        weight: 90,
    },
    Hint {
        id: "write.stall.memtable",
        applies: |s| {
            (s.workload.writes()
                && s.stalls() >= 0.005
                && s.d().stall_cause == Some(StallCause::Memtables))
            .then(|| {
                format!(
                    "writes stalled {} of the time waiting for memtable flushes",
                    pct(s.stalls())
                )
            })
        },
        options: &[
            ("max_write_buffer_number", Direction::Up),
            ("max_background_jobs", Direction::Up),
        ],
        suggest: |s| {
            vec![(
                "max_write_buffer_number",
                Value::Int((s.int("max_write_buffer_number") + 2).min(8)),
            )]
        },
        brief: "more memtables absorb bursts while flushes run",
        why: "when every memtable is full and waiting for a flush, writes stop; more memtables absorb bursts and more background jobs flush in parallel",
        typical: |_| "3-6 memtables".into(),
        source: "RocksDB wiki, Write Stalls",
        caveat: None,
        weight: 90,
    },
    Hint {
        id: "write.stall.pending",
        applies: |s| {
            (s.workload.writes()
                && s.stalls() >= 0.005
                && s.d().stall_cause == Some(StallCause::PendingCompaction))
            .then(|| {
                format!(
                    "writes stalled {} of the time on pending compaction bytes",
                    pct(s.stalls())
                )
            })
        },
        options: &[
            ("soft_pending_compaction_bytes_limit", Direction::Up),
            ("max_background_jobs", Direction::Up),
            ("max_subcompactions", Direction::Up),
        ],
        suggest: |s| {
            let soft = s.int("soft_pending_compaction_bytes_limit");
            vec![(
                "soft_pending_compaction_bytes_limit",
                Value::Int(if soft > 0 { soft * 2 } else { 64 << 30 }),
            )]
        },
        brief: "tolerates a compaction backlog",
        why: "writes slow when too many bytes wait for compaction; a higher limit tolerates bursts, more compaction threads reduce the backlog",
        typical: |_| "2-4x the limit".into(),
        source: "RocksDB wiki, Write Stalls",
        caveat: None,
        weight: 90,
    },
    Hint {
        id: "write.pipelined",
        applies: |s| {
            let w = s.workload;
            (w.writes() && w.threads > 1 && !s.config.flag(s.catalog, "enable_pipelined_write"))
                .then(|| format!("{} threads write at once", w.threads))
        },
        options: &[("enable_pipelined_write", Direction::To("true"))],
        suggest: |_| vec![("enable_pipelined_write", Value::Bool(true))],
        brief: "WAL write and memtable insert overlap",
        why: "with pipelining one write group appends to the WAL while the previous one inserts into the memtable, instead of one after the other",
        typical: |_| "true".into(),
        source: "RocksDB wiki, Pipelined Write; BENCHMARKS.md: with 8 MiB memtables 1.80x on fillrandom here",
        caveat: None,
        weight: 70,
    },
    Hint {
        id: "write.memtable.smaller",
        applies: |s| {
            (s.workload.writes() && s.stalls() < 0.005 && s.int("write_buffer_size") > 8 * MIB)
                .then(|| "writes never stall".to_string())
        },
        options: &[
            ("write_buffer_size", Direction::Down),
            ("max_write_buffer_number", Direction::Up),
            ("min_write_buffer_number_to_merge", Direction::Up),
        ],
        suggest: |s| {
            let wb = s.int("write_buffer_size");
            let smaller = if wb > 16 * MIB {
                (wb / 2).max(16 * MIB)
            } else {
                8 * MIB
            };
            let mut v = vec![("write_buffer_size", Value::Int(smaller))];
            if s.int("max_write_buffer_number") < 6 {
                v.push(("max_write_buffer_number", Value::Int(6)));
            }
            if s.int("min_write_buffer_number_to_merge") < 2 {
                v.push(("min_write_buffer_number_to_merge", Value::Int(2)));
            }
            v
        },
        brief: "smaller memtables, two merged per flush, when flushes keep up",
        why: "when flushes keep up, the cost of a write is the memtable insert, a skiplist walk whose cache misses grow with the memtable's size; smaller memtables are cheaper per insert, and merging two per flush halves the flushes and the L0 files they make",
        typical: |_| {
            "half the current size, 6 memtables, 2 merged per flush; measured here on fillrandom after pipelining 6 x 32 MiB merged by two +16%, the same merged one by one -14%, 4 x 16 MiB +1%".into()
        },
        source: "BENCHMARKS.md, where fillrandom's headroom is: the best-known file's memtables (6 x 34 MiB, two per flush) carried +14% [2, 27] of it, and the step alone after pipelining measured +15.8% [5.5, 27.1] over 12 rounds; the common advice to enlarge memtables holds only under stalls",
        caveat: None,
        weight: 80,
    },
    Hint {
        id: "write.memtable.larger",
        applies: |s| {
            (s.workload.writes()
                && s.stalls() >= 0.005
                && s.d().stall_cause != Some(StallCause::PendingCompaction))
            .then(|| format!("writes stalled {} of the time", pct(s.stalls())))
        },
        options: &[
            ("write_buffer_size", Direction::Up),
            ("max_write_buffer_number", Direction::Up),
            ("target_file_size_base", Direction::Up),
            ("max_bytes_for_level_base", Direction::Up),
        ],
        suggest: |s| {
            let wb = s.int("write_buffer_size");
            let target = (wb * 2).min((s.memory_budget as i64 / 8).max(wb));
            vec![
                ("write_buffer_size", Value::Int(target)),
                ("max_write_buffer_number", Value::Int(4)),
                ("target_file_size_base", Value::Int(target)),
                ("max_bytes_for_level_base", Value::Int(target * 4)),
            ]
        },
        brief: "fewer, larger flushes ease L0 pressure",
        why: "larger memtables flush less often into fewer, larger L0 files, which lowers L0 pressure and write amplification",
        typical: |_| "2x the current size".into(),
        source: "RocksDB Tuning Guide, flushing options",
        caveat: None,
        weight: 60,
    },
    Hint {
        id: "write.amplification",
        applies: |s| {
            let wa = s.d().write_amplification.unwrap_or(0.0);
            (s.workload.writes() && wa > 8.0).then(|| format!("write amplification {wa:.1}"))
        },
        options: &[
            ("max_bytes_for_level_base", Direction::Up),
            (
                "compaction_style",
                Direction::To("kCompactionStyleUniversal"),
            ),
        ],
        suggest: |s| {
            vec![(
                "max_bytes_for_level_base",
                Value::Int(s.int("max_bytes_for_level_base") * 2),
            )]
        },
        brief: "fewer rewrites of each byte",
        why: "leveled compaction rewrites data once per level; a larger first level means fewer levels, universal compaction rewrites less at the cost of temporary space",
        typical: |_| "level base 4x the memtables".into(),
        source: "RocksDB Tuning Guide, compaction styles; wiki, Universal Compaction",
        caveat: None,
        weight: 50,
    },
    Hint {
        id: "cpu.compression",
        applies: |s| {
            let share = s.d().compaction_cpu_share.unwrap_or(0.0);
            (s.workload.writes() && s.config.text(s.catalog, "compression") != "kNoCompression")
                .then(|| {
                    let used = if share >= 0.05 {
                        format!(" (compactions used {} of the CPU)", pct(share))
                    } else {
                        String::new()
                    };
                    format!(
                        "{} cores shared by writers and compactions{used}",
                        s.facts.cores
                    )
                })
        },
        options: &[
            ("compression", Direction::To("kNoCompression")),
            ("bottommost_compression", Direction::To("kLZ4Compression")),
        ],
        suggest: |_| {
            vec![
                ("compression", Value::Str("kNoCompression".into())),
                (
                    "bottommost_compression",
                    Value::Str("kLZ4Compression".into()),
                ),
            ]
        },
        brief: "saves the CPU compactions spend compressing",
        why: "every level's compaction decompresses and recompresses its input; compressing only the last level, where most data ends, saves most of that CPU and keeps most of the space savings",
        typical: |_| "none above the bottom level".into(),
        source: "RocksDB Tuning Guide, compression",
        caveat: None,
        weight: 50,
    },
    Hint {
        id: "cpu.background_jobs",
        applies: |s| {
            let jobs = s.int("max_background_jobs");
            let want = (2 * s.facts.cores as i64).clamp(4, 16);
            (s.workload.writes() && jobs < want)
                .then(|| format!("{jobs} background jobs on {} cores", s.facts.cores))
        },
        options: &[
            ("max_background_jobs", Direction::Up),
            ("max_subcompactions", Direction::Up),
        ],
        suggest: |s| {
            let cores = s.facts.cores.max(1) as i64;
            vec![
                ("max_background_jobs", Value::Int((2 * cores).clamp(4, 16))),
                ("max_subcompactions", Value::Int(cores.min(4))),
            ]
        },
        brief: "flushes and compactions keep L0 from backing up",
        why: "flushes and compactions run on these threads; two per core (at least 4) keeps L0 from backing up under write load, and a large compaction may split over the cores",
        typical: |s| format!("{} jobs", (2 * s.facts.cores).clamp(4, 16)),
        source: "RocksDB Tuning Guide, parallelism",
        caveat: None,
        weight: 40,
    },
    Hint {
        id: "read.hash_index",
        applies: |s| {
            (s.workload.point_reads()
                && s.config.text(s.catalog, "table.data_block_index_type")
                    != "kDataBlockBinaryAndHash")
                .then(|| "point lookups search data blocks".to_string())
        },
        options: &[(
            "table.data_block_index_type",
            Direction::To("kDataBlockBinaryAndHash"),
        )],
        suggest: |_| {
            vec![(
                "table.data_block_index_type",
                Value::Str("kDataBlockBinaryAndHash".into()),
            )]
        },
        brief: "finds a key in a block without binary search",
        why: "a small hash table inside each data block finds a key without a binary search over the block's restart points",
        typical: |_| "kDataBlockBinaryAndHash".into(),
        source: "RocksDB wiki, Data Block Hash Index (about 10% less CPU per lookup)",
        caveat: None,
        weight: 40,
    },
    Hint {
        id: "read.memtable_bloom",
        applies: |s| {
            let k = &s.workload;
            (k.point_reads() && k.writes() && s.float("memtable_prefix_bloom_size_ratio") <= 0.0)
                .then(|| "lookups also search the memtables".to_string())
        },
        options: &[
            ("memtable_prefix_bloom_size_ratio", Direction::Up),
            ("memtable_whole_key_filtering", Direction::To("true")),
        ],
        suggest: |_| {
            vec![
                ("memtable_prefix_bloom_size_ratio", Value::Double(0.1)),
                ("memtable_whole_key_filtering", Value::Bool(true)),
            ]
        },
        brief: "skips memtable searches for absent keys",
        why: "a bloom filter over the memtable's keys answers lookups for keys it does not hold without a skiplist search",
        typical: |_| "ratio 0.1".into(),
        source: "RocksDB Tuning Guide, memtable bloom filter",
        caveat: None,
        weight: 30,
    },
    Hint {
        id: "scan.block_size",
        applies: |s| {
            (s.workload.scans() && s.int("table.block_size") < 16 * 1024)
                .then(|| "scans read consecutive keys".to_string())
        },
        options: &[
            ("table.block_size", Direction::Up),
            ("table.max_auto_readahead_size", Direction::Up),
        ],
        suggest: |s| {
            vec![(
                "table.block_size",
                Value::Int((s.int("table.block_size") * 4).max(16 * 1024)),
            )]
        },
        brief: "fewer block reads per scan",
        why: "a scan reads every block it passes; larger blocks mean fewer block reads and index entries per key scanned",
        typical: |_| "16-64 KiB".into(),
        source: "RocksDB Tuning Guide, block size",
        caveat: None,
        weight: 70,
    },
    Hint {
        id: "read.block_size.cached",
        applies: |s| {
            let cache = s.int("table.block_cache_size");
            (s.workload.point_reads()
                && cache >= s.data_bytes()
                && s.int("table.block_size") < 32 * 1024)
                .then(|| {
                    format!(
                        "the block cache ({}) holds the data ({})",
                        human_bytes(cache),
                        human_bytes(s.data_bytes())
                    )
                })
        },
        options: &[("table.block_size", Direction::Up)],
        suggest: |_| vec![("table.block_size", Value::Int(32 * 1024))],
        brief: "fewer, larger blocks once the cache holds the data",
        why: "when every block is already in the block cache a point read costs an index search and cache lookups, not a device read; 32-64 KiB blocks make the index and the number of cached blocks 8-16x smaller",
        typical: |_| "32-64 KiB (16 KiB measured nothing)".into(),
        source: "BENCHMARKS.md, where readrandom's headroom is: the best-known file's 42 KiB blocks carried +15.4% [1.6, 31.0] of its gain; on top of what the model keeps (a 256 MiB cache, a 10-bit bloom filter, the hash index) 32 KiB blocks measured +16.4% [3.0, 31.6], 64 KiB +17.5% [8.3, 27.5], 16 KiB +2.6% [-6.4, 12.5]; all three reading workloads' best-known files have 35-55 KiB blocks with a cache larger than the data",
        // Only while the cache holds the data (the condition above): a block read from the
        // device is read whole for one key. Not measured at scale yet, so no caveat claims it.
        caveat: None,
        weight: 75,
    },
    Hint {
        id: "read.filters_for_hits",
        applies: |s| {
            let k = &s.workload;
            (k.point_reads()
                && k.kind != crate::bench::Kind::ReadRandom
                && !s.config.flag(s.catalog, "optimize_filters_for_hits"))
            .then(|| "the keys read mostly exist".to_string())
        },
        options: &[("optimize_filters_for_hits", Direction::To("true"))],
        suggest: |_| vec![("optimize_filters_for_hits", Value::Bool(true))],
        brief: "no filter in the last level, where found keys end",
        why: "when lookups mostly find their key, the last level's filter rarely saves a read, yet holds most of the filter memory; without it more of the cache holds data",
        typical: |_| "true".into(),
        source: "RocksDB Tuning Guide, optimize_filters_for_hits",
        caveat: None,
        weight: 25,
    },
    Hint {
        id: "latency.subcompactions",
        applies: |s| {
            let want = s.facts.cores.clamp(1, 4) as i64;
            (s.latency() && s.workload.writes() && s.int("max_subcompactions") < want).then(|| {
                "a latency objective with writers: long L0 compactions hold L0 back".to_string()
            })
        },
        options: &[("max_subcompactions", Direction::Up)],
        suggest: |s| {
            vec![(
                "max_subcompactions",
                Value::Int(s.facts.cores.clamp(1, 4) as i64),
            )]
        },
        brief: "shorter L0 compactions, fewer stalls in the tail",
        why: "splitting each L0->L1 compaction over several threads shortens it, so L0 files pile up less and writes stall less often: the slowest operations get faster",
        typical: |s| format!("{}", s.facts.cores.clamp(1, 4)),
        source: "RocksDB wiki, Subcompaction; the expert's rule for latency objectives",
        caveat: None,
        weight: 85,
    },
    Hint {
        id: "latency.sync",
        applies: |s| {
            (s.latency() && s.workload.writes() && s.int("bytes_per_sync") == 0)
                .then(|| "a latency objective with writers: writeback comes in bursts".to_string())
        },
        options: &[("bytes_per_sync", Direction::Up)],
        suggest: |_| vec![("bytes_per_sync", Value::Int(MIB))],
        brief: "smooth writeback, shorter tail",
        why: "syncing files every 1 MiB spreads writeback out instead of long flush bursts that stall foreground operations: the tail gets shorter, throughput barely moves",
        typical: |_| "1 MiB".into(),
        source: "RocksDB Tuning Guide, other options; the expert's rule for latency objectives",
        caveat: None,
        weight: 80,
    },
    Hint {
        id: "write.l0.backlog",
        applies: |s| {
            (s.workload.writes()
                && s.d().l0_files >= 8
                && s.stalls() < 0.005
                && s.int("level0_slowdown_writes_trigger") < 40)
                .then(|| format!("{} L0 files after the run", s.d().l0_files))
        },
        options: &[
            ("level0_file_num_compaction_trigger", Direction::Up),
            ("level0_slowdown_writes_trigger", Direction::Up),
            ("level0_stop_writes_trigger", Direction::Up),
        ],
        suggest: |_| {
            vec![
                ("level0_file_num_compaction_trigger", Value::Int(8)),
                ("level0_slowdown_writes_trigger", Value::Int(40)),
                ("level0_stop_writes_trigger", Value::Int(64)),
            ]
        },
        brief: "lets bursts through before throttling starts",
        why: "slowdowns start at 20 L0 files by default; with L0 already backing up, later triggers let bursts through while compaction catches up, and compacting 8 files at once is cheaper per file",
        typical: |_| "compaction at 8, slowdown 40, stop 64".into(),
        source: "RocksDB wiki, Write Stalls; the expert's rule",
        caveat: None,
        weight: 55,
    },
    Hint {
        id: "io.sync",
        applies: |s| {
            (s.workload.writes() && s.int("bytes_per_sync") == 0)
                .then(|| "background writes are synced only when a file ends".to_string())
        },
        options: &[
            ("bytes_per_sync", Direction::Up),
            ("wal_bytes_per_sync", Direction::Up),
        ],
        suggest: |_| {
            vec![
                ("bytes_per_sync", Value::Int(MIB)),
                ("wal_bytes_per_sync", Value::Int(MIB)),
            ]
        },
        brief: "smoother writeback",
        why: "syncing in small steps while writing avoids large writeback bursts that block foreground I/O",
        typical: |_| "1 MiB".into(),
        source: "RocksDB Tuning Guide, other options",
        caveat: None,
        weight: 20,
    },
];
