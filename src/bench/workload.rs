//! Workloads with db_bench's names, flags and meaning (fillseq, fillrandom, overwrite, readrandom,
//! readrandomwriterandom, readwhilewriting, seekrandom, updaterandom, mixgraph) and YCSB A-F,
//! plus workloads from a file (an operation mix, see `mix` and `workload_file`), and the
//! generators they need: keys, compressible values, uniform / zipfian / latest choosers.
//!
//! Semantics follow db_bench so the in-process harness and `db_bench` measure the same thing:
//! each thread performs `ops` operations (default `num`) unless a duration is given; keys are
//! drawn from `[0, num)`; fills are random with replacement, like db_bench's fillrandom.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

pub use super::generators::{Op, ValuePool, Zipfian, make_key};
use super::mix::Mix;
use super::mixgraph::MixGraph;
use super::sampler::Sampler;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The benchmark to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    FillSeq,
    FillRandom,
    Overwrite,
    ReadRandom,
    ReadRandomWriteRandom,
    ReadWhileWriting,
    SeekRandom,
    UpdateRandom,
    #[serde(rename = "ycsb-a")]
    YcsbA,
    #[serde(rename = "ycsb-b")]
    YcsbB,
    #[serde(rename = "ycsb-c")]
    YcsbC,
    #[serde(rename = "ycsb-d")]
    YcsbD,
    #[serde(rename = "ycsb-e")]
    YcsbE,
    #[serde(rename = "ycsb-f")]
    YcsbF,
    /// db_bench's model of Facebook's production workloads (parameters in `Workload::mix`).
    MixGraph,
    /// A workload file's operation mix (in `Workload::mix`); not a name the user types.
    Custom,
    /// A RocksDB query trace replayed (`Workload::trace`); typed as `trace:FILE`.
    Trace,
}

pub const ALL_KINDS: &[Kind] = &[
    Kind::FillSeq,
    Kind::FillRandom,
    Kind::Overwrite,
    Kind::ReadRandom,
    Kind::ReadRandomWriteRandom,
    Kind::ReadWhileWriting,
    Kind::SeekRandom,
    Kind::UpdateRandom,
    Kind::YcsbA,
    Kind::YcsbB,
    Kind::YcsbC,
    Kind::YcsbD,
    Kind::YcsbE,
    Kind::YcsbF,
    Kind::MixGraph,
];

impl Kind {
    /// Whether writes matter to the measured phase (YCSB B's 5% updates do not). For a mix
    /// (mixgraph, a file) the kind alone cannot tell: ask [`Workload::writes`].
    pub fn writes(self) -> bool {
        !matches!(
            self,
            Kind::ReadRandom | Kind::SeekRandom | Kind::YcsbB | Kind::YcsbC
        )
    }

    /// Whether the measured phase does point lookups.
    pub fn point_reads(self) -> bool {
        matches!(
            self,
            Kind::ReadRandom
                | Kind::ReadRandomWriteRandom
                | Kind::ReadWhileWriting
                | Kind::UpdateRandom
                | Kind::YcsbA
                | Kind::YcsbB
                | Kind::YcsbC
                | Kind::YcsbD
                | Kind::YcsbF
                | Kind::MixGraph
                | Kind::Custom
                | Kind::Trace
        )
    }

    /// Whether the measured phase scans (seek + next).
    pub fn scans(self) -> bool {
        matches!(
            self,
            Kind::SeekRandom | Kind::YcsbE | Kind::MixGraph | Kind::Custom | Kind::Trace
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::FillSeq => "fillseq",
            Kind::FillRandom => "fillrandom",
            Kind::Overwrite => "overwrite",
            Kind::ReadRandom => "readrandom",
            Kind::ReadRandomWriteRandom => "readrandomwriterandom",
            Kind::ReadWhileWriting => "readwhilewriting",
            Kind::SeekRandom => "seekrandom",
            Kind::UpdateRandom => "updaterandom",
            Kind::YcsbA => "ycsb-a",
            Kind::YcsbB => "ycsb-b",
            Kind::YcsbC => "ycsb-c",
            Kind::YcsbD => "ycsb-d",
            Kind::YcsbE => "ycsb-e",
            Kind::YcsbF => "ycsb-f",
            Kind::MixGraph => "mixgraph",
            Kind::Custom => "custom",
            Kind::Trace => "trace",
        }
    }

    /// Does the database need to be filled before the measured phase?
    pub fn needs_fill(self) -> bool {
        !matches!(self, Kind::FillSeq | Kind::FillRandom)
    }

