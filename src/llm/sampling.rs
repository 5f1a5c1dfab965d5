//! Choosing the next token from logits: greedy, or temperature with nucleus (top-p) sampling,
//! seeded. Works in place on the logits slice and never sorts the whole vocabulary: the nucleus
//! is looked for among the most likely 256 tokens (found in linear time), and only when those
//! do not reach `top_p` is the full vocabulary sorted, so the result is exactly top-p sampling.

use crate::rng::Rng;

/// A seeded sampler.
pub struct Sampler {
    temperature: f64,
    top_p: f64,
    rng: Rng,
    /// Scratch: (probability, token) of the candidates.
    cand: Vec<(f32, u32)>,
}

const FIRST_CUT: usize = 256;

impl Sampler {
    /// `temperature <= 0` is greedy; `top_p` outside (0, 1) samples from the whole distribution.
    pub fn new(seed: u64, temperature: f64, top_p: f64) -> Sampler {
        Sampler {
            temperature,
            top_p,
            rng: Rng::new(seed),
            cand: Vec::new(),
        }
    }

    /// The next token. Logits of -inf are never chosen; None when every logit is -inf or NaN.
    pub fn sample(&mut self, logits: &[f32]) -> Option<u32> {
        let (best, max) = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .fold((None, f32::NEG_INFINITY), |(b, m), (i, &l)| {
                if l > m { (Some(i as u32), l) } else { (b, m) }
            });
        let best = best?;
        if self.temperature <= 0.0 {
            return Some(best);
        }
        let inv_t = (1.0 / self.temperature) as f32;
        self.cand.clear();
        let mut total = 0f64;
        for (i, &l) in logits.iter().enumerate() {
            if l.is_finite() {
                let p = ((l - max) * inv_t).exp();
                total += p as f64;
                self.cand.push((p, i as u32));
            }
        }
        let nucleus = self.top_p > 0.0 && self.top_p < 1.0;
        let mut mass = total;
        if nucleus {
            let by_prob = |a: &(f32, u32), b: &(f32, u32)| b.0.total_cmp(&a.0);
            let target = self.top_p * total;
            let mut keep = None;
            if self.cand.len() > FIRST_CUT {
                self.cand.select_nth_unstable_by(FIRST_CUT - 1, by_prob);
                self.cand[..FIRST_CUT].sort_unstable_by(by_prob);
                keep = cut(&self.cand[..FIRST_CUT], target);
            }
            let keep = match keep {
                Some(k) => k,
                None => {
                    self.cand.sort_unstable_by(by_prob);
                    cut(&self.cand, target).unwrap_or(self.cand.len())
                }
            };
            self.cand.truncate(keep);
            mass = self.cand.iter().map(|c| c.0 as f64).sum();
        }
        let mut r = self.rng.unit() * mass;
        for &(p, t) in &self.cand {
            r -= p as f64;
            if r <= 0.0 {
                return Some(t);
            }
        }
        self.cand.last().map(|c| c.1).or(Some(best))
    }
}

/// How many of the (descending) candidates it takes to reach `target` mass.
fn cut(sorted: &[(f32, u32)], target: f64) -> Option<usize> {
    let mut acc = 0f64;
    for (i, c) in sorted.iter().enumerate() {
        acc += c.0 as f64;
        if acc >= target {
            return Some(i + 1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_largest_finite_logit() {
        let mut s = Sampler::new(1, 0.0, 0.9);
        assert_eq!(s.sample(&[0.1, 3.0, f32::NEG_INFINITY, 2.0]), Some(1));
        assert_eq!(s.sample(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), None);
    }

    #[test]
    fn masked_tokens_are_never_sampled_and_seeds_repeat() {
        let mut logits = vec![0.0f32; 1000];
        for (i, l) in logits.iter_mut().enumerate() {
            if i % 3 != 0 {
                *l = f32::NEG_INFINITY;
            }
        }
        let run = |seed| {
            let mut s = Sampler::new(seed, 1.0, 0.95);
            (0..200)
                .map(|_| s.sample(&logits).unwrap())
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert!(a.iter().all(|t| t % 3 == 0));
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
    }

    #[test]
    fn top_p_keeps_exactly_the_nucleus_even_past_the_first_cut() {
        // Two tokens hold 90% of the mass: with top_p 0.85 only they are ever drawn.
        let mut logits = vec![0.0f32; 5000];
        logits[10] = 12.0;
        logits[20] = 12.0;
        let mut s = Sampler::new(3, 1.0, 0.85);
        for _ in 0..500 {
            let t = s.sample(&logits).unwrap();
            assert!(t == 10 || t == 20, "{t}");
        }
        // A flat distribution: the nucleus is 90% of 5000 tokens, beyond the first 256.
        let flat = vec![0.0f32; 5000];
        let mut s = Sampler::new(3, 1.0, 0.9);
        let drawn: std::collections::HashSet<u32> =
            (0..5000).map(|_| s.sample(&flat).unwrap()).collect();
        assert!(drawn.len() > 1500, "{}", drawn.len());
    }

    #[test]
    fn temperature_follows_the_distribution() {
        // p(a) / p(b) = e^(1/T) for logits 1 and 0.
        let mut s = Sampler::new(5, 0.5, 1.0);
        let n = 20000;
        let a = (0..n).filter(|_| s.sample(&[1.0, 0.0]) == Some(0)).count() as f64;
        let expected = (2f64).exp() / (1.0 + (2f64).exp());
        assert!((a / n as f64 - expected).abs() < 0.015, "{}", a / n as f64);
    }
}
