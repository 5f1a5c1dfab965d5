//! A compare split over machines (a Slurm array, a Kubernetes indexed job): which shard runs
//! which (workload, proposer, seed) tune, what a shard records about itself (`shard.json`), and
//! the checks `compare merge` makes before it combines shards into one table.
//!
//! - Assignment is deterministic, computed alike by every shard from the same matrix: tunes
//!   sorted by expected cost (a model proposer costs more than the rules) then by name, each
//!   given to the least-loaded shard (longest-processing-time first), so shards end together.
//! - Each shard is an ordinary resumable compare folder with its own baseline per workload
//!   (nodes differ), plus `shard.json`: its index, the whole matrix, the settings every tune of a
//!   workload is run with, the binary, and the machine's facts.
//! - Merging refuses shards of different matrices, settings, workload definitions or binaries,
//!   naming the difference, and says when the machines differ.

use std::path::Path;

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use crate::tune::journal::{self, Settings};

/// The file a shard's folder records itself in.
pub const FILE: &str = "shard.json";

/// Shard `index` of `count`, counted from 0 (as Slurm's array index from 0 and Kubernetes'
/// completion index are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// The most shards a compare is split into.
pub const MAX_SHARDS: usize = 10_000;

impl Shard {
    /// `I/N`, 0 <= I < N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (i, n) = text.split_once('/').ok_or_else(|| {
            format!("`{text}` is not a shard: write I/N (0/4 is the first of 4), or auto")
        })?;
        let parse = |s: &str, what: &str| {
            s.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{text}`: {what} `{s}` is not a whole number"))
        };
        Shard::new(parse(i, "the index")?, parse(n, "the count")?)
    }

    pub fn new(index: usize, count: usize) -> Result<Shard, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "a shard count of {count} is outside 1..{MAX_SHARDS}"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the count {count} (shards count from 0: 0/{count} .. {}/{count})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `--shard auto`: Slurm's `SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN`, of
    /// `SLURM_ARRAY_TASK_COUNT` (else MAX - MIN + 1); else Kubernetes' `JOB_COMPLETION_INDEX` of
    /// `count` (`--shard-count`, since an indexed job does not tell its pods the count).
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        count: Option<usize>,
    ) -> Result<Shard, String> {
        let num = |k: &str| -> Result<Option<usize>, String> {
            match env(k) {
                None => Ok(None),
                Some(v) => v
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("{k}={v} is not a whole number")),
            }
        };
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let n = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
                (Some(n), _) => n,
                (None, Some(max)) => max.saturating_sub(min) + 1,
                (None, None) => count.ok_or(
                    "SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor SLURM_ARRAY_TASK_MAX: give --shard-count",
                )?,
            };
            if let Some(c) = count.filter(|c| *c != n) {
                return Err(format!(
                    "--shard-count {c} disagrees with Slurm's array of {n} tasks"
                ));
            }
            return Shard::new(
                id.checked_sub(min)
                    .ok_or("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN")?,
                n,
            );
        }
        if let Some(i) = num("JOB_COMPLETION_INDEX")? {
            let n = count.ok_or(
                "JOB_COMPLETION_INDEX is set (a Kubernetes indexed job): give the job's completions as --shard-count",
            )?;
            return Shard::new(i, n);
        }
        Err("--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm array) nor JOB_COMPLETION_INDEX (a Kubernetes indexed job) is set; give --shard I/N".into())
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// One tune of the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub workload: String,
    /// The proposer's folder name (`Variant::slug`).
    pub proposer: String,
    pub seed: u64,
    /// Expected cost relative to a rule-based tune of the same workload.
    pub cost: f64,
}

/// The expected cost of a tune: its workload's data (the fill and reads grow with it) times
/// the proposer's overhead. A local model adds its own seconds to each iteration's ~30 s of
/// benchmarking (6-13 s measured for 0.1-0.5B models on 2 cores, BENCHMARKS.md); an endpoint
/// waits on the network.
pub fn cost(backend: crate::tune::backend::Backend, data_bytes: u64) -> f64 {
    use crate::tune::backend::Backend;
    let proposer = match backend {
        Backend::Local | Backend::Auto => 1.4,
        Backend::Openai | Backend::Ollama | Backend::Lmstudio => 1.2,
        Backend::Expert | Backend::Search | Backend::Random => 1.0,
    };
    proposer * (data_bytes.max(1) as f64 / 125e6).max(0.1)
}

/// The shard of each task, longest first onto the least loaded shard: the same for every shard
/// that computes it from the same tasks (ties go by name, then to the lower index).
pub fn assign(tasks: &[Task], count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&tasks[a], &tasks[b]);
        y.cost.total_cmp(&x.cost).then_with(|| {
            (&x.workload, &x.proposer, x.seed).cmp(&(&y.workload, &y.proposer, y.seed))
        })
    });
    let mut load = vec![0.0f64; count.max(1)];
    let mut out = vec![0; tasks.len()];
    for i in order {
        let s = (0..load.len())
            .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
            .unwrap_or(0);
        load[s] += tasks[i].cost;
        out[i] = s;
    }
    out
}

/// A proposer of the matrix as the command line gave it, with its ablation switches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProposerEntry {
    /// As `--proposers` wrote it (`expert`, `local:/models/q.gguf`).
    pub spec: String,
    pub hints: Option<crate::tune::prompt::HintLevel>,
    pub search: bool,
    pub slug: String,
}

/// What a shard records about itself (`shard.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub shard: Shard,
    /// lsmtune's version and the RocksDB it links: results of other binaries do not mix.
    pub version: String,
    pub rocksdb: String,
    pub proposers: Vec<ProposerEntry>,
    /// Each workload's name and the settings its tunes run with (seed 1, first proposer; the
    /// workload definition included).
    pub workloads: Vec<(String, Settings)>,
    pub seeds: Vec<u64>,
    /// Every tune of the matrix and its shard.
    pub tasks: Vec<(Task, usize)>,
    pub facts: crate::sysinfo::Facts,
}

