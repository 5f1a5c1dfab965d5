//! Sample-efficient optimizers behind one trait: given the points measured so far and how good
//! each was, suggest the next point. Two are here, compared in BENCHMARKS.md ("The headroom"):
//! the Tree-structured Parzen Estimator of the `tpe` crate (Bergstra et al., 2011; independent
//! densities per dimension, which suits mixed numeric and categorical options), and a small
//! Gaussian-process optimizer of our own (a Matérn 5/2 kernel over the unit cube with one-hot
//! categories, lengthscale and noise by marginal likelihood, expected improvement maximized over
//! random and local candidates). Both start with a few uniform random points, and both are
//! stateless: each suggestion is computed from the observations alone, seeded, so a resumed
//! tune suggests what the uninterrupted one would have.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::space::{Point, Space};

/// How good a point was: higher is better (a log ratio to the start).
pub type Observed = (Point, f64);

/// Something that suggests the next point to measure.
pub trait Optimizer {
    /// `tpe` or `gp`.
    fn name(&self) -> &'static str;
    /// The next point, from the observations so far; `seed` makes it reproducible.
    fn suggest(&self, space: &Space, observed: &[Observed], seed: u64) -> Point;
}

/// Which optimizer (`--search-method`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Tree-structured Parzen Estimator (the `tpe` crate).
    #[default]
    Tpe,
    /// A Gaussian process with expected improvement (our own).
    Gp,
}

impl Method {
    pub fn optimizer(self, startup: usize) -> Box<dyn Optimizer> {
        match self {
            Method::Tpe => Box::new(Tpe { startup }),
            Method::Gp => Box::new(Gp { startup }),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Tpe => "tpe",
            Method::Gp => "gp",
        }
    }
}

/// A uniform random point of the space.
pub fn random_point(space: &Space, rng: &mut crate::rng::Rng) -> Point {
    space
        .dims
        .iter()
        .map(|d| match d.categorical() {
            Some(n) => rng.below(n as u64) as f64,
            None => rng.unit(),
        })
        .collect()
}

/// TPE, one univariate estimator per dimension (the `tpe` crate), told every observation.
pub struct Tpe {
    /// Uniform random points before the estimators take over.
    pub startup: usize,
}

impl Optimizer for Tpe {
    fn name(&self) -> &'static str {
        "tpe"
    }

    fn suggest(&self, space: &Space, observed: &[Observed], seed: u64) -> Point {
        if observed.len() < self.startup {
            return random_point(space, &mut crate::rng::Rng::new(seed));
        }
        let mut rng = StdRng::seed_from_u64(seed);
        space
            .dims
            .iter()
            .enumerate()
            .map(|(i, d)| {
                // The crate's ranges are half-open: a coordinate of exactly 1 must fit.
                let (range, estimator) = match d.categorical() {
                    Some(n) => (tpe::categorical_range(n), tpe::histogram_estimator()),
                    None => (tpe::range(0.0, 1.0 + 1e-9), tpe::parzen_estimator()),
                };
                let Ok(range) = range else {
                    return 0.0;
                };
                let mut o = tpe::TpeOptimizer::new(estimator, range);
                for (p, v) in observed {
                    // The crate minimizes.
                    let _ = o.tell(p[i], -v);
                }
                o.ask(&mut rng)
                    .unwrap_or(0.0)
                    .clamp(0.0, range.end() - 1e-9)
            })
            .map(|x| x.max(0.0))
            .zip(&space.dims)
            .map(|(x, d)| {
                if d.categorical().is_some() {
                    x.floor()
                } else {
                    x.min(1.0)
                }
            })
            .collect()
    }
}

/// A Gaussian-process optimizer with expected improvement.
pub struct Gp {
    /// Uniform random points before the model takes over.
    pub startup: usize,
}

/// The features of a point: ordered coordinates as they are, each category one-hot scaled so
/// that two different categories are as far apart as the two ends of an ordered dimension.
fn features(space: &Space, p: &[f64]) -> Vec<f64> {
    let mut f = Vec::new();
    for (d, x) in space.dims.iter().zip(p) {
        match d.categorical() {
            Some(n) => {
                for c in 0..n {
                    f.push(if (*x as usize) == c {
                        std::f64::consts::FRAC_1_SQRT_2
                    } else {
                        0.0
                    });
                }
            }
            None => f.push(*x),
        }
    }
    f
}