    /// One line on what it measures.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::FillSeq => "write keys in sequential order",
            Kind::FillRandom => "write keys in random order",
            Kind::Overwrite => "overwrite existing keys in random order",
            Kind::ReadRandom => "point reads of random keys",
            Kind::ReadRandomWriteRandom => "random reads and writes, --readwritepercent reads",
            Kind::ReadWhileWriting => "random reads while one thread writes (reads measured)",
            Kind::SeekRandom => "seek to random keys, read --seek-nexts entries",
            Kind::UpdateRandom => "read-modify-write of random keys",
            Kind::YcsbA => "YCSB A: 50% reads, 50% updates, zipfian",
            Kind::YcsbB => "YCSB B: 95% reads, 5% updates, zipfian",
            Kind::YcsbC => "YCSB C: 100% reads, zipfian",
            Kind::YcsbD => "YCSB D: 95% reads of the latest keys, 5% inserts",
            Kind::YcsbE => "YCSB E: 95% short scans (zipfian start, 1-100 keys), 5% inserts",
            Kind::YcsbF => "YCSB F: 50% reads, 50% read-modify-writes, zipfian",
            Kind::MixGraph => {
                "db_bench's model of Facebook's production workloads: gets, puts and seeks with \
                 power-law keys and Pareto value sizes (--key_dist_a/b, --value_k/sigma, ...)"
            }
            Kind::Custom => "the operation mix of a workload file",
            Kind::Trace => "a RocksDB query trace replayed",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let want = s.trim().to_ascii_lowercase().replace('_', "-");
        ALL_KINDS
            .iter()
            .copied()
            .find(|k| k.name() == want || k.name().replace('-', "") == want.replace('-', ""))
            .ok_or_else(|| {
                format!(
                    "unknown workload `{s}`; one of: {}",
                    ALL_KINDS
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// A workload: the benchmark and its parameters (db_bench flag names in comments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: Kind,
    /// --num: keys in the key space (and keys written by a fill).
    pub num: u64,
    /// --key_size
    pub key_size: usize,
    /// --value_size
    pub value_size: usize,
    /// --threads
    pub threads: usize,
    /// --reads / --writes: operations per thread in the measured phase (default `num`).
    pub ops: Option<u64>,
    /// --duration: measure for this long instead of a count.
    pub duration: Option<Duration>,
    /// --readwritepercent: share of reads in readrandomwriterandom (0-100).
    pub readwritepercent: u32,
    /// --seek_nexts: entries read after each seek.
    pub seek_nexts: u32,
    /// --seed
    pub seed: u64,
    /// --compression_ratio: how compressible values are (0.5 = to half their size).
    pub compression_ratio: f64,
    /// The operation mix of mixgraph or a workload file (none for the other kinds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mix: Option<Box<Mix>>,
    /// The trace a `trace` workload replays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<TraceReplay>,
}

/// A trace to replay and how fast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceReplay {
    pub path: std::path::PathBuf,
    /// 0: as fast as the database allows; else the trace's own pace times this.
    #[serde(default)]
    pub speed: f64,
}

impl Workload {
    /// Bytes of keys and values the workload writes: keys x (key + value size).
    pub fn data_bytes(&self) -> u64 {
        self.num * (self.key_size + self.value_size) as u64
    }

    pub fn new(kind: Kind) -> Workload {
        Workload {
            kind,
            num: 100_000,
            key_size: 16,
            value_size: 100,
            threads: 1,
            ops: None,
            duration: None,
            readwritepercent: 90,
            seek_nexts: 0,
            seed: 42,
            compression_ratio: 0.5,
            mix: (kind == Kind::MixGraph).then(|| Box::new(MixGraph::default().to_mix())),
            trace: None,
        }
    }

    /// A workload that replays the trace at `path`, with sizes and mix read from it (for the
    /// prompt and the data-size estimates).
    pub fn from_trace(path: &std::path::Path, speed: f64) -> Result<Workload, String> {
        let t = super::trace::read(path)?;
        if t.records.is_empty() {
            return Err(format!("trace {} holds no queries", path.display()));
        }
        let s = super::trace::analyze(&t);
        let mut w = Workload::new(Kind::Trace);
        let mut mix = super::trace::to_mix(&s, "trace");
        mix.name = path
            .file_name()
            .map_or("trace".into(), |n| format!("trace:{}", n.to_string_lossy()));
        w.num = s.distinct_keys.max(1) as u64;
        w.key_size = (s.key_bytes_mean.round() as usize).clamp(8, 1024);
        if s.value_bytes_max > 0 {
            w.value_size = s.value_bytes_mean.round() as usize;
        }
        w.mix = Some(Box::new(mix));
        w.trace = Some(TraceReplay {
            path: path.to_path_buf(),
            speed,
        });
        Ok(w)
    }

    /// The name reports and prompts use: the db_bench / YCSB name, or a workload file's name.
    pub fn label(&self) -> String {
        match (&self.mix, self.kind) {
            (Some(m), Kind::Custom | Kind::Trace) if !m.name.is_empty() => m.name.clone(),
            _ => self.kind.name().to_string(),
        }
    }

    /// One line on what it does: the db_bench / YCSB meaning, or a mix's operations and keys.
    pub fn describe(&self) -> String {
        match (&self.mix, self.kind) {
            (Some(m), Kind::MixGraph | Kind::Custom | Kind::Trace) => m.describe(),
            _ => self.kind.describe().to_string(),
        }
    }

    /// Whether writes matter to the measured phase.
    pub fn writes(&self) -> bool {
        self.mix.as_ref().map_or(self.kind.writes(), |m| m.writes())
    }

    /// Whether the measured phase does point lookups.
    pub fn point_reads(&self) -> bool {
        self.mix
            .as_ref()
            .map_or(self.kind.point_reads(), |m| m.point_reads())
    }

    /// Whether the measured phase scans (seek + next).
    pub fn scans(&self) -> bool {
        self.mix.as_ref().map_or(self.kind.scans(), |m| m.scans())
    }

    /// The shares of point reads, writes and scans among the measured phase's operations
    /// (summing to 1; a read-modify-write counts half a read and half a write).
    pub fn shares(&self) -> (f64, f64, f64) {
        let (reads, writes, scans) = match &self.mix {
            Some(m) => {
                let o = &m.ops;
                (
                    o.get + o.multiget + o.rmw / 2.0,
                    o.put + o.delete + o.insert + o.rmw / 2.0,
                    o.seek,
                )
            }
            None => {
                let p = self.readwritepercent as f64 / 100.0;
                let t = self.threads as f64;
                match self.kind {
                    Kind::FillSeq | Kind::FillRandom | Kind::Overwrite => (0.0, 1.0, 0.0),
                    Kind::ReadRandom | Kind::YcsbC => (1.0, 0.0, 0.0),
                    Kind::ReadRandomWriteRandom => (p, 1.0 - p, 0.0),
                    Kind::ReadWhileWriting => (t / (t + 1.0), 1.0 / (t + 1.0), 0.0),
                    Kind::SeekRandom => (0.0, 0.0, 1.0),
                    Kind::UpdateRandom | Kind::YcsbA => (0.5, 0.5, 0.0),
                    Kind::YcsbB | Kind::YcsbD => (0.95, 0.05, 0.0),
                    Kind::YcsbE => (0.0, 0.05, 0.95),
                    Kind::YcsbF => (0.75, 0.25, 0.0),
                    Kind::MixGraph | Kind::Custom | Kind::Trace => (1.0, 0.0, 0.0),
                }
            }
        };
        let sum = reads + writes + scans;
        if sum > 0.0 {
            (reads / sum, writes / sum, scans / sum)
        } else {
            (reads, writes, scans)
        }
    }

    /// How keys are drawn: `uniform`, `zipfian`, `latest`, `hotspot` or `power`.
    pub fn key_distribution(&self) -> &'static str {
        match &self.mix {
            Some(m) => match m.keys {
                super::mix::KeyDist::Uniform => "uniform",
                super::mix::KeyDist::Zipfian { .. } => "zipfian",
                super::mix::KeyDist::Latest { .. } => "latest",
                super::mix::KeyDist::Hotspot { .. } => "hotspot",
                super::mix::KeyDist::Power { .. } => "power",
            },
            None => match self.kind {
                Kind::YcsbA | Kind::YcsbB | Kind::YcsbC | Kind::YcsbE | Kind::YcsbF => "zipfian",
                Kind::YcsbD => "latest",
                _ => "uniform",
            },
        }
    }

    /// Does the database need to be filled before the measured phase?
    pub fn needs_fill(&self) -> bool {
        self.trace.is_some() || self.mix.as_ref().map_or(self.kind.needs_fill(), |m| m.load)
    }

    /// Largest value the workload writes (sizes the pool values are cut from).
    pub fn max_value_size(&self) -> usize {
        self.mix
            .as_ref()
            .and_then(|m| m.value_size.as_ref())
            .map_or(self.value_size, |d| d.max() as usize)
    }

    /// Operations each thread performs in the measured phase (when no duration is set).
    pub fn ops_per_thread(&self) -> u64 {
        self.ops.unwrap_or(self.num)
    }

    /// Check the parameters against the one table of limits ([`crate::bounds`]) flags and
    /// files share; the message names the quantity.
    pub fn validate(&self) -> Result<(), String> {
        use crate::bounds::{
            COMPRESSION_RATIO, DURATION, KEY_SIZE, NUM, OPS, READWRITEPERCENT, SCAN_LENGTH,
            THREADS, VALUE_SIZE, trace_speed,
        };
        NUM.check(self.num)?;
        KEY_SIZE.check(self.key_size as u64)?;
        VALUE_SIZE.check(self.value_size as u64)?;
        THREADS.check(self.threads as u64)?;
        READWRITEPERCENT.check(u64::from(self.readwritepercent))?;
        SCAN_LENGTH.check(u64::from(self.seek_nexts))?;
        COMPRESSION_RATIO.check(self.compression_ratio)?;
        if let Some(ops) = self.ops {
            OPS.check(ops)?;
        }
        if let Some(d) = self.duration {
            DURATION.check_parsed(d)?;
        }
        if let Some(t) = &self.trace {
            trace_speed(t.speed)?;
        }
        match (&self.mix, self.kind) {
            (Some(m), _) => m.validate(self.num)?,
            (None, Kind::MixGraph | Kind::Custom | Kind::Trace) => {
                return Err(format!("{} needs its operation mix", self.kind));
            }
            (None, _) => {}
        }
        Ok(())
    }
}

/// Chooses the operations of a workload for one thread.
pub struct OpChooser<'a> {
    w: &'a Workload,
    zipf: Option<&'a Zipfian>,
    mix: Option<&'a Sampler>,
}

