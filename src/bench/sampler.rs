//! Drawing a [`Mix`]'s operations: the operation by its weight, keys by their popularity
//! (zipfian, latest, hot set, mixgraph's power law and key ranges), and key, value and scan
//! sizes by their distributions. Built once per run and shared by the measuring threads, each
//! bringing its own seeded [`Rng`].

use super::generators::{Op, Zipfian};
use super::mix::{KeyDist, KeyRanges, Mix, SizeDist, range_weight};
use crate::rng::Rng;

/// A 64-bit mix of `v` (SplitMix64's finalizer): db_bench seeds a Random64 with the key's seed
/// and takes its first output; this plays that role.
#[inline]
fn scatter(v: u64) -> u64 {
    let mut z = v.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// mixgraph's inverse power CDF: the seed of the key drawn for `u` in [0, 1).
#[inline]
fn power_seed(u: f64, a: f64, b: f64) -> u64 {
    let v = (u / a).powf(1.0 / b).ceil();
    if v.is_finite() && v >= 0.0 {
        v as u64
    } else {
        u64::MAX
    }
}

/// The inverse CDF of the generalized Pareto distribution (db_bench's `ParetoCdfInversion`).
#[inline]
fn pareto(u: f64, theta: f64, k: f64, sigma: f64) -> f64 {
    let u = u.max(f64::MIN_POSITIVE);
    if k == 0.0 {
        theta - sigma * u.ln()
    } else {
        theta + sigma * (u.powf(-k) - 1.0) / k
    }
}

/// Key ranges laid out as mixgraph does: each range owns a share of `[0, total)` in proportion
/// to its hotness, shuffled with a seed fixed by the parameters.
#[derive(Debug, Clone)]
struct RangeTable {
    /// (start of the range's share, range index), ascending.
    starts: Vec<(u64, u64)>,
    total: u64,
    size: u64,
}

impl RangeTable {
    fn new(r: &KeyRanges, num: u64) -> RangeTable {
        let n = r.num.max(1);
        let size = (num / n).max(1);
        let mut amplify = 0u64;
        let mut shares = Vec::with_capacity(n as usize);
        for x in (1..=n).rev() {
            let p = range_weight(r, x);
            if amplify == 0 && p > 0.0 {
                amplify = (1.0 / p).floor() as u64 + 1;
            }
            shares.push((amplify as f64 * p).floor());
        }
        // As db_bench, in whole shares; scaled down (in proportion) when their sum would not
        // fit, so no share saturates and no sum wraps.
        let sum: f64 = shares.iter().filter(|s| s.is_finite()).sum();
        let scale = if sum > 2f64.powi(52) {
            2f64.powi(52) / sum
        } else {
            1.0
        };
        let shares: Vec<u64> = shares
            .iter()
            .map(|&s| if s.is_finite() { (s * scale) as u64 } else { 0 })
            .collect();
        let total: u64 = shares.iter().sum();
        let mut order: Vec<u64> = (0..n).collect();
        let mut rng = Rng::new(total);
        for i in 0..order.len() {
            let j = rng.below(order.len() as u64) as usize;
            order.swap(i, j);
        }
        let mut starts = Vec::with_capacity(order.len());
        let mut at = 0;
        for idx in order {
            let share = shares[idx as usize];
            if share > 0 {
                starts.push((at, idx));
                at += share;
            }
        }
        RangeTable {
            starts,
            total: at.max(1),
            size,
        }
    }

    fn range(&self, draw: u64) -> u64 {
        let i = self.starts.partition_point(|&(s, _)| s <= draw).max(1) - 1;
        self.starts[i].1
    }
}

enum Keys {
    Uniform,
    Zipfian(Zipfian),
    Latest(Zipfian),
    Hotspot {
        hot: u64,
        hot_ops: f64,
    },
    Power {
        a: f64,
        b: f64,
        ranges: Option<RangeTable>,
    },
}

enum Sizes {
    Fixed(u64),
    Uniform(u64, u64),
    Normal {
        mean: f64,
        stddev: f64,
        min: u64,
        max: u64,
    },
    Zipfian(u64, Zipfian),
    Pareto {
        theta: f64,
        k: f64,
        sigma: f64,
        min: u64,
        max: u64,
    },
}

impl Sizes {
    fn new(d: &SizeDist) -> Sizes {
        match *d {
            SizeDist::Fixed { size } => Sizes::Fixed(size),
            SizeDist::Uniform { min, max } => Sizes::Uniform(min, max),
            SizeDist::Normal {
                mean,
                stddev,
                min,
                max,
            } => Sizes::Normal {
                mean,
                stddev,
                min,
                max,
            },
            SizeDist::Zipfian { min, max } => {
                Sizes::Zipfian(min, Zipfian::new(max.saturating_sub(min) + 1))
            }
            SizeDist::Pareto {
                theta,
                k,
                sigma,
                min,
                max,
            } => Sizes::Pareto {
                theta,
                k,
                sigma,
                min,
                max,
            },
        }
    }

    #[inline]
    fn draw(&self, rng: &mut Rng) -> u64 {
        match self {
            Sizes::Fixed(s) => *s,
            Sizes::Uniform(lo, hi) => lo + rng.below(hi - lo + 1),
            Sizes::Normal {
                mean,
                stddev,
                min,
                max,
            } => {
                // Box-Muller.
                let (u1, u2) = (rng.unit().max(f64::MIN_POSITIVE), rng.unit());
                let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                ((mean + stddev * z).round().max(0.0) as u64).clamp(*min, *max)
            }
            Sizes::Zipfian(lo, z) => lo + z.rank(rng),
            Sizes::Pareto {
                theta,
                k,
                sigma,
                min,
                max,
            } => {
                let v = pareto(rng.unit(), *theta, *k, *sigma).ceil();
                let v = if v.is_finite() && v > 0.0 {
                    v as u64
                } else {
                    0
                };
                let v = if v > *max { v % max } else { v };
                v.max(*min)
            }
        }
    }
}

/// The mean of a size distribution, estimated from 20,000 seeded draws.
pub fn mean_size(d: &SizeDist) -> f64 {
    let sizes = Sizes::new(d);
    let mut rng = Rng::new(1);
    (0..20_000)
        .map(|_| sizes.draw(&mut rng) as f64)
        .sum::<f64>()
        / 20_000.0
}

/// Draws the operations of a [`Mix`] over `num` keys; built once per run, shared by threads
/// (each thread brings its own [`Rng`]).
pub struct Sampler {
    /// Cumulative operation shares in `OpWeights` order.
    cumulative: [f64; 7],
    keys: Keys,
    key_size: Option<Sizes>,
    value_size: Option<Sizes>,
    scan: Sizes,
    multiget: u32,
    num: u64,
    seed: u64,
}

impl Sampler {
    pub fn new(mix: &Mix, num: u64, seed: u64) -> Sampler {
        let mut cumulative = [0.0; 7];
        let mut acc = 0.0;
        for (i, (_, share)) in mix.ops.shares().into_iter().enumerate() {
            acc += share;
            cumulative[i] = acc;
        }
        cumulative[6] = f64::INFINITY;
        let keys = match &mix.keys {
            KeyDist::Uniform => Keys::Uniform,
            KeyDist::Zipfian { theta } => Keys::Zipfian(Zipfian::with_theta(num, *theta)),
            KeyDist::Latest { theta } => Keys::Latest(Zipfian::with_theta(num, *theta)),
            KeyDist::Hotspot { hot_keys, hot_ops } => Keys::Hotspot {
                hot: ((num as f64 * hot_keys) as u64).clamp(1, num),
                hot_ops: *hot_ops,
            },
            KeyDist::Power { a, b, .. } if *a == 0.0 || *b == 0.0 => Keys::Uniform,
            KeyDist::Power { a, b, ranges } => Keys::Power {
                a: *a,
                b: *b,
                ranges: ranges.as_ref().map(|r| RangeTable::new(r, num)),
            },
        };
        Sampler {
            cumulative,
            keys,
            key_size: mix.key_size.as_ref().map(Sizes::new),
            value_size: mix.value_size.as_ref().map(Sizes::new),
            scan: Sizes::new(&mix.scan_length),
            multiget: mix.multiget_size,
            num,
            seed,
        }
    }

    /// A key in `[0, num)` (or up to `latest` for the latest distribution).
    #[inline]
    pub fn key(&self, rng: &mut Rng, latest: u64) -> u64 {
        let num = self.num;
        match &self.keys {
            Keys::Uniform => rng.below(num),
            Keys::Zipfian(z) => z.scrambled(rng),
            Keys::Latest(z) => latest.saturating_sub(z.rank(rng)),
            Keys::Hotspot { hot, hot_ops } => {
                if rng.unit() < *hot_ops || *hot == num {
                    rng.below(*hot)
                } else {
                    hot + rng.below(num - hot)
                }
            }
            Keys::Power { a, b, ranges: None } => scatter(power_seed(rng.unit(), *a, *b)) % num,
            Keys::Power {
                a,
                b,
                ranges: Some(t),
            } => {
                let range = t.range(rng.below(t.total));
                let offset = scatter(power_seed(rng.unit(), *a, *b)) % t.size;
                (t.size * range + offset).min(num - 1)
            }
        }
    }

    /// The next operation.
    pub fn next(&self, rng: &mut Rng, latest: u64) -> Op {
        let p = rng.unit();
        let which = self.cumulative.iter().position(|&c| p < c).unwrap_or(0);
        match which {
            0 => Op::Read(self.key(rng, latest)),
            1 => Op::Write(self.key(rng, latest)),
            2 => Op::Delete(self.key(rng, latest)),
            3 => Op::Scan(self.key(rng, latest), self.scan.draw(rng) as u32),
            4 => Op::MultiGet(self.multiget),
            5 => Op::ReadModifyWrite(self.key(rng, latest)),
            _ => Op::Insert,
        }
    }

    /// The size of a value to write (`fixed` when the mix leaves it to the workload).
    #[inline]
    pub fn value_len(&self, rng: &mut Rng, fixed: usize) -> usize {
        self.value_size
            .as_ref()
            .map_or(fixed, |s| s.draw(rng) as usize)
    }

    /// The size of key `k`: the same every time for the same key and seed.
    #[inline]
    pub fn key_len(&self, k: u64, fixed: usize) -> usize {
        match &self.key_size {
            None => fixed,
            Some(s) => s.draw(&mut Rng::new(scatter(k ^ self.seed))) as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::mix::OpWeights;

    fn mix(ops: OpWeights) -> Mix {
        Mix::new("t", ops)
    }

    #[test]
    fn operations_follow_their_weights() {
        let m = mix(OpWeights {
            get: 0.7,
            put: 0.2,
            seek: 0.1,
            ..Default::default()
        });
        let s = Sampler::new(&m, 1000, 1);
        let mut rng = Rng::new(5);
        let (mut g, mut p, mut sk) = (0, 0, 0);
        for _ in 0..20_000 {
            match s.next(&mut rng, 999) {
                Op::Read(k) => {
                    assert!(k < 1000);
                    g += 1
                }
                Op::Write(_) => p += 1,
                Op::Scan(_, n) => {
                    assert!((1..=100).contains(&n));
                    sk += 1
                }
                other => panic!("{other:?}"),
            }
        }
        assert!((13_600..14_400).contains(&g), "{g}");
        assert!((3_700..4_300).contains(&p), "{p}");
        assert!((1_800..2_200).contains(&sk), "{sk}");
    }

    #[test]
    fn the_same_seed_gives_the_same_stream() {
        let m = mix(OpWeights {
            get: 1.0,
            put: 1.0,
            ..Default::default()
        });
        let s = Sampler::new(&m, 10_000, 3);
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..100).map(|_| s.next(&mut rng, 0)).collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }

    #[test]
    fn power_keys_are_skewed_and_hotspots_hot() {
        let mut m = mix(OpWeights {
            get: 1.0,
            ..Default::default()
        });
        m.keys = KeyDist::Power {
            a: 0.002312,
            b: 0.3467,
            ranges: None,
        };
        let s = Sampler::new(&m, 100_000, 1);
        let mut rng = Rng::new(1);
        let mut counts = std::collections::HashMap::new();
        for _ in 0..100_000 {
            *counts.entry(s.key(&mut rng, 0)).or_insert(0u32) += 1;
        }
        let hottest = counts.values().copied().max().unwrap();
        // P(hottest) = a * 1^b = 0.23%: ~231 of 100,000 draws, where uniform keys get about 1
        // each and rarely more than 8.
        assert!(
            (150..320).contains(&hottest),
            "the hottest key drew {hottest} of 100000"
        );

        m.keys = KeyDist::Hotspot {
            hot_keys: 0.1,
            hot_ops: 0.9,
        };
        let s = Sampler::new(&m, 1000, 1);
        let hot = (0..10_000).filter(|_| s.key(&mut rng, 0) < 100).count();
        assert!((8_800..9_200).contains(&hot), "{hot}");
    }

    #[test]
    fn key_ranges_concentrate_on_hot_ranges() {
        let mut m = mix(OpWeights {
            get: 1.0,
            ..Default::default()
        });
        // The published Facebook fit: a few of the 30 ranges take most accesses.
        m.keys = KeyDist::Power {
            a: 0.002312,
            b: 0.3467,
            ranges: Some(KeyRanges {
                num: 30,
                a: 14.18,
                b: -2.917,
                c: 0.0164,
                d: -0.08082,
            }),
        };
        m.validate(30_000).unwrap();
        let s = Sampler::new(&m, 30_000, 1);
        let mut rng = Rng::new(2);
        let mut per_range = [0u32; 30];
        for _ in 0..30_000 {
            let k = s.key(&mut rng, 0);
            assert!(k < 30_000);
            per_range[(k / 1000) as usize] += 1;
        }
        per_range.sort_unstable_by(|a, b| b.cmp(a));
        assert!(per_range[0] > 10_000, "{per_range:?}");
    }

    #[test]
    fn range_shares_that_would_overflow_are_scaled_not_wrapped() {
        // Weights from 1e300 down to about 1e83 over 1000 ranges: db_bench's integer shares
        // of these saturate, and their sum wrapped.
        let r = KeyRanges {
            num: 1000,
            a: 1e300,
            b: -0.5,
            c: 0.0,
            d: 0.0,
        };
        let t = RangeTable::new(&r, 1_000_000);
        assert!(
            t.starts.windows(2).all(|w| w[0].0 < w[1].0),
            "starts ascend"
        );
        assert!(t.total > t.starts.last().unwrap().0);
        // The heaviest range (x = 1, its share last in the table) takes most draws.
        let mut rng = Rng::new(3);
        let first = (0..10_000)
            .filter(|_| t.range(rng.below(t.total)) == 999)
            .count();
        assert!(first > 3_500, "{first}");
    }

    #[test]
    fn sizes_stay_in_their_bounds() {
        let mut rng = Rng::new(4);
        for d in [
            SizeDist::Uniform { min: 10, max: 20 },
            SizeDist::Normal {
                mean: 100.0,
                stddev: 50.0,
                min: 50,
                max: 150,
            },
            SizeDist::Zipfian { min: 1, max: 100 },
            SizeDist::Pareto {
                theta: 0.0,
                k: 0.2615,
                sigma: 25.45,
                min: 10,
                max: 1024,
            },
        ] {
            let s = Sizes::new(&d);
            for _ in 0..10_000 {
                let v = s.draw(&mut rng);
                assert!((d.min()..=d.max()).contains(&v), "{d:?} drew {v}");
            }
        }
        // mixgraph's value model: mostly small values, mean near sigma / (1 - k) ~ 34.
        let s = Sizes::new(&SizeDist::Pareto {
            theta: 0.0,
            k: 0.2615,
            sigma: 25.45,
            min: 10,
            max: 1024,
        });
        let mean = (0..100_000).map(|_| s.draw(&mut rng)).sum::<u64>() as f64 / 1e5;
        assert!((25.0..60.0).contains(&mean), "{mean}");
    }

    #[test]
    fn a_key_keeps_its_size() {
        let mut m = mix(OpWeights {
            put: 1.0,
            ..Default::default()
        });
        m.key_size = Some(SizeDist::Uniform { min: 16, max: 64 });
        let s = Sampler::new(&m, 1000, 7);
        assert_eq!(s.key_len(42, 16), s.key_len(42, 16));
        let sizes: std::collections::BTreeSet<_> = (0..1000).map(|k| s.key_len(k, 16)).collect();
        assert!(sizes.len() > 20 && sizes.iter().all(|&n| (16..=64).contains(&n)));
    }
}
