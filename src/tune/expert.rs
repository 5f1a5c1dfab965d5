//! The expert proposer: the knowledge base's hints ([`crate::tune::knowledge`]) applied in
//! weight order, each as one proposal of its suggested values, skipping a hint whose values are
//! in effect already or were tried and not kept. Deterministic; the fallback when no model and
//! no endpoint is available, and the baseline a model is measured against: the model reads the
//! same hints, so "model + hints" against "expert" measures what the model itself adds. With a
//! warm start from the history, its first proposal is what the nearest similar past tune kept
//! ([`crate::tune::warm::seed`]).

use anyhow::Result;

use super::knowledge;
use super::proposer::{Context, Proposal, Proposer, Reply, tried};
use crate::options::value::Value;

/// The rule-based proposer.
pub struct ExpertProposer;

/// One hint's proposal: its id, why (the symptom and the hint in brief), and its changes.
pub struct Advice {
    pub id: &'static str,
    pub why: String,
    pub changes: Vec<(String, Value)>,
}

/// The first applying hint, in weight order, with something new to try.
pub fn advice(ctx: &Context) -> Option<Advice> {
    let s = super::prompt::situation(ctx);
    let tried = tried(ctx.history);
    knowledge::hints(&s).into_iter().find_map(|a| {
        let new = a.suggestions(&s);
        let fresh = new
            .iter()
            .any(|(k, v)| !tried.contains(&(k.to_string(), v.to_string())));
        (!new.is_empty() && fresh).then(|| Advice {
            id: a.hint.id,
            why: format!("{} → {}", a.symptom, a.hint.brief),
            changes: new.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        })
    })
}

impl Proposer for ExpertProposer {
    fn name(&self) -> String {
        "expert".into()
    }

    fn propose(&mut self, ctx: &Context, _on_text: &mut dyn FnMut(&str)) -> Result<Proposal> {
        // A warm start: what the nearest similar past tune kept, first.
        if let Some((why, changes)) = crate::tune::warm::seed(ctx) {
            return Ok(Proposal::single(Reply::typed(&why, &changes)));
        }
        let a = advice(ctx).unwrap_or(Advice {
            id: "nothing left",
            why: "every hint that applies was tried".into(),
            changes: vec![],
        });
        let changes: Vec<(String, Value)> =
            a.changes.into_iter().take(ctx.schema.max_changes).collect();
        Ok(Proposal::single(Reply::typed(
            &format!("{}: {}", a.id, a.why),
            &changes,
        )))
    }
}