impl<'a> OpChooser<'a> {
    pub fn new(w: &'a Workload, zipf: Option<&'a Zipfian>) -> Self {
        OpChooser { w, zipf, mix: None }
    }

    /// A chooser that draws from an operation mix (mixgraph, a workload file).
    pub fn with_mix(w: &'a Workload, mix: &'a Sampler) -> Self {
        OpChooser {
            w,
            zipf: None,
            mix: Some(mix),
        }
    }

    /// A key as this workload draws them (for MultiGet's keys).
    pub fn key(&self, rng: &mut Rng, latest: u64) -> u64 {
        match self.mix {
            Some(m) => m.key(rng, latest),
            None => self.zipf_key(rng),
        }
    }

    /// The size of the next value written.
    #[inline]
    pub fn value_len(&self, rng: &mut Rng) -> usize {
        self.mix
            .map_or(self.w.value_size, |m| m.value_len(rng, self.w.value_size))
    }

    /// The size of key `k`.
    #[inline]
    pub fn key_len(&self, k: u64) -> usize {
        self.mix
            .map_or(self.w.key_size, |m| m.key_len(k, self.w.key_size))
    }

    fn zipf_key(&self, rng: &mut Rng) -> u64 {
        match self.zipf {
            Some(z) => z.scrambled(rng),
            None => rng.below(self.w.num),
        }
    }

