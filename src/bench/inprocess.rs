//! The in-process benchmark: open RocksDB from an OPTIONS document through RocksDB's own loader
//! (as a user's program would), fill it when the workload reads, then run the measured phase on
//! `threads` threads with a latency histogram per thread, and collect RocksDB's counters, CPU
//! time and peak RSS. Runs inside the worker process (see `worker`), never in the caller.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rocksdb::{DB, ReadOptions, WriteOptions};

pub use super::measure::Progress;
use super::measure::{
    Diagnostics, Latency, Measurement, RocksCounters, ThreadResult, dir_size, join_all,
    new_histogram,
};
use super::mix::Rate;
use super::sampler::Sampler;
use super::workload::{Kind, Op, OpChooser, ValuePool, Workload, Zipfian, make_key};
use crate::options::{OptionsDoc, rocks};
use crate::rng::Rng;

/// CPU seconds (user + system) of this process so far, and its peak RSS in bytes.
fn rusage() -> (f64, u64) {
    // SAFETY: getrusage writes into the zeroed struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as u64 * 1024,
    )
}

/// Fill `[0, num)`: YCSB and operation mixes (mixgraph, workload files) load every key once
/// (scrambled order); db_bench-style workloads write `num` random keys with replacement, as
/// `db_bench --benchmarks=fillrandom` does.
fn fill(db: &DB, w: &Workload, chooser: &OpChooser, progress: &Progress) -> Result<()> {
    progress.filling.store(true, Ordering::Relaxed);
    let mut rng = Rng::new(w.seed ^ 0xF111);
    let mut values = ValuePool::new(w.seed, w.compression_ratio, w.max_value_size());
    let mut key = Vec::with_capacity(w.key_size);
    let ycsb = OpChooser::wants_zipfian(w.kind) || w.mix.is_some();
    // A stride coprime with num visits every key once.
    let stride = {
        let mut s = (w.num / 2) | 1;
        while gcd(s, w.num) != 1 {
            s += 2;
        }
        s % w.num.max(1)
    };
    let wo = WriteOptions::default();
    for i in 0..w.num {
        let k = if ycsb {
            (i.wrapping_mul(stride.max(1))) % w.num
        } else {
            rng.below(w.num)
        };
        make_key(k, chooser.key_len(k), &mut key);
        let len = chooser.value_len(&mut rng);
        db.put_opt(&key, values.next(len), &wo)
            .map_err(|e| anyhow!("fill: {e}"))?;
        if i % 1024 == 0 {
            progress.ops.store(i, Ordering::Relaxed);
        }
    }
    progress.filling.store(false, Ordering::Relaxed);
    progress.ops.store(0, Ordering::Relaxed);
    Ok(())
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One measuring thread.
#[allow(clippy::too_many_arguments)]
fn worker_thread(
    db: &DB,
    w: &Workload,
    id: usize,
    chooser: &OpChooser,
    latest: &AtomicU64,
    start: Instant,
    deadline: Option<Instant>,
    progress: &Progress,
) -> Result<ThreadResult> {
    let mut rng = Rng::new(w.seed.wrapping_add(1 + id as u64 * 7919));
    let mut values = ValuePool::new(
        w.seed.wrapping_add(id as u64),
        w.compression_ratio,
        w.max_value_size(),
    );
    let rate = w.mix.as_ref().and_then(|m| m.rate.clone());
    // The time the next operation is due under a target rate. Latency is measured from it, not
    // from when the operation started, so a slow database is not hidden by a late start
    // (YCSB's "intended" latency).
    let mut due = start;
    let mut keys: Vec<Vec<u8>> = Vec::new();
    let mut tally = ThreadResult::new();
    let mut key = Vec::with_capacity(w.key_size);
    let limit = w.ops_per_thread();
    let mut seq = id as u64 * limit;
    // Built once: rust-rocksdb's get/put without options build a fresh ReadOptions /
    // WriteOptions through FFI on every call, which costs measurably per operation.
    let (ro, wo) = (ReadOptions::default(), WriteOptions::default());
    loop {
        if let Some(d) = deadline {
            if tally.ops.is_multiple_of(64) && Instant::now() >= d {
                break;
            }
        } else if tally.ops >= limit {
            break;
        }
        let op = if w.kind == Kind::FillSeq {
            seq += 1;
            Op::Write((seq - 1) % w.num)
        } else {
            chooser.next(&mut rng, latest.load(Ordering::Relaxed))
        };
        let begin = match &rate {
            None => Instant::now(),
            Some(r) => pace(r, start, &mut due, w.threads),
        };
        let (read, write) = match op {
            Op::Read(k) => (Some(k), None),
            Op::Write(k) => (None, Some(k)),
            Op::ReadModifyWrite(k) => (Some(k), Some(k)),
            _ => (None, None),
        };
        if let Some(k) = read {
            make_key(k, chooser.key_len(k), &mut key);
            let hit = db
                .get_pinned_opt(&key, &ro)
                .map_err(|e| anyhow!("get: {e}"))?;
            tally.read(hit.is_some());
        }
        if let Some(k) = write {
            make_key(k, chooser.key_len(k), &mut key);
            let len = chooser.value_len(&mut rng);
            db.put_opt(&key, values.next(len), &wo)
                .map_err(|e| anyhow!("put: {e}"))?;
        }
        match op {
            Op::Read(_) | Op::Write(_) | Op::ReadModifyWrite(_) => {}
            Op::Scan(k, n) => {
                make_key(k, chooser.key_len(k), &mut key);
                let mut it = db.raw_iterator_opt(ReadOptions::default());
                it.seek(&key);
                let mut i = 0;
                while it.valid() && i < n {
                    std::hint::black_box(it.value());
                    it.next();
                    i += 1;
                }
                it.status().map_err(|e| anyhow!("scan: {e}"))?;
            }
            Op::Insert => {
                let k = latest.fetch_add(1, Ordering::Relaxed) + 1;
                make_key(k, chooser.key_len(k), &mut key);
                let len = chooser.value_len(&mut rng);
                db.put_opt(&key, values.next(len), &wo)
                    .map_err(|e| anyhow!("insert: {e}"))?;
            }
            Op::Delete(k) => {
                make_key(k, chooser.key_len(k), &mut key);
                db.delete_opt(&key, &wo)
                    .map_err(|e| anyhow!("delete: {e}"))?;
            }
            Op::MultiGet(n) => {
                let at = latest.load(Ordering::Relaxed);
                keys.resize_with(n as usize, Vec::new);
                for buf in keys.iter_mut() {
                    let k = chooser.key(&mut rng, at);
                    make_key(k, chooser.key_len(k), buf);
                }
                for r in db.multi_get_opt(keys.iter(), &ro) {
                    tally.read(r.map_err(|e| anyhow!("multiget: {e}"))?.is_some());
                }
            }
        }
        tally.done(begin.elapsed(), progress);
    }
    Ok(tally)
}

/// Wait until the next operation is due under `rate` (ops/s over `threads` threads) and return
/// the time it was due. A thread that falls more than a second behind starts afresh instead of
/// bursting to catch up.
fn pace(rate: &Rate, start: Instant, due: &mut Instant, threads: usize) -> Instant {
    let now = Instant::now();
    if *due + Duration::from_secs(1) < now {
        *due = now;
    }
    let at = *due;
    if at > now {
        std::thread::sleep(at - now);
    }
    let per_thread = rate.at(at.duration_since(start).as_secs_f64()) / threads.max(1) as f64;
    *due = at + Duration::from_secs_f64(1.0 / per_thread.max(1e-3));
    at
}

/// Run a workload against a fresh database at `db_dir` opened from `doc`.
pub fn run(
    doc: &OptionsDoc,
    w: &Workload,
    db_dir: &Path,
    progress: &Progress,
) -> Result<Measurement> {
    w.validate().map_err(|e| anyhow!(e))?;
    let (db, loaded) =
        rocks::open_with(doc, db_dir, true).map_err(|e| anyhow!("RocksDB refused to open: {e}"))?;
    let zipf = (w.mix.is_none() && OpChooser::wants_zipfian(w.kind)).then(|| Zipfian::new(w.num));
    // A trace replays its own queries; its mix only describes it.
    let sampler = w
        .mix
        .as_ref()
        .filter(|_| w.trace.is_none())
        .map(|m| Sampler::new(m, w.num, w.seed));
    let chooser = match &sampler {
        Some(s) => OpChooser::with_mix(w, s),
        None => OpChooser::new(w, zipf.as_ref()),
    };
    let trace = match &w.trace {
        Some(t) => Some(super::trace::read(&t.path).map_err(|e| anyhow!(e))?),
        None => None,
    };
    let fill_start = Instant::now();
    if let Some(t) = &trace {
        super::replay::load(&db, t, w.value_size, w.seed, progress)?;
        settle(&db, Duration::from_secs(120));
    } else if w.needs_fill() {
        fill(&db, w, &chooser, progress)?;
        settle(&db, Duration::from_secs(120));
    }
    let fill_seconds = fill_start.elapsed().as_secs_f64();
    let latest = AtomicU64::new(w.num.saturating_sub(1));
    let before = counters(&db, &loaded.db);
    let (cpu0, _) = rusage();
    let start = Instant::now();
    let deadline = w.duration.map(|d| start + d);
    let stop_writer = AtomicBool::new(false);
    let results: Vec<Result<ThreadResult>> = if let Some(t) = &trace {
        let speed = w.trace.as_ref().map_or(0.0, |t| t.speed);
        super::replay::replay(&db, t, w.threads, speed, progress)
    } else {
        std::thread::scope(|s| {
            let writer = (w.kind == Kind::ReadWhileWriting).then(|| {
                s.spawn(|| -> Result<()> {
                    let mut rng = Rng::new(w.seed ^ 0xBEEF);
                    let mut values =
                        ValuePool::new(w.seed ^ 0xBEEF, w.compression_ratio, w.value_size);
                    let mut key = Vec::new();
                    let wo = WriteOptions::default();
                    while !stop_writer.load(Ordering::Relaxed) {
                        make_key(rng.below(w.num), w.key_size, &mut key);
                        db.put_opt(&key, values.next(w.value_size), &wo)
                            .map_err(|e| anyhow!("writer: {e}"))?;
                    }
                    Ok(())
                })
            });
            let handles: Vec<_> = (0..w.threads)
                .map(|id| {
                    let (db, chooser, latest) = (&db, &chooser, &latest);
                    s.spawn(move || {
                        worker_thread(db, w, id, chooser, latest, start, deadline, progress)
                    })
                })
                .collect();
            let out = join_all(handles, "benchmark");
            stop_writer.store(true, Ordering::Relaxed);
            if let Some(wr) = writer
                && let Ok(Err(e)) = wr.join()
            {
                return vec![Err(e)];
            }
            out
        })
    };
    let seconds = start.elapsed().as_secs_f64();
    let (cpu1, peak_rss) = rusage();
    let after = counters(&db, &loaded.db);
    let mut hist = new_histogram();
    let (mut ops, mut reads, mut found) = (0, 0, 0);
    for r in results {
        let r = r?;
        hist.add(&r.hist).map_err(|e| anyhow!("histogram: {e}"))?;
        ops += r.ops;
        reads += r.reads;
        found += r.found;
    }
    let counters = delta(&before, &after);
    drop(db);
    let size_on_disk = dir_size(db_dir);
    let ops_per_sec = ops as f64 / seconds.max(1e-9);
    Ok(Measurement {
        engine: "inprocess".into(),
        workload: w.clone(),
        ops,
        seconds,
        ops_per_sec,
        mb_per_sec: ops_per_sec * (w.key_size + w.value_size) as f64 / (1 << 20) as f64,
        latency_us: Latency::from_histogram(&hist),
        reads_found: (reads > 0).then_some((found, reads)),
        diagnostics: Some(Diagnostics::from_counters(
            &counters,
            seconds,
            w.threads,
            Some(cpu1 - cpu0),
        )),
        counters: Some(counters),
        size_on_disk,
        cpu_seconds: Some(cpu1 - cpu0),
        peak_rss_bytes: Some(peak_rss),
        fill_seconds,
        confinement: None,
    })
}

/// Counter deltas over the measured phase; the LSM shape is taken as it is after.
fn delta(a: &RocksCounters, b: &RocksCounters) -> RocksCounters {
    RocksCounters {
        stall_micros: b.stall_micros.saturating_sub(a.stall_micros),
        user_bytes_written: b.user_bytes_written.saturating_sub(a.user_bytes_written),
        flush_write_bytes: b.flush_write_bytes.saturating_sub(a.flush_write_bytes),
        compact_read_bytes: b.compact_read_bytes.saturating_sub(a.compact_read_bytes),
        compact_write_bytes: b.compact_write_bytes.saturating_sub(a.compact_write_bytes),
        block_cache_hit: b.block_cache_hit.saturating_sub(a.block_cache_hit),
        block_cache_miss: b.block_cache_miss.saturating_sub(a.block_cache_miss),
        bloom_useful: b.bloom_useful.saturating_sub(a.bloom_useful),
        bloom_full_positive: b.bloom_full_positive.saturating_sub(a.bloom_full_positive),
        bloom_full_true_positive: b
            .bloom_full_true_positive
            .saturating_sub(a.bloom_full_true_positive),
        memtable_hit: b.memtable_hit.saturating_sub(a.memtable_hit),
        l0_files: b.l0_files,
        sst_bytes: b.sst_bytes,
        pending_compaction_bytes: b.pending_compaction_bytes,
        stalls_l0: b.stalls_l0.saturating_sub(a.stalls_l0),
        stalls_memtable: b.stalls_memtable.saturating_sub(a.stalls_memtable),
        stalls_pending_compaction: b
            .stalls_pending_compaction
            .saturating_sub(a.stalls_pending_compaction),
        compaction_cpu_micros: b
            .compaction_cpu_micros
            .saturating_sub(a.compaction_cpu_micros),
    }
}

/// RocksDB's counters and LSM shape, read from an open database whose options enabled
/// statistics (`open_with(.., true)`).
pub fn counters(db: &DB, opts: &rocksdb::Options) -> RocksCounters {
    use rocksdb::statistics::Ticker as T;
    let t = |ticker| opts.get_ticker_count(ticker);
    let prop = |name: &rocksdb::properties::PropName| {
        db.property_int_value(name).ok().flatten().unwrap_or(0)
    };
    let stalls = stall_counts(db);
    RocksCounters {
        stall_micros: t(T::StallMicros),
        user_bytes_written: t(T::BytesWritten),
        flush_write_bytes: t(T::FlushWriteBytes),
        compact_read_bytes: t(T::CompactReadBytes),
        compact_write_bytes: t(T::CompactWriteBytes),
        block_cache_hit: t(T::BlockCacheHit),
        block_cache_miss: t(T::BlockCacheMiss),
        bloom_useful: t(T::BloomFilterUseful),
        bloom_full_positive: t(T::BloomFilterFullPositive),
        bloom_full_true_positive: t(T::BloomFilterFullTruePositive),
        memtable_hit: t(T::MemtableHit),
        l0_files: db
            .property_int_value(rocksdb::properties::num_files_at_level(0))
            .ok()
            .flatten()
            .unwrap_or(0),
        sst_bytes: prop(rocksdb::properties::TOTAL_SST_FILES_SIZE),
        pending_compaction_bytes: prop(rocksdb::properties::ESTIMATE_PENDING_COMPACTION_BYTES),
        stalls_l0: stalls.0,
        stalls_memtable: stalls.1,
        stalls_pending_compaction: stalls.2,
        compaction_cpu_micros: t(T::CompactionCpuTotalTime),
    }
}

/// Write stall counts (delays + stops) by cause from `rocksdb.cf-write-stall-stats`
/// (`Write Stall (count): l0-file-count-limit-delays: 13, ...`): L0 files, memtables, pending
/// compaction bytes. Zeros when RocksDB does not report them.
fn stall_counts(db: &DB) -> (u64, u64, u64) {
    let text = db
        .property_value("rocksdb.cf-write-stall-stats")
        .ok()
        .flatten()
        .unwrap_or_default();
    parse_stall_counts(&text)
}

fn parse_stall_counts(text: &str) -> (u64, u64, u64) {
    let body = text.split_once(':').map_or("", |(_, b)| b);
    let mut out = (0, 0, 0);
    for item in body.split(',') {
        let Some((k, v)) = item.split_once(':') else {
            continue;
        };
        let v: u64 = v.trim().parse().unwrap_or(0);
        match k.trim() {
            "l0-file-count-limit-delays" | "l0-file-count-limit-stops" => out.0 += v,
            "memtable-limit-delays" | "memtable-limit-stops" => out.1 += v,
            "pending-compaction-bytes-delays" | "pending-compaction-bytes-stops" => out.2 += v,
            _ => {}
        }
    }
    out
}

/// Flush memtables and wait (up to `limit`) until no flush or compaction is running or pending,
/// so a measured phase does not start in the middle of the fill's background work.
pub fn settle(db: &DB, limit: std::time::Duration) {
    let _ = db.flush();
    let start = std::time::Instant::now();
    let busy = |name: &rocksdb::properties::PropName| {
        db.property_int_value(name).ok().flatten().unwrap_or(0) > 0
    };
    while start.elapsed() < limit
        && (busy(rocksdb::properties::COMPACTION_PENDING)
            || busy(rocksdb::properties::NUM_RUNNING_COMPACTIONS)
            || busy(rocksdb::properties::NUM_RUNNING_FLUSHES))
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[cfg(test)]
mod stall_tests {
    #[test]
    fn stall_counts_parse_rocksdbs_text() {
        let t = "Write Stall (count): cf-l0-file-count-limit-delays-with-ongoing-compaction: 12, cf-l0-file-count-limit-stops-with-ongoing-compaction: 0, l0-file-count-limit-delays: 13, l0-file-count-limit-stops: 0, memtable-limit-delays: 0, memtable-limit-stops: 3, pending-compaction-bytes-delays: 1, pending-compaction-bytes-stops: 2, total-delays: 13, total-stops: 3\n";
        assert_eq!(super::parse_stall_counts(t), (13, 3, 3));
        assert_eq!(super::parse_stall_counts(""), (0, 0, 0));
    }
}
