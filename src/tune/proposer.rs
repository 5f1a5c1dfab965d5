//! Where proposals come from, behind one trait ([`Proposer`]): here a language model (local under
//! the grammar, or an OpenAI-compatible endpoint) asked with the state of the tune each turn, a
//! random baseline, a fallback wrapper, and the choice among several sampled replies. The expert
//! is in [`crate::tune::expert`], the value search in [`crate::tune::search`], the model steering
//! it in [`crate::tune::hybrid`].

use anyhow::Result;

use super::journal::{Decision, Iteration, LlmUse};
use crate::grammar::GrammarEnv;
use crate::grammar::schema::proposable_keys;
use crate::llm::{GenParams, Llm, Message};
use crate::options::proposal::{RawEntry, RawProposal};
use crate::options::value::{OptionType, RawValue, Value};
use crate::tune::ask::{MaskTimes, ModelProposal};
use crate::tune::prompt::HintLevel;

pub use super::context::Context;

/// One reply of a proposer: the text as written and what it says.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The raw text (a model's reply; the JSON the expert or random proposer wrote).
    pub text: String,
    pub raw: RawProposal,
}

impl Reply {
    /// A reply from JSON text (parsed as a model's would be).
    pub fn json(text: String) -> Reply {
        Reply {
            raw: crate::options::proposal::parse(&text),
            text,
        }
    }

    /// A reply made of typed changes (the expert, the random proposer, a refinement step): the
    /// entries are taken as they are, not written out and parsed back; the text is the same
    /// proposal as JSON, for the journal.
    pub fn typed(reasoning: &str, changes: &[(String, Value)]) -> Reply {
        let text = serde_json::json!({
            "reasoning": reasoning,
            "changes": changes
                .iter()
                .map(|(k, v)| serde_json::json!({ k.as_str(): value_json(v) }))
                .collect::<Vec<_>>(),
        })
        .to_string();
        let raw = RawProposal {
            entries: changes
                .iter()
                .map(|(k, v)| RawEntry {
                    key: k.clone(),
                    value: RawValue::Json(value_json(v)),
                    scope: None,
                })
                .collect(),
            reasoning: Some(reasoning.to_string()),
            // As the parser names them: no entry read is "empty".
            format: if changes.is_empty() { "empty" } else { "json" },
            skipped: Vec::new(),
        };
        Reply { text, raw }
    }
}

/// A proposal: one reply, or several sampled ones the loop chooses from.
pub struct Proposal {
    pub replies: Vec<Reply>,
    /// The user message a model was sent.
    pub prompt: Option<String>,
    pub llm: Option<LlmUse>,
    /// Things worth recording (a fallback taking over).
    pub notes: Vec<String>,
    /// What the proposal grammar cost over every reply (local models under the grammar).
    pub mask: Option<MaskTimes>,
}

impl Proposal {
    /// A proposal of one reply with nothing else to record.
    pub fn single(reply: Reply) -> Proposal {
        Proposal {
            replies: vec![reply],
            prompt: None,
            llm: None,
            notes: Vec::new(),
            mask: None,
        }
    }
}

/// Something that proposes option changes.
pub trait Proposer {
    /// `local:...`, `openai:...`, `expert`, `random`.
    fn name(&self) -> String;
    /// The next proposal. `on_text` receives a model's reply as it is generated.
    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal>;
    /// Rebuild internal state from a journal, for `--resume`.
    fn restore(&mut self, _ctx: &Context) {}
    /// What the journal and the compare table record about how it was asked (the hint level
    /// of a model), if anything.
    fn variant(&self) -> Option<String> {
        None
    }
    /// Whether it searches values itself (a value search): then the loop takes no refinement
    /// steps of its own between its proposals.
    fn searches_values(&self) -> bool {
        false
    }
}

/// A language model as proposer. Each turn is one self-contained message with the state of the
/// tune ([`crate::tune::prompt::state`]); the proposal grammar (local models) or response schema
/// (endpoints) admits exactly the values offered in it. Several replies are sampled per turn
/// (the first greedy) and the loop keeps the one most replies agree with.
pub struct LlmProposer {
    llm: Box<dyn Llm>,
    /// The model's tokenizer prepared for grammars (local models): each turn compiles its own
    /// narrowed schema.
    grammar: Option<GrammarEnv>,
    pub params: GenParams,
    pub hints: HintLevel,
    /// Replies per turn.
    pub samples: usize,
    /// Questions asked so far (moves the options window of `--hints none|diagnostics`).
    asked: usize,
}

