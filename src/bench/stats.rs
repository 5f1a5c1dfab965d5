//! Statistics over repeated measurements: mean, standard deviation, 95% confidence intervals
//! (Student t), and Welch's unequal-variance comparison of two configurations, which is what the
//! tuner uses to accept a candidate: "better", "no significant difference" or "worse", with the
//! relative effect and its 95% interval.

use serde::{Deserialize, Serialize};

/// Summary of repeated measurements of one quantity.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1); 0 for a single value.
    pub sd: f64,
    /// Half-width of the 95% confidence interval of the mean (infinite for a single value).
    pub ci95: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(values: &[f64]) -> Option<Summary> {
        let n = values.len();
        if n == 0 || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let var = if n > 1 {
            values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
        } else {
            0.0
        };
        let sd = var.sqrt();
        let ci95 = if n > 1 {
            t_quantile(0.975, (n - 1) as f64) * sd / (n as f64).sqrt()
        } else {
            f64::INFINITY
        };
        Some(Summary {
            n,
            mean,
            sd,
            ci95,
            min: values.iter().copied().fold(f64::INFINITY, f64::min),
            max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        })
    }

    /// Relative half-width of the CI (ci95 / mean).
    pub fn rel_ci(&self) -> f64 {
        if self.mean == 0.0 {
            f64::INFINITY
        } else {
            self.ci95 / self.mean.abs()
        }
    }
}

/// The outcome of comparing a candidate against a baseline (higher is better).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Better,
    NoSignificantDifference,
    Worse,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Better => "better",
            Verdict::NoSignificantDifference => "no significant difference",
            Verdict::Worse => "worse",
        })
    }
}

/// Welch comparison of candidate vs baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub verdict: Verdict,
    /// candidate mean / baseline mean - 1.
    pub effect: f64,
    /// 95% interval of the relative effect (difference CI divided by the baseline mean).
    pub effect_low: f64,
    pub effect_high: f64,
    /// Two-sided p-value of Welch's t-test.
    pub p_value: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
}

/// Significant at 5% (two-sided) and larger than `min_effect` either way, or no difference.
fn verdict_of(p_value: f64, effect: f64, min_effect: f64) -> Verdict {
    if p_value < 0.05 && effect > min_effect {
        Verdict::Better
    } else if p_value < 0.05 && effect < -min_effect {
        Verdict::Worse
    } else {
        Verdict::NoSignificantDifference
    }
}

/// Compare two samples (Welch's t-test). Significance at 5% (two-sided); additionally the
/// effect must exceed `min_effect` (relative, e.g. 0.01) so that drift smaller than anything
/// worth tuning for is never called a difference. Needs at least two positive values on each
/// side. The test and the interval are on the logarithms (throughput ratios are what matter,
/// and a ratio's interval stays above -100%); effect and interval are reported back as
/// relative changes of the geometric means.
pub fn compare(baseline: &[f64], candidate: &[f64], min_effect: f64) -> Option<Comparison> {
    let logs = |v: &[f64]| -> Vec<f64> { v.iter().filter(|x| **x > 0.0).map(|x| x.ln()).collect() };
    let a = Summary::of(&logs(baseline))?;
    let b = Summary::of(&logs(candidate))?;
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let va = a.sd * a.sd / a.n as f64;
    let vb = b.sd * b.sd / b.n as f64;
    let diff = b.mean - a.mean;
    let se = (va + vb).sqrt();
    let (p_value, df, half) = if se == 0.0 {
        (if diff == 0.0 { 1.0 } else { 0.0 }, f64::INFINITY, 0.0)
    } else {
        let df = (va + vb).powi(2)
            / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64).max(f64::MIN_POSITIVE);
        let t = diff / se;
        let p = 2.0 * (1.0 - t_cdf(t.abs(), df));
        (p.clamp(0.0, 1.0), df, t_quantile(0.975, df) * se)
    };
    let effect = diff.exp() - 1.0;
    let verdict = verdict_of(p_value, effect, min_effect);
    Some(Comparison {
        verdict,
        effect,
        effect_low: (diff - half).exp() - 1.0,
        effect_high: (diff + half).exp() - 1.0,
        p_value,
        df,
    })
}

