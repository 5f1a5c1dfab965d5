//! Operation mixes: a workload described by what a service does instead of by a db_bench name.
//! A [`Mix`] holds the weights of get / put / delete / seek+next / multiget / read-modify-write /
//! insert, the key popularity (uniform, zipfian, latest, a hot set, or mixgraph's power law over
//! key ranges), the key, value and scan-length size distributions, and an optional target rate
//! (fixed, or mixgraph's sine wave). Workload files (see `workload_file`) and db_bench's
//! `mixgraph` both become a `Mix`; a `sampler::Sampler` built once per run draws its operations,
//! so one in-process runner serves them all and the same seed gives the same operation stream.

use std::fmt;

use serde::de::{self, MapAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer, Serialize};

use super::generators::Zipfian;
use crate::bounds;

/// Largest value a mix may write (the same bound as `--value-size`).
pub const MAX_VALUE: u64 = bounds::VALUE_SIZE.max;

/// Relative weights of the operations (they need not sum to 1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpWeights {
    /// Point lookups of existing keys.
    pub get: f64,
    /// Writes of existing keys (overwrites).
    pub put: f64,
    /// Deletes of existing keys.
    pub delete: f64,
    /// Seek to a key, then read `scan_length` entries.
    pub seek: f64,
    /// One MultiGet of `multiget_size` keys.
    pub multiget: f64,
    /// Read then write the same key.
    pub rmw: f64,
    /// Write a new key after the last one (YCSB's insert).
    pub insert: f64,
}

impl OpWeights {
    /// The weights by name, in the order of the fields.
    pub(crate) fn array(&self) -> [(&'static str, f64); 7] {
        [
            ("get", self.get),
            ("put", self.put),
            ("delete", self.delete),
            ("seek", self.seek),
            ("multiget", self.multiget),
            ("rmw", self.rmw),
            ("insert", self.insert),
        ]
    }

    /// Share of each operation, in the order of the fields (zero weights included).
    pub fn shares(&self) -> Vec<(&'static str, f64)> {
        let total: f64 = self.array().iter().map(|(_, w)| w).sum();
        self.array()
            .into_iter()
            .map(|(n, w)| (n, if total > 0.0 { w / total } else { 0.0 }))
            .collect()
    }
}

/// Which keys an operation touches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum KeyDist {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// YCSB's scrambled zipfian: a few keys are hot, spread over the key space.
    Zipfian {
        #[serde(default = "default_theta")]
        theta: f64,
    },
    /// The most recently inserted keys are the hottest (YCSB D).
    Latest {
        #[serde(default = "default_theta")]
        theta: f64,
    },
    /// `hot_ops` of the operations go to the first `hot_keys` of the key space (YCSB hotspot).
    Hotspot { hot_keys: f64, hot_ops: f64 },
    /// mixgraph's key model: the access count of a key follows `f(x) = a * x^b`
    /// (`--key_dist_a/b`), optionally within key ranges whose hotness follows a two-term
    /// exponential (`--keyrange_dist_a..d`, `--keyrange_num`).
    Power {
        a: f64,
        b: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ranges: Option<KeyRanges>,
    },
}

fn default_theta() -> f64 {
    Zipfian::THETA
}

/// mixgraph's key ranges: range `x` (1..=num) is accessed in proportion to
/// `a * exp(b * x) + c * exp(d * x)`; the ranges are shuffled over the key space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRanges {
    pub num: u64,
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
}

/// A size in bytes (keys, values) or a count (scan length): fixed or drawn from a distribution.
/// In a file: a number, or a table such as `{ dist = "uniform", min = 16, max = 64 }`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "dist", rename_all = "lowercase")]
pub enum SizeDist {
    Fixed {
        size: u64,
    },
    Uniform {
        min: u64,
        max: u64,
    },
    /// Normal, clamped to `[min, max]` (db_bench's `--value_size_distribution_type=normal`).
    Normal {
        mean: f64,
        stddev: f64,
        min: u64,
        max: u64,
    },
    /// Zipfian over `[min, max]`: `min` is the most frequent (YCSB's zipfian field length).
    Zipfian {
        min: u64,
        max: u64,
    },
    /// Generalized Pareto with location `theta`, shape `k`, scale `sigma` (mixgraph's value
    /// sizes and scan lengths): a draw above `max` wraps modulo `max` as db_bench does, and a
    /// draw below `min` is raised to it.
    Pareto {
        #[serde(default)]
        theta: f64,
        k: f64,
        sigma: f64,
        #[serde(default)]
        min: u64,
        max: u64,
    },
}