impl LlmProposer {
    pub fn new(
        llm: Box<dyn Llm>,
        grammar: Option<GrammarEnv>,
        params: GenParams,
        hints: HintLevel,
        samples: usize,
    ) -> LlmProposer {
        LlmProposer {
            llm,
            grammar,
            params,
            hints,
            samples: samples.max(1),
            asked: 0,
        }
    }
}

impl Proposer for LlmProposer {
    fn name(&self) -> String {
        self.llm.name()
    }

    fn variant(&self) -> Option<String> {
        Some(format!("hints={}", self.hints.name()))
    }

    fn restore(&mut self, ctx: &Context) {
        // The questions the journal recorded (windows skipped for having nothing left to try
        // are not recorded; the window only has to move on, not repeat exactly).
        self.asked = ctx.history.iter().map(|it| it.replies.asks).sum();
    }

    fn propose(&mut self, ctx: &Context, on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        let Some(q) = self.question(ctx)? else {
            let mut p = Proposal::single(Reply::json("{}".into()));
            p.notes
                .push("no option has a value left to try: nothing was asked".into());
            return Ok(p);
        };
        let started = std::time::Instant::now();
        let mut replies = Vec::new();
        let mut usage: Option<LlmUse> = None;
        let mut mask: Option<MaskTimes> = None;
        for i in 0..self.samples {
            let p = self.sample(&q, ctx.iteration, i, on_text)?;
            let c = &p.completion;
            let u = usage.get_or_insert_with(|| LlmUse {
                backend: self.llm.name(),
                prompt_tokens: c.prompt_tokens,
                cached_tokens: c.cached_tokens,
                completion_tokens: 0,
                seconds: 0.0,
                prefill_seconds: 0.0,
                decode_seconds: 0.0,
                finish: format!("{:?}", c.finish).to_ascii_lowercase(),
                notices: Vec::new(),
                samples: 0,
                prefilled_tokens: 0,
            });
            u.completion_tokens += c.completion_tokens;
            u.prefill_seconds += c.prefill_seconds;
            u.decode_seconds += c.decode_seconds;
            u.prefilled_tokens += c.prompt_tokens.saturating_sub(c.cached_tokens);
            u.samples += 1;
            if let Some(m) = &p.mask {
                mask.get_or_insert_with(MaskTimes::default).extend(m);
            }
            replies.push(Reply {
                text: c.text.clone(),
                raw: p.raw,
            });
        }
        let mut u = usage.expect("at least one sample");
        u.seconds = started.elapsed().as_secs_f64();
        u.notices = self.llm.take_notices();
        Ok(Proposal {
            replies,
            prompt: Some(q.user),
            llm: Some(u),
            notes: Vec::new(),
            mask,
        })
    }
}

/// One question of a turn: the options offered, the messages, and the grammar that admits
/// exactly the offered values (local models).
pub struct Question {
    /// The user message (the state of the tune).
    pub user: String,
    messages: [Message; 2],
    grammar: Option<crate::grammar::Grammar>,
}

impl LlmProposer {
    /// The model asked.
    pub fn llm(&self) -> &dyn Llm {
        self.llm.as_ref()
    }

    /// The question of this turn: the options window moves on every question, and when a
    /// window has nothing left to try the next one is taken (at most one full round). None
    /// when no option has a value left to try.
    pub fn question(&mut self, ctx: &Context) -> Result<Option<Question>> {
        let mut offers = Vec::new();
        let rounds = if self.hints == HintLevel::Knowledge {
            1
        } else {
            ctx.catalog
                .entries
                .len()
                .div_ceil(crate::tune::prompt::WINDOW)
                .max(1)
        };
        for _ in 0..rounds {
            let turn = crate::tune::prompt::Turn {
                seed: self.params.seed,
                index: self.asked,
            };
            self.asked += 1;
            offers = crate::tune::prompt::offers(ctx, self.hints, turn);
            if !offers.is_empty() {
                break;
            }
        }
        if offers.is_empty() {
            return Ok(None);
        }
        let max = crate::tune::prompt::MODEL_MAX_CHANGES.min(ctx.schema.max_changes.max(1));
        let schema = crate::tune::prompt::schema(
            &offers,
            max,
            crate::tune::prompt::model_reasoning_limit(ctx.schema.reasoning_chars),
        );
        let grammar = self
            .grammar
            .as_ref()
            .map(|g| g.compile(&schema))
            .transpose()?;
        self.llm.set_response_schema(Some(&schema));
        let user = crate::tune::prompt::state(ctx, self.hints, &offers, max);
        let messages = [
            Message::system(crate::tune::prompt::system(max)),
            Message::user(user.clone()),
        ];
        Ok(Some(Question {
            user,
            messages,
            grammar,
        }))
    }

