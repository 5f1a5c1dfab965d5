//! Value refinement: the proposer picks the knobs, measurement picks the magnitudes. When a
//! candidate that moved numeric options was kept, the loop's next candidate moves them one more
//! step the same way (the same ratio again: 64 → 32 MiB kept, so try 16 MiB); when such a step
//! is not kept and it was large (4x or more), the geometric midpoint is tried once. Then the
//! proposer is asked again. Each step is an ordinary, benchmarked and significance-gated
//! candidate, journaled with proposer `refine`.

use std::collections::BTreeMap;

use crate::options::catalog::Catalog;
use crate::options::value::{OptionType, Value, round_size, show};
use crate::tune::journal::{Decision, Iteration};

/// The proposer name refinement iterations are journaled under.
pub const REFINE: &str = "refine";

/// A refinement candidate: values for numeric options, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub changes: BTreeMap<String, Value>,
    pub why: String,
}

fn number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `v` as a value of the option's type, clamped to its range; sizes rounded to whole MiB/KiB.
fn typed(ty: &OptionType, v: f64) -> Option<Value> {
    match ty {
        OptionType::Int { min, max } => Some(Value::Int((v.round() as i64).clamp(*min, *max))),
        OptionType::Size { min, max } => {
            Some(Value::Int(round_size(v.round() as i64).clamp(*min, *max)))
        }
        OptionType::Double { min, max } => Some(Value::Double(
            ((v * 1000.0).round() / 1000.0).clamp(*min, *max),
        )),
        _ => None,
    }
}

fn numeric_moves<'a>(
    it: &'a Iteration,
    catalog: &'a Catalog,
) -> impl Iterator<Item = (&'a str, &'a OptionType, f64, f64)> + 'a {
    it.changes.iter().filter_map(move |(k, to)| {
        let e = catalog.get(k)?;
        if !matches!(
            e.spec.ty,
            OptionType::Int { .. } | OptionType::Size { .. } | OptionType::Double { .. }
        ) {
            return None;
        }
        let from = number(it.changes_from.get(k)?)?;
        let to = number(to)?;
        (from > 0.0 && to > 0.0 && from != to).then_some((k.as_str(), &e.spec.ty, from, to))
    })
}

/// The next refinement candidate after `history`, if the last iteration calls for one.
pub fn next(history: &[Iteration], catalog: &Catalog) -> Option<Step> {
    let last = history.last()?;
    let mut changes = BTreeMap::new();
    let mut said = Vec::new();
    match last.decision {
        Decision::Accepted => {
            for (k, ty, from, to) in numeric_moves(last, catalog) {
                let Some(v) = typed(ty, to * (to / from)) else {
                    continue;
                };
                if number(&v.to_string()).is_some_and(|n| (n - to).abs() < 1e-9) {
                    continue; // at the end of its range
                }
                said.push(format!("{k} {} → {} helped", fmt(ty, from), fmt(ty, to)));
                changes.insert(k.to_string(), v);
            }
            (!changes.is_empty()).then(|| Step {
                why: format!("step further the same way: {}", said.join(", ")),
                changes,
            })
        }
        Decision::Rejected | Decision::Failed
            if last.proposer == REFINE
                && last
                    .reasoning
                    .as_deref()
                    .is_some_and(|r| r.starts_with("step")) =>
        {
            for (k, ty, from, to) in numeric_moves(last, catalog) {
                let ratio = (to / from).max(from / to);
                if ratio < 4.0 {
                    continue;
                }
                let Some(v) = typed(ty, (from * to).sqrt()) else {
                    continue;
                };
                said.push(format!(
                    "{k} {} → {} did not help",
                    fmt(ty, from),
                    fmt(ty, to)
                ));
                changes.insert(k.to_string(), v);
            }
            (!changes.is_empty()).then(|| Step {
                why: format!("bisect: {}", said.join(", ")),
                changes,
            })
        }
        _ => None,
    }
}