fn matern52(r: f64, l: f64) -> f64 {
    let s = 5f64.sqrt() * r / l;
    (1.0 + s + s * s / 3.0) * (-s).exp()
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// Lower Cholesky factor of a symmetric positive definite matrix (row-major), or None.
fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * n + k] * l[j * n + k]).sum();
            if i == j {
                let d = a[i * n + i] - s;
                if d <= 0.0 {
                    return None;
                }
                l[i * n + j] = d.sqrt();
            } else {
                l[i * n + j] = (a[i * n + j] - s) / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Solve L x = b (forward) for lower-triangular L.
fn forward(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; n];
    for i in 0..n {
        let s: f64 = (0..i).map(|k| l[i * n + k] * x[k]).sum();
        x[i] = (b[i] - s) / l[i * n + i];
    }
    x
}

/// Solve Lᵀ x = b (backward) for lower-triangular L.
fn backward(l: &[f64], n: usize, b: &[f64]) -> Vec<f64> {
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| l[k * n + i] * x[k]).sum();
        x[i] = (b[i] - s) / l[i * n + i];
    }
    x
}

/// A fitted GP over standardized values.
struct Fit {
    xs: Vec<Vec<f64>>,
    l: Vec<f64>,
    alpha: Vec<f64>,
    lengthscale: f64,
}

impl Fit {
    /// Fit with the lengthscale and noise of the highest marginal likelihood on a small grid.
    fn new(xs: Vec<Vec<f64>>, ys: &[f64]) -> Option<Fit> {
        let n = xs.len();
        let dim = xs.first().map_or(1, Vec::len).max(1) as f64;
        let mut best: Option<(f64, Fit)> = None;
        for scale in [0.1, 0.2, 0.4, 0.8] {
            let lengthscale = scale * dim.sqrt();
            for noise in [0.01, 0.1, 0.3] {
                let mut k = vec![0.0; n * n];
                for i in 0..n {
                    for j in 0..n {
                        k[i * n + j] = matern52(dist(&xs[i], &xs[j]), lengthscale)
                            + if i == j { noise } else { 0.0 };
                    }
                }
                let Some(l) = cholesky(&k, n) else {
                    continue;
                };
                let alpha = backward(&l, n, &forward(&l, n, ys));
                let fit_term: f64 = ys.iter().zip(&alpha).map(|(y, a)| y * a).sum();
                let log_det: f64 = (0..n).map(|i| l[i * n + i].ln()).sum();
                let ll = -0.5 * fit_term - log_det;
                if best.as_ref().is_none_or(|(b, _)| ll > *b) {
                    best = Some((
                        ll,
                        Fit {
                            xs: xs.clone(),
                            l,
                            alpha,
                            lengthscale,
                        },
                    ));
                }
            }
        }
        best.map(|(_, f)| f)
    }

    /// Posterior mean and standard deviation at `x`.
    fn predict(&self, x: &[f64]) -> (f64, f64) {
        let n = self.xs.len();
        let ks: Vec<f64> = self
            .xs
            .iter()
            .map(|xi| matern52(dist(xi, x), self.lengthscale))
            .collect();
        let mean: f64 = ks.iter().zip(&self.alpha).map(|(k, a)| k * a).sum();
        let v = forward(&self.l, n, &ks);
        let var = (1.0 - v.iter().map(|x| x * x).sum::<f64>()).max(1e-12);
        (mean, var.sqrt())
    }
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// Expected improvement over `best` of a normal posterior (maximizing).
fn expected_improvement(mean: f64, sd: f64, best: f64) -> f64 {
    let xi = 0.01;
    let z = (mean - best - xi) / sd;
    (mean - best - xi) * crate::bench::sequential::normal_cdf(z) + sd * normal_pdf(z)
}

impl Optimizer for Gp {
    fn name(&self) -> &'static str {
        "gp"
    }

