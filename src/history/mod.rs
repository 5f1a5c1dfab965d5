//! The tuning memory: every finished tune's measured changes, kept in an embedded database
//! ([`store`], SQLite) under the XDG data folder, so the next tune on a similar machine and
//! workload starts warm ([`similar`]) instead of paying for the same discoveries again.
//!
//! A [`Tune`] is what one finished tune taught: the machine's facts (and a fingerprint of its
//! class), the workload's features (operation shares, sizes, key distribution), the objective,
//! every measured change with its effect and 95% interval, the final check and the changes the
//! tune kept. It is built from a run folder's journal and OPTIONS files
//! ([`crate::tune::warm::recorded`]), and exported and imported as JSON lines (one tune per
//! line, [`FORMAT`]) for sharing across a fleet through a shared folder or an object store.
//! Nothing here depends on the loop: the tune's side (recording, the warm start's first
//! candidate) is [`crate::tune::warm`].

pub mod similar;
pub mod store;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::Workload;
use crate::sysinfo::Facts;

pub use similar::{Neighbour, Similarity, Warm};

/// The format tag of an exported tune (a line of `history export`).
pub const FORMAT: &str = "lsmtune-history/1";

/// The environment variable naming the history database (`off` turns the history off).
pub const ENV: &str = "LSMTUNE_HISTORY";

/// The machine a tune ran on: the facts similarity reads, and a fingerprint of its class
/// (the same CPU, cores, memory to the GiB and kind of storage give the same fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    pub fingerprint: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub cpu_model: Option<String>,
    /// `ssd`, `hdd`, `memory` (tmpfs) or `unknown`.
    pub storage: String,
    pub filesystem: Option<String>,
    pub rocksdb: String,
}

impl Machine {
    pub fn of(facts: &Facts) -> Machine {
        let storage = match (facts.filesystem.as_deref(), facts.rotational) {
            (Some("tmpfs" | "ramfs"), _) => "memory",
            (_, Some(true)) => "hdd",
            (_, Some(false)) => "ssd",
            _ => "unknown",
        }
        .to_string();
        let gib = (facts.memory_bytes as f64 / (1u64 << 30) as f64).round() as u64;
        let class = format!(
            "{}|{}|{gib}|{storage}",
            facts.cpu_model.as_deref().unwrap_or("?"),
            facts.cores
        );
        Machine {
            fingerprint: hex(fnv(class.as_bytes())),
            cores: facts.cores,
            memory_bytes: facts.memory_bytes,
            cpu_model: facts.cpu_model.clone(),
            storage,
            filesystem: facts.filesystem.clone(),
            rocksdb: facts.rocksdb_version.clone(),
        }
    }

    /// `2 cores, 24 GiB, ssd`.
    pub fn describe(&self) -> String {
        format!(
            "{} cores, {} GiB, {}",
            self.cores,
            (self.memory_bytes as f64 / (1u64 << 30) as f64).round(),
            self.storage
        )
    }
}

/// What similarity reads of a workload: the shares of point reads, writes and scans in the
/// measured phase, the sizes and the key distribution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features {
    /// The workload's name (`readrandom`, a workload file's name).
    pub label: String,
    pub reads: f64,
    pub writes: f64,
    pub scans: f64,
    /// `uniform`, `zipfian`, `latest`, `hotspot` or `power`.
    pub keys: String,
    pub num: u64,
    pub key_size: usize,
    pub value_size: usize,
    pub threads: usize,
    /// Keys x (key + value size).
    pub data_bytes: u64,
}

impl Features {
    pub fn of(w: &Workload) -> Features {
        let (reads, writes, scans) = w.shares();
        Features {
            label: w.label(),
            reads,
            writes,
            scans,
            keys: w.key_distribution().to_string(),
            num: w.num,
            key_size: w.key_size,
            value_size: w.value_size,
            threads: w.threads,
            data_bytes: w.data_bytes(),
        }
    }

