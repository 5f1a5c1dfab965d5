//! What a language-model proposer is told. Every turn is one self-contained message describing
//! the state of the tune, so a small model never has to dig through a long conversation:
//!
//! 1. the machine (with its storage as measured), the workload and the memory budget: the same
//!    every turn, first, so the KV cache keeps them;
//! 2. the best configuration's measurement (ops/s, p50/p99), and, from `--hints diagnostics` on,
//!    what the measurements show in plain words ([`knowledge::symptoms`]);
//! 3. what was tried so far, per option: the values and what each did;
//! 4. with `--hints knowledge` (the default), the tuning hints that apply
//!    ([`knowledge::hints`]), and only the options that matter for this workload and these
//!    symptoms ([`knowledge::focus`]); otherwise a window of the catalog that moves every turn
//!    ([`rotation`]), so that a model on its own sees every option within a few turns, in a
//!    seeded order, instead of all 117 at once in catalog order (where a small model picks the
//!    first few every time);
//! 5. each offered option with its meaning, current value and the values it may take
//!    ([`knowledge::choices`]): the proposal grammar admits exactly these, so a proposal can be
//!    neither a no-op nor a repeat of a change tried and not kept.
//!
//! The same text goes to local models and OpenAI-compatible endpoints.

use std::collections::BTreeMap;

use serde_json::Value as J;

use crate::grammar::schema::proposable_keys;
use crate::options::catalog::Catalog;
use crate::options::value::{OptionType, Value, human_bytes, show};
use crate::tune::context::Context;
use crate::tune::journal::{Decision, Iteration};
use crate::tune::knowledge::{self, Situation};

pub use crate::tune::journal::HintLevel;

/// At most this many changes per model proposal: small steps whose effect can be told apart.
pub const MODEL_MAX_CHANGES: usize = 3;

/// Longest `reasoning` of a model proposal: one sentence. Decoding is most of a small model's
/// time on a CPU, and the reasoning is most of what it decodes.
pub const MODEL_REASONING_CHARS: usize = 160;

/// The length limit a model proposal's grammar puts on its reasoning in a tune asking for at
/// most `reasoning_chars`.
pub fn model_reasoning_limit(reasoning_chars: usize) -> usize {
    reasoning_chars.min(MODEL_REASONING_CHARS)
}

/// Options offered with `--hints knowledge`: the hinted ones first, a few more that matter for
/// the workload. Fewer options distract a small model less.
const FOCUS: usize = 10;

/// Values offered per option.
const CHOICES: usize = 5;

/// Options offered per turn without the knowledge base (`--hints none|diagnostics`): a window of
/// the catalog in a seeded order, the next window each turn ([`rotation`]).
pub const WINDOW: usize = 20;

/// Which turn of a tune is being asked, for the options window of `--hints none|diagnostics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Turn {
    /// The tune's seed: it fixes the order the catalog is walked in.
    pub seed: u64,
    /// 0 for the first turn, then one more per question asked (a re-ask within an iteration
    /// moves on too, so it is not asked the same thing twice).
    pub index: usize,
}

