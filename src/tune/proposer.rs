//! Where proposals come from, behind one trait: a language model (local under the grammar, or an
//! OpenAI-compatible endpoint) holding the tuning conversation, the rule-based expert, and a
//! random baseline. Also the backend choice (`--backend auto|local|openai|expert|random`).

use anyhow::Result;

use super::journal::{Decision, Iteration, LlmUse};
use crate::bench::Workload;
use crate::bench::measure::Diagnostics;
use crate::grammar::Grammar;
use crate::grammar::schema::{SchemaOptions, proposable_keys};
use crate::llm::{GenParams, Llm, Message};
use crate::options::proposal::RawProposal;
use crate::options::value::{OptionType, Value};
use crate::options::{Catalog, Config};
use crate::sysinfo::Facts;

/// What a proposer knows when it proposes.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub facts: &'a Facts,
    pub workload: &'a Workload,
    /// The starting configuration and the best so far.
    pub base: &'a Config,
    pub best: &'a Config,
    /// Diagnostics and throughput of the best configuration, as last measured.
    pub best_diagnostics: Option<Diagnostics>,
    pub best_ops: f64,
    pub baseline_ops: f64,
    /// Every finished iteration, oldest first.
    pub history: &'a [Iteration],
    pub memory_budget: u64,
    pub schema: &'a SchemaOptions,
    /// 1-based number of the iteration being proposed.
    pub iteration: usize,
}

/// A proposal as the proposer wrote it.
pub struct Proposal {
    /// The raw text (a model's reply; the JSON the expert or random proposer wrote).
    pub text: String,
    pub raw: RawProposal,
    /// The user message a model was sent.
    pub prompt: Option<String>,
    pub llm: Option<LlmUse>,
    /// Things worth recording (a fallback taking over).
    pub notes: Vec<String>,
}

/// Something that proposes option changes.
pub trait Proposer {
    /// `local:...`, `openai:...`, `expert`, `random`.
    fn name(&self) -> String;
    /// The next proposal. `on_text` receives a model's reply as it is generated.
    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal>;
    /// Rebuild internal state (a model's conversation) from a journal, for `--resume`.
    fn restore(&mut self, _ctx: &Context) {}
}

/// A language model holding the tuning conversation: system message, first turn, then one
/// feedback turn per finished iteration. Local models decode under the proposal grammar (and
/// keep their KV cache across turns); endpoints get the schema as `response_format`.
pub struct LlmProposer {
    llm: Box<dyn Llm>,
    grammar: Option<Grammar>,
    messages: Vec<Message>,
    pub params: GenParams,
    /// Iterations already in `messages`.
    seen: usize,
}

impl LlmProposer {
    pub fn new(llm: Box<dyn Llm>, grammar: Option<Grammar>, params: GenParams) -> LlmProposer {
        LlmProposer {
            llm,
            grammar,
            messages: Vec::new(),
            params,
            seen: 0,
        }
    }

    /// Bring the conversation up to date with the history: the first turn, then for every
    /// iteration the model answered, its reply and the feedback on it.
    fn sync(&mut self, ctx: &Context) {
        if self.messages.is_empty() {
            self.messages
                .push(Message::system(crate::prompt::system(ctx.schema)));
            self.messages.push(Message::user(
                crate::prompt::FirstTurn {
                    facts: ctx.facts,
                    workload: ctx.workload,
                    catalog: ctx.catalog,
                    config: ctx.base,
                    schema: ctx.schema,
                    memory_budget: ctx.memory_budget,
                }
                .render(),
            ));
        }
        for it in &ctx.history[self.seen.min(ctx.history.len())..] {
            // Iterations this model did not answer (another proposer, a failed call) still
            // become feedback, after a placeholder reply so turns alternate.
            let reply = it.reply.clone().unwrap_or_else(|| "{}".to_string());
            self.messages.push(Message::assistant(reply));
            self.messages
                .push(Message::user(crate::prompt::feedback(it, ctx)));
        }
        self.seen = ctx.history.len();
    }
}

impl Proposer for LlmProposer {
    fn name(&self) -> String {
        self.llm.name()
    }

    fn restore(&mut self, ctx: &Context) {
        self.messages.clear();
        self.seen = 0;
        self.sync(ctx);
    }

    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        self.sync(ctx);
        let prompt = self.messages.last().map(|m| m.content.clone());
        let started = std::time::Instant::now();
        let mut params = self.params.clone();
        params.seed = params.seed.wrapping_add(ctx.iteration as u64);
        let p = crate::propose::ask(
            self.llm.as_mut(),
            self.grammar.as_ref(),
            &self.messages,
            &params,
            on_text,
        )?;
        let c = &p.completion;
        let notices = self.llm.take_notices();
        Ok(Proposal {
            text: c.text.clone(),
            raw: p.raw,
            prompt,
            llm: Some(LlmUse {
                backend: self.llm.name(),
                prompt_tokens: c.prompt_tokens,
                cached_tokens: c.cached_tokens,
                completion_tokens: c.completion_tokens,
                seconds: started.elapsed().as_secs_f64(),
                prefill_seconds: c.prefill_seconds,
                decode_seconds: c.decode_seconds,
                finish: format!("{:?}", c.finish).to_ascii_lowercase(),
                notices,
            }),
            notes: Vec::new(),
        })
    }
}