/// Compare interleaved pairs: `baseline[i]` and `candidate[i]` were measured back to back in
/// round i. The test is on the per-round log ratios (a one-sample t-test), so slow drift of the
/// machine that moves both members of a pair alike cancels out; Welch's test on the pooled
/// samples would count it as noise. The effect is the geometric-mean ratio minus one, with its
/// 95% interval. Needs at least two complete pairs; pairs with a non-positive value are skipped.
pub fn compare_paired(baseline: &[f64], candidate: &[f64], min_effect: f64) -> Option<Comparison> {
    let logs: Vec<f64> = baseline
        .iter()
        .zip(candidate)
        .filter(|(a, b)| **a > 0.0 && **b > 0.0)
        .map(|(a, b)| (b / a).ln())
        .collect();
    let s = Summary::of(&logs)?;
    if s.n < 2 {
        return None;
    }
    let df = (s.n - 1) as f64;
    let se = s.sd / (s.n as f64).sqrt();
    let (p_value, half) = if se == 0.0 {
        (if s.mean == 0.0 { 1.0 } else { 0.0 }, 0.0)
    } else {
        let t = s.mean / se;
        (
            (2.0 * (1.0 - t_cdf(t.abs(), df))).clamp(0.0, 1.0),
            t_quantile(0.975, df) * se,
        )
    };
    let effect = s.mean.exp() - 1.0;
    let verdict = verdict_of(p_value, effect, min_effect);
    Some(Comparison {
        verdict,
        effect,
        effect_low: (s.mean - half).exp() - 1.0,
        effect_high: (s.mean + half).exp() - 1.0,
        p_value,
        df,
    })
}

/// ln Γ(x) (Lanczos, g = 7).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Continued fraction for the regularized incomplete beta (Numerical Recipes' betacf).
fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let away_from_zero = |v: f64| if v.abs() < TINY { TINY } else { v };
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 / away_from_zero(1.0 - qab * x / qap);
    let mut h = d;
    for m in 1..300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 / away_from_zero(1.0 + aa * d);
        c = away_from_zero(1.0 + aa / c);
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 / away_from_zero(1.0 + aa * d);
        c = away_from_zero(1.0 + aa / c);
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < 1e-14 {
            break;
        }
    }
    h
}

/// Regularized incomplete beta I_x(a, b).
fn inc_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

/// CDF of the F distribution with `d1` and `d2` degrees of freedom.
pub fn f_cdf(f: f64, d1: f64, d2: f64) -> f64 {
    if f <= 0.0 {
        return 0.0;
    }
    inc_beta(d1 / 2.0, d2 / 2.0, d1 * f / (d1 * f + d2))
}

/// CDF of Student's t with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if !df.is_finite() || df > 1e7 {
        return 0.5 * (1.0 + erf(t / std::f64::consts::SQRT_2));
    }
    let x = df / (df + t * t);
    let tail = 0.5 * inc_beta(df / 2.0, 0.5, x);
    if t >= 0.0 { 1.0 - tail } else { tail }
}

