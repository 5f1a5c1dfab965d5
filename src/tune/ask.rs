//! One proposal from a language model: the conversation goes in, the reply comes out under the
//! proposal grammar when one is given (local models), and is parsed into raw entries for the
//! calibrator. Records what the grammar cost (mask time per token) and saved (forced tokens),
//! per reply and summed over a turn's replies ([`MaskTimes`]), as the journal keeps them.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::bench::stats::quantile;
use crate::grammar::Grammar;
use crate::llm::{Completion, GenParams, Llm, Message};
use crate::options::proposal::{self, RawProposal};

/// What constrained decoding cost for one reply, or for every reply of an iteration (as
/// journaled).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MaskStats {
    /// Masks computed (one per sampled token).
    pub masks: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Tokens the grammar forced, taken without sampling.
    pub forced_tokens: usize,
}

/// Every mask time of one or more constrained replies, and the tokens forced: what
/// [`MaskStats`] summarise.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MaskTimes {
    pub seconds: Vec<f64>,
    pub forced_tokens: usize,
}

impl MaskTimes {
    /// Take in another reply's (or turn's) mask times.
    pub fn extend(&mut self, more: &MaskTimes) {
        self.seconds.extend_from_slice(&more.seconds);
        self.forced_tokens += more.forced_tokens;
    }

    pub fn stats(&self) -> MaskStats {
        MaskStats {
            masks: self.seconds.len(),
            p50_us: quantile(&self.seconds, 0.5) * 1e6,
            p99_us: quantile(&self.seconds, 0.99) * 1e6,
            forced_tokens: self.forced_tokens,
        }
    }
}

/// A model's reply and what it says.
#[derive(Debug, Clone)]
pub struct ModelProposal {
    pub completion: Completion,
    pub raw: RawProposal,
    /// What the grammar cost (None: unconstrained).
    pub mask: Option<MaskTimes>,
}

impl ModelProposal {
    pub fn mask_stats(&self) -> Option<MaskStats> {
        self.mask.as_ref().map(MaskTimes::stats)
    }
}

/// Ask `llm` for a proposal: under `grammar` when given, else free text.
pub fn ask(
    llm: &mut dyn Llm,
    grammar: Option<&Grammar>,
    messages: &[Message],
    params: &GenParams,
    on_text: &mut dyn FnMut(&str),
) -> Result<ModelProposal> {
    let (completion, mask) = match grammar {
        Some(g) => {
            let mut c = g.constraint();
            let completion = llm.chat(messages, Some(&mut c), params, on_text)?;
            let times = MaskTimes {
                seconds: std::mem::take(&mut c.mask_seconds),
                forced_tokens: c.forced,
            };
            (completion, Some(times))
        }
        None => (llm.chat(messages, None, params, on_text)?, None),
    };
    let raw = proposal::parse(&completion.text);
    Ok(ModelProposal {
        completion,
        raw,
        mask,
    })
}
