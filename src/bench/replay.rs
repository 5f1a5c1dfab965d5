//! Replaying a RocksDB query trace against a candidate configuration, in-process: keys the
//! trace reads before it writes them are loaded first (the production database had them), then
//! the trace's queries run in their order, spread over the workload's threads (query `i` on
//! thread `i % threads`), as fast as the database allows or at the trace's own pace times
//! `speed`. Every query's latency goes into the thread's histogram, like any other workload.

use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use rocksdb::{DB, ReadOptions, WriteBatch, WriteOptions};

use super::measure::{Progress, ThreadResult, join_all};
use super::trace::{BatchOp, Query, Trace};
use super::workload::ValuePool;

/// Write every key the trace reads before writing it, with values of `value_size` bytes.
pub fn load(db: &DB, t: &Trace, value_size: usize, seed: u64, progress: &Progress) -> Result<()> {
    progress.filling.store(true, Ordering::Relaxed);
    let mut written: HashSet<&[u8]> = HashSet::new();
    let mut needed: Vec<&[u8]> = Vec::new();
    let mut seen: HashSet<&[u8]> = HashSet::new();
    for r in &t.records {
        match &r.query {
            Query::Get(k) | Query::Seek { key: k, .. } => {
                if !written.contains(k.as_slice()) && seen.insert(k) {
                    needed.push(k);
                }
            }
            Query::MultiGet(keys) => {
                for k in keys {
                    if !written.contains(k.as_slice()) && seen.insert(k) {
                        needed.push(k);
                    }
                }
            }
            Query::Write(ops) => {
                for op in ops {
                    if let BatchOp::Put(k, _) | BatchOp::Merge(k, _) = op {
                        written.insert(k);
                    }
                }
            }
        }
    }
    let mut values = ValuePool::new(seed, 0.5, value_size);
    let wo = WriteOptions::default();
    for (i, k) in needed.iter().enumerate() {
        db.put_opt(k, values.next(value_size), &wo)
            .map_err(|e| anyhow!("loading the trace's keys: {e}"))?;
        if i % 1024 == 0 {
            progress.ops.store(i as u64, Ordering::Relaxed);
        }
    }
    progress.filling.store(false, Ordering::Relaxed);
    progress.ops.store(0, Ordering::Relaxed);
    Ok(())
}

/// Run the trace's queries; `speed` 0 runs them back to back, else at the trace's pace times
/// `speed` (2 = twice as fast as recorded).
pub fn replay(
    db: &DB,
    t: &Trace,
    threads: usize,
    speed: f64,
    progress: &Progress,
) -> Vec<Result<ThreadResult>> {
    let first = t.records.first().map_or(0, |r| r.micros);
    let start = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|id| {
                s.spawn(move || -> Result<ThreadResult> {
                    let mut tally = ThreadResult::new();
                    let (ro, wo) = (ReadOptions::default(), WriteOptions::default());
                    for r in t.records.iter().skip(id).step_by(threads.max(1)) {
                        let due = if speed > 0.0 {
                            // Checked: a tiny speed or a crafted timestamp must not panic in
                            // the conversion or the addition (the run's timeout ends a wait
                            // that long).
                            let wait = Duration::try_from_secs_f64(
                                r.micros.saturating_sub(first) as f64 / 1e6 / speed,
                            )
                            .unwrap_or(Duration::MAX);
                            let at = start.checked_add(wait).unwrap_or_else(|| {
                                start + Duration::from_secs(u64::from(u32::MAX))
                            });
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            }
                            at
                        } else {
                            Instant::now()
                        };
                        match &r.query {
                            Query::Get(k) => {
                                let hit =
                                    db.get_pinned_opt(k, &ro).map_err(|e| anyhow!("get: {e}"))?;
                                tally.read(hit.is_some());
                            }
                            Query::MultiGet(keys) => {
                                for v in db.multi_get_opt(keys.iter(), &ro) {
                                    tally.read(v.map_err(|e| anyhow!("multiget: {e}"))?.is_some());
                                }
                            }
                            Query::Seek { key, for_prev } => {
                                let mut it = db.raw_iterator_opt(ReadOptions::default());
                                if *for_prev {
                                    it.seek_for_prev(key);
                                } else {
                                    it.seek(key);
                                }
                                if it.valid() {
                                    std::hint::black_box(it.value());
                                }
                                it.status().map_err(|e| anyhow!("seek: {e}"))?;
                            }
                            Query::Write(batch_ops) => {
                                let mut b = WriteBatch::default();
                                for op in batch_ops {
                                    match op {
                                        // No merge operator is configured: a merge replays as
                                        // the put of its operand.
                                        BatchOp::Put(k, v) | BatchOp::Merge(k, v) => b.put(k, v),
                                        BatchOp::Delete(k) => b.delete(k),
                                        BatchOp::SingleDelete(k) => b.single_delete(k),
                                        BatchOp::DeleteRange(a, z) => b.delete_range(a, z),
                                    }
                                }
                                db.write_opt(b, &wo).map_err(|e| anyhow!("write: {e}"))?;
                            }
                        }
                        tally.done(due.elapsed(), progress);
                    }
                    Ok(tally)
                })
            })
            .collect();
        join_all(handles, "replay")
    })
}
