//! What a benchmark run measures, the same type for every engine, and the processed diagnostics
//! derived from RocksDB's counters (stall share, write amplification, cache hit rate, bloom
//! usefulness) that a tuner — or a small model — can reason with.

use serde::{Deserialize, Serialize};

use super::workload::Workload;

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    pub fn from_histogram(h: &hdrhistogram::Histogram<u64>) -> Latency {
        // Recorded in nanoseconds.
        let us = |v: u64| v as f64 / 1000.0;
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.50)),
            p95: us(h.value_at_quantile(0.95)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }
}

/// Counters RocksDB keeps (deltas over the measured phase) and the shape of the LSM tree after.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct RocksCounters {
    pub stall_micros: u64,
    pub user_bytes_written: u64,
    pub flush_write_bytes: u64,
    pub compact_read_bytes: u64,
    pub compact_write_bytes: u64,
    pub block_cache_hit: u64,
    pub block_cache_miss: u64,
    pub bloom_useful: u64,
    pub bloom_full_positive: u64,
    pub bloom_full_true_positive: u64,
    pub memtable_hit: u64,
    pub l0_files: u64,
    pub sst_bytes: u64,
    pub pending_compaction_bytes: u64,
    /// Write stalls (delays + stops) by cause: too many L0 files, too many memtables, too many
    /// pending compaction bytes.
    #[serde(default)]
    pub stalls_l0: u64,
    #[serde(default)]
    pub stalls_memtable: u64,
    #[serde(default)]
    pub stalls_pending_compaction: u64,
    /// CPU time compactions used.
    #[serde(default)]
    pub compaction_cpu_micros: u64,
}

/// Processed diagnostics: ratios a person or a model can act on.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Diagnostics {
    /// Share of wall time writers spent stalled (stall micros / (threads x elapsed)).
    pub stall_share: Option<f64>,
    /// (flush + compaction bytes written) / user bytes written.
    pub write_amplification: Option<f64>,
    pub block_cache_hit_rate: Option<f64>,
    /// Share of filter checks that avoided a read (useful / (useful + positive)).
    pub bloom_usefulness: Option<f64>,
    /// Share of filter positives that were false.
    pub bloom_false_positive_rate: Option<f64>,
    pub l0_files: u64,
    /// What most write stalls were caused by, when there were any.
    #[serde(default)]
    pub stall_cause: Option<StallCause>,
    /// Share of the measured phase's CPU time spent in compactions.
    #[serde(default)]
    pub compaction_cpu_share: Option<f64>,
}

/// Why RocksDB slowed or stopped writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StallCause {
    /// Too many L0 files (level0_slowdown/stop_writes_trigger).
    L0Files,
    /// Every memtable full while flushes run (max_write_buffer_number).
    Memtables,
    /// Too many bytes waiting for compaction (soft/hard_pending_compaction_bytes_limit).
    PendingCompaction,
}

impl StallCause {
    /// In plain words.
    pub fn describe(self) -> &'static str {
        match self {
            StallCause::L0Files => "too many L0 files (level0_slowdown/stop_writes_trigger)",
            StallCause::Memtables => {
                "all memtables full while a flush runs (max_write_buffer_number)"
            }
            StallCause::PendingCompaction => {
                "too many bytes pending compaction (soft/hard_pending_compaction_bytes_limit)"
            }
        }
    }
}