    fn suggest(&self, space: &Space, observed: &[Observed], seed: u64) -> Point {
        let mut rng = crate::rng::Rng::new(seed);
        if observed.len() < self.startup.max(2) {
            return random_point(space, &mut rng);
        }
        let ys: Vec<f64> = observed.iter().map(|(_, v)| *v).collect();
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / ys.len() as f64)
            .sqrt()
            .max(1e-9);
        let zs: Vec<f64> = ys.iter().map(|y| (y - mean) / sd).collect();
        let xs: Vec<Vec<f64>> = observed.iter().map(|(p, _)| features(space, p)).collect();
        let Some(fit) = Fit::new(xs, &zs) else {
            return random_point(space, &mut rng);
        };
        let best = zs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        // Candidates: uniform points, and small moves around the best five observed.
        let mut candidates: Vec<Point> = (0..1000).map(|_| random_point(space, &mut rng)).collect();
        let mut order: Vec<usize> = (0..observed.len()).collect();
        order.sort_by(|a, b| ys[*b].total_cmp(&ys[*a]));
        for &i in order.iter().take(5) {
            for _ in 0..100 {
                let p: Point = observed[i]
                    .0
                    .iter()
                    .zip(&space.dims)
                    .map(|(x, d)| match d.categorical() {
                        Some(n) if rng.unit() < 0.2 => rng.below(n as u64) as f64,
                        Some(_) => *x,
                        None => {
                            // A normal step of sd 0.1 (Box-Muller).
                            let (u, v) = (rng.unit().max(1e-12), rng.unit());
                            let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                            (x + 0.1 * z).clamp(0.0, 1.0)
                        }
                    })
                    .collect();
                candidates.push(p);
            }
        }
        candidates
            .into_iter()
            .map(|p| {
                let (m, s) = fit.predict(&features(space, &p));
                (expected_improvement(m, s, best), p)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, p)| p)
            .unwrap_or_else(|| random_point(space, &mut rng))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::value::Value;
    use crate::tune::search::space::{Dim, Kind};

    /// A toy problem with the shape of a tuning one: two log-scale sizes with an optimum inside
    /// the range, a categorical that matters, and two that do not. Both optimizers find a much
    /// better point than the random start within 30 evaluations, and better than random search
    /// on average over seeds.
    #[test]
    fn both_optimizers_beat_random_search_on_a_toy_problem() {
        let space = Space {
            dims: vec![
                Dim {
                    key: "a",
                    kind: Kind::Log {
                        lo: 1.0,
                        hi: 1024.0,
                    },
                },
                Dim {
                    key: "b",
                    kind: Kind::Log {
                        lo: 1.0,
                        hi: 1024.0,
                    },
                },
                Dim {
                    key: "c",
                    kind: Kind::Choice(vec![Value::Int(0), Value::Int(1), Value::Int(2)]),
                },
                Dim {
                    key: "d",
                    kind: Kind::Choice(vec![Value::Int(0), Value::Int(1)]),
                },
                Dim {
                    key: "e",
                    kind: Kind::Log {
                        lo: 1.0,
                        hi: 1024.0,
                    },
                },
            ],
        };
        let f = |p: &Point| -> f64 {
            let a = -(p[0] - 0.7).powi(2) * 4.0;
            let b = -(p[1] - 0.3).powi(2) * 2.0;
            let c = if p[2] as usize == 1 { 0.5 } else { 0.0 };
            a + b + c
        };
        let run = |o: &dyn Optimizer, seed: u64| -> f64 {
            let mut seen: Vec<Observed> = Vec::new();
            for i in 0..30 {
                let p = o.suggest(&space, &seen, seed * 1000 + i);
                let v = f(&p);
                seen.push((p, v));
            }
            seen.iter()
                .map(|(_, v)| *v)
                .fold(f64::NEG_INFINITY, f64::max)
        };
        let random = Tpe {
            startup: usize::MAX,
        };
        let (mut r, mut t, mut g) = (0.0, 0.0, 0.0);
        for seed in 0..8 {
            r += run(&random, seed);
            t += run(&Tpe { startup: 5 }, seed);
            g += run(&Gp { startup: 5 }, seed);
        }
        assert!(t > r, "tpe {t} vs random {r}");
        assert!(g > r, "gp {g} vs random {r}");
        // The optimum is 0.5; both get within 0.1 of it on average.
        assert!(t / 8.0 > 0.4 && g / 8.0 > 0.4, "tpe {t}, gp {g}");
    }

    #[test]
    fn suggestions_are_reproducible_and_in_the_space() {
        let space = Space {
            dims: vec![
                Dim {
                    key: "a",
                    kind: Kind::Log { lo: 1.0, hi: 8.0 },
                },
                Dim {
                    key: "c",
                    kind: Kind::Choice(vec![Value::Int(0), Value::Int(1)]),
                },
            ],
        };
        let seen: Vec<Observed> = (0..12)
            .map(|i| {
                (
                    vec![i as f64 / 12.0, (i % 2) as f64],
                    -(i as f64 - 6.0).abs(),
                )
            })
            .collect();
        for m in [Method::Tpe, Method::Gp] {
            let o = m.optimizer(5);
            let a = o.suggest(&space, &seen, 3);
            assert_eq!(a, o.suggest(&space, &seen, 3), "{}", o.name());
            assert!(
                (0.0..=1.0).contains(&a[0]) && (a[1] == 0.0 || a[1] == 1.0),
                "{a:?}"
            );
        }
    }
}
