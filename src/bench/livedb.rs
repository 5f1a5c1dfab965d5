//! A live database characterized without touching it: `lsmtune workload from-db DB_DIR` reads
//! only files RocksDB itself wrote there (the newest OPTIONS file, the info LOG and its rolled
//! `LOG.old.*`), never opens the database and never takes its LOCK. From the LOG it takes the
//! event log's table properties of every SST file still live (entries, deletions, raw key and
//! value sizes), the last statistics dump (`STATISTICS:` counters of reads, writes, seeks,
//! multigets, cache hits, stall time), and the last `** DB Stats **` and compaction stats
//! (uptime, cumulative writes and stalls, write amplification), and turns them into a workload
//! file with a short report of what it found and what it could not know.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::mix::{KeyDist, OpWeights};
use super::workload_file::{Generated, comment_text, render_generated};

/// What the files of a database say.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Findings {
    pub options_file: Option<PathBuf>,
    pub log_files: Vec<PathBuf>,
    /// Live SST files known from the event log, and their summed table properties.
    pub live_files: usize,
    pub entries: u64,
    pub deletions: u64,
    pub raw_key_bytes: u64,
    pub raw_value_bytes: u64,
    pub data_bytes: u64,
    /// The last statistics dump's counters (`rocksdb.number.keys.read` ...), when enabled.
    pub statistics: BTreeMap<String, u64>,
    pub uptime_secs: Option<f64>,
    pub cumulative_writes: Option<u64>,
    pub stall_percent: Option<f64>,
    pub write_amp: Option<f64>,
    /// What could not be learned, in words.
    pub gaps: Vec<String>,
}

impl Findings {
    fn stat(&self, name: &str) -> u64 {
        self.statistics.get(name).copied().unwrap_or(0)
    }

    /// Keys in the database (entries minus deletions of the live files).
    pub fn keys(&self) -> u64 {
        self.entries.saturating_sub(self.deletions)
    }

    /// Mean user key size (the properties count the 8-byte internal suffix).
    pub fn key_size(&self) -> Option<f64> {
        (self.entries > 0).then(|| (self.raw_key_bytes as f64 / self.entries as f64 - 8.0).max(1.0))
    }

    pub fn value_size(&self) -> Option<f64> {
        (self.entries > 0).then(|| self.raw_value_bytes as f64 / self.entries as f64)
    }

    /// The operation mix from the statistics, when the database had them on.
    pub fn ops(&self) -> Option<OpWeights> {
        let reads = self.stat("rocksdb.number.keys.read");
        let writes = self.stat("rocksdb.number.keys.written");
        let seeks = self.stat("rocksdb.number.db.seek");
        let multiget = self.stat("rocksdb.number.multiget.get");
        let deletes = self.stat("rocksdb.number.keys.deleted");
        [reads, writes, seeks, multiget]
            .iter()
            .any(|&n| n > 0)
            .then(|| OpWeights {
                get: reads as f64,
                put: writes.saturating_sub(deletes) as f64,
                delete: deletes as f64,
                seek: seeks as f64,
                multiget: multiget as f64,
                ..OpWeights::default()
            })
    }
}

/// The newest `OPTIONS-NNNNNN` file of a database folder.
pub fn latest_options(dir: &Path) -> Option<PathBuf> {
    crate::options::ini::latest_options(dir)
}

