//! db_bench's `mixgraph`, the model of Facebook's production key-value workloads (Cao et al.,
//! FAST '20): its flags with db_bench's names and meaning, turned into a [`Mix`] for the
//! in-process runner and back into flags for the db_bench engine.
//!
//! Keys: with `key_dist_a` and `key_dist_b` both non-zero, a key's access count follows the
//! power law `f(x) = a * x^b`; with `keyrange_dist_a..d` set, `keyrange_num` key ranges get
//! accesses in proportion to `a*exp(b*x) + c*exp(d*x)` and the power law applies inside each.
//! Value sizes and scan lengths follow generalized Pareto distributions (`value_theta/k/sigma`,
//! `iter_theta/k/sigma`), capped by `mix_max_value_size` and `mix_max_scan_len`. With
//! `sine_mix_rate` the total rate follows `sine_a * sin(sine_b * t + sine_c) + sine_d` ops/s.
//!
//! db_bench's own defaults make every operation a uniform Get; lsmtune's defaults are the fit
//! published for Facebook's social-graph workload (the RocksDB wiki's example: key_dist_a
//! 0.002312, key_dist_b 0.3467, 83% gets, 14% puts, 3% seeks, Pareto values k 0.2615 sigma 25.45,
//! scans k 2.517 sigma 14.236), without the sine rate so that throughput stays measurable.

use serde::{Deserialize, Serialize};

use super::mix::{KeyDist, KeyRanges, Mix, OpWeights, Rate, SizeDist};

/// mixgraph's parameters, named as db_bench's flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixGraph {
    pub key_dist_a: f64,
    pub key_dist_b: f64,
    pub keyrange_dist_a: f64,
    pub keyrange_dist_b: f64,
    pub keyrange_dist_c: f64,
    pub keyrange_dist_d: f64,
    pub keyrange_num: u64,
    pub value_theta: f64,
    pub value_k: f64,
    pub value_sigma: f64,
    pub iter_theta: f64,
    pub iter_k: f64,
    pub iter_sigma: f64,
    pub mix_get_ratio: f64,
    pub mix_put_ratio: f64,
    pub mix_seek_ratio: f64,
    pub mix_max_scan_len: u64,
    pub mix_max_value_size: u64,
    pub sine_mix_rate: bool,
    pub sine_a: f64,
    pub sine_b: f64,
    pub sine_c: f64,
    pub sine_d: f64,
    pub sine_mix_rate_interval_milliseconds: u64,
}

impl Default for MixGraph {
    fn default() -> MixGraph {
        MixGraph {
            key_dist_a: 0.002312,
            key_dist_b: 0.3467,
            keyrange_dist_a: 0.0,
            keyrange_dist_b: 0.0,
            keyrange_dist_c: 0.0,
            keyrange_dist_d: 0.0,
            keyrange_num: 1,
            value_theta: 0.0,
            value_k: 0.2615,
            value_sigma: 25.45,
            iter_theta: 0.0,
            iter_k: 2.517,
            iter_sigma: 14.236,
            mix_get_ratio: 0.83,
            mix_put_ratio: 0.14,
            mix_seek_ratio: 0.03,
            mix_max_scan_len: 10_000,
            mix_max_value_size: 1024,
            sine_mix_rate: false,
            sine_a: 1.0,
            sine_b: 1.0,
            sine_c: 0.0,
            sine_d: 1.0,
            sine_mix_rate_interval_milliseconds: 10_000,
        }
    }
}

/// The flag names, in the order `flags` prints them (the CLI accepts each as `--NAME`).
pub const FLAGS: &[&str] = &[
    "key_dist_a",
    "key_dist_b",
    "keyrange_dist_a",
    "keyrange_dist_b",
    "keyrange_dist_c",
    "keyrange_dist_d",
    "keyrange_num",
    "value_theta",
    "value_k",
    "value_sigma",
    "iter_theta",
    "iter_k",
    "iter_sigma",
    "mix_get_ratio",
    "mix_put_ratio",
    "mix_seek_ratio",
    "mix_max_scan_len",
    "mix_max_value_size",
    "sine_mix_rate",
    "sine_a",
    "sine_b",
    "sine_c",
    "sine_d",
    "sine_mix_rate_interval_milliseconds",
];

