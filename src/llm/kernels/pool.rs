//! The worker threads that share a matrix product: a fixed pool (`RAYON_NUM_THREADS` or the
//! physical cores, as candle counts them, the caller included) taking chunks of work items from a
//! shared cursor.
//!
//! Unlike candle's barrier pool, the caller never waits for a worker that has not started: a
//! worker joins a job only while it is open, and the caller, after running out of items, closes
//! it and waits just for the workers that joined (which are busy with their last chunk). On a
//! machine where other processes keep the cores busy, a descheduled or parked worker would
//! otherwise hold every product up for a scheduler time slice: measured on 2 cores shared with
//! two compilers, SmolLM2-135M decoded 2 tokens/s with candle's pool, against 94 on one thread.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::Thread;

/// `state`: bits 0..32 the workers inside the job, bit 32 "open", bits 33.. the job number.
const OPEN: u64 = 1 << 32;
const COUNT: u64 = OPEN - 1;
const GEN: u32 = 33;

/// Spins before a waiting worker parks (a forward pass calls the pool every few microseconds).
const SPINS: u32 = 1 << 14;

struct Job {
    f: *const (dyn Fn(std::ops::Range<usize>) + Sync),
    cursor: AtomicUsize,
    items: usize,
    chunk: usize,
}

impl Job {
    /// Take chunks until none is left.
    fn run(&self) {
        loop {
            let start = self.cursor.fetch_add(self.chunk, Ordering::Relaxed);
            if start >= self.items {
                return;
            }
            // SAFETY: `f` outlives the job: the caller waits for every worker inside it.
            unsafe { (*self.f)(start..self.items.min(start + self.chunk)) };
        }
    }
}

struct Shared {
    state: AtomicU64,
    job: std::sync::atomic::AtomicPtr<Job>,
    panicked: AtomicBool,
}

struct Pool {
    shared: &'static Shared,
    workers: Vec<Thread>,
    /// One caller at a time.
    lock: std::sync::Mutex<()>,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let shared: &'static Shared = Box::leak(Box::new(Shared {
            state: AtomicU64::new(0),
            job: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            panicked: AtomicBool::new(false),
        }));
        let n = candle_core::utils::get_num_threads().max(1);
        let workers = (1..n)
            .filter_map(|i| {
                std::thread::Builder::new()
                    .name(format!("lsmtune-mm-{i}"))
                    .spawn(move || worker(shared))
                    .ok()
                    .map(|h| h.thread().clone())
            })
            .collect();
        Pool {
            shared,
            workers,
            lock: std::sync::Mutex::new(()),
        }
    })
}

fn worker(shared: &'static Shared) {
    let mut seen = 0u64;
    loop {
        // Wait for a job newer than the last one seen.
        let mut spins = 0u32;
        let s = loop {
            let s = shared.state.load(Ordering::Acquire);
            if s >> GEN != seen && s & OPEN != 0 {
                break s;
            }
            spins += 1;
            if spins < SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::park();
                spins = 0;
            }
        };
        seen = s >> GEN;
        // Join it if it is still open (the caller may have finished it alone).
        if shared
            .state
            .compare_exchange(s, s + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // Changed: closed, or another worker joined; try again while it is this job.
            let mut cur = shared.state.load(Ordering::Acquire);
            loop {
                if cur >> GEN != seen || cur & OPEN == 0 {
                    break;
                }
                match shared.state.compare_exchange(
                    cur,
                    cur + 1,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        cur = u64::MAX;
                        break;
                    }
                    Err(now) => cur = now,
                }
            }
            if cur != u64::MAX {
                continue;
            }
        }
        // SAFETY: the job stays alive while this worker is counted in `state`.
        let job = unsafe { &*shared.job.load(Ordering::Acquire) };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())).is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.state.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Run `f` over `0..items` in chunks, on the pool's threads and the caller's.
pub fn run_chunked<F: Fn(std::ops::Range<usize>) + Sync>(items: usize, f: F) {
    if items == 0 {
        return;
    }
    let p = pool();
    if p.workers.is_empty() {
        f(0..items);
        return;
    }
    let _guard = p.lock.lock().unwrap_or_else(|e| e.into_inner());
    let threads = p.workers.len() + 1;
    let dynf: &(dyn Fn(std::ops::Range<usize>) + Sync) = &f;
    // SAFETY: only the lifetime is erased; the job is closed and drained before `f` is dropped.
    let dynf: *const (dyn Fn(std::ops::Range<usize>) + Sync + 'static) =
        unsafe { std::mem::transmute(dynf as *const (dyn Fn(std::ops::Range<usize>) + Sync)) };
    let job = Job {
        f: dynf,
        cursor: AtomicUsize::new(0),
        items,
        chunk: items.div_ceil(threads * 8).max(1),
    };
    let shared = p.shared;
    shared
        .job
        .store(&job as *const Job as *mut Job, Ordering::Release);
    let next = (shared.state.load(Ordering::Relaxed) >> GEN) + 1;
    shared.state.store((next << GEN) | OPEN, Ordering::Release);
    for w in &p.workers {
        w.unpark();
    }
    let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
    // Close: no worker joins after this; wait for those inside.
    let mut s = shared.state.fetch_and(!OPEN, Ordering::AcqRel) & !OPEN;
    let mut spins = 0u32;
    while s & COUNT != 0 {
        spins += 1;
        if spins < 256 {
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
        s = shared.state.load(Ordering::Acquire);
    }
    shared.job.store(std::ptr::null_mut(), Ordering::Relaxed);
    if let Err(payload) = mine {
        std::panic::resume_unwind(payload);
    }
    if shared.panicked.swap(false, Ordering::Relaxed) {
        panic!("a matrix product worker panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_runs_exactly_once() {
        for items in [0, 1, 3, 17, 1000] {
            for _ in 0..50 {
                let hits: Vec<AtomicUsize> = (0..items).map(|_| AtomicUsize::new(0)).collect();
                run_chunked(items, |r| {
                    for i in r {
                        hits[i].fetch_add(1, Ordering::Relaxed);
                    }
                });
                assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            }
        }
    }
}
