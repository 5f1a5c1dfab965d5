//! What "similar" means, and the warm start it gives a tune.
//!
//! Two tunes are comparable only with the same objective. Their distance is the sum of a
//! machine part and a workload part, each in rough "doublings":
//! - machine: |log2| of the ratio of cores, |log2| of the ratio of memory, 1 for another kind
//!   of storage (ssd, hdd, memory), 0.25 for another CPU model;
//! - workload: twice the share of operations that differ (the mix of point reads, writes and
//!   scans: half the L1 distance of the shares, times 2), |log10| of the ratio of the data
//!   size, half the |log2| of the ratio of value sizes, 0.25 x |log2| of the ratio of client
//!   threads, 0.5 for another key distribution, 0.5 for another starting configuration.
//!
//! A past tune is **similar** when both parts are at most [`MAX_PART`] (1.0): e.g. the same
//! machine class and readrandomwriterandom (90% reads) against readrandom is 0.2; readrandom
//! against fillrandom is 2, not similar; ten times the data is 1.0, still similar. The nearest
//! [`NEIGHBOURS`] similar tunes are a tune's [`Warm`] start: shown in the prompt (what gained
//! and what did not, with intervals), and the first candidate of the expert, the search and
//! the model-steered search is the nearest tune's kept changes when its gain was confirmed
//! ([`crate::tune::warm::seed`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Features, Machine, Outcome, Step, Tune};

/// Most distance in each part (machine, workload) for a past tune to count as similar.
pub const MAX_PART: f64 = 1.0;
/// Past tunes a warm start keeps (nearest first).
pub const NEIGHBOURS: usize = 3;
/// Measured steps of each neighbour a warm start keeps (the kept ones first).
const STEPS: usize = 8;

/// How near a past tune is, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Similarity {
    pub distance: f64,
    pub machine: f64,
    pub workload: f64,
    /// What differs, in words (empty: the same machine class and workload).
    pub differences: Vec<String>,
}

impl Similarity {
    /// `distance 0.20: reads 100% vs 90%` or `distance 0.00: the same machine class and workload`.
    pub fn describe(&self) -> String {
        if self.differences.is_empty() {
            format!(
                "distance {:.2}: the same machine class and workload",
                self.distance
            )
        } else {
            format!(
                "distance {:.2}: {}",
                self.distance,
                self.differences.join("; ")
            )
        }
    }

    pub fn similar(&self) -> bool {
        self.machine <= MAX_PART && self.workload <= MAX_PART
    }
}

fn log_ratio(a: f64, b: f64, base: f64) -> f64 {
    if a <= 0.0 || b <= 0.0 {
        return if a == b { 0.0 } else { 1.0 };
    }
    (a / b).ln().abs() / base.ln()
}

/// The distance of a past tune (`past_*`) from the tune about to start (`now_*`); None when
/// they cannot be compared (another objective).
pub fn compare(
    now_m: &Machine,
    now_w: &Features,
    now_objective: &str,
    now_start: &str,
    past: &Tune,
) -> Option<Similarity> {
    if past.objective != now_objective {
        return None;
    }
    let (pm, pw) = (&past.machine, &past.workload);
    let mut why = Vec::new();
    let mut machine = 0.0;
    let c = log_ratio(now_m.cores as f64, pm.cores as f64, 2.0);
    if c > 0.0 {
        why.push(format!("{} cores vs {}", pm.cores, now_m.cores));
    }
    let mem = log_ratio(now_m.memory_bytes as f64, pm.memory_bytes as f64, 2.0);
    if mem > 0.05 {
        why.push(format!(
            "{} vs {} of memory",
            crate::options::value::human_bytes(pm.memory_bytes as i64),
            crate::options::value::human_bytes(now_m.memory_bytes as i64)
        ));
    }
    machine += c + if mem > 0.05 { mem } else { 0.0 };
    if pm.storage != now_m.storage {
        machine += 1.0;
        why.push(format!("{} storage vs {}", pm.storage, now_m.storage));
    }
    if pm.cpu_model != now_m.cpu_model {
        machine += 0.25;
        why.push("another CPU model".into());
    }
    let mut workload = (pw.reads - now_w.reads).abs()
        + (pw.writes - now_w.writes).abs()
        + (pw.scans - now_w.scans).abs();
    if workload > 1e-9 {
        why.push(format!("its mix {} vs {}", shares(pw), shares(now_w)));
    }
    let data = log_ratio(now_w.data_bytes as f64, pw.data_bytes as f64, 10.0);
    if data > 0.01 {
        workload += data;
        why.push(format!(
            "{} of data vs {}",
            crate::options::value::human_bytes(pw.data_bytes as i64),
            crate::options::value::human_bytes(now_w.data_bytes as i64)
        ));
    }
    let values = log_ratio(now_w.value_size as f64, pw.value_size as f64, 2.0);
    if values > 0.0 {
        workload += values / 2.0;
        why.push(format!(
            "{} B values vs {}",
            pw.value_size, now_w.value_size
        ));
    }
    let threads = log_ratio(now_w.threads as f64, pw.threads as f64, 2.0);
    if threads > 0.0 {
        workload += threads / 4.0;
        why.push(format!("{} threads vs {}", pw.threads, now_w.threads));
    }
    if pw.keys != now_w.keys {
        workload += 0.5;
        why.push(format!("{} keys vs {}", pw.keys, now_w.keys));
    }
    if past.start != now_start {
        workload += 0.5;
        why.push("another starting configuration".into());
    }
    Some(Similarity {
        distance: machine + workload,
        machine,
        workload,
        differences: why,
    })
}