impl MixGraph {
    /// Set one parameter by its db_bench flag name (`key_dist_a`, `--value_k`, ...).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        let name = name.trim_start_matches('-').replace('-', "_");
        let f = || {
            value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("--{name}: `{value}` is not a number"))
        };
        let u = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("--{name}: `{value}` is not a whole number >= 0"))
        };
        match name.as_str() {
            "key_dist_a" => self.key_dist_a = f()?,
            "key_dist_b" => self.key_dist_b = f()?,
            "keyrange_dist_a" => self.keyrange_dist_a = f()?,
            "keyrange_dist_b" => self.keyrange_dist_b = f()?,
            "keyrange_dist_c" => self.keyrange_dist_c = f()?,
            "keyrange_dist_d" => self.keyrange_dist_d = f()?,
            "keyrange_num" => self.keyrange_num = u()?,
            "value_theta" => self.value_theta = f()?,
            "value_k" => self.value_k = f()?,
            "value_sigma" => self.value_sigma = f()?,
            "iter_theta" => self.iter_theta = f()?,
            "iter_k" => self.iter_k = f()?,
            "iter_sigma" => self.iter_sigma = f()?,
            "mix_get_ratio" => self.mix_get_ratio = f()?,
            "mix_put_ratio" => self.mix_put_ratio = f()?,
            "mix_seek_ratio" => self.mix_seek_ratio = f()?,
            "mix_max_scan_len" => self.mix_max_scan_len = u()?,
            "mix_max_value_size" => self.mix_max_value_size = u()?,
            "sine_mix_rate" => {
                self.sine_mix_rate = match value.trim() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    v => return Err(format!("--sine_mix_rate: `{v}` is not true/false/1/0")),
                }
            }
            "sine_a" => self.sine_a = f()?,
            "sine_b" => self.sine_b = f()?,
            "sine_c" => self.sine_c = f()?,
            "sine_d" => self.sine_d = f()?,
            "sine_mix_rate_interval_milliseconds" => {
                self.sine_mix_rate_interval_milliseconds = u()?
            }
            other => {
                return Err(format!(
                    "--{other} is not a mixgraph parameter; they are: {}",
                    FLAGS.join(", ")
                ));
            }
        }
        Ok(())
    }

    fn key_ranges(&self) -> bool {
        [
            self.keyrange_dist_a,
            self.keyrange_dist_b,
            self.keyrange_dist_c,
            self.keyrange_dist_d,
        ]
        .iter()
        .any(|&v| v != 0.0)
    }

    /// The operation mix the in-process runner draws from.
    pub fn to_mix(&self) -> Mix {
        let ranges = self.key_ranges().then(|| KeyRanges {
            num: self.keyrange_num.max(1),
            a: self.keyrange_dist_a,
            b: self.keyrange_dist_b,
            c: self.keyrange_dist_c,
            d: self.keyrange_dist_d,
        });
        let mut mix = Mix::new(
            "mixgraph",
            OpWeights {
                get: self.mix_get_ratio,
                put: self.mix_put_ratio,
                seek: self.mix_seek_ratio,
                ..OpWeights::default()
            },
        );
        mix.keys = KeyDist::Power {
            a: self.key_dist_a,
            b: self.key_dist_b,
            ranges,
        };
        // db_bench: a value below 10 bytes is raised to 10, one above the cap wraps around it.
        mix.value_size = Some(SizeDist::Pareto {
            theta: self.value_theta,
            k: self.value_k,
            sigma: self.value_sigma,
            min: 10,
            max: self.mix_max_value_size.clamp(10, 1 << 20),
        });
        mix.scan_length = SizeDist::Pareto {
            theta: self.iter_theta,
            k: self.iter_k,
            sigma: self.iter_sigma,
            min: 0,
            max: self.mix_max_scan_len.max(1),
        };
        mix.rate = self.sine_mix_rate.then_some(Rate::Sine {
            a: self.sine_a,
            b: self.sine_b,
            c: self.sine_c,
            d: self.sine_d,
            interval_ms: self.sine_mix_rate_interval_milliseconds,
        });
        mix
    }

    /// Read the parameters back from a mix made by [`MixGraph::to_mix`] (for the db_bench
    /// engine); `None` when the mix is not one mixgraph can express.
    pub fn from_mix(mix: &Mix) -> Option<MixGraph> {
        let o = &mix.ops;
        if o.delete + o.multiget + o.rmw + o.insert > 0.0 || mix.key_size.is_some() {
            return None;
        }
        let mut g = MixGraph {
            mix_get_ratio: o.get,
            mix_put_ratio: o.put,
            mix_seek_ratio: o.seek,
            ..MixGraph::default()
        };
        match &mix.keys {
            KeyDist::Uniform => {
                g.key_dist_a = 0.0;
                g.key_dist_b = 0.0;
            }
            KeyDist::Power { a, b, ranges } => {
                g.key_dist_a = *a;
                g.key_dist_b = *b;
                if let Some(r) = ranges {
                    g.keyrange_num = r.num;
                    (g.keyrange_dist_a, g.keyrange_dist_b) = (r.a, r.b);
                    (g.keyrange_dist_c, g.keyrange_dist_d) = (r.c, r.d);
                }
            }
            _ => return None,
        }
        match mix.value_size {
            Some(SizeDist::Pareto {
                theta,
                k,
                sigma,
                min: 10,
                max,
            }) => {
                (g.value_theta, g.value_k, g.value_sigma) = (theta, k, sigma);
                g.mix_max_value_size = max;
            }
            _ => return None,
        }
        match mix.scan_length {
            SizeDist::Pareto {
                theta,
                k,
                sigma,
                min: 0,
                max,
            } => {
                (g.iter_theta, g.iter_k, g.iter_sigma) = (theta, k, sigma);
                g.mix_max_scan_len = max;
            }
            _ => return None,
        }
        match mix.rate {
            None => {}
            Some(Rate::Sine {
                a,
                b,
                c,
                d,
                interval_ms,
            }) => {
                g.sine_mix_rate = true;
                (g.sine_a, g.sine_b, g.sine_c, g.sine_d) = (a, b, c, d);
                g.sine_mix_rate_interval_milliseconds = interval_ms;
            }
            Some(Rate::Fixed(_)) => return None,
        }
        Some(g)
    }

    /// db_bench's flags for these parameters (every one, so db_bench's defaults never apply).
    pub fn flags(&self) -> Vec<String> {
        let v = serde_json::to_value(self).expect("plain numbers serialize");
        FLAGS
            .iter()
            .map(|name| {
                let value = match &v[name] {
                    serde_json::Value::Bool(b) => u8::from(*b).to_string(),
                    other => other.to_string(),
                };
                format!("--{name}={value}")
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_round_trip_through_a_mix_and_flags() {
        let mut g = MixGraph::default();
        g.set("--keyrange_num", "30").unwrap();
        g.set("keyrange_dist_a", "14.18").unwrap();
        g.set("keyrange-dist-b", "-2.917").unwrap();
        g.set("sine_mix_rate", "1").unwrap();
        g.set("sine_d", "4500").unwrap();
        let mix = g.to_mix();
        mix.validate(1_000_000).unwrap();
        assert_eq!(MixGraph::from_mix(&mix), Some(g.clone()));
        let flags = g.flags();
        assert_eq!(flags.len(), FLAGS.len());
        assert!(flags.contains(&"--keyrange_num=30".to_string()));
        assert!(flags.contains(&"--sine_mix_rate=1".to_string()));
        assert!(flags.contains(&"--key_dist_a=0.002312".to_string()));
    }

    #[test]
    fn bad_parameters_are_named() {
        let mut g = MixGraph::default();
        assert!(g.set("value_k", "abc").unwrap_err().contains("--value_k"));
        assert!(
            g.set("keyrange_num", "-1")
                .unwrap_err()
                .contains("keyrange_num")
        );
        assert!(
            g.set("key_dist_c", "1")
                .unwrap_err()
                .contains("not a mixgraph")
        );
    }

    #[test]
    fn default_is_the_published_fit_not_db_benchs_all_gets() {
        let m = MixGraph::default().to_mix();
        assert!(m.writes() && m.point_reads() && m.scans());
        assert!(matches!(m.keys, KeyDist::Power { .. }));
    }
}
