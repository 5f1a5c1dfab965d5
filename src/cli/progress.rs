//! The one shape of progress line `bench`, `tune` and `compare` draw: a spinner with the elapsed
//! time and a message, redrawn four times a second by a ticker thread from a live operation
//! counter (its rate in ops/s is handed to the message), hidden under `-q`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A spinner line fed by a ticker thread ([`Spinner::run`]); [`Spinner::stop`] (or dropping
/// it) ends it.
pub(super) struct Spinner {
    pub bar: indicatif::ProgressBar,
    done: Arc<AtomicBool>,
    ticker: Option<std::thread::JoinHandle<()>>,
}

impl Spinner {
    /// The line (hidden when `quiet`), not yet ticking.
    pub fn new(quiet: bool) -> Spinner {
        let bar = if quiet {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new_spinner()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        Spinner {
            bar,
            done: Arc::new(AtomicBool::new(false)),
            ticker: None,
        }
    }

    /// Start ticking: every tick, `message(ops, rate)` gets the live operation count and its
    /// rate since the last tick, in ops/s.
    pub fn run(
        mut self,
        live_ops: Arc<AtomicU64>,
        message: impl Fn(u64, f64) -> String + Send + 'static,
    ) -> Spinner {
        let (bar, done) = (self.bar.clone(), self.done.clone());
        self.ticker = Some(std::thread::spawn(move || {
            let mut last = (Instant::now(), 0u64);
            while !done.load(Ordering::Relaxed) {
                let ops = live_ops.load(Ordering::Relaxed);
                let dt = last.0.elapsed().as_secs_f64();
                let rate = if ops >= last.1 && dt > 0.0 {
                    (ops - last.1) as f64 / dt
                } else {
                    0.0
                };
                last = (Instant::now(), ops);
                bar.set_message(message(ops, rate));
                bar.tick();
                std::thread::sleep(Duration::from_millis(250));
            }
        }));
        self
    }

    /// Stop the ticker and clear the line.
    pub fn stop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.stop();
    }
}