fn shares(f: &Features) -> String {
    format!(
        "{:.0}/{:.0}/{:.0}% reads/writes/scans",
        f.reads * 100.0,
        f.writes * 100.0,
        f.scans * 100.0
    )
}

/// A similar past tune, as a warm start keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbour {
    pub id: String,
    pub workload: String,
    pub recorded: u64,
    pub similarity: Similarity,
    pub outcome: Option<Outcome>,
    /// What it kept, against its start.
    pub best: BTreeMap<String, String>,
    /// Its measured steps (the kept ones first, then the largest effects).
    pub steps: Vec<Step>,
}

/// The warm start of a tune: where the history was read, how many past tunes it held, and the
/// nearest similar ones. Journaled with the tune's start, so a resumed tune is warmed the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warm {
    pub store: String,
    /// Past tunes read.
    pub considered: usize,
    pub neighbours: Vec<Neighbour>,
    /// What went wrong reading the history (the tune went on without what could not be read).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// The nearest similar tunes among `past`.
pub fn nearest(
    machine: &Machine,
    features: &Features,
    objective: &str,
    start: &str,
    past: &[Tune],
) -> Vec<Neighbour> {
    let mut near: Vec<(Similarity, &Tune)> = past
        .iter()
        .filter_map(|t| Some((compare(machine, features, objective, start, t)?, t)))
        .filter(|(s, _)| s.similar())
        .collect();
    // Nearest first; among equals, the newer.
    near.sort_by(|a, b| {
        a.0.distance
            .total_cmp(&b.0.distance)
            .then(b.1.recorded.cmp(&a.1.recorded))
    });
    near.into_iter()
        .take(NEIGHBOURS)
        .map(|(similarity, t)| {
            let mut steps = t.steps.clone();
            steps.sort_by(|a, b| {
                b.kept
                    .cmp(&a.kept)
                    .then(b.effect.abs().total_cmp(&a.effect.abs()))
            });
            steps.truncate(STEPS);
            Neighbour {
                id: t.id.clone(),
                workload: t.workload.label.clone(),
                recorded: t.recorded,
                similarity,
                outcome: t.outcome,
                best: t.best.clone(),
                steps,
            }
        })
        .collect()
}

pub(crate) fn pct(x: f64) -> String {
    format!("{:+.0}%", x * 100.0)
}

