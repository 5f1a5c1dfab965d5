//! The expert proposer: RocksDB tuning-guide and advisor-style rules applied to the workload,
//! the machine facts and the processed diagnostics of the best configuration. Deterministic; it
//! is the fallback when no model and no endpoint is available, and a baseline for comparison.
//!
//! Each rule is a small bundle of related changes with the reason a tuning guide gives. Rules are
//! ordered by what the diagnostics show (stalls first for writers, cache misses and filterless
//! point reads first for readers); a rule is skipped when its changes are already in effect or
//! were tried and not kept.

use anyhow::Result;

use super::proposer::{Context, Proposal, Proposer, Reply, tried};
use crate::bench::{Kind, Workload};
use crate::options::value::Value;

/// One rule's proposal: changes and the reason.
struct Advice {
    name: &'static str,
    changes: Vec<(&'static str, Value)>,
    reason: String,
}

const MIB: i64 = 1 << 20;

fn writes(w: &Workload) -> bool {
    w.writes()
}

fn point_reads(w: &Workload) -> bool {
    w.point_reads()
}

fn scans(w: &Workload) -> bool {
    w.scans()
}

/// The rules that apply, most pressing first.
fn advice(ctx: &Context) -> Vec<Advice> {
    let kind = ctx.workload;
    let best = ctx.best;
    let cat = ctx.catalog;
    let int = |k: &str| best.int(cat, k);
    let d = ctx.best_diagnostics.unwrap_or_default();
    let cores = ctx.facts.cores.max(1) as i64;
    let budget = ctx.memory_budget as i64;
    let w = ctx.workload;
    let data = (w.num as i64) * (w.key_size + w.value_size) as i64;
    let mut out: Vec<Advice> = Vec::new();

    let stalls = d.stall_share.unwrap_or(0.0);
    let cache_hit = d.block_cache_hit_rate.unwrap_or(0.0);

    // --- reads ---
    let mut reads: Vec<Advice> = Vec::new();
    if point_reads(kind) && best.float(cat, "table.filter_bits_per_key") < 1.0 {
        reads.push(Advice {
            name: "bloom filter",
            changes: vec![
                ("table.filter_bits_per_key", Value::Double(10.0)),
                ("table.filter_type", Value::Str("bloom".into())),
            ],
            reason: "point reads with no filter read a data block in every level that lacks \
                     the key; a 10-bit bloom filter skips ~99% of those"
                .into(),
        });
    }
    if point_reads(kind) || scans(kind) {
        let want = (data * 2).clamp(64 * MIB, (budget / 2).max(64 * MIB));
        let want = (want / MIB) * MIB;
        if int("table.block_cache_size") < want && cache_hit < 0.99 {
            reads.push(Advice {
                name: "block cache",
                changes: vec![("table.block_cache_size", Value::Int(want))],
                reason: format!(
                    "block cache hit rate {:.0}%: a cache holding the working set ({} MiB of \
                     data) turns disk reads into memory reads",
                    cache_hit * 100.0,
                    data / MIB
                ),
            });
        }
    }
    if point_reads(kind) {
        reads.push(Advice {
            name: "data block hash index",
            changes: vec![(
                "table.data_block_index_type",
                Value::Str("kDataBlockBinaryAndHash".into()),
            )],
            reason: "a hash index inside data blocks finds a key without binary search".into(),
        });
        reads.push(Advice {
            name: "memtable bloom",
            changes: vec![
                ("memtable_prefix_bloom_size_ratio", Value::Double(0.1)),
                ("memtable_whole_key_filtering", Value::Bool(true)),
            ],
            reason: "a bloom filter on the memtable answers misses without a skiplist search"
                .into(),
        });
        if ctx.workload.kind != Kind::ReadRandom {
            reads.push(Advice {
                name: "filters for hits",
                changes: vec![("optimize_filters_for_hits", Value::Bool(true))],
                reason: "keys read mostly exist: the last level's filter rarely helps".into(),
            });
        }
    }
    if scans(kind) {
        reads.push(Advice {
            name: "larger blocks for scans",
            changes: vec![("table.block_size", Value::Int(16 * 1024))],
            reason: "scans read consecutive keys: larger blocks mean fewer block reads".into(),
        });
    }

    // --- writes ---
    let mut wr: Vec<Advice> = Vec::new();
    let latency = matches!(
        ctx.goal.objective,
        crate::tune::objective::Metric::P99 | crate::tune::objective::Metric::P999
    );
    if writes(kind) && latency {
        // Tail latency of writes comes from stalls and from long compactions holding L0 back.
        if int("max_subcompactions") < cores.min(4) {
            wr.push(Advice {
                name: "subcompactions for the tail",
                changes: vec![("max_subcompactions", Value::Int(cores.min(4)))],
                reason: format!(
                    "a latency objective: splitting each L0->L1 compaction over {} threads \
                     shortens it, so L0 files pile up less and writes stall less often",
                    cores.min(4)
                ),
            });
        }
        if int("bytes_per_sync") == 0 {
            wr.push(Advice {
                name: "smooth I/O for the tail",
                changes: vec![("bytes_per_sync", Value::Int(MIB))],
                reason: "a latency objective: syncing files every 1 MiB spreads writeback out \
                         instead of long flush bursts that stall foreground operations"
                    .into(),
            });
        }
    }
    if writes(kind) {
        if w.threads > 1 && !best.flag(cat, "enable_pipelined_write") {
            wr.push(Advice {
                name: "pipelined writes",
                changes: vec![("enable_pipelined_write", Value::Bool(true))],
                reason: format!(
                    "{} writer threads: with pipelining one group writes the WAL while the \
                     previous one inserts into the memtable",
                    w.threads
                ),
            });
        }
        let wb = int("write_buffer_size");
        if stalls < 0.01 && d.l0_files < 8 && wb > 8 * MIB {
            // No back-pressure: the memtable's cost is the insert itself, a skiplist walk whose
            // cache misses grow with its size.
            let target = (wb / 2).max(8 * MIB);
            wr.push(Advice {
                name: "smaller memtables",
                changes: vec![
                    ("write_buffer_size", Value::Int(target)),
                    ("max_write_buffer_number", Value::Int(4)),
                ],
                reason: format!(
                    "writes stall {:.1}% of the time with {} L0 files: flushing keeps up, so a \
                     smaller memtable ({} MiB) makes each insert cheaper (fewer cache misses \
                     in the skiplist)",
                    stalls * 100.0,
                    d.l0_files,
                    target / MIB
                ),
            });
        } else if stalls >= 0.01 || d.l0_files >= 8 {
            let target = (wb * 2).min((budget / 8).max(wb));
            if target > wb {
                wr.push(Advice {
                    name: "larger memtables",
                    changes: vec![
                        ("write_buffer_size", Value::Int(target)),
                        ("max_write_buffer_number", Value::Int(4)),
                        ("target_file_size_base", Value::Int(target)),
                        ("max_bytes_for_level_base", Value::Int(target * 4)),
                    ],
                    reason: format!(
                        "writes stall {:.1}% of the time, write amplification {:.1}: larger \
                         memtables flush less often, into fewer and larger L0 files",
                        stalls * 100.0,
                        d.write_amplification.unwrap_or(0.0)
                    ),
                });
            }
        }
        let jobs = (cores * 2).clamp(4, 16);
        if int("max_background_jobs") < jobs {
            wr.push(Advice {
                name: "background jobs",
                changes: vec![
                    ("max_background_jobs", Value::Int(jobs)),
                    ("max_subcompactions", Value::Int(cores.min(4))),
                ],
                reason: format!(
                    "{cores} cores: more flush/compaction threads keep L0 from backing up"
                ),
            });
        }
        if (stalls > 0.0 || d.l0_files >= 8) && int("level0_slowdown_writes_trigger") < 40 {
            wr.push(Advice {
                name: "later write throttling",
                changes: vec![
                    ("level0_file_num_compaction_trigger", Value::Int(8)),
                    ("level0_slowdown_writes_trigger", Value::Int(40)),
                    ("level0_stop_writes_trigger", Value::Int(64)),
                ],
                reason: format!(
                    "{} L0 files and stalls {:.1}% of the time: slowdowns start at 20 L0 files \
                     by default; a later trigger lets bursts through while compaction catches up",
                    d.l0_files,
                    stalls * 100.0
                ),
            });
        }
        if best.text(cat, "compression") != "kNoCompression" {
            wr.push(Advice {
                name: "no compression above the last level",
                changes: vec![
                    ("compression", Value::Str("kNoCompression".into())),
                    (
                        "bottommost_compression",
                        Value::Str("kLZ4Compression".into()),
                    ),
                ],
                reason: format!(
                    "{cores} cores shared by writers and compaction: data rewritten by \
                     compaction is compressed once, in the last level"
                ),
            });
        }
        wr.push(Advice {
            name: "smoother syncs",
            changes: vec![
                ("bytes_per_sync", Value::Int(MIB)),
                ("wal_bytes_per_sync", Value::Int(MIB)),
            ],
            reason: "writing back in 1 MiB steps avoids large sync stalls".into(),
        });
    }

    // Order: what the diagnostics point at first. The big read levers (filter, cache) lead for
    // readers; for mixed workloads the write rules come before the minor read ones.
    let major = reads
        .iter()
        .take_while(|a| matches!(a.name, "bloom filter" | "block cache"))
        .count();
    let minor = reads.split_off(major);
    let write_pressure = stalls > 0.01 || d.l0_files > 8;
    if write_pressure || !point_reads(kind) && !scans(kind) {
        out.extend(wr);
        out.extend(reads);
        out.extend(minor);
    } else {
        out.extend(reads);
        out.extend(wr);
        out.extend(minor);
    }
    out
}

/// The rule-based proposer.
pub struct ExpertProposer;

impl Proposer for ExpertProposer {
    fn name(&self) -> String {
        "expert".into()
    }

    fn propose(&mut self, ctx: &Context, _on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        let tried = tried(ctx.history);
        let already = |key: &str, v: &Value| {
            ctx.catalog
                .get(key)
                .is_some_and(|e| crate::options::access::same_value(&ctx.best.get(e), v))
        };
        let pick = advice(ctx).into_iter().find(|a| {
            let new: Vec<&(&str, Value)> =
                a.changes.iter().filter(|(k, v)| !already(k, v)).collect();
            !new.is_empty()
                && !new
                    .iter()
                    .all(|(k, v)| tried.contains(&(k.to_string(), v.to_string())))
        });
        let (name, reason, changes) = match pick {
            Some(a) => (a.name, a.reason, a.changes),
            None => (
                "nothing left",
                "every rule that applies was tried".into(),
                vec![],
            ),
        };
        let changes: Vec<(String, Value)> = changes
            .into_iter()
            .take(ctx.schema.max_changes)
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        Ok(Proposal::single(Reply::typed(
            &format!("{name}: {reason}"),
            &changes,
        )))
    }
}
