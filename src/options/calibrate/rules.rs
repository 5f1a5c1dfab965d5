//! Dependency rules between options: options must agree with each other (L0 triggers in order,
//! memtables to merge below the memtable count, mmap or direct I/O, partitioned filters with the
//! two-level index, ...). Where a rule could move either side, it keeps what the proposal set
//! explicitly and moves the other; every move is a `dependency` correction.

use super::correction::{Correction, Rule};
use super::work::Work;
use crate::options::spec::Scope;
use crate::options::value::{Value, human_bytes};

/// One dependency rule: its name, and the function that brings a candidate in line.
pub(super) type DependencyRule = (&'static str, fn(&mut Work));

/// Every dependency rule, in the order they are applied (later rules see earlier moves).
pub(super) const RULES: &[DependencyRule] = &[
    ("l0_triggers", l0_triggers),
    ("memtables_to_merge", memtables_to_merge),
    ("pending_compaction_limits", pending_compaction_limits),
    ("level1_size", level1_size),
    ("file_within_level", file_within_level),
    ("subcompactions_within_jobs", subcompactions_within_jobs),
    ("mmap_or_direct_io", mmap_or_direct_io),
    ("concurrent_memtable_writes", concurrent_memtable_writes),
    ("unordered_not_pipelined", unordered_not_pipelined),
    (
        "unordered_not_manual_wal_flush",
        unordered_not_manual_wal_flush,
    ),
    ("partitioned_filters_index", partitioned_filters_index),
    ("block_align_uncompressed", block_align_uncompressed),
    ("compression_per_level", compression_per_level),
    ("arena_block", arena_block),
    ("memtable_whole_key_bloom", memtable_whole_key_bloom),
    ("filter_kind_needs_bits", filter_kind_needs_bits),
    ("readahead_initial_within_max", readahead_initial_within_max),
];

/// Options must agree with each other: every rule of [`RULES`] in turn.
pub(super) fn apply_dependencies(w: &mut Work) {
    for (_, rule) in RULES {
        rule(w);
    }
}

/// L0 triggers: compaction < slowdown < stop, with gaps.
fn l0_triggers(w: &mut Work) {
    use Value::*;
    // L0 triggers: compaction < slowdown < stop, with gaps (equal triggers are legal but make
    // writes stall the moment a compaction is due). Gap: a quarter, at least 2 files.
    if let (Some(trig), Some(slow), Some(stop)) = (
        w.int("level0_file_num_compaction_trigger"),
        w.int("level0_slowdown_writes_trigger"),
        w.int("level0_stop_writes_trigger"),
    ) && !(trig < slow && slow < stop)
    {
        let gap = |v: i64| (v / 4).max(2);
        if w.is_touched("level0_file_num_compaction_trigger")
            || !w.is_touched("level0_slowdown_writes_trigger")
        {
            let slow2 = if slow > trig {
                slow
            } else {
                (trig + gap(trig)).min(1024)
            };
            let stop2 = if stop > slow2 {
                stop
            } else {
                (slow2 + gap(slow2)).min(1024)
            };
            w.adjust(
                "level0_slowdown_writes_trigger",
                Int(slow2),
                Rule::Dependency,
                "must be above level0_file_num_compaction_trigger".into(),
            );
            w.adjust(
                "level0_stop_writes_trigger",
                Int(stop2),
                Rule::Dependency,
                "must be above level0_slowdown_writes_trigger".into(),
            );
        } else {
            // The slowdown/stop side was set on purpose: lower the trigger(s) under it.
            let stop2 = if stop > slow {
                stop
            } else {
                (slow + gap(slow)).min(1024)
            };
            w.adjust(
                "level0_stop_writes_trigger",
                Int(stop2),
                Rule::Dependency,
                "must be above level0_slowdown_writes_trigger".into(),
            );
            let trig2 = if trig < slow {
                trig
            } else {
                (slow - gap(slow)).max(1)
            };
            w.adjust(
                "level0_file_num_compaction_trigger",
                Int(trig2),
                Rule::Dependency,
                "must be below level0_slowdown_writes_trigger".into(),
            );
        }
    }
}

/// Merging N memtables needs more than N of them.
fn memtables_to_merge(w: &mut Work) {
    use Value::*;
    // Merging N memtables needs more than N of them.
    if let (Some(merge), Some(n)) = (
        w.int("min_write_buffer_number_to_merge"),
        w.int("max_write_buffer_number"),
    ) && merge >= n
    {
        if w.is_touched("max_write_buffer_number")
            && !w.is_touched("min_write_buffer_number_to_merge")
        {
            w.adjust(
                "min_write_buffer_number_to_merge",
                Int((n - 1).max(1)),
                Rule::Dependency,
                "must be below max_write_buffer_number".into(),
            );
        } else {
            w.adjust(
                "max_write_buffer_number",
                Int((merge + 1).min(32)),
                Rule::Dependency,
                "must exceed min_write_buffer_number_to_merge".into(),
            );
        }
    }
}

/// The soft pending-compaction limit stays below the hard one (0 = off).
fn pending_compaction_limits(w: &mut Work) {
    use Value::*;
    // Soft pending-compaction limit below the hard one (0 = off).
    if let (Some(soft), Some(hard)) = (
        w.int("soft_pending_compaction_bytes_limit"),
        w.int("hard_pending_compaction_bytes_limit"),
    ) && soft > 0
        && hard > 0
        && soft > hard
    {
        if w.is_touched("hard_pending_compaction_bytes_limit")
            && !w.is_touched("soft_pending_compaction_bytes_limit")
        {
            w.adjust(
                "soft_pending_compaction_bytes_limit",
                Int(hard),
                Rule::Dependency,
                "must be <= hard_pending_compaction_bytes_limit".into(),
            );
        } else {
            w.adjust(
                "hard_pending_compaction_bytes_limit",
                Int(soft),
                Rule::Dependency,
                "must be >= soft_pending_compaction_bytes_limit".into(),
            );
        }
    }
}

/// L1 about the size of L0 (tuning guide): within [L0/4, 8 x L0].
fn level1_size(w: &mut Work) {
    use Value::*;
    // L1 should be about the size of L0 (tuning guide): keep it within [L0/4, 8 x L0].
    let level_keys = [
        "max_bytes_for_level_base",
        "write_buffer_size",
        "min_write_buffer_number_to_merge",
        "level0_file_num_compaction_trigger",
    ];
    if level_keys.iter().any(|k| w.is_touched(k))
        && w.text("compaction_style").as_deref() == Some("kCompactionStyleLevel")
        && let (Some(base), Some(wbs), Some(merge), Some(trig)) = (
            w.int("max_bytes_for_level_base"),
            w.int("write_buffer_size"),
            w.int("min_write_buffer_number_to_merge"),
            w.int("level0_file_num_compaction_trigger"),
        )
    {
        let l0 = wbs.saturating_mul(merge).saturating_mul(trig);
        if base < l0 / 4 || base > l0.saturating_mul(8) {
            let target = l0.clamp(1 << 20, 64 << 30);
            w.adjust("max_bytes_for_level_base", Int(target), Rule::Dependency, format!(
                "L1 target should be near the L0 size (write_buffer_size x min_write_buffer_number_to_merge x level0_file_num_compaction_trigger = {})",
                human_bytes(l0)));
        }
    }
}

/// An SST file no bigger than the level it lives in.
fn file_within_level(w: &mut Work) {
    use Value::*;
    // An SST file bigger than the level it lives in makes no sense.
    if (w.is_touched("target_file_size_base") || w.is_touched("max_bytes_for_level_base"))
        && let (Some(t), Some(b)) = (
            w.int("target_file_size_base"),
            w.int("max_bytes_for_level_base"),
        )
        && t > b
    {
        w.adjust(
            "target_file_size_base",
            Int(b),
            Rule::Dependency,
            "must not exceed max_bytes_for_level_base".into(),
        );
    }
}

/// No more subcompactions than background jobs.
fn subcompactions_within_jobs(w: &mut Work) {
    use Value::*;
    if (w.is_touched("max_subcompactions") || w.is_touched("max_background_jobs"))
        && let (Some(s), Some(j)) = (w.int("max_subcompactions"), w.int("max_background_jobs"))
        && s > j
    {
        w.adjust(
            "max_subcompactions",
            Int(j),
            Rule::Dependency,
            "more subcompactions than background jobs cannot run at once".into(),
        );
    }
}

/// mmap and direct I/O exclude each other (DB::Open refuses both).
fn mmap_or_direct_io(w: &mut Work) {
    use Value::*;
    // mmap and direct I/O exclude each other (DB::Open refuses both).
    for (mmap, direct) in [
        ("allow_mmap_reads", "use_direct_reads"),
        (
            "allow_mmap_writes",
            "use_direct_io_for_flush_and_compaction",
        ),
    ] {
        if w.flag(mmap) == Some(true) && w.flag(direct) == Some(true) {
            if w.is_touched(mmap) && !w.is_touched(direct) {
                w.adjust(
                    direct,
                    Bool(false),
                    Rule::Dependency,
                    format!("cannot be combined with {mmap}"),
                );
            } else {
                w.adjust(
                    mmap,
                    Bool(false),
                    Rule::Dependency,
                    format!("cannot be combined with {direct}"),
                );
            }
        }
    }
}

/// Concurrent memtable writes need a skiplist memtable and no in-place updates.
fn concurrent_memtable_writes(w: &mut Work) {
    use Value::*;
    // Concurrent memtable writes need a skiplist memtable and no in-place updates.
    let vector = w.text("memtable_factory").as_deref() == Some("VectorRepFactory");
    let inplace = w.flag("inplace_update_support") == Some(true);
    if (vector || inplace) && w.flag("allow_concurrent_memtable_write") == Some(true) {
        let why = if vector {
            "memtable_factory=VectorRepFactory"
        } else {
            "inplace_update_support"
        };
        w.adjust(
            "allow_concurrent_memtable_write",
            Bool(false),
            Rule::Dependency,
            format!("{why} does not support concurrent memtable writes"),
        );
    }
}

/// Unordered writes exclude pipelined writes.
fn unordered_not_pipelined(w: &mut Work) {
    use Value::*;
    if w.flag("unordered_write") == Some(true) && w.flag("enable_pipelined_write") == Some(true) {
        w.adjust(
            "enable_pipelined_write",
            Bool(false),
            Rule::Dependency,
            "unordered_write cannot be combined with pipelined writes".into(),
        );
    }
}

/// Unordered writes with a manually flushed WAL and one write queue deadlock on the first write.
///
/// Source: RocksDB 11.8.1, db/db_impl/db_impl_write.cc. With `unordered_write` the write goes
/// through `ConcurrentWriteGroupToWAL`, which takes `wal_write_mutex_` and calls `WriteToWAL`;
/// that takes the same (non-recursive) mutex again when `manual_wal_flush && !two_write_queues`.
/// `DB::Open` accepts the combination, and the first `Put` waits on itself forever (seen in this
/// crate's hostile-proposal property test, stack `WriteImplWALOnly` -> `ConcurrentWriteGroupToWAL`
/// -> `WriteToWAL` -> `InstrumentedMutex::Lock`). `two_write_queues` is outside the catalog, so
/// it is read from the file; only a base that turned it on is safe.
fn unordered_not_manual_wal_flush(w: &mut Work) {
    let two_queues = w
        .cand
        .doc
        .get(&Scope::Db.section(), "two_write_queues")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if w.flag("unordered_write") == Some(true)
        && w.flag("manual_wal_flush") == Some(true)
        && !two_queues
    {
        w.adjust(
            "manual_wal_flush",
            Value::Bool(false),
            Rule::Dependency,
            "unordered_write with manual_wal_flush deadlocks RocksDB's first write \
             (WriteToWAL re-locks the WAL mutex) unless two_write_queues is on"
                .into(),
        );
    }
}

/// Partitioned filters need the partitioned (two-level) index.
fn partitioned_filters_index(w: &mut Work) {
    use Value::*;
    // Partitioned filters need the partitioned (two-level) index.
    if w.flag("table.partition_filters") == Some(true)
        && w.text("table.index_type").as_deref() != Some("kTwoLevelIndexSearch")
    {
        if w.is_touched("table.index_type") {
            w.adjust(
                "table.partition_filters",
                Bool(false),
                Rule::Dependency,
                "partitioned filters need index_type=kTwoLevelIndexSearch".into(),
            );
        } else {
            w.adjust(
                "table.index_type",
                Str("kTwoLevelIndexSearch".into()),
                Rule::Dependency,
                "partition_filters needs the two-level index".into(),
            );
        }
    }
}

/// Block alignment only works without compression.
fn block_align_uncompressed(w: &mut Work) {
    use Value::*;
    // Block alignment only works without compression.
    if w.flag("table.block_align") == Some(true) {
        let comp = w.text("compression").unwrap_or_default();
        let bottom = w.text("bottommost_compression").unwrap_or_default();
        let compressed = comp != "kNoCompression"
            || !(bottom == "kNoCompression" || bottom == "kDisableCompressionOption");
        if compressed {
            w.adjust(
                "table.block_align",
                Bool(false),
                Rule::Dependency,
                "block_align requires compression=kNoCompression".into(),
            );
        }
    }
}

/// A per-level compression list would override a proposed compression: dropped.
fn compression_per_level(w: &mut Work) {
    // A per-level compression list overrides `compression`: drop it when compression is changed.
    if w.is_touched("compression") {
        let cf = Scope::Cf.section();
        if let Some(list) = w
            .cand
            .doc
            .get(&cf, "compression_per_level")
            .map(str::to_string)
            && !list.is_empty()
        {
            w.cand.doc.set(&cf, "compression_per_level", "");
            w.corrections.push(Correction {
                key: "compression_per_level".into(),
                from: Some(list),
                to: Some(String::new()),
                rule: Rule::Dependency,
                reason: "a per-level list would override the proposed compression".into(),
            });
        }
    }
}

/// An arena block at most an eighth of the memtable.
fn arena_block(w: &mut Work) {
    use Value::*;
    // An arena block above an eighth of the memtable (RocksDB's own choice when it is 0) makes
    // every memtable allocate far ahead of its data: a 244 MiB block cost a write benchmark
    // 99.7% of its throughput.
    if let (Some(arena), Some(wbs)) = (w.int("arena_block_size"), w.int("write_buffer_size"))
        && (w.is_touched("arena_block_size") || w.is_touched("write_buffer_size"))
    {
        let cap = ((wbs / 8) & !4095).max(4096);
        if arena > cap {
            w.adjust(
                "arena_block_size",
                Int(cap),
                Rule::Dependency,
                format!(
                    "at most 1/8 of write_buffer_size ({}): larger blocks allocate memtable memory far ahead of its data",
                    human_bytes(wbs)
                ),
            );
        }
    }
}

/// The memtable bloom for whole keys needs a size.
fn memtable_whole_key_bloom(w: &mut Work) {
    use Value::*;
    // The memtable bloom for whole keys needs a size.
    if w.is_touched("memtable_whole_key_filtering")
        && w.flag("memtable_whole_key_filtering") == Some(true)
        && w.float("memtable_prefix_bloom_size_ratio") == Some(0.0)
    {
        w.adjust(
            "memtable_prefix_bloom_size_ratio",
            Double(0.1),
            Rule::Dependency,
            "memtable_whole_key_filtering needs a memtable bloom (ratio > 0)".into(),
        );
    }
}

/// A filter kind without filter bits has no effect (said, not changed).
fn filter_kind_needs_bits(w: &mut Work) {
    // A filter kind without filter bits has no effect.
    if w.is_touched("table.filter_type") && w.float("table.filter_bits_per_key") == Some(0.0) {
        w.corrections.push(Correction {
            key: "table.filter_type".into(),
            from: w.text("table.filter_type"),
            to: None,
            rule: Rule::Dependency,
            reason: "no effect without table.filter_bits_per_key > 0".into(),
        });
    }
}

/// The initial readahead no larger than the maximum.
fn readahead_initial_within_max(w: &mut Work) {
    use Value::*;
    if let (Some(init), Some(max)) = (
        w.int("table.initial_auto_readahead_size"),
        w.int("table.max_auto_readahead_size"),
    ) && init > max
    {
        w.adjust(
            "table.initial_auto_readahead_size",
            Int(max),
            Rule::Dependency,
            "must not exceed table.max_auto_readahead_size".into(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::catalog::Catalog;
    use crate::options::config::Config;

    /// A candidate from the defaults with `set` applied (as the proposal set them: touched).
    fn work<'c>(cat: &'c Catalog, base: &'c Config, set: &[(&'static str, Value)]) -> Work<'c> {
        let mut cand = base.clone();
        let mut touched = Vec::new();
        for (k, v) in set {
            let e = cat
                .get(k)
                .unwrap_or_else(|| panic!("{k} not in the catalog"));
            cand.set(e, v);
            touched.push(e.spec.key);
        }
        Work {
            cat,
            base,
            cand,
            touched,
            corrections: Vec::new(),
        }
    }

    /// Each rule on its own: on a candidate that breaks it, it records a dependency correction
    /// of the key it must move (and the candidate then holds); on the defaults it changes
    /// nothing. Every rule of the table has its case here.
    #[test]
    fn each_rule_on_its_own() {
        use Value::*;
        let cat = crate::options::catalog().unwrap();
        let base = crate::options::default_config().unwrap();
        const MIB: i64 = 1 << 20;
        const GIB: i64 = 1 << 30;
        type Case = (&'static str, Vec<(&'static str, Value)>, &'static str);
        let cases: Vec<Case> = vec![
            (
                "l0_triggers",
                vec![("level0_file_num_compaction_trigger", Int(30))],
                "level0_slowdown_writes_trigger",
            ),
            (
                "memtables_to_merge",
                vec![("min_write_buffer_number_to_merge", Int(4))],
                "max_write_buffer_number",
            ),
            (
                "pending_compaction_limits",
                vec![("soft_pending_compaction_bytes_limit", Int(512 * GIB))],
                "hard_pending_compaction_bytes_limit",
            ),
            (
                "level1_size",
                vec![("max_bytes_for_level_base", Int(MIB))],
                "max_bytes_for_level_base",
            ),
            (
                "file_within_level",
                vec![("target_file_size_base", Int(4 * GIB))],
                "target_file_size_base",
            ),
            (
                "subcompactions_within_jobs",
                vec![("max_subcompactions", Int(16))],
                "max_subcompactions",
            ),
            (
                "mmap_or_direct_io",
                vec![
                    ("allow_mmap_reads", Bool(true)),
                    ("use_direct_reads", Bool(true)),
                ],
                "allow_mmap_reads",
            ),
            (
                "concurrent_memtable_writes",
                vec![("inplace_update_support", Bool(true))],
                "allow_concurrent_memtable_write",
            ),
            (
                "unordered_not_pipelined",
                vec![
                    ("unordered_write", Bool(true)),
                    ("enable_pipelined_write", Bool(true)),
                ],
                "enable_pipelined_write",
            ),
            (
                "unordered_not_manual_wal_flush",
                vec![
                    ("unordered_write", Bool(true)),
                    ("manual_wal_flush", Bool(true)),
                ],
                "manual_wal_flush",
            ),
            (
                "partitioned_filters_index",
                vec![("table.partition_filters", Bool(true))],
                "table.index_type",
            ),
            (
                "block_align_uncompressed",
                vec![
                    ("table.block_align", Bool(true)),
                    ("compression", Str("kLZ4Compression".into())),
                ],
                "table.block_align",
            ),
            (
                "arena_block",
                vec![("arena_block_size", Int(64 * MIB))],
                "arena_block_size",
            ),
            (
                "memtable_whole_key_bloom",
                vec![("memtable_whole_key_filtering", Bool(true))],
                "memtable_prefix_bloom_size_ratio",
            ),
            (
                "filter_kind_needs_bits",
                vec![("table.filter_type", Str("ribbon".into()))],
                "table.filter_type",
            ),
            (
                "readahead_initial_within_max",
                vec![
                    ("table.initial_auto_readahead_size", Int(8 * MIB)),
                    ("table.max_auto_readahead_size", Int(MIB)),
                ],
                "table.initial_auto_readahead_size",
            ),
        ];
        for (name, rule) in RULES {
            if *name == "compression_per_level" {
                continue; // a raw key outside the catalog: its own test below
            }
            let (_, set, moved) = cases
                .iter()
                .find(|(n, ..)| n == name)
                .unwrap_or_else(|| panic!("rule {name} has no case in this test"));
            let mut w = work(cat, &base, set);
            rule(&mut w);
            assert!(
                w.corrections
                    .iter()
                    .any(|c| c.key == *moved && c.rule == Rule::Dependency),
                "{name}: {:?}",
                w.corrections
            );
            let mut calm = work(cat, &base, &[]);
            rule(&mut calm);
            assert!(
                calm.corrections.is_empty(),
                "{name} on the defaults: {:?}",
                calm.corrections
            );
        }
    }

    /// A proposed compression drops a per-level compression list that would override it.
    #[test]
    fn a_proposed_compression_drops_a_per_level_list() {
        let cat = crate::options::catalog().unwrap();
        let mut base = crate::options::default_config().unwrap();
        let cf = Scope::Cf.section();
        base.doc.set(
            &cf,
            "compression_per_level",
            "kNoCompression:kLZ4Compression",
        );
        let mut w = work(cat, &base, &[("compression", Value::Str("kZSTD".into()))]);
        compression_per_level(&mut w);
        assert_eq!(w.cand.doc.get(&cf, "compression_per_level"), Some(""));
        assert_eq!(w.corrections.len(), 1);
        let mut calm = work(cat, &base, &[]);
        compression_per_level(&mut calm);
        assert!(calm.corrections.is_empty());
    }
}