    /// `100% reads, uniform keys, 117 MiB`.
    pub fn describe(&self) -> String {
        let mut mix = Vec::new();
        for (share, what) in [
            (self.reads, "reads"),
            (self.writes, "writes"),
            (self.scans, "scans"),
        ] {
            if share > 0.0 {
                mix.push(format!("{:.0}% {what}", share * 100.0));
            }
        }
        format!(
            "{}, {} keys, {} of data",
            mix.join(" "),
            self.keys,
            crate::options::value::human_bytes(self.data_bytes as i64)
        )
    }
}

/// One measured candidate of a past tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub iteration: usize,
    pub proposer: String,
    /// The changes against the best at the time: key -> value (RocksDB's spelling).
    pub changes: BTreeMap<String, String>,
    /// The values they had before.
    #[serde(default)]
    pub from: BTreeMap<String, String>,
    pub kept: bool,
    /// Candidate / best - 1 on the objective, with its 95% interval.
    pub effect: f64,
    pub low: f64,
    pub high: f64,
}

/// The final check of a past tune: the tuned configuration against the start.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub effect: f64,
    pub low: f64,
    pub high: f64,
    /// The start was kept (no change confirmed).
    pub kept_start: bool,
}

impl Outcome {
    /// A gain the final check confirmed (its interval above zero, the tuned file kept).
    pub fn confirmed(&self) -> bool {
        !self.kept_start && self.low > 0.0
    }
}

/// What one finished tune taught.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tune {
    /// [`FORMAT`].
    pub format: String,
    /// A hash of the tune's journal start record: the same tune has the same id everywhere.
    pub id: String,
    /// Seconds since 1970 when it was recorded.
    pub recorded: u64,
    /// lsmtune's version that ran it.
    pub version: String,
    pub machine: Machine,
    pub workload: Features,
    /// `throughput`, `p99`, ... (see `--objective`).
    pub objective: String,
    pub proposer: String,
    /// A hash of the starting configuration's catalog values (tunes from RocksDB's defaults
    /// share it).
    pub start: String,
    pub steps: Vec<Step>,
    pub outcome: Option<Outcome>,
    /// What the tune kept, against its start: key -> tuned value.
    pub best: BTreeMap<String, String>,
    pub iterations: usize,
    pub elapsed_secs: f64,
    /// The run folder it was read from.
    #[serde(default)]
    pub source: Option<String>,
}

impl Tune {
    /// One line of `history list`.
    pub fn line(&self) -> String {
        format!(
            "{}  {}  {:<22} {:<10} {}  {}  [{}]",
            self.id,
            date(self.recorded),
            crate::input::clip(&self.workload.label),
            self.objective,
            self.result(),
            self.machine.describe(),
            crate::input::clip(&self.proposer)
        )
    }

    /// `+236% [+135, +382], 3 options kept` or `start kept`.
    pub fn result(&self) -> String {
        match self.outcome {
            Some(o) if !o.kept_start => format!(
                "{:+.0}% [{:+.0}, {:+.0}], {} option(s) kept",
                o.effect * 100.0,
                o.low * 100.0,
                o.high * 100.0,
                self.best.len()
            ),
            _ => "start kept".to_string(),
        }
    }

    /// Check a tune read from a file someone else wrote: the format, an id, shares that are
    /// shares. The message says what is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format `{}` is not {FORMAT}",
                crate::input::clip(&self.format)
            ));
        }
        if self.id.is_empty() || self.id.len() > 64 {
            return Err("no id".into());
        }
        let w = &self.workload;
        for s in [w.reads, w.writes, w.scans] {
            if !(s.is_finite() && (0.0..=1.0).contains(&s)) {
                return Err("workload shares must be numbers from 0 to 1".into());
            }
        }
        for st in &self.steps {
            if ![st.effect, st.low, st.high].iter().all(|x| x.is_finite()) {
                return Err(format!("step {}: effects must be numbers", st.iteration));
            }
        }
        Ok(())
    }
}