impl Diagnostics {
    /// From counter deltas over a measured phase of `seconds` with `threads` client threads
    /// that used `cpu_seconds` of CPU (when known).
    pub fn from_counters(
        c: &RocksCounters,
        seconds: f64,
        threads: usize,
        cpu_seconds: Option<f64>,
    ) -> Diagnostics {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let wall_us = seconds * 1e6 * threads.max(1) as f64;
        let causes = [
            (c.stalls_l0, StallCause::L0Files),
            (c.stalls_memtable, StallCause::Memtables),
            (c.stalls_pending_compaction, StallCause::PendingCompaction),
        ];
        let stall_cause = causes
            .iter()
            .filter(|(n, _)| *n > 0)
            .max_by_key(|(n, _)| *n)
            .map(|(_, cause)| *cause);
        Diagnostics {
            stall_cause,
            compaction_cpu_share: cpu_seconds
                .filter(|&s| s > 0.0)
                .map(|s| (c.compaction_cpu_micros as f64 / 1e6 / s).min(1.0)),
            stall_share: (wall_us > 0.0).then(|| (c.stall_micros as f64 / wall_us).min(1.0)),
            write_amplification: ratio(
                c.flush_write_bytes + c.compact_write_bytes,
                c.user_bytes_written,
            ),
            block_cache_hit_rate: ratio(c.block_cache_hit, c.block_cache_hit + c.block_cache_miss),
            bloom_usefulness: ratio(c.bloom_useful, c.bloom_useful + c.bloom_full_positive),
            bloom_false_positive_rate: ratio(
                c.bloom_full_positive
                    .saturating_sub(c.bloom_full_true_positive),
                c.bloom_full_positive,
            ),
            l0_files: c.l0_files,
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measurement {
    /// `inprocess` or `db_bench <version>`.
    pub engine: String,
    pub workload: Workload,
    /// Operations in the measured phase (all threads).
    pub ops: u64,
    pub seconds: f64,
    pub ops_per_sec: f64,
    /// (key + value bytes) x ops / seconds, in MiB/s.
    pub mb_per_sec: f64,
    pub latency_us: Latency,
    /// Reads that found their key, of reads (point reads only).
    pub reads_found: Option<(u64, u64)>,
    pub counters: Option<RocksCounters>,
    pub diagnostics: Option<Diagnostics>,
    pub size_on_disk: u64,
    /// User + system CPU seconds of the measured phase.
    pub cpu_seconds: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Seconds spent filling the database before the measured phase.
    pub fill_seconds: f64,
    /// How the run's memory was confined, when it was (a cgroup limit, the page cache
    /// dropped before it): what the report states about larger-than-memory runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confinement: Option<String>,
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_are_ratios_or_absent() {
        let c = RocksCounters {
            stall_micros: 500_000,
            user_bytes_written: 100,
            flush_write_bytes: 100,
            compact_write_bytes: 200,
            block_cache_hit: 3,
            block_cache_miss: 1,
            bloom_useful: 90,
            bloom_full_positive: 10,
            bloom_full_true_positive: 9,
            ..Default::default()
        };
        let c = RocksCounters {
            stalls_l0: 3,
            stalls_memtable: 5,
            compaction_cpu_micros: 250_000,
            ..c
        };
        let d = Diagnostics::from_counters(&c, 1.0, 2, Some(1.0));
        assert_eq!(d.stall_cause, Some(StallCause::Memtables));
        assert_eq!(d.compaction_cpu_share, Some(0.25));
        assert_eq!(d.stall_share, Some(0.25));
        assert_eq!(d.write_amplification, Some(3.0));
        assert_eq!(d.block_cache_hit_rate, Some(0.75));
        assert_eq!(d.bloom_usefulness, Some(0.9));
        assert_eq!(d.bloom_false_positive_rate, Some(0.1));
        let none = Diagnostics::from_counters(&RocksCounters::default(), 1.0, 1, None);
        assert_eq!(none.stall_cause, None);
        assert_eq!(none.write_amplification, None);
        assert_eq!(none.block_cache_hit_rate, None);
    }
}

/// Live progress of a run: operations done in the current phase (the worker reports it).
#[derive(Debug, Default)]
pub struct Progress {
    pub ops: std::sync::atomic::AtomicU64,
    pub filling: std::sync::atomic::AtomicBool,
}

/// A latency histogram in nanoseconds, up to an hour, 3 significant digits.
pub fn new_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000_000, 3)
        .expect("static bounds are valid")
}

/// What one measuring thread did: its latencies, operations, and point reads with hits.
pub struct ThreadResult {
    pub hist: hdrhistogram::Histogram<u64>,
    pub ops: u64,
    pub reads: u64,
    pub found: u64,
}

impl ThreadResult {
    /// Nothing done yet.
    pub fn new() -> ThreadResult {
        ThreadResult {
            hist: new_histogram(),
            ops: 0,
            reads: 0,
            found: 0,
        }
    }

    /// A point read, and whether it found its key.
    pub fn read(&mut self, hit: bool) {
        self.reads += 1;
        self.found += u64::from(hit);
    }

    /// One operation done, `latency` after it was due (at least a nanosecond is recorded);
    /// every 256 are added to the live count in `progress`.
    pub fn done(&mut self, latency: std::time::Duration, progress: &Progress) {
        self.hist
            .saturating_record(latency.as_nanos().max(1) as u64);
        self.ops += 1;
        if self.ops.is_multiple_of(256) {
            progress
                .ops
                .fetch_add(256, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Default for ThreadResult {
    fn default() -> ThreadResult {
        ThreadResult::new()
    }
}

/// Join a benchmark's threads: each one's result, a panic as an error naming `what` ran.
pub fn join_all<T>(
    handles: Vec<std::thread::ScopedJoinHandle<'_, anyhow::Result<T>>>,
    what: &str,
) -> Vec<anyhow::Result<T>> {
    handles
        .into_iter()
        .map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("a {what} thread panicked")))
        })
        .collect()
}