    /// How reply `i` (0-based) of turn `iteration` is sampled: the first greedy, each with
    /// its own seed.
    pub fn sample_params(&self, iteration: usize, i: usize) -> GenParams {
        let mut params = self.params.clone();
        params.seed = params.seed.wrapping_add(1000 * iteration as u64 + i as u64);
        if i == 0 {
            params.temperature = 0.0;
        }
        params
    }

    /// Reply `i` (0-based) to the question of turn `iteration`, streamed to `on_text`.
    pub fn sample(
        &mut self,
        q: &Question,
        iteration: usize,
        i: usize,
        on_text: &mut dyn FnMut(&str),
    ) -> Result<ModelProposal> {
        let params = self.sample_params(iteration, i);
        crate::tune::ask::ask(
            self.llm.as_mut(),
            q.grammar.as_ref(),
            &q.messages,
            &params,
            on_text,
        )
    }
}

/// Of several replies' calibrated changes, the one most replies agree with: each reply scores
/// the mean, over its changes, of how many replies propose the same value for that option;
/// ties go to the earlier reply (the greedy one). `None` when there is no candidate.
pub fn most_agreed(candidates: &[&std::collections::BTreeMap<String, Value>]) -> Option<usize> {
    let votes = |k: &String, v: &Value| {
        candidates
            .iter()
            .filter(|c| {
                c.get(k)
                    .is_some_and(|x| crate::options::access::same_value(x, v))
            })
            .count()
    };
    let mut best: Option<(usize, f64)> = None;
    for (i, c) in candidates.iter().enumerate() {
        if c.is_empty() {
            continue;
        }
        let score = c.iter().map(|(k, v)| votes(k, v) as f64).sum::<f64>() / c.len() as f64;
        if best.is_none_or(|(_, s)| score > s + 1e-9) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// Valid random changes from the catalog: a baseline for researchers. 1 to 3 options, values
/// uniform in range (log-uniform for sizes and wide integer ranges).
pub struct RandomProposer {
    rng: crate::rng::Rng,
}

impl RandomProposer {
    pub fn new(seed: u64) -> RandomProposer {
        RandomProposer {
            rng: crate::rng::Rng::new(seed ^ 0x5EED),
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
        let mut changes: Vec<(String, Value)> = Vec::new();
        while changes.len() < n && !keys.is_empty() {
            let key = keys[self.rng.below(keys.len() as u64) as usize];
            let Some(entry) = ctx.catalog.get(key) else {
                continue;
            };
            let v = self.value(&entry.spec.ty);
            // A key drawn again keeps its place and takes the new value.
            match changes.iter_mut().find(|(k, _)| k == key) {
                Some(c) => c.1 = v,
                None => changes.push((key.to_string(), v)),
            }
        }
        Ok(Proposal::single(Reply::typed(
            "random valid changes",
            &changes,
        )))
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

    fn variant(&self) -> Option<String> {
        match (&self.secondary, self.switched) {
            (Some(s), true) => s.variant(),
            _ => self.primary.variant(),
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
                    tracing::warn!(
                        "{} failed ({e:#}); falling back to {} for the rest of the run",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_reply_reads_as_its_journaled_text_would() {
        let changes = vec![
            ("table.filter_bits_per_key".to_string(), Value::Double(10.0)),
            ("write_buffer_size".to_string(), Value::Int(64 << 20)),
            (
                "compression".to_string(),
                Value::Str("kLZ4Compression".into()),
            ),
            ("enable_pipelined_write".to_string(), Value::Bool(true)),
        ];
        let r = Reply::typed("bloom filter: fewer reads", &changes);
        // Not parsed back, yet the same entries, reasoning and form as parsing the text gives.
        assert_eq!(r.raw, crate::options::proposal::parse(&r.text));
        assert_eq!(r.raw.entries.len(), 4);
        assert_eq!(
            r.raw.reasoning.as_deref(),
            Some("bloom filter: fewer reads")
        );
        // No changes: the parser also keeps the text it found nothing in; the rest is the same.
        let none = Reply::typed("nothing left", &[]);
        let parsed = crate::options::proposal::parse(&none.text);
        assert_eq!(
            (&none.raw.entries, &none.raw.reasoning, none.raw.format),
            (&parsed.entries, &parsed.reasoning, parsed.format)
        );
    }
}