#[derive(Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
enum SizeTable {
    Fixed {
        size: u64,
    },
    Uniform {
        min: u64,
        max: u64,
    },
    Normal {
        mean: f64,
        stddev: f64,
        #[serde(default)]
        min: u64,
        max: u64,
    },
    Zipfian {
        min: u64,
        max: u64,
    },
    Pareto {
        #[serde(default)]
        theta: f64,
        k: f64,
        sigma: f64,
        #[serde(default)]
        min: u64,
        max: u64,
    },
}

impl From<SizeTable> for SizeDist {
    fn from(t: SizeTable) -> SizeDist {
        match t {
            SizeTable::Fixed { size } => SizeDist::Fixed { size },
            SizeTable::Uniform { min, max } => SizeDist::Uniform { min, max },
            SizeTable::Normal {
                mean,
                stddev,
                min,
                max,
            } => SizeDist::Normal {
                mean,
                stddev,
                min,
                max,
            },
            SizeTable::Zipfian { min, max } => SizeDist::Zipfian { min, max },
            SizeTable::Pareto {
                theta,
                k,
                sigma,
                min,
                max,
            } => SizeDist::Pareto {
                theta,
                k,
                sigma,
                min,
                max,
            },
        }
    }
}

impl<'de> Deserialize<'de> for SizeDist {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SizeDist, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SizeDist;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a number, or a table such as { dist = \"uniform\", min = 16, max = 64 } \
                     (dist: fixed, uniform, normal, zipfian, pareto)",
                )
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SizeDist, E> {
                Ok(SizeDist::Fixed { size: v })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SizeDist, E> {
                u64::try_from(v)
                    .map(|size| SizeDist::Fixed { size })
                    .map_err(|_| E::custom(format!("a size cannot be negative ({v})")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SizeDist, A::Error> {
                SizeTable::deserialize(MapAccessDeserializer::new(map)).map(SizeDist::from)
            }
        }
        d.deserialize_any(V)
    }
}

impl SizeDist {
    /// The largest size it can draw.
    pub fn max(&self) -> u64 {
        match *self {
            SizeDist::Fixed { size } => size,
            SizeDist::Uniform { max, .. }
            | SizeDist::Normal { max, .. }
            | SizeDist::Zipfian { max, .. } => max,
            SizeDist::Pareto { min, max, .. } => max.max(min),
        }
    }

    /// The smallest size it can draw.
    pub fn min(&self) -> u64 {
        match *self {
            SizeDist::Fixed { size } => size,
            SizeDist::Uniform { min, .. }
            | SizeDist::Normal { min, .. }
            | SizeDist::Zipfian { min, .. }
            | SizeDist::Pareto { min, .. } => min,
        }
    }

    /// Check the parameters; `what` names the field in the message.
    pub fn validate(&self, what: &str, lo: u64, hi: u64) -> Result<(), String> {
        let (min, max) = (self.min(), self.max());
        if min > max {
            return Err(format!("{what}: min {min} is above max {max}"));
        }
        if min < lo || max > hi {
            return Err(format!(
                "{what}: sizes must be within {lo}..={hi} (got {min}..={max})"
            ));
        }
        match *self {
            SizeDist::Normal { mean, stddev, .. } if !(mean.is_finite() && stddev >= 0.0) => Err(
                format!("{what}: normal needs a finite mean and stddev >= 0"),
            ),
            SizeDist::Pareto {
                theta,
                k,
                sigma,
                max,
                ..
            } if !(theta.is_finite() && k.is_finite() && sigma > 0.0 && max > 0) => Err(format!(
                "{what}: pareto needs finite theta and k, sigma > 0 and max > 0"
            )),
            _ => Ok(()),
        }
    }
}

/// A target rate of operations per second over all threads.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Rate {
    Fixed(f64),
    /// mixgraph's `--sine_mix_rate`: `a * sin(b * t + c) + d` ops/s, `t` in seconds since the
    /// start, recomputed every `interval_ms`.
    Sine {
        a: f64,
        b: f64,
        #[serde(default)]
        c: f64,
        d: f64,
        interval_ms: u64,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SineTable {
    a: f64,
    b: f64,
    #[serde(default)]
    c: f64,
    d: f64,
    #[serde(default = "default_interval")]
    interval_ms: u64,
}

fn default_interval() -> u64 {
    10_000
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Rate, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Rate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("operations per second, or a sine { a, b, c, d, interval_ms }")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v as f64))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Rate, E> {
                Ok(Rate::Fixed(v as f64))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Rate, A::Error> {
                let t = SineTable::deserialize(MapAccessDeserializer::new(map))?;
                Ok(Rate::Sine {
                    a: t.a,
                    b: t.b,
                    c: t.c,
                    d: t.d,
                    interval_ms: t.interval_ms,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Rate {
    /// Operations per second at `t` seconds after the start (at least 1).
    pub fn at(&self, t: f64) -> f64 {
        match *self {
            Rate::Fixed(r) => r,
            Rate::Sine {
                a,
                b,
                c,
                d,
                interval_ms,
            } => {
                // Held constant over each interval, as db_bench recomputes it.
                let step = interval_ms.max(1) as f64 / 1000.0;
                let t = (t / step).floor() * step;
                a * (b * t + c).sin() + d
            }
        }
        .max(1.0)
    }

    fn validate(&self) -> Result<(), String> {
        match *self {
            Rate::Fixed(r) => bounds::RATE.check(r).map(|_| ()),
            Rate::Sine {
                a,
                b,
                c,
                d,
                interval_ms,
            } => {
                bounds::RATE.named("rate.d").check(d)?;
                bounds::RATE
                    .named("rate.a (its size)")
                    .check(a.abs().max(f64::MIN_POSITIVE))?;
                if !([a, b, c].iter().all(|v| v.is_finite()) && interval_ms > 0) {
                    return Err(
                        "rate: a sine needs finite a, b, c, d with d > 0 and interval_ms >= 1"
                            .into(),
                    );
                }
                Ok(())
            }
        }
    }
}

/// What a mixed workload does (the parts a db_bench name fixes are in [`super::Workload`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mix {
    /// A name for reports (the file's `name`, or "mixgraph").
    pub name: String,
    pub ops: OpWeights,
    #[serde(default)]
    pub keys: KeyDist,
    /// Key sizes (none: the workload's fixed `key_size`). A key keeps its size every time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_size: Option<SizeDist>,
    /// Value sizes (none: the workload's fixed `value_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_size: Option<SizeDist>,
    /// Entries read after a seek.
    pub scan_length: SizeDist,
    /// Keys per MultiGet.
    pub multiget_size: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
    /// Write every key once before the measured phase.
    pub load: bool,
}

impl Mix {
    /// A mix with the given weights and YCSB-like defaults for the rest.
    pub fn new(name: &str, ops: OpWeights) -> Mix {
        Mix {
            name: name.into(),
            ops,
            keys: KeyDist::Uniform,
            key_size: None,
            value_size: None,
            scan_length: SizeDist::Uniform { min: 1, max: 100 },
            multiget_size: 8,
            rate: None,
            load: true,
        }
    }

    /// "83% get, 14% put, 3% seek; power-law keys": what a prompt or report says of it.
    pub fn describe(&self) -> String {
        let ops: Vec<String> = self
            .ops
            .shares()
            .into_iter()
            .filter(|(_, s)| *s > 0.0)
            .map(|(n, s)| format!("{:.0}% {n}", s * 100.0))
            .collect();
        let keys = match &self.keys {
            KeyDist::Uniform => "uniform keys".to_string(),
            KeyDist::Zipfian { theta } => format!("zipfian keys (theta {theta})"),
            KeyDist::Latest { .. } => "the newest keys hottest".to_string(),
            KeyDist::Hotspot { hot_keys, hot_ops } => format!(
                "{:.0}% of operations on {:.0}% of the keys",
                hot_ops * 100.0,
                hot_keys * 100.0
            ),
            KeyDist::Power { ranges: None, .. } => "power-law key popularity".to_string(),
            KeyDist::Power {
                ranges: Some(r), ..
            } => {
                format!("power-law keys in {} ranges of unequal heat", r.num)
            }
        };
        let rate = match &self.rate {
            Some(Rate::Fixed(r)) => format!("; held at {r:.0} ops/s"),
            Some(Rate::Sine { d, .. }) => format!("; rate a sine wave around {d:.0} ops/s"),
            None => String::new(),
        };
        format!("{}; {keys}{rate}", ops.join(", "))
    }

    /// Whether any operation writes.
    pub fn writes(&self) -> bool {
        let o = &self.ops;
        o.put + o.delete + o.rmw + o.insert > 0.0
    }

    /// Whether any operation is a point lookup.
    pub fn point_reads(&self) -> bool {
        let o = &self.ops;
        o.get + o.multiget + o.rmw > 0.0
    }

    /// Whether any operation scans.
    pub fn scans(&self) -> bool {
        self.ops.seek > 0.0
    }

    /// Check every parameter against a key space of `num` keys; the message names the field.
    pub fn validate(&self, num: u64) -> Result<(), String> {
        for (name, w) in self.ops.array() {
            // Bounded so their sum is a number: 1e308 + 1e308 once made every share 0.
            if bounds::OP_WEIGHT.check(w).is_err() {
                return Err(format!(
                    "ops.{name} must be {} (got {w})",
                    bounds::OP_WEIGHT.range()
                ));
            }
        }
        if self.ops.array().iter().map(|(_, w)| w).sum::<f64>() <= 0.0 {
            return Err(
                "ops: give at least one operation a weight above 0 (get, put, delete, seek, \
                 multiget, rmw, insert)"
                    .into(),
            );
        }
        match &self.keys {
            KeyDist::Uniform => {}
            KeyDist::Zipfian { theta } | KeyDist::Latest { theta } => {
                if !(*theta > 0.0 && *theta < 1.0) {
                    return Err(format!("keys.theta must be in (0, 1) (got {theta})"));
                }
            }
            KeyDist::Hotspot { hot_keys, hot_ops } => {
                if !(*hot_keys > 0.0 && *hot_keys <= 1.0 && (0.0..=1.0).contains(hot_ops)) {
                    return Err(format!(
                        "keys: hotspot needs hot_keys in (0, 1] and hot_ops in [0, 1] (got \
                         {hot_keys}, {hot_ops})"
                    ));
                }
            }
            KeyDist::Power { a, b, ranges } => {
                if !(a.is_finite() && b.is_finite() && *a >= 0.0) {
                    return Err(format!(
                        "keys: power needs finite a >= 0 and b (got a={a}, b={b}); a or b = 0 \
                         means uniform"
                    ));
                }
                if let Some(r) = ranges {
                    // Capped: the sampler holds a table of every range (1e15 once asked for
                    // 8 PB in the worker).
                    bounds::KEY_RANGES.check(r.num)?;
                    if r.num > num {
                        return Err(format!(
                            "keys.ranges.num must be 1..={num} (the key count), got {}",
                            r.num
                        ));
                    }
                    if ![r.a, r.b, r.c, r.d].iter().all(|v| v.is_finite()) {
                        return Err("keys.ranges: a, b, c, d must be finite".into());
                    }
                    check_range_weights(r)?;
                }
            }
        }
        if let Some(k) = &self.key_size {
            k.validate("key_size", bounds::KEY_SIZE.min, bounds::KEY_SIZE.max)?;
        }
        if let Some(v) = &self.value_size {
            v.validate("value_size", bounds::VALUE_SIZE.min, bounds::VALUE_SIZE.max)?;
        }
        let scan = bounds::SCAN_LENGTH;
        self.scan_length
            .validate("scan_length", scan.min, scan.max)?;
        bounds::MULTIGET_SIZE.check(u64::from(self.multiget_size))?;
        if let Some(r) = &self.rate {
            r.validate()?;
        }
        if !self.load
            && (self.point_reads() || self.scans())
            && self.ops.put + self.ops.insert == 0.0
        {
            return Err(
                "load = false with reads and no writes would read an empty database".into(),
            );
        }
        Ok(())
    }
}

/// Check mixgraph's range weights `a*exp(b*x) + c*exp(d*x)` over `x` in `1..=r.num` in closed
/// form, whatever the count (a loop over 1e18 ranges once hung `workload check`): each term is
/// monotonic in `x`, so both are finite everywhere when finite at the two ends; and the sum has
/// at most one turning point (where `a*b*exp(b*x) = -c*d*exp(d*x)`), so its largest value is at
/// an end or beside that point: some range has weight when one of those does.
fn check_range_weights(r: &KeyRanges) -> Result<(), String> {
    let n = r.num as f64;
    for (coef, rate) in [(r.a, r.b), (r.c, r.d)] {
        for x in [1.0, n] {
            if !(coef * (rate * x).exp()).is_finite() {
                return Err(format!(
                    "keys.ranges: a*exp(b*x) + c*exp(d*x) is not a finite number at range {x} \
                     (a={}, b={}, c={}, d={})",
                    r.a, r.b, r.c, r.d
                ));
            }
        }
    }
    let mut candidates = vec![1, r.num];
    let ratio = -(r.c * r.d) / (r.a * r.b);
    if ratio.is_finite() && ratio > 0.0 && r.b != r.d {
        let turn = ratio.ln() / (r.b - r.d);
        if turn.is_finite() {
            let at = turn.clamp(1.0, n);
            candidates.extend([at.floor() as u64, at.ceil() as u64]);
        }
    }
    if candidates.iter().any(|&x| range_weight(r, x) > 1e-16) {
        Ok(())
    } else {
        Err("keys.ranges: a*exp(b*x) + c*exp(d*x) is 0 for every range".into())
    }
}

pub(super) fn range_weight(r: &KeyRanges, x: u64) -> f64 {
    let x = x as f64;
    let p = r.a * (r.b * x).exp() + r.c * (r.d * x).exp();
    if p < 1e-16 { 0.0 } else { p }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(ops: OpWeights) -> Mix {
        Mix::new("t", ops)
    }

    #[test]
    fn validation_names_the_field() {
        let m = mix(OpWeights::default());
        assert!(m.validate(10).unwrap_err().contains("ops"));
        let mut m = mix(OpWeights {
            get: 1.0,
            ..Default::default()
        });
        m.keys = KeyDist::Zipfian { theta: 1.5 };
        assert!(m.validate(10).unwrap_err().contains("keys.theta"));
        m.keys = KeyDist::Uniform;
        m.value_size = Some(SizeDist::Uniform { min: 10, max: 5 });
        assert!(m.validate(10).unwrap_err().contains("value_size"));
        m.value_size = None;
        m.rate = Some(Rate::Fixed(-1.0));
        assert!(m.validate(10).unwrap_err().contains("rate"));
        m.rate = None;
        m.ops.get = f64::NAN;
        assert!(m.validate(10).unwrap_err().contains("ops.get"));
    }

    #[test]
    fn key_ranges_are_checked_in_closed_form_and_capped() {
        let mut m = mix(OpWeights {
            get: 1.0,
            ..Default::default()
        });
        let ranges = |num, a, b, c, d| KeyDist::Power {
            a: 0.002,
            b: 0.3,
            ranges: Some(KeyRanges { num, a, b, c, d }),
        };
        // 1e15 ranges of the published shape: the sampler would hold a table of 1e15 entries.
        m.keys = ranges(1_000_000_000_000_000, 14.18, -2.917, 0.0164, -0.08082);
        let e = m.validate(1_000_000_000_000_000_000).unwrap_err();
        assert!(e.contains("keys.ranges.num must be 1 to 1000000"), "{e}");
        // All weights 0 over the largest allowed count: said at once.
        m.keys = ranges(1_000_000, 0.0, 0.0, 0.0, 0.0);
        let e = m.validate(1_000_000_000_000).unwrap_err();
        assert!(e.contains("is 0 for every range"), "{e}");
        // Weight only around the sum's turning point (x = ln 2 / 1e-4, about 6931): both ends
        // are below 1e-16, the middle is not, and the check finds it.
        let r = KeyRanges {
            num: 1_000_000,
            a: 1e-13,
            b: -1e-4,
            c: -1e-13,
            d: -2e-4,
        };
        assert!(range_weight(&r, 1) == 0.0 && range_weight(&r, r.num) == 0.0);
        assert!(range_weight(&r, 6931) > 1e-16);
        m.keys = ranges(r.num, r.a, r.b, r.c, r.d);
        m.validate(1_000_000_000_000).unwrap();
        // Overflow at the far end is refused, not turned into a huge share.
        m.keys = ranges(1000, 1.0, 1.0, 0.0, 0.0);
        let e = m.validate(1_000_000).unwrap_err();
        assert!(e.contains("not a finite number"), "{e}");
        // The published fit passes.
        m.keys = ranges(30, 14.18, -2.917, 0.0164, -0.08082);
        m.validate(30_000).unwrap();
    }

    #[test]
    fn a_sine_rate_holds_over_each_interval() {
        let r = Rate::Sine {
            a: 100.0,
            b: 1.0,
            c: 0.0,
            d: 200.0,
            interval_ms: 1000,
        };
        assert_eq!(r.at(0.2), r.at(0.9));
        assert!((r.at(1.5) - (100.0 * 1f64.sin() + 200.0)).abs() < 1e-9);
        assert_eq!(Rate::Fixed(0.1).at(0.0), 1.0);
    }
}