/// `key=value` with sizes and fractions as the prompt shows them elsewhere (`256 MiB`, `10`).
fn listed(changes: &BTreeMap<String, String>) -> String {
    use crate::options::value::{show, value_of};
    let catalog = crate::options::catalog().ok();
    changes
        .iter()
        .map(|(k, v)| {
            let typed = catalog
                .and_then(|c| c.get(k))
                .and_then(|e| value_of(&e.spec.ty, v).map(|x| show(&e.spec.ty, &x)));
            format!("{k}={}", typed.as_deref().unwrap_or(v))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The prompt's lines on the nearest past tunes (a list, one item per tune): what each kept
/// with its final gain, and what it measured that did not pay.
pub fn prompt_lines(warm: &Warm) -> Vec<String> {
    let mut lines = Vec::new();
    for n in &warm.neighbours {
        let head = format!(
            "{} ({})",
            crate::input::clip(&n.workload),
            n.similarity.describe()
        );
        match n.outcome {
            Some(o) if o.confirmed() && !n.best.is_empty() => lines.push(format!(
                "- {head}: kept {} → {} [{}, {}] vs its start",
                listed(&n.best),
                pct(o.effect),
                pct(o.low),
                pct(o.high)
            )),
            _ => lines.push(format!("- {head}: found nothing that held up")),
        }
        let lost: Vec<String> = n
            .steps
            .iter()
            .filter(|s| !s.kept)
            .take(4)
            .map(|s| {
                format!(
                    "{} {} [{}, {}]",
                    listed(&s.changes),
                    pct(s.effect),
                    pct(s.low),
                    pct(s.high)
                )
            })
            .collect();
        if !lost.is_empty() {
            lines.push(format!("  - not kept there: {}", lost.join("; ")));
        }
    }
    lines
}

/// The report's section on the warm start (markdown).
pub fn report_section(w: &Warm) -> String {
    let mut m = String::from("## History\n\n");
    for warning in &w.warnings {
        m.push_str(&format!("Warning: {warning}\n\n"));
    }
    m.push_str(&format!(
        "Read {} past tune(s) from `{}`. Similar means the same objective and, in rough \
         doublings, a machine part (cores, memory, storage kind, CPU model) and a workload part \
         (operation mix, data size, value size, threads, key distribution, start) each at most \
         {MAX_PART}.\n\n",
        w.considered, w.store
    ));
    if w.neighbours.is_empty() {
        m.push_str("None was similar: a cold start.\n\n");
        return m;
    }
    m.push_str(
        "| past tune | workload | similarity | its result | kept there |\n|---|---|---|---|---|\n",
    );
    for n in &w.neighbours {
        let result = match n.outcome {
            Some(o) if !o.kept_start => {
                format!("{} [{}, {}]", pct(o.effect), pct(o.low), pct(o.high))
            }
            _ => "start kept".into(),
        };
        m.push_str(&format!(
            "| {} ({}) | {} | {} | {} | {} |\n",
            n.id,
            super::date(n.recorded),
            crate::input::clip(&n.workload),
            n.similarity.describe(),
            result,
            if n.best.is_empty() {
                "-".to_string()
            } else {
                listed(&n.best)
            }
        ));
    }
    m.push('\n');
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Workload;
    use crate::bench::workload::Kind;

    fn machine() -> Machine {
        Machine {
            fingerprint: "f".into(),
            cores: 2,
            memory_bytes: 24 << 30,
            cpu_model: Some("cpu".into()),
            storage: "ssd".into(),
            filesystem: Some("ext4".into()),
            rocksdb: "10.4.2".into(),
        }
    }

    fn past(kind: Kind, m: Machine) -> Tune {
        let mut w = Workload::new(kind);
        w.num = 300_000;
        w.value_size = 400;
        w.threads = 2;
        Tune {
            format: super::super::FORMAT.into(),
            id: format!("{kind:?}"),
            recorded: 1,
            version: "0".into(),
            machine: m,
            workload: Features::of(&w),
            objective: "throughput".into(),
            proposer: "expert".into(),
            start: "defaults".into(),
            steps: vec![],
            outcome: Some(Outcome {
                effect: 1.0,
                low: 0.5,
                high: 1.5,
                kept_start: false,
            }),
            best: BTreeMap::from([("table.filter_bits_per_key".into(), "10".into())]),
            iterations: 8,
            elapsed_secs: 100.0,
            source: None,
        }
    }

    fn now(kind: Kind) -> Features {
        past(kind, machine()).workload
    }

    #[test]
    fn the_same_workload_on_the_same_machine_class_is_at_distance_zero() {
        let s = compare(
            &machine(),
            &now(Kind::ReadRandom),
            "throughput",
            "defaults",
            &past(Kind::ReadRandom, machine()),
        )
        .unwrap();
        assert_eq!(s.distance, 0.0);
        assert!(s.similar() && s.differences.is_empty());
    }

    #[test]
    fn a_read_heavy_mix_is_near_reads_and_far_from_writes() {
        let rr = past(Kind::ReadRandom, machine());
        let s = compare(
            &machine(),
            &now(Kind::ReadRandomWriteRandom),
            "throughput",
            "defaults",
            &rr,
        )
        .unwrap();
        assert!((s.workload - 0.2).abs() < 1e-9, "{s:?}");
        assert!(s.similar());
        let s = compare(
            &machine(),
            &now(Kind::FillRandom),
            "throughput",
            "defaults",
            &rr,
        )
        .unwrap();
        assert!((s.workload - 2.0).abs() < 1e-9, "{s:?}");
        assert!(!s.similar());
        // Another objective is never compared.
        assert!(compare(&machine(), &now(Kind::ReadRandom), "p99", "defaults", &rr).is_none());
    }

    #[test]
    fn another_machine_class_counts_in_doublings() {
        let mut big = machine();
        big.cores = 8;
        let s = compare(
            &machine(),
            &now(Kind::ReadRandom),
            "throughput",
            "defaults",
            &past(Kind::ReadRandom, big),
        )
        .unwrap();
        assert!((s.machine - 2.0).abs() < 1e-9 && !s.similar(), "{s:?}");
        assert!(s.describe().contains("8 cores vs 2"), "{}", s.describe());
    }

    #[test]
    fn nearest_orders_by_distance_and_drops_the_dissimilar() {
        let all = vec![
            past(Kind::FillRandom, machine()),
            past(Kind::ReadRandomWriteRandom, machine()),
            past(Kind::ReadRandom, machine()),
        ];
        let n = nearest(
            &machine(),
            &now(Kind::ReadRandom),
            "throughput",
            "defaults",
            &all,
        );
        let ids: Vec<&str> = n.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["ReadRandom", "ReadRandomWriteRandom"]);
        let warm = Warm {
            store: "h".into(),
            considered: 3,
            neighbours: n,
            warnings: vec![],
        };
        let lines = prompt_lines(&warm);
        assert!(lines[0].contains("- readrandom (distance 0.00: the same machine class and workload): kept table.filter_bits_per_key=10 → +100% [+50%, +150%]"), "{lines:?}");
        let md = report_section(&warm);
        assert!(
            md.contains("| ReadRandom (1970-01-01) | readrandom | distance 0.00"),
            "{md}"
        );
    }
}
