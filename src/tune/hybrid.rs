//! The model steers a search (the default for model proposers; `--search off` for the
//! ablation). A language model with the knowledge hints is good at choosing which options to
//! move and which way; an optimizer is good at finding their values (GPTuner's coarse-to-fine
//! lesson). So the model proposes; once a change of its is kept, a value search
//! ([`crate::tune::search`]) spends the next turns on the options kept so far, each searched
//! from its kept value onwards in the direction the model moved it; after two searched
//! candidates in a row that were not kept (or four searched turns), the model is asked again,
//! and sees in its prompt what the search measured. When the model's first two turns keep
//! nothing, the search takes turns over the workload's whole space (as `--backend search`
//! would), four at a time, then the model again; so it does after any two model turns in a row
//! that keep nothing once something was kept. Which turn comes next is decided from the
//! journal alone, so a resumed tune continues the same way. With a warm start from the history,
//! the first candidate is what the nearest similar past tune kept.

use anyhow::Result;

use crate::options::value::OptionType;
use crate::tune::journal::{Decision, Iteration};
use crate::tune::proposer::{Context, Proposal, Proposer, Reply};
use crate::tune::search::{self, Method, space::Space};

/// Searched turns in a row before the model is asked again.
const SEARCH_STREAK: usize = 4;
/// Searched candidates in a row not kept before the model is asked again.
const SEARCH_MISSES: usize = 2;
/// Model turns with nothing kept before the search takes turns over the workload's whole space
/// (measured on ycsb-a: the model's single options each measured ±5% there, the search over the
/// whole space found +32-37%, and a search that only refines what the model kept never ran).
/// Two, so a tune's default patience (3 turns without a gain) still leaves the search one.
const MODEL_MISSES: usize = 2;

/// Whose turn it is.
#[derive(Debug, Clone, PartialEq)]
pub enum Turn {
    Model,
    /// Search these options' values (the ones the model kept).
    Search(Space),
    /// Nothing kept after the model's first turns: search the workload's whole space.
    Explore(Space),
}

/// Whether an iteration was a searched one.
pub fn searched(it: &Iteration) -> bool {
    it.proposer.starts_with("search:")
}

/// The options to search: each option the kept changes moved from the start, from its kept
/// value onwards in the direction it was moved (numbers only; bools and enums stay as chosen),
/// within the ranges the workload's own search space allows for it (a cache no larger than half
/// the memory budget, say).
pub fn kept_space(ctx: &Context) -> Space {
    let full =
        search::space::for_workload(ctx.workload, ctx.memory_budget, ctx.facts.cores, usize::MAX);
    let mut dims = Vec::new();
    for (k, (now, start)) in ctx.best.diff(ctx.base, ctx.catalog) {
        let Some(e) = ctx.catalog.get(&k) else {
            continue;
        };
        if !matches!(
            e.spec.ty,
            OptionType::Int { .. } | OptionType::Size { .. } | OptionType::Double { .. }
        ) {
            continue;
        }
        let Some(mut d) = search::space::around(e.spec.key, &e.spec.ty, &start, &now) else {
            continue;
        };
        // Never beyond what the workload's space allows for this option.
        if let (
            search::space::Kind::Log { lo, hi },
            Some(search::space::Kind::Log { lo: flo, hi: fhi }),
        ) = (
            &mut d.kind,
            full.dims
                .iter()
                .find(|f| f.key == e.spec.key)
                .map(|f| &f.kind),
        ) {
            *hi = hi.min(*fhi);
            *lo = lo.max(*flo).min(*hi / 1.5);
        }
        dims.push(d);
    }
    dims.truncate(ctx.schema.max_changes.max(1));
    Space { dims }
}

/// The workload's whole search space without the options the kept changes moved: the search
/// that takes over after the model's misses explores the rest from the best so far and leaves
/// what was kept as it is. (Without this, on ycsb-a the search's four turns all switched the
/// model's kept pipelined writes off again, a categorical the optimizer had seen only once.)
/// With nothing kept, the whole space.
pub fn beyond_kept(ctx: &Context) -> Space {
    let kept = ctx.best.diff(ctx.base, ctx.catalog);
    let mut space = search::SearchProposer::space(ctx);
    space.dims.retain(|d| !kept.contains_key(d.key));
    space
}