    /// The next operation. `latest` is the newest key written so far (for YCSB D).
    pub fn next(&self, rng: &mut Rng, latest: u64) -> Op {
        if let Some(m) = self.mix {
            return m.next(rng, latest);
        }
        let num = self.w.num;
        let p = rng.below(100) as u32;
        match self.w.kind {
            Kind::FillSeq | Kind::FillRandom | Kind::Overwrite => Op::Write(rng.below(num)),
            Kind::ReadRandom => Op::Read(rng.below(num)),
            Kind::ReadRandomWriteRandom => {
                let k = rng.below(num);
                if p < self.w.readwritepercent {
                    Op::Read(k)
                } else {
                    Op::Write(k)
                }
            }
            Kind::ReadWhileWriting => Op::Read(rng.below(num)),
            Kind::SeekRandom => Op::Scan(rng.below(num), self.w.seek_nexts),
            Kind::UpdateRandom => Op::ReadModifyWrite(rng.below(num)),
            Kind::YcsbA => {
                let k = self.zipf_key(rng);
                if p < 50 { Op::Read(k) } else { Op::Write(k) }
            }
            Kind::YcsbB => {
                let k = self.zipf_key(rng);
                if p < 95 { Op::Read(k) } else { Op::Write(k) }
            }
            Kind::YcsbC => Op::Read(self.zipf_key(rng)),
            Kind::YcsbD => {
                if p < 95 {
                    // "latest": recent keys are the most popular.
                    let back = match self.zipf {
                        Some(z) => z.rank(rng),
                        None => 0,
                    };
                    Op::Read(latest.saturating_sub(back))
                } else {
                    Op::Insert
                }
            }
            Kind::YcsbE => {
                if p < 95 {
                    Op::Scan(self.zipf_key(rng), 1 + rng.below(100) as u32)
                } else {
                    Op::Insert
                }
            }
            Kind::YcsbF => {
                let k = self.zipf_key(rng);
                if p < 50 {
                    Op::Read(k)
                } else {
                    Op::ReadModifyWrite(k)
                }
            }
            // Built with `with_mix`; a mix kind without one reads uniformly.
            Kind::MixGraph | Kind::Custom | Kind::Trace => Op::Read(rng.below(num)),
        }
    }

