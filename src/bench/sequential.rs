//! Sequential judgement of a candidate against the best so far, round by round, instead of a
//! fixed number of rounds and then a verdict: a candidate whose first round is clearly worse is
//! stopped at once (a stated false-abort rate), one whose estimate falls to the minimum effect or
//! below is rejected at the next look, and one that is promising but not yet significant gets
//! more rounds, up to a cap. The acceptance test is a group-sequential design: the one-sided
//! level is spent across the looks by the Lan-DeMets O'Brien-Fleming-type spending function, so
//! looking several times does not raise the false-gain rate above the level of a single test.
//!
//! Each round is a pair (best, candidate) measured back to back; the statistic is the mean of
//! the per-round log ratios. Its noise is estimated from this candidate's pairs pooled with the
//! pairs of the tune's earlier candidates (each around its own mean), since three pairs alone
//! give a t-test with 2 degrees of freedom and an interval too wide to decide anything; when
//! this candidate's own pairs vary more than the pool, its own estimate is used.

use super::stats::{t_cdf, t_quantile};

/// The standard normal distribution function.
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * (1.0 + super::stats::erf(x / std::f64::consts::SQRT_2))
}

/// The standard normal quantile (bisection on [`normal_cdf`]; exact to ~1e-12).
pub fn normal_quantile(p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if normal_cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The one-sided level spent by information fraction `t` under the Lan-DeMets
/// O'Brien-Fleming-type spending function: almost nothing early, the whole `alpha` at `t = 1`.
pub fn obf_spent(t: f64, alpha: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let z = normal_quantile(1.0 - alpha / 2.0);
    (2.0 * (1.0 - normal_cdf(z / t.min(1.0).sqrt()))).min(alpha)
}

/// Grid points per look in the numerical integration.
const GRID: usize = 1200;

/// Efficacy boundaries on the z scale for looks at information fractions `fractions`
/// (increasing, in (0, 1]) of a one-sided test at level `alpha`, spending the level by
/// [`obf_spent`]: the probability under no effect of crossing boundary `k` first is the level
/// spent between look `k - 1` and look `k`. Computed by integrating the score process's density
/// over the region where no earlier boundary was crossed (Armitage, McPherson and Rowe's
/// recursion), on a grid.
pub fn boundaries(fractions: &[f64], alpha: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(fractions.len());
    // The density of the score S_k = Z_k * sqrt(t_k) where no boundary was crossed yet.
    let mut grid: Vec<f64> = Vec::new();
    let mut dens: Vec<f64> = Vec::new();
    let mut step = 0.0;
    let mut t_prev = 0.0;
    for (k, &t) in fractions.iter().enumerate() {
        let spend = obf_spent(t, alpha) - obf_spent(t_prev, alpha);
        let c = if k == 0 {
            normal_quantile(1.0 - spend.max(1e-300))
        } else {
            let dt = t - t_prev;
            let exceed = |c: f64| -> f64 {
                let edge = c * t.sqrt();
                grid.iter()
                    .zip(&dens)
                    .map(|(u, f)| f * (1.0 - normal_cdf((edge - u) / dt.sqrt())))
                    .sum::<f64>()
                    * step
            };
            // exceed falls as c rises: bisect for the level to spend.
            let (mut lo, mut hi) = (-10.0, 40.0);
            for _ in 0..100 {
                let mid = 0.5 * (lo + hi);
                if exceed(mid) > spend {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            0.5 * (lo + hi)
        };
        out.push(c);
        // The density at this look, below its boundary.
        let (lo, hi) = (-10.0 * t.sqrt(), c * t.sqrt());
        let new_step = (hi - lo) / (GRID - 1) as f64;
        let new_grid: Vec<f64> = (0..GRID).map(|i| lo + i as f64 * new_step).collect();
        let new_dens: Vec<f64> = if k == 0 {
            new_grid
                .iter()
                .map(|s| normal_pdf(s / t.sqrt()) / t.sqrt())
                .collect()
        } else {
            let sd = (t - t_prev).sqrt();
            new_grid
                .iter()
                .map(|s| {
                    grid.iter()
                        .zip(&dens)
                        .map(|(u, f)| f * normal_pdf((s - u) / sd) / sd)
                        .sum::<f64>()
                        * step
                })
                .collect()
        };
        (grid, dens, step, t_prev) = (new_grid, new_dens, new_step, t);
    }
    out
}

/// How a candidate is measured: the rounds at which it is judged, the one-sided level of the
/// acceptance test over all looks, and the false-abort rate of the first-round stop.
#[derive(Debug, Clone, PartialEq)]
pub struct Design {
    /// Rounds completed at each look, increasing (e.g. 3, 5, 8).
    pub looks: Vec<usize>,
    /// One-sided level of the whole sequential acceptance test (0.025: the two-sided 5% of a
    /// single test).
    pub alpha: f64,
    /// Probability that a candidate as good as the best is stopped after its first round.
    pub abort_rate: f64,
    /// The relative gain a candidate must show besides significance.
    pub min_effect: f64,
    /// The efficacy boundaries (z scale) of the looks.
    z: Vec<f64>,
}

impl Design {
    /// Looks at `first` rounds, then `first + more`, then `cap` (each only when larger than the
    /// one before).
    pub fn new(first: usize, more: usize, cap: usize, min_effect: f64) -> Design {
        let first = first.max(2);
        let mut looks = vec![first];
        for n in [first + more, cap] {
            if n > *looks.last().unwrap_or(&0) {
                looks.push(n);
            }
        }
        let last = *looks.last().unwrap_or(&first) as f64;
        let fractions: Vec<f64> = looks.iter().map(|n| *n as f64 / last).collect();
        let alpha = 0.025;
        Design {
            z: boundaries(&fractions, alpha),
            looks,
            alpha,
            abort_rate: 0.01,
            min_effect,
        }
    }

    /// The most rounds a candidate can get.
    pub fn cap(&self) -> usize {
        *self.looks.last().unwrap_or(&0)
    }

    /// The nominal one-sided p-value a look's statistic must fall below.
    pub fn nominal(&self, look: usize) -> f64 {
        1.0 - normal_cdf(self.z[look])
    }
}

/// Earlier pairs' noise: the sum of squared deviations of per-round log ratios around their own
/// candidate's mean, and its degrees of freedom.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Noise {
    pub ss: f64,
    pub df: f64,
}

impl Noise {
    /// Add one candidate's per-round log ratios.
    pub fn add(&mut self, logs: &[f64]) {
        if logs.len() < 2 {
            return;
        }
        let m = logs.iter().sum::<f64>() / logs.len() as f64;
        self.ss += logs.iter().map(|x| (x - m).powi(2)).sum::<f64>();
        self.df += (logs.len() - 1) as f64;
    }

    /// A noise estimate from repeats of one configuration measured apart (the start's
    /// baseline): a pair's log ratio varies about twice as much as one run's log.
    pub fn from_unpaired(logs: &[f64]) -> Noise {
        let mut n = Noise::default();
        n.add(logs);
        n.ss *= 2.0;
        n
    }

    pub fn sd(&self) -> Option<f64> {
        (self.df >= 1.0).then(|| (self.ss / self.df).sqrt())
    }
}

/// What to do with a candidate after a look.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Next {
    /// More rounds before a verdict.
    Continue,
    /// Significantly better by more than the minimum effect.
    Accept,
    /// Not better: significantly worse, not promising enough to measure on, or undecided at the
    /// cap.
    Reject(Stop),
}

/// Why a candidate was rejected before or at the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// Its first round was clearly worse than the best in the same round.
    FirstRoundWorse,
    /// Significantly worse.
    Worse,
    /// Its estimate was at or below the minimum effect: more rounds would not make it a gain.
    NotPromising,
    /// Still undecided after the last look.
    Undecided,
}