/// A journaled number as a value of the option's type is shown.
fn fmt(ty: &OptionType, x: f64) -> String {
    let v = match ty {
        OptionType::Int { .. } | OptionType::Size { .. } if x.fract() == 0.0 => {
            Value::Int(x as i64)
        }
        _ => Value::Double(x),
    };
    show(ty, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn it(
        proposer: &str,
        decision: Decision,
        from: &[(&str, &str)],
        to: &[(&str, &str)],
        reasoning: &str,
    ) -> Iteration {
        let mut i: Iteration = serde_json::from_value(serde_json::json!({
            "iteration": 1, "proposer": proposer, "prompt": null, "reply": null, "llm": null,
            "reasoning": reasoning, "proposed": 1, "invalid": 0, "changes": {},
            "corrections": [], "candidate_file": null, "best": null, "candidate": null,
            "comparison": null, "decision": "accepted", "failure": null, "bench_seconds": 0.0,
            "llm_seconds": 0.0, "elapsed": 0.0, "best_ops": 0.0
        }))
        .unwrap();
        i.decision = decision;
        i.changes = to
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        i.changes_from = from
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        i
    }

    #[test]
    fn a_kept_numeric_change_is_stepped_further_and_a_failed_big_step_bisected() {
        let cat = crate::options::catalog().unwrap();
        let mib = |m: i64| (m << 20).to_string();
        // 64 -> 32 MiB kept: try 16 MiB; the bool rides along untouched.
        let kept = it(
            "local:x",
            Decision::Accepted,
            &[
                ("write_buffer_size", &mib(64)),
                ("enable_pipelined_write", "false"),
            ],
            &[
                ("write_buffer_size", &mib(32)),
                ("enable_pipelined_write", "true"),
            ],
            "",
        );
        let s = next(std::slice::from_ref(&kept), cat).unwrap();
        assert_eq!(s.changes.len(), 1);
        assert_eq!(s.changes["write_buffer_size"], Value::Int(16 << 20));
        assert!(s.why.starts_with("step"), "{}", s.why);
        // Up the range: 32 -> 512 MiB cache kept, next 8 GiB, clamped into range.
        let up = it(
            "expert",
            Decision::Accepted,
            &[("table.block_cache_size", &mib(32))],
            &[("table.block_cache_size", &mib(512))],
            "",
        );
        assert_eq!(
            next(&[up], cat).unwrap().changes["table.block_cache_size"],
            Value::Int(8 << 30)
        );
        // The 4x step was not kept: the midpoint once, then back to the proposer.
        let step = it(
            REFINE,
            Decision::Rejected,
            &[("table.block_cache_size", &mib(512))],
            &[("table.block_cache_size", &mib(8192))],
            "step further the same way",
        );
        let b = next(std::slice::from_ref(&step), cat).unwrap();
        assert_eq!(b.changes["table.block_cache_size"], Value::Int(2 << 30));
        assert!(b.why.starts_with("bisect"));
        let bisect = it(
            REFINE,
            Decision::Rejected,
            &[("table.block_cache_size", &mib(512))],
            &[("table.block_cache_size", &mib(2048))],
            "bisect: ...",
        );
        assert!(next(&[bisect], cat).is_none());
        // Nothing numeric, or not kept: no refinement.
        let flag = it(
            "expert",
            Decision::Accepted,
            &[("enable_pipelined_write", "false")],
            &[("enable_pipelined_write", "true")],
            "",
        );
        assert!(next(&[flag], cat).is_none());
        let mut rejected = kept.clone();
        rejected.decision = Decision::Rejected;
        assert!(next(&[rejected], cat).is_none());
        // At the end of the range there is no further step.
        let edge = it(
            "expert",
            Decision::Accepted,
            &[("max_background_jobs", "32")],
            &[("max_background_jobs", "64")],
            "",
        );
        assert!(next(&[edge], cat).is_none());
    }
}