/// Read what `dir`'s files say, without opening the database.
pub fn inspect(dir: &Path) -> Result<Findings, String> {
    if !dir.is_dir() {
        return Err(format!("{} is not a folder", dir.display()));
    }
    let has = |name: &str| dir.join(name).exists();
    let options_file = latest_options(dir);
    if !has("CURRENT") && options_file.is_none() {
        return Err(format!(
            "{} is not a RocksDB database (no CURRENT file and no OPTIONS file)",
            dir.display()
        ));
    }
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("LOG.old."))
        })
        .collect();
    // LOG.old.<microseconds>: oldest first, then the current LOG.
    logs.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("LOG.old."))
            .and_then(|t| t.parse::<u64>().ok())
            .unwrap_or(0)
    });
    if has("LOG") {
        logs.push(dir.join("LOG"));
    }
    let mut f = Findings {
        options_file,
        ..Findings::default()
    };
    // file number -> (entries, deletions, raw key, raw value, data)
    let mut live: BTreeMap<u64, [u64; 5]> = BTreeMap::new();
    for log in &logs {
        // Streamed: a LOG grows for as long as the database runs, and is never held whole.
        let mut state = LogState::default();
        crate::input::for_each_line(log, "LOG", crate::input::LOG_LINE_MAX, |line| {
            state.line(line, &mut f, &mut live)
        })?;
    }
    f.log_files = logs;
    f.live_files = live.len();
    // Checked: the properties are the LOG's word, and a crafted LOG made these sums wrap
    // ("18446744073709551614 entries", "-2 B").
    let mut sums = [0u64; 5];
    let summed = live.values().try_for_each(|props| {
        for (sum, v) in sums.iter_mut().zip(props) {
            *sum = sum.checked_add(*v)?;
        }
        Some(())
    });
    match summed {
        Some(()) => {
            [
                f.entries,
                f.deletions,
                f.raw_key_bytes,
                f.raw_value_bytes,
                f.data_bytes,
            ] = sums;
        }
        None => f.gaps.push(
            "the live files' table properties in the LOG add up past 2^64 (a damaged LOG): \
             key count and sizes unknown"
                .into(),
        ),
    }
    if f.log_files.is_empty() {
        f.gaps
            .push("no LOG file: nothing on sizes, mix or stalls".into());
    } else if f.live_files == 0 {
        f.gaps.push(
            "the LOG has no table_file_creation events for live files (rolled away, or nothing \
             flushed yet): key count and sizes unknown"
                .into(),
        );
    }
    if f.statistics.is_empty() {
        f.gaps.push(
            "no statistics dump in the LOG (the database runs without `statistics`, or \
             stats_dump_period_sec = 0): the read/write mix is unknown and assumed 50/50"
                .into(),
        );
    }
    f.gaps.push(
        "key popularity cannot be read from these files: the workload draws keys uniformly \
         (a trace, `--workload trace:FILE`, shows the skew)"
            .into(),
    );
    Ok(f)
}

/// Where a LOG being read line by line is: inside a statistics dump or not.
#[derive(Default)]
struct LogState {
    in_stats: bool,
}

#[cfg(test)]
fn read_log(text: &str, f: &mut Findings, live: &mut BTreeMap<u64, [u64; 5]>) {
    let mut state = LogState::default();
    for line in text.lines() {
        state.line(line, f, live);
    }
}

impl LogState {
    /// Take what one line of the LOG says into `f` and the live files.
    fn line(&mut self, line: &str, f: &mut Findings, live: &mut BTreeMap<u64, [u64; 5]>) {
        if let Some(json) = line.split_once("EVENT_LOG_v1 ").map(|(_, j)| j) {
            self.in_stats = false;
            let Ok(ev) = serde_json::from_str::<serde_json::Value>(json) else {
                return;
            };
            let n = ev["file_number"].as_u64();
            match (ev["event"].as_str(), n) {
                (Some("table_file_creation"), Some(n)) => {
                    let p = &ev["table_properties"];
                    let g = |k: &str| p[k].as_u64().unwrap_or(0);
                    live.insert(
                        n,
                        [
                            g("num_entries"),
                            g("num_deletions"),
                            g("raw_key_size"),
                            g("raw_value_size"),
                            g("data_size"),
                        ],
                    );
                }
                (Some("table_file_deletion"), Some(n)) => {
                    live.remove(&n);
                }
                _ => {}
            }
            return;
        }
        if line.ends_with("STATISTICS:") {
            self.in_stats = true;
            f.statistics.clear();
            return;
        }
        if self.in_stats {
            // `rocksdb.block.cache.hit COUNT : 12`; histograms (P50 ...) are passed over.
            let line = line.trim();
            if let Some((name, rest)) = line.split_once(" COUNT : ")
                && name.starts_with("rocksdb.")
                && let Ok(v) = rest.trim().parse::<u64>()
            {
                f.statistics.insert(name.trim().to_string(), v);
                return;
            }
            if line.starts_with("rocksdb.") {
                return;
            }
            self.in_stats = false;
        }
        let l = line.trim();
        // Numbers the LOG states are taken only when they make sense ("stalled NaN%" once).
        let real = |v: &str, hi: f64| v.parse::<f64>().ok().filter(|x| (0.0..=hi).contains(x));
        if let Some(rest) = l.strip_prefix("Uptime(secs): ") {
            f.uptime_secs = rest.split_whitespace().next().and_then(|v| real(v, 1e12));
        } else if let Some(rest) = l.strip_prefix("Cumulative writes: ") {
            f.cumulative_writes = rest.split_whitespace().next().and_then(count);
        } else if let Some(rest) = l.strip_prefix("Cumulative stall: ") {
            f.stall_percent = rest
                .split(',')
                .nth(1)
                .and_then(|p| p.split_whitespace().next())
                .and_then(|v| real(v, 100.0));
        } else if let Some(rest) = l.strip_prefix("Sum ") {
            // The compaction stats table's Sum row: W-Amp is the 12th column after the name.
            let cols: Vec<&str> = rest.split_whitespace().collect();
            if let Some(w) = cols.get(10).and_then(|v| real(v, 1e6)) {
                f.write_amp = Some(w);
            }
        }
    }
}

