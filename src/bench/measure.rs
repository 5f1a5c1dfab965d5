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
}

impl Diagnostics {
    pub fn from_counters(c: &RocksCounters, seconds: f64, threads: usize) -> Diagnostics {
        let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
        let wall_us = seconds * 1e6 * threads.max(1) as f64;
        Diagnostics {
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
        let d = Diagnostics::from_counters(&c, 1.0, 2);
        assert_eq!(d.stall_share, Some(0.25));
        assert_eq!(d.write_amplification, Some(3.0));
        assert_eq!(d.block_cache_hit_rate, Some(0.75));
        assert_eq!(d.bloom_usefulness, Some(0.9));
        assert_eq!(d.bloom_false_positive_rate, Some(0.1));
        let none = Diagnostics::from_counters(&RocksCounters::default(), 1.0, 1);
        assert_eq!(none.write_amplification, None);
        assert_eq!(none.block_cache_hit_rate, None);
    }
}