    /// Whether the workload draws zipfian keys.
    pub fn wants_zipfian(kind: Kind) -> bool {
        matches!(
            kind,
            Kind::YcsbA | Kind::YcsbB | Kind::YcsbC | Kind::YcsbD | Kind::YcsbE | Kind::YcsbF
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_parse_loosely() {
        for k in ALL_KINDS {
            assert_eq!(k.name().parse::<Kind>().unwrap(), *k);
        }
        assert_eq!("YCSB_A".parse::<Kind>().unwrap(), Kind::YcsbA);
        assert_eq!("ycsba".parse::<Kind>().unwrap(), Kind::YcsbA);
        assert!(
            "readsomething"
                .parse::<Kind>()
                .unwrap_err()
                .contains("fillrandom")
        );
    }

    #[test]
    fn keys_sort_like_numbers() {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        make_key(255, 16, &mut a);
        make_key(256, 16, &mut b);
        assert_eq!(a.len(), 16);
        assert!(a < b);
    }

    #[test]
    fn values_compress_about_as_asked() {
        let mut pool = ValuePool::new(1, 0.5, 100);
        let v = pool.next(100).to_vec();
        assert_eq!(v.len(), 100);
        assert_eq!(&v[..50], &v[50..]);
    }

    #[test]
    fn zipfian_is_skewed_and_in_range() {
        let z = Zipfian::new(10_000);
        let mut rng = Rng::new(7);
        let mut hits0 = 0;
        for _ in 0..100_000 {
            let r = z.rank(&mut rng);
            assert!(r < 10_000);
            if r == 0 {
                hits0 += 1;
            }
            assert!(z.scrambled(&mut rng) < 10_000);
        }
        // P(rank 0) = 1 / zeta(10000, 0.99) ~ 0.097.
        assert!((8_000..11_500).contains(&hits0), "{hits0}");
    }

    #[test]
    fn readwritepercent_is_honoured() {
        let mut w = Workload::new(Kind::ReadRandomWriteRandom);
        w.readwritepercent = 90;
        let chooser = OpChooser::new(&w, None);
        let mut rng = Rng::new(3);
        let reads = (0..10_000)
            .filter(|_| matches!(chooser.next(&mut rng, 0), Op::Read(_)))
            .count();
        assert!((8_800..9_200).contains(&reads), "{reads}");
    }

    #[test]
    fn validation_names_the_flag() {
        let mut w = Workload::new(Kind::FillRandom);
        w.threads = 0;
        assert!(
            w.validate()
                .unwrap_err()
                .contains("threads must be 1 to 1024")
        );
        w.threads = 1;
        w.readwritepercent = 101;
        assert!(w.validate().unwrap_err().contains("readwritepercent"));
        w.readwritepercent = 100;
        // Numbers past the table's limits, however they got in (a file, a resumed journal).
        w.num = u64::MAX;
        assert!(w.validate().unwrap_err().contains("num must be"));
        w.num = 1000;
        w.ops = Some(u64::MAX);
        assert!(w.validate().unwrap_err().contains("ops must be"));
        w.ops = None;
        w.seek_nexts = u32::MAX;
        assert!(w.validate().unwrap_err().contains("seek_nexts"));
        w.seek_nexts = 0;
        w.duration = Some(Duration::from_nanos(100));
        assert!(w.validate().unwrap_err().contains("duration must be 1 to"));
    }
}