impl Stop {
    pub fn describe(self) -> &'static str {
        match self {
            Stop::FirstRoundWorse => "stopped after its first round: clearly worse than the best",
            Stop::Worse => "significantly worse",
            Stop::NotPromising => "its gain was at or below the minimum effect",
            Stop::Undecided => "not significant after the most rounds allowed",
        }
    }
}

/// The statistic of a set of per-round log ratios with pooled noise: mean, standard error,
/// degrees of freedom.
pub fn statistic(logs: &[f64], prior: Noise) -> Option<(f64, f64, f64)> {
    let n = logs.len();
    if n == 0 {
        return None;
    }
    let mean = logs.iter().sum::<f64>() / n as f64;
    let mut own = Noise::default();
    own.add(logs);
    let pooled = Noise {
        ss: own.ss + prior.ss,
        df: own.df + prior.df,
    };
    // This candidate's own noise when it is significantly larger than the earlier pairs' (an F
    // test at 5%): a configuration noisier than the others must not borrow their calm.
    let noisier = match (own.sd(), prior.sd()) {
        (Some(o), Some(p)) if p > 0.0 => {
            let f = (o / p).powi(2);
            1.0 - super::stats::f_cdf(f, own.df, prior.df) < 0.05
        }
        (Some(_), Some(_)) => true,
        _ => false,
    };
    let chosen = if noisier { own } else { pooled };
    let sd = chosen.sd()?;
    Some((mean, sd / (n as f64).sqrt(), chosen.df))
}

