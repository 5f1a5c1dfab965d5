//! Value search: a sample-efficient optimizer proposes configurations, told how good every
//! configuration measured so far in the tune was, whoever proposed it. On its own (`--backend
//! search`) it explores the options that matter for the workload ([`space::for_workload`]):
//! with a large budget that measures the headroom, the best configuration known for a workload
//! on this machine; with a tune's usual budget it is the search baseline. Inside the hybrid
//! proposer ([`crate::tune::hybrid`]) it searches only the options a model named, in the
//! direction the model moved them ([`space::around`]).
//!
//! Every proposal still goes through the calibrator, and how good a configuration was is read
//! from the journal alone (each candidate's interleaved comparison with the best it was measured
//! against, chained back to the start), so a resumed tune searches exactly as the uninterrupted
//! one would.

pub mod optimizer;
pub mod space;

use anyhow::Result;

use crate::grammar::schema::proposable_keys;
use crate::options::Config;
use crate::options::access::same_value;
use crate::options::value::{RawValue, Value, coerce};
use crate::tune::journal::Decision;
use crate::tune::proposer::{Context, Proposal, Proposer, Reply};
pub use optimizer::Method;
use space::Space;

/// Random points a search starts with before its optimizer models what it saw.
pub const STARTUP: usize = 5;

/// Every configuration the tune measured, with how good it was: the start (0) and each
/// measured candidate as its log ratio to the start, chained through the best it was measured
/// against (the mean of its interleaved rounds' log ratios); a candidate whose runs failed
/// counts as half the best's goodness.
pub fn measured(ctx: &Context) -> Vec<(Config, f64)> {
    let mut out = vec![(ctx.base.clone(), 0.0)];
    let mut best = ctx.base.clone();
    let mut best_log = 0.0;
    for it in ctx.history {
        if it.changes.is_empty() || matches!(it.decision, Decision::NoChange | Decision::Repeat) {
            continue;
        }
        let mut cand = best.clone();
        for (k, v) in &it.changes {
            let Some(e) = ctx.catalog.get(k) else {
                continue;
            };
            if let Ok(c) = coerce(&e.spec.ty, &RawValue::Text(v.clone())) {
                cand.set(e, &c.value);
            }
        }
        let logs = match (&it.best, &it.candidate) {
            (Some(b), Some(c)) => ctx.goal.pair_logs(b, c),
            _ => Vec::new(),
        };
        let log = if !logs.is_empty() {
            best_log + logs.iter().sum::<f64>() / logs.len() as f64
        } else if let Some(c) = it.comparison {
            best_log + c.effect.ln_1p()
        } else if it.decision == Decision::Failed && it.candidate_file.is_some() {
            best_log - std::f64::consts::LN_2
        } else {
            continue;
        };
        if it.decision == Decision::Accepted {
            best = cand.clone();
            best_log = log;
        }
        out.push((cand, log));
    }
    out
}

/// The optimizer's next configuration in `space`, as changes from the best so far: never a
/// configuration of the space measured already (the loop also drops repeats of the whole
/// configuration). None when the space is empty or every attempt repeated one.
pub fn suggest(
    ctx: &Context,
    space: &Space,
    method: Method,
    seed: u64,
) -> Option<Vec<(String, Value)>> {
    if space.is_empty() {
        return None;
    }
    let seen = measured(ctx);
    let observed: Vec<optimizer::Observed> = seen
        .iter()
        .map(|(c, v)| (space.point_of(c, ctx.catalog), *v))
        .collect();
    let tried: Vec<Vec<(String, Value)>> = seen
        .iter()
        .map(|(c, _)| space.values(&space.point_of(c, ctx.catalog), ctx.catalog))
        .collect();
    let opt = method.optimizer(STARTUP);
    for attempt in 0..32u64 {
        let p = opt.suggest(
            space,
            &observed,
            seed.wrapping_mul(0x9E37_79B9).wrapping_add(attempt),
        );
        let vals = space.values(&p, ctx.catalog);
        let repeat = tried
            .iter()
            .any(|t| t.iter().zip(&vals).all(|((_, a), (_, b))| same_value(a, b)));
        if repeat {
            continue;
        }
        let changes: Vec<(String, Value)> = vals
            .into_iter()
            .filter(|(k, v)| {
                ctx.catalog
                    .get(k)
                    .is_some_and(|e| !same_value(&ctx.best.get(e), v))
            })
            .collect();
        if !changes.is_empty() {
            return Some(changes);
        }
    }
    None
}

/// The seed of a suggestion: the tune's seed, the iteration and how many times it was asked in
/// this iteration (a re-ask after a repeat moves on), so a resumed tune, which starts the
/// interrupted iteration afresh, suggests what the uninterrupted one would have.
#[derive(Debug, Default)]
pub struct Seeds {
    iteration: usize,
    asks: u64,
}

impl Seeds {
    pub fn next(&mut self, seed: u64, iteration: usize) -> u64 {
        if iteration != self.iteration {
            (self.iteration, self.asks) = (iteration, 0);
        }
        self.asks += 1;
        seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
            .wrapping_add(1_000 * iteration as u64)
            .wrapping_add(self.asks)
    }
}

/// The search on its own, over the options that matter for the workload.
pub struct SearchProposer {
    method: Method,
    seed: u64,
    seeds: Seeds,
}

impl SearchProposer {
    pub fn new(method: Method, seed: u64) -> SearchProposer {
        SearchProposer {
            method,
            seed,
            seeds: Seeds::default(),
        }
    }

    /// The space this search explores for a tune.
    pub fn space(ctx: &Context) -> Space {
        let mut s =
            space::for_workload(ctx.workload, ctx.memory_budget, ctx.facts.cores, usize::MAX);
        s.retain_proposable(&proposable_keys(ctx.catalog, ctx.schema));
        s.dims.truncate(ctx.schema.max_changes.max(1));
        s
    }
}

impl Proposer for SearchProposer {
    fn name(&self) -> String {
        format!("search:{}", self.method.name())
    }

    fn searches_values(&self) -> bool {
        true
    }

    fn propose(&mut self, ctx: &Context, _on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        // A warm start: the nearest similar past tune's kept changes are the first candidate;
        // measured, they are an observation like any other.
        if let Some((why, changes)) = crate::tune::warm::seed(ctx) {
            return Ok(Proposal::single(Reply::typed(&why, &changes)));
        }
        let space = Self::space(ctx);
        let seed = self.seeds.next(self.seed, ctx.iteration);
        let (why, changes) = match suggest(ctx, &space, self.method, seed) {
            Some(c) => (
                format!(
                    "{} search over {} options, after {} measured configurations",
                    self.method.name(),
                    space.len(),
                    measured(ctx).len()
                ),
                c,
            ),
            None => (
                "the search found nothing new to try".to_string(),
                Vec::new(),
            ),
        };
        Ok(Proposal::single(Reply::typed(&why, &changes)))
    }
}