/// The window of `keys` offered on `turn`: the keys in an order fixed by the seed, cut into
/// windows of `width`, the turn's window (wrapping around), so that every key is offered once
/// every `ceil(len / width)` turns. Without the knowledge base the order carries no judgement:
/// which options matter is the model's to say. The catalog's own order is not used because a
/// small model facing a long list picks from its top.
pub fn rotation(keys: &[&'static str], turn: Turn, width: usize) -> Vec<&'static str> {
    if keys.is_empty() || width == 0 {
        return Vec::new();
    }
    let mut order: Vec<&'static str> = keys.to_vec();
    let mut rng = crate::rng::Rng::new(turn.seed ^ 0x000F_FE25);
    for i in (1..order.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let width = width.min(order.len());
    let windows = order.len().div_ceil(width);
    let w = turn.index % windows;
    let start = w * width;
    let mut out: Vec<&'static str> = order[start..(start + width).min(order.len())].to_vec();
    // The last window is short: fill it from the start of the order.
    let mut i = 0;
    while out.len() < width {
        out.push(order[i]);
        i += 1;
    }
    out
}

/// The system message.
pub fn system(max_changes: usize) -> String {
    format!(
        "You are a RocksDB performance engineer tuning one database for one machine and one \
         workload, a few options at a time, from benchmark measurements. Each message gives the \
         current measurements, what was tried, and the options you may change with the values \
         you may pick. Answer with JSON only: {{\"reasoning\": \"...\", \"changes\": \
         [{{\"option\": value}}]}}: in reasoning, one short sentence naming the measured problem \
         you fix; then 1 to {max_changes} changes, values exactly as offered. Do not repeat what \
         did not help."
    )
}

/// One option offered to the model.
#[derive(Debug, Clone)]
pub struct Offer {
    pub key: &'static str,
    pub meaning: &'static str,
    /// The current value, as shown.
    pub current: String,
    /// The values it may take: as shown (and written in the proposal), and as JSON.
    pub values: Vec<(String, J)>,
}

/// A value as a proposal writes it in JSON: sizes as shown (`"128 MiB"`), anything else as a
/// JSON scalar.
fn as_json(ty: &OptionType, v: &Value) -> J {
    match (ty, v) {
        (OptionType::Size { .. }, Value::Int(b)) if *b >= 1024 => J::String(show(ty, v)),
        (_, Value::Bool(b)) => J::Bool(*b),
        (_, Value::Int(i)) => J::from(*i),
        (_, Value::Double(d)) => serde_json::Number::from_f64(*d)
            .map(J::Number)
            .unwrap_or(J::Null),
        (_, Value::Str(s)) => J::String(s.clone()),
    }
}

/// Values not to offer again: those of candidates measured and not kept that changed only this
/// option, and any value that was part of two such candidates.
pub fn exhausted(history: &[Iteration]) -> BTreeMap<String, Vec<String>> {
    let mut count: BTreeMap<(String, String), (usize, bool)> = BTreeMap::new();
    for it in history {
        if it.decision == Decision::Accepted || it.candidate.is_none() {
            continue;
        }
        let alone = it.changes.len() == 1;
        for (k, v) in &it.changes {
            let e = count.entry((k.clone(), v.clone())).or_insert((0, false));
            e.0 += 1;
            e.1 |= alone;
        }
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ((k, v), (n, alone)) in count {
        if alone || n >= 2 {
            out.entry(k).or_default().push(v);
        }
    }
    out
}

/// Options not to offer again: each was changed by two or more of the model's candidates that
/// were measured and not kept, and by none that was kept. The direction rule
/// ([`dead_directions`]) needs a narrow interval, which a busy machine seldom gives; without
/// this the 0.5B model spent five of eight fillrandom turns on `level0_file_num_compaction_trigger`
/// at 2, 12, 6, 8 and 3, each within noise (BENCHMARKS.md, the write-heavy compare after the hint
/// swap). Two tries that kept nothing are enough to move on; the value search, which has its
/// own space, can still come back to the option. The search's own candidates (many options at
/// once) do not count.
pub fn spent_options(history: &[Iteration]) -> Vec<String> {
    let mut tries: BTreeMap<&str, usize> = BTreeMap::new();
    let mut kept: Vec<&str> = Vec::new();
    for it in history {
        if it.candidate.is_none() && it.comparison.is_none() {
            continue;
        }
        if it.decision == Decision::Accepted {
            kept.extend(it.changes.keys().map(String::as_str));
        } else if it.decision == Decision::Rejected && !crate::tune::hybrid::searched(it) {
            for k in it.changes.keys() {
                *tries.entry(k.as_str()).or_default() += 1;
            }
        }
    }
    tries
        .into_iter()
        .filter(|(k, n)| *n >= 2 && !kept.contains(k))
        .map(|(k, _)| k.to_string())
        .collect()
}

/// The knowledge base's view of a proposer's context.
pub fn situation<'a>(ctx: &'a Context) -> Situation<'a> {
    Situation {
        workload: ctx.workload,
        facts: ctx.facts,
        catalog: ctx.catalog,
        config: ctx.best,
        diagnostics: ctx.best_diagnostics,
        memory_budget: ctx.memory_budget,
        objective: ctx.goal.objective,
    }
}

/// The options offered this turn and their values. Empty when nothing is left to try. With
/// `--hints knowledge` the options the hints and the workload name ([`knowledge::focus`]);
/// otherwise the options changed so far (so the model can adjust what it kept) and the turn's
/// window of the catalog ([`rotation`]).
pub fn offers(ctx: &Context, level: HintLevel, turn: Turn) -> Vec<Offer> {
    let s = situation(ctx);
    let proposable = proposable_keys(ctx.catalog, ctx.schema);
    let mut suggested: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let keys: Vec<&'static str> = match level {
        HintLevel::Knowledge => {
            let applied = knowledge::hints(&s);
            for a in &applied {
                for (k, v) in a.suggestions(&s) {
                    suggested.entry(k).or_default().push(v);
                }
            }
            knowledge::focus(&s, &applied, &proposable, FOCUS)
        }
        _ => {
            let mut keys: Vec<&'static str> = Vec::new();
            for k in ctx.best.diff(ctx.base, ctx.catalog).keys() {
                if let Some(&p) = proposable.iter().find(|p| **p == k.as_str()) {
                    keys.push(p);
                }
            }
            for k in rotation(&proposable, turn, WINDOW) {
                if !keys.contains(&k) {
                    keys.push(k);
                }
            }
            keys
        }
    };
    // What the nearest similar past tune kept is offered too (first), so a model can take it.
    let mut keys = keys;
    if let Some(n) = ctx.past.and_then(|w| w.neighbours.first()) {
        for (k, v) in n.best.iter().rev() {
            let (Some(&p), Some(e)) = (
                proposable.iter().find(|p| **p == k.as_str()),
                ctx.catalog.get(k),
            ) else {
                continue;
            };
            if let Some(v) = crate::options::value::value_of(&e.spec.ty, v) {
                suggested.entry(p).or_default().insert(0, v);
            }
            if !keys.contains(&p) {
                keys.insert(0, p);
            }
        }
    }
    let done = exhausted(ctx.history);
    let dead = dead_directions(ctx.history, ctx.catalog, ctx.min_effect);
    let spent = spent_options(ctx.history);
    keys.into_iter()
        .filter(|key| !spent.iter().any(|s| s == key))
        .filter_map(|key| {
            let e = ctx.catalog.get(key)?;
            let current = ctx.best.get(e);
            let exclude: Vec<Value> = done
                .get(key)
                .map(|vals| {
                    vals.iter()
                        .filter_map(|v| crate::options::value::value_of(&e.spec.ty, v))
                        .collect()
                })
                .unwrap_or_default();
            let mut vals = knowledge::choices_with(
                key,
                &e.spec.ty,
                &e.spec.safety,
                &current,
                &s,
                &exclude,
                suggested.get(key).map(Vec::as_slice).unwrap_or_default(),
                CHOICES,
            );
            // A direction that measured nothing is dropped, not retried at other values.
            if let (Some(dirs), Some(cur)) = (dead.get(key), current.as_f64()) {
                vals.retain(|v| {
                    v.as_f64().is_none_or(|x| {
                        !(x > cur && dirs.contains(&true) || x < cur && dirs.contains(&false))
                    })
                });
            }
            (!vals.is_empty()).then(|| Offer {
                key,
                meaning: e.spec.meaning,
                current: show(&e.spec.ty, &current),
                values: vals
                    .iter()
                    .map(|v| (show(&e.spec.ty, v), as_json(&e.spec.ty, v)))
                    .collect(),
            })
        })
        .collect()
}

/// The directions that measured nothing, per numeric option (true: up): an option moved in a
/// candidate that was measured and not kept, whose effect stayed within the minimum effect
/// either way and whose 95% interval was narrow (within ±10%, or three minimum effects): a
/// noisy measurement that could not tell is not "nothing". A small model otherwise tries the
/// same idea again at other values (a filter at 6, then 10, then 16 bits, each ±0%); a
/// direction that did nothing is dropped.
pub fn dead_directions(
    history: &[Iteration],
    catalog: &Catalog,
    min_effect: f64,
) -> BTreeMap<String, Vec<bool>> {
    let mut out: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for it in history {
        let Some(c) = it.comparison else {
            continue;
        };
        let narrow = (3.0 * min_effect).max(0.10);
        if it.decision != Decision::Rejected
            || c.effect.abs() >= min_effect.max(0.01)
            || c.effect_high > narrow
            || c.effect_low < -narrow
        {
            continue;
        }
        for (k, to) in &it.changes {
            let Some(e) = catalog.get(k) else {
                continue;
            };
            let (Some(from), Some(to)) = (
                it.changes_from
                    .get(k)
                    .and_then(|f| crate::options::value::value_of(&e.spec.ty, f))
                    .and_then(|v| v.as_f64()),
                crate::options::value::value_of(&e.spec.ty, to).and_then(|v| v.as_f64()),
            ) else {
                continue;
            };
            if from != to {
                let dirs = out.entry(k.clone()).or_default();
                if !dirs.contains(&(to > from)) {
                    dirs.push(to > from);
                }
            }
        }
    }
    out
}

/// The JSON Schema admitting exactly the offers.
pub fn schema(offers: &[Offer], max_changes: usize, reasoning_chars: usize) -> J {
    let choices: Vec<(&str, Vec<J>)> = offers
        .iter()
        .map(|o| (o.key, o.values.iter().map(|(_, j)| j.clone()).collect()))
        .collect();
    crate::grammar::schema::choice_schema(&choices, max_changes, reasoning_chars)
}

fn pct(x: f64) -> String {
    format!("{:+.0}%", x * 100.0)
}

/// What was tried so far, per option: each value with its effect, oldest first.
pub fn tried(history: &[Iteration], catalog: &Catalog) -> Vec<String> {
    let mut per: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    let mut other = Vec::new();
    for it in history {
        if it.changes.is_empty() {
            continue;
        }
        let effect = match (it.decision, &it.comparison) {
            (Decision::Failed, _) => "failed".to_string(),
            (Decision::Accepted, Some(c)) => format!("{} kept", pct(c.effect)),
            (Decision::Accepted, None) => "kept".to_string(),
            (_, Some(c)) => format!("{} not kept", pct(c.effect)),
            (Decision::Repeat, _) => continue,
            _ => "not measured".to_string(),
        };
        for (k, v) in &it.changes {
            let shown = catalog
                .get(k)
                .and_then(|e| {
                    crate::options::value::value_of(&e.spec.ty, v).map(|x| show(&e.spec.ty, &x))
                })
                .unwrap_or_else(|| v.clone());
            let with: Vec<String> = it
                .changes
                .keys()
                .filter(|o| *o != k)
                .map(|o| o.to_string())
                .collect();
            let with = if with.is_empty() {
                String::new()
            } else {
                format!(" (with {})", with.join(", "))
            };
            let key = k.as_str();
            if !per.contains_key(key) {
                order.push(key);
            }
            per.entry(key)
                .or_default()
                .push(format!("{shown} → {effect}{with}"));
        }
        if it.decision == Decision::Failed
            && let Some(f) = &it.failure
        {
            other.push(format!(
                "iteration {} failed: {}",
                it.iteration,
                user_text(f, 300)
            ));
        }
    }
    let mut out: Vec<String> = order
        .into_iter()
        .map(|k| format!("{k}: {}", per[k].join("; ")))
        .collect();
    out.extend(other);
    out
}

/// Text that came from the user's files or the outside world (a workload file's name, a failure
/// message) as a prompt shows it: one line, control characters as spaces, at most `max`
/// characters (a 200 KB name must not make every turn slow). Control-token texts in it
/// (`<|im_end|>`) are kept apart by the local model's tokenizer, see
/// [`crate::llm::tokenizer::ControlTexts`].
pub fn user_text(text: &str, max: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// The user message for one turn.
pub fn state(ctx: &Context, level: HintLevel, offers: &[Offer], max_changes: usize) -> String {
    let w = ctx.workload;
    let s = situation(ctx);
    let mut t = String::new();
    t.push_str("Machine:\n");
    t.push_str(&ctx.facts.describe());
    t.push_str(&format!(
        "\n\nWorkload: {} ({}): {} keys of {} B with {} B values ({} of data), {} client thread(s).\n",
        user_text(&w.label(), 80),
        w.describe(),
        w.num,
        w.key_size,
        w.value_size,
        human_bytes(s.data_bytes()),
        w.threads
    ));
    if *ctx.goal != crate::tune::objective::Goal::default() {
        t.push_str(&format!("Objective: {}.\n", ctx.goal.describe()));
        if matches!(
            ctx.goal.objective,
            crate::tune::objective::Metric::P99 | crate::tune::objective::Metric::P999
        ) {
            t.push_str(
                "A latency objective rewards steady work over peak speed: avoid write stalls \
                 (L0 triggers, pending compaction limits, background jobs), split large \
                 compactions (max_subcompactions), smooth I/O (bytes_per_sync), keep reads in \
                 the block cache.\n",
            );
        }
    }
    t.push_str(&format!(
        "Memory budget for block cache + memtables: {}.\n\n",
        human_bytes(ctx.memory_budget as i64)
    ));
    let latency = match (ctx.best_p50_us, ctx.best_p99_us) {
        (Some(a), Some(b)) => format!(", latency p50 {a:.1} us, p99 {b:.1} us"),
        _ => String::new(),
    };
    // The gain so far from the kept changes' own interleaved comparisons, not from the raw
    // numbers, which drift on a shared machine.
    let kept: Vec<f64> = ctx
        .history
        .iter()
        .filter(|it| it.decision == Decision::Accepted)
        .filter_map(|it| it.comparison.map(|c| 1.0 + c.effect))
        .collect();
    let vs_start = if kept.is_empty() {
        " (the starting configuration)".to_string()
    } else {
        format!(
            " (about {} vs the start, from the kept changes)",
            pct(kept.iter().product::<f64>() - 1.0)
        )
    };
    if ctx.best_ops.is_finite() && ctx.best_ops > 0.0 {
        t.push_str(&format!(
            "Measured now: {:.0} ops/s{latency}{vs_start}.\n",
            ctx.best_ops
        ));
    } else {
        // `propose --no-measure`: say so rather than print a made-up zero.
        t.push_str("Not measured yet (the starting configuration).\n");
    }
    let changed = ctx.best.diff(ctx.base, ctx.catalog);
    if !changed.is_empty() {
        let list: Vec<String> = changed
            .iter()
            .map(|(k, (now, _))| {
                let shown = ctx
                    .catalog
                    .get(k)
                    .map(|e| show(&e.spec.ty, now))
                    .unwrap_or_else(|| now.to_string());
                format!("{k}={shown}")
            })
            .collect();
        t.push_str(&format!(
            "Changed from the start so far: {}.\n",
            list.join(", ")
        ));
    }
    if level != HintLevel::None {
        let sy = knowledge::symptoms(&s);
        if !sy.is_empty() {
            t.push_str("What the measurements show:\n");
            for x in sy {
                t.push_str(&format!("- {x}\n"));
            }
        }
    }
    let tried = tried(ctx.history, ctx.catalog);
    if !tried.is_empty() {
        t.push_str("Tried so far (value → effect on throughput):\n");
        for x in tried {
            t.push_str(&format!("- {x}\n"));
        }
    }
    if let Some(w) = ctx.past {
        let lines = crate::history::similar::prompt_lines(w);
        if !lines.is_empty() {
            t.push_str("Past tunes on a similar machine and workload (from the history):\n");
            for l in lines {
                t.push_str(&l);
                t.push('\n');
            }
        }
    }
    if level == HintLevel::Knowledge {
        // Only hints whose options can still be changed (a direction that measured nothing is
        // no longer offered, and its hint no longer shown).
        let h: Vec<knowledge::Applied> = knowledge::hints(&s)
            .into_iter()
            .filter(|a| {
                let offered = |k: &str| offers.iter().any(|o| o.key == k);
                let sug = a.suggestions(&s);
                if sug.is_empty() {
                    a.hint.options.iter().any(|(k, _)| offered(k))
                } else {
                    sug.iter().any(|(k, _)| offered(k))
                }
            })
            .collect();
        if !h.is_empty() {
            t.push_str("Hints (symptom → options (typical values): why):\n");
            for a in h.iter().take(6) {
                t.push_str(&format!("- {}\n", a.line(&s)));
            }
        }
    }
    t.push_str("Options you may change (meaning; current value → values you may pick):\n");
    for o in offers {
        let vals: Vec<&str> = o.values.iter().map(|(s, _)| s.as_str()).collect();
        t.push_str(&format!(
            "- {} ({}); {} → {}\n",
            o.key,
            o.meaning.trim_end_matches('.'),
            o.current,
            vals.join(" | ")
        ));
    }
    if let Some(note) = ctx.note {
        t.push_str(&format!("\nNote: {note}\n"));
    }
    t.push_str(&match level {
        HintLevel::Knowledge => format!(
            "\nPick 1 to {max_changes} changes: follow the hints, most important first, unless \
             what was tried says otherwise."
        ),
        HintLevel::Diagnostics => {
            format!("\nPick 1 to {max_changes} changes that fix what the measurements show.")
        }
        HintLevel::None => format!("\nPick 1 to {max_changes} changes that raise throughput."),
    });
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A readrandom tune's context (300,000 keys of 400 B, RocksDB's defaults as the start and
    /// the best so far) at `iteration`, after `history`, warm from `past`. Leaked, so a test can
    /// build several.
    fn context(
        history: &'static [Iteration],
        past: Option<&'static crate::history::Warm>,
        iteration: usize,
    ) -> Context<'static> {
        static FACTS: std::sync::OnceLock<crate::sysinfo::Facts> = std::sync::OnceLock::new();
        let base: &'static crate::options::Config =
            Box::leak(Box::new(crate::options::default_config().unwrap()));
        let mut w = crate::bench::Workload::new(crate::bench::Kind::ReadRandom);
        (w.num, w.value_size) = (300_000, 400);
        Context {
            goal: Box::leak(Box::default()),
            catalog: crate::options::catalog().unwrap(),
            facts: FACTS
                .get_or_init(|| crate::sysinfo::Facts::gather(&std::env::temp_dir(), "11.8.1")),
            workload: Box::leak(Box::new(w)),
            base,
            best: base,
            best_diagnostics: None,
            best_ops: 1.0,
            best_p50_us: None,
            best_p99_us: None,
            baseline_ops: 1.0,
            history,
            memory_budget: 4 << 30,
            schema: Box::leak(Box::default()),
            iteration,
            note: None,
            min_effect: 0.03,
            past,
        }
    }

    /// A filter tried at 6 bits per key that measured ±0% is not offered again at 10 or 16, and
    /// its hint is no longer shown; without that history, or after a measurement too noisy to
    /// tell, it is offered.
    #[test]
    fn a_direction_that_measured_nothing_is_not_offered_again() {
        let tried: Iteration = serde_json::from_value(serde_json::json!({
            "iteration": 1, "proposer": "m", "prompt": null, "reply": null, "llm": null,
            "reasoning": "filter", "proposed": 1, "invalid": 0,
            "changes": {"table.filter_bits_per_key": "6"},
            "changes_from": {"table.filter_bits_per_key": "0"},
            "corrections": [], "candidate_file": "candidates/iter-001.ini", "best": null,
            "candidate": null,
            "comparison": {"verdict": "no_significant_difference", "effect": 0.002,
                           "effect_low": -0.02, "effect_high": 0.025, "p_value": 0.8, "df": 6.0},
            "decision": "rejected", "failure": null, "bench_seconds": 1.0,
            "llm_seconds": 0.0, "elapsed": 1.0, "best_ops": 1.0
        }))
        .unwrap();
        let history = [tried];
        let ctx = |history: &'static [Iteration]| context(history, None, 2);
        let filter = |c: &Context| -> Vec<String> {
            offers(c, HintLevel::Knowledge, Turn::default())
                .into_iter()
                .filter(|o| o.key == "table.filter_bits_per_key")
                .flat_map(|o| o.values.into_iter().map(|(s, _)| s))
                .collect()
        };
        let fresh = ctx(&[]);
        assert!(
            filter(&fresh).contains(&"10".to_string()),
            "{:?}",
            filter(&fresh)
        );
        let mut noisy = history[0].clone();
        if let Some(c) = &mut noisy.comparison {
            (c.effect, c.effect_low, c.effect_high) = (0.03, -0.15, 0.25);
        }
        let unsure = ctx(Box::leak(Box::new([noisy])));
        assert!(
            filter(&unsure).contains(&"10".to_string()),
            "a measurement too noisy to tell is not 'nothing': {:?}",
            filter(&unsure)
        );
        let after = ctx(Box::leak(Box::new(history)));
        assert!(filter(&after).is_empty(), "{:?}", filter(&after));
        let text = state(
            &after,
            HintLevel::Knowledge,
            &offers(&after, HintLevel::Knowledge, Turn::default()),
            3,
        );
        assert!(
            !text.contains("skips files that cannot hold the key"),
            "{text}"
        );
    }

    /// An option two of the model's candidates moved without a keep is not offered again, even
    /// when each measurement was too noisy to call "nothing"; one try, a kept one, or the value
    /// search's tries leave it offered.
    #[test]
    fn an_option_tried_twice_without_a_keep_is_not_offered_again() {
        let tried = |n: usize, bits: &str, proposer: &str, decision: &str| -> Iteration {
            serde_json::from_value(serde_json::json!({
                "iteration": n, "proposer": proposer, "prompt": null, "reply": null,
                "llm": null, "reasoning": "filter", "proposed": 1, "invalid": 0,
                "changes": {"table.filter_bits_per_key": bits},
                "changes_from": {"table.filter_bits_per_key": "0"},
                "corrections": [], "candidate_file": "candidates/iter-001.ini", "best": null,
                "candidate": null,
                "comparison": {"verdict": "no_significant_difference", "effect": 0.01,
                               "effect_low": -0.18, "effect_high": 0.21, "p_value": 0.8,
                               "df": 6.0},
                "decision": decision, "failure": null, "bench_seconds": 1.0,
                "llm_seconds": 0.0, "elapsed": 1.0, "best_ops": 1.0
            }))
            .unwrap()
        };
        let offered = |history: Vec<Iteration>| -> bool {
            let h: &'static [Iteration] = Box::leak(history.into_boxed_slice());
            let c = context(h, None, h.len() + 1);
            offers(&c, HintLevel::Knowledge, Turn::default())
                .iter()
                .any(|o| o.key == "table.filter_bits_per_key")
        };
        let model = "local:qwen2";
        assert!(offered(vec![tried(1, "6", model, "rejected")]));
        assert!(!offered(vec![
            tried(1, "6", model, "rejected"),
            tried(2, "16", model, "rejected")
        ]));
        assert!(offered(vec![
            tried(1, "6", "search:tpe", "rejected"),
            tried(2, "16", "search:tpe", "rejected")
        ]));
        assert!(offered(vec![
            tried(1, "6", model, "accepted"),
            tried(2, "16", model, "rejected"),
            tried(3, "20", model, "rejected")
        ]));
    }

    /// A warm start: the nearest similar past tune's results are in the prompt, what it kept
    /// is offered (an option the hints do not name included), and it is the first candidate
    /// of the expert, the search and the hybrid; once the tune has measured something it is
    /// not proposed again.
    #[test]
    fn a_warm_start_is_shown_offered_and_tried_first() {
        use crate::history::{Neighbour, Outcome, Similarity, Step, Warm};
        let warm = Warm {
            store: "h.sqlite".into(),
            considered: 2,
            neighbours: vec![Neighbour {
                id: "abc".into(),
                workload: "readrandom".into(),
                recorded: 0,
                similarity: Similarity {
                    distance: 0.0,
                    machine: 0.0,
                    workload: 0.0,
                    differences: vec![],
                },
                outcome: Some(Outcome {
                    effect: 1.5,
                    low: 0.9,
                    high: 2.2,
                    kept_start: false,
                }),
                best: BTreeMap::from([
                    ("table.block_size".into(), "8192".into()),
                    ("table.filter_bits_per_key".into(), "10".into()),
                ]),
                steps: vec![Step {
                    iteration: 2,
                    proposer: "expert".into(),
                    changes: BTreeMap::from([("max_background_jobs".into(), "8".into())]),
                    from: BTreeMap::new(),
                    kept: false,
                    effect: -0.01,
                    low: -0.05,
                    high: 0.03,
                }],
            }],
            warnings: vec![],
        };
        let warm: &'static Warm = Box::leak(Box::new(warm));
        let ctx = context(&[], Some(warm), 1);
        let offered = offers(&ctx, HintLevel::Knowledge, Turn::default());
        let text = state(&ctx, HintLevel::Knowledge, &offered, 3);
        assert!(
            text.contains("Past tunes on a similar machine and workload (from the history):\n- readrandom (distance 0.00: the same machine class and workload): kept table.block_size=8 KiB, table.filter_bits_per_key=10 → +150% [+90%, +220%] vs its start\n  - not kept there: max_background_jobs=8 -1% [-5%, +3%]"),
            "{text}"
        );
        let block = offered
            .iter()
            .find(|o| o.key == "table.block_size")
            .expect("the past tune's option is offered");
        assert!(
            block.values.iter().any(|(s, _)| s == "8 KiB"),
            "{:?}",
            block.values
        );
        let (why, changes) = crate::tune::warm::seed(&ctx).expect("a seed");
        assert!(
            why.starts_with("history: the kept changes of a past tune of readrandom"),
            "{why}"
        );
        let keys: Vec<&str> = changes.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["table.block_size", "table.filter_bits_per_key"]);
        let history = [serde_json::from_value::<Iteration>(serde_json::json!({
            "iteration": 1, "proposer": "history", "prompt": null, "reply": null, "llm": null,
            "reasoning": "history", "proposed": 2, "invalid": 0, "changes": {},
            "corrections": [], "candidate_file": null, "best": null, "candidate": null,
            "comparison": null, "decision": "rejected", "failure": null, "bench_seconds": 1.0,
            "llm_seconds": 0.0, "elapsed": 1.0, "best_ops": 1.0
        }))
        .unwrap()];
        let later = Context {
            history: &history,
            iteration: 2,
            ..ctx
        };
        assert!(crate::tune::warm::seed(&later).is_none());
        // A similar tune that tried those changes as a whole and dropped them: no seed.
        let mut dropped = warm.clone();
        let mut other = dropped.neighbours[0].clone();
        other.outcome = None;
        other.steps[0].changes = other.best.clone();
        dropped.neighbours.insert(0, other);
        let again = Context {
            history: &[],
            iteration: 1,
            past: Some(&dropped),
            ..later
        };
        assert!(crate::tune::warm::seed(&again).is_none());
    }

    const KEYS: [&str; 7] = ["a", "b", "c", "d", "e", "f", "g"];

    #[test]
    fn the_window_walks_the_whole_list_in_a_seeded_order() {
        let turn = |seed, index| Turn { seed, index };
        let mut seen: Vec<&str> = Vec::new();
        for i in 0..3 {
            let w = rotation(&KEYS, turn(1, i), 3);
            assert_eq!(w.len(), 3);
            seen.extend(w);
        }
        // 7 keys in windows of 3: three turns cover all, the last one refilled from the top.
        let mut all = seen.clone();
        all.sort();
        all.dedup();
        assert_eq!(all, KEYS.to_vec());
        // The fourth turn starts the round again; another seed walks another order.
        assert_eq!(
            rotation(&KEYS, turn(1, 3), 3),
            rotation(&KEYS, turn(1, 0), 3)
        );
        let orders: std::collections::BTreeSet<Vec<&str>> = (0..8)
            .map(|seed| rotation(&KEYS, turn(seed, 0), 7))
            .collect();
        assert!(orders.len() > 1, "every seed gave the same order");
        assert!(rotation(&[], turn(1, 0), 3).is_empty());
        assert_eq!(rotation(&KEYS, turn(1, 0), 99).len(), 7);
    }
}