/// After the first round: stop when its log ratio is below the minimum effect's negative by
/// more than the first round's noise allows at the design's false-abort rate (a candidate as
/// good as the best falls that low with at most that probability). Needs an earlier noise
/// estimate; without one, never stops.
pub fn abort_after_first(first: f64, prior: Noise, d: &Design) -> bool {
    let Some(sd) = prior.sd() else {
        return false;
    };
    let q = t_quantile(1.0 - d.abort_rate, prior.df);
    first < -(d.min_effect.ln_1p() + q * sd)
}

/// The verdict at look `look` (index into `d.looks`) on the per-round log ratios so far.
pub fn judge(logs: &[f64], prior: Noise, d: &Design, look: usize) -> Next {
    let Some((mean, se, df)) = statistic(logs, prior) else {
        return if look + 1 >= d.looks.len() {
            Next::Reject(Stop::Undecided)
        } else {
            Next::Continue
        };
    };
    let effect = mean.exp() - 1.0;
    let t = if se > 0.0 {
        mean / se
    } else if mean > 0.0 {
        f64::INFINITY
    } else if mean < 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    let bound = t_quantile(1.0 - d.nominal(look), df);
    if t >= bound && effect > d.min_effect {
        return Next::Accept;
    }
    // Significantly worse (two-sided 5%, as a single test would say).
    if t <= -t_quantile(0.975, df) && effect < -d.min_effect {
        return Next::Reject(Stop::Worse);
    }
    if look + 1 >= d.looks.len() {
        return Next::Reject(Stop::Undecided);
    }
    if effect <= d.min_effect {
        return Next::Reject(Stop::NotPromising);
    }
    Next::Continue
}