/// Valid random changes from the catalog: a baseline for researchers. 1 to 3 options, values
/// uniform in range (log-uniform for sizes and wide integer ranges).
pub struct RandomProposer {
    rng: crate::bench::workload::Rng,
}

impl RandomProposer {
    pub fn new(seed: u64) -> RandomProposer {
        RandomProposer {
            rng: crate::bench::workload::Rng::new(seed ^ 0x5EED),
        }
    }

    fn value(&mut self, ty: &OptionType) -> Value {
        let r = &mut self.rng;
        match ty {
            OptionType::Bool => Value::Bool(r.below(2) == 1),
            OptionType::Int { min, max } | OptionType::Size { min, max } => {
                let (lo, hi) = (*min as f64, *max as f64);
                let v = if lo >= 1.0 && hi / lo > 1000.0 {
                    (lo.ln() + r.unit() * (hi.ln() - lo.ln())).exp()
                } else {
                    lo + r.unit() * (hi - lo)
                };
                Value::Int((v.round() as i64).clamp(*min, *max))
            }
            OptionType::Double { min, max } => {
                let v = min + r.unit() * (max - min);
                Value::Double((v * 1000.0).round() / 1000.0)
            }
            OptionType::Enum { values } => {
                Value::Str(values[r.below(values.len() as u64) as usize].to_string())
            }
        }
    }
}

impl Proposer for RandomProposer {
    fn name(&self) -> String {
        "random".into()
    }

    fn propose(&mut self, ctx: &Context, _on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        let keys = proposable_keys(ctx.catalog, ctx.schema);
        let n = 1 + self.rng.below(3.min(ctx.schema.max_changes as u64)) as usize;
        let mut changes = serde_json::Map::new();
        while changes.len() < n && !keys.is_empty() {
            let key = keys[self.rng.below(keys.len() as u64) as usize];
            let Some(entry) = ctx.catalog.get(key) else {
                continue;
            };
            let v = self.value(&entry.spec.ty);
            changes.insert(key.to_string(), value_json(&v));
        }
        let text = serde_json::json!({"reasoning": "random valid changes", "changes": changes})
            .to_string();
        Ok(Proposal {
            raw: crate::options::proposal::parse(&text),
            text,
            prompt: None,
            llm: None,
            notes: Vec::new(),
        })
    }
}

/// A typed value as JSON.
pub fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => serde_json::json!(b),
        Value::Int(i) => serde_json::json!(i),
        Value::Double(d) => serde_json::json!(d),
        Value::Str(s) => serde_json::json!(s),
    }
}

/// Changes rejected or failed before, so proposers do not repeat them.
pub fn tried(history: &[Iteration]) -> Vec<(String, String)> {
    history
        .iter()
        .filter(|it| it.decision != Decision::Accepted)
        .flat_map(|it| it.changes.iter().map(|(k, v)| (k.clone(), v.clone())))
        .collect()
}

/// A proposer with a fallback: when the primary fails (a local model that cannot load or runs
/// out of memory, an endpoint that is down), the fallback takes over for the rest of the run,
/// and the switch is recorded in the failed iteration and reported once.
pub struct Fallback {
    primary: Box<dyn Proposer>,
    secondary: Option<Box<dyn Proposer>>,
    switched: bool,
}

impl Fallback {
    pub fn new(primary: Box<dyn Proposer>, secondary: Option<Box<dyn Proposer>>) -> Fallback {
        Fallback {
            primary,
            secondary,
            switched: false,
        }
    }
}

impl Proposer for Fallback {
    fn name(&self) -> String {
        match (&self.secondary, self.switched) {
            (Some(s), true) => s.name(),
            _ => self.primary.name(),
        }
    }

    fn restore(&mut self, ctx: &Context) {
        self.primary.restore(ctx);
        if let Some(s) = &mut self.secondary {
            s.restore(ctx);
        }
    }

    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        if self.switched
            && let Some(s) = &mut self.secondary
        {
            return s.propose(ctx, on_text);
        }
        match self.primary.propose(ctx, on_text) {
            Ok(p) => Ok(p),
            Err(e) => match &mut self.secondary {
                Some(s) => {
                    self.switched = true;
                    eprintln!(
                        "note: {} failed ({e:#}); falling back to {} for the rest of the run",
                        self.primary.name(),
                        s.name()
                    );
                    s.restore(ctx);
                    let mut p = s.propose(ctx, on_text)?;
                    p.notes.push(format!(
                        "fell back from {} after: {e:#}",
                        self.primary.name()
                    ));
                    Ok(p)
                }
                None => Err(e),
            },
        }
    }
}