/// A hash of a starting configuration's catalog values: tunes from the same start share it.
pub fn start_hash(base: &crate::options::Config, catalog: &crate::options::Catalog) -> String {
    let values: String = catalog
        .entries
        .iter()
        .map(|e| format!("{}={}\n", e.spec.key, base.get(e)))
        .collect();
    hex(fnv(values.as_bytes()))
}

/// The past tunes a tune may start warm from, read before it starts. Reading never fails the
/// tune: a history that cannot be opened, or rows that cannot be read, become warnings and
/// the tune goes on with what could be read.
#[derive(Debug, Clone, Default)]
pub struct Past {
    pub store: String,
    pub tunes: Vec<Tune>,
    pub warnings: Vec<String>,
}

impl Past {
    /// Read the history at `path` (a missing file is an empty history).
    pub fn read(path: &Path) -> Past {
        let store = path.display().to_string();
        if !path.exists() {
            return Past {
                store,
                ..Past::default()
            };
        }
        match store::Store::open(path).and_then(|s| s.all()) {
            Ok((tunes, warnings)) => Past {
                store,
                tunes,
                warnings,
            },
            Err(e) => Past {
                warnings: vec![format!(
                    "the history could not be read, so this tune starts cold: {}",
                    crate::input::clip_message(&format!("{e:#}"))
                )],
                store,
                tunes: Vec::new(),
            },
        }
    }

    /// The warm start of a tune of `workload` for `objective` from `base` on the machine
    /// `facts` describe.
    pub fn warm(
        &self,
        facts: &Facts,
        workload: &Workload,
        objective: &str,
        base: &crate::options::Config,
        catalog: &crate::options::Catalog,
    ) -> Warm {
        Warm {
            store: self.store.clone(),
            considered: self.tunes.len(),
            neighbours: similar::nearest(
                &Machine::of(facts),
                &Features::of(workload),
                objective,
                &start_hash(base, catalog),
                &self.tunes,
            ),
            warnings: self.warnings.clone(),
        }
    }
}

/// Where the history lives: `--history`, else `LSMTUNE_HISTORY`, else
/// `$XDG_DATA_HOME/lsmtune/history.sqlite` (`~/.local/share/lsmtune/history.sqlite`). None
/// when it is turned off (`LSMTUNE_HISTORY=off`).
pub fn location(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    match std::env::var_os(ENV) {
        Some(v) if v == "off" => return None,
        Some(v) if !v.is_empty() => return Some(PathBuf::from(v)),
        _ => {}
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("lsmtune").join("history.sqlite"))
}

/// FNV-1a, 64 bits: a stable hash for ids and fingerprints (not a security measure).
pub fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

pub fn hex(h: u64) -> String {
    format!("{h:016x}")
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `2026-12-07` from seconds since 1970 (UTC; the civil-from-days algorithm).
pub fn date(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::workload::Kind;

    #[test]
    fn dates_are_civil() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_796_601_600), "2026-12-07");
    }

    #[test]
    fn features_are_shares_of_the_measured_phase() {
        let f = Features::of(&Workload::new(Kind::ReadRandomWriteRandom));
        assert!((f.reads - 0.9).abs() < 1e-9 && (f.writes - 0.1).abs() < 1e-9);
        let f = Features::of(&Workload::new(Kind::YcsbE));
        assert_eq!(f.keys, "zipfian");
        assert!((f.scans - 0.95).abs() < 1e-9);
        let f = Features::of(&Workload::new(Kind::FillRandom));
        assert_eq!((f.reads, f.writes, f.scans), (0.0, 1.0, 0.0));
    }

    #[test]
    fn the_location_follows_the_flag_then_the_environment() {
        let p = location(Some(Path::new("/x/h.sqlite"))).unwrap();
        assert_eq!(p, PathBuf::from("/x/h.sqlite"));
    }
}