/// The one-sided p-value of a statistic (for reports).
pub fn p_one_sided(t: f64, df: f64) -> f64 {
    1.0 - t_cdf(t, df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_match_published_values() {
        // One look: the single test.
        let one = boundaries(&[1.0], 0.025);
        assert!((one[0] - 1.95996).abs() < 1e-3, "{one:?}");
        // Lan-DeMets O'Brien-Fleming spending, one-sided 0.025 (as gsDesign's sfLDOF gives).
        let two = boundaries(&[0.5, 1.0], 0.025);
        assert!((two[0] - 2.9626).abs() < 2e-3, "{two:?}");
        assert!((two[1] - 1.9686).abs() < 2e-3, "{two:?}");
        let three = boundaries(&[1.0 / 3.0, 2.0 / 3.0, 1.0], 0.025);
        for (got, want) in three.iter().zip([3.7103, 2.5114, 1.9930]) {
            assert!((got - want).abs() < 3e-3, "{three:?}");
        }
    }

    /// Simulates candidates whose per-round log ratio is normal with sd 0.05 and true mean
    /// `effect`, each with a prior of 10 earlier pairs: the share accepted, the share stopped
    /// after one round, the mean rounds.
    fn simulate(d: &Design, effect: f64, trials: usize, seed: u64) -> (f64, f64, f64) {
        let mut rng = crate::rng::Rng::new(seed);
        let mut normal = || {
            // Box-Muller.
            let (u, v) = (rng.unit().max(1e-12), rng.unit());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        };
        let sd = 0.05;
        let (mut accepted, mut aborted, mut rounds) = (0, 0, 0usize);
        for _ in 0..trials {
            let mut prior = Noise::default();
            let earlier: Vec<f64> = (0..10).map(|_| normal() * sd).collect();
            prior.add(&earlier);
            let mut logs = vec![effect + normal() * sd];
            if abort_after_first(logs[0], prior, d) {
                aborted += 1;
                rounds += 1;
                continue;
            }
            let mut look = 0;
            loop {
                while logs.len() < d.looks[look] {
                    logs.push(effect + normal() * sd);
                }
                match judge(&logs, prior, d, look) {
                    Next::Continue => look += 1,
                    Next::Accept => {
                        accepted += 1;
                        break;
                    }
                    Next::Reject(_) => break,
                }
            }
            rounds += logs.len();
        }
        let n = trials as f64;
        (accepted as f64 / n, aborted as f64 / n, rounds as f64 / n)
    }

    /// Under no effect the whole design accepts at most its level (2.5% one-sided, with a
    /// simulation's slack) even with no minimum effect, and stops after one round at most its
    /// stated false-abort rate; with the default 3% minimum effect an equal candidate mostly
    /// stops at the first look.
    #[test]
    fn under_no_effect_the_design_keeps_its_rates() {
        let (gain, abort, _) = simulate(&Design::new(3, 2, 8, 0.0), 0.0, 20_000, 11);
        assert!(gain <= 0.03, "false-gain rate {gain}");
        assert!(abort <= 0.015, "false-abort rate {abort}");
        let (gain, _, rounds) = simulate(&Design::new(3, 2, 8, 0.03), 0.0, 20_000, 12);
        assert!(gain <= 0.025, "false-gain rate {gain}");
        assert!(rounds < 3.6, "{rounds} rounds on average");
    }

    /// A real gain of +6% (sd 5% per round) is kept far more often than a fixed 3 + 2 rounds
    /// would keep it, in fewer than 8 rounds on average; a +40% gain is kept at the first look;
    /// a -30% candidate mostly stops after one round.
    #[test]
    fn real_gains_are_kept_and_losers_stopped_early() {
        let d = Design::new(3, 2, 8, 0.03);
        let (gain, _, rounds) = simulate(&d, 0.06f64.ln_1p(), 5_000, 13);
        assert!(gain > 0.5, "kept {gain}");
        assert!(rounds < 8.0, "{rounds}");
        let (gain, _, rounds) = simulate(&d, 0.4f64.ln_1p(), 2_000, 14);
        assert!(
            gain > 0.99 && rounds < 3.1,
            "kept {gain} in {rounds} rounds"
        );
        let (gain, abort, rounds) = simulate(&d, -(0.3f64.ln_1p()), 2_000, 15);
        assert!(
            gain == 0.0 && abort > 0.9 && rounds < 1.3,
            "{abort} {rounds}"
        );
        // Looks: a clearly better set of rounds is accepted, one at the minimum effect is not
        // measured on.
        let mut prior = Noise::default();
        prior.add(&[0.1, -0.1, 0.05, -0.05, 0.0, 0.08, -0.08]);
        assert_eq!(
            judge(&[0.12, 0.08, 0.1], prior, &d, 0),
            Next::Continue,
            "+10% after 3 rounds: promising, not yet significant"
        );
        assert_eq!(
            judge(&[0.12, 0.08, 0.1, 0.11, 0.09], prior, &d, 1),
            Next::Accept
        );
        assert_eq!(
            judge(&[0.02, -0.01, 0.0], prior, &d, 0),
            Next::Reject(Stop::NotPromising)
        );
        assert!(abort_after_first((0.6f64).ln(), prior, &d));
        assert!(!abort_after_first((0.95f64).ln(), prior, &d));
        // No earlier noise estimate: never stops after one round.
        assert!(!abort_after_first((0.1f64).ln(), Noise::default(), &d));
    }
}