/// Quantile of Student's t (bisection on the CDF; exact to ~1e-10).
pub fn t_quantile(p: f64, df: f64) -> f64 {
    let (mut lo, mut hi) = (-1e3, 1e3);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Error function (Abramowitz-Stegun 7.1.26 refined by one Newton-free series for small x).
pub(crate) fn erf(x: f64) -> f64 {
    // Via the incomplete gamma identity erf(x) = P(1/2, x^2), computed with the beta-free series.
    let sign = if x < 0.0 { -1.0 } else { 1.0 };
    let x = x.abs();
    if x > 6.0 {
        return sign;
    }
    // Series: erf(x) = 2/sqrt(pi) * sum_{n} (-1)^n x^(2n+1) / (n! (2n+1)) for small x;
    // continued fraction of erfc for large x.
    let v = if x < 2.5 {
        let mut sum: f64 = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs().max(1e-300) || n < 3.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        2.0 / std::f64::consts::PI.sqrt() * sum
    } else {
        // erfc continued fraction (Lentz).
        let mut f = 0.0;
        for k in (1..60).rev() {
            f = (k as f64 / 2.0) / (x + f);
        }
        1.0 - (-x * x).exp() / std::f64::consts::PI.sqrt() / (x + f)
    };
    sign * v
}

/// The `q` quantile (0..=1) of unsorted samples, nearest rank.
pub fn quantile(samples: &[f64], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut v = samples.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_tables() {
        // Two-sided 95% critical values from standard tables.
        for (df, want) in [
            (1.0, 12.706),
            (2.0, 4.303),
            (4.0, 2.776),
            (10.0, 2.228),
            (30.0, 2.042),
        ] {
            let got = t_quantile(0.975, df);
            assert!((got - want).abs() < 2e-3, "df {df}: {got} vs {want}");
        }
        assert!((t_quantile(0.975, f64::INFINITY) - 1.960).abs() < 1e-3);
        assert!((t_cdf(0.0, 5.0) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn summary_of_known_sample() {
        let s = Summary::of(&[10.0, 12.0, 14.0]).unwrap();
        assert_eq!(s.mean, 12.0);
        assert!((s.sd - 2.0).abs() < 1e-12);
        // 4.303 * 2 / sqrt(3)
        assert!((s.ci95 - 4.9687).abs() < 1e-3, "{}", s.ci95);
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[f64::NAN]).is_none());
        assert!(Summary::of(&[1.0]).unwrap().ci95.is_infinite());
    }

    #[test]
    fn welch_verdicts() {
        let base = [100.0, 102.0, 98.0, 101.0, 99.0];
        let better = [120.0, 119.0, 122.0, 121.0, 118.0];
        let c = compare(&base, &better, 0.01).unwrap();
        assert_eq!(c.verdict, Verdict::Better);
        // The ratio of the geometric means (about 1.2 here).
        assert!((c.effect - 0.2).abs() < 2e-3, "{}", c.effect);
        assert!(c.effect_low > 0.1 && c.effect_high < 0.3);
        let c = compare(&better, &base, 0.01).unwrap();
        assert_eq!(c.verdict, Verdict::Worse);
        let same = [101.0, 99.0, 100.0, 102.0, 98.0];
        assert_eq!(
            compare(&base, &same, 0.01).unwrap().verdict,
            Verdict::NoSignificantDifference
        );
        // Significant but below the practical threshold.
        let tiny = [100.5, 100.6, 100.4, 100.5, 100.5];
        let flat = [100.0, 100.0, 100.1, 99.9, 100.0];
        assert_eq!(
            compare(&flat, &tiny, 0.01).unwrap().verdict,
            Verdict::NoSignificantDifference
        );
        assert!(compare(&[1.0], &[2.0, 3.0], 0.0).is_none());
    }

    /// A/A: two samples from the same distribution must come out "no significant difference" in
    /// about 95% of trials (the false-positive rate is the test's alpha, 5%).
    #[test]
    fn a_a_comparisons_rarely_differ() {
        // Deterministic pseudo-normal noise (sum of uniforms from an LCG).
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut normal = move || {
            let mut s = 0.0;
            for _ in 0..12 {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                s += (state >> 11) as f64 / (1u64 << 53) as f64;
            }
            s - 6.0
        };
        let trials = 2000;
        let mut differ = 0;
        for _ in 0..trials {
            let a: Vec<f64> = (0..3).map(|_| 1000.0 + 50.0 * normal()).collect();
            let b: Vec<f64> = (0..3).map(|_| 1000.0 + 50.0 * normal()).collect();
            if compare(&a, &b, 0.0).unwrap().verdict != Verdict::NoSignificantDifference {
                differ += 1;
            }
        }
        let rate = differ as f64 / trials as f64;
        assert!(rate < 0.075, "A/A false-positive rate {rate}");
        assert!(rate > 0.02, "a test that never fires is broken too: {rate}");
    }
}

#[cfg(test)]
mod paired_tests {
    use super::*;

    #[test]
    fn drift_that_moves_both_sides_alike_cancels_in_the_paired_test() {
        // Each round slower than the last (the machine got busy), the candidate always ~1.5x.
        let best = [500_930.0, 344_801.0, 258_030.0];
        let cand = [749_630.0, 514_337.0, 419_207.0];
        let welch = compare(&best, &cand, 0.03).unwrap();
        assert_eq!(welch.verdict, Verdict::NoSignificantDifference);
        let paired = compare_paired(&best, &cand, 0.03).unwrap();
        assert_eq!(paired.verdict, Verdict::Better, "{paired:?}");
        assert!((paired.effect - 0.53).abs() < 0.03, "{paired:?}");
        assert!(
            paired.effect_low > 0.3 && paired.effect_high < 0.8,
            "{paired:?}"
        );
    }

    #[test]
    fn paired_no_difference_and_worse() {
        let a = [100.0, 101.0, 99.0, 100.5];
        let same = [100.2, 100.7, 99.4, 100.1];
        assert_eq!(
            compare_paired(&a, &same, 0.02).unwrap().verdict,
            Verdict::NoSignificantDifference
        );
        let worse = [80.0, 81.0, 79.5, 80.2];
        let c = compare_paired(&a, &worse, 0.02).unwrap();
        assert_eq!(c.verdict, Verdict::Worse);
        assert!(c.effect_low < c.effect && c.effect < c.effect_high);
        // A significant but tiny effect is not a difference.
        let tiny = [100.5, 101.5, 99.5, 101.0];
        assert_eq!(
            compare_paired(&a, &tiny, 0.02).unwrap().verdict,
            Verdict::NoSignificantDifference
        );
        assert!(compare_paired(&[1.0], &[2.0], 0.0).is_none());
    }

    #[test]
    fn intervals_never_fall_below_minus_100_percent() {
        // A contended machine: one candidate run collapsed. On the linear scale this gave
        // +23.9% [-104.9, +152.7]; on logs the low end stays above -100%.
        let base = [100_000.0, 101_000.0, 99_000.0];
        let cand = [180_000.0, 150_000.0, 12_000.0];
        let c = compare(&base, &cand, 0.03).unwrap();
        assert!(c.effect_low > -1.0 && c.effect_low < c.effect && c.effect < c.effect_high);
        let p = compare_paired(&base, &cand, 0.03).unwrap();
        assert!(p.effect_low > -1.0);
    }
}