/// The next turn after `history`: search while searching pays, the model otherwise.
pub fn next_turn(ctx: &Context) -> Turn {
    let space = kept_space(ctx);
    let nothing_kept = ctx
        .history
        .iter()
        .all(|it| it.decision != Decision::Accepted);
    // Searched turns at the end of the history.
    let streak = ctx
        .history
        .iter()
        .rev()
        .take_while(|it| searched(it))
        .count();
    if !nothing_kept {
        // Something was kept, and the model's last MODEL_MISSES turns kept nothing: the search
        // over the whole space (from the best so far) takes SEARCH_STREAK turns, then the model
        // again. Measured on the write-heavy pair after the hint swap: after its kept first step
        // the 0.5B model spent up to five turns on one option's values, each within noise, while
        // the search alone reached 1.36x on ycsb-a against the hybrid's 1.07x.
        let before = &ctx.history[..ctx.history.len() - streak];
        let model_misses = before
            .iter()
            .rev()
            .take_while(|it| !searched(it) && it.decision != Decision::Accepted)
            .count();
        if model_misses >= MODEL_MISSES {
            if streak < SEARCH_STREAK {
                let whole = beyond_kept(ctx);
                if !whole.is_empty() {
                    return Turn::Explore(whole);
                }
            }
            return Turn::Model;
        }
    }
    if space.is_empty() && !nothing_kept {
        // Only a switch or a choice was kept (no value to search): the model goes on.
        return Turn::Model;
    }
    if space.is_empty() {
        // Nothing kept: the model's turns first; after MODEL_MISSES of them, the search over
        // the workload's whole space, SEARCH_STREAK turns at a time, then the model again.
        let model_turns = ctx.history.iter().filter(|it| !searched(it)).count();
        if model_turns < MODEL_MISSES || streak >= SEARCH_STREAK {
            return Turn::Model;
        }
        let whole = search::SearchProposer::space(ctx);
        return if whole.is_empty() {
            Turn::Model
        } else {
            Turn::Explore(whole)
        };
    }
    let Some(last) = ctx.history.last() else {
        return Turn::Model;
    };
    if streak == 0 {
        // The model (or a refinement) had the last turn: search once it was kept.
        return if last.decision == Decision::Accepted {
            Turn::Search(space)
        } else {
            Turn::Model
        };
    }
    // The searched turns at the end that were not kept, latest first.
    let misses = ctx.history[ctx.history.len() - streak..]
        .iter()
        .rev()
        .take_while(|it| it.decision != Decision::Accepted)
        .count();
    if misses >= SEARCH_MISSES || streak >= SEARCH_STREAK {
        Turn::Model
    } else {
        Turn::Search(space)
    }
}

/// A model proposer whose kept choices a value search refines.
pub struct Hybrid {
    model: Box<dyn Proposer>,
    method: Method,
    seed: u64,
    seeds: search::Seeds,
    /// Whose turn the last proposal was (for the journal's proposer name).
    last_searched: bool,
    /// The last proposal was the history's warm start.
    last_seeded: bool,
}

impl Hybrid {
    pub fn new(model: Box<dyn Proposer>, method: Method, seed: u64) -> Hybrid {
        Hybrid {
            model,
            method,
            seed,
            seeds: search::Seeds::default(),
            last_searched: false,
            last_seeded: false,
        }
    }

    fn search(&mut self, ctx: &Context, space: &Space, whole: bool) -> Option<Proposal> {
        let seed = self.seeds.next(self.seed, ctx.iteration);
        let changes = search::suggest(ctx, space, self.method, seed)?;
        let keys: Vec<&str> = space.dims.iter().map(|d| d.key).collect();
        self.last_searched = true;
        let why = if whole {
            format!(
                "{} search over the workload's options ({}): the model's last turns kept nothing",
                self.method.name(),
                keys.join(", ")
            )
        } else {
            format!(
                "{} value search within the kept options ({})",
                self.method.name(),
                keys.join(", ")
            )
        };
        Some(Proposal::single(Reply::typed(&why, &changes)))
    }
}

impl Proposer for Hybrid {
    fn name(&self) -> String {
        if self.last_seeded {
            "history".to_string()
        } else if self.last_searched {
            format!("search:{}", self.method.name())
        } else {
            self.model.name()
        }
    }

    fn variant(&self) -> Option<String> {
        Some(match self.model.variant() {
            Some(v) => format!("{v}, search={}", self.method.name()),
            None => format!("search={}", self.method.name()),
        })
    }

    fn restore(&mut self, ctx: &Context) {
        self.model.restore(ctx);
    }

    fn searches_values(&self) -> bool {
        true
    }

    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        self.last_searched = false;
        self.last_seeded = false;
        // A warm start: the nearest similar past tune's kept changes first; once kept, the
        // search refines them as it refines the model's.
        if let Some((why, changes)) = crate::tune::warm::seed(ctx) {
            self.last_seeded = true;
            return Ok(Proposal::single(Reply::typed(&why, &changes)));
        }
        match next_turn(ctx) {
            Turn::Search(space) => {
                if let Some(p) = self.search(ctx, &space, false) {
                    return Ok(p);
                }
            }
            Turn::Explore(space) => {
                if let Some(p) = self.search(ctx, &space, true) {
                    return Ok(p);
                }
            }
            Turn::Model => {}
        }
        let p = self.model.propose(ctx, on_text)?;
        // The model had nothing left to offer: search what it kept instead.
        let empty = p.replies.iter().all(|r| r.raw.entries.is_empty());
        if empty {
            let space = kept_space(ctx);
            if let Some(s) = self.search(ctx, &space, false) {
                return Ok(s);
            }
        }
        Ok(p)
    }
}
