//! What a tune optimizes (`--objective`) and what it must not break (`--max-p99 5ms`,
//! `--max-space-amp 1.5`, ...). Every objective becomes a *goodness* per repeat, higher is
//! better (ops/s, or the reciprocal of a latency percentile, of write amplification or of space
//! amplification), so the loop's paired, confirmed comparisons stay the same for all of them and
//! a gain reads the same way: +20% p99 means the 99th percentile became 1.2x shorter. A
//! constraint is checked on its own 95% interval over the candidate's repeats: met when the
//! whole interval is within the limit, violated when the whole interval is beyond it, unclear
//! otherwise; only a candidate that meets every constraint may be kept.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::bench::Measurement;
use crate::bench::sample::Sample;
use crate::bench::stats::{Summary, t_quantile};

/// A metric a measurement reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Operations per second (higher is better).
    #[default]
    Throughput,
    /// 99th percentile latency, microseconds.
    P99,
    /// 99.9th percentile latency, microseconds.
    P999,
    /// (flush + compaction bytes written) / bytes written by the user.
    WriteAmp,
    /// Size on disk / logical data size (keys x (key + value size)).
    SpaceAmp,
}

pub const METRICS: &[Metric] = &[
    Metric::Throughput,
    Metric::P99,
    Metric::P999,
    Metric::WriteAmp,
    Metric::SpaceAmp,
];

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::P99 => "p99",
            Metric::P999 => "p999",
            Metric::WriteAmp => "write-amp",
            Metric::SpaceAmp => "space-amp",
        }
    }

    /// How a value reads: "ops/s", "µs", "x".
    pub fn unit(self) -> &'static str {
        match self {
            Metric::Throughput => "ops/s",
            Metric::P99 | Metric::P999 => "µs",
            Metric::WriteAmp | Metric::SpaceAmp => "x",
        }
    }

    pub fn higher_is_better(self) -> bool {
        self == Metric::Throughput
    }

    /// The metric's value in a measurement, when it has one.
    pub fn value(self, m: &Measurement) -> Option<f64> {
        let v = match self {
            Metric::Throughput => m.ops_per_sec,
            Metric::P99 => m.latency_us.p99,
            Metric::P999 => m.latency_us.p999,
            Metric::WriteAmp => m.diagnostics.as_ref()?.write_amplification?,
            Metric::SpaceAmp => {
                let w = &m.workload;
                let logical = w.num as f64 * (w.key_size + w.value_size) as f64;
                if logical <= 0.0 || m.size_on_disk == 0 {
                    return None;
                }
                m.size_on_disk as f64 / logical
            }
        };
        (v.is_finite() && v > 0.0).then_some(v)
    }

    /// Higher is better: the value, or its reciprocal for the lower-is-better metrics.
    pub fn goodness(self, m: &Measurement) -> Option<f64> {
        let v = self.value(m)?;
        Some(if self.higher_is_better() { v } else { 1.0 / v })
    }

    /// The mean over a sample's runs (ops/s from `ops_per_sec` when the sample, from an older
    /// journal, kept no runs).
    pub fn mean(self, s: &Sample) -> Option<f64> {
        let v: Vec<f64> = if self == Metric::Throughput && s.runs.is_empty() {
            s.ops_per_sec.clone()
        } else {
            s.runs.iter().filter_map(|r| self.value(r)).collect()
        };
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// How many times better sample `s` is than `base` on this metric (above 1 is better): the
    /// ratio of the means, inverted for the lower-is-better metrics (a p99 halved is 2.0).
    pub fn ratio(self, s: &Sample, base: &Sample) -> Option<f64> {
        let (v, b) = (self.mean(s)?, self.mean(base)?);
        let r = if self.higher_is_better() {
            v / b
        } else {
            b / v
        };
        r.is_finite().then_some(r)
    }

    /// A value with its unit, as reports show it.
    pub fn show(self, v: f64) -> String {
        match self {
            Metric::Throughput => format!("{v:.0} ops/s"),
            Metric::P99 | Metric::P999 if v >= 1000.0 => format!("{:.2} ms", v / 1000.0),
            Metric::P99 | Metric::P999 => format!("{v:.1} µs"),
            Metric::WriteAmp | Metric::SpaceAmp => format!("{v:.2}x"),
        }
    }
}

impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Metric {
    type Err = String;
    fn from_str(s: &str) -> Result<Metric, String> {
        let want = s.trim().to_ascii_lowercase().replace('_', "-");
        let want = match want.as_str() {
            "ops" | "ops/s" | "qps" => "throughput",
            "p99.9" => "p999",
            "space" => "space-amp",
            "wa" | "write-amplification" => "write-amp",
            other => other,
        };
        METRICS
            .iter()
            .copied()
            .find(|m| m.name() == want)
            .ok_or_else(|| {
                format!(
                    "unknown objective `{s}`; one of: {}",
                    METRICS
                        .iter()
                        .map(|m| m.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// A bound a tuned configuration must respect.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Constraint {
    pub metric: Metric,
    /// The bound: a maximum for latencies and amplifications, a minimum for throughput.
    pub limit: f64,
}

/// Where a constraint stands for one configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "verdict")]
pub enum Check {
    Met {
        low: f64,
        high: f64,
    },
    Violated {
        low: f64,
        high: f64,
    },
    /// The interval straddles the limit: more repeats could tell; not kept meanwhile.
    Unclear {
        low: f64,
        high: f64,
    },
    /// The measurement lacks the metric (db_bench has no write amplification).
    Unmeasured,
}

impl Check {
    pub fn met(&self) -> bool {
        matches!(self, Check::Met { .. })
    }
}

impl Constraint {
    /// `--max-p99 5ms` and friends: a latency takes µs, ms or s (plain numbers are µs); an
    /// amplification or a throughput a plain number.
    pub fn parse(metric: Metric, text: &str) -> Result<Constraint, String> {
        let t = text.trim();
        let limit = match metric {
            Metric::P99 | Metric::P999 => {
                let (v, unit) = crate::bench::workload_file::number_and_unit(t)
                    .ok_or_else(|| format!("`{text}` is not a latency (e.g. 500us, 5ms)"))?;
                v * match unit.trim() {
                    "" | "us" | "µs" => 1.0,
                    "ms" => 1e3,
                    "s" => 1e6,
                    u => return Err(format!("`{text}`: unknown unit `{u}` (us, ms or s)")),
                }
            }
            _ => t
                .parse::<f64>()
                .map_err(|_| format!("`{text}` is not a number"))?,
        };
        let c = Constraint { metric, limit };
        c.validate().map_err(|e| format!("`{text}`: {e}"))?;
        Ok(c)
    }

    /// Whether the limit can be a limit: positive and finite, and an amplification at least 1
    /// (the same check for a flag and for a journal being resumed).
    pub fn validate(&self) -> Result<(), String> {
        if !(self.limit.is_finite() && self.limit > 0.0) {
            return Err(format!(
                "the {} limit must be a positive number",
                self.metric
            ));
        }
        if matches!(self.metric, Metric::WriteAmp | Metric::SpaceAmp) && self.limit < 1.0 {
            return Err(format!(
                "a {} limit below 1 ({}) cannot be met: the data itself is 1x",
                self.metric, self.limit
            ));
        }
        Ok(())
    }

    /// "p99 <= 5.00 ms", "throughput >= 20000 ops/s".
    pub fn describe(&self) -> String {
        let op = if self.metric.higher_is_better() {
            ">="
        } else {
            "<="
        };
        format!("{} {op} {}", self.metric, self.metric.show(self.limit))
    }

    /// Check the constraint on a configuration's repeats (95% t-interval of the mean of the
    /// logarithms, so it stays positive).
    pub fn check(&self, repeats: &[&Measurement]) -> Check {
        let logs: Vec<f64> = repeats
            .iter()
            .filter_map(|m| self.metric.value(m))
            .map(f64::ln)
            .collect();
        let Some(s) = Summary::of(&logs) else {
            return Check::Unmeasured;
        };
        let half = if s.n >= 2 {
            t_quantile(0.975, (s.n - 1) as f64) * s.sd / (s.n as f64).sqrt()
        } else {
            f64::INFINITY
        };
        let (low, high) = ((s.mean - half).exp(), (s.mean + half).exp());
        let (inside, outside) = if self.metric.higher_is_better() {
            (low >= self.limit, high < self.limit)
        } else {
            (high <= self.limit, low > self.limit)
        };
        if inside {
            Check::Met { low, high }
        } else if outside {
            Check::Violated { low, high }
        } else {
            Check::Unclear { low, high }
        }
    }
}

/// What the tune is for: the objective and the constraints (serialized into the journal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Goal {
    #[serde(default)]
    pub objective: Metric,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<Constraint>,
}

impl Goal {
    /// The goodness of each repeat of a sample, in order (throughput from `ops_per_sec`, so
    /// journals without whole measurements still judge; other metrics from the runs).
    pub fn goodness(&self, s: &Sample) -> Vec<f64> {
        match self.objective {
            Metric::Throughput => s.ops_per_sec.clone(),
            m => s.runs.iter().filter_map(|r| m.goodness(r)).collect(),
        }
    }

    /// The per-round log ratios of goodness, candidate over best, of two samples measured in
    /// interleaved rounds; empty unless every round measured both (a failed repeat breaks the
    /// pairing).
    pub fn pair_logs(&self, best: &Sample, cand: &Sample) -> Vec<f64> {
        let (b, c) = (self.goodness(best), self.goodness(cand));
        if !best.failures.is_empty() || !cand.failures.is_empty() || b.len() != c.len() {
            return Vec::new();
        }
        b.iter()
            .zip(&c)
            .filter(|(x, y)| **x > 0.0 && **y > 0.0)
            .map(|(x, y)| (y / x).ln())
            .collect()
    }

    /// Whether every constraint is met on a sample's runs (true without constraints).
    pub fn feasible(&self, s: &Sample) -> bool {
        let runs: Vec<&Measurement> = s.runs.iter().collect();
        self.checks(&runs).iter().all(|(_, c)| c.met())
    }

    /// Every constraint's check on these repeats.
    pub fn checks(&self, repeats: &[&Measurement]) -> Vec<(Constraint, Check)> {
        self.constraints
            .iter()
            .map(|c| (*c, c.check(repeats)))
            .collect()
    }

    /// One line: "throughput", "p99 with space-amp <= 1.50x".
    pub fn describe(&self) -> String {
        let mut s = match self.objective {
            Metric::Throughput => "throughput (ops/s, higher is better)".to_string(),
            m => format!("{m} ({}, lower is better)", m.unit()),
        };
        if !self.constraints.is_empty() {
            let c: Vec<String> = self.constraints.iter().map(Constraint::describe).collect();
            s.push_str(&format!(", subject to {}", c.join(" and ")));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::measure::Latency;
    use crate::bench::{Kind, Workload};

    fn m(ops: f64, p99: f64, size: u64) -> Measurement {
        let mut w = Workload::new(Kind::FillRandom);
        w.num = 1000;
        Measurement {
            engine: "test".into(),
            workload: w,
            ops: 1,
            seconds: 1.0,
            ops_per_sec: ops,
            mb_per_sec: 0.0,
            latency_us: Latency {
                p99,
                p999: p99 * 2.0,
                ..Latency::default()
            },
            reads_found: None,
            counters: None,
            diagnostics: None,
            size_on_disk: size,
            cpu_seconds: None,
            peak_rss_bytes: None,
            fill_seconds: 0.0,
            confinement: None,
        }
    }

    #[test]
    fn lower_is_better_metrics_turn_into_goodness() {
        let a = m(1000.0, 200.0, 232_000);
        assert_eq!(Metric::Throughput.goodness(&a), Some(1000.0));
        assert_eq!(Metric::P99.goodness(&a), Some(1.0 / 200.0));
        assert_eq!(Metric::P999.value(&a), Some(400.0));
        // 1000 keys x (16 + 100) bytes = 116,000 logical bytes.
        assert_eq!(Metric::SpaceAmp.value(&a), Some(2.0));
        assert_eq!(
            Metric::WriteAmp.value(&a),
            None,
            "no diagnostics, no write-amp"
        );
    }

    #[test]
    fn constraints_parse_with_units_and_refuse_nonsense() {
        assert_eq!(Constraint::parse(Metric::P99, "5ms").unwrap().limit, 5000.0);
        assert_eq!(
            Constraint::parse(Metric::P99, "800us").unwrap().limit,
            800.0
        );
        assert_eq!(Constraint::parse(Metric::P99, "250").unwrap().limit, 250.0);
        assert!(Constraint::parse(Metric::P99, "5 parsecs").is_err());
        assert!(
            Constraint::parse(Metric::SpaceAmp, "0.5")
                .unwrap_err()
                .contains("below 1")
        );
        assert!(Constraint::parse(Metric::SpaceAmp, "-2").is_err());
        assert_eq!("p99.9".parse::<Metric>().unwrap(), Metric::P999);
        assert!(
            "speed"
                .parse::<Metric>()
                .unwrap_err()
                .contains("throughput")
        );
    }

    #[test]
    fn a_constraint_is_judged_on_its_interval() {
        let c = Constraint::parse(Metric::P99, "1ms").unwrap();
        let ok = [m(1.0, 500.0, 1), m(1.0, 520.0, 1), m(1.0, 510.0, 1)];
        let bad = [m(1.0, 1500.0, 1), m(1.0, 1520.0, 1), m(1.0, 1490.0, 1)];
        let close = [m(1.0, 700.0, 1), m(1.0, 1400.0, 1), m(1.0, 950.0, 1)];
        fn refs(v: &[Measurement; 3]) -> Vec<&Measurement> {
            v.iter().collect()
        }
        assert!(c.check(&refs(&ok)).met());
        assert!(matches!(c.check(&refs(&bad)), Check::Violated { .. }));
        assert!(matches!(c.check(&refs(&close)), Check::Unclear { .. }));
        let floor = Constraint::parse(Metric::Throughput, "800").unwrap();
        assert!(matches!(
            floor.check(&[&m(1000.0, 1.0, 1), &m(1010.0, 1.0, 1)]),
            Check::Met { .. }
        ));
        let wa = Constraint::parse(Metric::WriteAmp, "5").unwrap();
        assert_eq!(wa.check(&refs(&ok)), Check::Unmeasured);
        let g = Goal {
            objective: Metric::P99,
            constraints: vec![floor],
        };
        assert_eq!(
            g.describe(),
            "p99 (µs, lower is better), subject to throughput >= 800 ops/s"
        );
    }
}