/// `218K` / `1.5M` / `12` as a number.
fn count(v: &str) -> Option<u64> {
    let (num, mult) = match v.chars().last()? {
        'K' => (&v[..v.len() - 1], 1e3),
        'M' => (&v[..v.len() - 1], 1e6),
        'G' => (&v[..v.len() - 1], 1e9),
        _ => (v, 1.0),
    };
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult)
        .filter(|n| (0.0..=u64::MAX as f64).contains(n))
        .map(|n| n as u64)
}

/// The workload file (TOML) that reproduces what the database holds and does; written by the
/// toml crate's serializer (see [`render_generated`]).
pub fn workload_file(f: &Findings, name: &str, source: &str) -> Result<String, String> {
    let ops = f.ops().unwrap_or(OpWeights {
        get: 1.0,
        put: 1.0,
        ..OpWeights::default()
    });
    let mut comments = vec![
        format!(
            "Made by `lsmtune workload from-db` from {} (read only: the database was not \
             opened).",
            comment_text(source)
        ),
        "Not known from its files:".to_string(),
    ];
    comments.extend(f.gaps.iter().map(|g| format!("- {}", comment_text(g))));
    render_generated(&Generated {
        comments,
        name,
        num: f.keys().max(1000),
        key_size: f.key_size().map_or(16, |k| k.round() as u64),
        value_size: f.value_size().map_or(100, |v| v.round() as u64),
        ops: &ops,
        keys: &KeyDist::Uniform,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r#"2026/11/30-14:09:29.100 1 [db/flush_job.cc:1] EVENT_LOG_v1 {"time_micros": 1, "cf_name": "default", "job": 2, "event": "table_file_creation", "file_number": 9, "file_size": 2000, "table_properties": {"data_size": 1900, "num_entries": 100, "num_deletions": 10, "raw_key_size": 2400, "raw_value_size": 10000}}
2026/11/30-14:09:29.200 1 [db/flush_job.cc:1] EVENT_LOG_v1 {"time_micros": 2, "cf_name": "default", "job": 3, "event": "table_file_creation", "file_number": 11, "file_size": 2000, "table_properties": {"data_size": 1900, "num_entries": 50, "num_deletions": 0, "raw_key_size": 1200, "raw_value_size": 5000}}
2026/11/30-14:09:29.300 1 EVENT_LOG_v1 {"time_micros": 3, "job": 4, "event": "table_file_deletion", "file_number": 11}
** DB Stats **
Uptime(secs): 6.0 total, 1.0 interval
Cumulative writes: 218K writes, 218K keys, 218K commit groups, 1.0 writes per commit group, ingest: 0.03 GB, 4.53 MB/s
Cumulative stall: 00:00:0.000 H:M:S, 2.5 percent
 Sum      1/0    1.86 KB   0.0      0.0     0.0      0.0       0.0      0.0       0.0   3.4      0.0      5.9      0.00              0.00         1    0.001       0      0       0.0       0.0
2026/11/30-14:09:32.183487 32054 [db/db_impl/db_impl.cc:788] STATISTICS:
 rocksdb.block.cache.miss COUNT : 7
rocksdb.number.keys.written COUNT : 300
rocksdb.number.keys.read COUNT : 700
rocksdb.db.get.micros P50 : 1.0 P95 : 2.0 P99 : 3.0 P100 : 4.0 COUNT : 700 SUM : 900
2026/11/30-14:09:33 1 [db/db_impl/db_impl.cc:1] ------- DUMPING STATS -------
"#;

    #[test]
    fn a_log_is_read_into_sizes_mix_and_stalls() {
        let mut f = Findings::default();
        let mut live = BTreeMap::new();
        read_log(LOG, &mut f, &mut live);
        assert_eq!(live.len(), 1, "file 11 was deleted");
        assert_eq!(live[&9], [100, 10, 2400, 10000, 1900]);
        assert_eq!(f.uptime_secs, Some(6.0));
        assert_eq!(f.cumulative_writes, Some(218_000));
        assert_eq!(f.stall_percent, Some(2.5));
        assert_eq!(f.write_amp, Some(3.4));
        assert_eq!(f.stat("rocksdb.number.keys.read"), 700);
        assert_eq!(f.stat("rocksdb.number.keys.written"), 300);
        let ops = f.ops().unwrap();
        assert_eq!((ops.get, ops.put), (700.0, 300.0));
    }

    #[test]
    fn counts_with_suffixes() {
        assert_eq!(count("218K"), Some(218_000));
        assert_eq!(count("1.5M"), Some(1_500_000));
        assert_eq!(count("12"), Some(12));
        assert_eq!(count("x"), None);
    }
}