impl Manifest {
    /// The tasks this shard runs.
    pub fn mine(&self) -> impl Iterator<Item = &Task> {
        self.tasks
            .iter()
            .filter(|(_, s)| *s == self.shard.index)
            .map(|(t, _)| t)
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        crate::runfolder::write(
            &dir.join(FILE),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE);
        let bytes = crate::runfolder::read(&path).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a shard of a compare (no readable {FILE}: {e:#}); shards are made by `lsmtune compare --shard I/N`",
                dir.display()
            )
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a shard manifest lsmtune wrote: {e}",
                path.display()
            )
        })
    }
}

/// Check that `shards` (with their folders) are the whole of one compare: the same binary,
/// matrix and settings, every index once. Returns notes for the table (machines that differ).
pub fn check(shards: &[(std::path::PathBuf, Manifest)]) -> Result<Vec<String>> {
    let Some((first_dir, first)) = shards.first() else {
        bail!("no shard folders given");
    };
    let name = |d: &Path, m: &Manifest| format!("{} (shard {})", d.display(), m.shard);
    let mut seen = vec![None; first.shard.count];
    for (dir, m) in shards {
        let this = name(dir, m);
        let them = name(first_dir, first);
        if m.shard.count != first.shard.count {
            bail!(
                "{this} is one of {} shards, {them} one of {}: not the same split",
                m.shard.count,
                first.shard.count
            );
        }
        if (m.version.as_str(), m.rocksdb.as_str())
            != (first.version.as_str(), first.rocksdb.as_str())
        {
            bail!(
                "{this} ran lsmtune {} with RocksDB {}, {them} lsmtune {} with RocksDB {}: results of different binaries do not mix",
                m.version,
                m.rocksdb,
                first.version,
                first.rocksdb
            );
        }
        if m.proposers != first.proposers || m.seeds != first.seeds {
            bail!("{this} and {them} ran different matrices (proposers or seeds differ)");
        }
        let names: Vec<&String> = m.workloads.iter().map(|(n, _)| n).collect();
        let first_names: Vec<&String> = first.workloads.iter().map(|(n, _)| n).collect();
        if names != first_names {
            bail!("{this} ran workloads {names:?}, {them} {first_names:?}");
        }
        for ((w, s), (_, f)) in m.workloads.iter().zip(&first.workloads) {
            let d = journal::differences(f, s);
            if !d.is_empty() {
                bail!(
                    "{this} and {them} ran {w} with different settings: {}",
                    d.iter().take(3).cloned().collect::<Vec<_>>().join("; ")
                );
            }
        }
        if m.tasks != first.tasks {
            bail!("{this} and {them} split the matrix differently");
        }
        match &mut seen[m.shard.index] {
            Some(other) => bail!("{this} and {other} are the same shard"),
            slot => *slot = Some(this),
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{}", first.shard.count))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard(s) {} missing: give every shard's folder",
            missing.join(", ")
        );
    }
    let describe = |f: &crate::sysinfo::Facts| {
        format!(
            "{} cores, {} memory, {}{}",
            f.cores,
            crate::options::value::human_bytes(f.memory_bytes as i64),
            f.storage_device.as_deref().unwrap_or("unknown storage"),
            f.filesystem
                .as_ref()
                .map(|fs| format!(" ({fs})"))
                .unwrap_or_default()
        )
    };
    let mut notes = Vec::new();
    let machines: Vec<String> = shards.iter().map(|(_, m)| describe(&m.facts)).collect();
    if machines.iter().any(|m| *m != machines[0]) {
        notes.push(format!(
            "The shards ran on different machines, so rows mix them (each tune is judged against its own shard's start): {}.",
            shards
                .iter()
                .zip(&machines)
                .map(|((_, m), d)| format!("shard {}: {d}", m.shard))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    Ok(notes)
}

/// Copy the folder `from` into `to` (made inside `root`), file by file: regular files and
/// folders only, never through a link ([`crate::runfolder`]); files already in `to` are replaced.
pub fn copy_tree(from: &Path, root: &Path, to: &Path) -> Result<()> {
    use crate::runfolder;
    if !runfolder::is_dir(from) {
        bail!(
            "{} is not a folder (a link is never followed)",
            from.display()
        );
    }
    runfolder::ensure_dirs(root, to)?;
    let mut entries: Vec<_> = std::fs::read_dir(from)?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        let Some(name) = p.file_name() else { continue };
        if runfolder::is_dir(&p) {
            copy_tree(&p, root, &to.join(name))?;
        } else if runfolder::is_file(&p) {
            runfolder::write(&to.join(name), &runfolder::read(&p)?)?;
        } else {
            bail!(
                "{}: not a regular file or folder (links are not copied)",
                p.display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tasks() -> Vec<Task> {
        let mut v = Vec::new();
        for w in ["fillrandom", "readrandom", "ycsb-a"] {
            for (p, c) in [("expert", 1.0), ("random", 1.0), ("local-q", 1.4)] {
                for seed in 1..=3 {
                    v.push(Task {
                        workload: w.into(),
                        proposer: p.into(),
                        seed,
                        cost: c,
                    });
                }
            }
        }
        v
    }

    #[test]
    fn shards_parse_from_flags_and_from_slurm_or_kubernetes() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse(" 3 / 4 "), Ok(Shard { index: 3, count: 4 }));
        for bad in ["4/4", "1", "a/2", "1/0", "-1/2"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        // Slurm: --array=1-4 gives ids 1..4 with MIN 1.
        let slurm = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::from_env(&slurm, None),
            Ok(Shard { index: 2, count: 4 })
        );
        let slurm_max = env(&[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_MIN", "0"),
            ("SLURM_ARRAY_TASK_MAX", "1"),
        ]);
        assert_eq!(
            Shard::from_env(&slurm_max, None),
            Ok(Shard { index: 0, count: 2 })
        );
        assert!(
            Shard::from_env(&slurm, Some(3))
                .unwrap_err()
                .contains("disagrees")
        );
        let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(
            Shard::from_env(&k8s, Some(2)),
            Ok(Shard { index: 1, count: 2 })
        );
        assert!(
            Shard::from_env(&k8s, None)
                .unwrap_err()
                .contains("--shard-count")
        );
        assert!(
            Shard::from_env(&env(&[]), Some(2))
                .unwrap_err()
                .contains("neither")
        );
    }

    #[test]
    fn every_task_goes_to_one_shard_and_the_loads_are_balanced() {
        let t = tasks();
        for count in [1, 2, 3, 4, 7, 40] {
            let a = assign(&t, count);
            assert_eq!(a.len(), t.len());
            assert!(a.iter().all(|s| *s < count));
            // The same answer every time (every shard computes it on its own).
            assert_eq!(a, assign(&t, count));
            let mut load = vec![0.0; count];
            for (task, s) in t.iter().zip(&a) {
                load[*s] += task.cost;
            }
            let (lo, hi) = load
                .iter()
                .fold((f64::MAX, 0.0f64), |(l, h), x| (l.min(*x), h.max(*x)));
            let biggest = t.iter().map(|x| x.cost).fold(0.0, f64::max);
            // Longest-first greedy: no shard exceeds another by more than one task.
            if count <= t.len() {
                assert!(hi - lo <= biggest + 1e-9, "count {count}: {load:?}");
            }
        }
        // The order of the tasks as listed does not matter.
        let mut rev = tasks();
        rev.reverse();
        let a = assign(&tasks(), 4);
        let b = assign(&rev, 4);
        for (i, task) in tasks().iter().enumerate() {
            let j = rev.iter().position(|r| r == task).unwrap();
            assert_eq!(a[i], b[j]);
        }
    }

    #[test]
    fn a_model_tune_costs_more_than_a_rule_tune_and_bigger_data_more_again() {
        use crate::tune::backend::Backend;
        assert!(cost(Backend::Local, 125_000_000) > cost(Backend::Expert, 125_000_000));
        assert!(cost(Backend::Expert, 1_250_000_000) > 5.0 * cost(Backend::Expert, 125_000_000));
    }
}
